//! Read-ahead through a real mount: after a remount (seek points from the index, a budget too
//! small to keep the first pass's blocks), sequential readers of a big deflated zip member and of
//! a .gz stream get spans decoded ahead of them, while random readers read the same files at
//! once, and every byte is the source's.

mod common;

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use common::*;

#[test]
fn sequential_and_random_readers_get_exact_bytes_with_read_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let vol = bytes(24 << 20, 31, true);
    let zip = dir.path().join("vol.zip");
    make_zip(&zip, &[entry("sub-01/bold.nii", vol.clone())], ZipMethod::Deflated);
    let gz = dir.path().join("scan.raw.gz");
    std::fs::write(&gz, medfs::fixtures::gzip(&vol[..16 << 20])).unwrap();
    let idx = dir.path().join("idx");
    let mnt = dir.path().join("mnt");
    let args = ["-vv", "--index-dir", idx.to_str().unwrap(), "--cache-size", "8M", "--no-datasets"];
    let files = [("_archives/vol.zip/sub-01/bold.nii", &vol[..]), ("_archives/scan.raw.gz/scan.raw", &vol[..16 << 20])];
    {
        // First passes: they record the seek points in the index folder.
        let m = mount(&[&zip, &gz], &mnt, &args);
        for (path, data) in files {
            assert!(std::fs::read(m.path(path)).unwrap() == data, "{path}: first pass");
        }
    }
    // Sequential readers alone: each file is read ahead of its reader once it has crossed two
    // span boundaries (spans are 832 KiB: 29 and 20 of them). Not all: a reader that reaches a
    // span before its job starts decodes it itself, and jobs give way when half the 8 MiB
    // budget is in flight.
    let m = mount(&[&zip, &gz], &mnt, &args);
    std::thread::scope(|s| {
        for (path, data) in files {
            let file = m.path(path);
            s.spawn(move || sequential(&file, data));
        }
    });
    drop(m);
    let ahead = spans_ahead(&mnt);
    assert!(ahead >= 10, "only {ahead} spans decoded ahead of two sequential readers of 49 spans");
    // A fresh mount (nothing in the kernel's page cache): sequential and random readers at once.
    let m = mount(&[&zip, &gz], &mnt, &args);
    std::thread::scope(|s| {
        for t in 0..6usize {
            let (path, data) = files[t % 2];
            let file = m.path(path);
            s.spawn(move || {
                if t < 2 {
                    sequential(&file, data);
                } else {
                    random(&file, data, t);
                }
            });
        }
    });
    drop(m);
    assert!(spans_ahead(&mnt) > 0, "no read-ahead beside random readers");
}

/// The spans the last daemon decoded ahead, from the summary it logged when unmounted.
fn spans_ahead(mnt: &Path) -> u64 {
    let log = std::fs::read_to_string(mnt.with_extension("log")).unwrap();
    let summary = log.lines().rfind(|l| l.contains("read requests")).expect("read sizes logged at unmount");
    summary.split("; ").last().and_then(|x| x.split(' ').next()).and_then(|n| n.parse().ok()).unwrap()
}

/// Reads `file` front to back in 1 MiB reads.
fn sequential(file: &Path, data: &[u8]) {
    let mut f = std::fs::File::open(file).unwrap();
    let mut got = Vec::with_capacity(data.len());
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match f.read(&mut buf).unwrap() {
            0 => break,
            n => got.extend_from_slice(&buf[..n]),
        }
    }
    assert!(got == data, "{}: sequential read differs", file.display());
}

/// Reads 200 ranges of `file` at scattered offsets.
fn random(file: &Path, data: &[u8], seed: usize) {
    let f = std::fs::File::open(file).unwrap();
    for k in 0..200usize {
        let len = 1 + (k * 7919 + seed) % 300_000;
        let at = (k * 2_654_435_761 + seed * 104_729) % (data.len() - len);
        let mut buf = vec![0u8; len];
        f.read_exact_at(&mut buf, at as u64).unwrap();
        assert!(buf == data[at..at + len], "{}: {len} bytes at {at}", file.display());
    }
}
