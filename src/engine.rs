//! Building the moka cache that stores a `Moka`'s entries.
//!
//! Three shapes exist, each registering only what its cache needs (see [`Shape`]):
//! moka's cheaper configurations are much cheaper, so a cache starts in the least it
//! can and is rebuilt once, as a timed engine, the first time an entry needs its own
//! expiration (see `Store::ensure_timed`).

use std::collections::HashSet;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::Arc;

use moka::notification::RemovalCause;
use moka::policy::EvictionPolicy;
use parking_lot::Mutex;

use crate::errors::{Error, Result};
use crate::expiry::{ExpiryPolicy, NodeExpiry};
use crate::keys::EngineKey;
use crate::listener::{self, Cause, Listener};
use crate::node::Node;
use crate::noderef::NodeRef;
use crate::pyref::PyOwned;
use crate::slot::SlotHasherBuilder;
use crate::stats::Stats;

/// The moka cache type used by this crate.
pub type MokaCache = moka::sync::Cache<EngineKey, NodeRef, SlotHasherBuilder>;

/// The eviction policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    TinyLfu,
    Lru,
}

impl Policy {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "tiny_lfu" => Ok(Policy::TinyLfu),
            "lru" => Ok(Policy::Lru),
            other => Err(Error::value_error(format!(
                "'{other}' is not valid policy: policy must be 'tiny_lfu' or 'lru'"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Policy::TinyLfu => "tiny_lfu",
            Policy::Lru => "lru",
        }
    }
}

/// Where the engine's removal notifications go.
pub struct Notifier {
    pub stats: Arc<Stats>,
    pub listener: Option<Arc<Listener>>,
    /// Set while the garbage collector empties an unreachable cache (`__clear__`):
    /// its listener must not hear of entries that nobody removed.
    pub silenced: AtomicBool,
    /// While an old engine is emptied after its entries moved to a new one
    /// (`Store::ensure_timed`): the addresses of the nodes that moved, whose removal
    /// from the old engine is no departure.
    moved: Mutex<Option<HashSet<usize>>>,
    moving: AtomicBool,
}

impl Notifier {
    pub fn new(stats: Arc<Stats>, listener: Option<Arc<Listener>>) -> Self {
        Notifier {
            stats,
            listener,
            silenced: AtomicBool::new(false),
            moved: Mutex::new(None),
            moving: AtomicBool::new(false),
        }
    }

    /// Runs `empty` with the removals of the nodes in `moved` unreported.
    pub fn with_moved(&self, moved: HashSet<usize>, empty: impl FnOnce()) {
        *self.moved.lock() = Some(moved);
        self.moving.store(true, Ordering::Relaxed);
        empty();
        self.moving.store(false, Ordering::Relaxed);
        *self.moved.lock() = None;
    }

    /// Reports that the store replaced a value in place, as moka reports a replacing
    /// insert (see `Store::swaps_in_place`).
    pub fn replaced(&self, key: PyOwned, previous: PyOwned) {
        if self.silenced.load(Ordering::Relaxed) {
            return;
        }
        if let Some(listener) = &self.listener {
            listener::enqueue(listener, key, previous, Cause::Replaced);
        }
    }

    fn notify(&self, node: &Node, cause: RemovalCause) {
        if self.silenced.load(Ordering::Relaxed) {
            return;
        }
        if self.moving.load(Ordering::Relaxed) {
            let address = std::ptr::from_ref(node) as usize;
            if self
                .moved
                .lock()
                .as_ref()
                .is_some_and(|m| m.contains(&address))
            {
                return;
            }
        }
        let cause = Cause::from(cause);
        match cause {
            Cause::Size => self.stats.evictions.add(1),
            Cause::Expired => self.stats.expirations.add(1),
            Cause::Explicit | Cause::Replaced => {}
        }
        if let Some(listener) = &self.listener {
            // SAFETY: moka runs this inside one of our engine calls, all of which are
            // made while attached to the interpreter.
            let (key, value) = unsafe { (node.key().clone_attached(), node.value_attached()) };
            listener::enqueue(listener, key, value, cause);
        }
    }
}

/// What an engine needs to know to be built.
pub struct EngineSpec {
    /// The engine's own capacity (`None`: unbounded); see `Store` for why it may be a
    /// little below the user's.
    pub capacity: Option<u64>,
    pub policy: Policy,
    pub weighted: bool,
    pub expiry: Arc<ExpiryPolicy>,
    pub notifier: Arc<Notifier>,
}

/// What a built engine registers with moka.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Neither an eviction listener nor per-entry expiry: moka's cheapest
    /// configuration, for caches with no listener and no ttl/tti. The store works out
    /// what such an engine evicted from its own books.
    Plain,
    /// An eviction listener, so that every removal is reported with its cause (the
    /// user's listener, and telling an expiration from a size eviction in the stats).
    /// It turns on moka's per-key locks (writes ~15% slower). The cache-wide ttl/tti
    /// are moka's own, with no per-entry expiry.
    Notified,
    /// A listener and moka's per-entry `Expiry`, for per-call ttl/tti and `expiry=`
    /// hooks. moka then asks every entry for its deadline on each read and advances its
    /// timer wheel in every maintenance run: a `get` hit takes ~22% more instructions
    /// than on a notified engine (callgrind, see DEVELOPERS.md).
    Timed,
}

/// One built moka cache.
pub struct Engine {
    pub cache: MokaCache,
    pub shape: Shape,
}

impl Engine {
    /// Whether moka reports this engine's removals through the notifier.
    #[inline]
    pub fn notified(&self) -> bool {
        self.shape != Shape::Plain
    }

    /// Whether this engine asks each entry for its own deadline.
    #[inline]
    pub fn timed(&self) -> bool {
        self.shape == Shape::Timed
    }

    pub fn build(spec: &EngineSpec, shape: Shape) -> Engine {
        let mut builder =
            moka::sync::Cache::<EngineKey, NodeRef>::builder().eviction_policy(match spec.policy {
                Policy::TinyLfu => EvictionPolicy::tiny_lfu(),
                Policy::Lru => EvictionPolicy::lru(),
            });
        if let Some(capacity) = spec.capacity {
            builder = builder.max_capacity(capacity);
        }
        if spec.weighted {
            builder = builder.weigher(|_key: &EngineKey, node: &NodeRef| node.weight());
        }
        if let Some(ttl) = spec.expiry.ttl {
            builder = builder.time_to_live(ttl);
        }
        if let Some(tti) = spec.expiry.tti {
            builder = builder.time_to_idle(tti);
        }
        if shape == Shape::Timed {
            builder = builder.expire_after(NodeExpiry::new(Arc::clone(&spec.expiry)));
        }
        if shape != Shape::Plain {
            let notifier = Arc::clone(&spec.notifier);
            builder =
                builder.eviction_listener(move |_key: Arc<EngineKey>, node: NodeRef, cause| {
                    notifier.notify(&node, cause);
                });
        }
        Engine {
            cache: builder.build_with_hasher(SlotHasherBuilder::new()),
            shape,
        }
    }
}

/// The current engine of a cache, replaceable once (plain or notified → timed).
///
/// Replaced engines are kept until the cache itself is dropped, so a `&Engine`
/// handed out earlier stays valid for as long as the cache lives; code that ran
/// Python in between re-reads the current engine before writing (see `store.rs`).
pub struct Engines {
    current: AtomicPtr<Engine>,
    // Boxed on purpose: `current` points into these boxes, which must not move when
    // the vector grows.
    #[allow(clippy::vec_box)]
    all: Mutex<Vec<Box<Engine>>>,
}

impl Engines {
    pub fn new(engine: Engine) -> Self {
        let mut boxed = Box::new(engine);
        let current = AtomicPtr::new(ptr::addr_of_mut!(*boxed));
        Engines {
            current,
            all: Mutex::new(vec![boxed]),
        }
    }

    #[inline]
    pub fn current(&self) -> &Engine {
        // SAFETY: `current` always points into a box owned by `all`, and boxes are
        // only dropped together with `self`, which outlives the returned borrow.
        unsafe { &*self.current.load(Ordering::Acquire) }
    }

    /// Makes `engine` the current engine and returns it.
    pub fn install(&self, engine: Engine) -> &Engine {
        let mut boxed = Box::new(engine);
        let raw = ptr::addr_of_mut!(*boxed);
        self.all.lock().push(boxed);
        self.current.store(raw, Ordering::Release);
        // SAFETY: as in `current`.
        unsafe { &*raw }
    }
}
