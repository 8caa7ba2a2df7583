//! Owned references to Python objects whose release is deferred.
//!
//! The engine drops entries inside its own maintenance, while it holds its locks.
//! Releasing the last reference to a Python object runs arbitrary Python code
//! (`__del__`, weakref callbacks), which may switch threads or call back into the
//! cache — exactly what must never happen under an engine lock. So a [`PyOwned`]
//! does not release its object when dropped: it queues the pointer on a
//! per-thread list, and [`release_deferred`] hands the references back to Python
//! once the engine call has returned (every public method ends with it, through
//! [`crate::settle::Settle`]). References dropped by a thread that is exiting, which
//! cannot release them, become orphans that the next releasing call on any thread
//! releases.

use std::cell::RefCell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use pyo3::ffi;
use pyo3::prelude::*;

thread_local! {
    /// References dropped on this thread that still have to be released.
    static DEFERRED: RefCell<Deferred> = const { RefCell::new(Deferred(Vec::new())) };
}

/// The list behind [`DEFERRED`].
struct Deferred(Vec<NonNull<ffi::PyObject>>);

impl Drop for Deferred {
    /// A thread that exits with references still queued hands them to [`ORPHANS`].
    fn drop(&mut self) {
        adopt(std::mem::take(&mut self.0));
    }
}

/// References that their thread could not release: dropped after its list was torn down,
/// or left on it when the thread exited. moka frees removed entries from a thread's exit
/// handlers (see `keys.rs`), where both happen. The next call that releases references,
/// on any thread, releases these too, so their `__del__` and weakref callbacks still run.
static ORPHANS: Mutex<Vec<Orphan>> = Mutex::new(Vec::new());

/// How many references wait in [`ORPHANS`].
static ORPHANED: AtomicUsize = AtomicUsize::new(0);

enum Orphan {
    /// A reference to release.
    Reference(NonNull<ffi::PyObject>),
    /// Other work that needs an attached thread (`noderef.rs`: a node handle's count).
    /// Only builds with a GIL use it; the others count handles atomically.
    #[cfg_attr(any(Py_GIL_DISABLED, PyPy, GraalPy), allow(dead_code))]
    Release(Box<dyn FnOnce(Python<'_>) + Send>),
}

// SAFETY: an orphan reference is owned, and only released by an attached thread (see
// `release_deferred`); moving the pointer between threads touches nothing. A release
// closure is `Send` itself.
unsafe impl Send for Orphan {}

fn adopt(refs: Vec<NonNull<ffi::PyObject>>) {
    if refs.is_empty() {
        return;
    }
    let count = refs.len();
    ORPHANS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .extend(refs.into_iter().map(Orphan::Reference));
    // Counted in WAITING already (they were queued, or are counted by the caller).
    ORPHANED.fetch_add(count, Ordering::Relaxed);
}

/// Hands `release` to the next call that releases references, on any thread, which
/// runs it attached. For drops on a thread that may not be attached (an exit handler).
#[cfg_attr(any(Py_GIL_DISABLED, PyPy, GraalPy), allow(dead_code))]
pub fn adopt_release(release: Box<dyn FnOnce(Python<'_>) + Send>) {
    WAITING.fetch_add(1, Ordering::Relaxed);
    ORPHANS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Orphan::Release(release));
    ORPHANED.fetch_add(1, Ordering::Relaxed);
}

/// How many references wait on all threads, orphans included: a cheap test, on every
/// call, that spares the (comparatively slow) thread-local lookup when nothing is
/// waiting anywhere.
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// A strong reference to a Python object, released lazily (see the module docs).
///
/// Laid out exactly as `Py<PyAny>` (one object pointer), so that `__traverse__` can
/// hand it to the garbage collector as one (see [`PyOwned::as_py`]).
#[repr(transparent)]
pub struct PyOwned(NonNull<ffi::PyObject>);

// SAFETY: the pointer is only dereferenced or its reference count changed by code
// that is attached to the interpreter: on GIL builds the GIL orders those accesses,
// on free-threaded builds CPython's reference counting is itself thread-safe. Dropping
// a `PyOwned` touches neither (it queues the pointer), so it is sound on any thread,
// including the exit handlers from which moka may free entries without the GIL.
unsafe impl Send for PyOwned {}
// SAFETY: see `Send`; a shared `&PyOwned` only exposes the pointer.
unsafe impl Sync for PyOwned {}

impl PyOwned {
    /// A new strong reference to `obj`.
    #[inline]
    pub fn new(obj: &Bound<'_, PyAny>) -> Self {
        // SAFETY: `obj` is a live object and we are attached (we hold a `Bound`).
        unsafe { ffi::Py_IncRef(obj.as_ptr()) };
        PyOwned(NonNull::new(obj.as_ptr()).expect("a Bound is never null"))
    }

    /// Takes over the reference owned by `obj`.
    #[inline]
    pub fn from_bound(obj: Bound<'_, PyAny>) -> Self {
        PyOwned(NonNull::new(obj.into_ptr()).expect("a Bound is never null"))
    }

    /// Another strong reference to the same object.
    ///
    /// # Safety
    /// The calling thread must be attached to the interpreter. Engine callbacks
    /// (listener, expiry) satisfy this because every engine call is made attached.
    #[inline]
    pub unsafe fn clone_attached(&self) -> Self {
        ffi::Py_IncRef(self.0.as_ptr());
        PyOwned(self.0)
    }

    /// Another strong reference to the same object.
    #[inline]
    pub fn clone_ref(&self, _py: Python<'_>) -> Self {
        // SAFETY: the `Python` token proves we are attached.
        unsafe { self.clone_attached() }
    }

    #[inline]
    pub fn as_ptr(&self) -> *mut ffi::PyObject {
        self.0.as_ptr()
    }

    /// This reference seen as a `Py<PyAny>`, for `PyVisit::call` in `__traverse__`,
    /// which may not touch reference counts (so no `clone_ref` there).
    #[inline]
    pub fn as_py(&self) -> &Py<PyAny> {
        // SAFETY: `PyOwned` and `Py<PyAny>` are both `repr(transparent)` over a
        // `NonNull<ffi::PyObject>` that owns one strong reference; the borrow keeps `self`
        // (so that reference) alive, and nothing can drop a `Py` through a `&Py`.
        unsafe { &*(self as *const PyOwned).cast::<Py<PyAny>>() }
    }

    /// A borrowed view, valid while `self` is alive.
    #[inline]
    pub fn bind<'a, 'py>(&'a self, py: Python<'py>) -> Borrowed<'a, 'py, PyAny> {
        // SAFETY: we own a strong reference for at least the lifetime `'a`.
        unsafe { Borrowed::from_ptr(py, self.0.as_ptr()) }
    }

    /// A new owned `Bound` to the object (one more reference).
    #[inline]
    pub fn to_bound<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.bind(py).to_owned()
    }

    /// Converts into a `Bound` that owns this reference, without deferring anything.
    #[inline]
    pub fn into_bound(self, py: Python<'_>) -> Bound<'_, PyAny> {
        let ptr = self.0.as_ptr();
        std::mem::forget(self);
        // SAFETY: we transfer our strong reference to the `Bound`.
        unsafe { Bound::from_owned_ptr(py, ptr) }
    }
}

impl Drop for PyOwned {
    fn drop(&mut self) {
        let ptr = self.0;
        WAITING.fetch_add(1, Ordering::Relaxed);
        if DEFERRED
            .try_with(|deferred| deferred.borrow_mut().0.push(ptr))
            .is_err()
        {
            // The thread is being torn down and may not be attached: another thread
            // releases the reference later.
            adopt(vec![ptr]);
        }
    }
}

impl std::fmt::Debug for PyOwned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PyOwned({:p})", self.0)
    }
}

/// Releases every reference deferred on this thread, and the orphans of exited
/// threads. Runs Python code (`__del__`), so it must only be called with no engine or
/// crate lock held.
pub fn release_deferred(py: Python<'_>) {
    loop {
        let mut batch = DEFERRED
            .try_with(|deferred| std::mem::take(&mut deferred.borrow_mut().0))
            .unwrap_or_default();
        let mut releases = Vec::new();
        if ORPHANED.load(Ordering::Relaxed) != 0 {
            let orphans =
                std::mem::take(&mut *ORPHANS.lock().unwrap_or_else(PoisonError::into_inner));
            ORPHANED.fetch_sub(orphans.len(), Ordering::Relaxed);
            for orphan in orphans {
                match orphan {
                    Orphan::Reference(ptr) => batch.push(ptr),
                    Orphan::Release(release) => releases.push(release),
                }
            }
        }
        if batch.is_empty() && releases.is_empty() {
            return;
        }
        WAITING.fetch_sub(batch.len() + releases.len(), Ordering::Relaxed);
        // A release may drop references of its own, which it defers: the next loop
        // iteration releases them.
        for release in releases {
            release(py);
        }
        for ptr in batch {
            // SAFETY: each pointer carries one strong reference that we now give back;
            // the `Python` token proves we are attached. A `__del__` run here may
            // defer more references, which the next loop iteration releases.
            unsafe { ffi::Py_DecRef(ptr.as_ptr()) };
        }
    }
}

/// Whether any thread has references (or orphans) waiting: the cheap test before
/// `has_deferred`.
#[inline(always)]
pub fn any_waiting() -> bool {
    WAITING.load(Ordering::Relaxed) != 0
}

/// Whether this thread has references waiting to be released, or exited threads left
/// some.
#[inline]
pub fn has_deferred() -> bool {
    any_waiting()
        && (ORPHANED.load(Ordering::Relaxed) != 0
            || DEFERRED
                .try_with(|deferred| !deferred.borrow().0.is_empty())
                .unwrap_or(false))
}
