//! Errno of every `FsError` variant and of every core operation's failures, including OS
//! errors injected under the reads (kept as they are) and transient ones (not remembered).

use std::io;
use std::sync::Arc;

use medfs::archive::ByteSource;
use medfs::error::FsError;
use medfs::fs::{FileKind, MedFs, ROOT_INO};
use medfs::pool::Pool;
use medfs::reader::Reader;
use medfs::tree::{NodeKind, ROOT, TreeBuilder, TreeOptions};

use super::*;

#[test]
fn every_error_variant_has_its_errno_and_only_misses_are_expected() {
    let io_err = |error: io::Error| FsError::Io { context: "ctx".into(), error };
    let unreadable = FsError::Unreadable { archive: "a".into(), member: "m".into(), reason: "crc".into() };
    let table: Vec<(FsError, i32, bool)> = vec![
        (FsError::NotFound, libc::ENOENT, true),
        (FsError::NotADirectory, libc::ENOTDIR, true),
        (FsError::IsADirectory, libc::EISDIR, true),
        (FsError::NotASymlink, libc::EINVAL, true),
        (FsError::ReadOnly, libc::EROFS, true),
        (unreadable, libc::EIO, false),
        // Warned about once by the reader; later reads of the archive fail the same way.
        (FsError::ArchiveChanged { archive: "a".into() }, libc::EIO, true),
        (io_err(io::Error::from_raw_os_error(libc::EACCES)), libc::EACCES, false),
        (io_err(io::Error::from_raw_os_error(libc::EIO)), libc::EIO, false),
        (io_err(io::Error::from_raw_os_error(libc::ESTALE)), libc::ESTALE, false),
        // No OS errno behind it (corrupt data, a decoder's complaint): EIO, never 0.
        (io_err(io::Error::new(io::ErrorKind::InvalidData, "bad")), libc::EIO, false),
        (io_err(io::Error::new(io::ErrorKind::UnexpectedEof, "cut")), libc::EIO, false),
        // An OS error relayed as a kind only (a waiter on another reader's failed load).
        (io_err(io::Error::new(io::ErrorKind::PermissionDenied, "no raw errno")), libc::EACCES, false),
        (io_err(io::Error::new(io::ErrorKind::StaleNetworkFileHandle, "no raw errno")), libc::ESTALE, false),
        (io_err(io::Error::other("no raw errno")), libc::EIO, false),
    ];
    for (e, errno, expected) in table {
        assert_eq!(e.errno(), errno, "{e:?}");
        assert_eq!(e.is_expected(), expected, "{e:?}");
        assert!(!e.to_string().is_empty());
    }
}

/// A hand-built tree over one tar: a file, a folder, a symlink, a generated file. Built with
/// `from_parts`, so nothing but the tree decides what the core shows.
fn hand_built() -> (MedFs, Vec<u8>) {
    let data = bytes(10_000, 7, false);
    let tar = Faulty::new("a.tar", tar_bytes(&[entry("d/f.bin", data.clone())]));
    let pool = Pool::from_sources(vec![("a.tar".into(), tar.source())], 1 << 20, false).unwrap();
    let member = pool.archives[0].members.iter().position(|m| m.path == b"d/f.bin").unwrap() as u32;
    let mut b = TreeBuilder::new(1_600_000_000, TreeOptions::default());
    let dir = b.ensure_dir(ROOT, &[b"dir".to_vec()], 1_600_000_000, "test");
    b.put(dir, b"file", 1_600_000_001, NodeKind::File { archive: 0, member, size: 10_000 }, "test");
    b.put(dir, b"link", 1_600_000_002, NodeKind::Symlink { target: (*b"file").into() }, "test");
    b.add_generated(ROOT, b"gen.json", 1_600_000_003, (*b"{\"a\": 1}\n").into());
    (MedFs::from_parts(b.finish(), Reader::new(pool)), data)
}

#[test]
fn every_core_operation_fails_with_the_right_errno() {
    let (fs, data) = hand_built();
    let errno = |r: Result<(), FsError>| r.expect_err("must fail").errno();
    let dir = ino(&fs, "dir");
    let file = ino(&fs, "dir/file");
    let link = ino(&fs, "dir/link");
    let gen_file = ino(&fs, "gen.json");
    let beyond = fs.statfs().files + 1;
    let mut out = Vec::new();

    // lookup
    assert_eq!(fs.lookup(ROOT_INO, b"dir").unwrap().kind, FileKind::Dir);
    assert_eq!(errno(fs.lookup(ROOT_INO, b"nope").map(drop)), libc::ENOENT);
    assert_eq!(errno(fs.lookup(dir, b"").map(drop)), libc::ENOENT);
    assert_eq!(errno(fs.lookup(file, b"x").map(drop)), libc::ENOTDIR);
    assert_eq!(errno(fs.lookup(link, b"x").map(drop)), libc::ENOTDIR);
    assert_eq!(errno(fs.lookup(0, b"dir").map(drop)), libc::ENOENT);
    assert_eq!(errno(fs.lookup(beyond, b"dir").map(drop)), libc::ENOENT);
    // getattr
    for bad in [0, beyond, u64::MAX, u32::MAX as u64 + 2] {
        assert_eq!(errno(fs.getattr(bad).map(drop)), libc::ENOENT, "ino {bad}");
    }
    let a = fs.getattr(file).unwrap();
    assert_eq!((a.kind, a.size, a.perm, a.nlink, a.mtime), (FileKind::File, 10_000, 0o444, 1, 1_600_000_001));
    let d = fs.getattr(dir).unwrap();
    assert_eq!((d.kind, d.perm, d.nlink), (FileKind::Dir, 0o555, 2));
    assert_eq!(fs.getattr(ROOT_INO).unwrap().nlink, 3, "root holds one folder");
    let l = fs.getattr(link).unwrap();
    assert_eq!((l.kind, l.size, l.perm), (FileKind::Symlink, 4, 0o777));
    // readlink
    assert_eq!(fs.readlink(link).unwrap(), b"file");
    assert_eq!(errno(fs.readlink(file).map(drop)), libc::EINVAL);
    assert_eq!(errno(fs.readlink(dir).map(drop)), libc::EINVAL);
    assert_eq!(errno(fs.readlink(gen_file).map(drop)), libc::EINVAL);
    assert_eq!(errno(fs.readlink(beyond).map(drop)), libc::ENOENT);
    // read
    assert_eq!(errno(fs.read(dir, 0, 10, &mut out)), libc::EISDIR);
    assert_eq!(errno(fs.read(ROOT_INO, 0, 10, &mut out)), libc::EISDIR);
    assert_eq!(errno(fs.read(beyond, 0, 10, &mut out)), libc::ENOENT);
    assert!(fs.read(link, 0, 10, &mut out).is_err(), "a symlink has no bytes to read");
    fs.read(file, 9_990, 100, &mut out).unwrap();
    assert_eq!(out, data[9_990..], "a read across the end stops at the end");
    out.push(1);
    fs.read(file, 10_000, 100, &mut out).unwrap();
    assert!(out.is_empty(), "a read at the end is empty (and clears the buffer)");
    fs.read(file, u64::MAX, 100, &mut out).unwrap();
    assert!(out.is_empty());
    fs.read(gen_file, 2, 100, &mut out).unwrap();
    assert_eq!(out, b"a\": 1}\n");
    fs.read(gen_file, 1_000, 100, &mut out).unwrap();
    assert!(out.is_empty());
    // readdir
    assert_eq!(errno(fs.readdir(file, 0, |_| false)), libc::ENOTDIR);
    assert_eq!(errno(fs.readdir(link, 0, |_| false)), libc::ENOTDIR);
    assert_eq!(errno(fs.readdir(beyond, 0, |_| false)), libc::ENOENT);
    // walk / resolve
    assert_eq!(errno(fs.resolve(b"dir/nope").map(drop)), libc::ENOENT);
    assert_eq!(errno(fs.resolve(b"dir/file/deeper").map(drop)), libc::ENOENT);
    assert_eq!(errno(fs.walk(b"nope").map(drop)), libc::ENOENT);
    assert_eq!(fs.walk(b"dir").unwrap().len(), 3, "dir, file, link");
    // statfs counts every byte the tree shows (the file and the generated sidecar).
    assert_eq!(fs.statfs().bytes, 10_000 + 4 + 9);
}

fn archives() -> Vec<(&'static str, Arc<Faulty>, Vec<u8>)> {
    let data = bytes(300_000, 11, true);
    let entries = [entry("m/data.bin", data.clone())];
    vec![
        ("deflated.zip", Faulty::new("deflated.zip", zip_bytes(&entries, ZipMethod::Deflated)), data.clone()),
        ("stored.zip", Faulty::new("stored.zip", zip_bytes(&entries, ZipMethod::Stored)), data.clone()),
        ("plain.tar", Faulty::new("plain.tar", tar_bytes(&entries)), data.clone()),
        ("packed.tar.gz", Faulty::new("packed.tar.gz", tar_gz_bytes(&entries)), data),
    ]
}

#[test]
fn os_errors_under_the_reads_keep_their_errno_and_are_not_remembered() {
    for errno in [libc::EIO, libc::EACCES, libc::ESTALE] {
        let sources = archives();
        let named: Vec<(&str, Arc<dyn ByteSource>)> = sources.iter().map(|(n, f, _)| (*n, f.source())).collect();
        let fs = core(&named);
        for (name, src, data) in &sources {
            let path = format!("_archives/{name}/m/data.bin");
            src.fail(errno, u64::MAX);
            let e = read_all(&fs, &path, 128 << 10).expect_err("reads fail while the source fails");
            assert_eq!(e.errno(), errno, "{name}: {e}");
            assert!(!e.is_expected(), "{name}: a failing disk is worth a warning");
            // One more failure, then the source recovers: a transient error is not taken for
            // corrupt data, so the member reads correctly afterwards.
            src.fail(errno, 1);
            let e = read_all(&fs, &path, 128 << 10).expect_err("the first read fails");
            assert_eq!(e.errno(), errno, "{name}: {e}");
            let got = read_all(&fs, &path, 128 << 10).unwrap_or_else(|e| panic!("{name}: after recovery: {e}"));
            assert!(got == *data, "{name}: bytes after recovery");
        }
    }
}

#[test]
fn interrupted_reads_are_retried() {
    let sources = archives();
    let named: Vec<(&str, Arc<dyn ByteSource>)> = sources.iter().map(|(n, f, _)| (*n, f.source())).collect();
    let fs = core(&named);
    for (name, src, data) in &sources {
        src.interrupt(5);
        let got = read_all(&fs, &format!("_archives/{name}/m/data.bin"), 128 << 10)
            .unwrap_or_else(|e| panic!("{name}: EINTR must be retried, got {e}"));
        assert!(got == *data, "{name}");
    }
}

#[test]
fn a_source_that_fails_while_listing_is_refused_with_its_name() {
    let (_, src, _) = archives().remove(0);
    src.fail(libc::EIO, u64::MAX);
    let err = match Pool::from_sources(vec![("deflated.zip".into(), src.source())], 1 << 20, false) {
        Ok(_) => panic!("listing a source that fails every read must fail"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("deflated.zip"), "{err}");
}
