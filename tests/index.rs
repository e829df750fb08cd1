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
    raw[40] ^= 0xff; // inside the checksummed identity (the windows carry their own checksums)
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
fn seek_points_of_big_deflated_members_are_kept_in_one_companion_file_for_the_next_mount() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("vol.zip");
    let data = bytes(24 << 20, 77, true);
    let others: Vec<Vec<u8>> = (0..3).map(|i| bytes(9 << 20, 100 + i, true)).collect();
    let mut entries = vec![entry("sub-01/func/bold.nii", data.clone())];
    entries.extend(others.iter().enumerate().map(|(i, d)| entry(&format!("sub-0{}/anat/T1w.nii", i + 2), d.clone())));
    make_zip(&zip, &entries, ZipMethod::Deflated);
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
        for (i, d) in others.iter().enumerate() {
            let p = m.path(&format!("_archives/vol.zip/sub-0{}/anat/T1w.nii", i + 2));
            assert!(std::fs::read(p).unwrap() == *d);
        }
        probe(&m);
    }
    let names: Vec<_> =
        std::fs::read_dir(&idx).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    let companions: Vec<_> = names.iter().filter(|n| n.ends_with(".idx.points")).collect();
    assert_eq!(companions.len(), 1, "all members' seek points in one companion file: {names:?}");
    assert!(!names.iter().any(|n| n.contains(".idx.member")), "no side file per member: {names:?}");
    let size = std::fs::metadata(idx.join(companions[0])).unwrap().len();
    probe(&mount(&[&zip], &dir.path().join("m2"), &args));
    assert_eq!(std::fs::metadata(idx.join(companions[0])).unwrap().len(), size, "the next mount reuses, not re-adds");
    // A torn last record (a crash while appending) is ignored and cut off by the next append.
    let path = idx.join(companions[0]);
    let mut torn = std::fs::read(&path).unwrap();
    torn.truncate(torn.len() - 1000);
    std::fs::write(&path, &torn).unwrap();
    let m = mount(&[&zip], &dir.path().join("m3"), &args);
    probe(&m);
    assert!(std::fs::read(m.path("_archives/vol.zip/sub-04/anat/T1w.nii")).unwrap() == others[2]);
}

/// A tmpfs of `size` mounted on `dir` for one test (we run as root); unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(ok.success(), "mount -t tmpfs (the index fault tests need root)");
        Tmpfs(dir.to_path_buf())
    }

    /// Remounts read-only: even root cannot write there then.
    fn read_only(&self) {
        let ok = std::process::Command::new("mount").args(["-o", "remount,ro"]).arg(&self.0).status().unwrap();
        assert!(ok.success(), "remount read-only");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The lines of a mount's stderr that talk about the index.
fn index_warnings(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains("index")).collect()
}

#[test]
fn a_read_only_or_full_index_folder_still_mounts_with_exactly_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    let entries = entries();
    let tgz = dir.path().join("a.tar.gz");
    make_tar_gz(&tgz, &entries);
    let zip = dir.path().join("b.zip");
    make_zip(&zip, &entries[..3], ZipMethod::Deflated);
    let check = |m: &Mounted, what: &str| {
        let warnings = index_warnings(&m.stderr);
        assert_eq!(warnings.len(), 1, "{what}: exactly one warning about the index: {}", m.stderr);
        assert!(warnings[0].contains("a.tar.gz") && warnings[0].contains("index not saved"), "{what}: {warnings:?}");
        for e in entries.iter().step_by(7) {
            let got = std::fs::read(m.path(&format!("_archives/a.tar.gz/{}", e.path))).unwrap();
            assert!(got == e.data, "{what}: {}", e.path);
        }
    };

    // Read-only: nothing can be created there, not even by root.
    let ro = Tmpfs::mount(&dir.path().join("ro"), "1m");
    ro.read_only();
    let args = ["--index-dir", ro.0.to_str().unwrap()];
    let m = mount(&[&tgz], &dir.path().join("m1"), &args);
    check(&m, "read-only");
    drop(m);
    // Every archive fails the same way: still one warning, which says how many.
    let m = mount(&[&tgz, &zip], &dir.path().join("m1"), &args);
    check(&m, "read-only, two archives");
    assert!(m.stderr.contains("1 more archives"), "{}", m.stderr);
    drop(m);

    // Full: 16 KiB cannot hold the tar.gz's index (about 40 KiB with its seek points' windows).
    let full = Tmpfs::mount(&dir.path().join("full"), "16k");
    let args = ["--index-dir", full.0.to_str().unwrap()];
    let m = mount(&[&tgz], &dir.path().join("m2"), &args);
    check(&m, "full");
    // What fits stays (the small side file of the DICOM scan); no partial index is left behind.
    let left: Vec<String> =
        std::fs::read_dir(&full.0).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(!left.iter().any(|n| n.contains("tmp") || n.ends_with(".idx")), "partial files left behind: {left:?}");
    drop(m);
    // A small index still fits: the zip is saved, and the next mount reads it back silently.
    let m = mount(&[&zip], &dir.path().join("m3"), &args);
    assert!(index_warnings(&m.stderr).is_empty(), "{}", m.stderr);
    drop(m);
    let (out, stderr) = index(&[&zip], &full.0);
    assert!(out.contains("from its index"), "{out}");
    assert!(index_warnings(&stderr).is_empty(), "{stderr}");
}
