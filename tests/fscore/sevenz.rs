//! 7z in process: a solid 7z (written by the `7z` tool) over a misbehaving source. Short reads
//! give exact bytes within the budget, an OS error under a read keeps its errno and is not
//! remembered, and a corrupt byte in the packed data is never served as good bytes.

use medfs::error::FsError;

use super::*;

/// A solid 7z of `entries`, as bytes (`7z a -mx1 -ms=on`).
fn sevenz_bytes(entries: &[Entry]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.7z");
    make_7z(&out, entries, &["-mx1", "-ms=on"]);
    std::fs::read(out).unwrap()
}

fn members() -> Vec<Entry> {
    (0..12).map(|i| entry(&format!("d/m{i:02}.bin"), bytes(700_000 + i * 3001, 500 + i as u64, i % 3 == 0))).collect()
}

#[test]
fn a_solid_7z_over_short_reads_serves_exact_bytes_within_the_budget() {
    const BUDGET: usize = 4 << 20;
    let entries = members();
    let src = Faulty::new("s.7z", sevenz_bytes(&entries));
    src.short_reads(999);
    let fs = core_with_cache(&[("s.7z", src.source())], BUDGET);
    let cache = fs.pool().cache.clone();
    // Backwards: every read lies behind the folder's cursor, the worst order for a solid block.
    for e in entries.iter().rev() {
        assert!(read_all(&fs, &format!("_archives/s.7z/{}", e.path), 128 << 10).unwrap() == e.data, "{}", e.path);
    }
    assert!(cache.peak_bytes() <= BUDGET + (1 << 20) + 4096, "peak {} over {BUDGET}", cache.peak_bytes());
}

#[test]
fn os_errors_under_7z_reads_keep_their_errno_and_heal() {
    let entries = members();
    let src = Faulty::new("s.7z", sevenz_bytes(&entries));
    let fs = core(&[("s.7z", src.source())]);
    src.fail(libc::ENXIO, u64::MAX);
    let path = format!("_archives/s.7z/{}", entries[5].path);
    let e: FsError = read_all(&fs, &path, 128 << 10).expect_err("the source fails every read");
    assert_eq!(e.errno(), libc::ENXIO, "{e}");
    src.heal();
    assert!(read_all(&fs, &path, 128 << 10).unwrap() == entries[5].data, "not remembered once the source heals");
}

#[test]
fn a_corrupt_byte_in_packed_7z_data_is_never_served_as_good_bytes() {
    let entries = members();
    let mut raw = sevenz_bytes(&entries);
    // In the packed stream (after the 32-byte signature header, before the end header).
    let at = raw.len() / 3;
    raw[at] ^= 0x55;
    let fs = core(&[("s.7z", Faulty::new("s.7z", raw).source())]);
    let mut failed = 0;
    for e in &entries {
        match read_all(&fs, &format!("_archives/s.7z/{}", e.path), 128 << 10) {
            Ok(got) => assert!(got == e.data, "{}: wrong bytes served", e.path),
            Err(err) => {
                assert_eq!(err.errno(), libc::EIO, "{}: {err}", e.path);
                failed += 1;
            }
        }
    }
    assert!(failed > 0, "a flipped byte in the packed data must fail some member");
}
