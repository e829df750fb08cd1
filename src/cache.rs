//! The bounded cache of decompressed bytes shared by every archive of a mount.
//!
//! Byte-weighted LRU, sharded so that readers of different files rarely meet on a lock, with
//! single-flight loading: when eight DataLoader workers ask for the same block at once, one
//! decompresses it and the others wait for its result instead of repeating the work.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

/// What a cached block is: `(archive, item, block)`. Archives are numbered by the pool; items
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

struct Shard {
    lru: lru::LruCache<BlockKey, Block>,
    bytes: usize,
}

/// An in-flight load that others can wait on.
struct Flight {
    done: Mutex<Option<Result<Block, (io::ErrorKind, String)>>>,
    cond: Condvar,
}

/// Decompressed blocks, bounded in bytes.
pub struct BlockCache {
    shards: Box<[Mutex<Shard>]>,
    shard_capacity: usize,
    flights: Mutex<HashMap<BlockKey, Arc<Flight>>>,
}

const SHARDS: usize = 16;

impl BlockCache {
    /// A cache holding at most `capacity` bytes of blocks (plus the blocks callers still hold).
    pub fn new(capacity: usize) -> BlockCache {
        let shards = (0..SHARDS).map(|_| Mutex::new(Shard { lru: lru::LruCache::unbounded(), bytes: 0 })).collect();
        BlockCache { shards, shard_capacity: capacity / SHARDS, flights: Mutex::new(HashMap::new()) }
    }

    /// The largest block worth caching: bigger ones would evict a whole shard.
    pub fn max_block(&self) -> usize {
        self.shard_capacity / 2
    }

    fn shard(&self, key: &BlockKey) -> &Mutex<Shard> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        &self.shards[(h.finish() as usize) % SHARDS]
    }

    /// The block if cached.
    pub fn get(&self, key: &BlockKey) -> Option<Block> {
        self.shard(key).lock().lru.get(key).cloned()
    }

    /// Caches a block, evicting least recently used ones beyond the capacity.
    pub fn insert(&self, key: BlockKey, block: Block) {
        if block.len() > self.max_block() {
            return;
        }
        let mut shard = self.shard(&key).lock();
        shard.bytes += block.len();
        if let Some(old) = shard.lru.put(key, block) {
            shard.bytes -= old.len();
        }
        while shard.bytes > self.shard_capacity {
            match shard.lru.pop_lru() {
                Some((_, evicted)) => shard.bytes -= evicted.len(),
                None => break,
            }
        }
    }

    /// The cached block, or the result of `load` run exactly once however many threads ask
    /// for the same key at the same time. Errors are not cached: the next call retries.
    pub fn get_or_load(&self, key: BlockKey, load: impl FnOnce() -> io::Result<Vec<u8>>) -> io::Result<Block> {
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
        // A cached copy may have landed between our miss and taking the flight.
        let result = match self.get(&key) {
            Some(b) => Ok(b),
            None => load().map(|v| Block::from(v.into_boxed_slice())),
        };
        if let Ok(b) = &result {
            self.insert(key, b.clone());
        }
        *flight.done.lock() = Some(match &result {
            Ok(b) => Ok(b.clone()),
            Err(e) => Err((e.kind(), e.to_string())),
        });
        flight.cond.notify_all();
        self.flights.lock().remove(&key);
        result
    }

    /// Bytes currently held.
    pub fn bytes(&self) -> usize {
        self.shards.iter().map(|s| s.lock().bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn stays_within_capacity_and_evicts_lru() {
        let cache = BlockCache::new(16 * 1024);
        for i in 0..1000u64 {
            cache.insert(BlockKey { owner: 1, item: 0, block: i }, vec![7u8; 100].into());
            assert!(cache.bytes() <= 16 * 1024);
        }
        assert!(cache.get(&BlockKey { owner: 1, item: 0, block: 999 }).is_some());
        assert!(cache.get(&BlockKey { owner: 1, item: 0, block: 0 }).is_none());
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
}
