//! The work every public call finishes with, once the engine is out of the way.

use pyo3::prelude::*;

use crate::{listener, pyref};

/// Runs at the end of a public call (also when it fails): delivers the eviction
/// notifications the call caused and releases the Python references it dropped.
/// Both run Python code, which is safe here because no engine or crate lock is held.
pub struct Settle<'py> {
    py: Python<'py>,
}

impl<'py> Settle<'py> {
    #[inline]
    pub fn new(py: Python<'py>) -> Self {
        Settle { py }
    }
}

impl Drop for Settle<'_> {
    /// Two loads on the common path, where nothing waits anywhere; the rest is out of line.
    #[inline(always)]
    fn drop(&mut self) {
        if listener::any_waiting() || pyref::any_waiting() {
            settle(self.py);
        }
    }
}

#[cold]
#[inline(never)]
fn settle(py: Python<'_>) {
    if listener::has_pending() {
        listener::deliver_pending(py);
    }
    if pyref::has_deferred() {
        pyref::release_deferred(py);
    }
}
