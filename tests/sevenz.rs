//! 7z archives through a real mount, written by the `7z` tool: a solid archive larger than the
//! cache read byte-exact in random order, AES with encrypted headers and `--password` /
//! `MEDFS_PASSWORD`, a wrong password refusing only that archive, encrypted data under clear
//! names listed but never served, and a solid folder decoded once into the disk cache whatever
//! the read order (decoder starts counted in the `-vv` log).

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// Packs `files` (name, bytes) into `dir/name` with `7z a` plus `flags`.
fn make_7z(dir: &Path, name: &str, files: &[(String, Vec<u8>)], flags: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let entries: Vec<Entry> = files.iter().map(|(n, d)| entry(n, d.clone())).collect();
    common::make_7z(&out, &entries, flags);
    out
}

fn files(n: usize, len: usize, seed: u64) -> Vec<(String, Vec<u8>)> {
    (0..n).map(|i| (format!("d{}/f{i:02}.bin", i % 3), bytes(len + i * 4099, seed + i as u64, i % 2 == 0))).collect()
}

/// A shuffled order of `0..n` (xorshift, fixed seed).
fn shuffled(n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

#[test]
fn solid_7z_larger_than_the_cache_reads_byte_exact_in_any_order() {
    let dir = tempfile::tempdir().unwrap();
    // 20 members of about 2 MiB, half noise, half text: 40+ MiB in one solid block.
    let files = files(20, 2 << 20, 7);
    let archive = make_7z(dir.path(), "solid.7z", &files, &["-mx1", "-ms=on"]);
    let m = mount(&[&archive], &dir.path().join("mnt"), &["--cache-size", "16M", "--no-index"]);
    let root = m.path("_archives/solid.7z");
    let mut listed = walk(&root);
    listed.retain(|p| !p.ends_with('/'));
    let mut names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    names.sort();
    assert_eq!(listed, names);
    // The folder does not fit the cache: a read behind its cursor comes from the disk cache.
    for i in shuffled(files.len()) {
        let (name, data) = &files[i];
        let got = std::fs::read(root.join(name)).unwrap();
        assert!(got == *data, "{name} differs ({} bytes read, {} expected)", got.len(), data.len());
    }
    // Partial reads in the middle of members, out of order.
    use std::os::unix::fs::FileExt;
    for i in shuffled(files.len()).into_iter().take(8) {
        let (name, data) = &files[i];
        let f = std::fs::File::open(root.join(name)).unwrap();
        let at = data.len() / 3;
        let mut buf = vec![0u8; 100_000];
        f.read_exact_at(&mut buf, at as u64).unwrap();
        assert!(buf == data[at..at + buf.len()], "{name} at {at}");
    }
}

#[test]
fn aes_7z_with_encrypted_headers_opens_with_the_right_password_only() {
    let dir = tempfile::tempdir().unwrap();
    let pool = dir.path().join("pool");
    std::fs::create_dir(&pool).unwrap();
    let secret = files(3, 300_000, 11);
    make_7z(&pool, "secret.7z", &secret, &["-pS3cret pw", "-mhe=on"]);
    let plain = files(2, 1000, 21);
    make_7z(&pool, "plain.7z", &plain, &[]);

    // Right password second among several: every file byte-exact.
    let m = mount(&[&pool], &dir.path().join("m1"), &["--password", "nope", "--password", "S3cret pw"]);
    for (name, data) in &secret {
        assert!(std::fs::read(m.path(&format!("_archives/secret.7z/{name}"))).unwrap() == *data, "{name}");
    }
    drop(m);

    // From MEDFS_PASSWORD.
    let mnt = dir.path().join("m2");
    std::fs::create_dir(&mnt).unwrap();
    let mut cmd = medfs();
    cmd.env("MEDFS_PASSWORD", "S3cret pw").arg("mount").arg(&pool).arg(&mnt);
    cmd.arg("--log-file").arg(mnt.with_extension("log"));
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m = Mounted { mnt, stderr: String::new() };
    let (name, data) = &secret[1];
    assert!(std::fs::read(m.path(&format!("_archives/secret.7z/{name}"))).unwrap() == *data);
    drop(m);

    // Wrong password: one line naming the archive; the rest of the pool mounts.
    let m = mount(&[&pool], &dir.path().join("m3"), &["--password", "wrong"]);
    let line = m.stderr.lines().find(|l| l.contains("secret.7z")).unwrap_or_else(|| panic!("{}", m.stderr));
    assert!(line.contains("wrong password"), "{line}");
    assert!(!m.path("_archives/secret.7z").exists());
    let (name, data) = &plain[0];
    assert!(std::fs::read(m.path(&format!("_archives/plain.7z/{name}"))).unwrap() == *data);
    drop(m);

    // No password at all, the archive named on the command line: a clear refusal naming it.
    let mnt = dir.path().join("m4");
    std::fs::create_dir(&mnt).unwrap();
    let out = try_mount(&[&pool.join("secret.7z")], &mnt, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("secret.7z") && stderr.contains("no password"), "{stderr}");
}

#[test]
fn encrypted_data_under_clear_names_is_listed_but_never_served_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let secret = files(2, 5000, 31);
    let archive = make_7z(dir.path(), "names.7z", &secret, &["-pabc", "-mhe=off"]);
    let m = mount(&[&archive], &dir.path().join("m"), &[]);
    let (name, data) = &secret[0];
    let p = m.path(&format!("_archives/names.7z/{name}"));
    assert_eq!(std::fs::metadata(&p).unwrap().len(), data.len() as u64);
    let err = std::fs::read(&p).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    drop(m);
    let m = mount(&[&archive], &dir.path().join("m2"), &["--password", "abc"]);
    assert!(std::fs::read(m.path(&format!("_archives/names.7z/{name}"))).unwrap() == *data);
}

#[test]
fn a_remount_from_the_index_reads_no_byte_of_the_7z() {
    let dir = tempfile::tempdir().unwrap();
    let secret = files(4, 70_000, 41);
    let archive = make_7z(dir.path(), "idx.7z", &secret, &["-pidx", "-mhe=on", "-ms=on"]);
    let idx = dir.path().join("idx");
    let index = |extra: &[&str]| {
        let out = medfs().arg("index").args(extra).arg(&archive).arg("--index-dir").arg(&idx).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = index(&["--password", "idx"]);
    assert!(first.contains("idx.7z: 7 members, listed and indexed"), "{first}");
    let second = index(&["--password", "idx"]);
    assert!(second.contains("idx.7z: 7 members, from its index"), "{second}");
    assert!(second.contains("read 0 "), "{second}");
    // Served from the index: the bytes are right.
    let m = mount(&[&archive], &dir.path().join("m"), &["--password", "idx", "--index-dir", idx.to_str().unwrap()]);
    for (name, data) in &secret {
        assert!(std::fs::read(m.path(&format!("_archives/idx.7z/{name}"))).unwrap() == *data, "{name}");
    }
}

#[test]
fn multi_volume_parts_in_a_folder_join_into_one_7z() {
    let dir = tempfile::tempdir().unwrap();
    let pool = dir.path().join("pool");
    std::fs::create_dir(&pool).unwrap();
    let files = files(3, 200_000, 51);
    make_7z(&pool, "vol.7z", &files, &["-v150k", "-ms=on"]);
    assert!(pool.join("vol.7z.003").exists(), "7z wrote several volumes");
    let m = mount(&[&pool], &dir.path().join("m"), &[]);
    for (name, data) in &files {
        assert!(std::fs::read(m.path(&format!("_archives/vol.7z/{name}"))).unwrap() == *data, "{name}");
    }
}

#[test]
fn a_corrupt_byte_in_packed_data_fails_the_read_and_is_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let files = files(4, 300_000, 61);
    let archive = make_7z(dir.path(), "bad.7z", &files, &["-ms=on", "-mx5"]);
    let mut bytes = std::fs::read(&archive).unwrap();
    // Inside the packed stream (which starts after the 32-byte signature header).
    let at = bytes.len() / 2;
    bytes[at] ^= 0x55;
    std::fs::write(&archive, &bytes).unwrap();
    let m = mount(&[&archive], &dir.path().join("m"), &[]);
    let mut failed = 0;
    for (name, data) in &files {
        match std::fs::read(m.path(&format!("_archives/bad.7z/{name}"))) {
            Ok(got) => assert!(got == *data, "{name}: wrong bytes served"),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EIO), "{name}: {e}");
                failed += 1;
            }
        }
    }
    assert!(failed > 0, "the damage went unnoticed");
}

#[test]
fn a_solid_7z_larger_than_the_cache_is_decoded_once_into_the_disk_cache() {
    let dir = tempfile::tempdir().unwrap();
    let files = files(12, 2 << 20, 11);
    let total: usize = files.iter().map(|(_, d)| d.len()).sum();
    let archive = make_7z(dir.path(), "solid.7z", &files, &["-mx1", "-ms=on"]);
    let cache_dir = dir.path().join("blocks");
    let opts = ["--cache-size", "16M", "--disk-cache-dir", cache_dir.to_str().unwrap()];
    let read_all = |root: &Path| {
        for i in shuffled(files.len()) {
            let (name, data) = &files[i];
            assert!(std::fs::read(root.join(name)).unwrap() == *data, "{name} differs");
        }
    };
    let first = {
        let m = mount(&[&archive], &dir.path().join("mnt1"), &[&opts[..], &["-vv"]].concat());
        read_all(&m.path("_archives/solid.7z"));
        disk_blocks(&cache_dir)
    };
    // Every 1 MiB block of the one solid folder was stored as it was decoded.
    assert_eq!(first.len(), total.div_ceil(1 << 20), "blocks on disk after the first pass");
    // And the folder was decoded once: its cursor (a 256 KiB dictionary at -mx1) stayed in the
    // 16 MiB budget while the reads jumped back and forth, the blocks it passed went to the disk.
    let log = std::fs::read_to_string(dir.path().join("mnt1.log")).unwrap();
    let starts = log.lines().filter(|l| l.contains("decoding from its start")).count();
    assert_eq!(starts, 1, "decoders started for the one folder:\n{log}");
    std::thread::sleep(std::time::Duration::from_millis(20));
    // A second daemon reads the whole archive from the disk cache: no block is written again,
    // and the blocks it read are touched (LRU).
    let m = mount(&[&archive], &dir.path().join("mnt2"), &opts);
    read_all(&m.path("_archives/solid.7z"));
    let second = disk_blocks(&cache_dir);
    assert_eq!(second.iter().map(|(p, _)| p).collect::<Vec<_>>(), first.iter().map(|(p, _)| p).collect::<Vec<_>>());
    let touched = first.iter().zip(&second).filter(|((_, a), (_, b))| b > a).count();
    assert!(touched * 2 > first.len(), "{touched} of {} blocks were read from the disk cache", first.len());
}

#[test]
fn reads_behind_a_solid_folders_cursor_do_not_make_it_decode_the_folder_again() {
    let dir = tempfile::tempdir().unwrap();
    // One folder, names in the order 7z packs them: f00 first, f11 last.
    let files: Vec<(String, Vec<u8>)> =
        files(12, 2 << 20, 13).into_iter().enumerate().map(|(i, (_, d))| (format!("f{i:02}.bin"), d)).collect();
    let archive = make_7z(dir.path(), "solid.7z", &files, &["-mx1", "-ms=on"]);
    let cache_dir = dir.path().join("blocks");
    let opts = ["-vv", "--cache-size", "16M", "--disk-cache-dir", cache_dir.to_str().unwrap()];
    {
        let m = mount(&[&archive], &dir.path().join("mnt"), &opts);
        let root = m.path("_archives/solid.7z");
        // Most of the folder is decoded (the blocks passed go to the disk), then 14 MiB are read
        // behind the cursor from the disk cache, more blocks than the 16 MiB budget holds beside
        // the cursor; then a read ahead of it must continue it, not start the folder again.
        for i in [9, 0, 1, 2, 3, 4, 5, 6, 11] {
            let (name, data) = &files[i];
            assert!(std::fs::read(root.join(name)).unwrap() == *data, "{name} differs");
        }
    }
    let log = std::fs::read_to_string(dir.path().join("mnt.log")).unwrap();
    let starts = log.lines().filter(|l| l.contains("decoding from its start")).count();
    assert_eq!(starts, 1, "decoders started for the one folder:\n{log}");
}
