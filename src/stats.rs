//! Always-on cache statistics.
//!
//! A counter bump sits on the hit path of every lookup, so it must cost about
//! nothing. On GIL builds every bump happens with the GIL held, so a relaxed load
//! and store (no atomic read-modify-write, no contended cache line) is exact. On
//! free-threaded builds each thread bumps its own stripe and a snapshot sums them.

use std::time::Duration;

#[cfg(not(Py_GIL_DISABLED))]
mod counter {
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A counter whose writers are serialized by the GIL.
    #[derive(Default, Debug)]
    pub struct Counter(AtomicU64);

    impl Counter {
        #[inline]
        pub fn add(&self, n: u64) {
            // Every caller holds the GIL, so no other writer can interleave between
            // the load and the store.
            self.0.store(
                self.0.load(Ordering::Relaxed).wrapping_add(n),
                Ordering::Relaxed,
            );
        }

        pub fn get(&self) -> u64 {
            self.0.load(Ordering::Relaxed)
        }

        pub fn reset(&self) {
            self.0.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(Py_GIL_DISABLED)]
mod counter {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    const STRIPES: usize = 16;

    #[repr(align(128))]
    #[derive(Default, Debug)]
    struct Stripe(AtomicU64);

    /// A counter striped across threads, so concurrent bumps rarely share a line.
    #[derive(Default, Debug)]
    pub struct Counter([Stripe; STRIPES]);

    fn stripe_index() -> usize {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
        }
        INDEX.with(|index| {
            if index.get() == usize::MAX {
                index.set(NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES);
            }
            index.get()
        })
    }

    impl Counter {
        #[inline]
        pub fn add(&self, n: u64) {
            self.0[stripe_index()].0.fetch_add(n, Ordering::Relaxed);
        }

        pub fn get(&self) -> u64 {
            self.0
                .iter()
                .map(|s| s.0.load(Ordering::Relaxed))
                .fold(0, u64::wrapping_add)
        }

        pub fn reset(&self) {
            for stripe in &self.0 {
                stripe.0.store(0, Ordering::Relaxed);
            }
        }
    }
}

pub use counter::Counter;

/// The counters of one cache.
#[derive(Default, Debug)]
pub struct Stats {
    pub hits: Counter,
    pub misses: Counter,
    pub evictions: Counter,
    pub expirations: Counter,
    pub load_successes: Counter,
    pub load_failures: Counter,
    pub load_nanos: Counter,
}

/// A consistent-enough copy of the counters, handed to Python as `CacheStats`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Snapshot {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    pub expirations: u64,
    pub load_successes: u64,
    pub load_failures: u64,
    pub total_load_time: f64,
}

impl Snapshot {
    /// hits / (hits + misses), 0.0 before any request.
    pub fn hit_rate(&self) -> f64 {
        let requests = self.hits + self.misses;
        if requests == 0 {
            0.0
        } else {
            self.hits as f64 / requests as f64
        }
    }
}

impl Stats {
    pub fn record_load(&self, ok: bool, elapsed: Duration) {
        if ok {
            self.load_successes.add(1);
        } else {
            self.load_failures.add(1);
        }
        self.load_nanos
            .add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
    }

    /// A snapshot; `extra_evictions` adds evictions the engine did not report one by
    /// one (see `Store::stats`).
    pub fn snapshot(&self, extra_evictions: u64) -> Snapshot {
        Snapshot {
            hits: self.hits.get(),
            misses: self.misses.get(),
            evictions: self.evictions.get() + extra_evictions,
            expirations: self.expirations.get(),
            load_successes: self.load_successes.get(),
            load_failures: self.load_failures.get(),
            total_load_time: self.load_nanos.get() as f64 / 1e9,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_rate_is_zero_before_requests() {
        let stats = Stats::default();
        assert_eq!(stats.snapshot(0).hit_rate(), 0.0);
    }

    #[test]
    fn counters_add_and_snapshot() {
        let stats = Stats::default();
        stats.hits.add(3);
        stats.misses.add(1);
        stats.record_load(true, Duration::from_millis(250));
        stats.record_load(false, Duration::from_millis(250));
        let snap = stats.snapshot(2);
        assert_eq!(snap.hits, 3);
        assert_eq!(snap.evictions, 2);
        assert_eq!(snap.load_successes, 1);
        assert_eq!(snap.load_failures, 1);
        assert!((snap.total_load_time - 0.5).abs() < 1e-9);
        assert!((snap.hit_rate() - 0.75).abs() < 1e-12);
    }
}
