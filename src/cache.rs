//! The one memory budget of a mount (`--cache-size`): decoded blocks, per-member decoder and
//! indexer state, and the working memory of decoders in flight, all charged to one byte count
//! and evicted least-recently-used.
//!
//! - **Blocks** are decompressed bytes (a zip member, a seek-point span, 1 MiB of a big member).
//! - **States** are whatever a reader keeps between reads of one member (a first pass over a big
//!   deflated member, a decoder cursor, its seek points); the owner declares their weight and
//!   re-declares it as they grow. Evicting a state only drops the cache's reference: a reader
//!   using it finishes its read, and the next read rebuilds it from the nearest seek point.
//! - **Reservations** charge a decoder's transient memory (an xz dictionary, a span being
//!   inflated) while it runs, and make decoders wait when half the budget is already in flight,
//!   so sixteen FUSE threads decoding at once cannot take the daemon past the budget.
//!
//! Entries are kept in one LRU list under one lock. Sharded lists were tried and measured worse:
//! with 1 MiB blocks a 64 MiB budget holds about 64 entries, four per shard, so evicting from the
//! inserting shard threw out blocks a sequential reader had not read yet and it decoded every
//! byte about twice (1.7x the CPU). Each operation holds the lock for a hash lookup and a list
//! move; decoding happens outside it. Loads are single-flight:
//! when eight DataLoader workers ask for the same block at once, one decompresses it and the
//! others wait for its result instead of repeating the work.

use std::any::Any;
use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::{Condvar, Mutex};

/// What a cached entry is: `(archive, item, block)`. Archives are numbered by the pool; items
/// and blocks are the archive's to number (a member and a block of its bytes, or a seek-point
/// span of a stream).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockKey {
    /// Which archive (one id per archive of the pool).
    pub owner: u32,
    /// Which member or stream of that archive.
    pub item: u32,
    /// Which block of that item.
    pub block: u64,
}

type Block = Arc<[u8]>;

/// Fixed cost charged per entry besides its bytes (LRU node, key, hash-map slot).
const ENTRY_OVERHEAD: usize = 96;

enum Value {
    Bytes(Block),
    State(Arc<dyn Any + Send + Sync>),
}

struct Slot {
    value: Value,
    weight: usize,
}

/// An in-flight load that others can wait on.
struct Flight {
    done: Mutex<Option<Result<Block, (io::ErrorKind, String)>>>,
    cond: Condvar,
}

/// Decompressed blocks and per-member state, bounded in bytes.
pub struct BlockCache {
    lru: Mutex<lru::LruCache<BlockKey, Slot>>,
    capacity: usize,
    /// Bytes charged: entries' weights plus reservations in flight. Raised only under `lru`'s
    /// lock, with the evictions it calls for (lowered anywhere), so the peak is exact.
    used: AtomicUsize,
    /// Bytes of reservations in flight (part of `used`), with a condition to wait for room.
    reserved: Mutex<usize>,
    room: Condvar,
    flights: Mutex<HashMap<BlockKey, Arc<Flight>>>,
    /// Highest `used` seen, for tests and the benchmark's report.
    peak: AtomicUsize,
}

thread_local! {
    /// Reservations this thread holds.
    static HELD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Memory charged to the budget while a decoder runs; released on drop.
#[must_use = "the reservation is released when dropped"]
pub struct Reservation<'a> {
    cache: &'a BlockCache,
    bytes: usize,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.bytes == 0 {
            return;
        }
        HELD.with(|h| h.set(h.get() - 1));
        let mut reserved = self.cache.reserved.lock();
        *reserved -= self.bytes;
        self.cache.used.fetch_sub(self.bytes, Ordering::Relaxed);
        self.cache.room.notify_all();
    }
}

impl BlockCache {
    /// A cache holding at most `capacity` bytes of entries and reservations (plus the blocks
    /// callers still hold after their eviction, which live until those callers return).
    pub fn new(capacity: usize) -> BlockCache {
        BlockCache {
            lru: Mutex::new(lru::LruCache::unbounded()),
            capacity,
            used: AtomicUsize::new(0),
            reserved: Mutex::new(0),
            room: Condvar::new(),
            flights: Mutex::new(HashMap::new()),
            peak: AtomicUsize::new(0),
        }
    }

    /// The budget in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The largest block worth caching: bigger ones would evict too much of everything else.
    pub fn max_block(&self) -> usize {
        self.capacity / 8
    }

    /// The block if cached.
    pub fn get(&self, key: &BlockKey) -> Option<Block> {
        match &self.lru.lock().get(key)?.value {
            Value::Bytes(b) => Some(b.clone()),
            Value::State(_) => None,
        }
    }

    /// Caches a block, evicting least recently used entries beyond the budget.
    pub fn insert(&self, key: BlockKey, block: Block) {
        if block.len() > self.max_block() {
            return;
        }
        let weight = block.len() + ENTRY_OVERHEAD;
        self.put(key, Slot { value: Value::Bytes(block), weight });
    }

    fn put(&self, key: BlockKey, slot: Slot) {
        let weight = slot.weight;
        let mut lru = self.lru.lock();
        let old = lru.put(key, slot);
        let evicted = self.settle(&mut lru, weight, old.as_ref().map_or(0, |o| o.weight));
        drop(lru);
        // Dropped outside the lock: a state may own a decoder that takes a while to free.
        drop((old, evicted));
    }

    /// Charges `add` and releases `remove` bytes, then evicts least recently used entries until
    /// the total fits, all under the list's lock: concurrent inserters (readers and read-ahead
    /// workers) cannot together push the total past the budget between a charge and its
    /// eviction. Returns the evicted entries, to be dropped once the lock is released.
    fn settle(&self, lru: &mut lru::LruCache<BlockKey, Slot>, add: usize, remove: usize) -> Vec<Slot> {
        // Releases (reservations ending) may lower `used` meanwhile, without the lock: every
        // change is one atomic step, and only lowers what this loop sees.
        self.used.fetch_add(add, Ordering::Relaxed);
        self.used.fetch_sub(remove, Ordering::Relaxed);
        let mut evicted = Vec::new();
        while self.used.load(Ordering::Relaxed) > self.capacity {
            let Some((_, slot)) = lru.pop_lru() else { break };
            self.used.fetch_sub(slot.weight, Ordering::Relaxed);
            evicted.push(slot);
        }
        self.peak.fetch_max(self.used.load(Ordering::Relaxed), Ordering::Relaxed);
        evicted
    }

    /// Charges `add` bytes outside any entry (a reservation), evicting to make room.
    fn charge(&self, add: usize) {
        let evicted = {
            let mut lru = self.lru.lock();
            self.settle(&mut lru, add, 0)
        };
        drop(evicted);
    }

    /// The state under `key` if there is one of type `T` (marked recently used).
    pub fn get_state<T: Any + Send + Sync>(&self, key: &BlockKey) -> Option<Arc<T>> {
        match &self.lru.lock().get(key)?.value {
            Value::State(any) => any.clone().downcast::<T>().ok(),
            Value::Bytes(_) => None,
        }
    }

    /// The per-member state under `key`, or a new one from `init` (value and weight in bytes),
    /// made and inserted under the lock so that concurrent readers share one state.
    pub fn state<T: Any + Send + Sync>(&self, key: BlockKey, init: impl FnOnce() -> (T, usize)) -> Arc<T> {
        let (state, added) = {
            let mut lru = self.lru.lock();
            if let Some(Slot { value: Value::State(any), .. }) = lru.get(&key)
                && let Ok(state) = any.clone().downcast::<T>()
            {
                return state;
            }
            let (value, weight) = init();
            let state = Arc::new(value);
            let weight = weight + ENTRY_OVERHEAD;
            let old = lru.put(key, Slot { value: Value::State(state.clone()), weight });
            let evicted = self.settle(&mut lru, weight, old.as_ref().map_or(0, |o| o.weight));
            (state, (old, evicted))
        };
        drop(added);
        state
    }

    /// Declares the new weight of the state under `key` (it grew or shrank). Nothing happens if
    /// the state was evicted meanwhile: its holder's copy is dropped when the holder is done.
    pub fn reweigh(&self, key: &BlockKey, weight: usize) {
        let evicted = {
            let mut lru = self.lru.lock();
            let Some(slot) = lru.peek_mut(key) else { return };
            let weight = weight + ENTRY_OVERHEAD;
            let old = std::mem::replace(&mut slot.weight, weight);
            self.settle(&mut lru, weight, old)
        };
        drop(evicted);
    }

    /// Forgets the entry under `key` (a state that is finished or broken).
    pub fn remove(&self, key: &BlockKey) {
        let old = {
            let mut lru = self.lru.lock();
            let old = lru.pop(key);
            if let Some(slot) = &old {
                self.used.fetch_sub(slot.weight, Ordering::Relaxed);
            }
            old
        };
        drop(old);
    }

    /// Charges `bytes` of decoder working memory until the reservation is dropped. Waits while
    /// other reservations already hold half the budget (one always proceeds, however large, so
    /// a stream whose decoder needs more than the budget is slow, never stuck).
    pub fn reserve(&self, bytes: usize) -> Reservation<'_> {
        if bytes == 0 {
            return Reservation { cache: self, bytes };
        }
        let mut reserved = self.reserved.lock();
        // A thread that already holds a reservation never waits (a decoder reading through
        // another decoder would otherwise wait for itself).
        while *reserved > 0 && *reserved + bytes > self.capacity / 2 && HELD.with(|h| h.get()) == 0 {
            self.room.wait(&mut reserved);
        }
        *reserved += bytes;
        drop(reserved);
        HELD.with(|h| h.set(h.get() + 1));
        self.charge(bytes);
        Reservation { cache: self, bytes }
    }

    /// Charges `bytes` like [`reserve`](Self::reserve), but only if that needs no waiting: for
    /// work nobody waits for yet (read-ahead), which is skipped rather than queued when the
    /// budget is busy with decoders in flight.
    pub fn try_reserve(&self, bytes: usize) -> Option<Reservation<'_>> {
        if bytes == 0 {
            return Some(Reservation { cache: self, bytes });
        }
        let mut reserved = self.reserved.lock();
        if *reserved + bytes > self.capacity / 2 {
            return None;
        }
        *reserved += bytes;
        drop(reserved);
        HELD.with(|h| h.set(h.get() + 1));
        self.charge(bytes);
        Some(Reservation { cache: self, bytes })
    }

    /// Whether `key` is cached or being loaded (a read-ahead for it would be wasted).
    pub fn has_or_loading(&self, key: &BlockKey) -> bool {
        self.lru.lock().contains(key) || self.flights.lock().contains_key(key)
    }

    /// Loads `key` with `load` unless it is cached or already being loaded, without ever
    /// waiting for another load: read-ahead on a worker pool must not block on a job that may
    /// be queued behind it. Readers asking for `key` meanwhile wait for this load
    /// ([`get_or_load`](Self::get_or_load)). Returns whether `load` ran.
    pub fn prefetch(&self, key: BlockKey, load: impl FnOnce() -> io::Result<Vec<u8>>) -> bool {
        if self.lru.lock().contains(&key) {
            return false;
        }
        let flight = {
            let mut flights = self.flights.lock();
            if flights.contains_key(&key) {
                return false;
            }
            let f = Arc::new(Flight { done: Mutex::new(None), cond: Condvar::new() });
            flights.insert(key, f.clone());
            f
        };
        // The outcome reaches waiters; an error is theirs to retry, not this worker's to report.
        let _ = self.lead(key, &flight, load, false);
        true
    }

    /// The cached block, or the result of `load` run exactly once however many threads ask
    /// for the same key at the same time. Errors are not cached: the next call retries.
    pub fn get_or_load(&self, key: BlockKey, load: impl FnOnce() -> io::Result<Vec<u8>>) -> io::Result<Block> {
        self.get_or_load_sized(key, load, false)
    }

    /// [`get_or_load`](Self::get_or_load) for results that cost much more to make again than
    /// their bytes weigh (a decoded image every part of a derived file is cut from): cached
    /// whatever their size, up to the whole budget, instead of only up to
    /// [`max_block`](Self::max_block).
    pub fn get_or_load_costly(&self, key: BlockKey, load: impl FnOnce() -> io::Result<Vec<u8>>) -> io::Result<Block> {
        self.get_or_load_sized(key, load, true)
    }

    fn get_or_load_sized(
        &self,
        key: BlockKey,
        load: impl FnOnce() -> io::Result<Vec<u8>>,
        any_size: bool,
    ) -> io::Result<Block> {
        if let Some(b) = self.get(&key) {
            return Ok(b);
        }
        let (flight, leader) = {
            let mut flights = self.flights.lock();
            match flights.get(&key) {
                Some(f) => (f.clone(), false),
                None => {
                    let f = Arc::new(Flight { done: Mutex::new(None), cond: Condvar::new() });
                    flights.insert(key, f.clone());
                    (f, true)
                }
            }
        };
        if !leader {
            let mut done = flight.done.lock();
            while done.is_none() {
                flight.cond.wait(&mut done);
            }
            return match done.as_ref().expect("set before notify") {
                Ok(b) => Ok(b.clone()),
                Err((kind, msg)) => Err(io::Error::new(*kind, msg.clone())),
            };
        }
        self.lead(key, &flight, load, any_size)
    }

    /// Runs `load` as the leader of `flight` (registered under `key`), caches its block and
    /// answers the waiters.
    fn lead(
        &self,
        key: BlockKey,
        flight: &Flight,
        load: impl FnOnce() -> io::Result<Vec<u8>>,
        any_size: bool,
    ) -> io::Result<Block> {
        // A cached copy may have landed between our miss and taking the flight. A panic in
        // `load` must not leave waiters stuck: the guard answers them with an error.
        struct Land<'a> {
            cache: &'a BlockCache,
            key: BlockKey,
            flight: &'a Flight,
            result: Option<Result<Block, (io::ErrorKind, String)>>,
        }
        impl Drop for Land<'_> {
            fn drop(&mut self) {
                let result =
                    self.result.take().unwrap_or_else(|| Err((io::ErrorKind::Other, "decoder panicked".into())));
                *self.flight.done.lock() = Some(result);
                self.flight.cond.notify_all();
                self.cache.flights.lock().remove(&self.key);
            }
        }
        let mut land = Land { cache: self, key, flight, result: None };
        let result = match self.get(&key) {
            Some(b) => Ok(b),
            None => load().map(|v| Block::from(v.into_boxed_slice())),
        };
        if let Ok(b) = &result {
            if any_size && b.len() + ENTRY_OVERHEAD <= self.capacity {
                self.put(key, Slot { value: Value::Bytes(b.clone()), weight: b.len() + ENTRY_OVERHEAD });
            } else {
                self.insert(key, b.clone());
            }
        }
        land.result = Some(match &result {
            Ok(b) => Ok(b.clone()),
            Err(e) => Err((e.kind(), e.to_string())),
        });
        drop(land);
        result
    }

    /// Bytes currently charged (entries and reservations).
    pub fn bytes(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Drops every entry. States may hold streams that hold this cache (a member's seek-point
    /// stream caches its spans here), so the owner of the cache clears it when it is done, which
    /// breaks that reference cycle.
    pub fn clear(&self) {
        let entries: Vec<_> = {
            let mut lru = self.lru.lock();
            let entries: Vec<_> = std::iter::from_fn(|| lru.pop_lru()).collect();
            for (_, slot) in &entries {
                self.used.fetch_sub(slot.weight, Ordering::Relaxed);
            }
            entries
        };
        drop(entries);
    }

    /// Number of per-member states held, and the bytes charged for them.
    pub fn states(&self) -> (usize, usize) {
        let lru = self.lru.lock();
        lru.iter()
            .filter(|(_, slot)| matches!(slot.value, Value::State(_)))
            .fold((0, 0), |(n, b), (_, s)| (n + 1, b + s.weight))
    }

    /// The most bytes ever charged at once.
    pub fn peak_bytes(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn stays_within_capacity_and_evicts_lru() {
        let cache = BlockCache::new(64 * 1024);
        for i in 0..1000u64 {
            cache.insert(BlockKey { owner: 1, item: 0, block: i }, vec![7u8; 1000].into());
            assert!(cache.bytes() <= 64 * 1024);
        }
        assert!(cache.get(&BlockKey { owner: 1, item: 0, block: 999 }).is_some());
        assert!(cache.get(&BlockKey { owner: 1, item: 0, block: 0 }).is_none());
        assert!(cache.peak_bytes() <= 64 * 1024 + 1000 + ENTRY_OVERHEAD);
    }

    #[test]
    fn states_are_shared_weighed_and_evicted_with_blocks() {
        let cache = BlockCache::new(100_000);
        let key = BlockKey { owner: 2, item: 7, block: u64::MAX };
        let made = AtomicUsize::new(0);
        let a = cache.state(key, || {
            made.fetch_add(1, Ordering::SeqCst);
            (Mutex::new(5u32), 1000)
        });
        let b = cache.state(key, || {
            made.fetch_add(1, Ordering::SeqCst);
            (Mutex::new(6u32), 1000)
        });
        assert!(Arc::ptr_eq(&a, &b), "one state per key");
        assert_eq!(made.load(Ordering::SeqCst), 1);
        assert_eq!(cache.bytes(), 1000 + ENTRY_OVERHEAD);
        cache.reweigh(&key, 50_000);
        assert_eq!(cache.bytes(), 50_000 + ENTRY_OVERHEAD);
        // Blocks pushed in after it evict it (least recently used), and the total stays bounded.
        for i in 0..20u64 {
            cache.insert(BlockKey { owner: 2, item: 1, block: i }, vec![0u8; 10_000].into());
            assert!(cache.bytes() <= 100_000);
        }
        let c = cache.state(key, || (Mutex::new(9u32), 10));
        assert!(!Arc::ptr_eq(&a, &c), "evicted state was rebuilt");
        assert_eq!(*c.lock(), 9);
        // The evicted copy still works for its holder.
        assert_eq!(*a.lock(), 5);
    }

    #[test]
    fn reservations_count_and_wait_for_room() {
        let cache = Arc::new(BlockCache::new(1000));
        for i in 0..9u64 {
            cache.insert(BlockKey { owner: 0, item: 0, block: i }, vec![0u8; 10].into());
        }
        let first = cache.reserve(400);
        assert!(cache.bytes() <= 1000, "a reservation evicts blocks to make room");
        let waited = Arc::new(AtomicUsize::new(0));
        let t = {
            let (cache, waited) = (cache.clone(), waited.clone());
            std::thread::spawn(move || {
                let _second = cache.reserve(400);
                waited.store(1, Ordering::SeqCst);
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(waited.load(Ordering::SeqCst), 0, "over half the budget in flight: the second waits");
        drop(first);
        t.join().unwrap();
        assert_eq!(waited.load(Ordering::SeqCst), 1);
        assert_eq!(*cache.reserved.lock(), 0, "every reservation released");
        assert!(cache.bytes() <= 9 * (10 + ENTRY_OVERHEAD));
        // One reservation larger than the budget still proceeds alone.
        let _huge = cache.reserve(5000);
    }

    #[test]
    fn concurrent_loads_of_one_key_run_once() {
        let cache = Arc::new(BlockCache::new(1 << 20));
        let calls = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (cache, calls) = (cache.clone(), calls.clone());
                std::thread::spawn(move || {
                    cache
                        .get_or_load(BlockKey { owner: 0, item: 0, block: 5 }, || {
                            calls.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(50));
                            Ok(vec![1, 2, 3])
                        })
                        .unwrap()
                })
            })
            .collect();
        for t in threads {
            assert_eq!(&*t.join().unwrap(), &[1, 2, 3]);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn errors_reach_every_waiter_and_are_not_cached() {
        let cache = BlockCache::new(1 << 20);
        let key = BlockKey { owner: 0, item: 0, block: 1 };
        let err = cache.get_or_load(key, || Err(io::Error::new(io::ErrorKind::InvalidData, "bad crc")));
        assert_eq!(err.unwrap_err().kind(), io::ErrorKind::InvalidData);
        assert_eq!(&*cache.get_or_load(key, || Ok(vec![9])).unwrap(), &[9]);
    }

    #[test]
    fn a_panicking_load_releases_its_waiters() {
        let cache = Arc::new(BlockCache::new(1 << 20));
        let key = BlockKey { owner: 0, item: 0, block: 2 };
        let c = cache.clone();
        let leader = std::thread::spawn(move || {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                c.get_or_load(key, || {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    panic!("decoder bug")
                })
            }));
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        let waiter = cache.get_or_load(key, || Ok(vec![1]));
        leader.join().unwrap();
        // Either it waited on the panicking flight (an error) or came after it (loaded itself).
        if let Ok(b) = waiter {
            assert_eq!(&*b, &[1]);
        }
        assert!(cache.flights.lock().is_empty(), "no flight left behind");
    }
}
