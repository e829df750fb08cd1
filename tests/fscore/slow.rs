//! Slow sources: a reader stuck in a read of one archive never holds up readers of another
//! archive (nor of the stuck archive's cached members), and delayed reads return exact bytes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::*;

/// Waits until `cond` holds or `timeout` passes.
fn wait_until(timeout: Duration, cond: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

#[test]
fn a_reader_stuck_on_a_slow_archive_does_not_hold_up_readers_of_other_archives() {
    const STUCK: Duration = Duration::from_secs(3);
    // Big enough that in the tar.gz its bytes lie in other seek-point spans than the cached
    // member before it (spans are 832 KiB), so the stuck read really goes to the source.
    let slow_data = bytes(3 << 20, 1, true);
    let cached = bytes(30_000, 2, true);
    let fast: Vec<Entry> =
        (0..40).map(|i| entry(&format!("f/{i:02}.png"), bytes(20_000, 10 + i, i % 2 == 0))).collect();
    let slow_entries = [entry("s/cached.txt", cached.clone()), entry("s/slow.bin", slow_data.clone())];
    // Each slow format has its own way to the source: a whole-member decode (zip), a
    // decompressed span through the block cache (tar.gz), a positioned read (tar).
    let slow = [
        ("slow.zip", Faulty::new("slow.zip", zip_bytes(&slow_entries, ZipMethod::Deflated))),
        ("slow.tar.gz", Faulty::new("slow.tar.gz", tar_gz_bytes(&slow_entries))),
        ("slow.tar", Faulty::new("slow.tar", tar_bytes(&slow_entries))),
    ];
    let fast_zip = Faulty::new("fast.zip", zip_bytes(&fast, ZipMethod::Deflated));
    let fast_tgz = Faulty::new("fast.tar.gz", tar_gz_bytes(&fast));
    let mut named: Vec<(&str, Arc<dyn ByteSource>)> = slow.iter().map(|(n, f)| (*n, f.source())).collect();
    named.push(("fast.zip", fast_zip.source()));
    named.push(("fast.tar.gz", fast_tgz.source()));
    // A cache big enough that the earlier rounds' blocks never evict the cached member.
    let fs = Arc::new(core_with_cache(&named, 512 << 20));
    for (name, src) in &slow {
        assert!(read_all(&fs, &format!("_archives/{name}/s/cached.txt"), 4096).unwrap() == cached);
        src.delay(STUCK);
        let done = Arc::new(AtomicBool::new(false));
        let stuck = {
            let (fs, done, path) = (fs.clone(), done.clone(), format!("_archives/{name}/s/slow.bin"));
            std::thread::spawn(move || {
                let started = Instant::now();
                let got = read_all(&fs, &path, 128 << 10);
                done.store(true, Ordering::SeqCst);
                (got, started.elapsed())
            })
        };
        assert!(wait_until(Duration::from_secs(5), || src.in_flight() > 0), "{name}: the reader reached the source");
        // Two threads read every member of both fast archives while the first one is stuck.
        let started = Instant::now();
        let readers: Vec<_> = (0..2)
            .map(|t| {
                let (fs, fast) = (fs.clone(), fast.clone());
                std::thread::spawn(move || {
                    let mut slowest = Duration::ZERO;
                    for archive in ["fast.zip", "fast.tar.gz"] {
                        for e in fast.iter().skip(t) {
                            let t0 = Instant::now();
                            let got = read_all(&fs, &format!("_archives/{archive}/{}", e.path), 128 << 10).unwrap();
                            slowest = slowest.max(t0.elapsed());
                            assert!(got == e.data, "{archive}/{}", e.path);
                        }
                    }
                    slowest
                })
            })
            .collect();
        let slowest = readers.into_iter().map(|r| r.join().unwrap()).max().unwrap();
        // The stuck archive's member that is already in the block cache is served too (a plain
        // tar has no decoded blocks to cache: its reads always go to the source).
        let t0 = Instant::now();
        if !name.ends_with(".tar") {
            assert!(read_all(&fs, &format!("_archives/{name}/s/cached.txt"), 4096).unwrap() == cached);
        }
        let cached_took = t0.elapsed();
        let all_took = started.elapsed();
        assert!(!done.load(Ordering::SeqCst), "{name}: the slow reader is still inside its read");
        assert!(slowest < Duration::from_millis(1000), "{name}: a fast read took {slowest:?}");
        assert!(cached_took < Duration::from_millis(500), "{name}: a cached member of it took {cached_took:?}");
        assert!(all_took < STUCK, "{name}: fast readers took {all_took:?} in all");
        src.heal();
        let (got, took) = stuck.join().unwrap();
        assert!(got.unwrap() == slow_data, "{name}: the slow read returns exact bytes");
        assert!(took >= STUCK, "{name}: it really was stuck ({took:?})");
    }
}

#[test]
fn many_threads_reading_through_delayed_sources_get_exact_bytes() {
    let entries: Vec<Entry> = (0..12)
        .map(|i| entry(&format!("d/{i:02}.bin"), bytes(150_000 + i * 10_000, 50 + i as u64, i % 2 == 1)))
        .collect();
    let archives = [
        ("a.zip", Faulty::new("a.zip", zip_bytes(&entries, ZipMethod::Deflated))),
        ("b.tar.gz", Faulty::new("b.tar.gz", tar_gz_bytes(&entries))),
        ("c.zip", Faulty::new("c.zip", zip_bytes(&entries, ZipMethod::Stored))),
    ];
    let named: Vec<(&str, Arc<dyn ByteSource>)> = archives.iter().map(|(n, f)| (*n, f.source())).collect();
    // A small cache, so that blocks are evicted and loaded again while others wait for them.
    let fs = Arc::new(core_with_cache(&named, 2 << 20));
    for (_, f) in &archives {
        f.delay(Duration::from_millis(2));
        f.short_reads(64 << 10);
    }
    let entries = Arc::new(entries);
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let (fs, entries) = (fs.clone(), entries.clone());
            std::thread::spawn(move || {
                // Threads start on the same members (single-flight loads) and drift apart.
                for i in 0..entries.len() {
                    let e = &entries[(i + t / 2) % entries.len()];
                    for archive in ["a.zip", "b.tar.gz", "c.zip"] {
                        let path = format!("_archives/{archive}/{}", e.path);
                        let got = read_all(&fs, &path, 32 << 10).unwrap_or_else(|err| panic!("{path}: {err}"));
                        assert!(got == e.data, "thread {t}: {path}: wrong bytes");
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
