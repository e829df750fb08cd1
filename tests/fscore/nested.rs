//! Archives inside archives, in process: a zip deflated inside a zip and a tar.gz stored in a
//! tar, read through their outer archive's reader. Corrupt outer bytes fail the inner files
//! with EIO (never wrong bytes), short outer reads are retried into exact bytes, and the inner
//! reads stay within the one memory budget.

use medfs::error::FsError;
use medfs::fs::MedFs;
use medfs::pool::Pool;
use medfs::tree::TreeOptions;

use super::*;

/// The core over `sources` with archives nested `max_depth` levels deep opened.
fn nested_core(sources: &[(&str, Arc<dyn ByteSource>)], cache_bytes: usize, max_depth: u32) -> MedFs {
    let sources = sources.iter().map(|(n, s)| (n.to_string(), s.clone())).collect();
    let mut pool = Pool::from_sources(sources, cache_bytes, false).expect("sources list");
    pool.open_nested(max_depth).expect("nested archives open");
    let (tree, reader) = medfs::build::parts(pool, TreeOptions::default(), &[]);
    MedFs::from_parts(tree, reader)
}

fn members() -> Vec<Entry> {
    (0..8).map(|i| entry(&format!("d/m{i}.bin"), bytes(600_000 + i * 4099, 300 + i as u64, i % 2 == 0))).collect()
}

#[test]
fn inner_archives_read_exact_bytes_within_the_budget_and_short_outer_reads_are_retried() {
    const BUDGET: usize = 4 << 20;
    let inner = members();
    let zip_in_zip = zip_bytes(&[entry("inner.zip", zip_bytes(&inner, ZipMethod::Deflated))], ZipMethod::Deflated);
    let tar = tar_bytes(&[entry("inner.tar.gz", tar_gz_bytes(&inner))]);
    let outer_zip = Faulty::new("outer.zip", zip_in_zip);
    let outer_tar = Faulty::new("outer.tar", tar);
    outer_zip.short_reads(777);
    outer_tar.short_reads(1001);
    let fs = nested_core(&[("outer.zip", outer_zip.source()), ("outer.tar", outer_tar.source())], BUDGET, 3);
    let cache = fs.pool().cache.clone();
    for root in ["_archives/outer.zip/inner.zip", "_archives/outer.tar/inner.tar.gz"] {
        for e in &inner {
            let got = read_all(&fs, &format!("{root}/{}", e.path), 128 << 10).unwrap();
            assert!(got == e.data, "{root}/{}", e.path);
        }
        // Out of order, partial.
        let mut buf = Vec::new();
        for (k, e) in inner.iter().enumerate().rev() {
            let at = (k * 50_021) % (e.data.len() - 4096);
            fs.read(ino(&fs, &format!("{root}/{}", e.path)), at as u64, 4096, &mut buf).unwrap();
            assert!(buf[..] == e.data[at..at + 4096], "{root}/{} at {at}", e.path);
        }
    }
    assert!(cache.peak_bytes() <= BUDGET + (1 << 20) + 4096, "peak {} over the budget {BUDGET}", cache.peak_bytes());
    // The member itself is there too, as name~raw.
    assert!(fs.resolve(b"_archives/outer.zip/inner.zip~raw").is_ok());
}

#[test]
fn corrupt_bytes_of_the_outer_archive_fail_the_inner_files_with_eio() {
    // 12 MB: the outer zip serves a member this big by positioned reads (a small one is
    // checked whole before any byte is out, and its CRC would refuse the inner zip at once).
    let inner: Vec<Entry> = (0..8).map(|i| entry(&format!("d/m{i}.bin"), bytes(1_500_000, 70 + i, false))).collect();
    let inner_zip = zip_bytes(&inner, ZipMethod::Stored);
    let mut outer = zip_bytes(&[entry("inner.zip", inner_zip)], ZipMethod::Stored);
    // Damage m3's bytes where they lie in the outer file: the inner zip's CRC of m3 fails.
    let at = find(&outer, &inner[3].data[1000..1032]) as usize;
    outer[at + 5] ^= 0x40;
    let fs = nested_core(&[("outer.zip", Faulty::new("outer.zip", outer).source())], 64 << 20, 3);
    let bad = format!("_archives/outer.zip/inner.zip/{}", inner[3].path);
    for chunk in [4096, 128 << 10] {
        match read_all(&fs, &bad, chunk) {
            Ok(data) => panic!("served {} bytes of corrupt data", data.len()),
            Err(e) => assert_eq!(e.errno(), libc::EIO, "{e}"),
        }
    }
    let ok = format!("_archives/outer.zip/inner.zip/{}", inner[4].path);
    assert!(read_all(&fs, &ok, 4096).unwrap() == inner[4].data);
    // The outer member as a whole fails its own CRC too.
    let e: FsError = read_all(&fs, "_archives/outer.zip/inner.zip~raw", 128 << 10).expect_err("outer CRC");
    assert_eq!(e.errno(), libc::EIO);
}

#[test]
fn depth_zero_opens_nothing() {
    let inner = zip_bytes(&members()[..1], ZipMethod::Stored);
    let outer = zip_bytes(&[entry("inner.zip", inner.clone())], ZipMethod::Stored);
    let fs = nested_core(&[("outer.zip", Faulty::new("outer.zip", outer).source())], 64 << 20, 0);
    assert!(read_all(&fs, "_archives/outer.zip/inner.zip", 4096).unwrap() == inner);
    assert!(fs.resolve(b"_archives/outer.zip/inner.zip~raw").is_err());
}
