//! The `Moka` class: argument handling around [`Store`].
//!
//! Every method hashes its key once, calls the store, and ends with [`Settle`],
//! which delivers eviction notifications and releases dropped references once no
//! engine lock is held.

use std::sync::OnceLock;
use std::time::Duration;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyIterator, PyList, PyTuple, PyType};
use pyo3::{PyTraverseError, PyVisit};

use crate::config::Config;
use crate::duration::{self, AboveLimit};
use crate::errors::{Error, Result};
use crate::keys;
use crate::pyref;
use crate::settle::Settle;
use crate::store::{EntryOptions, Store};

/// A thread-safe in-memory cache backed by the Rust `moka` crate.
///
/// `capacity` bounds the total weight of the entries (each entry weighs 1 unless a
/// `weigher` is given). When a call returns, the cache holds at most `capacity`,
/// and every entry that left it was reported to `eviction_listener`.
///
/// `ttl` (time to live) and `tti` (time to idle) are in seconds: an entry expires
/// `ttl` seconds after it was written, or `tti` seconds after it was last read or
/// written. `policy` is `"tiny_lfu"` (default) or `"lru"`. `expiry` is an optional
/// object with `expire_after_create`, `expire_after_read` and/or
/// `expire_after_update` methods giving each entry its own lifetime.
#[pyclass(frozen, module = "moka_py", subclass, weakref, generic)]
pub struct Moka {
    /// Set by `__init__` (so subclasses may define their own `__init__` and call
    /// `super().__init__(...)`), or by `__setstate__` when copying or unpickling.
    store: OnceLock<Store>,
    /// Per-cache state of `aget_with` (see `moka_py/_aio.py`), created on first use.
    async_state: PyOnceLock<Py<PyAny>>,
}

impl Moka {
    pub(crate) fn unconfigured() -> Moka {
        Moka {
            store: OnceLock::new(),
            async_state: PyOnceLock::new(),
        }
    }

    /// The cache's store; an error if `__init__` never ran (a subclass `__init__`
    /// that does not call `super().__init__`).
    #[inline]
    pub fn store(&self) -> Result<&Store> {
        self.store.get().ok_or_else(|| {
            Error::Runtime(
                "this Moka was never initialized: a subclass that defines __init__ must call \
                 super().__init__(capacity, ...)"
                    .to_owned(),
            )
        })
    }

    /// Validates the arguments and sets the store up (once).
    #[allow(clippy::too_many_arguments)]
    fn configure(
        &self,
        capacity: &Bound<'_, PyAny>,
        ttl: Option<&Bound<'_, PyAny>>,
        tti: Option<&Bound<'_, PyAny>>,
        eviction_listener: Option<&Bound<'_, PyAny>>,
        policy: Option<&Bound<'_, PyAny>>,
        weigher: Option<&Bound<'_, PyAny>>,
        expiry: Option<&Bound<'_, PyAny>>,
        allow_unbounded: bool,
    ) -> Result<()> {
        if self.store.get().is_some() {
            return Err(Error::Runtime(
                "this Moka is already initialized; its configuration cannot change".to_owned(),
            ));
        }
        let py = capacity.py();
        let default_policy = pyo3::intern!(py, "tiny_lfu").clone().into_any();
        let config = Config::parse(
            capacity,
            ttl,
            tti,
            eviction_listener,
            policy.unwrap_or(&default_policy),
            weigher,
            expiry,
            allow_unbounded,
        )?;
        let store = Store::new(
            config.capacity,
            config.policy,
            config.weigher,
            config.expiry,
            config.listener,
        );
        self.store.set(store).map_err(|_| {
            Error::Runtime(
                "this Moka is already initialized; its configuration cannot change".to_owned(),
            )
        })
    }

    /// Sets the store up from `config_kwargs`-shaped arguments.
    fn configure_from(
        &self,
        capacity: &Bound<'_, PyAny>,
        kwargs: &Bound<'_, PyDict>,
    ) -> Result<()> {
        let get = |name: &str| -> Result<Option<Bound<'_, PyAny>>> {
            Ok(kwargs.get_item(name)?.filter(|v| !v.is_none()))
        };
        self.configure(
            capacity,
            get("ttl")?.as_ref(),
            get("tti")?.as_ref(),
            get("eviction_listener")?.as_ref(),
            get("policy")?.as_ref(),
            get("weigher")?.as_ref(),
            get("expiry")?.as_ref(),
            true,
        )
    }

    /// The constructor arguments that rebuild this cache's configuration.
    fn config_kwargs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let store = self.store()?;
        let spec = store.spec();
        let kwargs = PyDict::new(py);
        kwargs.set_item("ttl", spec.expiry.ttl.map(|d| d.as_secs_f64()))?;
        kwargs.set_item("tti", spec.expiry.tti.map(|d| d.as_secs_f64()))?;
        kwargs.set_item(
            "eviction_listener",
            spec.notifier
                .listener
                .as_ref()
                .map(|l| l.callable().clone_ref(py)),
        )?;
        kwargs.set_item("policy", spec.policy.as_str())?;
        kwargs.set_item("weigher", store.weigher().map(|w| w.clone_ref(py)))?;
        kwargs.set_item(
            "expiry",
            spec.expiry.hooks.as_ref().map(|h| h.object().clone_ref(py)),
        )?;
        Ok(kwargs)
    }

    /// The live entries as `(key, value, remaining lifetime, per-entry tti)`.
    fn snapshot_state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let entries = PyList::empty(py);
        for (_, node) in self.store()?.entries() {
            let expiry = node.expiry();
            let lifetime = expiry.and_then(|e| e.remaining_lifetime(std::time::Instant::now()));
            if lifetime == Some(Duration::ZERO) {
                continue;
            }
            let idle = expiry.and_then(|e| e.idle());
            entries.append((
                node.key().to_bound(py),
                node.value(py),
                lifetime.map(|d| d.as_secs_f64()),
                idle.map(|d| d.as_secs_f64()),
            ))?;
        }
        Ok(entries)
    }

    /// What a copy needs: `(capacity, configuration, entries, instance __dict__)`.
    fn state<'py>(
        &self,
        py: Python<'py>,
        dict: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let capacity = self.store()?.capacity().into_pyobject(py)?.into_any();
        PyTuple::new(
            py,
            [
                capacity,
                self.config_kwargs(py)?.into_any(),
                self.snapshot_state(py)?.into_any(),
                none_or(py, dict),
            ],
        )
    }

    fn restore_entries(&self, entries: &Bound<'_, PyAny>) -> Result<()> {
        for item in entries.try_iter()? {
            let item = item?;
            let (key, value, lifetime, idle): (
                Bound<'_, PyAny>,
                Bound<'_, PyAny>,
                Option<f64>,
                Option<f64>,
            ) = item.extract()?;
            let to_duration = |seconds: Option<f64>| {
                seconds
                    .map(|s| duration::parse_seconds(s, AboveLimit::Clamp))
                    .transpose()
                    .map_err(|e| Error::value_error(e.message("remaining lifetime")))
            };
            let options = EntryOptions {
                ttl: to_duration(lifetime)?,
                tti: to_duration(idle)?,
                skip_hooks: true,
            };
            let hash = keys::hash(&key)?;
            self.store()?.put(&key, hash, &value, &options)?;
        }
        Ok(())
    }
}

impl Drop for Moka {
    fn drop(&mut self) {
        // The engine hands the references it drops to this thread's deferred-release
        // list (`pyref.rs`), which every public call empties as it returns. A dropped
        // cache makes no further call: release its entries now, not at this thread's
        // next call into moka-py (never, if there is none).
        if let Some(store) = self.store.take() {
            drop(store);
            // Entries moka removed earlier may still wait in crossbeam's epoch-based GC.
            crate::store::release_removed_entries();
            Python::attach(pyref::release_deferred);
        }
    }
}

fn entry_options(
    ttl: Option<&Bound<'_, PyAny>>,
    tti: Option<&Bound<'_, PyAny>>,
) -> Result<EntryOptions> {
    Ok(EntryOptions {
        ttl: duration::extract("ttl", ttl, AboveLimit::Clamp)?,
        tti: duration::extract("tti", tti, AboveLimit::Clamp)?,
        skip_hooks: false,
    })
}

/// `iter(value)`; when `value` is not iterable at all, a `TypeError` that names the
/// argument (`what`) instead of Python's "'int' object is not iterable". An error
/// raised by an `__iter__` of the user's reaches the caller unchanged.
fn iterate<'py>(
    name: &str,
    what: &str,
    value: &Bound<'py, PyAny>,
) -> Result<Bound<'py, PyIterator>> {
    value.try_iter().map_err(|err| {
        let py = value.py();
        let kind = value.get_type();
        let iterable = kind.hasattr(pyo3::intern!(py, "__iter__")).unwrap_or(true)
            || kind
                .hasattr(pyo3::intern!(py, "__getitem__"))
                .unwrap_or(true);
        if iterable {
            Error::Python(err)
        } else {
            Error::type_error(format!(
                "{name} must be {what}, not {}",
                duration::type_name(value)
            ))
        }
    })
}

fn require_callable(name: &str, value: &Bound<'_, PyAny>) -> Result<()> {
    if value.is_callable() {
        Ok(())
    } else {
        Err(Error::type_error(format!(
            "{name} must be callable, not {}",
            duration::type_name(value)
        )))
    }
}

/// `pickle` needs the configuration's callables to pickle; say which one does not.
fn check_picklable(
    py: Python<'_>,
    name: &str,
    value: Option<&Bound<'_, PyAny>>,
    protocol: i32,
) -> PyResult<()> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(());
    };
    let dumps = py.import("pickle")?.getattr("dumps")?;
    if let Err(err) = dumps.call1((value, protocol)) {
        let error = PyTypeError::new_err(format!(
            "cannot pickle this Moka: its {name} {} is not picklable ({})",
            value.repr()?,
            err.value(py)
        ));
        error.set_cause(py, Some(err));
        return Err(error);
    }
    Ok(())
}

#[pymethods]
impl Moka {
    /// Lets the garbage collector see what the cache holds, so that reference cycles
    /// through it (a listener or an entry referring back to the cache) are collected.
    /// Entries whose removal is pending are not visited: the collector then assumes an
    /// outside reference and keeps their objects, which is always safe.
    fn __traverse__(&self, visit: PyVisit<'_>) -> std::result::Result<(), PyTraverseError> {
        // SAFETY: the collector calls this attached to the interpreter; the token only
        // reads the lock, no Python code runs.
        let py = unsafe { Python::assume_attached() };
        visit.call(self.async_state.get(py))?;
        let Some(store) = self.store.get() else {
            return Ok(());
        };
        let spec = store.spec();
        visit.call(spec.notifier.listener.as_ref().map(|l| l.callable()))?;
        visit.call(store.weigher())?;
        if let Some(hooks) = &spec.expiry.hooks {
            for held in hooks.held() {
                visit.call(held)?;
            }
        }
        store.for_each_entry(|_, node| {
            visit.call(node.key().as_py())?;
            visit.call(node.value_for_traverse().as_py())
        })
    }

    /// Breaks reference cycles through the entries (`__traverse__` shows them to the
    /// collector): an entry whose value holds the cache, through objects that cannot
    /// clear themselves (a tuple, a frozenset), would otherwise keep it alive forever.
    /// Only unreachable caches get here, so the listener is not told.
    fn __clear__(&self) {
        if let Some(store) = self.store.get() {
            Python::attach(|py| {
                let _settle = Settle::new(py);
                store.discard_all(py);
            });
        }
    }

    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        Moka::unconfigured()
    }

    #[pyo3(signature = (capacity, ttl=None, tti=None, eviction_listener=None, policy=None, weigher=None, expiry=None))]
    #[allow(clippy::too_many_arguments)]
    fn __init__(
        &self,
        capacity: &Bound<'_, PyAny>,
        ttl: Option<&Bound<'_, PyAny>>,
        tti: Option<&Bound<'_, PyAny>>,
        eviction_listener: Option<&Bound<'_, PyAny>>,
        policy: Option<&Bound<'_, PyAny>>,
        weigher: Option<&Bound<'_, PyAny>>,
        expiry: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        Ok(self.configure(
            capacity,
            ttl,
            tti,
            eviction_listener,
            policy,
            weigher,
            expiry,
            false,
        )?)
    }

    /// Stores `value` under `key`, replacing any previous value.
    ///
    /// `ttl`/`tti` (seconds) give this entry its own time to live / time to idle;
    /// they can shorten, never extend, the cache-wide ones.
    #[pyo3(signature = (key, value, ttl=None, tti=None))]
    fn set(
        &self,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        ttl: Option<&Bound<'_, PyAny>>,
        tti: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let _settle = Settle::new(key.py());
        let hash = keys::hash(key)?;
        let options = entry_options(ttl, tti)?;
        Ok(self.store()?.put(key, hash, value, &options)?)
    }

    /// Returns the value of `key`, or `default` if it is absent (or expired).
    #[pyo3(signature = (key, default=None))]
    pub(crate) fn get<'py>(
        &self,
        key: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = key.py();
        let _settle = Settle::new(py);
        let hash = keys::hash(key)?;
        match self.store()?.get(key, hash)? {
            Some(value) => Ok(value),
            None => Ok(default.unwrap_or_else(|| py.None().into_bound(py))),
        }
    }

    /// Returns the value of `key`; if absent, calls `initializer()`, stores and
    /// returns its result.
    ///
    /// Concurrent callers for the same key run one initializer: the others wait
    /// (releasing the GIL) and get its result, or its exception, which is not
    /// cached. Calling `get_with` for the same key from inside its own initializer
    /// raises `RuntimeError`.
    #[pyo3(signature = (key, initializer, ttl=None, tti=None))]
    pub(crate) fn get_with<'py>(
        &self,
        key: &Bound<'py, PyAny>,
        initializer: &Bound<'py, PyAny>,
        ttl: Option<&Bound<'py, PyAny>>,
        tti: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let _settle = Settle::new(key.py());
        let hash = keys::hash(key)?;
        let options = || {
            require_callable("initializer", initializer)?;
            entry_options(ttl, tti)
        };
        Ok(self
            .store()?
            .get_with(key, hash, options, || initializer.call0())?)
    }

    /// The async twin of `get_with`: returns a coroutine. `factory()` must return an
    /// awaitable; concurrent awaiters of one key (across tasks, threads and event
    /// loops) share one computation, whose result is cached and whose exception or
    /// cancellation is not.
    #[pyo3(signature = (key, factory, ttl=None, tti=None))]
    fn aget_with<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
        factory: &Bound<'py, PyAny>,
        ttl: Option<&Bound<'py, PyAny>>,
        tti: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        keys::hash(key)?;
        require_callable("factory", factory)?;
        entry_options(ttl, tti)?;
        let aget_with = py.import("moka_py._aio")?.getattr("aget_with")?;
        aget_with.call1((slf, key, factory, ttl, tti))
    }

    /// Removes `key` and returns its value, or `default` if it was absent.
    #[pyo3(signature = (key, default=None))]
    fn remove<'py>(
        &self,
        key: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = key.py();
        let _settle = Settle::new(py);
        let hash = keys::hash(key)?;
        match self.store()?.remove(key, hash)? {
            Some(value) => Ok(value),
            None => Ok(default.unwrap_or_else(|| py.None().into_bound(py))),
        }
    }

    /// Removes every entry (each is reported to the listener as "explicit").
    fn clear(&self, py: Python<'_>) -> PyResult<()> {
        let _settle = Settle::new(py);
        self.store()?.clear(py);
        Ok(())
    }

    /// The number of entries, cheaply but approximately: moka's running count,
    /// brought up to date by its lazy maintenance, so it may still include entries
    /// that expired or were evicted and may not yet include the latest inserts.
    /// `len(cache)` is exact.
    fn count(&self) -> PyResult<u64> {
        Ok(self.store()?.count())
    }

    /// The total weight of the entries (their count, without a weigher). Like
    /// `count()` it is cheap and kept up to date lazily (call `run_pending_tasks()`
    /// first for an exact figure); it never exceeds `capacity` once a call returns.
    fn weighted_size(&self) -> PyResult<u64> {
        Ok(self.store()?.weighted_size())
    }

    /// Applies pending maintenance (evictions, expirations, listener calls) now.
    fn run_pending_tasks(&self, py: Python<'_>) -> PyResult<()> {
        let _settle = Settle::new(py);
        self.store()?.run_pending_tasks();
        Ok(())
    }

    /// A snapshot of the cache's statistics (see `CacheStats`).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let _settle = Settle::new(py);
        let s = self.store()?.stats();
        let cls = cache_stats_type(py)?;
        cls.call1((
            s.hits,
            s.misses,
            s.hit_rate(),
            s.evictions,
            s.expirations,
            s.load_successes,
            s.load_failures,
            s.total_load_time,
        ))
    }

    /// Removes every entry for which `predicate(key, value)` is true (listener cause
    /// "explicit") and returns how many were removed. The predicate sees a snapshot;
    /// if it raises, nothing is removed.
    fn invalidate_if(&self, predicate: &Bound<'_, PyAny>) -> PyResult<usize> {
        let py = predicate.py();
        let _settle = Settle::new(py);
        require_callable("predicate", predicate)?;
        let store = self.store()?;
        let mut doomed = Vec::new();
        for (key, node) in store.entries() {
            let value = node.value(py);
            let verdict = predicate.call1((node.key().to_bound(py), &value))?;
            if verdict.is_truthy()? {
                doomed.push((key, node, value));
            }
        }
        Ok(doomed
            .iter()
            .filter(|(key, node, value)| store.remove_if_current(py, key, node, value.as_ptr()))
            .count())
    }

    /// The values of the `keys` that are present, as a dict (each read is recorded).
    fn get_many<'py>(&self, keys: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
        let py = keys.py();
        let _settle = Settle::new(py);
        let found = PyDict::new(py);
        for key in iterate("keys", "an iterable of keys", keys)? {
            let key = key?;
            let hash = keys::hash(&key)?;
            if let Some(value) = self.store()?.get(&key, hash)? {
                found.set_item(key, value)?;
            }
        }
        Ok(found)
    }

    /// Stores every pair of a mapping or an iterable of `(key, value)` pairs.
    #[pyo3(signature = (items, ttl=None, tti=None))]
    fn set_many(
        &self,
        items: &Bound<'_, PyAny>,
        ttl: Option<&Bound<'_, PyAny>>,
        tti: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let py = items.py();
        let _settle = Settle::new(py);
        let options = entry_options(ttl, tti)?;
        let pairs = if let Ok(mapping) = items.cast::<PyDict>() {
            mapping.items().into_any()
        } else if items.hasattr(pyo3::intern!(py, "keys"))? {
            items.call_method0(pyo3::intern!(py, "items"))?
        } else {
            items.clone()
        };
        for pair in iterate(
            "items",
            "a mapping or an iterable of (key, value) pairs",
            &pairs,
        )? {
            let pair = pair?;
            let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair.extract().map_err(|_| {
                Error::type_error(format!(
                    "set_many() takes a mapping or an iterable of (key, value) pairs, got an item of type {}",
                    duration::type_name(&pair)
                ))
            })?;
            let hash = keys::hash(&key)?;
            self.store()?.put(&key, hash, &value, &options)?;
        }
        Ok(())
    }

    /// Removes each of `keys` that is present; returns how many were removed.
    fn remove_many(&self, keys: &Bound<'_, PyAny>) -> PyResult<usize> {
        let _settle = Settle::new(keys.py());
        let mut removed = 0;
        for key in iterate("keys", "an iterable of keys", keys)? {
            let key = key?;
            let hash = keys::hash(&key)?;
            if self.store()?.remove(&key, hash)?.is_some() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// A list of the live keys (a snapshot; no read is recorded).
    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let _settle = Settle::new(py);
        PyList::new(
            py,
            self.store()?
                .entries()
                .iter()
                .map(|(_, n)| n.key().to_bound(py)),
        )
    }

    /// A list of the live values (a snapshot; no read is recorded).
    fn values<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let _settle = Settle::new(py);
        PyList::new(py, self.store()?.entries().iter().map(|(_, n)| n.value(py)))
    }

    /// A list of the live `(key, value)` pairs (a snapshot; no read is recorded).
    fn items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let _settle = Settle::new(py);
        let pairs = self
            .store()?
            .entries()
            .iter()
            .map(|(_, n)| PyTuple::new(py, [n.key().to_bound(py), n.value(py)]))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, pairs)
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(self.keys(py)?.try_iter()?.into_any())
    }

    /// The exact number of live entries (pending maintenance is applied first).
    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        let _settle = Settle::new(py);
        Ok(usize::try_from(self.store()?.len()).unwrap_or(usize::MAX))
    }

    /// Whether `key` is present; no read is recorded and its idle timer is not reset.
    fn __contains__(&self, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let _settle = Settle::new(key.py());
        let hash = keys::hash(key)?;
        Ok(self.store()?.contains(key, hash)?)
    }

    fn __getitem__<'py>(&self, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let _settle = Settle::new(key.py());
        let hash = keys::hash(key)?;
        match self.store()?.get(key, hash)? {
            Some(value) => Ok(value),
            None => Err(Error::MissingKey(key.clone().unbind()).into()),
        }
    }

    fn __setitem__(&self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let _settle = Settle::new(key.py());
        let hash = keys::hash(key)?;
        Ok(self
            .store()?
            .put(key, hash, value, &EntryOptions::default())?)
    }

    fn __delitem__(&self, key: &Bound<'_, PyAny>) -> PyResult<()> {
        let _settle = Settle::new(key.py());
        let hash = keys::hash(key)?;
        match self.store()?.remove(key, hash)? {
            Some(_) => Ok(()),
            None => Err(Error::MissingKey(key.clone().unbind()).into()),
        }
    }

    /// The maximum total weight (`None`: unbounded).
    #[getter]
    fn capacity(&self) -> PyResult<Option<u64>> {
        Ok(self.store()?.capacity())
    }

    /// The cache-wide time to live, in seconds (`None`: entries do not expire by age).
    #[getter]
    fn ttl(&self) -> PyResult<Option<f64>> {
        Ok(self.store()?.spec().expiry.ttl.map(|d| d.as_secs_f64()))
    }

    /// The cache-wide time to idle, in seconds (`None`: entries do not expire by idleness).
    #[getter]
    fn tti(&self) -> PyResult<Option<f64>> {
        Ok(self.store()?.spec().expiry.tti.map(|d| d.as_secs_f64()))
    }

    /// The eviction policy: `"tiny_lfu"` or `"lru"`.
    #[getter]
    fn policy(&self) -> PyResult<&'static str> {
        Ok(self.store()?.spec().policy.as_str())
    }

    /// The eviction listener, or `None`.
    #[getter]
    fn eviction_listener(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        Ok(self
            .store()?
            .spec()
            .notifier
            .listener
            .as_ref()
            .map(|l| l.callable().clone_ref(py)))
    }

    /// The weigher, or `None`.
    #[getter]
    fn weigher(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        Ok(self.store()?.weigher().map(|w| w.clone_ref(py)))
    }

    /// The per-entry expiry policy object, or `None`.
    #[getter]
    fn expiry(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        Ok(self
            .store()?
            .spec()
            .expiry
            .hooks
            .as_ref()
            .map(|h| h.object().clone_ref(py)))
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let py = slf.py();
        let this = slf.get();
        let name = slf.get_type().qualname()?;
        let capacity = match this.store()?.capacity() {
            Some(c) => c.to_string(),
            None => "None".to_owned(),
        };
        let mut repr = format!("{name}(capacity={capacity}");
        let seconds = |d: Option<Duration>| {
            d.map_or_else(|| "None".to_owned(), |d| format!("{:?}", d.as_secs_f64()))
        };
        let spec = this.store()?.spec();
        repr.push_str(&format!(
            ", ttl={}, tti={}",
            seconds(spec.expiry.ttl),
            seconds(spec.expiry.tti)
        ));
        repr.push_str(&format!(", policy='{}'", spec.policy.as_str()));
        for (name, value) in [
            ("eviction_listener", this.eviction_listener(py)?),
            ("weigher", this.weigher(py)?),
            ("expiry", this.expiry(py)?),
        ] {
            if let Some(value) = value {
                repr.push_str(&format!(", {name}={}", value.bind(py).repr()?));
            }
        }
        repr.push(')');
        Ok(repr)
    }

    fn __copy__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let _settle = Settle::new(py);
        let state = slf.get().state(
            py,
            instance_dict(slf)?
                .map(|d| d.call_method0("copy"))
                .transpose()?,
        )?;
        let copy = blank_of(slf)?;
        copy.call_method1("__setstate__", (state,))?;
        Ok(copy)
    }

    fn __deepcopy__<'py>(
        slf: &Bound<'py, Self>,
        memo: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let _settle = Settle::new(py);
        let copy = blank_of(slf)?;
        // Registered before copying the contents, so entries that refer back to this
        // cache refer to the copy.
        // `id()` rather than the address: they differ on PyPy.
        let id = py.import("builtins")?.getattr("id")?.call1((slf,))?;
        memo.set_item(id, &copy)?;
        let state = slf.get().state(py, instance_dict(slf)?)?;
        let deepcopy = py.import("copy")?.getattr("deepcopy")?;
        copy.call_method1("__setstate__", (deepcopy.call1((state, memo))?,))?;
        Ok(copy)
    }

    /// Pickles the configuration and the live entries (with their remaining
    /// lifetimes); the listener, weigher and expiry object must be picklable.
    fn __reduce_ex__<'py>(slf: &Bound<'py, Self>, protocol: i32) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let _settle = Settle::new(py);
        let this = slf.get();
        let kwargs = this.config_kwargs(py)?;
        for name in ["eviction_listener", "weigher", "expiry"] {
            check_picklable(py, name, kwargs.get_item(name)?.as_ref(), protocol.max(2))?;
        }
        let newobj = py.import("copyreg")?.getattr("__newobj__")?;
        let state = this.state(py, instance_dict(slf)?)?;
        PyTuple::new(
            py,
            [
                newobj,
                PyTuple::new(py, [slf.get_type()])?.into_any(),
                state.into_any(),
            ],
        )
    }

    /// Restores what `__reduce_ex__`/`__copy__` saved: `(capacity, configuration,
    /// entries, instance __dict__ or None)`.
    fn __setstate__(slf: &Bound<'_, Self>, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let _settle = Settle::new(slf.py());
        let (capacity, kwargs, entries, dict): (
            Bound<'_, PyAny>,
            Bound<'_, PyDict>,
            Bound<'_, PyAny>,
            Bound<'_, PyAny>,
        ) = state.extract()?;
        let this = slf.get();
        this.configure_from(&capacity, &kwargs)?;
        this.restore_entries(&entries)?;
        if !dict.is_none() {
            if let Some(own) = instance_dict(slf)? {
                own.call_method1("update", (dict,))?;
            }
        }
        Ok(())
    }

    // ----- glue for moka_py/_cached.py and moka_py/_aio.py, not public ---------------

    /// The cache behind `@cached`: `capacity=None` means unbounded there.
    #[staticmethod]
    #[pyo3(signature = (capacity, ttl, tti, policy, weigher))]
    fn _for_cached(
        capacity: &Bound<'_, PyAny>,
        ttl: Option<&Bound<'_, PyAny>>,
        tti: Option<&Bound<'_, PyAny>>,
        policy: &Bound<'_, PyAny>,
        weigher: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Moka> {
        let cache = Moka::unconfigured();
        cache.configure(capacity, ttl, tti, None, Some(policy), weigher, None, true)?;
        Ok(cache)
    }

    /// Like `get`, but not counted in `stats()` (the read is still recorded).
    #[pyo3(signature = (key, default=None))]
    fn _peek<'py>(
        &self,
        key: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = key.py();
        let _settle = Settle::new(py);
        let hash = keys::hash(key)?;
        match self.store()?.lookup(key, hash)? {
            Some(node) => {
                let value = node.value(py);
                node.release(py);
                Ok(value)
            }
            None => Ok(default.unwrap_or_else(|| py.None().into_bound(py))),
        }
    }

    /// Per-cache state of `aget_with` (a dict owned by `moka_py._aio`).
    fn _async_state(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let state = self
            .async_state
            .get_or_try_init(py, || -> PyResult<Py<PyAny>> {
                Ok(py
                    .import("moka_py._aio")?
                    .getattr("AsyncState")?
                    .call0()?
                    .unbind())
            })?;
        Ok(state.clone_ref(py))
    }

    /// Counts a load that ran outside `get_with` (success flag, seconds).
    fn _record_load(&self, ok: bool, seconds: f64) -> PyResult<()> {
        self.store()?
            .record_load(ok, Duration::try_from_secs_f64(seconds).unwrap_or_default());
        Ok(())
    }
}

fn none_or<'py>(py: Python<'py>, value: Option<Bound<'py, PyAny>>) -> Bound<'py, PyAny> {
    value.unwrap_or_else(|| py.None().into_bound(py))
}

/// A new, not yet configured instance of `slf`'s class (no `__init__` call).
fn blank_of<'py>(slf: &Bound<'py, Moka>) -> PyResult<Bound<'py, PyAny>> {
    let cls = slf.get_type();
    cls.call_method1(pyo3::intern!(slf.py(), "__new__"), (&cls,))
}

/// The `__dict__` of a subclass instance, if it has one.
fn instance_dict<'py>(slf: &Bound<'py, Moka>) -> PyResult<Option<Bound<'py, PyAny>>> {
    match slf.getattr(pyo3::intern!(slf.py(), "__dict__")) {
        Ok(dict) => Ok(Some(dict)),
        Err(err) if err.is_instance_of::<pyo3::exceptions::PyAttributeError>(slf.py()) => Ok(None),
        Err(err) => Err(err),
    }
}

/// `moka_py.CacheStats`, defined in Python (a NamedTuple), imported on first use.
fn cache_stats_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    static TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    TYPE.import(py, "moka_py._types", "CacheStats")
}
