//! Archives inside archives through a real mount: a bundle zip holding a 7z, a deflated zip and
//! a split zip's parts, inside a tar beside a tar.gz; every level byte-exact, the member's own
//! bytes as `name~raw`, depth capped by `--max-depth`, a remount reading no byte of any level,
//! and a change to the outermost file failing every level with EIO.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// The files every inner archive holds: noise and text, a few hundred KiB each.
fn inner_files() -> Vec<Entry> {
    (0..6)
        .map(|i| entry(&format!("inner/d{}/f{i}.bin", i % 2), bytes(150_000 + i * 7919, 40 + i as u64, i % 2 == 0)))
        .collect()
}

/// `outer.tar` = { `bundle.zip` (stored) = { `inner.7z`, `deflated.zip` (deflated member),
/// `parts.zip.001..003` (a zip cut in three) }, `inner.tar.gz` }. Returns the tar's path and
/// the inner archives' own bytes by name.
fn bundle(dir: &Path) -> (PathBuf, Vec<(String, Vec<u8>)>) {
    let files = inner_files();
    let sevenz = dir.join("inner.7z");
    make_7z(&sevenz, &files, &["-mx1", "-ms=on"]);
    let zip = dir.join("inner.zip");
    make_zip(&zip, &files, ZipMethod::Deflated);
    let tgz = dir.join("inner.tar.gz");
    make_tar_gz(&tgz, &files);
    let (sevenz, zip, tgz) = (std::fs::read(sevenz).unwrap(), std::fs::read(zip).unwrap(), std::fs::read(tgz).unwrap());
    let third = zip.len() / 3 + 1;
    let mut bundle: Vec<Entry> = vec![entry("inner.7z", sevenz.clone())];
    for (k, part) in zip.chunks(third).enumerate() {
        bundle.push(entry(&format!("parts.zip.{:03}", k + 1), part.to_vec()));
    }
    let bundle_stored = dir.join("bundle-stored.zip");
    make_zip(&bundle_stored, &bundle, ZipMethod::Stored);
    // The fixture writes one method per archive: a second, deflated holder carries the zip
    // that is read through the outer zip's inflate and seek points.
    let deflated_holder = dir.join("deflated-holder.zip");
    make_zip(&deflated_holder, &[entry("deflated.zip", zip.clone())], ZipMethod::Deflated);
    let outer = dir.join("outer.tar");
    make_tar(
        &outer,
        &[
            entry("bundle.zip", std::fs::read(&bundle_stored).unwrap()),
            entry("holder.zip", std::fs::read(&deflated_holder).unwrap()),
            entry("inner.tar.gz", tgz.clone()),
        ],
    );
    let raws = vec![("inner.7z".to_string(), sevenz), ("deflated.zip".to_string(), zip.clone())];
    (outer, raws)
}

#[test]
fn archives_nested_in_archives_mount_byte_exact_at_every_level() {
    let dir = tempfile::tempdir().unwrap();
    let (outer, raws) = bundle(dir.path());
    let m = mount(&[&outer], &dir.path().join("mnt"), &["--index-dir", dir.path().join("idx").to_str().unwrap()]);
    let top = m.path("_archives/outer.tar");
    let inner_roots = ["bundle.zip/inner.7z", "bundle.zip/parts.zip", "holder.zip/deflated.zip", "inner.tar.gz"];
    for root in inner_roots {
        for e in inner_files() {
            let got =
                std::fs::read(top.join(root).join(&e.path)).unwrap_or_else(|err| panic!("{root}/{}: {err}", e.path));
            assert!(got == e.data, "{root}/{} differs", e.path);
        }
    }
    // The opened members' own bytes stay reachable beside their folders; split parts keep
    // their names.
    assert_eq!(std::fs::read(top.join("bundle.zip/inner.7z~raw")).unwrap(), raws[0].1);
    assert_eq!(std::fs::read(top.join("holder.zip/deflated.zip~raw")).unwrap(), raws[1].1);
    let parts: Vec<u8> =
        (1..=3).flat_map(|k| std::fs::read(top.join(format!("bundle.zip/parts.zip.{k:03}"))).unwrap()).collect();
    assert_eq!(parts, raws[1].1, "the parts are the inner zip cut in three");
    assert!(top.join("bundle.zip~raw").is_file() && top.join("inner.tar.gz~raw").is_file());
    assert!(std::fs::metadata(top.join("bundle.zip/inner.7z")).unwrap().is_dir());
    // Random partial reads in a member of the zip that lies deflated inside another zip.
    use std::os::unix::fs::FileExt;
    let e = &inner_files()[3];
    let f = std::fs::File::open(top.join("holder.zip/deflated.zip").join(&e.path)).unwrap();
    for at in [e.data.len() / 2, 17, e.data.len() - 5000] {
        let mut buf = vec![0u8; 4000];
        f.read_exact_at(&mut buf, at as u64).unwrap();
        assert!(buf == e.data[at..at + 4000], "at {at}");
    }
}

#[test]
fn a_remount_reads_no_byte_of_any_level_and_a_changed_outer_file_fails_every_level() {
    let dir = tempfile::tempdir().unwrap();
    let (outer, _) = bundle(dir.path());
    let idx = dir.path().join("idx");
    let index = |what: &str| {
        let out = medfs().arg("index").arg(&outer).arg("--index-dir").arg(&idx).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
        stdout
    };
    let first = index("first");
    for name in ["outer.tar:", "bundle.zip/inner.7z:", "parts.zip.001 (+2 parts):", "holder.zip/deflated.zip:"] {
        assert!(first.lines().any(|l| l.contains(name) && l.contains("listed and indexed")), "{name} in {first}");
    }
    let second = index("second");
    let lines: Vec<&str> = second.lines().filter(|l| l.contains(" members, ")).collect();
    assert_eq!(lines.len(), 7, "the tar, the 3 archives in it, the 3 nested in those: {second}");
    for line in lines {
        assert!(line.contains("from its index") && line.contains("read 0 bytes"), "{line}");
    }

    let m = mount(&[&outer], &dir.path().join("mnt"), &["--index-dir", idx.to_str().unwrap()]);
    let e = &inner_files()[0];
    let deep = m.path("_archives/outer.tar/bundle.zip/inner.7z").join(&e.path);
    assert_eq!(std::fs::read(&deep).unwrap(), e.data);
    // Rewrite the outermost file (same size, other bytes): every level is refused from now on.
    let mut raw = std::fs::read(&outer).unwrap();
    raw[100] ^= 1;
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&outer, &raw).unwrap();
    // Files not read before (the kernel may keep what it served in its page cache).
    let fresh = [
        m.path("_archives/outer.tar/bundle.zip/inner.7z").join(&inner_files()[2].path),
        m.path("_archives/outer.tar/holder.zip/deflated.zip").join(&inner_files()[1].path),
        m.path("_archives/outer.tar/bundle.zip/parts.zip").join(&inner_files()[3].path),
    ];
    for p in &fresh {
        match std::fs::read(p) {
            Ok(got) => panic!("{}: {} bytes served from a changed outer file", p.display(), got.len()),
            Err(err) => assert_eq!(err.raw_os_error(), Some(5), "EIO expected: {}: {err}", p.display()),
        }
    }
}

/// A zip holding a zip holding a zip ... `levels` deep, the innermost holding `leaf.txt`.
fn russian_doll(dir: &Path, levels: usize) -> PathBuf {
    let mut data = b"the innermost file\n".to_vec();
    let mut name = "leaf.txt".to_string();
    for level in (1..=levels).rev() {
        let p = dir.join(format!("doll{level}.zip"));
        make_zip(&p, &[entry(&name, data)], ZipMethod::Stored);
        data = std::fs::read(&p).unwrap();
        name = format!("doll{level}.zip");
    }
    dir.join("doll1.zip")
}

#[test]
fn max_depth_caps_nesting_and_zero_turns_it_off() {
    let dir = tempfile::tempdir().unwrap();
    let doll = russian_doll(dir.path(), 5);
    // doll1 (a source) > doll2 (depth 1) > doll3 (2) > doll4 (3) > doll5 (4: past the default).
    let m = mount(&[&doll], &dir.path().join("mnt"), &["--no-index"]);
    let deepest = m.path("_archives/doll1.zip/doll2.zip/doll3.zip/doll4.zip");
    assert!(deepest.is_dir());
    assert!(deepest.join("doll5.zip").is_file(), "depth 4 stays a file");
    assert!(m.stderr.contains("deeper than --max-depth 3"), "{}", m.stderr);
    drop(m);
    let m = mount(&[&doll], &dir.path().join("mnt0"), &["--no-index", "--max-depth", "0"]);
    assert!(m.path("_archives/doll1.zip/doll2.zip").is_file());
    assert!(!m.path("_archives/doll1.zip/doll2.zip~raw").exists());
    drop(m);
    let m = mount(&[&doll], &dir.path().join("mnt9"), &["--no-index", "--max-depth", "9"]);
    let leaf = m.path("_archives/doll1.zip/doll2.zip/doll3.zip/doll4.zip/doll5.zip/leaf.txt");
    assert_eq!(std::fs::read(leaf).unwrap(), b"the innermost file\n");
}

#[test]
fn a_member_named_like_an_archive_that_is_none_stays_a_file_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let outer = dir.path().join("o.zip");
    make_zip(
        &outer,
        &[entry("fake.zip", b"not a zip at all".to_vec()), entry("notes.csv.gz", fixtures_gzip(b"a,b\n1,2\n"))],
        ZipMethod::Deflated,
    );
    let m = mount(&[&outer], &dir.path().join("mnt"), &["--no-index"]);
    assert_eq!(std::fs::read(m.path("_archives/o.zip/fake.zip")).unwrap(), b"not a zip at all");
    assert!(m.stderr.contains("fake.zip: named like an archive but is none"), "{}", m.stderr);
    // A single compressed file inside an archive is a file, not a folder.
    assert!(m.path("_archives/o.zip/notes.csv.gz").is_file());
}

fn fixtures_gzip(data: &[u8]) -> Vec<u8> {
    medfs::fixtures::gzip(data)
}

#[test]
fn split_parts_named_alone_on_the_command_line_are_joined() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("whole.zip");
    let files = inner_files();
    make_zip(&zip, &files, ZipMethod::Deflated);
    let raw = std::fs::read(&zip).unwrap();
    for (k, part) in raw.chunks(raw.len() / 3 + 1).enumerate() {
        std::fs::write(dir.path().join(format!("x.zip.{:03}", k + 1)), part).unwrap();
    }
    let m = mount(&[&dir.path().join("x.zip.001")], &dir.path().join("mnt"), &["--no-index"]);
    for e in &files {
        assert_eq!(std::fs::read(m.path("_archives/x.zip").join(&e.path)).unwrap(), e.data, "{}", e.path);
    }
}

#[test]
fn two_thousand_tars_inside_a_tar_bz2_all_open() {
    // From ratarmount's test suite: `mimi/00001.tar` ... `mimi/02000.tar`, each holding `foo`.
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/ratarmount/2k-recursive-tars.tar.bz2");
    let dir = tempfile::tempdir().unwrap();
    let m = mount(&[&corpus], &dir.path().join("mnt"), &["--no-index"]);
    let mimi = m.path("_archives/2k-recursive-tars.tar.bz2/mimi");
    let folders =
        std::fs::read_dir(&mimi).unwrap().filter(|e| e.as_ref().unwrap().file_type().unwrap().is_dir()).count();
    assert_eq!(folders, 2000);
    for n in [1, 777, 2000] {
        let tar = format!("mimi/{n:05}.tar");
        let inner = Command::new("tar").arg("xjOf").arg(&corpus).arg(&tar).output().unwrap().stdout;
        let mut child = Command::new("tar")
            .args(["xOf", "-", "foo"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&inner).unwrap();
        let want = child.wait_with_output().unwrap().stdout;
        assert!(!want.is_empty());
        assert_eq!(std::fs::read(mimi.join(format!("{n:05}.tar/foo"))).unwrap(), want, "{tar}/foo");
        assert_eq!(std::fs::read(mimi.join(format!("{n:05}.tar~raw"))).unwrap(), inner, "{tar} itself");
    }
}
