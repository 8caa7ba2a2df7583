//! The engine's value type: one cache entry's key, value and bookkeeping.
//!
//! The node owns the entry's Python key; the engine's key only refers to it weakly
//! (see `keys.rs`), so that moka's table, which keeps removed keys around as
//! tombstones until it rehashes, never keeps a removed Python key alive.
//!
//! Nodes are shared as `NodeRef` handles (`noderef.rs`).
//!
//! A node is 40 bytes with its reference counts, and that size is worth keeping:
//! at 48 bytes the allocator's size classes cost ~33 more bytes per entry (measured
//! by `benchmarks/memory.py`). The key and the value, which every lookup reads, stay
//! in the node; the weight, the collision probe and the per-entry expiration state,
//! which lookups rarely need, share one word (see [`Meta`]).

use pyo3::prelude::*;

use crate::expiry::EntryExpiry;
use crate::pyref::PyOwned;

/// One cache entry, shared between the engine and in-flight calls as a
/// [`NodeRef`](crate::noderef::NodeRef).
pub struct Node {
    key: PyOwned,
    value: ValueCell,
    meta: Meta,
}

const _: () = assert!(
    std::mem::size_of::<Node>() <= 24,
    "a bigger node costs memory, see the module docs"
);

impl Node {
    pub fn new(
        key: PyOwned,
        value: PyOwned,
        weight: u32,
        probe: u32,
        expiry: Option<EntryExpiry>,
    ) -> Node {
        Node {
            key,
            value: ValueCell::new(value),
            meta: Meta::new(weight, probe, expiry),
        }
    }

    /// The entry's key.
    #[inline]
    pub fn key(&self) -> &PyOwned {
        &self.key
    }

    #[inline]
    pub fn weight(&self) -> u32 {
        self.meta.weight()
    }

    /// Which collision probe of its hash this entry occupies (see `slot.rs`).
    #[inline]
    pub fn probe(&self) -> u32 {
        self.meta.probe()
    }

    /// Whether reads change this entry's expiration (per-entry tti, a read hook); the
    /// read path skips the expiration state of the others.
    #[inline]
    pub fn reads_matter(&self) -> bool {
        self.meta.reads_matter()
    }

    /// Per-entry expiration state; `None` for entries that only follow the
    /// cache-wide ttl/tti (or none at all).
    #[inline]
    pub fn expiry(&self) -> Option<&EntryExpiry> {
        self.meta.extra().and_then(|extra| extra.expiry.as_ref())
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
            .field("weight", &self.weight())
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

/// An entry's weight, collision probe and expiration state, in one word.
///
/// Most entries have no expiration state of their own: their weight and probe are
/// packed into the word itself, tagged by its low bit ([`INLINE`]). The others point
/// to a boxed [`Extra`] (box addresses are 8-byte aligned, so the low bits are free),
/// with [`READS_MATTER`] in the pointer's second bit so that the read path can skip
/// the box without loading it. Probes above 2**30, and 32-bit targets, use the box.
struct Meta(*mut Extra);

struct Extra {
    weight: u32,
    probe: u32,
    expiry: Option<EntryExpiry>,
}

const INLINE: usize = 0b01;
const READS_MATTER: usize = 0b10;
const TAGS: usize = INLINE | READS_MATTER;
const PROBE_BITS: u32 = 30;
const _: () = assert!(std::mem::align_of::<Extra>() > TAGS);

impl Meta {
    fn new(weight: u32, probe: u32, expiry: Option<EntryExpiry>) -> Meta {
        if expiry.is_none() && probe < 1 << PROBE_BITS && cfg!(target_pointer_width = "64") {
            #[allow(clippy::cast_possible_truncation)] // 64-bit targets only, see above
            let packed = ((u64::from(weight) << 32) | (u64::from(probe) << 2)) as usize;
            return Meta(std::ptr::without_provenance_mut(packed | INLINE));
        }
        let reads_matter = expiry.as_ref().is_some_and(EntryExpiry::reads_matter);
        let extra = Box::into_raw(Box::new(Extra {
            weight,
            probe,
            expiry,
        }));
        Meta(extra.map_addr(|a| a | if reads_matter { READS_MATTER } else { 0 }))
    }

    /// The packed word of an inline `Meta`, or the box of the others.
    #[inline]
    fn unpack(&self) -> Result<u64, &Extra> {
        let word = self.0.addr();
        if word & INLINE != 0 {
            return Ok(word as u64);
        }
        // SAFETY: an untagged word is the pointer `Box::into_raw` gave in `Meta::new`,
        // with at most READS_MATTER added; the box lives as long as `self`.
        Err(unsafe { &*self.0.map_addr(|a| a & !TAGS) })
    }

    #[inline]
    fn extra(&self) -> Option<&Extra> {
        self.unpack().err()
    }

    #[inline]
    fn weight(&self) -> u32 {
        match self.unpack() {
            Ok(word) => (word >> 32) as u32,
            Err(extra) => extra.weight,
        }
    }

    #[inline]
    fn probe(&self) -> u32 {
        match self.unpack() {
            Ok(word) => ((word >> 2) & ((1 << PROBE_BITS) - 1)) as u32,
            Err(extra) => extra.probe,
        }
    }

    #[inline]
    fn reads_matter(&self) -> bool {
        self.0.addr() & READS_MATTER != 0
    }
}

impl Drop for Meta {
    fn drop(&mut self) {
        if self.0.addr() & INLINE == 0 {
            // SAFETY: as in `unpack`; the box is dropped once, with its node.
            drop(unsafe { Box::from_raw(self.0.map_addr(|a| a & !TAGS)) });
        }
    }
}

// SAFETY: a `Meta` is either plain bits or the only pointer to its `Extra` (plain data
// and atomics, themselves Send + Sync).
unsafe impl Send for Meta {}
// SAFETY: see `Send`; shared access only reads, or uses the atomics inside.
unsafe impl Sync for Meta {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_and_probe_pack_into_the_word() {
        for (weight, probe) in [(0, 0), (1, 0), (u32::MAX, 0), (7, (1 << PROBE_BITS) - 1)] {
            let meta = Meta::new(weight, probe, None);
            assert!(meta.unpack().is_ok());
            assert!(meta.extra().is_none());
            assert_eq!((meta.weight(), meta.probe()), (weight, probe));
            assert!(!meta.reads_matter());
        }
    }

    #[test]
    fn large_probes_and_expiry_state_go_to_the_box() {
        let meta = Meta::new(u32::MAX, 1 << PROBE_BITS, None);
        assert!(meta.unpack().is_err());
        assert_eq!((meta.weight(), meta.probe()), (u32::MAX, 1 << PROBE_BITS));
        assert!(meta.extra().is_some_and(|extra| extra.expiry.is_none()));

        let fixed = EntryExpiry::new(Some(std::time::Duration::from_secs(5)), None, None, false);
        let meta = Meta::new(3, 9, Some(fixed));
        assert_eq!((meta.weight(), meta.probe()), (3, 9));
        assert!(meta.extra().is_some_and(|extra| extra.expiry.is_some()));
        assert!(!meta.reads_matter());

        let idle = EntryExpiry::new(None, None, Some(std::time::Duration::from_secs(5)), false);
        let meta = Meta::new(1, 0, Some(idle));
        assert!(meta.reads_matter(), "a per-entry tti changes on every read");
        assert_eq!((meta.weight(), meta.probe()), (1, 0));
    }
}
