//! The engine's value type: one cache entry's key, value and bookkeeping.
//!
//! The node owns the entry's Python key; the engine's key only refers to it weakly
//! (see `keys.rs`), so that moka's table, which keeps removed keys around as
//! tombstones until it rehashes, never keeps a removed Python key alive.

use std::sync::Arc;

use pyo3::prelude::*;

use crate::expiry::EntryExpiry;
use crate::pyref::PyOwned;

/// One cache entry, shared between the engine and in-flight calls as `Arc<Node>`.
pub struct Node {
    key: PyOwned,
    value: ValueCell,
    /// Per-entry expiration state; `None` for entries that only follow the
    /// cache-wide ttl/tti (or none at all), which keeps plain entries small.
    expiry: Option<Box<EntryExpiry>>,
    weight: u32,
    /// Which collision probe of its hash this entry occupies (see `slot.rs`), with
    /// [`READS_MATTER`] folded into the top bit to keep the node at 40 bytes.
    probe: u32,
}

/// Set on nodes whose reads change their expiration (per-entry tti, read hook):
/// the others skip their expiry state on the read path.
const READS_MATTER: u32 = 1 << 31;

impl Node {
    pub fn new(
        key: PyOwned,
        value: PyOwned,
        weight: u32,
        probe: u32,
        expiry: Option<Box<EntryExpiry>>,
    ) -> Arc<Node> {
        debug_assert!(probe < READS_MATTER, "probe numbers stay far below 2**31");
        let reads_matter = expiry.as_deref().is_some_and(EntryExpiry::reads_matter);
        Arc::new(Node {
            key,
            value: ValueCell::new(value),
            expiry,
            weight,
            probe: probe | if reads_matter { READS_MATTER } else { 0 },
        })
    }

    /// The entry's key.
    #[inline]
    pub fn key(&self) -> &PyOwned {
        &self.key
    }

    #[inline]
    pub fn weight(&self) -> u32 {
        self.weight
    }

    #[inline]
    pub fn probe(&self) -> u32 {
        self.probe & !READS_MATTER
    }

    /// Whether a read may change this entry's expiration.
    #[inline]
    pub fn reads_matter(&self) -> bool {
        self.probe & READS_MATTER != 0
    }

    #[inline]
    pub fn expiry(&self) -> Option<&EntryExpiry> {
        self.expiry.as_deref()
    }

    /// A new reference to the current value.
    #[inline]
    pub fn value<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.value.get(py)
    }

    /// The address of the current value, to tell whether it changed.
    #[inline]
    pub fn value_ptr(&self, _py: Python<'_>) -> *mut pyo3::ffi::PyObject {
        self.value.ptr()
    }

    /// The value's reference, for `__traverse__` (which runs attached, and on GIL
    /// builds with the GIL held, so no in-place swap can race with it).
    #[inline]
    pub fn value_for_traverse(&self) -> &PyOwned {
        self.value.owned()
    }

    /// A new owned reference to the current value, for code running inside an engine
    /// callback.
    ///
    /// # Safety
    /// The calling thread must be attached to the interpreter.
    #[inline]
    pub unsafe fn value_attached(&self) -> PyOwned {
        self.value.get_attached()
    }

    /// Replaces the value in place, returning the previous one.
    ///
    /// Only GIL builds update entries in place (see `store.rs`): there the GIL
    /// orders this write against every read of the cell.
    #[cfg(not(Py_GIL_DISABLED))]
    #[inline]
    pub fn replace_value(&self, _py: Python<'_>, value: PyOwned) -> PyOwned {
        self.value.replace(value)
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("weight", &self.weight)
            .field("probe", &self.probe())
            .finish_non_exhaustive()
    }
}

/// The value slot of a node.
///
/// On GIL builds the value can be swapped in place, which makes overwriting an
/// existing key 2-3x cheaper than a full engine insert. Every access happens with the
/// GIL held, so an `UnsafeCell` is enough. Free-threaded builds keep nodes immutable
/// and replace the whole node instead, so readers never race a writer.
#[cfg(not(Py_GIL_DISABLED))]
struct ValueCell(std::cell::UnsafeCell<PyOwned>);

#[cfg(not(Py_GIL_DISABLED))]
impl ValueCell {
    fn new(value: PyOwned) -> Self {
        ValueCell(std::cell::UnsafeCell::new(value))
    }

    #[inline]
    fn get<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        // SAFETY: reads and writes of the cell all happen with the GIL held (a
        // `Python` token proves it), so they never overlap.
        unsafe { (*self.0.get()).to_bound(py) }
    }

    #[inline]
    unsafe fn get_attached(&self) -> PyOwned {
        (*self.0.get()).clone_attached()
    }

    #[inline]
    fn ptr(&self) -> *mut pyo3::ffi::PyObject {
        // SAFETY: as in `get`; callers hold the GIL.
        unsafe { (*self.0.get()).as_ptr() }
    }

    #[inline]
    fn owned(&self) -> &PyOwned {
        // SAFETY: as in `get`; the garbage collector runs with the GIL held.
        unsafe { &*self.0.get() }
    }

    #[inline]
    fn replace(&self, value: PyOwned) -> PyOwned {
        // SAFETY: callers hold the GIL (see `Node::replace_value`).
        unsafe { std::mem::replace(&mut *self.0.get(), value) }
    }
}

#[cfg(Py_GIL_DISABLED)]
struct ValueCell(PyOwned);

#[cfg(Py_GIL_DISABLED)]
impl ValueCell {
    fn new(value: PyOwned) -> Self {
        ValueCell(value)
    }

    #[inline]
    fn get<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.0.to_bound(py)
    }

    #[inline]
    unsafe fn get_attached(&self) -> PyOwned {
        self.0.clone_attached()
    }

    #[inline]
    fn ptr(&self) -> *mut pyo3::ffi::PyObject {
        self.0.as_ptr()
    }

    #[inline]
    fn owned(&self) -> &PyOwned {
        &self.0
    }
}

// SAFETY: `ValueCell` holds a `PyOwned` (itself Send + Sync, see pyref.rs); on GIL
// builds its interior mutability is serialized by the GIL as documented above.
unsafe impl Send for ValueCell {}
// SAFETY: see `Send`.
unsafe impl Sync for ValueCell {}
