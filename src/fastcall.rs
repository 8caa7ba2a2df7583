//! `Moka.get` and `Moka.get_with` called without PyO3's generic argument handling.
//!
//! `cache.get(key)` is the call users make most. PyO3 routes every method call
//! through a trampoline (attach guard, panic trap, reference-pool check) and a
//! table-driven argument parser. This module replaces each method's descriptor with
//! one whose entry point handles the common shapes directly: `get(key)`,
//! `get(key, default)` and `get_with(key, initializer)`. That saves about 100
//! instructions of a `get` (callgrind, CPython 3.11), next to about 900 in moka
//! itself. Every other shape (keywords, a wrong number of arguments) is handed to
//! PyO3's own entry point, so its error messages and keyword handling stay PyO3's.
//!
//! The replacement keeps the original's name and docstring (with its
//! `__text_signature__`), so `help()` and `inspect.signature` are unchanged, and it
//! is a method descriptor of `Moka`, so CPython checks `self` before calling it.
//!
//! Without PyO3's trampoline, PyO3 does not know the thread is attached, so a `Py<T>`
//! dropped on these paths would wait in PyO3's pool until the next wrapped call. The
//! paths hold `Bound` references and [`crate::pyref::PyOwned`] instead, errors are
//! raised through [`crate::errors::into_return`], which tells PyO3, and
//! `tests/test_call_shapes.py` checks that nothing is left behind. `vectorcall.rs`
//! works the same way.
//!
//! PyPy and GraalPy emulate CPython's descriptors; there both stay PyO3's.

use pyo3::prelude::*;
#[cfg(not(any(PyPy, GraalPy)))]
use pyo3::{ffi, types::PyType, Borrowed};
#[cfg(not(any(PyPy, GraalPy)))]
use std::sync::OnceLock;

#[cfg(not(any(PyPy, GraalPy)))]
use crate::cache::Moka;

/// PyO3's entry points, for the call shapes the fast ones pass on.
#[cfg(not(any(PyPy, GraalPy)))]
static PYO3_GET: OnceLock<ffi::PyCFunctionFastWithKeywords> = OnceLock::new();
#[cfg(not(any(PyPy, GraalPy)))]
static PYO3_GET_WITH: OnceLock<ffi::PyCFunctionFastWithKeywords> = OnceLock::new();

/// Replaces the descriptors of `Moka.get` and `Moka.get_with`. Runs once, from the
/// module's initialization, before any other code can see the type.
#[cfg(not(any(PyPy, GraalPy)))]
pub fn install(py: Python<'_>) -> PyResult<()> {
    let ty = py.get_type::<Moka>();
    replace(&ty, "get", get, &PYO3_GET)?;
    replace(&ty, "get_with", get_with, &PYO3_GET_WITH)
}

/// Rebinds the method `name` of `ty` to `fast`, keeping its name and docstring, and
/// keeps PyO3's entry point in `pyo3_entry`. Leaves the method alone if PyO3 did not
/// bind it as a fastcall method descriptor.
#[cfg(not(any(PyPy, GraalPy)))]
fn replace(
    ty: &Bound<'_, PyType>,
    name: &str,
    fast: ffi::PyCFunctionFastWithKeywords,
    pyo3_entry: &OnceLock<ffi::PyCFunctionFastWithKeywords>,
) -> PyResult<()> {
    let py = ty.py();
    let descr = ty.getattr("__dict__")?.get_item(name)?;
    // SAFETY: the type check makes the cast to `PyMethodDescrObject` valid; a method
    // descriptor's `d_method` points at a definition that lives as long as the type.
    let original = unsafe {
        if ffi::Py_TYPE(descr.as_ptr()) != std::ptr::addr_of_mut!(ffi::PyMethodDescr_Type) {
            return Ok(());
        }
        *(*descr.as_ptr().cast::<ffi::PyMethodDescrObject>()).d_method
    };
    if original.ml_flags != ffi::METH_FASTCALL | ffi::METH_KEYWORDS {
        // A PyO3 that binds methods another way: keep its entry point, which is
        // slower but correct (`tests/test_call_shapes.py` checks the shapes either way).
        return Ok(());
    }
    // SAFETY: the flags just checked say which member of the union is set.
    pyo3_entry.get_or_init(|| unsafe { original.ml_meth.PyCFunctionFastWithKeywords });
    // Leaked: a method descriptor borrows its definition for as long as it lives.
    let definition = Box::leak(Box::new(ffi::PyMethodDef {
        ml_name: original.ml_name,
        ml_meth: ffi::PyMethodDefPointer {
            PyCFunctionFastWithKeywords: fast,
        },
        ml_flags: original.ml_flags,
        ml_doc: original.ml_doc,
    }));
    // SAFETY: `definition` outlives the descriptor; `ty` is a live heap type.
    let fast_descr = unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyDescr_NewMethod(ty.as_type_ptr(), std::ptr::from_mut(definition)),
        )?
    };
    // `setattr` on the class also resets CPython's method cache for the type.
    ty.setattr(name, fast_descr)
}

#[cfg(any(PyPy, GraalPy))]
pub fn install(_py: Python<'_>) -> PyResult<()> {
    Ok(())
}

/// `Moka.get(self, key, default=None)`.
#[cfg(not(any(PyPy, GraalPy)))]
unsafe extern "C" fn get(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let call = Call {
        slf,
        args,
        nargs,
        kwnames,
    };
    // SAFETY: the arguments are as CPython passed them.
    unsafe {
        call.run(&PYO3_GET, "Moka.get", 1..=2, |this, key, default| {
            this.get(&key, default.map(|default| Bound::clone(&default)))
        })
    }
}

/// `Moka.get_with(self, key, initializer, ttl=None, tti=None)`.
#[cfg(not(any(PyPy, GraalPy)))]
unsafe extern "C" fn get_with(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let call = Call {
        slf,
        args,
        nargs,
        kwnames,
    };
    // SAFETY: the arguments are as CPython passed them.
    unsafe {
        call.run(
            &PYO3_GET_WITH,
            "Moka.get_with",
            2..=2,
            |this, key, initializer| {
                let initializer = initializer.expect("two positional arguments");
                this.get_with(&key, &initializer, None, None)
            },
        )
    }
}

/// A call of a fast entry point, as CPython made it.
#[cfg(not(any(PyPy, GraalPy)))]
struct Call {
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
}

#[cfg(not(any(PyPy, GraalPy)))]
impl Call {
    /// Runs `body` on the cache and its one or two positional arguments if the call
    /// has no keywords and a count of positional arguments in `positional` (within
    /// 1..=2); hands any other call to PyO3's entry point.
    ///
    /// # Safety
    /// The call is one CPython made to a fast entry point of a `Moka` method.
    #[inline(always)]
    unsafe fn run(
        self,
        pyo3_entry: &OnceLock<ffi::PyCFunctionFastWithKeywords>,
        what: &str,
        positional: std::ops::RangeInclusive<ffi::Py_ssize_t>,
        body: impl for<'a, 'py> FnOnce(
            &Moka,
            Borrowed<'a, 'py, PyAny>,
            Option<Borrowed<'a, 'py, PyAny>>,
        ) -> PyResult<Bound<'py, PyAny>>,
    ) -> *mut ffi::PyObject {
        let Call {
            slf,
            args,
            nargs,
            kwnames,
        } = self;
        if !kwnames.is_null() || !positional.contains(&nargs) {
            // SAFETY: see the function's contract.
            return unsafe { pass_on(pyo3_entry, slf, args, nargs, kwnames) };
        }
        // SAFETY: CPython calls methods from an attached thread.
        let py = unsafe { Python::assume_attached() };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: the descriptor checked that `slf` is a `Moka` (or a subclass),
            // and `args` holds `nargs` (1 or 2) borrowed positional arguments.
            unsafe {
                let this = Borrowed::from_ptr(py, slf).cast_unchecked::<Moka>();
                let first = Borrowed::from_ptr(py, *args);
                let second = (nargs == 2).then(|| Borrowed::from_ptr(py, *args.add(1)));
                body(this.get(), first, second)
            }
        }));
        crate::errors::into_return(py, outcome, what)
    }
}

/// Calls PyO3's own entry point for a call shape the fast path does not handle.
///
/// # Safety
/// The arguments are those CPython passed to the fast entry point.
#[cfg(not(any(PyPy, GraalPy)))]
#[inline(never)]
unsafe fn pass_on(
    pyo3_entry: &OnceLock<ffi::PyCFunctionFastWithKeywords>,
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let entry = pyo3_entry
        .get()
        .expect("set before the fast descriptor exists");
    // SAFETY: see the function's contract.
    unsafe { entry(slf, args, nargs, kwnames) }
}
