//! The key bridge: how Python keys are hashed, stored and found in the engine.
//!
//! The engine stores each entry under an [`EngineKey`]: the entry's [`Slot`] (its
//! Python hash plus a collision probe, see `slot.rs`) and a weak reference to the
//! entry's node, which owns the Python key. Stored keys compare by slot only, so
//! whatever moka does with them on its own — inserting, evicting, expiring, under its
//! locks — never runs Python code. The reference is weak because moka's table keeps
//! the keys of removed entries as tombstones until it rehashes: a removed entry's
//! Python key is released with its node, and lookups skip it without comparing.
//!
//! A lookup reads the stored key through the weak reference without upgrading it
//! (`WeakNode::with_key`): on GIL builds a live node cannot be dropped while the GIL is
//! held, and [`compare`] takes a reference to the stored key before it runs any Python
//! `__eq__`, which may let other threads remove the entry.
//!
//! Lookups go through [`LookupKey`], which moka compares against stored keys with
//! [`equivalent::Equivalent`]: same slot, then the same object or `==`, like a dict.
//! moka only makes that comparison from `get` and `contains_key`, which hold no
//! lock while probing their table, so a key's `__eq__` may do anything — block,
//! switch threads, call back into the cache. Its exception is kept and re-raised
//! once the engine call has returned. Paths that do hold a lock (remove, compute)
//! are given a [`SlotKey`], which compares slots only.

use std::cell::Cell;
use std::hash::{Hash, Hasher};

use equivalent::Equivalent;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyFloat, PyInt, PyString, PyTuple};

use crate::errors::{self, Error, Result};
use crate::noderef::{NodeRef, WeakNode};
use crate::slot::Slot;

/// The key's Python hash (`hash(key)`), with its exception if it has none.
#[inline]
pub fn hash(key: &Bound<'_, PyAny>) -> Result<isize> {
    // SAFETY: `key` is a live object and we are attached.
    let hash = unsafe { ffi::PyObject_Hash(key.as_ptr()) };
    if hash == -1 {
        return Err(errors::fetch(key.py()));
    }
    Ok(hash)
}

/// How the engine stores a key.
pub struct EngineKey {
    slot: Slot,
    node: WeakNode,
}

impl EngineKey {
    pub fn new(slot: Slot, node: &NodeRef) -> Self {
        EngineKey {
            slot,
            node: NodeRef::downgrade(node),
        }
    }

    #[inline]
    pub fn slot(&self) -> Slot {
        self.slot
    }

    /// Compares the entry's Python key with `probe`; `None` if the entry is gone (a
    /// tombstone), which equals nothing and leaves its slot free.
    #[inline]
    fn compare_live(&self, probe: &Bound<'_, PyAny>) -> Option<Result<Comparison>> {
        self.node
            .with_key(probe.py(), |stored| compare(&stored, probe))
    }
}

impl Hash for EngineKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.slot.hash(state);
    }
}

impl PartialEq for EngineKey {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.slot == other.slot
    }
}

impl Eq for EngineKey {}

/// Finds whatever entry occupies a slot, without looking at Python keys.
#[derive(Clone, Copy)]
pub struct SlotKey(pub Slot);

impl Hash for SlotKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl Equivalent<EngineKey> for SlotKey {
    #[inline]
    fn equivalent(&self, stored: &EngineKey) -> bool {
        self.0 == stored.slot
    }
}

/// What happened while moka compared a [`LookupKey`] against stored keys.
#[derive(Default)]
pub struct Comparisons {
    ran_python: Cell<bool>,
    saw_other_key: Cell<bool>,
    failed: Cell<bool>,
    /// The exception a comparison raised (boxed: the error-free path stays small).
    error: Cell<Option<Box<Error>>>,
}

impl Comparisons {
    /// Whether the slot held a different key (a hash collision): the lookup missed,
    /// but the slot is not free.
    pub fn saw_other_key(&self) -> bool {
        self.saw_other_key.get()
    }

    /// Whether a user `__eq__` may have run (and released the GIL, letting other
    /// threads change the cache meanwhile).
    pub fn ran_python(&self) -> bool {
        self.ran_python.get()
    }

    /// The exception a comparison raised, if any.
    pub fn take_error(&self) -> Option<Error> {
        self.error.take().map(|e| *e)
    }

    #[inline]
    fn failed(&self) -> bool {
        self.failed.get()
    }

    /// Raises the exception a comparison raised, if any.
    #[inline]
    pub fn check(&self) -> Result<()> {
        if self.failed() {
            if let Some(err) = self.take_error() {
                return Err(err);
            }
        }
        Ok(())
    }
}

/// Finds the entry of a Python key at one of its slots.
pub struct LookupKey<'a, 'py> {
    slot: Slot,
    key: &'a Bound<'py, PyAny>,
    comparisons: &'a Comparisons,
}

impl<'a, 'py> LookupKey<'a, 'py> {
    pub fn new(slot: Slot, key: &'a Bound<'py, PyAny>, comparisons: &'a Comparisons) -> Self {
        LookupKey {
            slot,
            key,
            comparisons,
        }
    }
}

impl Hash for LookupKey<'_, '_> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.slot.hash(state);
    }
}

impl Equivalent<EngineKey> for LookupKey<'_, '_> {
    /// moka calls this for every key it probes, about 2.5 per miss, and nearly all of
    /// them belong to other slots: that test stays inline in moka's probe loop.
    #[inline(always)]
    fn equivalent(&self, stored: &EngineKey) -> bool {
        self.slot == stored.slot && self.same_slot_equivalent(stored)
    }
}

impl LookupKey<'_, '_> {
    /// `equivalent` for a stored key in this key's slot: the same key, or a collision.
    #[inline(never)]
    fn same_slot_equivalent(&self, stored: &EngineKey) -> bool {
        if self.comparisons.failed() {
            return false;
        }
        let Some(outcome) = stored.compare_live(self.key) else {
            return false;
        };
        match outcome {
            Ok(outcome) => {
                if outcome.ran_python {
                    self.comparisons.ran_python.set(true);
                }
                if !outcome.equal {
                    self.comparisons.saw_other_key.set(true);
                }
                outcome.equal
            }
            Err(err) => {
                self.comparisons.error.set(Some(Box::new(err)));
                self.comparisons.failed.set(true);
                false
            }
        }
    }
}

/// The outcome of comparing two keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Comparison {
    pub equal: bool,
    /// Whether Python code may have run (a user `__eq__`).
    pub ran_python: bool,
}

/// Compares a stored key with a lookup key, as a dict does: identity, then `==`.
#[inline]
pub fn compare(stored: &Borrowed<'_, '_, PyAny>, probe: &Bound<'_, PyAny>) -> Result<Comparison> {
    if stored.as_ptr() == probe.as_ptr() {
        return Ok(Comparison {
            equal: true,
            ran_python: false,
        });
    }
    let ran_python = !compares_natively(stored, probe, 0);
    // Python code may let other threads run and remove the entry, releasing its key:
    // hold a reference of our own while `==` runs. (Spelled out: `stored.to_owned()` on a
    // `&Borrowed` would resolve to `Clone`'s copy of the borrow and hold nothing.)
    let _held: Option<Bound<'_, PyAny>> = ran_python.then(|| Borrowed::to_owned(*stored));
    // SAFETY: both objects are alive and we are attached.
    let result =
        unsafe { ffi::PyObject_RichCompareBool(stored.as_ptr(), probe.as_ptr(), ffi::Py_EQ) };
    if result < 0 {
        return Err(errors::fetch(probe.py()));
    }
    Ok(Comparison {
        equal: result == 1,
        ran_python,
    })
}

/// What `==` does with an object, as far as [`compares_natively`] needs to know.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Native {
    Str,
    Bytes,
    /// `int`, `float` and `bool`, which compare with each other.
    Number,
    None,
    Tuple,
}

fn native_kind(obj: &Bound<'_, PyAny>) -> Option<Native> {
    if obj.is_exact_instance_of::<PyString>() {
        Some(Native::Str)
    } else if obj.is_exact_instance_of::<PyInt>()
        || obj.is_exact_instance_of::<PyFloat>()
        || obj.is_exact_instance_of::<PyBool>()
    {
        Some(Native::Number)
    } else if obj.is_exact_instance_of::<PyBytes>() {
        Some(Native::Bytes)
    } else if obj.is_none() {
        Some(Native::None)
    } else if obj.is_exact_instance_of::<PyTuple>() {
        Some(Native::Tuple)
    } else {
        None
    }
}

/// Whether `a == b` runs only CPython's own C code, never Python code: exact built-in
/// scalars, and tuples of them compared item by item.
///
/// `bytes` against `str` or `int` is left out: under `python -b` that comparison issues a
/// `BytesWarning`, and the warnings machinery is Python code (`showwarning`, filters),
/// which may let other threads run. Whatever may run Python makes `compare` hold its own
/// reference to the stored key, and makes writes re-check what they found.
fn compares_natively(a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>, depth: u32) -> bool {
    let (Some(x), Some(y)) = (native_kind(a), native_kind(b)) else {
        return false;
    };
    match (x, y) {
        (Native::Bytes, Native::Str | Native::Number)
        | (Native::Str | Native::Number, Native::Bytes) => false,
        (Native::Tuple, Native::Tuple) => {
            // A tuple compares its items pairwise until one differs (then its lengths).
            depth < 4
                && match (a.cast_exact::<PyTuple>(), b.cast_exact::<PyTuple>()) {
                    (Ok(a), Ok(b)) => a
                        .iter()
                        .zip(b.iter())
                        .all(|(x, y)| compares_natively(&x, &y, depth + 1)),
                    _ => false,
                }
        }
        _ => true,
    }
}
