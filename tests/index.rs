//! The persistent index: a remount lists nothing again, and a changed, replaced or corrupt
//! index is never trusted.

mod common;

use std::path::Path;

use common::*;

fn index(sources: &[&Path], idx: &Path) -> (String, String) {
    let out = medfs().arg("index").args(sources).arg("--index-dir").arg(idx).output().unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "medfs index failed: {stderr}");
    (stdout, stderr)
}

/// The number of archive bytes `medfs index` reports it read for `name`.
fn bytes_read(stdout: &str, name: &str) -> u64 {
    let line = stdout.lines().find(|l| l.contains(name)).unwrap_or_else(|| panic!("{name} in {stdout}"));
    line.split("read ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap()
}

fn entries() -> Vec<Entry> {
    (0..120).map(|i| entry(&format!("images/{i:05}_000.png"), bytes(40_000 + i * 300, i as u64, i % 3 == 0))).collect()
}

#[test]
fn a_second_listing_reads_no_archive_bytes_and_changes_invalidate_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let (tgz, zip, idx) = (dir.path().join("a.tar.gz"), dir.path().join("b.zip"), dir.path().join("idx"));
    make_tar_gz(&tgz, &entries());
    make_zip(&zip, &entries(), ZipMethod::Deflated);

    let (first, _) = index(&[&tgz, &zip], &idx);
    assert!(first.contains("a.tar.gz: 120 members, listed and indexed"), "{first}");
    assert!(
        bytes_read(&first, "a.tar.gz") >= std::fs::metadata(&tgz).unwrap().len(),
        "the first pass reads the whole tar.gz"
    );
    let (second, _) = index(&[&tgz, &zip], &idx);
    assert!(second.contains("a.tar.gz: 120 members, from its index"), "{second}");
    assert_eq!(bytes_read(&second, "a.tar.gz"), 0, "{second}");
    assert_eq!(bytes_read(&second, "b.zip"), 0, "{second}");

    // Replacing the archive (new inode, other content) invalidates its index.
    let replacement = dir.path().join("new.tar.gz");
    make_tar_gz(&replacement, &entries()[..50]);
    std::fs::rename(&replacement, &tgz).unwrap();
    let (third, stderr) = index(&[&tgz], &idx);
    assert!(third.contains("a.tar.gz: 50 members, listed and indexed"), "{third}");
    assert!(stderr.contains("index rebuilt") && stderr.contains("changed"), "{stderr}");

    // A corrupt index file is rebuilt with a warning, never trusted.
    let file = std::fs::read_dir(&idx)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.to_string_lossy();
            name.contains("a.tar.gz") && name.ends_with(".idx")
        })
        .unwrap();
    let mut raw = std::fs::read(&file).unwrap();
    raw[40] ^= 0xff; // inside the main section (the windows carry their own checksums)
    std::fs::write(&file, &raw).unwrap();
    let (fourth, stderr) = index(&[&tgz], &idx);
    assert!(fourth.contains("listed and indexed"), "{fourth}");
    assert!(stderr.contains("checksum mismatch"), "{stderr}");
    let (fifth, _) = index(&[&tgz], &idx);
    assert!(fifth.contains("from its index"), "{fifth}");
}

#[test]
fn an_unwritable_index_folder_degrades_to_memory_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let tgz = dir.path().join("a.tar.gz");
    make_tar_gz(&tgz, &entries()[..5]);
    // A file where the folder should be: creating the index folder fails even for root.
    let blocked = dir.path().join("not-a-dir");
    std::fs::write(&blocked, b"").unwrap();
    let (out, stderr) = index(&[&tgz], &blocked.join("idx"));
    assert!(out.contains("5 members"), "{out}");
    assert!(stderr.contains("index not saved"), "{stderr}");
}

#[test]
fn a_remount_from_the_index_serves_exact_bytes_at_random_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let tgz = dir.path().join("a.tar.gz");
    let entries = entries();
    make_tar_gz(&tgz, &entries);
    let idx = dir.path().join("idx");
    let mnt = dir.path().join("mnt");
    let args = ["--index-dir", idx.to_str().unwrap()];
    drop(mount(&[&tgz], &mnt, &args));
    let m = mount(&[&tgz], &mnt, &args);
    let root = m.path("_archives/a.tar.gz");
    // Backwards through the archive, so every read lands on a seek point other than the last.
    for e in entries.iter().rev() {
        assert!(std::fs::read(root.join(&e.path)).unwrap() == e.data, "{}", e.path);
    }
}

#[test]
fn seek_points_of_a_big_deflated_member_are_kept_for_the_next_mount() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("vol.zip");
    let data = bytes(24 << 20, 77, true);
    make_zip(&zip, &[entry("sub-01/func/bold.nii", data.clone())], ZipMethod::Deflated);
    let idx = dir.path().join("idx");
    let args = ["--index-dir", idx.to_str().unwrap()];
    let probe = |m: &Mounted| {
        let f = std::fs::File::open(m.path("_archives/vol.zip/sub-01/func/bold.nii")).unwrap();
        for off in [20 << 20, 1 << 20, 17 << 20, 5_000_000] {
            let mut buf = vec![0u8; 4096];
            std::os::unix::fs::FileExt::read_exact_at(&f, &mut buf, off as u64).unwrap();
            assert!(buf == data[off..off + 4096], "offset {off}");
        }
    };
    {
        let m = mount(&[&zip], &dir.path().join("m1"), &args);
        // A whole read is the first pass: it records the member's seek points.
        assert!(std::fs::read(m.path("_archives/vol.zip/sub-01/func/bold.nii")).unwrap() == data);
        probe(&m);
    }
    let saved: Vec<_> = std::fs::read_dir(&idx)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".idx.member0"))
        .collect();
    assert_eq!(saved.len(), 1, "the member's seek points are saved beside the index");
    probe(&mount(&[&zip], &dir.path().join("m2"), &args));
}
