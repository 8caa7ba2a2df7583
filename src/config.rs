//! Validation of `Moka(...)` arguments.
//!
//! Each bad argument gets a `TypeError` (wrong kind of object) or a `ValueError`
//! (right kind, unusable value) whose message names it; nothing reaches the engine
//! unchecked, so no argument can make moka panic.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt, PyString};

use crate::duration::{self, AboveLimit};
use crate::engine::Policy;
use crate::errors::{Error, Result};
use crate::expiry::{ExpiryHooks, ExpiryPolicy};
use crate::listener::Listener;

/// The validated configuration of a cache.
pub struct Config {
    pub capacity: Option<u64>,
    pub policy: Policy,
    pub listener: Option<Arc<Listener>>,
    pub weigher: Option<Py<PyAny>>,
    pub expiry: Arc<ExpiryPolicy>,
}

impl Config {
    #[allow(clippy::too_many_arguments)]
    pub fn parse(
        capacity: &Bound<'_, PyAny>,
        ttl: Option<&Bound<'_, PyAny>>,
        tti: Option<&Bound<'_, PyAny>>,
        eviction_listener: Option<&Bound<'_, PyAny>>,
        policy: &Bound<'_, PyAny>,
        weigher: Option<&Bound<'_, PyAny>>,
        expiry: Option<&Bound<'_, PyAny>>,
        allow_unbounded: bool,
    ) -> Result<Config> {
        let capacity = parse_capacity(capacity, allow_unbounded)?;
        let ttl = duration::extract("ttl", ttl, AboveLimit::Reject)?;
        let tti = duration::extract("tti", tti, AboveLimit::Reject)?;
        let listener =
            optional_callable("eviction_listener", eviction_listener)?.map(Listener::new);
        let weigher = optional_callable("weigher", weigher)?;
        let hooks = match expiry.filter(|e| !e.is_none()) {
            Some(expiry) => Some(ExpiryHooks::from_object(expiry)?),
            None => None,
        };
        Ok(Config {
            capacity,
            policy: parse_policy(policy)?,
            listener,
            weigher,
            expiry: Arc::new(ExpiryPolicy { ttl, tti, hooks }),
        })
    }
}

/// `capacity`: an int >= 0 that fits the engine (u64); `None` only where allowed.
fn parse_capacity(capacity: &Bound<'_, PyAny>, allow_unbounded: bool) -> Result<Option<u64>> {
    if allow_unbounded && capacity.is_none() {
        return Ok(None);
    }
    if capacity.is_instance_of::<PyBool>() || !capacity.is_instance_of::<PyInt>() {
        return Err(Error::type_error(format!(
            "capacity must be an int, not {}",
            duration::type_name(capacity)
        )));
    }
    if capacity.lt(0)? {
        return Err(Error::value_error(format!(
            "capacity must be >= 0, got {capacity}"
        )));
    }
    capacity.extract::<u64>().map(Some).map_err(|_| {
        Error::value_error(format!(
            "capacity is too large: {capacity} is more than the maximum of {}",
            u64::MAX
        ))
    })
}

fn parse_policy(policy: &Bound<'_, PyAny>) -> Result<Policy> {
    let Ok(name) = policy.cast::<PyString>() else {
        return Err(Error::type_error(format!(
            "policy must be a str ('tiny_lfu' or 'lru'), not {}",
            duration::type_name(policy)
        )));
    };
    Policy::parse(&name.to_cow()?)
}

fn optional_callable(name: &str, value: Option<&Bound<'_, PyAny>>) -> Result<Option<Py<PyAny>>> {
    match value {
        None => Ok(None),
        Some(value) if value.is_none() => Ok(None),
        Some(value) if value.is_callable() => Ok(Some(value.clone().unbind())),
        Some(value) => Err(Error::type_error(format!(
            "{name} must be callable, not {}",
            duration::type_name(value)
        ))),
    }
}
