//! The persisted tree through real mounts: a warm mount reads no archive byte and renders no
//! sidecar, a changed profile or source rebuilds the tree (silently), a damaged tree file is
//! rebuilt with a warning.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;

const MURA: &str = include_str!("../mounts/mura.toml");

/// A small DICOM file of series `series`.
fn dicom(patient: &str, series: &str, instance: u32) -> Vec<u8> {
    use medfs::fixtures::Dv::{Raw, Text, Uid, Us};
    let sop = format!("{series}.{instance}");
    let pixels = bytes(512, instance as u64, false);
    medfs::fixtures::dicom(&[
        (8, 0x16, Uid("1.2.840.10008.5.1.4.1.1.2")),
        (8, 0x18, Uid(&sop)),
        (8, 0x20, Text("20200101")),
        (8, 0x60, Text("CT")),
        (0x10, 0x20, Text(patient)),
        (0x20, 0x0D, Uid("1.2.3.4")),
        (0x20, 0x0E, Uid(series)),
        (0x20, 0x13, Text(&instance.to_string())),
        (0x28, 0x10, Us(8)),
        (0x28, 0x11, Us(8)),
        (0x7FE0, 0x10, Raw(&pixels)),
    ])
}

/// A download of two zips (a MURA look-alike whose labels are a CSV inside it, and generic
/// DICOM), a loose CSV beside them, and a profile folder holding a copy of the MURA profile.
struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    src: PathBuf,
    profiles: PathBuf,
    idx: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let src = root.join("src");
        let profiles = root.join("profiles");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&profiles).unwrap();
        let mut mura = Vec::new();
        let mut labels = String::new();
        // Patient 2's CSV label disagrees with its folder name: the CSV wins, so its labels.json
        // shows whether the CSV inside the zip was read (the folder name is the fallback).
        for (p, label, csv) in [(1, "positive", 1), (2, "negative", 1), (3, "positive", 1)] {
            let study = format!("MURA-v1.1/train/XR_WRIST/patient0000{p}/study1_{label}/");
            labels.push_str(&format!("{study},{csv}\n"));
            for i in 1..=2 {
                mura.push(entry(&format!("{study}image{i}.png"), medfs::fixtures::png(8, 8, 0, p * 10 + i)));
            }
        }
        mura.push(entry("MURA-v1.1/train_labeled_studies.csv", labels.into_bytes()));
        make_zip(&src.join("MURA-v1.1.zip"), &mura, ZipMethod::Deflated);
        Setup::write_ct(&src, 4);
        std::fs::write(src.join("notes.csv"), "a,b\n1,2\n").unwrap();
        std::fs::write(profiles.join("mura.toml"), MURA).unwrap();
        let idx = root.join("idx");
        Setup { _tmp: tmp, root, src, profiles, idx }
    }

    fn write_ct(src: &Path, n: u32) {
        let files: Vec<_> = (1..=n).map(|i| entry(&format!("scan/{i:03}.dcm"), dicom("P1", "1.2.3.4.5", i))).collect();
        make_zip(&src.join("ct.zip"), &files, ZipMethod::Deflated);
    }

    fn mount(&self, name: &str) -> Mounted {
        let mnt = self.root.join(name);
        let (idx, profiles) = (self.idx.to_str().unwrap(), self.profiles.to_str().unwrap());
        mount(&[&self.src], &mnt, &["-v", "--index-dir", idx, "--profiles", profiles])
    }

    /// The persisted tree file (exactly one).
    fn tree_file(&self) -> PathBuf {
        let files: Vec<PathBuf> = std::fs::read_dir(&self.idx)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "tree"))
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        files[0].clone()
    }
}

fn built(m: &Mounted) -> bool {
    assert!(m.stderr.contains("tree saved to"), "{}", m.stderr);
    m.stderr.contains("sidecars rendered") && !m.stderr.contains("0 sidecars rendered")
}

fn loaded(m: &Mounted) -> bool {
    m.stderr.contains("loaded from") && m.stderr.contains("no archive read, no DICOM scan, no organizing, 0 sidecars")
}

/// Every generated file of the datasets (JSON and CSV sidecars) with its bytes, and every path
/// with its inode number.
type Shown = (BTreeMap<String, Vec<u8>>, Vec<(String, u64)>);

fn datasets(m: &Mounted) -> Shown {
    use std::os::unix::fs::MetadataExt;
    let all: Vec<(String, u64)> =
        walk(&m.mnt).into_iter().map(|p| (p.clone(), std::fs::symlink_metadata(m.path(&p)).unwrap().ino())).collect();
    let sidecars = all
        .iter()
        .map(|(p, _)| p)
        .filter(|p| !p.starts_with("_archives") && (p.ends_with(".json") || p.ends_with(".csv")))
        .map(|p| (p.clone(), std::fs::read(m.path(p)).unwrap_or_else(|e| panic!("{p}: {e}"))))
        .collect();
    (sidecars, all)
}

/// Overwrites every byte of `path` in place and gives it back its mtime: same size, mtime,
/// device and inode, so its identity (and its index) still holds, but no byte is the same.
fn garble_keeping_identity(path: &Path) {
    let meta = std::fs::metadata(path).unwrap();
    let garbage: Vec<u8> = std::fs::read(path).unwrap().iter().map(|b| !b).collect();
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &garbage, 0).unwrap();
    f.set_times(std::fs::FileTimes::new().set_modified(meta.modified().unwrap())).unwrap();
    drop(f);
    let after = std::fs::metadata(path).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (after.len(), after.mtime(), after.mtime_nsec(), after.ino()),
        (meta.len(), meta.mtime(), meta.mtime_nsec(), meta.ino())
    );
}

#[test]
fn a_warm_mount_reads_no_archive_byte_and_renders_no_sidecar() {
    let s = Setup::new();
    let (before, paths) = {
        let m = s.mount("m1");
        assert!(built(&m), "{}", m.stderr);
        datasets(&m)
    };
    assert!(before.contains_key("mura/patient00001/XR_WRIST_study1_positive/labels.json"), "{:?}", before.keys());
    assert!(before.keys().any(|p| p.starts_with("src/") && p.ends_with("metadata.json")), "{:?}", before.keys());
    let labels = "mura/patient00002/XR_WRIST_study1_negative/labels.json";
    assert!(String::from_utf8_lossy(&before[labels]).contains("\"label\": 1"), "from the CSV in the zip");
    // Every archive byte garbled: whatever read one (the label CSV inside the zip, a DICOM
    // header) would now fail or read nonsense; and the saved DICOM headers are gone, so a scan
    // would have to read them.
    for zip in ["MURA-v1.1.zip", "ct.zip"] {
        garble_keeping_identity(&s.src.join(zip));
    }
    for e in std::fs::read_dir(&s.idx).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|e| e == "dicom") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let m = s.mount("m2");
    assert!(loaded(&m), "{}", m.stderr);
    assert!(!m.stderr.contains("warning"), "{}", m.stderr);
    let (after, paths_after) = datasets(&m);
    assert_eq!(paths_after, paths, "the same tree, inode for inode");
    assert_eq!(after, before, "every sidecar the same bytes");
    // The garbling is real: the images themselves no longer read.
    let image = m.path("mura/patient00001/XR_WRIST_study1_positive/image1.png");
    assert!(std::fs::read(image).is_err());
}

#[test]
fn a_changed_profile_or_source_rebuilds_the_tree_silently() {
    let s = Setup::new();
    let first = {
        let m = s.mount("m1");
        assert!(built(&m), "{}", m.stderr);
        std::fs::read(m.path("mura/dataset.json")).unwrap()
    };
    {
        let m = s.mount("m2");
        assert!(loaded(&m), "{}", m.stderr);
    }
    // A profile's text changed: built again, no warning, and it shows.
    let edited = MURA.replacen("title = \"MURA v1.1", "title = \"Edited MURA v1.1", 1);
    assert_ne!(edited, MURA);
    std::fs::write(s.profiles.join("mura.toml"), edited).unwrap();
    {
        let m = s.mount("m3");
        assert!(built(&m), "{}", m.stderr);
        assert!(!m.stderr.contains("invalid"), "{}", m.stderr);
        let now = std::fs::read_to_string(m.path("mura/dataset.json")).unwrap();
        assert!(now.contains("Edited MURA"), "{now}");
        assert_ne!(now.as_bytes(), first);
    }
    {
        let m = s.mount("m4");
        assert!(loaded(&m), "{}", m.stderr);
    }
    // A loose file changed (size and mtime).
    std::fs::write(s.src.join("notes.csv"), "a,b\n1,2\n3,4\n").unwrap();
    {
        let m = s.mount("m5");
        assert!(built(&m), "{}", m.stderr);
        assert!(!m.stderr.contains("invalid"), "{}", m.stderr);
        assert_eq!(std::fs::read(m.path("_archives/notes.csv")).unwrap(), b"a,b\n1,2\n3,4\n");
    }
    // An archive replaced by another one with more members.
    std::fs::remove_file(s.src.join("ct.zip")).unwrap();
    Setup::write_ct(&s.src, 5);
    {
        let m = s.mount("m6");
        assert!(built(&m), "{}", m.stderr);
        assert!(!m.stderr.contains("invalid"), "{}", m.stderr);
        let slices = walk(&m.path("src")).iter().filter(|p| p.ends_with(".dcm")).count();
        assert_eq!(slices, 5);
    }
    {
        let m = s.mount("m7");
        assert!(loaded(&m), "{}", m.stderr);
        assert_eq!(walk(&m.path("src")).iter().filter(|p| p.ends_with(".dcm")).count(), 5);
    }
    // Profiles are parsed only when the tree is built, but a broken one still fails the mount:
    // its text is in the key, so no persisted tree matches.
    std::fs::write(s.profiles.join("broken.toml"), "title = [").unwrap();
    let mnt = s.root.join("m8");
    std::fs::create_dir_all(&mnt).unwrap();
    let (idx, profiles) = (s.idx.to_str().unwrap(), s.profiles.to_str().unwrap());
    let out = try_mount(&[&s.src], &mnt, &["--index-dir", idx, "--profiles", profiles]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("broken.toml"), "{stderr}");
}

#[test]
fn a_damaged_tree_is_rebuilt_with_a_warning() {
    let s = Setup::new();
    let (want, paths) = {
        let m = s.mount("m1");
        assert!(built(&m), "{}", m.stderr);
        datasets(&m)
    };
    let path = s.tree_file();
    let good = std::fs::read(&path).unwrap();
    // A byte of a name in the node section, a cut file, a byte of the envelope: each is found at
    // mount, warned about, and the tree is built again (then loaded silently).
    let name_at = good.windows(12).position(|w| w == b"\x0blabels.json").expect("a name in the strings");
    let damages: Vec<(&str, Vec<u8>)> = vec![
        ("name", {
            let mut b = good.clone();
            b[name_at + 3] ^= 0x20;
            b
        }),
        ("cut", good[..good.len() - 1].to_vec()),
        ("envelope", {
            let mut b = good.clone();
            b[30] ^= 1;
            b
        }),
    ];
    for (i, (what, bytes)) in damages.into_iter().enumerate() {
        std::fs::write(&path, bytes).unwrap();
        {
            let m = s.mount(&format!("d{i}"));
            assert!(m.stderr.contains("persisted tree invalid"), "{what}: {}", m.stderr);
            assert!(m.stderr.contains("warning"), "{what}: {}", m.stderr);
            assert!(built(&m), "{what}: {}", m.stderr);
            assert_eq!(datasets(&m), (want.clone(), paths.clone()), "{what}");
        }
        let m = s.mount(&format!("w{i}"));
        assert!(loaded(&m), "{what}: {}", m.stderr);
        assert!(!m.stderr.contains("warning"), "{what}: {}", m.stderr);
    }
    // A byte of a generated file: checked when read (the tree loads), that read fails with EIO
    // and nothing else, and the file is removed so the next mount builds it again.
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    {
        let m = s.mount("g1");
        assert!(loaded(&m), "{}", m.stderr);
        let failed: Vec<&String> = want.keys().filter(|p| std::fs::read(m.path(p)).is_err()).collect();
        assert!(!failed.is_empty(), "a damaged block is refused");
        let err = std::fs::read(m.path(failed[0])).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EIO));
        assert!(!path.exists(), "the damaged file is removed");
    }
    let m = s.mount("g2");
    assert!(built(&m), "{}", m.stderr);
    assert_eq!(datasets(&m), (want, paths));
}
