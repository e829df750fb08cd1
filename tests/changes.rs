//! Archives that change under a real mount (rewritten in place, truncated, deleted, replaced,
//! loose files edited): the next read that reaches the daemon fails with EIO and one warning
//! naming the archive, never with bytes of the new content; a remount shows the new content.

mod common;

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

use common::*;

/// Reads `len` bytes at `at` of `path` through the kernel.
fn read_at(path: &Path, at: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, at)?;
    Ok(buf)
}

fn assert_eio(r: std::io::Result<Vec<u8>>, what: &str) {
    match r {
        Ok(_) => panic!("{what}: bytes served from a changed archive"),
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EIO), "{what}: {e}"),
    }
}

/// The warnings about `archive` changing in the mount's log.
fn change_warnings(mnt: &Path, archive: &Path) -> Vec<String> {
    let log = std::fs::read_to_string(mnt.with_extension("log")).unwrap_or_default();
    let name = archive.display().to_string();
    log.lines()
        .filter(|l| l.contains("changed since it was mounted") && l.contains(&name))
        .map(str::to_string)
        .collect()
}

/// A zip with a big stored member (read by positioned reads, never decoded whole) and small ones.
fn zip_fixture(dir: &Path) -> (std::path::PathBuf, Vec<u8>, Vec<u8>) {
    let big = bytes(9 << 20, 5, false);
    let small = bytes(70_000, 6, true);
    let zip = dir.join("scan.zip");
    make_zip(&zip, &[entry("big.dcm", big.clone()), entry("small.txt", small.clone())], ZipMethod::Stored);
    (zip, big, small)
}

/// Mounts the fixture, reads a little of it, applies `change`, and checks that reads of parts
/// not read before fail with EIO, with exactly one warning naming the archive.
fn refused_after(name: &str, change: impl FnOnce(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    let (zip, big, _) = zip_fixture(dir.path());
    let mnt = dir.path().join("mnt");
    let m = mount(&[&zip], &mnt, &[]);
    let root = m.path("_archives/scan.zip");
    assert!(read_at(&root.join("big.dcm"), 0, 4096).unwrap() == big[..4096]);
    change(&zip);
    assert_eio(read_at(&root.join("big.dcm"), 6 << 20, 4096), name);
    assert_eio(read_at(&root.join("small.txt"), 0, 1000), name);
    assert_eio(read_at(&root.join("big.dcm"), 8 << 20, 4096), name);
    let warnings = change_warnings(&mnt, &zip);
    assert_eq!(warnings.len(), 1, "{name}: one warning naming the archive: {warnings:?}");
}

#[test]
fn an_archive_rewritten_in_place_with_the_same_size_is_refused() {
    refused_after("rewritten", |zip| {
        let f = std::fs::OpenOptions::new().write(true).open(zip).unwrap();
        let len = f.metadata().unwrap().len();
        f.write_all_at(&vec![0xAB; 1 << 20], 5 << 20).unwrap();
        assert_eq!(f.metadata().unwrap().len(), len, "same size");
    });
}

#[test]
fn a_truncated_archive_is_refused() {
    refused_after("truncated", |zip| {
        std::fs::OpenOptions::new().write(true).open(zip).unwrap().set_len(1000).unwrap();
    });
}

#[test]
fn a_deleted_archive_is_refused() {
    refused_after("deleted", |zip| std::fs::remove_file(zip).unwrap());
}

#[test]
fn an_archive_replaced_by_another_file_is_refused_until_remounted() {
    let dir = tempfile::tempdir().unwrap();
    let (zip, big, _) = zip_fixture(dir.path());
    let mnt = dir.path().join("mnt");
    let m = mount(&[&zip], &mnt, &[]);
    let root = m.path("_archives/scan.zip");
    assert!(read_at(&root.join("big.dcm"), 0, 4096).unwrap() == big[..4096]);
    // Another zip of the same layout and size, renamed over the original (a new download).
    let new_big = bytes(9 << 20, 99, false);
    let tmp = dir.path().join("new.zip");
    make_zip(&tmp, &[entry("big.dcm", new_big.clone()), entry("small.txt", bytes(70_000, 7, true))], ZipMethod::Stored);
    assert_eq!(std::fs::metadata(&tmp).unwrap().len(), std::fs::metadata(&zip).unwrap().len());
    std::fs::rename(&tmp, &zip).unwrap();
    assert_eio(read_at(&root.join("big.dcm"), 4 << 20, 4096), "replaced");
    assert_eq!(change_warnings(&mnt, &zip).len(), 1);
    drop(m);
    // Unmount and mount again: the new content, whole and right.
    let m = mount(&[&zip], &mnt, &[]);
    assert!(std::fs::read(m.path("_archives/scan.zip/big.dcm")).unwrap() == new_big);
}

#[test]
fn a_rewritten_tar_gz_and_an_edited_loose_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("dl");
    std::fs::create_dir(&src).unwrap();
    let members: Vec<Entry> = (0..40).map(|i| entry(&format!("img/{i:02}.png"), bytes(200_000, i, false))).collect();
    let tgz = src.join("images.tar.gz");
    make_tar_gz(&tgz, &members);
    let csv = src.join("labels.csv");
    std::fs::write(&csv, b"path,label\nimg/00.png,1\n").unwrap();
    let notes = src.join("notes.txt");
    std::fs::write(&notes, b"scanner A, 2019").unwrap();
    let mnt = dir.path().join("mnt");
    let m = mount(&[&src], &mnt, &["--no-datasets"]);
    let root = m.path("_archives/images.tar.gz");
    assert!(std::fs::read(root.join("img/00.png")).unwrap() == members[0].data);
    assert_eq!(std::fs::read(m.path("_archives/labels.csv")).unwrap(), b"path,label\nimg/00.png,1\n");
    // Same-size rewrite of the tarball with other members' bytes.
    let other: Vec<Entry> =
        (0..40).map(|i| entry(&format!("img/{i:02}.png"), bytes(200_000, 1000 + i, false))).collect();
    let tmp = dir.path().join("other.tar.gz");
    make_tar_gz(&tmp, &other);
    let mut f = std::fs::OpenOptions::new().write(true).truncate(true).open(&tgz).unwrap();
    f.write_all(&std::fs::read(&tmp).unwrap()).unwrap();
    drop(f);
    assert_eio(read_at(&root.join("img/39.png"), 0, 4096), "tar.gz rewritten");
    assert_eq!(change_warnings(&mnt, &tgz).len(), 1);
    // A loose file edited after the mount (never read before, so nothing is in the kernel's
    // page cache): refused, not served with the listed size over new bytes.
    std::fs::write(&notes, b"scanner B, 2020").unwrap();
    assert_eio(read_at(&m.path("_archives/notes.txt"), 0, 15), "loose file edited");
    // A loose file edited in place (a label table fixed by hand) is refused, not served half new.
    std::fs::write(&csv, b"path,label\nimg/00.png,0\nimg/01.png,1\n").unwrap();
    let f = std::fs::File::open(m.path("_archives/labels.csv")).unwrap();
    let mut buf = vec![0u8; 10];
    // The kernel may still hold the old pages; a read that reaches the daemon must fail.
    let direct = f.read_at(&mut buf, 20);
    if let Err(e) = direct {
        assert_eq!(e.raw_os_error(), Some(libc::EIO));
    } else {
        assert_eq!(&buf[..4], &b"path,label\nimg/00.png,1\n"[20..24], "only old bytes, never new ones");
    }
}
