//! Shared test fixtures: archives generated in temp folders, and real FUSE mounts that unmount
//! themselves even when a test fails.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The medfs binary under test, with its persistent indexes in a folder of the test run's own
/// (never the user's cache).
pub fn medfs() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_medfs"));
    cmd.env("XDG_CACHE_HOME", std::env::temp_dir().join(format!("medfs-test-cache-{}", std::process::id())));
    cmd
}

/// Deterministic pseudo-random bytes (xorshift), compressible when `text` is set.
pub fn bytes(len: usize, seed: u64, text: bool) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if text { b"ACGT \n"[(x % 6) as usize] } else { x as u8 }
        })
        .collect()
}

/// A file to put in a test archive.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Path inside the archive (a trailing `/` makes a directory).
    pub path: String,
    /// Content.
    pub data: Vec<u8>,
}

/// Shorthand.
pub fn entry(path: &str, data: Vec<u8>) -> Entry {
    Entry { path: path.into(), data }
}

/// How zip members are stored.
#[derive(Clone, Copy, Debug)]
pub enum ZipMethod {
    Stored,
    Deflated,
}

/// Writes a zip with the `zip` crate.
pub fn make_zip(path: &Path, entries: &[Entry], method: ZipMethod) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = zip::ZipWriter::new(file);
    let method = match method {
        ZipMethod::Stored => zip::CompressionMethod::Stored,
        ZipMethod::Deflated => zip::CompressionMethod::Deflated,
    };
    for e in entries {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .large_file(e.data.len() > u32::MAX as usize)
            .last_modified_time(zip::DateTime::from_date_and_time(2020, 5, 17, 10, 30, 0).unwrap());
        if e.path.ends_with('/') {
            w.add_directory(e.path.trim_end_matches('/'), opts).unwrap();
        } else {
            w.start_file(e.path.as_str(), opts).unwrap();
            w.write_all(&e.data).unwrap();
        }
    }
    w.finish().unwrap();
}

/// Writes a tar (GNU long names as needed) with the `tar` crate into a byte vector.
pub fn tar_bytes(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_600_000_000);
        if e.path.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            b.append_data(&mut h, &e.path, &[][..]).unwrap();
        } else {
            h.set_mode(0o644);
            h.set_size(e.data.len() as u64);
            b.append_data(&mut h, &e.path, &e.data[..]).unwrap();
        }
    }
    b.into_inner().unwrap()
}

/// Writes a plain tar.
pub fn make_tar(path: &Path, entries: &[Entry]) {
    std::fs::write(path, tar_bytes(entries)).unwrap();
}

/// Writes a tar.gz.
pub fn make_tar_gz(path: &Path, entries: &[Entry]) {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar_bytes(entries)).unwrap();
    std::fs::write(path, gz.finish().unwrap()).unwrap();
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
