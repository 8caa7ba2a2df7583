//! `moka_py._moka_py`: the native half of moka-py.
//!
//! This file only declares the module; each concern lives in its own file:
//! - `cache.rs`: the `Moka` class, `fastcall.rs`: its `get` and `get_with`
//!   without PyO3's argument parsing; `cached.rs`: the `@cached` wrapper's hot path,
//!   `vectorcall.rs`: calling that wrapper without an argument tuple;
//! - `store.rs`: the operations, and why they cannot deadlock;
//! - `engine.rs`: building moka; `keys.rs` + `slot.rs`: the key bridge;
//! - `node.rs` + `noderef.rs`: one entry, and the handle the engine shares it by;
//! - `expiry.rs`, `listener.rs`, `flights.rs`, `stats.rs`: one feature each;
//! - `pyref.rs` + `settle.rs`: releasing Python objects outside engine locks;
//! - `config.rs`, `duration.rs`, `errors.rs`: argument checks and error mapping.

use pyo3::prelude::*;

mod cache;
mod cached;
mod config;
mod duration;
mod engine;
mod errors;
mod expiry;
mod fastcall;
mod flights;
mod keys;
mod listener;
mod node;
mod noderef;
mod pyref;
mod settle;
mod slot;
mod stats;
mod store;
mod vectorcall;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[pymodule(gil_used = false)]
fn _moka_py(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<cache::Moka>()?;
    fastcall::install(m.py())?;
    vectorcall::install(m.py())?;
    m.add_class::<cached::CachedFunction>()?;
    m.add("VERSION", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
