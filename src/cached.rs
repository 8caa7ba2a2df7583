//! The hot path of `@cached`: building the key and looking it up in one native call
//! (reached without an argument tuple on CPython, see `vectorcall.rs`).
//!
//! `moka_py.cached` (Python, `_cached.py`) decides the configuration and wraps sync
//! functions in a [`CachedFunction`]; async functions get a Python `async def`
//! wrapper that calls [`CachedFunction::_lookup`] and [`CachedFunction::_remember`].
//! Keys are built exactly as `functools.lru_cache` builds them, so two calls share
//! an entry exactly when they would share one there.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyInt, PyString, PyTuple, PyType};
use pyo3::{PyTraverseError, PyVisit};

use crate::cache::Moka;
use crate::errors::Error;
use crate::keys;
use crate::settle::Settle;
use crate::stats::Counter;
use crate::store::{EntryOptions, Store};
use crate::vectorcall;

/// Separates positional from keyword arguments inside a key, like `lru_cache`'s.
fn keyword_mark(py: Python<'_>) -> &Bound<'_, PyAny> {
    static MARK: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    MARK.get_or_init(py, || {
        py.import("builtins")
            .and_then(|b| b.getattr("object"))
            .and_then(|object| object.call0())
            .expect("object() cannot fail")
            .unbind()
    })
    .bind(py)
}

/// Whether a lone positional argument is its own key: an exact `str` or `int`, the
/// types `lru_cache` does not wrap in a tuple (its `fasttypes`).
#[inline]
fn is_own_key_type(arg: &Bound<'_, PyAny>) -> bool {
    arg.is_exact_instance_of::<PyString>() || arg.is_exact_instance_of::<PyInt>()
}

/// The object returned by `@cached` for a regular (sync) function.
///
/// Calling it returns the cached result for equal arguments, or calls the wrapped
/// function and caches what it returns (exceptions are never cached).
#[pyclass(frozen, module = "moka_py", dict, weakref)]
pub struct CachedFunction {
    /// Where CPython finds this wrapper's vectorcall function (see `vectorcall.rs`).
    #[cfg_attr(any(PyPy, GraalPy), allow(dead_code))]
    vectorcall: vectorcall::Slot,
    func: Py<PyAny>,
    cache: Py<Moka>,
    /// `maxsize` as given (any int, as `lru_cache` accepts), for `cache_info()`,
    /// `cache_parameters()` and the repr; the cache holds the engine's own bound.
    maxsize: Option<Py<PyInt>>,
    /// `maxsize=0`: nothing is cached, calls are only counted.
    disabled: bool,
    typed: bool,
    key: Option<Py<PyAny>>,
    wait_concurrent: bool,
    hits: Counter,
    misses: Counter,
}

impl CachedFunction {
    /// The cache key for a call, as `functools.lru_cache` builds it.
    fn make_key<'py>(
        &self,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = args.py();
        if let Some(key) = &self.key {
            return key.bind(py).call(args, kwargs);
        }
        let kwargs = kwargs.filter(|k| !k.is_empty());
        if !self.typed && kwargs.is_none() {
            if args.len() == 1 {
                let only = args.get_item(0)?;
                if is_own_key_type(&only) {
                    return Ok(only);
                }
            }
            return Ok(args.clone().into_any());
        }
        let mut items: Vec<Bound<'py, PyAny>> = args.iter().collect();
        if let Some(kwargs) = kwargs {
            items.push(keyword_mark(py).clone());
            for (name, value) in kwargs.iter() {
                items.push(name);
                items.push(value);
            }
        }
        if self.typed {
            for arg in args.iter() {
                items.push(arg.get_type().into_any());
            }
            if let Some(kwargs) = kwargs {
                for value in kwargs.values().iter() {
                    items.push(value.get_type().into_any());
                }
            }
        }
        Ok(PyTuple::new(py, items)?.into_any())
    }

    /// An instance that is never called, for `vectorcall::install` to measure.
    #[cfg(not(any(PyPy, GraalPy)))]
    pub(crate) fn placeholder(py: Python<'_>) -> PyResult<Self> {
        let cache = Py::new(py, Moka::unconfigured())?;
        CachedFunction::new(py.None(), cache, None, false, None, false)
    }

    #[cfg(not(any(PyPy, GraalPy)))]
    pub(crate) fn vectorcall_slot(&self) -> &vectorcall::Slot {
        &self.vectorcall
    }

    /// A call, with its arguments as `__call__` receives them.
    pub(crate) fn call<'py>(
        &self,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = args.py();
        let _settle = Settle::new(py);
        if self.disabled {
            self.misses.add(1);
            return self.call_wrapped(args, kwargs);
        }
        let key = self.make_key(args, kwargs)?;
        self.answer(&key, || Ok(args.clone()), kwargs)
    }

    /// Whether a call with this one positional argument and no keywords is its own
    /// key (the common case `vectorcall.rs` answers without building a tuple).
    #[cfg(not(any(PyPy, GraalPy)))]
    #[inline]
    pub(crate) fn is_own_key(&self, arg: &Bound<'_, PyAny>) -> bool {
        !self.disabled && !self.typed && self.key.is_none() && is_own_key_type(arg)
    }

    /// A call `f(arg)` for which [`Self::is_own_key`] holds: the same steps as
    /// [`Self::call`], with the argument tuple built only on a miss.
    #[cfg(not(any(PyPy, GraalPy)))]
    #[inline]
    pub(crate) fn call_own_key<'py>(&self, arg: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let _settle = Settle::new(arg.py());
        self.answer(arg, || PyTuple::new(arg.py(), [arg]), None)
    }

    /// The cached result for `key`, counting a hit; on a miss, counts it, computes the
    /// result (alone or as the single flight of its key) and stores it. `args` gives
    /// the call's positional arguments, needed only on a miss.
    #[inline]
    fn answer<'py>(
        &self,
        key: &Bound<'py, PyAny>,
        args: impl FnOnce() -> PyResult<Bound<'py, PyTuple>>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let hash = keys::hash(key)?;
        let store = self.cache.get().store()?;
        if let Some(value) = store.get(key, hash)? {
            self.hits.add(1);
            return Ok(value);
        }
        self.misses.add(1);
        let args = args()?;
        if !self.wait_concurrent {
            return self.call_and_store(store, key, hash, &args, kwargs);
        }
        let initializer = || self.call_wrapped(&args, kwargs);
        match store.load(key, hash, &EntryOptions::default(), initializer) {
            // Only the flight registry reports `Runtime`: this thread is already
            // computing this key (the function called itself with the same
            // arguments). Waiting would never end; like lru_cache, compute again.
            Err(Error::Runtime(_)) => self.call_and_store(store, key, hash, &args, kwargs),
            outcome => Ok(outcome?),
        }
    }

    fn call_wrapped<'py>(
        &self,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.func.bind(args.py()).call(args, kwargs)
    }

    /// A miss without single flight: call, then store what the call returned.
    fn call_and_store<'py>(
        &self,
        store: &Store,
        key: &Bound<'py, PyAny>,
        hash: isize,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let value = self.call_wrapped(args, kwargs)?;
        store.put(key, hash, &value, &EntryOptions::default())?;
        Ok(value)
    }
}

#[pymethods]
impl CachedFunction {
    #[new]
    #[pyo3(signature = (func, cache, maxsize, typed, key, wait_concurrent))]
    fn new(
        func: Py<PyAny>,
        cache: Py<Moka>,
        maxsize: Option<Bound<'_, PyInt>>,
        typed: bool,
        key: Option<Py<PyAny>>,
        wait_concurrent: bool,
    ) -> PyResult<Self> {
        let disabled = match &maxsize {
            Some(maxsize) => maxsize.le(0)?,
            None => false,
        };
        Ok(CachedFunction {
            vectorcall: vectorcall::SLOT,
            func,
            cache,
            maxsize: maxsize.map(Bound::unbind),
            disabled,
            typed,
            key,
            wait_concurrent,
            hits: Counter::default(),
            misses: Counter::default(),
        })
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn __call__<'py>(
        &self,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.call(args, kwargs)
    }

    /// Binds the wrapper to an instance, so decorated methods work.
    fn __get__<'py>(
        slf: &Bound<'py, Self>,
        instance: Option<&Bound<'py, PyAny>>,
        owner: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let _ = owner;
        match instance.filter(|i| !i.is_none()) {
            None => Ok(slf.clone().into_any()),
            Some(instance) => {
                let method_type = py_method_type(slf.py())?;
                method_type.call1((slf, instance))
            }
        }
    }

    /// `(key, hash, value)` for an async call, `value` being `missing` on a miss;
    /// counts the hit or miss like a sync call. The hash goes back in with the key
    /// (`_peek`, `_remember`), so each argument is hashed once per call.
    fn _lookup<'py>(
        &self,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
        missing: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyAny>, isize, Bound<'py, PyAny>)> {
        let _settle = Settle::new(args.py());
        let key = self.make_key(args, kwargs)?;
        let hash = keys::hash(&key)?;
        match self.cache.get().store()?.get(&key, hash)? {
            Some(value) => {
                self.hits.add(1);
                Ok((key, hash, value))
            }
            None => {
                self.misses.add(1);
                Ok((key, hash, missing.clone()))
            }
        }
    }

    /// The cached value of a key from `_lookup`, or `missing`; counts nothing.
    fn _peek<'py>(
        &self,
        key: &Bound<'py, PyAny>,
        hash: isize,
        missing: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = key.py();
        let _settle = Settle::new(py);
        match self.cache.get().store()?.lookup(key, hash)? {
            Some(node) => {
                let value = node.value(py);
                node.release(py);
                Ok(value)
            }
            None => Ok(missing.clone()),
        }
    }

    /// Stores the result of an async call under a key from `_lookup`.
    fn _remember(
        &self,
        key: &Bound<'_, PyAny>,
        hash: isize,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let _settle = Settle::new(key.py());
        if self.disabled {
            return Ok(());
        }
        Ok(self
            .cache
            .get()
            .store()?
            .put(key, hash, value, &EntryOptions::default())?)
    }

    /// Counts a call that bypassed the cache (`maxsize=0`).
    fn _count_miss(&self) {
        self.misses.add(1);
    }

    /// `CacheInfo(hits, misses, maxsize, currsize)`, as `lru_cache` reports it.
    fn cache_info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let _settle = Settle::new(py);
        let currsize = self.cache.get().store()?.len();
        let maxsize = self.maxsize.as_ref().map(|m| m.clone_ref(py));
        cache_info_type(py)?.call1((self.hits.get(), self.misses.get(), maxsize, currsize))
    }

    /// Empties the cache and resets the hit/miss counts.
    fn cache_clear(&self, py: Python<'_>) -> PyResult<()> {
        let _settle = Settle::new(py);
        self.cache.get().store()?.clear(py);
        self.hits.reset();
        self.misses.reset();
        Ok(())
    }

    /// `{'maxsize': ..., 'typed': ...}`, as `lru_cache` reports it; the rest of the
    /// configuration is on `.cache`.
    fn cache_parameters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let parameters = PyDict::new(py);
        parameters.set_item("maxsize", self.maxsize.as_ref().map(|m| m.clone_ref(py)))?;
        parameters.set_item("typed", self.typed)?;
        Ok(parameters)
    }

    /// The underlying `Moka`.
    #[getter]
    fn cache(&self, py: Python<'_>) -> Py<Moka> {
        self.cache.clone_ref(py)
    }

    /// The function, its cache and key function can refer back to the wrapper (a
    /// recursive local function does, through its closure): the garbage collector
    /// must see them to collect such cycles, as it does for `lru_cache`.
    fn __traverse__(&self, visit: PyVisit<'_>) -> std::result::Result<(), PyTraverseError> {
        visit.call(&self.func)?;
        visit.call(&self.cache)?;
        visit.call(&self.key)
    }

    fn __copy__(slf: &Bound<'_, Self>) -> Py<Self> {
        slf.clone().unbind()
    }

    fn __deepcopy__(slf: &Bound<'_, Self>, _memo: &Bound<'_, PyAny>) -> Py<Self> {
        slf.clone().unbind()
    }

    /// Pickles by qualified name, like a plain function (and like `lru_cache`).
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.getattr(pyo3::intern!(slf.py(), "__qualname__"))
    }

    /// The wrapped function and the configuration: `cached`'s arguments and the cache.
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let maxsize = match &self.maxsize {
            Some(maxsize) => maxsize.bind(py).to_string(),
            None => "None".to_owned(),
        };
        let key = match &self.key {
            Some(key) => format!(", key={}", key.bind(py).repr()?),
            None => String::new(),
        };
        Ok(format!(
            "<moka_py.CachedFunction of {}: maxsize={maxsize}, typed={}{key}, \
             wait_concurrent={}, cache={}>",
            self.func.bind(py).repr()?,
            py_bool(self.typed),
            py_bool(self.wait_concurrent),
            self.cache.bind(py).repr()?,
        ))
    }
}

fn py_bool(value: bool) -> &'static str {
    if value {
        "True"
    } else {
        "False"
    }
}

fn py_method_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    static TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    TYPE.import(py, "types", "MethodType")
}

fn cache_info_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    static TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    TYPE.import(py, "moka_py._types", "CacheInfo")
}
