//! Calling a `@cached` wrapper without packing its arguments into a tuple (PEP 590).
//!
//! PyO3 gives a class's `__call__` only the `tp_call` slot (PyO3 issue #4252), so for
//! every `f(x)` CPython builds a tuple `(x,)` and PyO3 unpacks it again. The wrapper
//! therefore also accepts vectorcall: its type advertises `Py_TPFLAGS_HAVE_VECTORCALL`
//! and every instance holds [`SLOT`] at the offset the type names. The common call,
//! one `str` or `int` argument and no keywords, goes straight to the lookup; every
//! other call is packed as `tp_call` would have packed it and runs the same code as
//! `__call__`, so both entry points behave alike (PEP 590 requires that).
//!
//! PyPy and GraalPy emulate CPython's type objects; there the wrapper keeps `tp_call`.

use pyo3::prelude::*;
#[cfg(not(any(PyPy, GraalPy)))]
use pyo3::{ffi, types::PyDict, types::PyTuple, Borrowed};

#[cfg(not(any(PyPy, GraalPy)))]
use crate::cached::CachedFunction;

/// What each wrapper stores for CPython to find (`None`: calls use `tp_call`).
#[cfg(not(any(PyPy, GraalPy)))]
pub type Slot = Option<ffi::vectorcallfunc>;
#[cfg(any(PyPy, GraalPy))]
pub type Slot = Option<()>;

#[cfg(not(any(PyPy, GraalPy)))]
pub const SLOT: Slot = Some(call);
#[cfg(any(PyPy, GraalPy))]
pub const SLOT: Slot = None;

/// Makes `CachedFunction` instances callable by vectorcall. Runs once, from the
/// module's initialization, before any other code can see the type.
#[cfg(not(any(PyPy, GraalPy)))]
pub fn install(py: Python<'_>) -> PyResult<()> {
    // Where the slot sits inside an instance: measured on a throwaway one, since
    // PyO3 does not publish its object layout.
    let probe = Bound::new(py, CachedFunction::placeholder(py)?)?;
    let offset =
        (probe.get().vectorcall_slot() as *const Slot as isize) - (probe.as_ptr() as isize);
    let ty = py.get_type::<CachedFunction>();
    // SAFETY: `ty` is CachedFunction's heap type, fully initialized and not yet
    // published (the module is still being initialized); every instance stores
    // `SLOT`, a valid vectorcall function, at `offset`, and the type keeps its
    // `tp_call`, which gives the same results.
    unsafe {
        let raw = ty.as_type_ptr();
        (*raw).tp_vectorcall_offset = offset;
        #[cfg(not(Py_GIL_DISABLED))]
        {
            (*raw).tp_flags |= ffi::Py_TPFLAGS_HAVE_VECTORCALL;
        }
        // The free-threaded build declares `tp_flags` atomic; nothing else can see
        // the type yet, so the ordering does not matter.
        #[cfg(Py_GIL_DISABLED)]
        {
            let vectorcall = ffi::Py_TPFLAGS_HAVE_VECTORCALL;
            (*raw)
                .tp_flags
                .fetch_or(vectorcall, std::sync::atomic::Ordering::Relaxed);
        }
    }
    Ok(())
}

#[cfg(any(PyPy, GraalPy))]
pub fn install(_py: Python<'_>) -> PyResult<()> {
    Ok(())
}

/// The vectorcall entry point: `callable(*args[..nargs], **dict(zip(kwnames, rest)))`.
#[cfg(not(any(PyPy, GraalPy)))]
unsafe extern "C" fn call(
    callable: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython makes vectorcalls from an attached thread.
    let py = unsafe { Python::assume_attached() };
    // `tp_call` counted each call against the recursion limit; so does this path, so
    // a runaway recursive cached function still ends in RecursionError at the same depth.
    // SAFETY: attached; the message is a NUL-terminated static string.
    if unsafe { ffi::Py_EnterRecursiveCall(c" while calling a moka_py.CachedFunction".as_ptr()) }
        != 0
    {
        return std::ptr::null_mut();
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: CPython passes our own instance and a valid argument vector.
        unsafe { dispatch(py, callable, args, nargsf, kwnames) }
    }));
    // SAFETY: paired with the successful `Py_EnterRecursiveCall` above.
    unsafe { ffi::Py_LeaveRecursiveCall() };
    crate::errors::into_return(py, outcome, "CachedFunction")
}

/// # Safety
/// `callable` is a `CachedFunction`; `args` holds `nargs` positional arguments
/// followed by one value per name in `kwnames` (a tuple, or null for none).
#[cfg(not(any(PyPy, GraalPy)))]
unsafe fn dispatch<'py>(
    py: Python<'py>,
    callable: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: see the function's contract.
    unsafe {
        let wrapper = Borrowed::from_ptr(py, callable).cast_unchecked::<CachedFunction>();
        let this = wrapper.get();
        let nargs = ffi::PyVectorcall_NARGS(nargsf) as usize;
        let names = (!kwnames.is_null())
            .then(|| Borrowed::from_ptr(py, kwnames).cast_unchecked::<PyTuple>());
        let nkw = names.as_ref().map_or(0, |names| names.len());
        let all: &[*mut ffi::PyObject] = if nargs + nkw == 0 {
            &[]
        } else {
            std::slice::from_raw_parts(args, nargs + nkw)
        };
        if nargs == 1 && nkw == 0 {
            let only = Borrowed::from_ptr(py, all[0]);
            if this.is_own_key(&only) {
                return this.call_own_key(&only);
            }
        }
        let positional = PyTuple::new(py, all[..nargs].iter().map(|&p| Borrowed::from_ptr(py, p)))?;
        let kwargs = match names {
            Some(names) if nkw > 0 => {
                let kwargs = PyDict::new(py);
                for (name, &value) in names.iter().zip(&all[nargs..]) {
                    kwargs.set_item(name, Borrowed::from_ptr(py, value))?;
                }
                Some(kwargs)
            }
            _ => None,
        };
        this.call(&positional, kwargs.as_ref())
    }
}
