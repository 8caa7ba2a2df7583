//! The crate's one error type and its mapping to Python exceptions.
//!
//! Every fallible function returns [`Result`]; the conversion to `PyErr` lives here
//! so the exception type chosen for each kind of failure is decided in one place.

use pyo3::exceptions::{PyKeyError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;

/// Everything that can go wrong inside the binding.
#[derive(Debug)]
pub enum Error {
    /// An exception raised by user code (`__hash__`, `__eq__`, a callback), or by
    /// CPython itself. It reaches the caller unchanged.
    Python(PyErr),
    /// A bad argument type. The message names the argument.
    Type(String),
    /// A bad argument value. The message names the argument.
    Value(String),
    /// A call that cannot proceed, such as re-entering `get_with` for the same key.
    Runtime(String),
    /// `cache[key]` or `del cache[key]` on an absent key.
    MissingKey(Py<PyAny>),
}

/// The result type of every fallible operation in this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn type_error(message: impl Into<String>) -> Self {
        Error::Type(message.into())
    }

    pub fn value_error(message: impl Into<String>) -> Self {
        Error::Value(message.into())
    }
}

impl From<PyErr> for Error {
    fn from(err: PyErr) -> Self {
        Error::Python(err)
    }
}

impl From<Error> for PyErr {
    fn from(err: Error) -> Self {
        match err {
            Error::Python(err) => err,
            Error::Type(message) => PyTypeError::new_err(message),
            Error::Value(message) => PyValueError::new_err(message),
            Error::Runtime(message) => PyRuntimeError::new_err(message),
            Error::MissingKey(key) => PyKeyError::new_err((key,)),
        }
    }
}

/// Fetches the exception a failed CPython API call left set.
///
/// A C API that signals failure without setting an exception is a CPython bug; PyO3
/// then synthesizes a `SystemError`, which is still better than a silent wrong answer.
pub fn fetch(py: Python<'_>) -> Error {
    Error::Python(PyErr::fetch(py))
}

/// Hands the outcome of a raw C entry point (one PyO3's trampoline does not wrap, see
/// `vectorcall.rs` and `fastcall.rs`) back to CPython: a new reference, or null with
/// the exception set. A panic becomes a `PanicException` naming the call.
#[cfg(not(any(PyPy, GraalPy)))]
#[inline(always)]
pub fn into_return(
    py: Python<'_>,
    outcome: std::thread::Result<PyResult<Bound<'_, PyAny>>>,
    what: &str,
) -> *mut pyo3::ffi::PyObject {
    match outcome {
        Ok(Ok(result)) => result.into_ptr(),
        failed => raise_failure(py, failed, what),
    }
}

/// The failing half of [`into_return`], out of the hot path.
#[cfg(not(any(PyPy, GraalPy)))]
#[cold]
#[inline(never)]
fn raise_failure(
    py: Python<'_>,
    outcome: std::thread::Result<PyResult<Bound<'_, PyAny>>>,
    what: &str,
) -> *mut pyo3::ffi::PyObject {
    match outcome {
        Ok(Ok(result)) => result.into_ptr(),
        Ok(Err(err)) => {
            raise(py, err);
            std::ptr::null_mut()
        }
        Err(_) => {
            let message = format!("a moka_py {what} call panicked");
            raise(py, pyo3::panic::PanicException::new_err(message));
            std::ptr::null_mut()
        }
    }
}

/// Sets `err` as the current exception, from an entry point PyO3 did not wrap.
///
/// Restoring an error that was built lazily (ours are) creates the exception and drops
/// the references PyO3 held to build it. PyO3 releases such references at once only
/// when it knows the thread is attached, which it learns from its own trampoline;
/// otherwise they wait in its pool until the next wrapped call. `try_attach` tells it
/// (the thread is attached already, so this only counts); if the interpreter is
/// shutting down and PyO3 declines, the references wait instead.
#[cfg(not(any(PyPy, GraalPy)))]
#[cold]
fn raise(py: Python<'_>, err: PyErr) {
    let mut err = Some(err);
    Python::try_attach(|py| {
        if let Some(err) = err.take() {
            err.restore(py);
        }
    });
    if let Some(err) = err {
        err.restore(py);
    }
}
