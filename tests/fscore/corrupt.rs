//! Bad bytes are never served as good ones: a CRC mismatch in a zip member, a corrupt region
//! of a tar.gz and bytes that change under the mount fail with EIO; short reads are retried
//! into exact bytes, never into wrong or missing ones.

use std::io::Write;

use medfs::error::FsError;

use super::*;

fn expect_eio(r: Result<Vec<u8>, FsError>, what: &str) {
    match r {
        Ok(data) => panic!("{what}: served {} bytes of corrupt data instead of failing", data.len()),
        Err(e) => assert_eq!(e.errno(), libc::EIO, "{what}: {e}"),
    }
}

#[test]
fn a_crc_mismatch_in_a_zip_member_is_eio_on_every_read_and_its_neighbours_still_read() {
    let good = bytes(50_000, 1, false);
    let bad = bytes(50_000, 2, false);
    let big = bytes(9 << 20, 3, false);
    let entries = [entry("good.bin", good.clone()), entry("bad.bin", bad.clone()), entry("big.bin", big.clone())];
    let mut stored = zip_bytes(&entries, ZipMethod::Stored);
    let at = find(&stored, &bad[2000..2032]) as usize;
    stored[at + 3] ^= 0x10;
    let at = find(&stored, &big[8_000_000..8_000_032]) as usize;
    stored[at + 1] ^= 0x01;
    let text = bytes(200_000, 4, true);
    let mut deflated = zip_bytes(&[entry("bad.txt", text.clone()), entry("ok.txt", text.clone())], ZipMethod::Deflated);
    // Garbage in the middle of the first member's compressed data.
    let mid = deflated.len() / 4;
    for b in &mut deflated[mid..mid + 32] {
        *b = !*b;
    }
    let stored = Faulty::new("stored.zip", stored);
    let deflated = Faulty::new("deflated.zip", deflated);
    let fs = core(&[("stored.zip", stored.source()), ("deflated.zip", deflated.source())]);
    for chunk in [4096, 128 << 10] {
        expect_eio(read_all(&fs, "_archives/stored.zip/bad.bin", chunk), "stored bad.bin");
        expect_eio(read_all(&fs, "_archives/deflated.zip/bad.txt", chunk), "deflated bad.txt");
    }
    // A partial read of a small member fails too: it is checked whole before any byte is out.
    let mut out = Vec::new();
    let e = fs.read(ino(&fs, "_archives/stored.zip/bad.bin"), 0, 10, &mut out).expect_err("partial read");
    assert_eq!(e.errno(), libc::EIO);
    // The big stored member is served by positioned reads: the read completing a sequential
    // pass fails, and every read after that.
    expect_eio(read_all(&fs, "_archives/stored.zip/big.bin", 128 << 10), "stored big.bin");
    let e = fs.read(ino(&fs, "_archives/stored.zip/big.bin"), 0, 10, &mut out).expect_err("after the pass");
    assert_eq!(e.errno(), libc::EIO);
    assert!(read_all(&fs, "_archives/stored.zip/good.bin", 4096).unwrap() == good);
    assert!(read_all(&fs, "_archives/deflated.zip/ok.txt", 4096).unwrap() == text);
}

/// A tar.gz written as one gzip member per group of files (as `cat a.gz b.gz` or a parallel
/// compressor does), so that the members before a corrupt region are verified independently.
fn multi_member_tar_gz(entries: &[Entry], per_member: usize) -> Vec<u8> {
    let tar = tar_bytes(entries);
    let mut out = Vec::new();
    for chunk in tar.chunks(per_member) {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(chunk).unwrap();
        out.extend(gz.finish().unwrap());
    }
    out
}

#[test]
fn a_corrupt_region_of_a_tar_gz_is_never_served_and_what_precedes_it_is_exact() {
    let entries: Vec<Entry> =
        (0..60).map(|i| entry(&format!("img/{i:03}.png"), bytes(40_000, 100 + i, i % 2 == 0))).collect();
    for multi in [false, true] {
        let mut raw = if multi { multi_member_tar_gz(&entries, 256 << 10) } else { tar_gz_bytes(&entries) };
        let mid = raw.len() * 6 / 10;
        for b in &mut raw[mid..mid + 48] {
            *b ^= 0x5a;
        }
        let src = Faulty::new("x.tar.gz", raw);
        let sources = vec![("x.tar.gz".to_string(), src.source())];
        let pool = Pool::from_sources(sources.clone(), 64 << 20, false).unwrap();
        assert!(pool.archives[0].damaged, "multi={multi}: the listing pass finds the damage");
        assert!(pool.warnings.iter().any(|w| w.contains("x.tar.gz")), "multi={multi}: {:?}", pool.warnings);
        assert!(Pool::from_sources(sources, 1 << 20, true).is_err(), "strict refuses it");
        let (tree, reader) = medfs::build::parts(pool, TreeOptions::default(), &[]);
        let fs = MedFs::from_parts(tree, reader);
        let mut exact = 0;
        for e in &entries {
            let path = format!("_archives/x.tar.gz/{}", e.path);
            if fs.resolve(path.as_bytes()).is_err() {
                continue; // listing stopped before it
            }
            match read_all(&fs, &path, 128 << 10) {
                Ok(data) => {
                    assert!(data == e.data, "multi={multi}: {}: wrong bytes served", e.path);
                    exact += 1;
                }
                Err(err) => assert_eq!(err.errno(), libc::EIO, "multi={multi}: {}: {err}", e.path),
            }
        }
        assert!(exact < entries.len(), "multi={multi}: the corrupt region is not all readable");
        if multi {
            // Gzip members before the damage passed their own CRC: their files are served.
            assert!(exact >= 20, "multi={multi}: {exact} files before the damage read back");
        }
    }
}

#[test]
fn zip_bytes_changed_under_the_mount_fail_with_eio_and_cached_members_stay_exact() {
    let a = bytes(40_000, 5, true);
    let b = bytes(40_000, 6, true);
    let big = bytes(9 << 20, 7, false);
    let entries = [entry("a.txt", a.clone()), entry("b.txt", b.clone()), entry("big.bin", big.clone())];
    for method in [ZipMethod::Stored, ZipMethod::Deflated] {
        let src = Faulty::new("z.zip", zip_bytes(&entries, method));
        let fs = core(&[("z.zip", src.source())]);
        assert!(read_all(&fs, "_archives/z.zip/a.txt", 4096).unwrap() == a, "{method:?}: a.txt before");
        // From now on one byte inside b.txt's stored data, and one inside big.bin's, read
        // inverted (for deflated members: inside their compressed data).
        let b_at = match method {
            ZipMethod::Stored => find(src.bytes(), &b[100..132]) + 7,
            ZipMethod::Deflated => {
                let start = find(src.bytes(), b"b.txt") + 5; // the local header's name
                start + 500
            }
        };
        src.flip_after(0, b_at);
        expect_eio(read_all(&fs, "_archives/z.zip/b.txt", 4096), &format!("{method:?}: b.txt flipped"));
        assert!(read_all(&fs, "_archives/z.zip/a.txt", 4096).unwrap() == a, "{method:?}: a.txt cached");
        let big_at = match method {
            ZipMethod::Stored => find(src.bytes(), &big[5_000_000..5_000_032]) + 3,
            ZipMethod::Deflated => find(src.bytes(), b"big.bin") + 7 + 4_000_000,
        };
        src.flip_after(0, big_at);
        expect_eio(read_all(&fs, "_archives/z.zip/big.bin", 128 << 10), &format!("{method:?}: big.bin flipped"));
    }
}

#[test]
fn short_reads_everywhere_still_list_and_read_every_byte_exactly() {
    let mut entries: Vec<Entry> =
        (0..40).map(|i| entry(&format!("d/{i:02}.bin"), bytes(3_000 + i * 911, 200 + i as u64, i % 3 == 0))).collect();
    // Bigger than the whole-member limit: positioned reads (stored) and the streaming pass
    // with seek points (deflated).
    entries.push(entry("big/vol.nii", bytes(9 << 20, 300, true)));
    let raw = [
        ("s.zip", zip_bytes(&entries, ZipMethod::Stored)),
        ("d.zip", zip_bytes(&entries, ZipMethod::Deflated)),
        ("p.tar", tar_bytes(&entries)),
        ("c.tar.gz", tar_gz_bytes(&entries)),
        ("m.tar.gz", multi_member_tar_gz(&entries, 1 << 20)),
    ];
    for max in [1, 7, 4093] {
        let faulty: Vec<(&str, Arc<Faulty>)> = raw.iter().map(|(n, b)| (*n, Faulty::new(n, b.clone()))).collect();
        // From the very first read: detection and listing see short reads too. One byte per
        // call is too slow for the big members' passes, so it covers listing only.
        for (_, f) in &faulty {
            f.short_reads(max);
        }
        let named: Vec<(&str, Arc<dyn ByteSource>)> = faulty.iter().map(|(n, f)| (*n, f.source())).collect();
        let fs = core(&named);
        if max == 1 {
            for (_, f) in &faulty {
                f.short_reads(0);
            }
        }
        for (name, f) in &faulty {
            let before = f.reads();
            for e in &entries {
                let path = format!("_archives/{name}/{}", e.path);
                let got = read_all(&fs, &path, 128 << 10).unwrap_or_else(|err| panic!("{max}: {path}: {err}"));
                assert!(got == e.data, "short reads of {max}: {path}: wrong bytes");
            }
            if max == 7 {
                assert!(f.reads() - before > 10_000, "{name}: short reads really happened ({})", f.reads() - before);
            }
        }
    }
}
