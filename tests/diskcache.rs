//! The disk cache of decoded blocks through real mounts: a single-block xz stream read at random
//! is byte-exact, its blocks land in the disk cache folder, a second daemon reads them from
//! there, and `--no-disk-cache` writes nothing.

mod common;

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::Command;

use common::*;

/// A single-block xz of `data` (one block: xz's default single-threaded mode, block size pinned
/// above the length anyway).
fn single_block_xz(data: &[u8], path: &Path) {
    let raw = path.with_extension("");
    std::fs::write(&raw, data).unwrap();
    let status = Command::new("xz")
        .args(["-0", "-k", "-f", "--block-size=1GiB", "-T1"])
        .arg(&raw)
        .status()
        .expect("xz is needed by this test (apt-get install xz-utils)");
    assert!(status.success());
    std::fs::remove_file(&raw).unwrap();
    assert!(path.exists());
}

/// Reads 64 KiB at each offset through the mount and checks it against `data`.
fn check_reads(file: &Path, data: &[u8], offsets: &[u64]) {
    let mut f = std::fs::File::open(file).unwrap();
    for &at in offsets {
        let want = &data[at as usize..(at as usize + 65536).min(data.len())];
        let mut got = vec![0u8; want.len()];
        f.seek(SeekFrom::Start(at)).unwrap();
        f.read_exact(&mut got).unwrap();
        assert!(got == want, "bytes differ at {at}");
    }
}

#[test]
fn a_single_block_xz_is_served_through_the_disk_cache_and_a_second_daemon_finds_it_warm() {
    let dir = tempfile::tempdir().unwrap();
    let len = 24 << 20;
    let data: Vec<u8> = medfs::fixtures::noise(len, 11, true);
    let xz = dir.path().join("data.bin.xz");
    single_block_xz(&data, &xz);
    let cache_dir = dir.path().join("blocks");
    // A 16 MiB budget caches at most 2 MiB blocks: the 24 MiB span cannot be held in memory.
    let opts = ["--cache-size", "16M", "--disk-cache-dir", cache_dir.to_str().unwrap()];
    let mut x = 0x2545F4914F6CDD1Du64;
    let mut offsets: Vec<u64> = (0..40)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % (len as u64 - 1000)
        })
        .collect();
    offsets.push(len as u64 - 100); // the short last block
    offsets.push((5 << 20) - 10); // a read across two blocks

    let m = mount(&[&xz], &dir.path().join("mnt"), &opts);
    let file = m.path("_archives/data.bin.xz/data.bin");
    assert_eq!(std::fs::metadata(&file).unwrap().len(), len as u64);
    // The listing pass stored every block at least a memory block (2 MiB) past the seek point.
    let listed = disk_blocks(&cache_dir);
    assert_eq!(listed.len(), (len >> 20) - 2, "{listed:?}");
    check_reads(&file, &data, &offsets);
    drop(m);
    let first = disk_blocks(&cache_dir);
    // Reads decoded the first two blocks and stored them too.
    assert_eq!(first.len(), len >> 20, "{first:?}");

    // A new daemon: every block is read from disk (its use time moves), none is written again.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let m = mount(&[&xz], &dir.path().join("mnt2"), &opts);
    check_reads(&m.path("_archives/data.bin.xz/data.bin"), &data, &offsets);
    drop(m);
    let second = disk_blocks(&cache_dir);
    assert_eq!(second.len(), first.len());
    let used = second.iter().zip(&first).filter(|(now, before)| now.1 > before.1).count();
    let touched: std::collections::BTreeSet<u64> =
        offsets.iter().flat_map(|&at| [at >> 20, (at + 65535).min(len as u64 - 1) >> 20]).collect();
    assert!(used >= touched.len(), "{used} blocks of {} were read from the disk cache", touched.len());

    // Disabled: nothing is written.
    let off_dir = dir.path().join("off");
    for flags in [&["--no-disk-cache"][..], &["--disk-cache-size", "0"]] {
        let mut opts = vec!["--cache-size", "16M", "--disk-cache-dir", off_dir.to_str().unwrap()];
        opts.extend_from_slice(flags);
        let m = mount(&[&xz], &dir.path().join("mnt3"), &opts);
        check_reads(&m.path("_archives/data.bin.xz/data.bin"), &data, &offsets[..5]);
        drop(m);
        assert!(disk_blocks(&off_dir).is_empty(), "{flags:?} wrote blocks");
    }
}
