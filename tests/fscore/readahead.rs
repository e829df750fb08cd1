//! Read-ahead and parallel decode, in process: spans decoded ahead of a sequential reader on the
//! read-ahead workers give the same bytes as the source under concurrent and random readers,
//! stay within the budget while in flight, and the DICOM header scan leaves the cache small.

use std::sync::atomic::Ordering;

use medfs::stream::AHEAD_DECODED;

use super::*;

/// A deflated zip member of 12 MiB under a 4 MiB budget: after its first pass its 1 MiB blocks
/// cannot all stay, so later sequential reads go through its seek points, with read-ahead.
#[test]
fn read_ahead_serves_exact_bytes_to_sequential_and_random_readers() {
    const BUDGET: usize = 8 << 20;
    let vol = bytes(12 << 20, 77, true);
    let other = bytes(9 << 20, 78, true);
    let zip: Arc<dyn ByteSource> = Faulty::new(
        "vol.zip",
        zip_bytes(&[entry("vol.nii", vol.clone()), entry("other.nii", other.clone())], ZipMethod::Deflated),
    );
    let gz: Arc<dyn ByteSource> = Faulty::new("scan.nii.gz", medfs::fixtures::gzip(&other));
    let fs = Arc::new(core_with_cache(&[("vol.zip", zip), ("scan.nii.gz", gz)], BUDGET));
    // First passes (single core, blocks left behind as they fit).
    assert!(read_all(&fs, "_archives/vol.zip/vol.nii", 128 << 10).unwrap() == vol);
    assert!(read_all(&fs, "_archives/vol.zip/other.nii", 128 << 10).unwrap() == other);
    let before = AHEAD_DECODED.load(Ordering::Relaxed);
    // Two sequential readers of each stream and four random readers, at once.
    let mut threads = Vec::new();
    for t in 0..8usize {
        let (fs, vol, other) = (fs.clone(), vol.clone(), other.clone());
        threads.push(std::thread::spawn(move || {
            let (path, data) = match t % 4 {
                0 => ("_archives/vol.zip/vol.nii", &vol),
                1 => ("_archives/vol.zip/other.nii", &other),
                _ => ("_archives/scan.nii.gz/scan.nii", &other),
            };
            if t < 4 {
                for chunk in [128 << 10, 1 << 20] {
                    assert!(read_all(&fs, path, chunk).unwrap() == *data, "{path} in {chunk}-byte reads");
                }
            } else {
                let ino = ino(&fs, path);
                let mut buf = Vec::new();
                for k in 0..150usize {
                    let at = (k * 2_654_435_761 + t * 977) % (data.len() - 70_000);
                    let len = 1 + (k * 7919) % 70_000;
                    fs.read(ino, at as u64, len, &mut buf).unwrap();
                    assert!(buf[..] == data[at..at + len], "{path} at {at}+{len}");
                }
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    let ahead = AHEAD_DECODED.load(Ordering::Relaxed) - before;
    assert!(ahead >= 4, "only {ahead} spans decoded ahead of the sequential readers");
    // Jobs still running are charged too: wait for them before checking the end state.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let cache = &fs.pool().cache;
    // Exact: entries plus reservations (read-ahead's included) never past the budget, however
    // many readers and workers insert at once (each charge evicts in the same step).
    assert!(cache.peak_bytes() <= BUDGET, "peak {} over the budget {BUDGET}", cache.peak_bytes());
    assert!(cache.bytes() <= BUDGET, "now {}", cache.bytes());
}

/// A budget too small for read-ahead to find room: the jobs give up, and readers get every
/// byte from their own decoding, within the budget.
#[test]
fn read_ahead_gives_way_when_the_budget_is_busy() {
    const BUDGET: usize = 2 << 20;
    let data = bytes(10 << 20, 91, true);
    let gz: Arc<dyn ByteSource> = Faulty::new("big.nii.gz", medfs::fixtures::gzip(&data));
    let fs = Arc::new(core_with_cache(&[("big.nii.gz", gz)], BUDGET));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (fs, data) = (fs.clone(), data.clone());
            std::thread::spawn(move || assert!(read_all(&fs, "_archives/big.nii.gz/big.nii", 200_000).unwrap() == data))
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let cache = &fs.pool().cache;
    assert!(cache.peak_bytes() <= BUDGET, "peak {} over the budget {BUDGET}", cache.peak_bytes());
}

/// The header scan of 60 DICOM members of 0.5 MB reads their heads only: the cache holds
/// none of them afterwards (it held every member whole before, 30 MB here).
#[test]
fn the_dicom_header_scan_leaves_the_cache_small() {
    use medfs::fixtures::Dv::{Raw, Text, Uid, Us};
    let entries: Vec<Entry> = (0..60u32)
        .map(|i| {
            let series = format!("1.2.3.{}", i / 20);
            let sop = format!("{series}.{i}");
            let pixels: Vec<u8> = bytes(512 << 10, u64::from(i), false).iter().map(|b| b & 0x0F).collect();
            // Every third header is 40 KB long (a private element before the pixels): the scan
            // starts with a few KiB and must ask for more.
            let private = bytes(40_000, u64::from(i) + 1000, false);
            let number = i.to_string();
            let mut elements = vec![
                (8, 0x16, Uid("1.2.840.10008.5.1.4.1.1.2")),
                (8, 0x18, Uid(&sop)),
                (0x10, 0x20, Text("P1")),
                (0x20, 0x0D, Uid("1.2.3")),
                (0x20, 0x0E, Uid(&series)),
                (0x20, 0x13, Text(&number)),
                (0x28, 0x10, Us(512)),
                (0x28, 0x11, Us(512)),
            ];
            if i % 3 == 0 {
                elements.push((0x29, 0x1010, Raw(&private)));
            }
            elements.push((0x7FE0, 0x10, Raw(&pixels)));
            let file = medfs::fixtures::dicom(&elements);
            entry(&format!("P1/{i:03}.dcm"), file)
        })
        .collect();
    let zip: Arc<dyn ByteSource> = Faulty::new("ct.zip", zip_bytes(&entries, ZipMethod::Deflated));
    let pool = Pool::from_sources(vec![("ct.zip".to_string(), zip)], 512 << 20, false).unwrap();
    let reader = medfs::reader::Reader::new(pool);
    let headers = medfs::dicomscan::scan(&reader, &reader.pool().store);
    assert_eq!(headers[0].len(), 60, "every member's header found");
    for (m, info) in &headers[0] {
        let path = &reader.pool().archives[0].members[*m as usize].path;
        let i = entries.iter().position(|e| e.path.as_bytes() == path.as_slice()).expect("a member of the zip");
        assert_eq!(info.instance_number, Some(i as i64), "member {i}: its header parsed whole");
    }
    let cache = &reader.pool().cache;
    assert!(cache.peak_bytes() < 4 << 20, "the scan charged {} bytes at its peak", cache.peak_bytes());
    assert!(cache.bytes() < 64 << 10, "the scan left {} bytes in the cache", cache.bytes());
    // The members still read whole, exactly.
    let mut out = Vec::new();
    reader.read(0, 7, 0, 1 << 20, &mut out).unwrap();
    assert!(out == entries[7].data);
}
