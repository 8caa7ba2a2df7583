//! The cache's operations: how a Python call becomes engine calls.
//!
//! # Why this design cannot deadlock
//! moka runs its maintenance inline, inside ordinary calls, while holding its locks.
//! moka-py 0.5.0 hung because that maintenance compared keys with Python `__eq__`
//! and called the listener, both needing the GIL, while other threads held the GIL
//! and waited for those locks. Here, no Python code ever runs while an engine lock
//! is held:
//! - stored keys compare by slot (an integer, see `keys.rs`); Python `==` runs only
//!   inside lock-free lookups;
//! - the listener is queued and called after the engine call (`listener.rs`);
//! - Python references dropped inside the engine are released afterwards
//!   (`pyref.rs`);
//! - the user's weigher and create/update hooks run before the engine call, the
//!   read hook only where moka holds no lock (`expiry.rs`).
//!
//! Every engine call is therefore made while attached to the interpreter (no GIL
//! release and re-acquire per call, which would cost ~35-110 ns): a thread waiting
//! for an engine lock only ever waits for a thread that is running Rust code and
//! will release it. Only `get_with` waiters block on something that may need Python
//! to progress, and they detach while they wait (`flights.rs`).
//!
//! # Why writes re-check what they saw
//! A write first locates its key among the slots of its hash, may then run Python
//! (a key's `__eq__`, an expiry hook), and then changes the engine. If Python ran in
//! between, the GIL may have let another thread add or remove a key of the same
//! hash, so the write checks a per-hash sequence number and starts over if it moved.
//! Free-threaded builds have no GIL to rely on: their writes always check, under a
//! per-cache write lock that is never held while Python runs.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::ops::compute::{CompResult, Op};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyInt;

use crate::duration;
use crate::engine::{Engine, EngineSpec, Engines, Notifier, Policy, Shape};
use crate::errors::{Error, Result};
use crate::expiry::{EntryExpiry, ExpiryHooks, ExpiryPolicy, ReadHookScope};
use crate::flights::{Flights, Joined, Outcome};
use crate::keys::{Comparisons, EngineKey, LookupKey, SlotKey};
use crate::listener::{self, Cause, Listener};
use crate::node::Node;
use crate::noderef::NodeRef;
use crate::pyref::PyOwned;
use crate::slot::Slot;
use crate::stats::{Counter, Snapshot, Stats};

/// Weights are clamped to what moka accepts.
const MAX_WEIGHT: u64 = u32::MAX as u64;

/// Per-call expiration arguments (`set(..., ttl=, tti=)`).
#[derive(Clone, Copy, Debug, Default)]
pub struct EntryOptions {
    pub ttl: Option<Duration>,
    pub tti: Option<Duration>,
    /// Restoring a copied entry: its lifetime is already decided, so the user's
    /// create/update hooks are not asked again.
    pub skip_hooks: bool,
}

impl EntryOptions {
    fn is_empty(&self) -> bool {
        self.ttl.is_none() && self.tti.is_none()
    }
}

/// Hashes shared by several live keys, and the highest probe each uses.
#[derive(Default)]
struct Chains {
    count: AtomicUsize,
    max_probe: Mutex<HashMap<isize, u32>>,
}

impl Chains {
    #[inline]
    fn max_probe(&self, hash: isize) -> u32 {
        if self.count.load(Ordering::Acquire) == 0 {
            return 0;
        }
        self.max_probe.lock().get(&hash).copied().unwrap_or(0)
    }

    fn extend(&self, hash: isize, probe: u32) {
        let mut max_probe = self.max_probe.lock();
        let entry = max_probe.entry(hash).or_insert(0);
        if *entry == 0 {
            self.count.fetch_add(1, Ordering::AcqRel);
        }
        *entry = (*entry).max(probe);
    }

    fn clear(&self) {
        let mut max_probe = self.max_probe.lock();
        max_probe.clear();
        self.count.store(0, Ordering::Release);
    }
}

/// Per-hash-stripe counters of changes to which keys occupy which slots.
struct Sequences([AtomicU64; 64]);

impl Sequences {
    fn new() -> Self {
        Sequences(std::array::from_fn(|_| AtomicU64::new(0)))
    }

    #[inline]
    fn stripe(&self, hash: isize) -> &AtomicU64 {
        &self.0[(hash as usize) % self.0.len()]
    }

    #[inline]
    fn get(&self, hash: isize) -> u64 {
        self.stripe(hash).load(Ordering::Acquire)
    }

    #[inline]
    fn bump(&self, hash: isize) {
        self.stripe(hash).fetch_add(1, Ordering::AcqRel);
    }

    fn bump_all(&self) {
        for seq in &self.0 {
            seq.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// Where a write found its key.
struct Found<'e> {
    engine: &'e Engine,
    /// The probe holding an equal key.
    hit: Option<u32>,
    /// The first probe with no entry (where a new entry goes).
    free_probe: u32,
    sequence: u64,
    ran_python: bool,
}

/// The removals a plain engine did not report one by one (it has no listener): every
/// entry that was inserted and is neither present nor explicitly removed was evicted.
#[derive(Default)]
struct PlainBooks {
    inserted: Counter,
    removed: Counter,
}

/// Everything a cache is made of.
pub struct Store {
    capacity: Option<u64>,
    spec: EngineSpec,
    engines: Engines,
    weigher: Option<Py<PyAny>>,
    stats: Arc<Stats>,
    chains: Chains,
    sequences: Sequences,
    flights: Flights,
    /// Weight added since the engine last applied its pending writes for us.
    pending_weight: Counter,
    /// LRU only: whether writes may be queued that a read must not overtake.
    writes_queued: AtomicBool,
    /// Whether any entry got its own expiration (per-call ttl/tti or `expiry=`).
    per_entry_expiry: AtomicBool,
    plain: PlainBooks,
    #[cfg(Py_GIL_DISABLED)]
    write_lock: Mutex<()>,
}

/// What `write_guard` returns on GIL builds, where the GIL already orders writes.
#[cfg(not(Py_GIL_DISABLED))]
struct GilGuard;

/// The capacity given to moka itself (see [`Store::new`]): at most 0.2% (and 512
/// entries) below the user's, and exactly the user's below 4096.
fn engine_capacity(capacity: u64) -> u64 {
    if capacity < 4096 {
        capacity
    } else {
        capacity - (capacity / 512).min(512)
    }
}

impl Store {
    /// `capacity` is the hard bound the user asked for. moka evicts lazily, in its
    /// maintenance, so on its own it overshoots; running that maintenance after
    /// every insert would cost ~0.5 µs each. Instead a large cache (4096 and up)
    /// gives moka a slightly smaller capacity (by at most 0.2%), so moka's lazy
    /// eviction keeps some room, and maintenance is forced only when an upper bound
    /// of the held weight would pass the user's capacity. Smaller caches get their
    /// exact capacity and pay for the forced maintenance.
    ///
    /// moka applies pending reads before pending writes, so a read of an entry whose
    /// insert is still queued is lost for ordering. An LRU cache promises exact
    /// recency order (it stands in for `functools.lru_cache`), so it applies queued
    /// writes before recording a read that follows them.
    pub fn new(
        capacity: Option<u64>,
        policy: Policy,
        weigher: Option<Py<PyAny>>,
        expiry: Arc<ExpiryPolicy>,
        listener: Option<Arc<Listener>>,
    ) -> Store {
        let stats = Arc::new(Stats::default());
        // Free-threaded builds start timed: the rebuild in `ensure_timed` relies on
        // the GIL to keep other threads out while entries move.
        let shape = if cfg!(Py_GIL_DISABLED) || expiry.hooks.is_some() {
            Shape::Timed
        } else if listener.is_some() || expiry.ttl.is_some() || expiry.tti.is_some() {
            Shape::Notified
        } else {
            Shape::Plain
        };
        let spec = EngineSpec {
            capacity: capacity.map(engine_capacity),
            policy,
            weighted: weigher.is_some(),
            expiry,
            notifier: Arc::new(Notifier::new(Arc::clone(&stats), listener)),
        };
        let engines = Engines::new(Engine::build(&spec, shape));
        Store {
            capacity,
            spec,
            engines,
            weigher,
            stats,
            chains: Chains::default(),
            sequences: Sequences::new(),
            flights: Flights::default(),
            pending_weight: Counter::default(),
            writes_queued: AtomicBool::new(false),
            per_entry_expiry: AtomicBool::new(false),
            plain: PlainBooks::default(),
            #[cfg(Py_GIL_DISABLED)]
            write_lock: Mutex::new(()),
        }
    }

    pub fn capacity(&self) -> Option<u64> {
        self.capacity
    }

    pub fn spec(&self) -> &EngineSpec {
        &self.spec
    }

    pub fn weigher(&self) -> Option<&Py<PyAny>> {
        self.weigher.as_ref()
    }

    fn hooks(&self) -> Option<&ExpiryHooks> {
        self.spec.expiry.hooks.as_ref()
    }

    // ----- reads -------------------------------------------------------------------

    /// The node of `key`, recording the read (LRU/TinyLFU order, TTI, read hook).
    #[inline]
    pub fn lookup(&self, key: &Bound<'_, PyAny>, hash: isize) -> Result<Option<NodeRef>> {
        let engine = self.engines.current();
        self.order_reads_after_writes(engine);
        let max_probe = self.chains.max_probe(hash);
        if max_probe == 0 && self.hooks().is_none() {
            // The common case: one slot to look at, no read hook to run.
            let comparisons = Comparisons::default();
            let found = engine
                .cache
                .get(&LookupKey::new(Slot::new(hash, 0), key, &comparisons));
            comparisons.check()?;
            return Ok(found);
        }
        self.lookup_probes(engine, key, hash, max_probe)
    }

    /// `lookup` for a hash with colliding keys, or on a cache with a read hook: out of
    /// line, so that the common case stays small enough to inline.
    #[inline(never)]
    fn lookup_probes(
        &self,
        engine: &Engine,
        key: &Bound<'_, PyAny>,
        hash: isize,
        max_probe: u32,
    ) -> Result<Option<NodeRef>> {
        let hook_scope = self
            .hooks()
            .filter(|hooks| hooks.has_read())
            .map(|_| ReadHookScope::open());
        let comparisons = Comparisons::default();
        for probe in 0..=max_probe {
            let found =
                engine
                    .cache
                    .get(&LookupKey::new(Slot::new(hash, probe), key, &comparisons));
            comparisons.check()?;
            if let Some(err) = hook_scope.as_ref().and_then(ReadHookScope::take_error) {
                return Err(err);
            }
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// On an LRU cache, applies queued writes so the next read is ordered after them.
    #[inline]
    fn order_reads_after_writes(&self, engine: &Engine) {
        if self.writes_queued.load(Ordering::Relaxed) {
            self.apply_pending(engine);
        }
    }

    /// Notes that a write was queued (see `order_reads_after_writes`).
    #[inline]
    fn queued_write(&self) {
        if self.spec.policy == Policy::Lru {
            self.writes_queued.store(true, Ordering::Relaxed);
        }
    }

    /// `cache.get(key)`: the value, counting a hit or a miss.
    #[inline]
    pub fn get<'py>(
        &self,
        key: &Bound<'py, PyAny>,
        hash: isize,
    ) -> Result<Option<Bound<'py, PyAny>>> {
        match self.lookup(key, hash)? {
            Some(node) => {
                self.stats.hits.add(1);
                let value = node.value(key.py());
                node.release(key.py());
                Ok(Some(value))
            }
            None => {
                self.stats.misses.add(1);
                Ok(None)
            }
        }
    }

    /// `key in cache`: no read is recorded and idle timers are not reset.
    pub fn contains(&self, key: &Bound<'_, PyAny>, hash: isize) -> Result<bool> {
        let engine = self.engines.current();
        let comparisons = Comparisons::default();
        for probe in 0..=self.chains.max_probe(hash) {
            let present = engine.cache.contains_key(&LookupKey::new(
                Slot::new(hash, probe),
                key,
                &comparisons,
            ));
            comparisons.check()?;
            if present {
                return Ok(true);
            }
        }
        Ok(false)
    }

    // ----- writes ------------------------------------------------------------------

    /// Finds which probe of `key`'s hash holds it, or which is free for it, without
    /// recording a read.
    fn locate(&self, key: &Bound<'_, PyAny>, hash: isize) -> Result<Found<'_>> {
        let engine = self.engines.current();
        let sequence = self.sequences.get(hash);
        let max_probe = self.chains.max_probe(hash);
        let mut free_probe = None;
        let mut ran_python = false;
        for probe in 0..=max_probe {
            let comparisons = Comparisons::default();
            let present = engine.cache.contains_key(&LookupKey::new(
                Slot::new(hash, probe),
                key,
                &comparisons,
            ));
            comparisons.check()?;
            ran_python |= comparisons.ran_python();
            if present {
                return Ok(Found {
                    engine,
                    hit: Some(probe),
                    free_probe: probe,
                    sequence,
                    ran_python,
                });
            }
            if !comparisons.saw_other_key() && free_probe.is_none() {
                free_probe = Some(probe);
            }
        }
        // Past the chain a probe is usually free, but its slot may hold a key of another
        // hash (the slots of two hashes can coincide, see `slot.rs`): inserting there
        // would overwrite that entry. Only a slot that holds no entry at all is free.
        let mut probe = max_probe;
        let free_probe = loop {
            if let Some(free) = free_probe {
                break free;
            }
            probe += 1;
            let comparisons = Comparisons::default();
            let present = engine.cache.contains_key(&LookupKey::new(
                Slot::new(hash, probe),
                key,
                &comparisons,
            ));
            comparisons.check()?;
            ran_python |= comparisons.ran_python();
            if present {
                return Ok(Found {
                    engine,
                    hit: Some(probe),
                    free_probe: probe,
                    sequence,
                    ran_python,
                });
            }
            if !comparisons.saw_other_key() {
                free_probe = Some(probe);
            }
        };
        Ok(Found {
            engine,
            hit: None,
            free_probe,
            sequence,
            ran_python,
        })
    }

    /// Whether what `locate` found still holds, so the write may proceed.
    #[inline]
    fn still_valid(&self, found: &Found<'_>, hash: isize) -> bool {
        if !std::ptr::eq(self.engines.current(), found.engine) {
            return false;
        }
        if !found.ran_python && cfg!(not(Py_GIL_DISABLED)) {
            // Nothing could have released the GIL since `locate`.
            return true;
        }
        self.sequences.get(hash) == found.sequence
    }

    #[cfg(Py_GIL_DISABLED)]
    fn write_guard(&self, py: Python<'_>) -> parking_lot::MutexGuard<'_, ()> {
        loop {
            if let Some(guard) = self.write_lock.try_lock() {
                return guard;
            }
            py.detach(|| drop(self.write_lock.lock()));
        }
    }

    /// With the GIL, writes need no lock of their own (see the module docs).
    #[cfg(not(Py_GIL_DISABLED))]
    #[inline]
    fn write_guard(&self, _py: Python<'_>) -> GilGuard {
        GilGuard
    }

    /// The weight of a new entry: 1, or the weigher's answer (run before any engine
    /// call, so a failing weigher leaves the cache as it was).
    fn weigh(&self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> Result<u32> {
        let Some(weigher) = &self.weigher else {
            return Ok(1);
        };
        let weight = weigher.bind(key.py()).call1((key, value))?;
        let Ok(weight) = weight.cast::<PyInt>() else {
            return Err(Error::type_error(format!(
                "weigher must return an int, got {}",
                duration::type_name(&weight)
            )));
        };
        if weight.lt(0)? {
            return Err(Error::value_error("weigher must return a non-negative int"));
        }
        let weight: u64 = weight.extract().unwrap_or(MAX_WEIGHT);
        Ok(weight.min(MAX_WEIGHT) as u32)
    }

    /// Per-entry expiration state for a new node, running the create/update hook.
    /// Also says whether Python ran.
    fn entry_expiry(
        &self,
        engine: &Engine,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        replacing: Option<&Node>,
        options: &EntryOptions,
    ) -> Result<(Option<EntryExpiry>, bool)> {
        if engine.shape == Shape::Plain {
            // No ttl, tti or hooks, and no per-call ones either (they make the engine
            // timed before a write gets here).
            return Ok((None, false));
        }
        let policy = &self.spec.expiry;
        let mut ran_python = false;
        let mut lifetime = options.ttl;
        let mut kept = None;
        if let Some(hooks) = policy.hooks.as_ref().filter(|_| !options.skip_hooks) {
            ran_python = true;
            match replacing {
                None => {
                    if let Some(d) = hooks.on_create(key, value)? {
                        lifetime = Some(lifetime.map_or(d, |l| l.min(d)));
                    }
                }
                Some(old) => {
                    let old_expiry = old.expiry();
                    let remaining = old_expiry.and_then(|e| e.remaining(Instant::now()));
                    match hooks.on_update(key, value, remaining)? {
                        Some(d) => lifetime = Some(lifetime.map_or(d, |l| l.min(d))),
                        None => kept = old_expiry.and_then(EntryExpiry::fixed_deadline),
                    }
                }
            }
        }
        let tracks_deadline =
            policy.ttl.is_some() || policy.tti.is_some() || policy.hooks.is_some();
        if !tracks_deadline && lifetime.is_none() && kept.is_none() && options.tti.is_none() {
            return Ok((None, ran_python));
        }
        let track_reads = policy.hooks.is_some();
        Ok((
            Some(EntryExpiry::new(lifetime, kept, options.tti, track_reads)),
            ran_python,
        ))
    }

    /// `cache.set(key, value, ttl, tti)`.
    pub fn put(
        &self,
        key: &Bound<'_, PyAny>,
        hash: isize,
        value: &Bound<'_, PyAny>,
        options: &EntryOptions,
    ) -> Result<()> {
        let py = key.py();
        let weight = self.weigh(key, value)?;
        if !options.is_empty() {
            self.ensure_timed(py);
            self.per_entry_expiry.store(true, Ordering::Relaxed);
        }
        loop {
            let mut found = self.locate(key, hash)?;
            let engine = found.engine;
            // The entry being overwritten; reading it also records the write as a use.
            let current = match found.hit {
                Some(probe) => {
                    self.order_reads_after_writes(engine);
                    let comparisons = Comparisons::default();
                    let node = engine.cache.get(&LookupKey::new(
                        Slot::new(hash, probe),
                        key,
                        &comparisons,
                    ));
                    comparisons.check()?;
                    found.ran_python |= comparisons.ran_python();
                    node
                }
                None => None,
            };
            let (expiry, hooks_ran) =
                self.entry_expiry(engine, key, value, current.as_deref(), options)?;
            found.ran_python |= hooks_ran;
            let _guard = self.write_guard(py);
            if !self.still_valid(&found, hash) {
                continue;
            }
            match (found.hit, current) {
                (Some(probe), Some(node)) => {
                    self.replace(engine, key, hash, probe, &node, value, weight, expiry);
                    node.release(py);
                }
                (Some(probe), None) => {
                    // Evicted or expired since `locate`: its slot is ours again.
                    self.insert_at(engine, key, hash, probe, value, weight, expiry);
                }
                (None, _) => {
                    if found.free_probe > 0 {
                        self.chains.extend(hash, found.free_probe);
                    }
                    self.insert_at(engine, key, hash, found.free_probe, value, weight, expiry);
                }
            }
            return Ok(());
        }
    }

    /// Overwrites the entry `node` at `probe` with `value`.
    #[allow(clippy::too_many_arguments)]
    fn replace(
        &self,
        engine: &Engine,
        key: &Bound<'_, PyAny>,
        hash: isize,
        probe: u32,
        node: &NodeRef,
        value: &Bound<'_, PyAny>,
        weight: u32,
        expiry: Option<EntryExpiry>,
    ) {
        #[cfg(not(Py_GIL_DISABLED))]
        let swap = self.swaps_in_place(engine, expiry.as_ref());
        #[cfg(Py_GIL_DISABLED)]
        let swap = false;
        if (swap || !engine.notified() || self.weigher.is_some())
            && !engine.cache.contains_key(&SlotKey(Slot::new(hash, probe)))
        {
            // The read that found `node` may have run maintenance that evicted it. Its
            // slot is free again, and this write is a new entry: the plain books must
            // count it as one, a swap would land in a dead node, and with a weigher its
            // whole weight is new (counting only the difference could let the cache end
            // the call above its capacity). A notified engine that re-inserts without a
            // weigher adds the same weight, and has reported the eviction already.
            self.insert_at(engine, key, hash, probe, value, weight, expiry);
            return;
        }
        #[cfg(not(Py_GIL_DISABLED))]
        if swap {
            // Nothing the engine keeps per entry needs refreshing (see `swaps_in_place`),
            // and the read just recorded moved the entry up in the policy's order as an
            // insert would.
            let previous = node.replace_value(key.py(), PyOwned::new(value));
            if engine.notified() {
                self.spec
                    .notifier
                    .replaced(node.key().clone_ref(key.py()), previous);
            }
            return;
        }
        // Like a dict, the entry keeps the key object it was first stored under.
        let stored_key = node.key().to_bound(key.py());
        self.insert_node(engine, &stored_key, hash, probe, value, weight, expiry);
        self.admit_weight(
            engine,
            u64::from(weight).saturating_sub(u64::from(node.weight())),
        );
    }

    /// Whether overwriting an entry may swap its value in place instead of inserting a
    /// new node: 2-3x cheaper, and on a notified engine it also spares moka's per-key
    /// lock and the epoch flush it runs after every replacement it reports.
    ///
    /// Only GIL builds swap (see `Node::replace_value`), and only where the engine keeps
    /// nothing per entry that an insert would refresh: no weigher (the weight stays 1),
    /// and no expiration at all, since moka's ttl clock restarts only on an insert and the
    /// timed engine asks for each entry's new deadline on an update. The listener of a
    /// notified engine is told "replaced" by the store, as moka would have told it.
    #[cfg(not(Py_GIL_DISABLED))]
    #[inline]
    fn swaps_in_place(&self, engine: &Engine, expiry: Option<&EntryExpiry>) -> bool {
        self.weigher.is_none()
            && expiry.is_none()
            && match engine.shape {
                Shape::Plain => true,
                Shape::Notified => self.spec.expiry.ttl.is_none() && self.spec.expiry.tti.is_none(),
                Shape::Timed => false,
            }
    }

    /// Inserts a new entry at `probe`.
    #[allow(clippy::too_many_arguments)]
    fn insert_at(
        &self,
        engine: &Engine,
        key: &Bound<'_, PyAny>,
        hash: isize,
        probe: u32,
        value: &Bound<'_, PyAny>,
        weight: u32,
        expiry: Option<EntryExpiry>,
    ) {
        self.plain.inserted.add(1);
        if self.capacity == Some(0) {
            // moka stores nothing at all at capacity 0; report the refusal like any
            // other entry the policy does not admit.
            if engine.notified() {
                self.stats.evictions.add(1);
                if let Some(listener) = &self.spec.notifier.listener {
                    listener::enqueue(
                        listener,
                        PyOwned::new(key),
                        PyOwned::new(value),
                        Cause::Size,
                    );
                }
            }
            return;
        }
        self.insert_node(engine, key, hash, probe, value, weight, expiry);
        self.admit_weight(engine, u64::from(weight));
    }

    /// The engine insert shared by new entries and replacements: a node for `key` and
    /// `value` at probe `probe` of `hash`.
    #[allow(clippy::too_many_arguments)]
    fn insert_node(
        &self,
        engine: &Engine,
        key: &Bound<'_, PyAny>,
        hash: isize,
        probe: u32,
        value: &Bound<'_, PyAny>,
        weight: u32,
        expiry: Option<EntryExpiry>,
    ) {
        if !engine.timed() {
            if let Some(expiry) = &expiry {
                // No `Expiry` registered to start the entry's clock: start it here,
                // just before moka starts its own, so that the tracked lifetime never
                // outlasts moka's.
                expiry.start(Instant::now(), &self.spec.expiry);
            }
        }
        let node = NodeRef::new(Node::new(
            PyOwned::new(key),
            PyOwned::new(value),
            weight,
            probe,
            expiry,
        ));
        let slot = Slot::new(hash, probe);
        engine.cache.insert(EngineKey::new(slot, &node), node);
        // Only after the slot is filled: a `locate` that reads the new number must also
        // see the entry, or a free-threaded writer of another key of this hash could take
        // the slot in the gap and overwrite it. Re-inserting an entry that maintenance
        // evicted meanwhile fills a slot too, so replacements bump as well.
        self.sequences.bump(hash);
        self.queued_write();
    }

    /// Keeps the held weight within the capacity after `added` more weight.
    #[inline]
    fn admit_weight(&self, engine: &Engine, added: u64) {
        let Some(capacity) = self.capacity else {
            return;
        };
        if added == 0 {
            return;
        }
        self.pending_weight.add(added);
        let bound = engine
            .cache
            .weighted_size()
            .saturating_add(self.pending_weight.get());
        if bound > capacity {
            self.apply_pending(engine);
        }
    }

    /// Runs the engine's pending maintenance until it holds at most the capacity.
    fn apply_pending(&self, engine: &Engine) {
        // Cleared first: what another thread writes while maintenance runs stays noted
        // (counting a write that this round applies twice only makes the next check
        // stricter), where clearing afterwards could forget it on a free-threaded build.
        self.pending_weight.reset();
        self.writes_queued.store(false, Ordering::Relaxed);
        // One round normally suffices; moka bounds the work of each round (and, with
        // a listener, its time), so a huge backlog may take a few.
        for _ in 0..64 {
            engine.cache.run_pending_tasks();
            match self.capacity {
                Some(capacity) if engine.cache.weighted_size() > capacity => {}
                _ => break,
            }
        }
    }

    /// `cache.remove(key)`: the removed value, if the key was present.
    pub fn remove<'py>(
        &self,
        key: &Bound<'py, PyAny>,
        hash: isize,
    ) -> Result<Option<Bound<'py, PyAny>>> {
        let py = key.py();
        loop {
            let found = self.locate(key, hash)?;
            let Some(probe) = found.hit else {
                return Ok(None);
            };
            let _guard = self.write_guard(py);
            if !self.still_valid(&found, hash) {
                continue;
            }
            let removed = found.engine.cache.remove(&SlotKey(Slot::new(hash, probe)));
            // After the engine change, for the reason given in `insert_node`.
            self.sequences.bump(hash);
            self.queued_write();
            return Ok(removed.map(|node| {
                self.plain.removed.add(1);
                node.value(py)
            }));
        }
    }

    // ----- get_with ----------------------------------------------------------------

    /// `cache.get_with(key, initializer)`: one initializer per key at a time.
    ///
    /// `options` is only evaluated on a miss, so arguments that only a miss needs
    /// (the initializer, per-entry ttl/tti) cost nothing on the hit path.
    pub fn get_with<'py>(
        &self,
        key: &Bound<'py, PyAny>,
        hash: isize,
        options: impl FnOnce() -> Result<EntryOptions>,
        initializer: impl Fn() -> PyResult<Bound<'py, PyAny>>,
    ) -> Result<Bound<'py, PyAny>> {
        let py = key.py();
        if let Some(node) = self.lookup(key, hash)? {
            self.stats.hits.add(1);
            let value = node.value(py);
            node.release(py);
            return Ok(value);
        }
        self.stats.misses.add(1);
        let options = &options()?;
        self.load(key, hash, options, initializer)
    }

    /// The rest of `get_with` once its miss is counted: joins the key's flight, or
    /// runs `initializer` and stores its result. (`@cached(wait_concurrent=True)`
    /// counts its own miss first, so it starts here.)
    pub fn load<'py>(
        &self,
        key: &Bound<'py, PyAny>,
        hash: isize,
        options: &EntryOptions,
        initializer: impl Fn() -> PyResult<Bound<'py, PyAny>>,
    ) -> Result<Bound<'py, PyAny>> {
        let py = key.py();
        loop {
            match self.flights.join(key, hash)? {
                Joined::Waiter(flight) => match flight.wait(py)? {
                    Outcome::Value(value) => return Ok(value),
                    Outcome::Retry => {}
                },
                Joined::Owner(owner) => {
                    // A previous owner may have landed between our miss and our join.
                    if let Some(node) = self.lookup(key, hash)? {
                        let value = node.value(py);
                        owner.succeed(&value);
                        return Ok(value);
                    }
                    let started = Instant::now();
                    let outcome = initializer().map_err(Error::from).and_then(|value| {
                        self.put(key, hash, &value, options)?;
                        Ok(value)
                    });
                    self.stats.record_load(outcome.is_ok(), started.elapsed());
                    return match outcome {
                        Ok(value) => {
                            owner.succeed(&value);
                            Ok(value)
                        }
                        Err(err) => {
                            let err = PyErr::from(err);
                            owner.fail(py, &err);
                            Err(Error::Python(err))
                        }
                    };
                }
            }
        }
    }

    // ----- whole-cache operations --------------------------------------------------

    /// Applies pending maintenance (evictions, expirations) now.
    pub fn run_pending_tasks(&self) {
        self.apply_pending(self.engines.current());
        release_removed_entries();
    }

    /// The exact number of live entries.
    ///
    /// moka removes entries with their own expiration through a timer wheel that
    /// ticks about once a second, so such an entry can outlive its deadline in moka's
    /// count for up to a second (lookups never return it). When any entry has its own
    /// expiration, the live entries are counted one by one instead.
    pub fn len(&self) -> u64 {
        self.run_pending_tasks();
        let engine = self.engines.current();
        if self.per_entry_expiry.load(Ordering::Relaxed) || self.hooks().is_some() {
            engine.cache.iter().count() as u64
        } else {
            engine.cache.entry_count()
        }
    }

    /// moka's running entry count (cheap; may include entries pending removal).
    pub fn count(&self) -> u64 {
        self.engines.current().cache.entry_count()
    }

    pub fn weighted_size(&self) -> u64 {
        self.engines.current().cache.weighted_size()
    }

    /// Removes every entry (listener cause "explicit").
    pub fn clear(&self, py: Python<'_>) {
        let _guard = self.write_guard(py);
        let engine = self.engines.current();
        engine.cache.run_pending_tasks();
        let removed = engine.cache.entry_count();
        engine.cache.invalidate_all();
        self.apply_pending(engine);
        self.plain.removed.add(removed);
        self.chains.clear();
        self.sequences.bump_all();
        release_removed_entries();
    }

    /// Drops every entry without notifying the listener: the garbage collector
    /// breaking a reference cycle through an unreachable cache (`Moka.__clear__`).
    pub fn discard_all(&self, py: Python<'_>) {
        self.spec.notifier.silenced.store(true, Ordering::Relaxed);
        self.clear(py);
        self.spec.notifier.silenced.store(false, Ordering::Relaxed);
    }

    /// The live entries, without recording reads.
    pub fn entries(&self) -> Vec<(Arc<EngineKey>, NodeRef)> {
        self.engines.current().cache.iter().collect()
    }

    /// Calls `f` on every live entry, without recording reads or collecting them (for
    /// `__traverse__`, which runs on every full garbage collection).
    pub fn for_each_entry<E>(
        &self,
        mut f: impl FnMut(&EngineKey, &Node) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        for (key, node) in self.engines.current().cache.iter() {
            f(&key, &node)?;
        }
        Ok(())
    }

    /// Removes `node` if it still is the entry at `key`'s slot and still holds the
    /// value at `value` (values may be swapped in place); true if it did. A node that
    /// moved to a timed engine may have been copied (see `carried_over`), so the entry
    /// is recognised by its key and value objects, not by the node's address.
    pub fn remove_if_current(
        &self,
        py: Python<'_>,
        key: &EngineKey,
        node: &NodeRef,
        value: *mut pyo3::ffi::PyObject,
    ) -> bool {
        let _guard = self.write_guard(py);
        let engine = self.engines.current();
        let result = engine
            .cache
            .entry(EngineKey::new(key.slot(), node))
            .and_compute_with(|entry| match entry {
                Some(entry)
                    if entry.value().key().as_ptr() == node.key().as_ptr()
                        && entry.value().value_ptr(py) == value =>
                {
                    Op::Remove
                }
                _ => Op::Nop,
            });
        let removed = matches!(result, CompResult::Removed(_));
        if removed {
            self.sequences.bump(key.slot().hash_for_probe(node.probe()));
            self.plain.removed.add(1);
        }
        removed
    }

    /// The statistics; a plain engine's evictions are worked out from its books.
    pub fn stats(&self) -> Snapshot {
        let engine = self.engines.current();
        let unreported = if engine.notified() {
            0
        } else {
            self.apply_pending(engine);
            self.plain_departures(engine)
        };
        self.stats.snapshot(unreported)
    }

    fn plain_departures(&self, engine: &Engine) -> u64 {
        self.plain
            .inserted
            .get()
            .saturating_sub(self.plain.removed.get())
            .saturating_sub(engine.cache.entry_count())
    }

    /// Counts a load made outside `get_with` (the async path).
    pub fn record_load(&self, ok: bool, elapsed: Duration) {
        self.stats.record_load(ok, elapsed);
    }

    /// Time left before `node` expires (`None`: it never does).
    pub fn remaining(&self, node: &Node) -> Option<Duration> {
        node.expiry().and_then(|e| e.remaining(Instant::now()))
    }

    /// Turns a plain or notified engine into a timed one, the first time an entry
    /// needs its own expiration. Entries move over with their values, weights and
    /// lifetimes (a moved entry keeps the deadline of the cache-wide ttl it was
    /// written under), but their recency/frequency history and their idle clocks
    /// restart: moka keeps when an entry was last read to itself. (Free-threaded
    /// builds start timed, so this never runs there.)
    fn ensure_timed(&self, py: Python<'_>) {
        let old = self.engines.current();
        if old.timed() {
            return;
        }
        old.cache.run_pending_tasks();
        if !old.notified() {
            // The plain books close here: whatever left the plain engine was evicted.
            self.stats.evictions.add(self.plain_departures(old));
        }
        self.plain.inserted.reset();
        self.plain.removed.reset();
        let timed = Engine::build(&self.spec, Shape::Timed);
        let now = Instant::now();
        // Only a notified engine reports the removals that emptying it will cause.
        let mut moved = HashSet::new();
        for (key, node) in old.cache.iter() {
            if old.notified() {
                moved.insert(NodeRef::as_ptr(&node) as usize);
            }
            let node = carried_over(py, node, now);
            timed.cache.insert(EngineKey::new(key.slot(), &node), node);
        }
        // Whatever the new engine evicts here did leave, and is reported as usual.
        timed.cache.run_pending_tasks();
        self.engines.install(timed);
        // Of the old engine's removals, only those of entries that did not move are
        // departures: entries that expired before the move (`iter` skips them) are
        // reported now, as expired. (One that went idle in the microseconds between the
        // first `run_pending_tasks` above and `invalidate_all` is reported as explicit:
        // moka's write-order sweep sees only the ttl and the invalidation.) Each round is
        // bounded by moka, so sweep until a round removes nothing: an entry left behind
        // would hold its Python objects, out of the garbage collector's sight.
        self.spec.notifier.with_moved(moved, || {
            old.cache.invalidate_all();
            let mut left = u64::MAX;
            loop {
                old.cache.run_pending_tasks();
                let now_left = old.cache.entry_count();
                if now_left == 0 || now_left >= left {
                    break;
                }
                left = now_left;
            }
        });
        self.pending_weight.reset();
    }
}

/// The node an entry moves to a timed engine with. An entry that follows the
/// cache-wide ttl gets that deadline as its own, since the new engine would count
/// the ttl afresh from the move.
fn carried_over(py: Python<'_>, node: NodeRef, now: Instant) -> NodeRef {
    let Some(deadline) = node
        .expiry()
        .and_then(|e| e.remaining_lifetime(now))
        .map(|left| now + left)
    else {
        return node;
    };
    let idle = node.expiry().and_then(EntryExpiry::idle);
    NodeRef::new(Node::new(
        node.key().clone_ref(py),
        PyOwned::from_bound(node.value(py)),
        node.weight(),
        node.probe(),
        Some(EntryExpiry::new(None, Some(deadline), idle, false)),
    ))
}

/// moka frees the entries it removed from its table through crossbeam's epoch-based
/// GC, once no thread may still be reading them; a few pins let the epoch advance so
/// that their nodes, and the Python objects they hold, go now rather than later.
pub fn release_removed_entries() {
    for _ in 0..4 {
        crossbeam_epoch::pin().flush();
    }
}
