//! A fault-injecting `ByteSource` over bytes in memory: short reads, OS errors, interrupted
//! reads, delays, and bytes that change after some reads, each switched on and off while the
//! core keeps using the source.

use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use medfs::archive::ByteSource;
use parking_lot::Mutex;

/// Reads that fail: with an errno, or with `Interrupted` (which callers must retry).
#[derive(Clone, Debug)]
struct Failure {
    /// `None` fails with `ErrorKind::Interrupted`.
    errno: Option<i32>,
    /// How many more reads fail (`u64::MAX`: all of them).
    remaining: u64,
    /// Only reads touching these bytes fail.
    range: Range<u64>,
}

/// A byte that reads inverted once the source has answered `after` reads in all.
#[derive(Clone, Copy, Debug)]
struct Flip {
    after: u64,
    offset: u64,
}

/// Bytes in memory that misbehave on demand. Faults are off until switched on, so a test
/// usually lists an archive cleanly and then breaks the reads that follow.
pub struct Faulty {
    name: String,
    bytes: Vec<u8>,
    /// `read_at` calls so far (failed ones included).
    reads: AtomicU64,
    /// Calls inside `read_at` right now (a test waits for a reader to be stuck).
    in_flight: AtomicU64,
    /// Most bytes one call returns (0: as many as asked).
    max_chunk: AtomicUsize,
    delay_ms: AtomicU64,
    failure: Mutex<Option<Failure>>,
    flip: Mutex<Option<Flip>>,
}

impl Faulty {
    /// A well-behaved source until told otherwise.
    pub fn new(name: &str, bytes: Vec<u8>) -> Arc<Faulty> {
        Arc::new(Faulty {
            name: name.into(),
            bytes,
            reads: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            max_chunk: AtomicUsize::new(0),
            delay_ms: AtomicU64::new(0),
            failure: Mutex::new(None),
            flip: Mutex::new(None),
        })
    }

    /// The same source as the core sees it.
    pub fn source(self: &Arc<Self>) -> Arc<dyn ByteSource> {
        self.clone()
    }

    /// The bytes it holds.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Every call returns at most `max` bytes (0: no limit): legal, and must be retried.
    pub fn short_reads(&self, max: usize) {
        self.max_chunk.store(max, Ordering::SeqCst);
    }

    /// The next `times` reads (`u64::MAX`: every read) fail with `errno`.
    pub fn fail(&self, errno: i32, times: u64) {
        self.fail_range(errno, times, 0..u64::MAX);
    }

    /// The next `times` reads touching `range` fail with `errno`; other reads succeed.
    pub fn fail_range(&self, errno: i32, times: u64, range: Range<u64>) {
        *self.failure.lock() = Some(Failure { errno: Some(errno), remaining: times, range });
    }

    /// The next `times` reads fail with `Interrupted` (EINTR), which every reader retries.
    pub fn interrupt(&self, times: u64) {
        *self.failure.lock() = Some(Failure { errno: None, remaining: times, range: 0..u64::MAX });
    }

    /// Every read first sleeps this long.
    pub fn delay(&self, d: Duration) {
        self.delay_ms.store(d.as_millis() as u64, Ordering::SeqCst);
    }

    /// After `after` more reads, the byte at `offset` reads inverted (the file changed under
    /// the mount, or a disk returned bad data).
    pub fn flip_after(&self, after: u64, offset: u64) {
        *self.flip.lock() = Some(Flip { after: self.reads() + after, offset });
    }

    /// Back to well-behaved (a flipped byte reads correctly again).
    pub fn heal(&self) {
        self.short_reads(0);
        self.delay(Duration::ZERO);
        *self.failure.lock() = None;
        *self.flip.lock() = None;
    }

    /// `read_at` calls so far.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::SeqCst)
    }

    /// Calls blocked inside `read_at` right now.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::SeqCst)
    }
}

/// Decrements the in-flight count however `read_at` returns.
struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ByteSource for Faulty {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let _guard = InFlight(&self.in_flight);
        let count = self.reads.fetch_add(1, Ordering::SeqCst) + 1;
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        let len = self.bytes.len() as u64;
        if offset >= len || buf.is_empty() {
            return Ok(0);
        }
        let mut want = buf.len().min((len - offset) as usize);
        if let Some(f) = &mut *self.failure.lock()
            && f.remaining > 0
            && offset < f.range.end
            && offset + want as u64 > f.range.start
        {
            if f.remaining != u64::MAX {
                f.remaining -= 1;
            }
            return Err(match f.errno {
                Some(errno) => io::Error::from_raw_os_error(errno),
                None => io::Error::from(io::ErrorKind::Interrupted),
            });
        }
        let max = self.max_chunk.load(Ordering::SeqCst);
        if max > 0 {
            want = want.min(max);
        }
        let start = offset as usize;
        buf[..want].copy_from_slice(&self.bytes[start..start + want]);
        if let Some(flip) = *self.flip.lock()
            && count > flip.after
            && (offset..offset + want as u64).contains(&flip.offset)
        {
            buf[(flip.offset - offset) as usize] ^= 0xff;
        }
        Ok(want)
    }

    fn describe(&self) -> String {
        format!("mem:{}", self.name)
    }
}
