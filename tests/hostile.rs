//! Hostile and damaged archives through a real mount: escaping names and links, duplicate
//! members, lying and overlapping zip directories, bombs, very deep paths, a huge folder, every
//! format cut and bit-flipped at its structure boundaries, and a panicking request. Archives the
//! `zip`/`tar` crates refuse to write are written byte by byte here.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

// ---------------------------------------------------------------- helpers

/// Reads a whole file on another thread: a read that hangs fails the test instead of hanging it.
fn read_timeout(path: &Path) -> std::io::Result<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let p = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(std::fs::read(&p));
    });
    rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("{}: read hangs", path.display()))
}

/// Asserts a read failed with EIO.
fn assert_eio(r: std::io::Result<Vec<u8>>, what: &str) {
    match r {
        Ok(data) => panic!("{what}: read {} bytes instead of failing with EIO", data.len()),
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EIO), "{what}: {e}"),
    }
}

/// Resident and peak resident memory of a process, in MiB.
fn rss_mib(pid: i32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() / 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// A ustar header block (name up to 100 bytes, link name up to 100 bytes), checksummed.
fn tar_header(name: &[u8], typ: u8, size: u64, link: &[u8]) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"13000000000\0");
    h[156] = typ;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    tar_checksum(&mut h);
    h
}

fn tar_checksum(h: &mut [u8; 512]) {
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// A tar member: header, data, padding.
fn tar_member(name: &[u8], typ: u8, data: &[u8], link: &[u8]) -> Vec<u8> {
    let mut v = tar_header(name, typ, data.len() as u64, link).to_vec();
    v.extend_from_slice(data);
    v.resize(v.len().div_ceil(512) * 512, 0);
    v
}

/// A local file header.
fn zip_local(name: &[u8], method: u16, crc: u32, csize: u32, size: u32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    v.extend_from_slice(&20u16.to_le_bytes());
    v.extend_from_slice(&0u16.to_le_bytes()); // flags
    v.extend_from_slice(&method.to_le_bytes());
    v.extend_from_slice(&[0, 0, 0x21, 0]); // time, date (1980-01-01)
    v.extend_from_slice(&crc.to_le_bytes());
    v.extend_from_slice(&csize.to_le_bytes());
    v.extend_from_slice(&size.to_le_bytes());
    v.extend_from_slice(&(name.len() as u16).to_le_bytes());
    v.extend_from_slice(&0u16.to_le_bytes());
    v.extend_from_slice(name);
    v
}

/// A central-directory record (made by Unix, a regular file).
fn zip_cd(name: &[u8], method: u16, crc: u32, csize: u32, size: u32, offset: u32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    v.extend_from_slice(&(0x0300u16 | 20).to_le_bytes());
    v.extend_from_slice(&20u16.to_le_bytes());
    v.extend_from_slice(&0u16.to_le_bytes());
    v.extend_from_slice(&method.to_le_bytes());
    v.extend_from_slice(&[0, 0, 0x21, 0]);
    v.extend_from_slice(&crc.to_le_bytes());
    v.extend_from_slice(&csize.to_le_bytes());
    v.extend_from_slice(&size.to_le_bytes());
    v.extend_from_slice(&(name.len() as u16).to_le_bytes());
    v.extend_from_slice(&[0; 8]); // extra len, comment len, disk, internal attributes
    v.extend_from_slice(&((0o100644u32) << 16).to_le_bytes());
    v.extend_from_slice(&offset.to_le_bytes());
    v.extend_from_slice(name);
    v
}

/// The end record for `n` entries (zip64 records first when `n` does not fit 16 bits).
fn zip_end(n: u64, cd_start: u64, cd_len: u64) -> Vec<u8> {
    let mut v = Vec::new();
    if n > 0xFFFE {
        let at = cd_start + cd_len;
        v.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
        v.extend_from_slice(&44u64.to_le_bytes());
        v.extend_from_slice(&[45, 3, 45, 0]);
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(&n.to_le_bytes());
        v.extend_from_slice(&n.to_le_bytes());
        v.extend_from_slice(&cd_len.to_le_bytes());
        v.extend_from_slice(&cd_start.to_le_bytes());
        v.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&at.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
    }
    let n16 = n.min(0xFFFF) as u16;
    v.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    v.extend_from_slice(&[0; 4]);
    v.extend_from_slice(&n16.to_le_bytes());
    v.extend_from_slice(&n16.to_le_bytes());
    v.extend_from_slice(&(cd_len.min(0xFFFF_FFFF) as u32).to_le_bytes());
    v.extend_from_slice(&(cd_start.min(0xFFFF_FFFF) as u32).to_le_bytes());
    v.extend_from_slice(&0u16.to_le_bytes());
    v
}

/// A member for `raw_zip`: name, method, the stored (possibly compressed) bytes, CRC and size of
/// the uncompressed data.
struct Z {
    name: Vec<u8>,
    method: u16,
    stored: Vec<u8>,
    crc: u32,
    size: u32,
}

fn stored(name: &[u8], data: &[u8]) -> Z {
    Z { name: name.to_vec(), method: 0, stored: data.to_vec(), crc: crc32fast::hash(data), size: data.len() as u32 }
}

fn deflated(name: &[u8], data: &[u8]) -> Z {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    Z {
        name: name.to_vec(),
        method: 8,
        stored: e.finish().unwrap(),
        crc: crc32fast::hash(data),
        size: data.len() as u32,
    }
}

/// A zip of `members` with honest headers; returns the bytes and each member's header offset.
fn raw_zip(members: &[Z]) -> (Vec<u8>, Vec<u32>) {
    let mut out = Vec::new();
    let mut offsets = Vec::new();
    for m in members {
        offsets.push(out.len() as u32);
        out.extend(zip_local(&m.name, m.method, m.crc, m.stored.len() as u32, m.size));
        out.extend_from_slice(&m.stored);
    }
    let cd_start = out.len();
    for (m, &off) in members.iter().zip(&offsets) {
        out.extend(zip_cd(&m.name, m.method, m.crc, m.stored.len() as u32, m.size, off));
    }
    let cd_len = out.len() - cd_start;
    out.extend(zip_end(members.len() as u64, cd_start as u64, cd_len as u64));
    (out, offsets)
}

// ---------------------------------------------------------------- duplicates

#[test]
fn duplicate_member_paths_are_all_reachable_as_tilde_n_with_stable_inodes() {
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("dups.tar");
    let mut t = Vec::new();
    t.extend(tar_member(b"d/x.png", b'0', b"first", b""));
    t.extend(tar_member(b"d/x.png", b'0', b"second!", b""));
    t.extend(tar_member(b"./d/x.png", b'0', b"third!!!", b""));
    t.extend(tar_member(b"d/l", b'2', b"", b"x.png"));
    t.extend(tar_member(b"d/l", b'2', b"", b"x.png~2"));
    t.extend([0u8; 1024]);
    std::fs::write(&tar, &t).unwrap();
    // The zip crate refuses duplicate names: written by hand.
    let zip = dir.path().join("dups.zip");
    std::fs::write(&zip, raw_zip(&[stored(b"a.txt", b"one"), stored(b"a.txt", b"two"), stored(b"b.txt", b"b")]).0)
        .unwrap();

    let mnt = dir.path().join("mnt");
    let inodes = {
        let m = mount(&[&tar, &zip], &mnt, &[]);
        let read = |p: &str| std::fs::read(m.path(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert_eq!(read("_archives/dups.tar/d/x.png"), b"first");
        assert_eq!(read("_archives/dups.tar/d/x.png~2"), b"second!");
        assert_eq!(read("_archives/dups.tar/d/x.png~3"), b"third!!!");
        assert_eq!(std::fs::read_link(m.path("_archives/dups.tar/d/l~2")).unwrap(), Path::new("x.png~2"));
        assert_eq!(read("_archives/dups.tar/d/l~2"), b"second!", "the renamed link follows to the renamed file");
        assert_eq!(read("_archives/dups.zip/a.txt"), b"one");
        assert_eq!(read("_archives/dups.zip/a.txt~2"), b"two");
        assert_eq!(read("_archives/dups.zip/b.txt"), b"b");
        for (archive, shown) in [("dups.tar", "d/x.png~2"), ("dups.tar", "d/x.png~3"), ("dups.zip", "a.txt~2")] {
            let line = m.stderr.lines().find(|l| l.contains(archive) && l.contains(shown));
            assert!(line.is_some_and(|l| l.contains("more than once")), "one warning for {shown}: {}", m.stderr);
        }
        walk(&m.mnt)
            .into_iter()
            .map(|p| (p.clone(), std::fs::symlink_metadata(m.path(&p)).unwrap().ino()))
            .collect::<Vec<_>>()
    };
    let m = mount(&[&tar, &zip], &mnt, &[]);
    let again: Vec<_> =
        walk(&m.mnt).into_iter().map(|p| (p.clone(), std::fs::symlink_metadata(m.path(&p)).unwrap().ino())).collect();
    assert_eq!(again, inodes, "same archives, same inode numbers");
}

// ---------------------------------------------------------------- names and links

#[test]
fn escaping_drive_letter_backslash_and_nul_names_stay_inside_their_archive() {
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("names.tar");
    let mut t = Vec::new();
    t.extend(tar_member(b"../../evil.txt", b'0', b"evil", b""));
    t.extend(tar_member(b"/abs/root.txt", b'0', b"abs", b""));
    t.extend(tar_member(b"C:\\x\\drive.txt", b'0', b"drive", b""));
    t.extend(tar_member(b"a\\b\\back.txt", b'0', b"back", b""));
    t.extend(tar_member(b"sub/../../../../up.txt", b'0', b"up", b""));
    t.extend(tar_member(b"..", b'0', b"nameless", b""));
    t.extend([0u8; 1024]);
    std::fs::write(&tar, &t).unwrap();
    let zip = dir.path().join("names.zip");
    std::fs::write(
        &zip,
        raw_zip(&[
            stored(b"../../../zevil.txt", b"zevil"),
            stored(b"/zabs.txt", b"zabs"),
            stored(b"C:\\win\\z.txt", b"zwin"),
            stored(b"nul\0hidden.txt", b"znul"),
            stored(b"\0", b"only nul"),
        ])
        .0,
    )
    .unwrap();
    let m = mount(&[&tar, &zip], &dir.path().join("mnt"), &[]);
    let all = walk(&m.mnt);
    for p in &all {
        assert!(
            p == "_archives/" || p.starts_with("_archives/names.tar/") || p.starts_with("_archives/names.zip/"),
            "{p} is outside its archive"
        );
    }
    let expect = [
        ("_archives/names.tar/evil.txt", &b"evil"[..]),
        ("_archives/names.tar/abs/root.txt", b"abs"),
        ("_archives/names.tar/C:\\x\\drive.txt", b"drive"),
        ("_archives/names.tar/a\\b\\back.txt", b"back"),
        ("_archives/names.tar/up.txt", b"up"),
        ("_archives/names.zip/zevil.txt", b"zevil"),
        ("_archives/names.zip/zabs.txt", b"zabs"),
        ("_archives/names.zip/C:\\win\\z.txt", b"zwin"),
        // C readers stop a name at NUL; so does the tree.
        ("_archives/names.zip/nul", b"znul"),
    ];
    for (p, want) in expect {
        assert_eq!(read_timeout(&m.path(p)).unwrap_or_else(|e| panic!("{p}: {e}")), want, "{p}");
    }
    assert_eq!(all.iter().filter(|p| !p.ends_with('/')).count(), expect.len(), "{all:?}");
    assert!(m.stderr.contains("leaves the archive root"), "{}", m.stderr);
    assert!(m.stderr.contains("no usable name"), "nameless members are reported: {}", m.stderr);
}

#[test]
fn symlink_and_hardlink_chains_never_leave_the_archive_and_loops_fail_fast() {
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("links.tar");
    // Each `sub/up` hop lands on the archive root; the `..` after them then climb physically out
    // of the mount, although the target never goes below level 0 when counted lexically.
    let escape = format!("{}{}etc/passwd", "sub/up/".repeat(12), "../".repeat(20));
    let mut t = Vec::new();
    t.extend(tar_member(b"sub/", b'5', b"", b""));
    t.extend(tar_member(b"sub/f.txt", b'0', b"inside", b""));
    t.extend(tar_member(b"sub/up", b'2', b"", b".."));
    t.extend(tar_member(b"ok", b'2', b"", b"sub/f.txt"));
    t.extend(tar_member(b"via_up", b'2', b"", b"sub/up/sub/f.txt"));
    t.extend(tar_member(b"abs", b'2', b"", b"/etc/passwd"));
    t.extend(tar_member(b"loop1", b'2', b"", b"loop2"));
    t.extend(tar_member(b"loop2", b'2', b"", b"loop1"));
    t.extend(tar_member(b"self", b'2', b"", b"self"));
    t.extend(tar_member(b"h_ok", b'1', b"", b"sub/f.txt"));
    t.extend(tar_member(b"h_chain", b'1', b"", b"h_ok"));
    t.extend(tar_member(b"h_later", b'1', b"", b"later.txt"));
    t.extend(tar_member(b"h_missing", b'1', b"", b"nope"));
    t.extend(tar_member(b"h_self", b'1', b"", b"h_self"));
    t.extend(tar_member(b"h_dir", b'1', b"", b"sub"));
    t.extend(tar_member(b"h_abs", b'1', b"", b"/etc/passwd"));
    t.extend(tar_member(b"later.txt", b'0', b"later", b""));
    // The long escaping target needs a pax header.
    let rec = |k: &str, v: &str| {
        let body = format!(" {k}={v}\n");
        let mut n = body.len() + 1;
        while format!("{n}{body}").len() != n {
            n += 1;
        }
        format!("{n}{body}")
    };
    t.extend(tar_member(b"pax", b'x', rec("linkpath", &escape).as_bytes(), b""));
    t.extend(tar_member(b"esc", b'2', b"", b"placeholder"));
    t.extend([0u8; 1024]);
    std::fs::write(&tar, &t).unwrap();

    let m = mount(&[&tar], &dir.path().join("mnt"), &[]);
    let a = |p: &str| m.path(&format!("_archives/links.tar/{p}"));
    assert_eq!(read_timeout(&a("ok")).unwrap(), b"inside");
    assert_eq!(read_timeout(&a("via_up")).unwrap(), b"inside");
    assert_eq!(read_timeout(&a("sub/up/sub/up/sub/f.txt")).unwrap(), b"inside");
    assert_eq!(read_timeout(&a("h_ok")).unwrap(), b"inside");
    assert_eq!(read_timeout(&a("h_chain")).unwrap(), b"inside", "a hard link to a hard link");
    // Before the fix, `esc` was shown and read the host's /etc/passwd through the mount.
    assert!(std::fs::symlink_metadata(a("esc")).is_err(), "a link escaping through a chain is not shown");
    assert!(std::fs::symlink_metadata(a("abs")).is_err());
    assert!(m.stderr.contains("esc") && m.stderr.contains("not shown"), "{}", m.stderr);
    for l in ["loop1", "loop2", "self"] {
        let e = read_timeout(&a(l)).expect_err(l);
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{l}: {e}");
    }
    // Hard links to a later, missing or own member, or to a folder, have no data to show.
    for h in ["h_later", "h_missing", "h_self", "h_dir", "h_abs"] {
        match read_timeout(&a(h)) {
            Ok(data) => panic!("{h}: read {data:?}"),
            Err(e) => assert!(matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EIO)), "{h}: {e}"),
        }
    }
    let out = Command::new("timeout").arg("30").arg("find").arg("-L").arg(&m.mnt).output().unwrap();
    assert!(out.status.code() != Some(124), "find -L over the links finishes");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        assert!(line.starts_with(m.mnt.to_str().unwrap()), "{line}");
    }
    assert!(alive(daemon_pid(&m.mnt).unwrap()));
}

// ---------------------------------------------------------------- lying zip directories

#[test]
fn overlapping_and_lying_zip_entries_fail_with_eio_and_never_serve_wrong_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let a_data = bytes(3000, 1, false);
    let inner_data = bytes(2000, 2, false);
    let good = bytes(70_000, 3, true);
    let text = bytes(50_000, 4, true);
    let mut out = Vec::new();
    let mut cd = Vec::new();
    let n = std::cell::Cell::new(0u64);
    let put = |out: &mut Vec<u8>, cd: &mut Vec<u8>, z: &Z, cd_name: &[u8], lie: &dyn Fn(&mut [u8])| {
        let off = out.len() as u32;
        out.extend(zip_local(&z.name, z.method, z.crc, z.stored.len() as u32, z.size));
        out.extend_from_slice(&z.stored);
        let mut rec = zip_cd(cd_name, z.method, z.crc, z.stored.len() as u32, z.size, off);
        lie(&mut rec);
        cd.extend(rec);
        n.set(n.get() + 1);
        off
    };
    let honest = |_: &mut [u8]| {};
    let a = stored(b"a.txt", &a_data);
    let a_off = put(&mut out, &mut cd, &a, b"a.txt", &honest);
    // A second directory entry over a.txt's data.
    cd.extend(zip_cd(b"dup_of_a.txt", 0, a.crc, a.stored.len() as u32, a.size, a_off));
    n.set(n.get() + 1);
    // outer.bin's stored data quotes a whole member (header and data) that has its own entry.
    let inner = stored(b"inner.bin", &inner_data);
    let mut quoted = bytes(100, 5, false);
    let inner_at = out.len() + 30 + b"outer.bin".len() + quoted.len();
    quoted.extend(zip_local(&inner.name, 0, inner.crc, inner.stored.len() as u32, inner.size));
    quoted.extend_from_slice(&inner.stored);
    quoted.extend(bytes(100, 6, false));
    put(&mut out, &mut cd, &stored(b"outer.bin", &quoted), b"outer.bin", &honest);
    cd.extend(zip_cd(b"inner.bin", 0, inner.crc, inner.size, inner.size, inner_at as u32));
    n.set(n.get() + 1);
    // Offsets and sizes past the end of the file, sizes that disagree with the data.
    let past_eof = |rec: &mut [u8]| rec[42..46].copy_from_slice(&(50u32 << 20).to_le_bytes());
    put(&mut out, &mut cd, &stored(b"offset_past_eof.bin", &a_data), b"offset_past_eof.bin", &past_eof);
    let csize_past_eof = |rec: &mut [u8]| rec[20..24].copy_from_slice(&(40u32 << 20).to_le_bytes());
    put(&mut out, &mut cd, &deflated(b"csize_past_eof.txt", &text), b"csize_past_eof.txt", &csize_past_eof);
    let bigger = |rec: &mut [u8]| rec[24..28].copy_from_slice(&60_000u32.to_le_bytes());
    put(&mut out, &mut cd, &deflated(b"size_bigger.txt", &text), b"size_bigger.txt", &bigger);
    let smaller = |rec: &mut [u8]| rec[24..28].copy_from_slice(&40_000u32.to_le_bytes());
    put(&mut out, &mut cd, &deflated(b"size_smaller.txt", &text), b"size_smaller.txt", &smaller);
    let stored_bigger = |rec: &mut [u8]| rec[24..28].copy_from_slice(&4000u32.to_le_bytes());
    put(&mut out, &mut cd, &stored(b"stored_bigger.bin", &a_data), b"stored_bigger.bin", &stored_bigger);
    put(&mut out, &mut cd, &deflated(b"good.txt", &good), b"good.txt", &honest);
    let cd_start = out.len();
    let cd_len = cd.len();
    out.extend(cd);
    out.extend(zip_end(n.get(), cd_start as u64, cd_len as u64));
    let zip = dir.path().join("liar.zip");
    std::fs::write(&zip, &out).unwrap();

    let m = mount(&[&zip], &dir.path().join("mnt"), &[]);
    let p = |name: &str| m.path(&format!("_archives/liar.zip/{name}"));
    assert_eq!(read_timeout(&p("a.txt")).unwrap(), a_data);
    assert_eq!(read_timeout(&p("inner.bin")).unwrap(), inner_data, "the innermost member is intact");
    assert_eq!(read_timeout(&p("good.txt")).unwrap(), good);
    for bad in [
        "dup_of_a.txt",
        "outer.bin",
        "offset_past_eof.bin",
        "csize_past_eof.txt",
        "size_bigger.txt",
        "size_smaller.txt",
        "stored_bigger.bin",
    ] {
        // Whichever way the lie is caught, the answer is EIO, never some of the bytes.
        assert_eio(read_timeout(&p(bad)), bad);
    }
    let log = std::fs::read_to_string(m.mnt.with_extension("log")).unwrap();
    assert!(log.contains("overlaps another member"), "the reason is logged: {log}");
    assert!(alive(daemon_pid(&m.mnt).unwrap()));
}

#[test]
fn zip_bombs_hit_the_ratio_overlap_and_size_caps_with_eio_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    // One deflate stream of 64 MiB of zeros (about 64 KB, 1030:1).
    let zeros = vec![0u8; 64 << 20];
    let kernel = deflated(b"kernel.raw", &zeros);
    drop(zeros);
    let mut out = Vec::new();
    let off = out.len() as u32;
    out.extend(zip_local(b"kernel.raw", 8, kernel.crc, kernel.stored.len() as u32, kernel.size));
    out.extend_from_slice(&kernel.stored);
    let cd_start = out.len();
    let mut cd = Vec::new();
    let csize = kernel.stored.len() as u32;
    cd.extend(zip_cd(b"kernel.raw", 8, kernel.crc, csize, kernel.size, off));
    // 1,000 more entries over the same stream: a 64 GB "archive" (the overlap cap).
    for i in 0..1000 {
        cd.extend(zip_cd(format!("copy{i:04}.raw").as_bytes(), 8, kernel.crc, csize, kernel.size, off));
    }
    // The same stream claiming 3 GiB: more than deflate can produce from it (the ratio cap).
    cd.extend(zip_cd(b"ratio.raw", 8, kernel.crc, csize, 3 << 30, off));
    // The same stream claiming 1 MiB (with the right CRC for it): decoding stops one byte past
    // the declared size (the size cap), whatever the stream still holds.
    cd.extend(zip_cd(b"under.raw", 8, crc32fast::hash(&vec![0u8; 1 << 20]), csize, 1 << 20, off));
    let n = 1003;
    let cd_len = cd.len();
    out.extend(cd);
    out.extend(zip_end(n, cd_start as u64, cd_len as u64));
    // The overlap cap would refuse `under.raw` and `ratio.raw` before any decoding; a second
    // archive gives each its own copy of the stream so the other caps are exercised too.
    let bomb = dir.path().join("bomb.zip");
    std::fs::write(&bomb, &out).unwrap();
    let mut single = Vec::new();
    let mut cd = Vec::new();
    for (name, crc, size) in [
        (&b"ratio.raw"[..], kernel.crc, 3u32 << 30),
        (b"under.raw", crc32fast::hash(&vec![0u8; 1 << 20]), 1 << 20),
        (b"under_big.raw", crc32fast::hash(&vec![0u8; 16 << 20]), 16 << 20),
    ] {
        let off = single.len() as u32;
        single.extend(zip_local(name, 8, crc, csize, size));
        single.extend_from_slice(&kernel.stored);
        cd.extend(zip_cd(name, 8, crc, csize, size, off));
    }
    let cd_start = single.len();
    let cd_len = cd.len();
    single.extend(cd);
    single.extend(zip_end(3, cd_start as u64, cd_len as u64));
    let caps = dir.path().join("caps.zip");
    std::fs::write(&caps, &single).unwrap();

    let m = mount(&[&bomb, &caps], &dir.path().join("mnt"), &["--cache-size", "16M"]);
    let pid = daemon_pid(&m.mnt).unwrap();
    let started = Instant::now();
    assert_eq!(std::fs::metadata(m.path("_archives/bomb.zip/kernel.raw")).unwrap().len(), 64 << 20);
    for name in ["copy0000.raw", "copy0500.raw", "copy0999.raw", "ratio.raw", "under.raw"] {
        assert_eio(read_timeout(&m.path(&format!("_archives/bomb.zip/{name}"))), name);
    }
    for name in ["ratio.raw", "under.raw", "under_big.raw"] {
        assert_eio(read_timeout(&m.path(&format!("_archives/caps.zip/{name}"))), name);
    }
    let refusals = started.elapsed();
    // The one honest entry still reads in full.
    let got = read_timeout(&m.path("_archives/bomb.zip/kernel.raw")).unwrap();
    assert!(got.len() == 64 << 20 && got.iter().all(|&b| b == 0));
    drop(got);
    let (rss, peak) = rss_mib(pid);
    eprintln!("bomb refusals took {refusals:?}; daemon RSS {rss} MiB, peak {peak} MiB");
    assert!(refusals < Duration::from_secs(10), "caps answer quickly: {refusals:?}");
    // 16 MiB cache + 1 MiB blocks in flight + the listing: far below the 64 GB the entries claim.
    assert!(peak < 150, "daemon peaked at {peak} MiB");
    let log = std::fs::read_to_string(m.mnt.with_extension("log")).unwrap();
    for reason in ["zip bomb pattern", "more than its compressed data can hold", "longer than its declared size"] {
        assert!(log.contains(reason), "logged: {reason}\n{}", &log[..log.len().min(4000)]);
    }
    assert!(alive(pid));
}

// ---------------------------------------------------------------- scale

#[test]
fn ten_thousand_level_paths_overflow_no_stack() {
    let dir = tempfile::tempdir().unwrap();
    const DEPTH: usize = 10_000;
    let deep = format!("{}f.txt", "d/".repeat(DEPTH));
    let tar = dir.path().join("deep.tar");
    make_tar(&tar, &[entry(&deep, b"bottom".to_vec()), entry("e/g.txt", b"g".to_vec())]);
    let zip = dir.path().join("deep.zip");
    std::fs::write(&zip, raw_zip(&[stored(deep.as_bytes(), b"zip bottom")]).0).unwrap();

    let m = mount(&[&tar, &zip], &dir.path().join("mnt"), &[]);
    // Walk down one lookup at a time (the whole path is five times PATH_MAX).
    for (archive, want) in [("deep.tar", &b"bottom"[..]), ("deep.zip", b"zip bottom")] {
        let root = std::ffi::CString::new(m.path(&format!("_archives/{archive}")).as_os_str().as_bytes()).unwrap();
        // SAFETY: plain openat/read/close on descriptors this loop owns.
        unsafe {
            let mut fd = libc::open(root.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
            assert!(fd >= 0);
            for level in 0..DEPTH {
                let next = libc::openat(fd, c"d".as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
                assert!(next >= 0, "{archive}: level {level}: {}", std::io::Error::last_os_error());
                libc::close(fd);
                fd = next;
            }
            let f = libc::openat(fd, c"f.txt".as_ptr(), libc::O_RDONLY);
            assert!(f >= 0, "{archive}: {}", std::io::Error::last_os_error());
            let mut buf = [0u8; 64];
            let n = libc::read(f, buf.as_mut_ptr().cast(), buf.len());
            assert_eq!(&buf[..n as usize], want);
            libc::close(f);
            libc::close(fd);
        }
    }
    let out = Command::new("timeout")
        .args(["60", "find"])
        .arg(m.path("_archives"))
        .args(["-name", "f.txt"])
        .output()
        .unwrap();
    let found = String::from_utf8_lossy(&out.stdout);
    assert_eq!(found.lines().count(), 2, "find reaches the bottom of both: {}", String::from_utf8_lossy(&out.stderr));
    assert!(alive(daemon_pid(&m.mnt).unwrap()));
    // The tree without FUSE too (`medfs ls` walks the same tree iteratively).
    let out = medfs().arg("ls").arg(&tar).arg("_archives/deep.tar/e").output().unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("g.txt"));
}

#[test]
fn a_million_entries_in_one_folder_list_completely_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    const N: u64 = 1_000_000;
    // Stored empty members, written directly: 92 bytes each (a zip lists from its directory).
    let zip = dir.path().join("million.zip");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&zip).unwrap());
        let mut cd = Vec::with_capacity(56 * N as usize);
        let mut at = 0u64;
        for i in 0..N {
            let name = format!("f{i:07}");
            let local = zip_local(name.as_bytes(), 0, 0, 0, 0);
            cd.extend(zip_cd(name.as_bytes(), 0, 0, 0, 0, at as u32));
            w.write_all(&local).unwrap();
            at += local.len() as u64;
        }
        w.write_all(&cd).unwrap();
        w.write_all(&zip_end(N, at, cd.len() as u64)).unwrap();
    }
    let started = Instant::now();
    let m = mount(&[&zip], &dir.path().join("mnt"), &["--no-index"]);
    let mounted = started.elapsed();
    let pid = daemon_pid(&m.mnt).unwrap();
    let (rss_mounted, _) = rss_mib(pid);
    let started = Instant::now();
    let out = Command::new("timeout")
        .arg("60")
        .arg("sh")
        .arg("-c")
        .arg("ls -f \"$1\" | wc -l")
        .arg("sh")
        .arg(m.path("_archives/million.zip"))
        .output()
        .unwrap();
    let listed = started.elapsed();
    let count: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert_eq!(count, N + 2, "every entry (and . and ..) listed");
    assert_eq!(std::fs::metadata(m.path("_archives/million.zip/f0999999")).unwrap().len(), 0);
    let (rss, peak) = rss_mib(pid);
    eprintln!(
        "1M entries: mounted in {mounted:?}, listed in {listed:?}; daemon RSS {rss_mounted} MiB after mount, \
         {rss} MiB after listing, peak {peak} MiB"
    );
    // Budget, per member: its listing entry, tree node, folder slot and zip data offset (under
    // 200 bytes, the fs.rs memory test) plus two heap copies of its name (32 bytes each), and
    // while the tree is built, the per-folder name map (~100 bytes): ~400 MB for 1M members,
    // about what was measured (395 MiB peak). Listing must not add to it: readdir answers
    // from the tree.
    assert!(peak < 512, "daemon peaked at {peak} MiB for 1M entries");
    assert!(rss <= rss_mounted + 32, "listing does not grow the daemon: {rss_mounted} -> {rss} MiB");
    assert!(alive(pid));
}

// ---------------------------------------------------------------- damage at every boundary

/// The members every damaged archive starts from: a mix of sizes across compression blocks, a
/// folder, and (tar only) a GNU sparse member.
fn damage_entries() -> Vec<Entry> {
    vec![
        entry("a/small.txt", bytes(700, 11, true)),
        entry("a/b/", vec![]),
        entry("a/b/mid.bin", bytes(90_000, 12, true)),
        entry("big.txt", bytes(260_000, 13, true)),
        entry("empty.txt", vec![]),
        entry("rand.bin", bytes(40_000, 14, false)),
        entry("z/last.txt", bytes(5_000, 15, true)),
    ]
}

/// A GNU sparse member ('S'): 300,000 bytes whose data is two 4 KiB runs.
fn sparse_member() -> (Vec<u8>, Vec<u8>) {
    let runs = [(0u64, bytes(4096, 16, true)), (200_000u64, bytes(4096, 17, true))];
    let real = 300_000u64;
    let stored: Vec<u8> = runs.iter().flat_map(|(_, d)| d.clone()).collect();
    let mut h = tar_header(b"sparse.bin", b'S', stored.len() as u64, b"");
    h[257..265].copy_from_slice(b"ustar  \0"); // old GNU format, where 'S' lives
    for (i, (off, d)) in runs.iter().enumerate() {
        let at = 386 + i * 24;
        h[at..at + 12].copy_from_slice(format!("{off:011o}\0").as_bytes());
        h[at + 12..at + 24].copy_from_slice(format!("{:011o}\0", d.len()).as_bytes());
    }
    h[483..495].copy_from_slice(format!("{real:011o}\0").as_bytes());
    tar_checksum(&mut h);
    let mut member = h.to_vec();
    member.extend_from_slice(&stored);
    member.resize(member.len().div_ceil(512) * 512, 0);
    let mut logical = vec![0u8; real as usize];
    for (off, d) in &runs {
        logical[*off as usize..*off as usize + d.len()].copy_from_slice(d);
    }
    (member, logical)
}

/// Path -> original bytes.
type Originals = BTreeMap<String, Vec<u8>>;

/// The tar the compressed variants wrap, its header offsets and member boundaries, and the
/// original bytes of every member.
fn damage_tar() -> (Vec<u8>, Vec<usize>, Vec<usize>, Originals) {
    let entries = damage_entries();
    let mut raw = tar_bytes(&entries);
    let end = raw.len() - 1024; // the crate ends with two zero blocks; the sparse member goes first
    let (sparse, logical) = sparse_member();
    raw.splice(end..end, sparse);
    let mut boundaries = Vec::new();
    let mut headers = Vec::new();
    let mut at = 0;
    while at + 512 <= raw.len() && raw[at..at + 512].iter().any(|&b| b != 0) {
        boundaries.push(at);
        headers.push(at);
        let size = u64::from_str_radix(std::str::from_utf8(&raw[at + 124..at + 135]).unwrap().trim(), 8).unwrap();
        boundaries.push(at + 512);
        at += 512 + (size as usize).div_ceil(512) * 512;
    }
    boundaries.extend([at, at + 512, raw.len()]);
    let mut originals: BTreeMap<String, Vec<u8>> =
        entries.into_iter().filter(|e| !e.path.ends_with('/')).map(|e| (e.path, e.data)).collect();
    originals.insert("sparse.bin".into(), logical);
    (raw, headers, boundaries, originals)
}

fn run_tool(args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(args[0])
        .args(&args[1..])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", args[0]));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(out.status.success(), "{args:?}");
    out.stdout
}

/// Bit offsets of bzip2 block headers (the 48-bit magic 0x314159265359) turned into byte cuts.
fn bzip2_blocks(b: &[u8]) -> Vec<usize> {
    let magic: u64 = 0x3141_5926_5359;
    let mut out = Vec::new();
    let mut window: u64 = 0;
    for bit in 0..b.len() * 8 {
        let v = (b[bit / 8] >> (7 - bit % 8)) & 1;
        window = ((window << 1) | v as u64) & 0xFFFF_FFFF_FFFF;
        if bit >= 47 && window == magic {
            out.push((bit - 47) / 8);
        }
    }
    out
}

/// Block starts of a single-stream xz, from its index.
fn xz_blocks(b: &[u8]) -> Vec<usize> {
    let backward = u32::from_le_bytes(b[b.len() - 8..b.len() - 4].try_into().unwrap()) as usize;
    let index_len = (backward + 1) * 4;
    let index_start = b.len() - 12 - index_len;
    let mut p = index_start + 1;
    let varint = |p: &mut usize| {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let byte = b[*p];
            *p += 1;
            v |= ((byte & 0x7F) as u64) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                return v;
            }
        }
    };
    let count = varint(&mut p);
    let mut out = Vec::new();
    let mut at = 12;
    for _ in 0..count {
        let unpadded = varint(&mut p) as usize;
        let _uncompressed = varint(&mut p);
        out.push(at);
        at += unpadded.div_ceil(4) * 4;
    }
    out.extend([index_start, b.len() - 12]);
    out
}

/// Block starts of zstd frames (frame headers, each block header, checksums).
fn zstd_blocks(b: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut p = 0;
    while p + 4 <= b.len() && b[p..p + 4] == [0x28, 0xB5, 0x2F, 0xFD] {
        out.push(p);
        let fhd = b[p + 4];
        let single = fhd & 0x20 != 0;
        let fcs = match fhd >> 6 {
            0 if single => 1,
            0 => 0,
            1 => 2,
            2 => 4,
            _ => 8,
        };
        let did = [0, 1, 2, 4][(fhd & 3) as usize];
        p += 5 + usize::from(!single) + did + fcs;
        loop {
            out.push(p);
            let h = b[p] as u32 | (b[p + 1] as u32) << 8 | (b[p + 2] as u32) << 16;
            let (last, typ, size) = (h & 1, (h >> 1) & 3, (h >> 3) as usize);
            p += 3 + if typ == 1 { 1 } else { size };
            if last == 1 {
                break;
            }
        }
        if fhd & 4 != 0 {
            out.push(p);
            p += 4;
        }
    }
    out
}

/// Every variant of one archive: cut at each boundary and a few bytes either side, and one byte
/// flipped at each of `flips`.
fn variants(base: &[u8], boundaries: &[usize], flips: &[usize]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut cuts = BTreeSet::new();
    for &b in boundaries {
        for d in [-3i64, -1, 0, 1, 3] {
            let c = b as i64 + d;
            if c > 0 && (c as usize) < base.len() {
                cuts.insert(c as usize);
            }
        }
    }
    for c in cuts {
        out.push((format!("cut{c}"), base[..c].to_vec()));
    }
    for &f in flips.iter().filter(|&&f| f < base.len()).collect::<BTreeSet<_>>() {
        let mut v = base.to_vec();
        v[f] ^= 0x55;
        out.push((format!("flip{f}"), v));
    }
    out
}

/// Flips for formats that check their data: each boundary, a few bytes into it, and the middle
/// of every stretch between boundaries.
fn structure_and_data_flips(boundaries: &[usize]) -> Vec<usize> {
    let mut flips = Vec::new();
    for w in boundaries.windows(2) {
        flips.extend([w[0], w[0] + 1, w[0] + 5].into_iter().filter(|&f| f < w[1]));
        flips.push((w[0] + w[1]) / 2);
    }
    flips
}

/// Mounts a folder of damaged variants and checks every one: shown (every file reads back exact
/// or fails with EIO, within a timeout) or left out with a warning naming it.
fn check_damaged(
    kind: &str,
    base: Vec<u8>,
    boundaries: Vec<usize>,
    originals: &BTreeMap<String, Vec<u8>>,
    flips: Vec<usize>,
) {
    let dir = tempfile::tempdir().unwrap();
    let dl = dir.path().join("dl");
    std::fs::create_dir(&dl).unwrap();
    let all = variants(&base, &boundaries, &flips);
    for (name, data) in &all {
        std::fs::write(dl.join(format!("{name}.{kind}")), data).unwrap();
    }
    let contents: BTreeSet<&[u8]> = originals.values().map(|v| v.as_slice()).collect();
    let started = Instant::now();
    let m = mount(&[&dl], &dir.path().join("mnt"), &["--no-index"]);
    let pid = daemon_pid(&m.mnt).unwrap();
    let (mut shown, mut exact, mut eio) = (0, 0, 0);
    for (name, data) in &all {
        let file = format!("{name}.{kind}");
        let root: PathBuf = m.path(&format!("_archives/{file}"));
        if root.is_file() {
            // Not recognized as an archive, shown as a loose file: then its bytes are exact.
            assert!(read_timeout(&root).unwrap() == *data, "{file}: loose bytes differ");
            continue;
        }
        if !root.exists() {
            assert!(m.stderr.contains(&file), "{file} is neither shown nor named in a warning:\n{}", m.stderr);
            continue;
        }
        shown += 1;
        for rel in walk(&root).into_iter().filter(|p| !p.ends_with('/')) {
            let path = root.join(&rel);
            if std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink() {
                continue;
            }
            match read_timeout(&path) {
                Ok(got) => {
                    match originals.get(&rel) {
                        Some(want) => {
                            if got != *want {
                                let _ = std::fs::create_dir_all("/tmp/hostile-debug");
                                let _ = std::fs::write(format!("/tmp/hostile-debug/{file}"), data);
                            }
                            let first_diff = got.iter().zip(want.iter()).position(|(a, b)| a != b);
                            assert!(
                                got == *want,
                                "{file}: {rel}: wrong bytes served ({} of {} bytes, first difference at {first_diff:?})",
                                got.len(),
                                want.len()
                            )
                        }
                        // A damaged name may show a member elsewhere; its bytes must still be
                        // some member's own.
                        None => assert!(contents.contains(got.as_slice()), "{file}: {rel}: bytes of no member"),
                    }
                    exact += 1;
                }
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{file}: {rel}: {e}");
                    eio += 1;
                }
            }
        }
    }
    eprintln!(
        "{kind}: {} variants, {shown} mounted, {exact} members exact, {eio} EIO, in {:?}",
        all.len(),
        started.elapsed()
    );
    assert!(shown > 0 && exact > 0, "{kind}: something readable survives");
    assert!(alive(pid), "{kind}: the daemon survived");
    // Named on the command line, an archive cut before its first member is refused with one
    // line that names it.
    let first = dl.join(format!("{}.{kind}", all[0].0));
    let mnt = dir.path().join("one");
    std::fs::create_dir(&mnt).unwrap();
    let out = try_mount(&[&first], &mnt, &["--no-index"]);
    if out.status.success() {
        unmount(&mnt);
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(first.file_name().unwrap().to_str().unwrap()), "{err}");
    }
}

#[test]
fn damaged_tar_at_every_boundary() {
    let (raw, headers, boundaries, originals) = damage_tar();
    // Plain tar checks only its headers (by checksum): its data bytes are not flipped, nothing
    // could notice. Header flips hit the name, mode, size, checksum and type fields.
    let flips = headers.iter().flat_map(|&h| [h, h + 5, h + 101, h + 126, h + 150, h + 156]).collect();
    check_damaged("tar", raw, boundaries, &originals, flips);
}

#[test]
fn damaged_tar_gz_at_every_boundary() {
    let (raw, _, _, originals) = damage_tar();
    // Three gzip members, so member boundaries fall inside the tar.
    let third = raw.len() / 3;
    let mut gz = Vec::new();
    let mut boundaries = Vec::new();
    for chunk in [&raw[..third], &raw[third..2 * third], &raw[2 * third..]] {
        boundaries.extend([gz.len(), gz.len() + 10]);
        gz.extend(run_tool(&["gzip", "-6", "-c"], chunk));
        boundaries.push(gz.len() - 8);
    }
    boundaries.push(gz.len());
    let flips = structure_and_data_flips(&boundaries);
    check_damaged("tar.gz", gz, boundaries, &originals, flips);
}

#[test]
fn damaged_tar_bz2_at_every_boundary() {
    let (raw, _, _, originals) = damage_tar();
    let bz = run_tool(&["bzip2", "-1", "-c"], &raw);
    let mut boundaries = vec![0, 4];
    boundaries.extend(bzip2_blocks(&bz));
    boundaries.extend([bz.len() - 10, bz.len()]);
    assert!(boundaries.len() >= 6, "several bzip2 blocks: {boundaries:?}");
    let flips = structure_and_data_flips(&boundaries);
    check_damaged("tar.bz2", bz, boundaries, &originals, flips);
}

#[test]
fn damaged_tar_xz_at_every_boundary() {
    let (raw, _, _, originals) = damage_tar();
    let xz = run_tool(&["xz", "-6", "--block-size=65536", "-c"], &raw);
    let mut boundaries = vec![0];
    boundaries.extend(xz_blocks(&xz));
    boundaries.push(xz.len());
    assert!(boundaries.len() >= 6, "several xz blocks: {boundaries:?}");
    let flips = structure_and_data_flips(&boundaries);
    check_damaged("tar.xz", xz, boundaries, &originals, flips);
}

#[test]
fn damaged_tar_zst_at_every_boundary() {
    let (raw, _, _, originals) = damage_tar();
    // Two frames, with content checksums (the CLI default).
    let half = raw.len() / 2;
    let mut zst = run_tool(&["zstd", "-q", "-3", "-c", "--check"], &raw[..half]);
    zst.extend(run_tool(&["zstd", "-q", "-3", "-c", "--check"], &raw[half..]));
    let mut boundaries = zstd_blocks(&zst);
    boundaries.push(zst.len());
    assert!(boundaries.len() >= 6, "frames and blocks: {boundaries:?}");
    let flips = structure_and_data_flips(&boundaries);
    check_damaged("tar.zst", zst, boundaries, &originals, flips);
}

#[test]
fn damaged_zip_at_every_boundary() {
    let entries = damage_entries();
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (i, e) in entries.iter().enumerate() {
        let method = if i % 2 == 0 { zip::CompressionMethod::Deflated } else { zip::CompressionMethod::Stored };
        let opts = zip::write::SimpleFileOptions::default().compression_method(method);
        if e.path.ends_with('/') {
            w.add_directory(e.path.trim_end_matches('/'), opts).unwrap();
        } else {
            w.start_file(e.path.as_str(), opts).unwrap();
            w.write_all(&e.data).unwrap();
        }
    }
    let z = w.finish().unwrap().into_inner();
    let mut boundaries: Vec<usize> = [&[0x50u8, 0x4b, 3, 4][..], &[0x50, 0x4b, 1, 2], &[0x50, 0x4b, 5, 6]]
        .iter()
        .flat_map(|sig| z.windows(4).enumerate().filter(|(_, w)| w == sig).map(|(i, _)| i).collect::<Vec<_>>())
        .collect();
    boundaries.push(z.len());
    boundaries.sort();
    let originals = entries.into_iter().filter(|e| !e.path.ends_with('/')).map(|e| (e.path, e.data)).collect();
    let flips = structure_and_data_flips(&boundaries);
    check_damaged("zip", z, boundaries, &originals, flips);
}

// ---------------------------------------------------------------- panics

#[test]
fn a_panic_in_one_request_answers_eio_and_the_daemon_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("p.zip");
    make_zip(
        &zip,
        &[entry("boom.txt", b"never".to_vec()), entry("fine.txt", b"still here".to_vec())],
        ZipMethod::Stored,
    );
    let mnt = dir.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let out = medfs()
        .env("MEDFS_TEST_PANIC_ON", "boom.txt")
        .args(["mount", "--threads", "2", "--log-file"])
        .arg(mnt.with_extension("log"))
        .arg(&zip)
        .arg(&mnt)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m = Mounted { mnt: mnt.clone(), stderr: String::new() };
    let pid = daemon_pid(&mnt).unwrap();
    // More panics than worker threads: without the guard each one kills a worker for good.
    for i in 0..10 {
        assert_eio(read_timeout(&m.path("_archives/p.zip/boom.txt")), &format!("panicking read {i}"));
        assert_eq!(read_timeout(&m.path("_archives/p.zip/fine.txt")).unwrap(), b"still here", "after panic {i}");
    }
    assert!(alive(pid));
    let log = std::fs::read_to_string(mnt.with_extension("log")).unwrap();
    assert!(log.contains("panic") && log.contains("answered EIO"), "{log}");
}
