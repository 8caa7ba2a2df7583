//! Eviction notifications: collected inside the engine, delivered outside it.
//!
//! moka reports a removal while it holds its locks. Calling the user's listener
//! there would let Python code (which may block, switch threads, or call back into
//! the cache) run under an engine lock. Instead the engine-side callback only queues
//! the event on the current thread; [`deliver_pending`] calls the listener once the
//! engine call has returned, on the same thread, before the public method returns.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use moka::notification::RemovalCause;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyString;

use crate::pyref::PyOwned;

/// Why an entry left the cache, as the listener sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    Explicit,
    Replaced,
    Size,
    Expired,
}

impl From<RemovalCause> for Cause {
    fn from(cause: RemovalCause) -> Self {
        match cause {
            RemovalCause::Explicit => Cause::Explicit,
            RemovalCause::Replaced => Cause::Replaced,
            RemovalCause::Size => Cause::Size,
            RemovalCause::Expired => Cause::Expired,
        }
    }
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Explicit => "explicit",
            Cause::Replaced => "replaced",
            Cause::Size => "size",
            Cause::Expired => "expired",
        }
    }

    fn to_py(self, py: Python<'_>) -> &Bound<'_, PyString> {
        static STRINGS: [PyOnceLock<Py<PyString>>; 4] = [
            PyOnceLock::new(),
            PyOnceLock::new(),
            PyOnceLock::new(),
            PyOnceLock::new(),
        ];
        let index = self as usize;
        STRINGS[index]
            .get_or_init(py, || PyString::intern(py, self.as_str()).unbind())
            .bind(py)
    }
}

/// The user's listener.
pub struct Listener {
    callable: Py<PyAny>,
}

impl Listener {
    pub fn new(callable: Py<PyAny>) -> Arc<Self> {
        Arc::new(Listener { callable })
    }

    pub fn callable(&self) -> &Py<PyAny> {
        &self.callable
    }
}

struct Event {
    listener: Arc<Listener>,
    key: PyOwned,
    value: PyOwned,
    cause: Cause,
}

thread_local! {
    static PENDING: RefCell<Vec<Event>> = const { RefCell::new(Vec::new()) };
}

/// How many events wait on all threads (a cheap gate before the thread-local lookup).
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// Queues a notification for delivery when the current public call finishes.
pub fn enqueue(listener: &Arc<Listener>, key: PyOwned, value: PyOwned, cause: Cause) {
    let event = Event {
        listener: Arc::clone(listener),
        key,
        value,
        cause,
    };
    // A thread being torn down cannot deliver anything; dropping is all that is left.
    if PENDING
        .try_with(|pending| pending.borrow_mut().push(event))
        .is_ok()
    {
        WAITING.fetch_add(1, Ordering::Relaxed);
    }
}

/// Calls the listener for every queued event of this thread, in order.
///
/// A listener that raises does not disturb the call that triggered it: its
/// exception goes to `sys.unraisablehook`, like an exception in `__del__`.
pub fn deliver_pending(py: Python<'_>) {
    loop {
        let batch = PENDING
            .try_with(|pending| std::mem::take(&mut *pending.borrow_mut()))
            .unwrap_or_default();
        if batch.is_empty() {
            return;
        }
        WAITING.fetch_sub(batch.len(), Ordering::Relaxed);
        for event in batch {
            let callable = event.listener.callable.bind(py);
            let key = event.key.into_bound(py);
            let value = event.value.into_bound(py);
            if let Err(err) = callable.call1((key, value, event.cause.to_py(py))) {
                err.write_unraisable(py, Some(callable));
            }
        }
    }
}

/// Whether any thread has notifications waiting: the cheap test before `has_pending`.
#[inline(always)]
pub fn any_waiting() -> bool {
    WAITING.load(Ordering::Relaxed) != 0
}

/// Whether this thread has notifications waiting.
#[inline]
pub fn has_pending() -> bool {
    any_waiting()
        && PENDING
            .try_with(|pending| !pending.borrow().is_empty())
            .unwrap_or(false)
}
