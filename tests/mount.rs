//! Real mounts through the kernel: generated zip, tar and tar.gz archives read back byte for
//! byte (whole, at random offsets, from 8 threads), the tree complete, and every error path.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::*;

/// The archive contents every format is checked with: nested folders, unicode and very long
/// names, empty files, a member bigger than the cache, hundreds of small members.
fn rich_entries() -> Vec<Entry> {
    let long_component = "l".repeat(200);
    let mut v = vec![
        entry("top/", vec![]),
        entry("top/nested/deeper/file.bin", bytes(70_000, 1, false)),
        entry("top/Ωmega/naïve ü.txt", bytes(5_000, 2, true)),
        entry("top/日本語/画像 1.png", bytes(33_000, 3, false)),
        entry(&format!("top/long/{long_component}/{long_component}/{long_component}.dat"), bytes(1_234, 4, true)),
        entry("top/empty.txt", vec![]),
        entry("top/empty_dir/", vec![]),
        entry("big/volume.nii", bytes(12 << 20, 5, true)),
    ];
    for i in 0..300 {
        v.push(entry(
            &format!("many/p{:03}/img{i}.png", i % 17),
            bytes(100 + (i * 37) % 3000, 100 + i as u64, i % 2 == 0),
        ));
    }
    v
}

/// Paths the raw view must show for these entries (implicit parents included).
fn expected_paths(prefix: &str, entries: &[Entry]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    out.insert(format!("{prefix}/"));
    for e in entries {
        let p = e.path.trim_end_matches('/');
        let parts: Vec<&str> = p.split('/').collect();
        for i in 1..parts.len() {
            out.insert(format!("{prefix}/{}/", parts[..i].join("/")));
        }
        out.insert(if e.path.ends_with('/') { format!("{prefix}/{p}/") } else { format!("{prefix}/{p}") });
    }
    out
}

fn check_all_bytes(root: &Path, entries: &[Entry]) {
    for e in entries.iter().filter(|e| !e.path.ends_with('/')) {
        let got = std::fs::read(root.join(&e.path)).unwrap_or_else(|err| panic!("{}: {err}", e.path));
        assert!(got == e.data, "{}: bytes differ ({} vs {} bytes)", e.path, got.len(), e.data.len());
    }
}

fn check_random_offsets(root: &Path, entries: &[Entry], seed: u64) {
    let mut x = seed;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for e in entries.iter().filter(|e| e.data.len() > 4096) {
        let f = std::fs::File::open(root.join(&e.path)).unwrap();
        for _ in 0..20 {
            let off = (next() % e.data.len() as u64) as usize;
            let len = 1 + (next() % 200_000) as usize;
            let mut buf = vec![0u8; len];
            let n = f.read_at(&mut buf, off as u64).unwrap();
            let want = &e.data[off..(off + len).min(e.data.len())];
            assert_eq!(&buf[..n], want, "{} at {off}+{len}", e.path);
        }
    }
}

fn check_parallel(root: &Path, entries: &[Entry]) {
    let entries = Arc::new(entries.iter().filter(|e| !e.path.ends_with('/')).cloned().collect::<Vec<_>>());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (entries, root) = (entries.clone(), root.to_path_buf());
            std::thread::spawn(move || {
                // Each thread walks the members in its own order, so reads of different and of
                // the same members overlap.
                for i in 0..entries.len() {
                    let e = &entries[(i * 7 + t * 13) % entries.len()];
                    let got = std::fs::read(root.join(&e.path)).unwrap();
                    assert!(got == e.data, "thread {t}: {} differs", e.path);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn every_member_of_zip_tar_and_tar_gz_is_byte_identical_through_the_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let entries = rich_entries();
    let archives = [("stored.zip", 0), ("deflated.zip", 1), ("plain.tar", 2), ("compressed.tar.gz", 3)];
    let mut paths = Vec::new();
    for (name, kind) in archives {
        let p = dir.path().join(name);
        match kind {
            0 => make_zip(&p, &entries, ZipMethod::Stored),
            1 => make_zip(&p, &entries, ZipMethod::Deflated),
            2 => make_tar(&p, &entries),
            _ => make_tar_gz(&p, &entries),
        }
        paths.push(p);
    }
    let sources: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    // A 4 MiB cache is smaller than the 12 MiB member: big members must stream.
    let m = mount(&sources, &dir.path().join("mnt"), &["--cache-size", "4M"]);

    let mut expected = BTreeSet::new();
    expected.insert("_archives/".to_string());
    for (name, _) in archives {
        expected.extend(expected_paths(&format!("_archives/{name}"), &entries));
    }
    let got: BTreeSet<String> = walk(&m.mnt).into_iter().collect();
    let missing: Vec<_> = expected.difference(&got).collect();
    let extra: Vec<_> = got.difference(&expected).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing {missing:?}\nextra {extra:?}");

    for (name, _) in archives {
        let root = m.path(&format!("_archives/{name}"));
        check_all_bytes(&root, &entries);
        check_random_offsets(&root, &entries, 0x1234_5678 ^ name.len() as u64);
        check_parallel(&root, &entries);
    }
}

#[test]
fn attributes_are_read_only_exact_and_stable_across_remounts() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("a.zip");
    let tgz = dir.path().join("b.tar.gz");
    let entries = vec![entry("d/x.bin", bytes(1000, 9, false)), entry("d/y.txt", bytes(10, 8, true))];
    make_zip(&zip, &entries, ZipMethod::Deflated);
    make_tar_gz(&tgz, &entries);
    let mnt = dir.path().join("mnt");
    let inodes = |m: &Mounted| -> Vec<(String, u64)> {
        walk(&m.mnt).into_iter().map(|p| (p.clone(), std::fs::metadata(m.path(&p)).unwrap().ino())).collect()
    };
    let first = {
        let m = mount(&[&zip, &tgz], &mnt, &[]);
        let f = std::fs::metadata(m.path("_archives/a.zip/d/x.bin")).unwrap();
        assert_eq!(f.len(), 1000);
        assert_eq!(f.permissions().mode() & 0o777, 0o444);
        let d = std::fs::metadata(m.path("_archives/a.zip/d")).unwrap();
        assert_eq!(d.permissions().mode() & 0o777, 0o555);
        // 2020-05-17 10:30:00 as written by the zip writer (DOS time, read as UTC).
        assert_eq!(f.mtime(), 1_589_711_400);
        assert_eq!(std::fs::metadata(m.path("_archives/b.tar.gz/d/y.txt")).unwrap().mtime(), 1_600_000_000);
        // SAFETY: statvfs on a valid path with a zeroed out-struct.
        let st = unsafe {
            let mut st: libc::statvfs = std::mem::zeroed();
            let c = std::ffi::CString::new(m.mnt.to_str().unwrap()).unwrap();
            assert_eq!(libc::statvfs(c.as_ptr(), &mut st), 0);
            st
        };
        assert!(st.f_files >= 7, "statfs counts the inodes");
        inodes(&m)
    };
    let m = mount(&[&zip, &tgz], &mnt, &[]);
    assert_eq!(inodes(&m), first, "same sources, same inode numbers");
}

#[test]
fn writes_of_every_kind_fail_with_erofs_and_misses_with_enoent() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("a.zip");
    make_zip(&zip, &[entry("f.txt", b"hello".to_vec())], ZipMethod::Stored);
    let m = mount(&[&zip], &dir.path().join("mnt"), &[]);
    let f = m.path("_archives/a.zip/f.txt");
    let erofs = |r: std::io::Result<()>, what: &str| {
        let e = r.expect_err(what);
        assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{what}: {e}");
    };
    erofs(std::fs::OpenOptions::new().write(true).open(&f).map(|_| ()), "open for write");
    erofs(std::fs::write(m.path("_archives/a.zip/new.txt"), b"x"), "create");
    erofs(std::fs::create_dir(m.path("_archives/a.zip/newdir")), "mkdir");
    erofs(std::fs::remove_file(&f), "unlink");
    erofs(std::fs::rename(&f, m.path("_archives/a.zip/g.txt")), "rename");
    erofs(std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o777)), "chmod");
    erofs(std::fs::OpenOptions::new().write(true).truncate(true).open(&f).map(|_| ()), "truncate");
    assert_eq!(std::fs::read(&f).unwrap(), b"hello", "nothing changed");
    let e = std::fs::metadata(m.path("_archives/a.zip/nope")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
}

/// Offset of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).position(|w| w == needle).expect("needle present")
}

#[test]
fn a_corrupt_member_fails_with_eio_and_the_rest_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    let good = bytes(50_000, 21, false);
    let bad = bytes(50_000, 22, false);
    let big_bad = bytes(20 << 20, 23, false);
    // Stored: the flipped byte is only caught by the CRC check.
    let stored = dir.path().join("stored.zip");
    make_zip(
        &stored,
        &[entry("good.bin", good.clone()), entry("bad.bin", bad.clone()), entry("big_bad.bin", big_bad.clone())],
        ZipMethod::Stored,
    );
    let mut raw = std::fs::read(&stored).unwrap();
    let at = find(&raw, &bad[1000..1032]);
    raw[at + 5] ^= 0xff;
    let at = find(&raw, &big_bad[15_000_000..15_000_032]);
    raw[at + 7] ^= 0x01;
    std::fs::write(&stored, &raw).unwrap();
    // Deflated: garbage in the middle of the compressed stream.
    let deflated = dir.path().join("deflated.zip");
    make_zip(
        &deflated,
        &[entry("good.txt", bytes(80_000, 24, true)), entry("bad.txt", bytes(80_000, 25, true))],
        ZipMethod::Deflated,
    );
    let data_start = {
        let mut z = zip::ZipArchive::new(std::fs::File::open(&deflated).unwrap()).unwrap();
        let f = z.by_name("bad.txt").unwrap();
        (f.data_start().expect("known once the member is opened"), f.compressed_size())
    };
    let mut raw = std::fs::read(&deflated).unwrap();
    let mid = (data_start.0 + data_start.1 / 2) as usize;
    for b in &mut raw[mid..mid + 64] {
        *b = !*b;
    }
    std::fs::write(&deflated, &raw).unwrap();

    let m = mount(&[&stored, &deflated], &dir.path().join("mnt"), &[]);
    let eio = |p: &str| match std::fs::read(m.path(p)) {
        Ok(data) => panic!("{p}: read {} bytes of a corrupt member instead of failing", data.len()),
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EIO), "{p}: {e}"),
    };
    // The big stored member is served by positioned reads: its early bytes are fine until a
    // pass finds it corrupt (read first: after that every read of it fails, and whether the
    // kernel still holds these pages in its cache is up to the kernel).
    let mut f = std::fs::File::open(m.path("_archives/stored.zip/big_bad.bin")).unwrap();
    let mut head = vec![0u8; 4096];
    f.seek(SeekFrom::Start(0)).unwrap();
    f.read_exact(&mut head).unwrap();
    assert_eq!(head, big_bad[..4096]);
    eio("_archives/stored.zip/bad.bin");
    // The read that completes a sequential pass fails.
    eio("_archives/stored.zip/big_bad.bin");
    eio("_archives/deflated.zip/bad.txt");
    assert_eq!(std::fs::read(m.path("_archives/stored.zip/good.bin")).unwrap(), good);
    assert_eq!(std::fs::read(m.path("_archives/deflated.zip/good.txt")).unwrap(), bytes(80_000, 24, true));
}

#[test]
fn mount_errors_are_one_line_name_the_cause_and_leave_nothing_mounted() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("a.zip");
    make_zip(&zip, &[entry("f", b"x".to_vec())], ZipMethod::Stored);
    let garbage = dir.path().join("garbage.zip");
    std::fs::write(&garbage, bytes(10_000, 1, false)).unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let fails_with = |sources: &[&Path], mnt: &Path, needle: &str| {
        let out = try_mount(sources, mnt, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "should fail: {err}");
        assert!(err.contains(needle), "error {err:?} should mention {needle:?}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
        assert!(!is_mounted(mnt), "nothing mounted");
    };
    fails_with(&[&dir.path().join("missing.zip")], &mnt, "missing.zip");
    fails_with(&[&garbage], &mnt, "garbage.zip: not a zip");
    fails_with(&[&zip], &dir.path().join("no-such-dir"), "does not exist");
    let full = dir.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("x"), b"").unwrap();
    fails_with(&[&zip], &full, "not empty");
    let _m = mount(&[&zip], &mnt, &[]);
    let out = try_mount(&[&zip], &mnt, &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already mounted"));
}

#[test]
fn a_truncated_download_mounts_what_is_complete_and_strict_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let entries: Vec<Entry> = (0..40).map(|i| entry(&format!("images/{i:04}.png"), bytes(60_000, i, false))).collect();
    let full = dir.path().join("full.tar.gz");
    make_tar_gz(&full, &entries);
    let raw = std::fs::read(&full).unwrap();
    let cut = dir.path().join("cut.tar.gz");
    std::fs::write(&cut, &raw[..raw.len() / 2]).unwrap();

    let out = try_mount(&[&cut], &dir.path().join("strict"), &["--strict"]);
    let _ = std::fs::create_dir(dir.path().join("strict"));
    let out = if out.status.success() { out } else { try_mount(&[&cut], &dir.path().join("strict"), &["--strict"]) };
    assert!(!out.status.success(), "--strict refuses a damaged archive");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cut.tar.gz"));

    let m = mount(&[&cut], &dir.path().join("mnt"), &[]);
    assert!(m.stderr.contains("cut.tar.gz") && m.stderr.contains("warning"), "warns: {}", m.stderr);
    let shown = std::fs::read_dir(m.path("_archives/cut.tar.gz/images")).unwrap().count();
    assert!(shown > 5 && shown < 40, "{shown} of 40 members listed");
    let mut readable = 0;
    for e in &entries {
        match std::fs::read(m.path(&format!("_archives/cut.tar.gz/{}", e.path))) {
            Ok(data) => {
                assert!(data == e.data, "{}: a member read from a damaged archive is exact", e.path);
                readable += 1;
            }
            Err(err) => {
                assert!(matches!(err.raw_os_error(), Some(libc::EIO) | Some(libc::ENOENT)), "{}: {err}", e.path)
            }
        }
    }
    assert!(readable >= 5, "complete members read back ({readable})");
}

/// How many mounts sit on `mnt` per /proc/self/mountinfo, without resolving the path (a dead
/// FUSE mountpoint cannot be stat'ed or canonicalized).
fn mounts_on(mnt: &Path) -> usize {
    let want = mnt.to_string_lossy().replace(' ', "\\040");
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines().filter(|l| l.split(' ').nth(4) == Some(want.as_str())).count()
}

/// Sends `sig` to the daemon of `mnt` and waits for it to exit.
fn signal_daemon(mnt: &Path, sig: i32) {
    let pid = daemon_pid(mnt).expect("daemon running");
    // SAFETY: sending a signal to a pid we just found.
    unsafe { libc::kill(pid, sig) };
    assert!(
        wait_for(Duration::from_secs(10), || !Path::new(&format!("/proc/{pid}")).exists() || daemon_pid(mnt).is_none()),
        "daemon exits after signal {sig}"
    );
}

#[test]
fn sigterm_sigint_and_sighup_unmount_cleanly_even_while_a_file_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("a.zip");
    make_zip(&zip, &[entry("f", b"x".to_vec())], ZipMethod::Stored);
    let mnt = dir.path().join("mnt");
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        let m = mount(&[&zip], &mnt, &[]);
        assert_eq!(mounts_on(&mnt), 1);
        signal_daemon(&mnt, sig);
        assert_eq!(mounts_on(&mnt), 0, "signal {sig}: the mountpoint is gone from mountinfo");
        assert!(std::fs::read_dir(&mnt).unwrap().next().is_none(), "signal {sig}: the empty folder is back");
        std::mem::forget(m);
    }
    // A busy mount (a file open in it) cannot be unmounted at once: it is detached, so no dead
    // mountpoint is left behind when the daemon exits.
    let m = mount(&[&zip], &mnt, &[]);
    let open = std::fs::File::open(m.path("_archives/a.zip/f")).unwrap();
    signal_daemon(&mnt, libc::SIGTERM);
    assert_eq!(mounts_on(&mnt), 0, "a busy mount is detached on SIGTERM");
    assert!(std::fs::metadata(&mnt).unwrap().is_dir(), "the mountpoint is usable again");
    drop(open);
    std::mem::forget(m);
    // And it mounts again right away.
    let m = mount(&[&zip], &mnt, &[]);
    assert_eq!(std::fs::read(m.path("_archives/a.zip/f")).unwrap(), b"x");
}

#[test]
fn a_killed_daemon_is_cleaned_up_by_the_next_mount_and_by_unmount() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("a.zip");
    make_zip(&zip, &[entry("f", b"x".to_vec())], ZipMethod::Stored);
    let mnt = dir.path().join("mnt");
    let kill = |m: Mounted| {
        signal_daemon(&mnt, libc::SIGKILL);
        assert!(wait_for(Duration::from_secs(10), || {
            matches!(std::fs::metadata(&mnt), Err(e) if e.raw_os_error() == Some(libc::ENOTCONN))
        }));
        assert_eq!(mounts_on(&mnt), 1, "a dead mount stays in mountinfo");
        std::mem::forget(m);
    };

    // The next mount cleans the dead one up by itself, and does not stack on it.
    kill(mount(&[&zip], &mnt, &[]));
    let m = mount(&[&zip], &mnt, &[]);
    assert!(m.stderr.contains("cleaning up"), "says so: {}", m.stderr);
    assert_eq!(mounts_on(&mnt), 1, "the new mount replaced the dead one");
    assert_eq!(std::fs::read(m.path("_archives/a.zip/f")).unwrap(), b"x");
    drop(m);
    assert!(wait_for(Duration::from_secs(10), || daemon_pid(&mnt).is_none()), "daemon exits after unmount");
    assert_eq!(mounts_on(&mnt), 0);

    // `medfs unmount` cleans a dead one up too.
    kill(mount(&[&zip], &mnt, &[]));
    let out = medfs().arg("unmount").arg(&mnt).output().unwrap();
    assert!(out.status.success(), "unmount cleans a dead mount: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(mounts_on(&mnt), 0, "nothing left in mountinfo");
    assert!(std::fs::metadata(&mnt).unwrap().is_dir());
    let out = medfs().arg("unmount").arg(&mnt).output().unwrap();
    assert!(!out.status.success(), "a second unmount says it is not mounted");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not mounted"));
}

#[test]
fn a_folder_source_shows_its_archives_and_loose_files_and_skips_unreadable_ones() {
    let dir = tempfile::tempdir().unwrap();
    let dl = dir.path().join("Downloads");
    std::fs::create_dir_all(dl.join("sub")).unwrap();
    make_zip(&dl.join("sub/x.zip"), &[entry("a/1.png", bytes(3000, 1, false))], ZipMethod::Deflated);
    make_tar_gz(&dl.join("images_001.tar.gz"), &[entry("images/00000001_000.png", bytes(4000, 2, false))]);
    std::fs::write(dl.join("Data_Entry_2017.csv"), b"Image Index,Finding Labels\n").unwrap();
    std::fs::write(dl.join("broken.zip"), bytes(5000, 3, false)).unwrap();
    // A second source with a name the folder already has: both stay visible.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    make_zip(&other.join("images_001.tar.gz"), &[entry("z.txt", b"zip in disguise".to_vec())], ZipMethod::Stored);

    let m = mount(&[&dl, &other.join("images_001.tar.gz")], &dir.path().join("mnt"), &[]);
    assert!(m.stderr.contains("broken.zip"), "skipped file is named: {}", m.stderr);
    assert_eq!(std::fs::read(m.path("_archives/sub/x.zip/a/1.png")).unwrap(), bytes(3000, 1, false));
    assert_eq!(
        std::fs::read(m.path("_archives/images_001.tar.gz/images/00000001_000.png")).unwrap(),
        bytes(4000, 2, false)
    );
    assert_eq!(std::fs::read(m.path("_archives/Data_Entry_2017.csv")).unwrap(), b"Image Index,Finding Labels\n");
    assert_eq!(std::fs::read(m.path("_archives/images_001.tar.gz~2/z.txt")).unwrap(), b"zip in disguise");
    assert!(!m.path("_archives/broken.zip").exists());
}

#[test]
fn ls_and_cat_work_without_fuse() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("a.zip");
    make_zip(&zip, &[entry("d/f.txt", b"hello world".to_vec())], ZipMethod::Deflated);
    let out = medfs().arg("ls").arg(&zip).output().unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(listing.contains("_archives/a.zip/d/f.txt\t11"), "{listing}");
    let out = medfs().arg("cat").arg(&zip).arg("_archives/a.zip/d/f.txt").output().unwrap();
    assert_eq!(out.stdout, b"hello world");
    let out = medfs().arg("cat").arg(&zip).arg("_archives/a.zip/nope").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
}

#[test]
fn a_byte_split_zip_reads_as_one_archive_from_a_folder_or_from_its_parts() {
    let dir = tempfile::tempdir().unwrap();
    let entries: Vec<Entry> =
        (0..30).map(|i| entry(&format!("train/{i}_left.jpeg"), bytes(20_000 + i * 100, i as u64, false))).collect();
    let whole = dir.path().join("whole.zip");
    make_zip(&whole, &entries, ZipMethod::Deflated);
    let raw = std::fs::read(&whole).unwrap();
    let dl = dir.path().join("dl");
    std::fs::create_dir(&dl).unwrap();
    let mut parts = Vec::new();
    for (i, chunk) in raw.chunks(raw.len() / 3 + 1).enumerate() {
        let p = dl.join(format!("train.zip.{:03}", i + 1));
        std::fs::write(&p, chunk).unwrap();
        parts.push(p);
    }
    assert_eq!(parts.len(), 3);
    let check = |m: &Mounted| {
        for e in &entries {
            let got = std::fs::read(m.path(&format!("_archives/train.zip/{}", e.path))).unwrap();
            assert!(got == e.data, "{}", e.path);
        }
        assert!(!m.path("_archives/train.zip.001").exists(), "parts are not shown one by one");
    };
    check(&mount(&[&dl], &dir.path().join("m1"), &[]));
    let named: Vec<&Path> = parts.iter().map(|p| p.as_path()).collect();
    check(&mount(&named, &dir.path().join("m2"), &[]));
}

/// VmHWM (peak resident set) of a process, in MiB.
fn peak_rss_mib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() / 1024
}

#[test]
fn a_zip_bomb_streams_in_bounded_memory_and_a_lying_size_fails_with_eio() {
    let dir = tempfile::tempdir().unwrap();
    // 256 MiB of zeros deflate to ~250 KB: a 1000:1 member.
    let bomb = dir.path().join("bomb.zip");
    {
        let file = std::fs::File::create(&bomb).unwrap();
        let mut w = zip::ZipWriter::new(file);
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        w.start_file("zeros.raw", opts).unwrap();
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..256 {
            std::io::Write::write_all(&mut w, &chunk).unwrap();
        }
        w.finish().unwrap();
    }
    // A member whose central directory claims 3 GiB but whose data holds 5 bytes.
    let liar = dir.path().join("liar.zip");
    make_zip(&liar, &[entry("small.txt", b"hello".to_vec())], ZipMethod::Deflated);
    let mut raw = std::fs::read(&liar).unwrap();
    let cd = raw.windows(4).rposition(|w| w == [0x50, 0x4b, 0x01, 0x02]).unwrap();
    raw[cd + 24..cd + 28].copy_from_slice(&(3u32 << 30).to_le_bytes());
    std::fs::write(&liar, &raw).unwrap();

    let m = mount(&[&bomb, &liar], &dir.path().join("mnt"), &["--cache-size", "16M"]);
    let pid = daemon_pid(&m.mnt).expect("daemon");
    let mut f = std::fs::File::open(m.path("_archives/bomb.zip/zeros.raw")).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert!(buf[..n].iter().all(|&b| b == 0));
        total += n as u64;
    }
    assert_eq!(total, 256 << 20);
    let peak = peak_rss_mib(pid);
    assert!(peak < 200, "daemon peaked at {peak} MiB reading a 256 MiB member with a 16 MiB cache");

    assert_eq!(std::fs::metadata(m.path("_archives/liar.zip/small.txt")).unwrap().len(), 3 << 30);
    let mut f = std::fs::File::open(m.path("_archives/liar.zip/small.txt")).unwrap();
    let e = f.read(&mut buf).expect_err("a member shorter than its declared size");
    assert_eq!(e.raw_os_error(), Some(libc::EIO));
}

/// Resumes a stopped daemon when dropped, so a failing test never leaves a mount hanging.
struct Resume(i32);

impl Drop for Resume {
    fn drop(&mut self) {
        // SAFETY: signalling a pid this test stopped.
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

#[test]
fn a_reader_stuck_on_a_stalled_source_does_not_hold_up_the_others() {
    // The stalled source is a zip that lives on another medfs mount whose daemon is stopped
    // (SIGSTOP): reads of it hang in the kernel, as on a dead network disk.
    let dir = tempfile::tempdir().unwrap();
    let inner_big = bytes(6 << 20, 41, false);
    let inner = dir.path().join("inner.zip");
    make_zip(&inner, &[entry("head.txt", b"head".to_vec()), entry("big.bin", inner_big.clone())], ZipMethod::Stored);
    let outer = dir.path().join("outer.tar");
    std::fs::write(&outer, tar_bytes(&[entry("inner.zip", std::fs::read(&inner).unwrap())])).unwrap();
    let local_members: Vec<Entry> =
        (0..20).map(|i| entry(&format!("f{i}.bin"), bytes(300_000, 500 + i, false))).collect();
    let local = dir.path().join("local.zip");
    make_zip(&local, &local_members, ZipMethod::Deflated);

    // (A tar whose only member is a zip is a tar: it once was taken for a zip with 512 bytes of
    // prepended data, as the zip's end record ends the file.)
    // `--max-depth 0`: the zip is needed as a file here, not opened as a folder.
    let under = mount(&[&outer], &dir.path().join("under"), &["--max-depth", "0"]);
    let stalled = under.path("_archives/outer.tar/inner.zip");
    let m = mount(&[&stalled, &local], &dir.path().join("mnt"), &[]);
    assert_eq!(std::fs::read(m.path("_archives/inner.zip/head.txt")).unwrap(), b"head");

    let pid = daemon_pid(&under.mnt).expect("lower daemon");
    // SAFETY: stopping the lower daemon this test started; `Resume` continues it.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let resume = Resume(pid);
    let stuck_path = m.path("_archives/inner.zip/big.bin");
    let stuck = std::thread::spawn(move || {
        let f = std::fs::File::open(stuck_path).unwrap();
        let mut buf = vec![0u8; 65536];
        f.read_exact_at(&mut buf, 5 << 20).map(|()| buf)
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(!stuck.is_finished(), "the read of the stalled source is stuck, as intended");
    let started = std::time::Instant::now();
    for e in &local_members {
        assert!(std::fs::read(m.path(&format!("_archives/local.zip/{}", e.path))).unwrap() == e.data, "{}", e.path);
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "20 reads of another archive took {took:?} while one reader was stuck");
    assert!(!stuck.is_finished(), "still stuck while the others were served");
    drop(resume);
    let got = stuck.join().unwrap().expect("the stuck read completes once its source answers");
    assert!(got[..] == inner_big[5 << 20..(5 << 20) + 65536]);
    drop(m);
}

/// The pids whose parent is `parent`.
fn children_of(parent: u32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // Fields after the parenthesized command name: state, ppid, ...
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid == Some(parent) {
            out.push(pid);
        }
    }
    out
}

/// Kills the listed processes when dropped, so a failing test leaves none blocked on its FIFO.
struct KillOnDrop(Vec<i32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for &pid in &self.0 {
            // SAFETY: kill takes no pointers; a pid that already exited is at worst ESRCH.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

#[test]
fn a_stop_signal_while_the_pool_is_being_built_stops_medfs_and_mounts_nothing() {
    // The source is a FIFO nobody writes: opening it blocks, as a listing pass over a huge
    // archive would take minutes. Listing, scanning and organizing run on rayon's workers, which
    // must not be the thread a stop signal kills.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("slow.zip");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success(), "mkfifo");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    for (foreground, sig) in [(false, libc::SIGTERM), (true, libc::SIGINT), (false, libc::SIGHUP)] {
        let mut cmd = medfs();
        cmd.arg("mount");
        if foreground {
            cmd.arg("-f");
        }
        cmd.arg(&fifo).arg(&mnt).arg("--log-file").arg(dir.path().join("log"));
        cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut guard = KillOnDrop(vec![child.id() as i32]);
        // In the background the forked daemon builds; in the foreground the process itself.
        let mut builder = None;
        if foreground {
            builder = Some(child.id() as i32);
        } else {
            assert!(
                wait_for(Duration::from_secs(10), || {
                    builder = children_of(child.id()).first().copied();
                    builder.is_some()
                }),
                "the daemon is forked"
            );
            guard.0.push(builder.unwrap());
        }
        let builder = builder.unwrap();
        // Let it reach the blocking open (rayon's workers exist by then).
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(mounts_on(&mnt), 0);
        // SAFETY: kill takes no pointers.
        unsafe { libc::kill(builder, sig) };
        let mut status = None;
        assert!(
            wait_for(Duration::from_secs(10), || {
                status = child.try_wait().unwrap();
                status.is_some()
            }),
            "signal {sig} stops medfs before the mount exists (foreground: {foreground})"
        );
        assert!(!status.unwrap().success(), "signal {sig}: medfs reports that nothing was mounted");
        assert!(
            wait_for(Duration::from_secs(10), || !Path::new(&format!("/proc/{builder}")).exists()),
            "signal {sig}: the process that was building is gone"
        );
        assert_eq!(mounts_on(&mnt), 0, "signal {sig}: nothing is mounted");
        if !foreground {
            let mut err = String::new();
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            assert!(err.contains("exited before the mount was ready"), "the parent says why: {err}");
        }
    }
}
