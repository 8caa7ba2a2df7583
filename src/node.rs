//! The engine's value type: one cache entry's key, value and bookkeeping.
//!
//! The node owns the entry's Python key; the engine's key only refers to it weakly
//! (see `keys.rs`), so that moka's table, which keeps removed keys around as
//! tombstones until it rehashes, never keeps a removed Python key alive.
//!
//! A node is 40 bytes with its reference counts, and that size is worth keeping:
//! at 48 bytes the allocator's size classes cost ~33 more bytes per entry (measured
//! by `benchmarks/memory.py`). So the per-entry expiration state, which most entries
//! do not have, shares one word with the key (see [`KeyCell`]).

use std::ptr::NonNull;
use std::sync::Arc;

use pyo3::ffi;
use pyo3::prelude::*;

use crate::expiry::EntryExpiry;
use crate::pyref::PyOwned;

/// One cache entry, shared between the engine and in-flight calls as `Arc<Node>`.
pub struct Node {
    key: KeyCell,
    value: ValueCell,
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
        expiry: Option<EntryExpiry>,
    ) -> Arc<Node> {
        debug_assert!(probe < READS_MATTER, "probe numbers stay far below 2**31");
        let reads_matter = expiry.as_ref().is_some_and(EntryExpiry::reads_matter);
        Arc::new(Node {
            key: KeyCell::new(key, expiry),
            value: ValueCell::new(value),
            weight,
            probe: probe | if reads_matter { READS_MATTER } else { 0 },
        })
    }

    /// The entry's key.
    #[inline]
    pub fn key(&self) -> &PyOwned {
        self.key.key()
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

    /// Per-entry expiration state; `None` for entries that only follow the
    /// cache-wide ttl/tti (or none at all).
    #[inline]
    pub fn expiry(&self) -> Option<&EntryExpiry> {
        self.key.expiry()
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

/// The key of an entry and, if the entry has one, its own expiration state, in one
/// word: an owned `PyObject*` for entries without that state, or, with the low bit
/// set, a `Box<KeyAndExpiry>` holding both.
///
/// The low bit of an object pointer is always clear: a `PyObject` starts with a
/// `Py_ssize_t`, so every object is at least 8-byte aligned.
#[repr(transparent)]
struct KeyCell(NonNull<()>);

struct KeyAndExpiry {
    key: PyOwned,
    expiry: EntryExpiry,
}

const WITH_EXPIRY: usize = 1;
const _: () = assert!(std::mem::align_of::<ffi::PyObject>() > WITH_EXPIRY);
const _: () = assert!(std::mem::align_of::<KeyAndExpiry>() > WITH_EXPIRY);
const _: () = assert!(std::mem::size_of::<Node>() == 24, "see the module docs");

impl KeyCell {
    fn new(key: PyOwned, expiry: Option<EntryExpiry>) -> Self {
        let Some(expiry) = expiry else {
            let raw = key.into_raw();
            debug_assert_eq!(raw.as_ptr() as usize & WITH_EXPIRY, 0);
            return KeyCell(raw.cast());
        };
        let boxed = NonNull::from(Box::leak(Box::new(KeyAndExpiry { key, expiry })));
        KeyCell(boxed.cast().map_addr(|a| a | WITH_EXPIRY))
    }

    /// The box, for a cell that holds expiration state.
    #[inline]
    fn with_expiry(&self) -> Option<&KeyAndExpiry> {
        if self.0.addr().get() & WITH_EXPIRY == 0 {
            return None;
        }
        let boxed = self.0.map_addr(|a| {
            std::num::NonZeroUsize::new(a.get() & !WITH_EXPIRY).expect("boxes are never null")
        });
        // SAFETY: a tagged cell holds a `Box<KeyAndExpiry>` that it owns until dropped.
        Some(unsafe { boxed.cast::<KeyAndExpiry>().as_ref() })
    }

    #[inline]
    fn key(&self) -> &PyOwned {
        match self.with_expiry() {
            Some(both) => &both.key,
            // SAFETY: an untagged cell is an owned object pointer, laid out exactly as
            // `PyOwned` (`repr(transparent)` over a non-null pointer in both).
            None => unsafe { &*(self as *const KeyCell).cast::<PyOwned>() },
        }
    }

    #[inline]
    fn expiry(&self) -> Option<&EntryExpiry> {
        self.with_expiry().map(|both| &both.expiry)
    }
}

impl Drop for KeyCell {
    fn drop(&mut self) {
        match self.with_expiry() {
            Some(both) => {
                let raw = (both as *const KeyAndExpiry).cast_mut();
                // SAFETY: the cell owned this box (see `KeyCell::new`) and is going away.
                drop(unsafe { Box::from_raw(raw) });
            }
            // SAFETY: the cell owned this reference (see `KeyCell::new`); `PyOwned`
            // releases it the deferred way, like every other reference the engine drops.
            None => drop(unsafe { PyOwned::from_raw(self.0.cast()) }),
        }
    }
}

// SAFETY: a `KeyCell` owns a `PyOwned` (Send + Sync, see pyref.rs) and, possibly, an
// `EntryExpiry` (plain data and atomics), through a pointer nothing else aliases.
unsafe impl Send for KeyCell {}
// SAFETY: see `Send`; shared access only reads.
unsafe impl Sync for KeyCell {}
