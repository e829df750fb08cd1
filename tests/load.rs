//! Load test (item 7): a mixed pool (big deflated zip members, a tar.gz of small and mid-size
//! members, a multi-block tar.xz, a zip of small DICOM files) mounted with `--cache-size 64M`,
//! read by 16 threads at random members, offsets and lengths through the kernel, every byte
//! checked against the originals the test holds, while the daemon's RSS is sampled every second.
//!
//! Asserts: no read error, every byte equal, and RSS max <= cache + tree + 64 MiB, where "tree" is
//! the daemon's RSS right after the mount answers, before any file read.
//!
//! Default: 10 s of reading (part of `cargo test`). The long form, one command:
//!
//! ```text
//! MEDFS_LOAD_SECONDS=60 cargo test --release --test load -- --nocapture
//! ```
//!
//! `MEDFS_LOAD_SEED` picks another seed for the readers (the pool itself is always the same).

mod common;

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Entry, bytes, daemon_pid, entry, make_tar_gz, mount, tar_bytes};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const MIB: usize = 1 << 20;
/// The `--cache-size` of the mount, in MiB.
const CACHE_MIB: u64 = 64;
/// What the daemon may use beyond the cache and the tree (buffers, threads, allocator), in MiB.
const SLACK_MIB: u64 = 64;
const THREADS: usize = 16;

/// One member of the pool as the test expects to read it through the mount.
struct Member {
    /// Path relative to the mountpoint.
    rel: String,
    data: Arc<Vec<u8>>,
}

/// The pool's archives: name in the source folder, members (path inside the archive, bytes).
struct Archive {
    name: &'static str,
    members: Vec<(String, Arc<Vec<u8>>)>,
}

/// Noisy text (6 symbols, about 2.6 bits per byte): deflates about 2.5x, so inflating is real work.
fn text(len: usize, seed: u64) -> Vec<u8> {
    bytes(len, seed, true)
}

/// Writes a deflated zip at level 1 (fast to build, still real deflate streams to inflate).
fn write_zip(path: &Path, members: &[(String, Arc<Vec<u8>>)]) {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1))
        .last_modified_time(zip::DateTime::from_date_and_time(2020, 5, 17, 10, 30, 0).unwrap());
    for (p, data) in members {
        w.start_file(p.as_str(), opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap();
}

/// A small DICOM file (patient, study, series, instance) ending with `pixels` bytes of noise.
fn dicom(patient: &str, study: &str, series: &str, instance: u32, pixels: usize) -> Vec<u8> {
    use medfs::fixtures::Dv::{Raw, Text, Uid, Us};
    let sop = format!("{series}.{instance}");
    // 4-bit noise, like CT pixels: compressible, not trivially.
    let noise: Vec<u8> = bytes(pixels & !1, instance as u64 + 7, false).iter().map(|b| b & 0x0F).collect();
    medfs::fixtures::dicom(&[
        (8, 0x16, Uid("1.2.840.10008.5.1.4.1.1.2")),
        (8, 0x18, Uid(&sop)),
        (8, 0x20, Text("20200101")),
        (8, 0x60, Text("CT")),
        (0x10, 0x20, Text(patient)),
        (0x20, 0x0D, Uid(study)),
        (0x20, 0x0E, Uid(series)),
        (0x20, 0x13, Text(&instance.to_string())),
        (0x28, 0x10, Us(64)),
        (0x28, 0x11, Us(64)),
        (0x7FE0, 0x10, Raw(&noise)),
    ])
}

/// Builds the pool in `dir` and returns what each archive holds.
fn build_pool(dir: &Path) -> Vec<Archive> {
    let mut rng = StdRng::seed_from_u64(8);
    let arc = |v: Vec<u8>| Arc::new(v);

    // 1. Big deflated zip members (NIfTI-like volumes): 8 x 12 MiB of noisy text.
    let big: Vec<(String, Arc<Vec<u8>>)> =
        (0..8).map(|i| (format!("volumes/sub-{i:02}/t1.nii"), arc(text(12 * MIB, 100 + i)))).collect();
    write_zip(&dir.join("volumes.zip"), &big);

    // 2. A tar.gz of 300 small members (1-64 KiB) and 8 members of 1-4 MiB, interleaved.
    let mut tgz: Vec<(String, Arc<Vec<u8>>)> = Vec::new();
    for i in 0..308u64 {
        let len = if i % 38 == 37 { rng.random_range(MIB..=4 * MIB) } else { rng.random_range(1024..=64 * 1024) };
        tgz.push((format!("images/p{:03}/img{i:04}.png", i / 10), arc(bytes(len, 1000 + i, i % 2 == 0))));
    }
    let entries: Vec<Entry> = tgz.iter().map(|(p, d)| entry(p, d.to_vec())).collect();
    make_tar_gz(&dir.join("images.tar.gz"), &entries);

    // 3. A tar.xz in 1 MiB xz blocks (seek points at block starts): 40 members of 64 KiB-2 MiB.
    let mut txz: Vec<(String, Arc<Vec<u8>>)> = Vec::new();
    for i in 0..40u64 {
        let len = rng.random_range(64 * 1024..=2 * MIB);
        txz.push((format!("masks/case{i:02}/seg.nii"), arc(text(len, 5000 + i))));
    }
    let entries: Vec<Entry> = txz.iter().map(|(p, d)| entry(p, d.to_vec())).collect();
    let tar = dir.join("masks.tar");
    std::fs::write(&tar, tar_bytes(&entries)).unwrap();
    let st = Command::new("xz").args(["-1", "-T1", "--block-size=1MiB", "-f"]).arg(&tar).status().expect("run xz");
    assert!(st.success(), "xz failed");
    assert!(dir.join("masks.tar.xz").exists());

    // 4. A zip of 400 small DICOM slices (8-64 KiB of pixels), 4 patients x 2 series.
    let mut dcm: Vec<(String, Arc<Vec<u8>>)> = Vec::new();
    for i in 0..400u32 {
        let (p, s) = (i / 100, (i / 50) % 2);
        let study = format!("1.2.826.0.1.3680043.8.498.{p}");
        let series = format!("{study}.{s}");
        let pixels = rng.random_range(8 * 1024..=64 * 1024);
        let data = dicom(&format!("PAT{p:03}"), &study, &series, i, pixels);
        dcm.push((format!("CT/PAT{p:03}/{s}/slice{i:04}.dcm"), arc(data)));
    }
    write_zip(&dir.join("slices.zip"), &dcm);

    vec![
        Archive { name: "volumes.zip", members: big },
        Archive { name: "images.tar.gz", members: tgz },
        Archive { name: "masks.tar.xz", members: txz },
        Archive { name: "slices.zip", members: dcm },
    ]
}

/// VmRSS of `pid` in bytes.
fn rss(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// CPU seconds (user + system) `pid` has used so far.
fn cpu_seconds(pid: i32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = rest.get(11)?.parse::<f64>().ok()? + rest.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf only reads a configuration value; it takes no pointers.
    Some(ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64)
}

fn mib(b: u64) -> f64 {
    b as f64 / MIB as f64
}

#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    whole: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    mismatches: AtomicU64,
    /// The first few failures, for the message.
    first: Mutex<Vec<String>>,
}

impl Stats {
    fn fail(&self, counter: &AtomicU64, what: String) {
        counter.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first.lock().unwrap();
        if first.len() < 10 {
            first.push(what);
        }
    }
}

/// One request: a whole-file read (5%) or `read_at` of 4 KiB..1 MiB at a random offset. The
/// file's pages are dropped afterwards (POSIX_FADV_DONTNEED) so that later reads reach the daemon.
fn one_read(rng: &mut StdRng, m: &Member, path: &Path, buf: &mut Vec<u8>, stats: &Stats) {
    let size = m.data.len();
    stats.requests.fetch_add(1, Ordering::Relaxed);
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return stats.fail(&stats.errors, format!("open {}: {e}", m.rel)),
    };
    if rng.random_bool(0.05) {
        stats.whole.fetch_add(1, Ordering::Relaxed);
        let mut got = Vec::with_capacity(size);
        match std::io::Read::read_to_end(&mut &file, &mut got) {
            Err(e) => stats.fail(&stats.errors, format!("read whole {}: {e}", m.rel)),
            Ok(_) if got[..] != m.data[..] => {
                let at = got.iter().zip(m.data.iter()).position(|(a, b)| a != b).unwrap_or(got.len().min(size));
                stats.fail(
                    &stats.mismatches,
                    format!("{} whole: {} bytes read of {size}, first diff at {at}", m.rel, got.len()),
                )
            }
            Ok(n) => {
                stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    } else {
        let len = (4096usize << rng.random_range(0..=8u32)).min(MIB);
        let len = rng.random_range(len / 2..=len).max(4096);
        let off = rng.random_range(0..size as u64);
        let want = len.min(size - off as usize);
        buf.resize(len, 0);
        let mut done = 0;
        // read_at may return short counts: loop until EOF or `len`.
        while done < len {
            match file.read_at(&mut buf[done..], off + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return stats.fail(&stats.errors, format!("read_at {} @{off}+{len}: {e}", m.rel)),
            }
        }
        let exp = &m.data[off as usize..off as usize + want];
        if done != want || buf[..done] != exp[..] {
            let at = buf[..done].iter().zip(exp.iter()).position(|(a, b)| a != b);
            stats.fail(
                &stats.mismatches,
                format!("{} @{off}+{len}: got {done} bytes of {want}, first diff {at:?}", m.rel),
            );
        } else {
            stats.bytes.fetch_add(done as u64, Ordering::Relaxed);
        }
    }
    // SAFETY: `file` is open for the whole call; posix_fadvise only advises the kernel about it.
    unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
}

#[test]
fn sixteen_readers_on_a_mixed_pool_get_exact_bytes_within_the_memory_bound() {
    let seconds: u64 = std::env::var("MEDFS_LOAD_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let seed: u64 = std::env::var("MEDFS_LOAD_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(7);
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("pool");
    std::fs::create_dir(&src).unwrap();
    let built = Instant::now();
    let archives = build_pool(&src);
    let raw: usize = archives.iter().flat_map(|a| a.members.iter().map(|m| m.1.len())).sum();
    let on_disk: u64 = std::fs::read_dir(&src).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    eprintln!(
        "load: pool of {} archives, {:.1} MiB raw, {:.1} MiB on disk, built in {:.1} s",
        archives.len(),
        mib(raw as u64),
        mib(on_disk),
        built.elapsed().as_secs_f64()
    );

    let mnt: PathBuf = tmp.path().join("mnt");
    let cache = format!("{CACHE_MIB}M");
    let mounted = mount(&[&src], &mnt, &["--cache-size", &cache]);
    let pid = daemon_pid(&mnt).expect("the daemon's pid (a medfs process with the mountpoint in its cmdline)");
    // The tree: the daemon right after the mount answered, before any file is read, once its
    // RSS has settled (within 1 MiB over 0.5 s; at most 5 s).
    let settle = Instant::now();
    let mut recent = vec![rss(pid).expect("daemon RSS")];
    while settle.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(100));
        recent.push(rss(pid).expect("daemon RSS"));
        let last = &recent[recent.len().saturating_sub(6)..];
        if last.len() == 6 && last.iter().max().unwrap() - last.iter().min().unwrap() < MIB as u64 {
            break;
        }
    }
    let tree = *recent.last().unwrap();
    eprintln!(
        "load: tree RSS settled in {:.1} s: first {:.1} MiB, last {:.1} MiB",
        settle.elapsed().as_secs_f64(),
        mib(recent[0]),
        mib(tree)
    );
    let cpu_before = cpu_seconds(pid).unwrap_or(0.0);

    // Every member, with its exact size, as the mount shows it.
    let members: Vec<Vec<Member>> = archives
        .iter()
        .map(|a| {
            a.members
                .iter()
                .map(|(p, d)| Member { rel: format!("_archives/{}/{p}", a.name), data: d.clone() })
                .collect()
        })
        .collect();
    for m in members.iter().flatten() {
        let len = std::fs::metadata(mounted.path(&m.rel)).unwrap_or_else(|e| panic!("{}: {e}", m.rel)).len();
        assert_eq!(len, m.data.len() as u64, "size of {}", m.rel);
    }

    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::<u64>::new()));
    let sampler = {
        let (stop, samples, stats) = (stop.clone(), samples.clone(), stats.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match rss(pid) {
                    Some(r) => samples.lock().unwrap().push(r),
                    None => {
                        stats.fail(&stats.errors, format!("daemon {pid} gone"));
                        return;
                    }
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };
    let per_archive: Arc<Vec<AtomicU64>> = Arc::new(archives.iter().map(|_| AtomicU64::new(0)).collect());
    let members = Arc::new(members);
    let mnt_root = Arc::new(mnt.clone());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let readers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (members, stats, per_archive, root) =
                (members.clone(), stats.clone(), per_archive.clone(), mnt_root.clone());
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(1000) + t as u64);
                let mut buf = Vec::new();
                while Instant::now() < deadline {
                    // An archive, then a member of it: the 8 big members get a quarter of the reads.
                    let a = rng.random_range(0..members.len());
                    let m = &members[a][rng.random_range(0..members[a].len())];
                    per_archive[a].fetch_add(1, Ordering::Relaxed);
                    one_read(&mut rng, m, &root.join(&m.rel), &mut buf, &stats);
                }
            })
        })
        .collect();
    for r in readers {
        r.join().expect("reader thread");
    }
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    if let Some(r) = rss(pid) {
        samples.lock().unwrap().push(r);
    }
    let daemon_cpu = cpu_seconds(pid).unwrap_or(0.0) - cpu_before;

    let mut rs = samples.lock().unwrap().clone();
    rs.sort_unstable();
    let (requests, bytes_ok) = (stats.requests.load(Ordering::Relaxed), stats.bytes.load(Ordering::Relaxed));
    let (errors, mismatches) = (stats.errors.load(Ordering::Relaxed), stats.mismatches.load(Ordering::Relaxed));
    let bound = (CACHE_MIB + SLACK_MIB) * MIB as u64 + tree;
    let max = rs.last().copied().unwrap_or(0);
    let by_archive: HashMap<&str, u64> =
        archives.iter().zip(per_archive.iter()).map(|(a, n)| (a.name, n.load(Ordering::Relaxed))).collect();
    eprintln!(
        "load: {THREADS} threads, {elapsed:.1} s, seed {seed}: {requests} requests ({} whole-file, {:.0}/s), \
         {:.1} MiB checked ({:.1} MiB/s), {errors} errors, {mismatches} mismatches; daemon CPU {daemon_cpu:.1} s; \
         per archive {by_archive:?}",
        stats.whole.load(Ordering::Relaxed),
        requests as f64 / elapsed,
        mib(bytes_ok),
        mib(bytes_ok) / elapsed
    );
    eprintln!(
        "load: daemon RSS: tree {:.1} MiB; {} samples min {:.1} / median {:.1} / max {:.1} MiB; \
         bound cache {CACHE_MIB} + tree {:.1} + {SLACK_MIB} = {:.1} MiB",
        mib(tree),
        rs.len(),
        mib(rs.first().copied().unwrap_or(0)),
        mib(rs.get(rs.len() / 2).copied().unwrap_or(0)),
        mib(max),
        mib(tree),
        mib(bound)
    );
    let first = stats.first.lock().unwrap().join("\n  ");
    assert_eq!(errors, 0, "read errors:\n  {first}");
    assert_eq!(mismatches, 0, "wrong bytes:\n  {first}");
    assert!(requests >= THREADS as u64, "too few requests ({requests}) to mean anything");
    assert!(rs.len() as u64 >= seconds / 2, "too few RSS samples: {}", rs.len());
    assert!(
        max <= bound,
        "daemon RSS max {:.1} MiB exceeds cache {CACHE_MIB} MiB + tree {:.1} MiB + {SLACK_MIB} MiB = {:.1} MiB",
        mib(max),
        mib(tree),
        mib(bound)
    );
    drop(mounted);
}
