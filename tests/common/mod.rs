//! Shared test helpers: archives written in temp folders (through `medfs::fixtures`, which the
//! demo uses too), and real FUSE mounts that unmount themselves even when a test fails.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The medfs binary under test, with its persistent indexes in a folder of the test run's own
/// (never the user's cache), removed when the test binary exits.
pub fn medfs() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_medfs"));
    cmd.env("XDG_CACHE_HOME", test_cache());
    cmd
}

/// The test binary's cache folder; the first call arranges its removal at exit (libtest exits
/// the process with the statics alive, so no destructor would run).
fn test_cache() -> PathBuf {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    extern "C" fn remove_test_cache() {
        let _ = std::fs::remove_dir_all(cache_path());
    }
    fn cache_path() -> PathBuf {
        std::env::temp_dir().join(format!("medfs-test-cache-{}", std::process::id()))
    }
    REGISTERED.call_once(|| {
        // SAFETY: `remove_test_cache` is a plain `extern "C" fn()` that does not unwind (errors
        // are ignored) and touches no state that exit has torn down but the file system.
        unsafe {
            libc::atexit(remove_test_cache);
        }
    });
    cache_path()
}

#[allow(unused_imports)] // not every test crate uses each
pub use medfs::fixtures::{Entry, ZipMethod, entry, noise as bytes};

/// Writes a zip with the `zip` crate ([`medfs::fixtures::write_zip`]).
pub fn make_zip(path: &Path, entries: &[Entry], method: ZipMethod) {
    medfs::fixtures::write_zip(path, entries, method).unwrap();
}

/// A tar (GNU long names as needed) with the `tar` crate, in memory.
pub fn tar_bytes(entries: &[Entry]) -> Vec<u8> {
    medfs::fixtures::tar_bytes(entries).unwrap()
}

/// Writes a plain tar.
pub fn make_tar(path: &Path, entries: &[Entry]) {
    medfs::fixtures::write_tar(path, entries).unwrap();
}

/// Writes the 7z archive `out` of `entries` with the `7z` tool (`7z a` plus `flags`), staged in
/// a folder beside it that is removed afterwards.
pub fn make_7z(out: &Path, entries: &[Entry], flags: &[&str]) {
    let staging = out.with_extension("7z.staging");
    for e in entries {
        let p = staging.join(&e.path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, &e.data).unwrap();
    }
    let status = Command::new("7z")
        .args(["a", "-bd"])
        .args(flags)
        .arg(out)
        .arg(".")
        .current_dir(&staging)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("the 7z tool (p7zip-full) is installed");
    assert!(status.success(), "7z a {} failed", out.display());
    std::fs::remove_dir_all(&staging).unwrap();
}

/// Writes a tar.gz.
pub fn make_tar_gz(path: &Path, entries: &[Entry]) {
    medfs::fixtures::write_tar_gz(path, entries).unwrap();
}

/// A live medfs mount; unmounted on drop, whatever happened in the test.
pub struct Mounted {
    pub mnt: PathBuf,
    pub stderr: String,
}

impl Mounted {
    /// Path of `rel` inside the mount.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.mnt.join(rel)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        unmount(&self.mnt);
    }
}

/// Unmounts `mnt` with medfs, falling back to a lazy umount so nothing is left behind.
pub fn unmount(mnt: &Path) {
    let ok = medfs().arg("unmount").arg(mnt).output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        let _ = Command::new("umount").arg("-l").arg(mnt).status();
    }
}

/// Runs `medfs mount EXTRA... SOURCES... MNT` (daemonized) and returns its output.
pub fn try_mount(sources: &[&Path], mnt: &Path, extra: &[&str]) -> Output {
    let mut cmd = medfs();
    cmd.arg("mount").args(extra).args(sources).arg(mnt);
    cmd.arg("--log-file").arg(mnt.with_extension("log"));
    cmd.output().expect("run medfs")
}

/// Mounts through FUSE or fails the test loudly (FUSE missing is a failure, never a skip).
pub fn mount(sources: &[&Path], mnt: &Path, extra: &[&str]) -> Mounted {
    // A dead mountpoint (ENOTCONN) cannot be created or stat'ed: medfs mount must clean it up.
    let _ = std::fs::create_dir_all(mnt);
    let out = try_mount(sources, mnt, extra);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "medfs mount failed (is FUSE available? /dev/fuse, root): {stderr}");
    Mounted { mnt: mnt.to_path_buf(), stderr }
}

/// Every path under `root` (relative, sorted), directories with a trailing `/`.
pub fn walk(root: &Path) -> Vec<String> {
    fn go(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                out.push(format!("{rel}/"));
                go(root, &p, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    go(root, root, &mut out);
    out.sort();
    out
}

/// Waits until `cond` holds or `timeout` passes.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// The daemon serving `mnt` (the process with `mnt` in its command line holding /dev/fuse).
pub fn daemon_pid(mnt: &Path) -> Option<i32> {
    let want = mnt.to_string_lossy().into_owned();
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let args: Vec<String> = cmdline.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if args.iter().any(|a| a == "mount") && args.contains(&want) && args[0].contains("medfs") {
            return Some(pid);
        }
    }
    None
}

/// Is `path` a mountpoint right now (per /proc/self/mountinfo)?
pub fn is_mounted(path: &Path) -> bool {
    let Ok(canon) = std::fs::canonicalize(path) else { return false };
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let want = canon.to_string_lossy().replace(' ', "\\040");
    info.lines().any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// The Python the client tests use: the venv `./test.sh` sets up (`MEDFS_PYTHON`).
pub fn python() -> String {
    std::env::var("MEDFS_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Python that the client tests put before their scripts: `save_ct_slice(ds, path, k, syntax)`
/// completes `ds` as a 16x16 16-bit CT slice of pixels `arange(256) * k` and saves it as a Part 10
/// file in transfer syntax `syntax`.
pub const PY_CT_SLICE: &str = r#"
import numpy as np
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage
def save_ct_slice(ds, path, k, syntax):
    ds.SOPClassUID = CTImageStorage
    ds.Rows, ds.Columns = 16, 16
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.SamplesPerPixel, ds.PixelRepresentation = 1, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = (np.arange(256, dtype=np.uint16) * k).tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = syntax
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)
"#;

/// Runs a Python snippet with `args`; fails the test with its output if it fails (pydicom or
/// nibabel missing included: never a silent skip).
pub fn py(script: &str, args: &[&Path]) -> String {
    let out = Command::new(python()).arg("-c").arg(script).args(args).output().expect("python runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "python failed (run ./test.sh, which sets up pydicom and nibabel in a venv):\n{stdout}\n{stderr}"
    );
    stdout.into_owned()
}

/// The block files under a disk cache folder (`--disk-cache-dir`), sorted, with their mtimes in
/// ns (a hit sets the mtime: the cache's LRU order).
#[allow(dead_code)] // not every test crate uses each
pub fn disk_blocks(dir: &Path) -> Vec<(PathBuf, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    for folder in std::fs::read_dir(dir).into_iter().flatten().flatten().filter(|f| f.path().is_dir()) {
        for f in std::fs::read_dir(folder.path()).unwrap().flatten() {
            if f.path().extension().is_some_and(|e| e == "blk") {
                let m = f.metadata().unwrap();
                out.push((f.path(), m.mtime() * 1_000_000_000 + m.mtime_nsec()));
            }
        }
    }
    out.sort();
    out
}

/// Reads `p` through the mount, checking `st_size` before and after against the bytes read.
pub fn read_checked(p: &Path) -> Vec<u8> {
    let before = std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).len();
    let bytes = std::fs::read(p).unwrap();
    assert_eq!(bytes.len() as u64, before, "{}: st_size before the first read", p.display());
    assert_eq!(std::fs::metadata(p).unwrap().len(), before, "{}: st_size after", p.display());
    bytes
}
