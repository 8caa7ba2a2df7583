//! Single flight for `get_with`: one initializer per key at a time, across threads.
//!
//! The first caller to miss a key becomes the *owner* of a [`Flight`] and runs the
//! initializer; later callers for an equal key *wait* for its outcome. Nothing here
//! holds a lock while Python code runs: keys are compared on snapshots taken under
//! the registry lock, and waiters release the GIL (detach) while they block, checking
//! for signals (Ctrl-C) every few milliseconds.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::{self, ThreadId};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

use crate::errors::{Error, Result};
use crate::keys;
use crate::pyref::PyOwned;

/// How often a blocked waiter wakes up to look for signals (KeyboardInterrupt).
const SIGNAL_CHECK_INTERVAL: Duration = Duration::from_millis(20);

enum State {
    Running,
    Done(PyOwned),
    Failed(PyOwned),
    /// The owner gave up without a result (its initializer raised a
    /// `BaseException` such as `KeyboardInterrupt`, or it panicked): waiters retry.
    Abandoned,
}

/// Runs pending signal handlers (Ctrl-C raises `KeyboardInterrupt` here).
///
/// PyPy's `PyErr_CheckSignals` runs no handlers: PyPy runs them between bytecodes,
/// so there a waiter runs a little Python code instead.
fn check_signals(py: Python<'_>) -> PyResult<()> {
    #[cfg(PyPy)]
    {
        static TICK: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();
        // A loop: PyPy looks for pending actions (signals among them) on jumps back.
        let tick = TICK.get_or_try_init(py, || {
            py.eval(c"lambda: [None for _ in (1, 2)]", None, None)
                .map(Bound::unbind)
        })?;
        tick.call0(py)?;
    }
    py.check_signals()
}

/// One in-progress initialization.
pub struct Flight {
    key: PyOwned,
    owner: ThreadId,
    state: Mutex<State>,
    finished: Condvar,
}

/// What a waiter learns when the flight lands.
pub enum Outcome<'py> {
    Value(Bound<'py, PyAny>),
    Retry,
}

impl Flight {
    /// Blocks (without the GIL) until the owner finishes.
    pub fn wait<'py>(&self, py: Python<'py>) -> Result<Outcome<'py>> {
        loop {
            {
                let state = self.state.lock();
                match &*state {
                    State::Running => {}
                    State::Done(value) => return Ok(Outcome::Value(value.to_bound(py))),
                    State::Failed(exception) => {
                        return Err(Error::Python(PyErr::from_value(exception.to_bound(py))));
                    }
                    State::Abandoned => return Ok(Outcome::Retry),
                }
            }
            py.detach(|| {
                let mut state = self.state.lock();
                if matches!(*state, State::Running) {
                    self.finished.wait_for(&mut state, SIGNAL_CHECK_INTERVAL);
                }
            });
            check_signals(py)?;
        }
    }

    fn land(&self, state: State) {
        let previous = std::mem::replace(&mut *self.state.lock(), state);
        self.finished.notify_all();
        // Dropping outside the lock: `PyOwned` defers its release anyway.
        drop(previous);
    }
}

/// The flights of one cache, by key hash.
#[derive(Default)]
pub struct Flights {
    by_hash: Mutex<HashMap<isize, Vec<Arc<Flight>>>>,
}

/// The result of joining the flight of a key.
pub enum Joined<'a> {
    /// This caller runs the initializer and must land the flight.
    Owner(OwnerGuard<'a>),
    /// Another caller is initializing an equal key.
    Waiter(Arc<Flight>),
}

impl Flights {
    /// Joins the flight for `key`, or starts one.
    pub fn join<'a>(&'a self, key: &Bound<'_, PyAny>, hash: isize) -> Result<Joined<'a>> {
        loop {
            let candidates: Vec<Arc<Flight>> =
                self.by_hash.lock().get(&hash).cloned().unwrap_or_default();
            let mut ran_python = false;
            for flight in &candidates {
                let comparison = keys::compare(&flight.key.bind(key.py()), key)?;
                ran_python |= comparison.ran_python;
                if comparison.equal {
                    if flight.owner == thread::current().id() {
                        return Err(Error::Runtime(
                            "get_with() was called for a key whose initializer is already \
                             running on this thread (the initializer calls get_with() for its \
                             own key, which would never finish)"
                                .to_owned(),
                        ));
                    }
                    return Ok(Joined::Waiter(Arc::clone(flight)));
                }
            }
            let mut by_hash = self.by_hash.lock();
            let list = by_hash.entry(hash).or_default();
            // A `__eq__` (or, without the GIL, another thread) may have let a flight
            // for this very key start since the snapshot: compare again then.
            let unchanged = list.len() == candidates.len()
                && list.iter().zip(&candidates).all(|(a, b)| Arc::ptr_eq(a, b));
            if (ran_python || cfg!(Py_GIL_DISABLED)) && !unchanged {
                continue;
            }
            let flight = Arc::new(Flight {
                key: PyOwned::new(key),
                owner: thread::current().id(),
                state: Mutex::new(State::Running),
                finished: Condvar::new(),
            });
            list.push(Arc::clone(&flight));
            return Ok(Joined::Owner(OwnerGuard {
                flights: self,
                hash,
                flight,
                landed: false,
            }));
        }
    }

    fn remove(&self, hash: isize, flight: &Arc<Flight>) {
        let removed = {
            let mut by_hash = self.by_hash.lock();
            let Some(list) = by_hash.get_mut(&hash) else {
                return;
            };
            let removed = list
                .iter()
                .position(|f| Arc::ptr_eq(f, flight))
                .map(|i| list.swap_remove(i));
            if list.is_empty() {
                by_hash.remove(&hash);
            }
            removed
        };
        drop(removed);
    }
}

/// The owner's handle on a flight; landing it wakes the waiters. Dropped without
/// landing (a panic), the flight is abandoned so that waiters retry.
pub struct OwnerGuard<'a> {
    flights: &'a Flights,
    hash: isize,
    flight: Arc<Flight>,
    landed: bool,
}

impl OwnerGuard<'_> {
    /// The initializer produced `value`.
    pub fn succeed(mut self, value: &Bound<'_, PyAny>) {
        self.finish(State::Done(PyOwned::new(value)));
    }

    /// The initializer raised `err`: waiters raise it too, unless it is not an
    /// `Exception` (KeyboardInterrupt, SystemExit...), in which case they retry.
    pub fn fail(mut self, py: Python<'_>, err: &PyErr) {
        let exception = err.value(py);
        let state = if exception.is_instance_of::<PyException>() {
            State::Failed(PyOwned::new(exception.as_any()))
        } else {
            State::Abandoned
        };
        self.finish(state);
    }

    fn finish(&mut self, state: State) {
        self.landed = true;
        // Unregister first: a caller arriving after this point must not join a
        // finished flight but look the (now cached) value up again.
        self.flights.remove(self.hash, &self.flight);
        self.flight.land(state);
    }
}

impl Drop for OwnerGuard<'_> {
    fn drop(&mut self) {
        if !self.landed {
            self.finish(State::Abandoned);
        }
    }
}
