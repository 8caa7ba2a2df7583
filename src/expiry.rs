//! Per-entry expiration: per-call `ttl`/`tti`, and the user's `expiry=` object.
//!
//! moka asks an [`moka::Expiry`] for each entry's deadline. [`NodeExpiry`] answers
//! from the [`EntryExpiry`] stored in the node, without running Python, because moka
//! calls `expire_after_create`/`expire_after_update` while it holds a per-key lock.
//! The user's `expire_after_create`/`expire_after_update` hooks therefore run
//! *before* the engine call (see `store.rs`) and their answers travel inside the
//! node. `expire_after_read` is the exception: moka calls it from a plain `get`
//! with no lock held, so the read hook runs right there — but only when the calling
//! code opted in for this thread ([`ReadHookScope`]); every other path keeps the
//! current deadline.
//!
//! Each entry also tracks its effective deadline (cache-wide limits included), so
//! that `remaining` can be handed to the hooks and copies keep the remaining
//! lifetime.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

use crate::duration::{self, MAX_SECONDS};
use crate::errors::{Error, Result};
use crate::keys::EngineKey;
use crate::node::Node;
use crate::noderef::NodeRef;

/// `u64` encoding of "no deadline".
const NEVER: u64 = u64::MAX;

/// All deadlines are nanoseconds since this process-wide origin.
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

fn to_nanos(t: Instant) -> u64 {
    let nanos = t.saturating_duration_since(origin()).as_nanos();
    u64::try_from(nanos).unwrap_or(NEVER - 1)
}

fn encode(deadline: Option<Instant>) -> u64 {
    deadline.map_or(NEVER, to_nanos)
}

fn decode(nanos: u64) -> Option<Instant> {
    (nanos != NEVER).then(|| origin() + Duration::from_nanos(nanos))
}

fn min_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// The expiration state of one entry.
#[derive(Debug)]
pub struct EntryExpiry {
    /// A lifetime counted from this write (per-call `ttl`, or the create/update hook).
    lifetime: Option<Duration>,
    /// An absolute deadline carried over from the entry this write replaced, when the
    /// update hook asked to keep it.
    kept_deadline: Option<Instant>,
    /// Per-call time-to-idle, refreshed by every read.
    idle: Option<Duration>,
    /// Whether reads update the tracked deadline (the cache has a read or update
    /// hook that needs `remaining`).
    track_reads: bool,
    /// Absolute deadline of the fixed part (`lifetime`/`kept_deadline`); NEVER if none.
    fixed: AtomicU64,
    /// Effective deadline including the cache-wide ttl/tti; NEVER if none.
    effective: AtomicU64,
    /// When the entry's lifetime ends regardless of reads: the fixed part and the
    /// cache-wide ttl, without any idle limit; NEVER if none.
    lifetime_end: AtomicU64,
}

impl EntryExpiry {
    pub fn new(
        lifetime: Option<Duration>,
        kept_deadline: Option<Instant>,
        idle: Option<Duration>,
        track_reads: bool,
    ) -> Self {
        EntryExpiry {
            lifetime,
            kept_deadline,
            idle,
            track_reads,
            fixed: AtomicU64::new(NEVER),
            effective: AtomicU64::new(NEVER),
            lifetime_end: AtomicU64::new(NEVER),
        }
    }

    /// The instant this entry expires at, as of its last engine access.
    pub fn deadline(&self) -> Option<Instant> {
        decode(self.effective.load(Ordering::Relaxed))
    }

    /// Time left before expiry, `None` if the entry never expires.
    pub fn remaining(&self, now: Instant) -> Option<Duration> {
        self.deadline().map(|d| d.saturating_duration_since(now))
    }

    /// Time left before the entry's lifetime ends, ignoring idle limits (which a copy
    /// of the entry restarts).
    pub fn remaining_lifetime(&self, now: Instant) -> Option<Duration> {
        decode(self.lifetime_end.load(Ordering::Relaxed)).map(|d| d.saturating_duration_since(now))
    }

    /// The per-entry time-to-idle given when the entry was written.
    pub fn idle(&self) -> Option<Duration> {
        self.idle
    }

    /// The deadline of the fixed part, as kept by an update hook returning `None`.
    pub fn fixed_deadline(&self) -> Option<Instant> {
        decode(self.fixed.load(Ordering::Relaxed))
    }

    /// Whether a read may change this entry's expiration or must be tracked.
    pub fn reads_matter(&self) -> bool {
        self.idle.is_some() || self.track_reads
    }

    /// Starts the entry's clock at `now`, for an engine that has no `Expiry` to do it
    /// (the entry then follows only the cache-wide ttl/tti, which moka applies).
    pub fn start(&self, now: Instant, policy: &ExpiryPolicy) {
        self.on_write(now, policy);
    }

    fn on_write(&self, now: Instant, policy: &ExpiryPolicy) -> Option<Duration> {
        let fixed = min_opt(self.lifetime.map(|d| now + d), self.kept_deadline);
        self.fixed.store(encode(fixed), Ordering::Relaxed);
        let own = min_opt(fixed, self.idle.map(|d| now + d));
        self.track(own, fixed, now, now, policy);
        own.map(|d| d.saturating_duration_since(now))
    }

    fn on_read(
        &self,
        now: Instant,
        last_modified: Instant,
        policy: &ExpiryPolicy,
        hook: Option<Duration>,
    ) -> Option<Instant> {
        // Worked out from this read's own answer, never from the shared field read back:
        // on a free-threaded build another read of the entry may store its answer in
        // between, and each read must still return and track a deadline of its own.
        let fixed = match hook {
            Some(lifetime) => {
                let fixed = now + lifetime;
                self.fixed.store(to_nanos(fixed), Ordering::Relaxed);
                Some(fixed)
            }
            None => self.fixed_deadline(),
        };
        let own = min_opt(fixed, self.idle.map(|d| now + d));
        self.track(own, fixed, now, last_modified, policy);
        own
    }

    fn track(
        &self,
        own: Option<Instant>,
        fixed: Option<Instant>,
        now: Instant,
        last_modified: Instant,
        policy: &ExpiryPolicy,
    ) {
        let ttl = policy.ttl.map(|d| last_modified + d);
        let tti = policy.tti.map(|d| now + d);
        let effective = min_opt(own, min_opt(ttl, tti));
        self.effective.store(encode(effective), Ordering::Relaxed);
        let lifetime_end = min_opt(fixed, ttl);
        self.lifetime_end
            .store(encode(lifetime_end), Ordering::Relaxed);
    }
}

/// The user's `expiry=` object, resolved to its bound hook methods.
pub struct ExpiryHooks {
    object: Py<PyAny>,
    create: Option<Py<PyAny>>,
    read: Option<Py<PyAny>>,
    update: Option<Py<PyAny>>,
}

const HOOK_NAMES: [&str; 3] = [
    "expire_after_create",
    "expire_after_read",
    "expire_after_update",
];

impl ExpiryHooks {
    /// Validates the `expiry` argument: an object with at least one hook method.
    pub fn from_object(object: &Bound<'_, PyAny>) -> Result<Self> {
        let mut hooks = [None, None, None];
        for (slot, name) in hooks.iter_mut().zip(HOOK_NAMES) {
            if let Ok(method) = object.getattr(name) {
                if method.is_none() {
                    continue;
                }
                if !method.is_callable() {
                    return Err(Error::type_error(format!(
                        "expiry.{name} must be callable, not {}",
                        duration::type_name(&method)
                    )));
                }
                *slot = Some(method.unbind());
            }
        }
        if hooks.iter().all(Option::is_none) {
            return Err(Error::type_error(format!(
                "expiry must be an object with an expire_after_create, expire_after_read or \
                 expire_after_update method, not {}",
                duration::type_name(object)
            )));
        }
        let [create, read, update] = hooks;
        Ok(ExpiryHooks {
            object: object.clone().unbind(),
            create,
            read,
            update,
        })
    }

    pub fn object(&self) -> &Py<PyAny> {
        &self.object
    }

    /// Every Python object held here (the object and its bound hook methods), for
    /// `__traverse__`.
    pub fn held(&self) -> [Option<&Py<PyAny>>; 4] {
        [
            Some(&self.object),
            self.create.as_ref(),
            self.read.as_ref(),
            self.update.as_ref(),
        ]
    }

    pub fn has_read(&self) -> bool {
        self.read.is_some()
    }

    /// Runs `expire_after_create(key, value)`: `Ok(None)` means "never expires".
    pub fn on_create(
        &self,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> Result<Option<Duration>> {
        let Some(hook) = &self.create else {
            return Ok(None);
        };
        let answer = hook.bind(key.py()).call1((key, value))?;
        hook_seconds("expire_after_create", &answer)
    }

    /// Runs `expire_after_update(key, value, remaining)`: `Ok(None)` means "keep the
    /// current deadline".
    pub fn on_update(
        &self,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        remaining: Option<Duration>,
    ) -> Result<Option<Duration>> {
        let Some(hook) = &self.update else {
            return Ok(None);
        };
        let answer = hook
            .bind(key.py())
            .call1((key, value, remaining.map(|d| d.as_secs_f64())))?;
        hook_seconds("expire_after_update", &answer)
    }

    fn on_read(
        &self,
        py: Python<'_>,
        node: &Node,
        remaining: Option<Duration>,
    ) -> Result<Option<Duration>> {
        let Some(hook) = &self.read else {
            return Ok(None);
        };
        let key = node.key().bind(py);
        let value = node.value(py);
        let answer = hook
            .bind(py)
            .call1((key, value, remaining.map(|d| d.as_secs_f64())))?;
        hook_seconds("expire_after_read", &answer)
    }
}

/// Reads a hook's answer: `None`, or a non-negative number of seconds (infinity
/// counts as `None`: no limit).
fn hook_seconds(name: &str, answer: &Bound<'_, PyAny>) -> Result<Option<Duration>> {
    if answer.is_none() {
        return Ok(None);
    }
    let seconds = duration::number_of(answer)?.ok_or_else(|| {
        Error::type_error(format!(
            "expiry.{name} must return a number of seconds or None, not {}",
            duration::type_name(answer)
        ))
    })?;
    if seconds.is_nan() || seconds < 0.0 {
        return Err(Error::value_error(format!(
            "expiry.{name} must return a non-negative number of seconds or None, got {seconds}"
        )));
    }
    if seconds.is_infinite() {
        return Ok(None);
    }
    Ok(Some(Duration::from_secs_f64(seconds.min(MAX_SECONDS))))
}

/// Cache-wide expiration settings, shared by the engine's [`NodeExpiry`].
pub struct ExpiryPolicy {
    pub ttl: Option<Duration>,
    pub tti: Option<Duration>,
    pub hooks: Option<ExpiryHooks>,
}

thread_local! {
    /// Whether `expire_after_read` may run the user's read hook on this thread now.
    static READ_HOOK_ALLOWED: Cell<bool> = const { Cell::new(false) };
    /// An exception raised by the read hook, to be re-raised after the engine call.
    static READ_HOOK_ERROR: RefCell<Option<Error>> = const { RefCell::new(None) };
}

/// Lets the read hook run during the engine reads made while this value lives.
///
/// Only the plain lookup path opens one: moka calls `expire_after_read` without
/// holding any lock there, whereas its compute/entry APIs call it under a per-key
/// lock, where Python must not run.
pub struct ReadHookScope {
    previous: bool,
}

impl ReadHookScope {
    pub fn open() -> Self {
        ReadHookScope {
            previous: READ_HOOK_ALLOWED.with(|allowed| allowed.replace(true)),
        }
    }

    /// The exception the read hook raised during this scope, if any.
    pub fn take_error(&self) -> Option<Error> {
        READ_HOOK_ERROR.with(|error| error.borrow_mut().take())
    }
}

impl Drop for ReadHookScope {
    fn drop(&mut self) {
        READ_HOOK_ALLOWED.with(|allowed| allowed.set(self.previous));
    }
}

/// moka's view of per-entry expiration.
pub struct NodeExpiry {
    policy: Arc<ExpiryPolicy>,
}

impl NodeExpiry {
    pub fn new(policy: Arc<ExpiryPolicy>) -> Self {
        NodeExpiry { policy }
    }

    fn read_hook(&self, node: &Node, remaining: Option<Duration>) -> Option<Duration> {
        let hooks = self.policy.hooks.as_ref().filter(|h| h.has_read())?;
        if !READ_HOOK_ALLOWED.with(Cell::get) {
            return None;
        }
        // moka calls this from `get` with no lock held and we are attached (every
        // engine call is made attached), so running Python here cannot deadlock.
        // Attaching is cheap when PyO3's trampoline is on the stack; from the entry
        // points it does not wrap (`fastcall.rs`) it goes through `PyGILState_Ensure`.
        // PyO3 declines only while the interpreter shuts down: the entry then keeps the
        // lifetime it has, as if the hook had returned `None`.
        Python::try_attach(|py| match hooks.on_read(py, node, remaining) {
            Ok(answer) => answer,
            Err(err) => {
                READ_HOOK_ERROR.with(|slot| {
                    slot.borrow_mut().get_or_insert(err);
                });
                None
            }
        })
        .flatten()
    }
}

impl moka::Expiry<EngineKey, NodeRef> for NodeExpiry {
    fn expire_after_create(
        &self,
        _key: &EngineKey,
        node: &NodeRef,
        created_at: Instant,
    ) -> Option<Duration> {
        node.expiry()?.on_write(created_at, &self.policy)
    }

    fn expire_after_update(
        &self,
        _key: &EngineKey,
        node: &NodeRef,
        updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        // A write starts afresh: the new node carries everything that should survive
        // from the old one (see `EntryExpiry::kept_deadline`).
        node.expiry()?.on_write(updated_at, &self.policy)
    }

    fn expire_after_read(
        &self,
        _key: &EngineKey,
        node: &NodeRef,
        read_at: Instant,
        duration_until_expiry: Option<Duration>,
        last_modified_at: Instant,
    ) -> Option<Duration> {
        let Some(entry) = node.expiry().filter(|_| node.reads_matter()) else {
            return duration_until_expiry;
        };
        let hook = self.read_hook(node, duration_until_expiry);
        if hook.is_none() && entry.idle.is_none() {
            // Nothing of this entry's own changes on a read; only the effective deadline
            // moves with the cache-wide tti.
            let fixed = entry.fixed_deadline();
            entry.track(fixed, fixed, read_at, last_modified_at, &self.policy);
            return duration_until_expiry;
        }
        entry
            .on_read(read_at, last_modified_at, &self.policy, hook)
            .map(|d| d.saturating_duration_since(read_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(ttl: Option<u64>, tti: Option<u64>) -> ExpiryPolicy {
        ExpiryPolicy {
            ttl: ttl.map(Duration::from_secs),
            tti: tti.map(Duration::from_secs),
            hooks: None,
        }
    }

    #[test]
    fn lifetime_and_idle_take_the_earliest() {
        let now = Instant::now();
        let e = EntryExpiry::new(
            Some(Duration::from_secs(10)),
            None,
            Some(Duration::from_secs(3)),
            false,
        );
        let d = e.on_write(now, &policy(None, None));
        assert_eq!(d, Some(Duration::from_secs(3)));
        assert_eq!(e.remaining(now), Some(Duration::from_secs(3)));
    }

    #[test]
    fn reads_refresh_idle_but_not_the_fixed_part() {
        let now = Instant::now();
        let e = EntryExpiry::new(
            Some(Duration::from_secs(10)),
            None,
            Some(Duration::from_secs(3)),
            false,
        );
        e.on_write(now, &policy(None, None));
        let later = now + Duration::from_secs(8);
        let deadline = e.on_read(later, now, &policy(None, None), None);
        // idle would allow until 11 s, the fixed lifetime ends at 10 s.
        assert_eq!(deadline, Some(now + Duration::from_secs(10)));
    }

    #[test]
    fn cache_wide_limits_cap_the_effective_deadline() {
        let now = Instant::now();
        let e = EntryExpiry::new(Some(Duration::from_secs(100)), None, None, false);
        e.on_write(now, &policy(Some(5), None));
        assert_eq!(e.remaining(now), Some(Duration::from_secs(5)));
        let e = EntryExpiry::new(None, None, None, false);
        assert_eq!(e.on_write(now, &policy(None, Some(7))), None);
        assert_eq!(e.remaining(now), Some(Duration::from_secs(7)));
    }

    #[test]
    fn kept_deadline_survives_a_write() {
        let now = Instant::now();
        let kept = now + Duration::from_secs(4);
        let e = EntryExpiry::new(None, Some(kept), None, false);
        let later = now + Duration::from_secs(1);
        assert_eq!(
            e.on_write(later, &policy(None, None)),
            Some(Duration::from_secs(3))
        );
    }

    #[test]
    fn read_hook_answers_replace_the_fixed_part() {
        let now = Instant::now();
        let e = EntryExpiry::new(Some(Duration::from_secs(1)), None, None, false);
        e.on_write(now, &policy(None, None));
        let deadline = e.on_read(now, now, &policy(None, None), Some(Duration::from_secs(60)));
        assert_eq!(deadline, Some(now + Duration::from_secs(60)));
    }

    #[test]
    fn never_round_trips() {
        assert_eq!(decode(encode(None)), None);
        let t = origin() + Duration::from_millis(1234);
        assert_eq!(decode(encode(Some(t))), Some(t));
    }
}
