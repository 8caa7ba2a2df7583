//! The moka engine alone, configured the way the binding uses it, so that the
//! cost of the Python boundary can be read off against `benchmarks/` (the
//! Python-level numbers for the same operations).
//!
//! Keys are `u64` slots (what the binding derives from a Python hash), placed
//! by a seeded multiply-xorshift hasher; values are `Arc<Node>` with a node of
//! two pointers (the binding's key and value objects; on CPython with the GIL the
//! binding's handle counts without atomics, `src/noderef.rs`, and costs a little
//! less than `Arc`). Capacity 10,000, as in
//! the Python cases. Every operation is timed one call per criterion
//! iteration, with `iter_custom` so that untimed set-up (refilling a cache
//! before timing removals) stays out of the numbers.
//!
//! Run: `cargo bench --bench engine` (criterion writes
//! `target/criterion/engine/<op>/<config>/new/estimates.json`, which
//! `benchmarks/engine.py` reads).

use std::hash::{BuildHasher, Hasher};
use std::hint::black_box;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use moka::sync::Cache;

// The binding allocates with mimalloc; the engine's numbers should too.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CAPACITY: u64 = 10_000;
const TTL: Duration = Duration::from_secs(3600);

/// Stand-in for the binding's entry: two object pointers, never dereferenced.
struct Node {
    _key: NonNull<u8>,
    _value: NonNull<u8>,
}

// SAFETY: the pointers are opaque tokens that no thread dereferences.
unsafe impl Send for Node {}
unsafe impl Sync for Node {}

static KEY_OBJECT: u8 = 0;
static VALUE_OBJECT: u8 = 0;

fn node() -> Arc<Node> {
    Arc::new(Node {
        _key: NonNull::from(&KEY_OBJECT),
        _value: NonNull::from(&VALUE_OBJECT),
    })
}

/// Seeded multiply-xorshift hasher over one `u64`.
#[derive(Clone)]
struct SlotHasherBuilder {
    seed: u64,
}

struct SlotHasher {
    state: u64,
}

impl BuildHasher for SlotHasherBuilder {
    type Hasher = SlotHasher;
    fn build_hasher(&self) -> SlotHasher {
        SlotHasher { state: self.seed }
    }
}

impl Hasher for SlotHasher {
    fn finish(&self) -> u64 {
        self.state
    }

    fn write_u64(&mut self, value: u64) {
        let mut x = (self.state ^ value).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 29;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        self.state = x ^ (x >> 32);
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
}

type Engine = Cache<u64, Arc<Node>, SlotHasherBuilder>;

#[derive(Clone, Copy)]
struct Config {
    name: &'static str,
    listener: bool,
    timed: bool,
}

const CONFIGS: [Config; 3] = [
    Config {
        name: "plain",
        listener: false,
        timed: false,
    },
    Config {
        name: "listener",
        listener: true,
        timed: false,
    },
    Config {
        name: "ttl_tti",
        listener: false,
        timed: true,
    },
];

fn build(config: Config) -> Engine {
    let mut builder = Cache::builder().max_capacity(CAPACITY);
    if config.listener {
        builder = builder.eviction_listener(|key: Arc<u64>, _value, cause| {
            black_box((key, cause));
        });
    }
    if config.timed {
        builder = builder.time_to_live(TTL).time_to_idle(TTL);
    }
    builder.build_with_hasher(SlotHasherBuilder {
        seed: 0x5EED_CAFE_F00D_D00D,
    })
}

/// Slot values that look like Python string hashes: spread over all 64 bits.
fn slot(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The cached keys, in a fixed shuffled order.
fn present_keys() -> Vec<u64> {
    let mut keys: Vec<u64> = (0..CAPACITY).map(slot).collect();
    // Fisher-Yates driven by the same mixer: deterministic, no extra crate.
    for i in (1..keys.len()).rev() {
        let j = (slot(1_000_000 + i as u64) % (i as u64 + 1)) as usize;
        keys.swap(i, j);
    }
    keys
}

fn absent_keys() -> Vec<u64> {
    (0..CAPACITY).map(|i| slot(CAPACITY * 10 + i)).collect()
}

fn filled(config: Config, keys: &[u64]) -> Engine {
    let cache = build(config);
    for &k in keys {
        cache.insert(k, node());
    }
    cache.run_pending_tasks();
    cache
}

fn timed_over<F: FnMut(u64)>(iters: u64, mut op: F) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        op(i);
    }
    start.elapsed()
}

fn engine(c: &mut Criterion) {
    let present = present_keys();
    let absent = absent_keys();
    let n = present.len() as u64;
    let mut group = c.benchmark_group("engine");

    for config in CONFIGS {
        let cache = filled(config, &present);
        group.bench_function(BenchmarkId::new("get_hit", config.name), |b| {
            b.iter_custom(|iters| {
                timed_over(iters, |i| {
                    black_box(cache.get(&present[(i % n) as usize]));
                })
            })
        });
        group.bench_function(BenchmarkId::new("get_miss", config.name), |b| {
            b.iter_custom(|iters| {
                timed_over(iters, |i| {
                    black_box(cache.get(&absent[(i % n) as usize]));
                })
            })
        });
        group.bench_function(BenchmarkId::new("insert_existing", config.name), |b| {
            b.iter_custom(|iters| {
                timed_over(iters, |i| {
                    cache.insert(present[(i % n) as usize], node());
                })
            })
        });

        // New keys into a full cache: moka evicts in its (lazy) maintenance.
        let mut fresh = 1u64 << 40;
        let full = filled(config, &present);
        group.bench_function(BenchmarkId::new("insert_new_full", config.name), |b| {
            b.iter_custom(|iters| {
                timed_over(iters, |_| {
                    fresh += 1;
                    full.insert(slot(fresh), node());
                })
            })
        });
        // The same, with maintenance run after every insert, as a binding that
        // keeps capacity a hard bound at every return would have to.
        group.bench_function(BenchmarkId::new("insert_new_full_sync", config.name), |b| {
            b.iter_custom(|iters| {
                timed_over(iters, |_| {
                    fresh += 1;
                    full.insert(slot(fresh), node());
                    full.run_pending_tasks();
                })
            })
        });

        // Removals: refill (untimed) whenever the cache has been emptied.
        let shrinking = build(config);
        group.bench_function(BenchmarkId::new("remove", config.name), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut done = 0u64;
                while done < iters {
                    for &k in &present {
                        shrinking.insert(k, node());
                    }
                    shrinking.run_pending_tasks();
                    let batch = (iters - done).min(n);
                    total += timed_over(batch, |i| {
                        black_box(shrinking.remove(&present[i as usize]));
                    });
                    done += batch;
                }
                total
            })
        });
    }
    group.finish();
}

fn short() -> Criterion {
    // Short on purpose: enough samples for a stable median on a noisy 2-core
    // machine, without making `cargo bench` a coffee break.
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = short();
    targets = engine
}
criterion_main!(benches);
