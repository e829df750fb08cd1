//! The memory budget, in process: everything the reader keeps between reads (decoded blocks,
//! first passes over big deflated members, decoder cursors, seek points, decoders in flight)
//! stays within `--cache-size` however many members are touched, and every byte stays right.

use super::*;

/// Big deflated members (too big to decode whole at this budget), touched the way a training
/// epoch touches them: the head of each, a block in the middle of each, then each whole.
#[test]
fn many_big_deflated_members_stay_within_the_budget() {
    const BUDGET: usize = 8 << 20;
    let members: Vec<Vec<u8>> = (0..24).map(|i| bytes(3 << 20, 900 + i, true)).collect();
    let entries: Vec<Entry> =
        members.iter().enumerate().map(|(i, d)| entry(&format!("m{i:02}.nii"), d.clone())).collect();
    let zip: Arc<dyn ByteSource> = Faulty::new("vol.zip", zip_bytes(&entries, ZipMethod::Deflated));
    let fs = core_with_cache(&[("vol.zip", zip)], BUDGET);
    let cache = fs.pool().cache.clone();
    let mut buf = Vec::new();
    for (i, d) in members.iter().enumerate() {
        fs.read(ino(&fs, &format!("_archives/vol.zip/m{i:02}.nii")), 0, 4096, &mut buf).unwrap();
        assert!(buf[..] == d[..4096], "head of m{i:02}");
    }
    // Each head read left a first pass behind (buffers, zlib state): charged, so the oldest
    // were evicted to keep the total within the budget.
    let (states, state_bytes) = cache.states();
    assert!(states > 0 && states < members.len(), "{states} first passes held");
    assert!(state_bytes >= states * (256 << 10), "{states} passes charged only {state_bytes} bytes");
    for (i, d) in members.iter().enumerate() {
        let at = 2 << 20;
        fs.read(ino(&fs, &format!("_archives/vol.zip/m{i:02}.nii")), at as u64, 4096, &mut buf).unwrap();
        assert!(buf[..] == d[at..at + 4096], "middle of m{i:02}");
    }
    for (i, d) in members.iter().enumerate() {
        assert!(read_all(&fs, &format!("_archives/vol.zip/m{i:02}.nii"), 128 << 10).unwrap() == *d, "m{i:02}");
    }
    // Random 4 KiB reads after every member's first pass: served from seek points.
    for k in 0..200usize {
        let (i, at) = ((k * 7) % members.len(), (k * 104_729) % ((3 << 20) - 4096));
        fs.read(ino(&fs, &format!("_archives/vol.zip/m{i:02}.nii")), at as u64, 4096, &mut buf).unwrap();
        assert!(buf[..] == members[i][at..at + 4096], "m{i:02} at {at}");
    }
    // The peak includes at most one entry inserted before its eviction ran.
    assert!(cache.peak_bytes() <= BUDGET + (1 << 20) + 4096, "peak {} over the budget {BUDGET}", cache.peak_bytes());
    assert!(cache.bytes() <= BUDGET, "now {}", cache.bytes());
}

/// Sixteen readers at once over a tar.gz and big deflated members with a small budget:
/// decoders in flight wait for room instead of growing past it, and the bytes are right.
#[test]
fn concurrent_readers_share_the_budget_with_decoders_in_flight() {
    const BUDGET: usize = 6 << 20;
    let big: Vec<Vec<u8>> = (0..6).map(|i| bytes(2 << 20, 40 + i, true)).collect();
    let small: Vec<Entry> =
        (0..200).map(|i| entry(&format!("s/{i:03}.png"), bytes(20_000 + i * 37, i as u64, false))).collect();
    let big_entries: Vec<Entry> = big.iter().enumerate().map(|(i, d)| entry(&format!("b{i}.nii"), d.clone())).collect();
    let zip: Arc<dyn ByteSource> = Faulty::new("vol.zip", zip_bytes(&big_entries, ZipMethod::Deflated));
    let tgz: Arc<dyn ByteSource> = Faulty::new("img.tar.gz", tar_gz_bytes(&small));
    let fs = Arc::new(core_with_cache(&[("vol.zip", zip), ("img.tar.gz", tgz)], BUDGET));
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let (fs, big, small) = (fs.clone(), big.clone(), small.clone());
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                for k in 0..60usize {
                    let n = t * 1000 + k;
                    if n % 3 == 0 {
                        let i = n % big.len();
                        let at = (n * 7919) % ((2 << 20) - 65536);
                        fs.read(ino(&fs, &format!("_archives/vol.zip/b{i}.nii")), at as u64, 65536, &mut buf).unwrap();
                        assert!(buf[..] == big[i][at..at + 65536]);
                    } else {
                        let e = &small[n % small.len()];
                        assert!(read_all(&fs, &format!("_archives/img.tar.gz/{}", e.path), 32768).unwrap() == e.data);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let cache = &fs.pool().cache;
    assert!(cache.peak_bytes() <= BUDGET + (1 << 20) + 4096, "peak {} over the budget {BUDGET}", cache.peak_bytes());
}
