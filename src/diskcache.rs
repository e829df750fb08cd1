//! The disk cache of decoded blocks (`--disk-cache-size`): blocks that cost a long decode to
//! reach (deep in a single-block xz or zstd stream, later a 7z solid block) kept as files under
//! `$XDG_CACHE_HOME/medfs/blocks/`, bounded in bytes, evicted least-recently-used, shared by
//! every medfs process of the user.
//!
//! Layout: one folder per archive identity (named by a hash of it) holding an `archive` marker
//! (the identity and, for split archives, its parts, in the `persist.rs` envelope) and one file
//! per block, `<stream>-<block>.blk`, each sealed by the same envelope with the archive's
//! identity, so a corrupt, truncated, foreign or older-format file is a miss and is deleted,
//! never served. Beside the folders, `.lock` holds the bytes in use (8 bytes, little-endian).
//!
//! Safety across threads and processes:
//! - a block is written to a temporary file and renamed into place, so readers see no block or
//!   a whole one (concurrent writers of one key both publish whole files; the last one stays);
//! - the byte count and eviction are updated under an exclusive `flock` on `.lock`; a reader
//!   needs no lock (a block deleted while being read stays readable through its open file);
//! - use is recorded in each file's mtime (set on every hit), which orders eviction; eviction
//!   scans every block, so it runs only once the count passes the bound and then frees down to
//!   90% of it, and it recounts the bytes from disk (mending any drift left by a crash).
//!
//! Staleness: [`DiskCache::sweep`] (run at startup in the background, bounded in time) removes
//! folders whose archive no longer exists or changed, folders of another format version, and
//! temporary files left by a crash.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::persist::{self, Identity, Kind, Miss};

/// A cached block file. Bump `version` when the payload changes: older blocks become misses and
/// the sweep removes their folders (the marker shares the version).
const BLOCK: Kind = Kind { name: "block", magic: *b"MEDFSBLK", version: 1 };
/// The marker of an archive's folder.
const MARKER: Kind = Kind { name: "block folder", magic: *b"MEDFSBLD", version: BLOCK.version };
/// The identity a marker is sealed with: the archive's own identity is its payload, so the sweep
/// can read it without knowing it.
fn marker_seal() -> Identity {
    Identity { path: b"medfs-blocks".to_vec(), size: 0, mtime_ns: 0, dev: 0, ino: 0 }
}
const MARKER_FILE: &str = "archive";
const LOCK_FILE: &str = ".lock";
const TMP_PREFIX: &str = ".medfs-";
/// Temporary files older than this are left by a crash (a write takes milliseconds).
const STALE_TMP: Duration = Duration::from_secs(600);
/// The default bound: this fraction of the free space where the cache lives, at most
/// [`DEFAULT_MAX`].
const DEFAULT_FREE_FRACTION: u64 = 10;
/// The default bound's ceiling.
pub const DEFAULT_MAX: u64 = 20 << 30;

/// `$XDG_CACHE_HOME/medfs/blocks`, else `~/.cache/medfs/blocks` (beside the index folder).
pub fn default_dir() -> Option<PathBuf> {
    crate::index::IndexStore::default_dir().and_then(|d| d.parent().map(|p| p.join("blocks")))
}

/// The default bound for a cache in `dir`: min(10% of the free space of its filesystem, 20 GiB);
/// 0 (disabled) when the filesystem cannot be asked.
pub fn default_capacity(dir: &Path) -> u64 {
    let mut probe = dir;
    // The folder may not exist yet: ask its nearest existing ancestor's filesystem.
    while !probe.exists() {
        match probe.parent() {
            Some(p) => probe = p,
            None => return 0,
        }
    }
    match nix::sys::statvfs::statvfs(probe) {
        Ok(s) => {
            // Both are u64 here but narrower on 32-bit targets.
            #[allow(clippy::unnecessary_cast)]
            let free = (s.blocks_available() as u64).saturating_mul(s.fragment_size() as u64);
            (free / DEFAULT_FREE_FRACTION).min(DEFAULT_MAX)
        }
        Err(_) => 0,
    }
}

/// Which block: an archive (by identity), a stream or folder of it, a block number.
#[derive(Clone, Copy, Debug)]
pub struct DiskKey<'a> {
    /// The archive.
    pub archive: &'a Identity,
    /// A stream of it (`compressed::ARCHIVE_STREAM`) or a 7z folder.
    pub stream: u32,
    /// The block's number in that stream.
    pub block: u64,
}

/// What a sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Archive folders removed (archive gone or changed, other version, no marker).
    pub folders: usize,
    /// Temporary files removed.
    pub temporary: usize,
    /// True when the time ran out before every folder was looked at.
    pub cut_short: bool,
}

/// The disk cache of one user, shared by every mount of that user.
#[derive(Debug)]
pub struct DiskCache {
    dir: PathBuf,
    capacity: u64,
}

impl DiskCache {
    /// The cache in `dir` bounded by `capacity` bytes (`dir` is created).
    pub fn open(dir: PathBuf, capacity: u64) -> io::Result<Arc<DiskCache>> {
        fs::create_dir_all(&dir).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
        Ok(Arc::new(DiskCache { dir, capacity }))
    }

    /// Opens the cache and sweeps stale entries in a background thread (so a mount never waits
    /// for it), for at most `sweep_for`.
    pub fn open_and_sweep(dir: PathBuf, capacity: u64, sweep_for: Duration) -> io::Result<Arc<DiskCache>> {
        let cache = DiskCache::open(dir, capacity)?;
        let sweeper = cache.clone();
        std::thread::Builder::new().name("medfs-disk-sweep".into()).spawn(move || {
            let swept = sweeper.sweep(sweep_for);
            if swept != Swept::default() {
                tracing::info!("disk cache {}: swept {swept:?}", sweeper.dir.display());
            }
            if let Err(e) = sweeper.with_lock(|used| sweeper.evict(used, true)) {
                tracing::warn!("disk cache {}: {e}", sweeper.dir.display());
            }
        })?;
        Ok(cache)
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The bound in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The handle of one archive's blocks; `parts` are its byte-split parts (empty for one file),
    /// which the sweep needs to tell whether it still exists.
    pub fn archive(self: &Arc<Self>, identity: Identity, parts: &[PathBuf]) -> ArchiveBlocks {
        ArchiveBlocks {
            cache: self.clone(),
            identity: Arc::new(identity),
            parts: Arc::new(parts.iter().map(|p| p.as_os_str().as_bytes().to_vec()).collect()),
        }
    }

    fn folder_of(&self, archive: &Identity) -> PathBuf {
        self.dir.join(format!("{:016x}", persist::fnv1a64(&persist::encode(archive))))
    }

    fn file_of(&self, key: &DiskKey<'_>) -> PathBuf {
        self.folder_of(key.archive).join(format!("{:08x}-{:016x}.blk", key.stream, key.block))
    }

    /// The block, if a whole, checked copy is on disk; a corrupt or foreign one is deleted.
    /// A hit marks the block as recently used.
    pub fn get(&self, key: &DiskKey<'_>) -> Option<Vec<u8>> {
        let path = self.file_of(key);
        match persist::load::<(u32, u64, serde_bytes::ByteBuf)>(&BLOCK, &path, key.archive) {
            Ok(opened) => {
                let (stream, block, bytes) = opened.value;
                if (stream, block) != (key.stream, key.block) {
                    self.discard(&path, "a block under another block's name");
                    return None;
                }
                // The use time orders eviction; failing to set it only makes eviction less exact.
                let _ = File::open(&path).and_then(|f| f.set_modified(SystemTime::now()));
                Some(bytes.into_vec())
            }
            Err(Miss::Absent) => None,
            Err(Miss::Invalid(why)) => {
                self.discard(&path, &why);
                None
            }
        }
    }

    /// True when a file for the block exists (not checked: for skipping a write).
    pub fn contains(&self, key: &DiskKey<'_>) -> bool {
        self.file_of(key).exists()
    }

    /// Stores the block (replacing any copy), then evicts the least recently used blocks if the
    /// cache went over its bound. A block bigger than the whole bound is not stored.
    pub fn put(&self, key: &DiskKey<'_>, parts: &[Vec<u8>], bytes: &[u8]) -> io::Result<()> {
        let payload = persist::encode(&(key.stream, key.block, serde_bytes::Bytes::new(bytes)));
        let sealed = persist::seal(&BLOCK, key.archive, &payload);
        if sealed.len() as u64 > self.capacity {
            return Ok(());
        }
        let folder = self.folder_of(key.archive);
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", folder.display()));
        let marker = folder.join(MARKER_FILE);
        if !marker.exists() {
            persist::save(&MARKER, &marker, &marker_seal(), &(key.archive, parts), &[])?;
        }
        // No fsync: a block is recomputable, and one torn by a crash fails its checksum.
        let mut tmp = tempfile::Builder::new().prefix(TMP_PREFIX).suffix(".tmp").tempfile_in(&folder).map_err(named)?;
        tmp.write_all(&sealed).map_err(named)?;
        let path = self.file_of(key);
        self.with_lock(|used| {
            let replaced = fs::metadata(&path).map_or(0, |m| m.len());
            tmp.persist(&path).map_err(|e| named(e.error))?;
            *used = used.saturating_sub(replaced) + sealed.len() as u64;
            if *used > self.capacity {
                self.evict(used, false)?;
            }
            Ok(())
        })
    }

    /// Bytes in use, as counted in the lock file.
    pub fn used(&self) -> io::Result<u64> {
        self.with_lock(|used| Ok(*used))
    }

    /// Removes a bad file and its bytes from the count.
    fn discard(&self, path: &Path, why: &str) {
        tracing::info!("disk cache: {}: {why}; removed", path.display());
        let _ = self.with_lock(|used| {
            if let Ok(m) = fs::metadata(path) {
                *used = used.saturating_sub(m.len());
            }
            let _ = fs::remove_file(path);
            Ok(())
        });
    }

    /// Runs `f` on the byte count under the exclusive lock, and saves the count it leaves.
    fn with_lock<T>(&self, f: impl FnOnce(&mut u64) -> io::Result<T>) -> io::Result<T> {
        let path = self.dir.join(LOCK_FILE);
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        let file =
            fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(named)?;
        // Released when the guard (and with it the file) is dropped.
        let mut file = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| named(io::Error::from(e)))?;
        let mut raw = [0u8; 8];
        let mut used = match file.read_exact(&mut raw) {
            Ok(()) => u64::from_le_bytes(raw),
            Err(_) => 0,
        };
        let before = used;
        let out = f(&mut used);
        if used != before {
            file.seek(SeekFrom::Start(0)).map_err(named)?;
            file.write_all(&used.to_le_bytes()).map_err(named)?;
        }
        out
    }

    /// Scans every block; with `always` false only when over the bound, it then deletes the least
    /// recently used ones until 90% of the bound is left. Sets `used` to the bytes on disk.
    fn evict(&self, used: &mut u64, always: bool) -> io::Result<()> {
        if !always && *used <= self.capacity {
            return Ok(());
        }
        let mut blocks = Vec::new();
        for folder in fs::read_dir(&self.dir)?.flatten() {
            let Ok(files) = fs::read_dir(folder.path()) else { continue };
            for f in files.flatten() {
                if !f.file_name().as_bytes().ends_with(b".blk") {
                    continue;
                }
                if let Ok(m) = f.metadata() {
                    blocks.push((m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len(), f.path()));
                }
            }
        }
        let mut total: u64 = blocks.iter().map(|b| b.1).sum();
        if total > self.capacity {
            let low = self.capacity / 10 * 9;
            blocks.sort_unstable_by_key(|b| b.0);
            for (_, len, path) in blocks {
                if total <= low {
                    break;
                }
                if fs::remove_file(&path).is_ok() {
                    total -= len;
                }
            }
        }
        *used = total;
        Ok(())
    }

    /// Removes folders of archives that are gone or changed, of another format version or
    /// without a marker, and temporary files left by a crash; stops after `time`.
    pub fn sweep(&self, time: Duration) -> Swept {
        let deadline = Instant::now() + time;
        let mut swept = Swept::default();
        let Ok(folders) = fs::read_dir(&self.dir) else { return swept };
        for folder in folders.flatten() {
            if Instant::now() > deadline {
                swept.cut_short = true;
                break;
            }
            let path = folder.path();
            if !folder.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let stale =
                match persist::load::<(Identity, Vec<Vec<u8>>)>(&MARKER, &path.join(MARKER_FILE), &marker_seal()) {
                    Ok(opened) => {
                        let (identity, parts) = opened.value;
                        let now = if parts.is_empty() {
                            Identity::of(Path::new(std::ffi::OsStr::from_bytes(&identity.outermost().path)))
                        } else {
                            let parts: Vec<PathBuf> =
                                parts.iter().map(|p| PathBuf::from(std::ffi::OsStr::from_bytes(p))).collect();
                            Identity::of_parts(&parts)
                        };
                        // A nested archive's folder lives as long as its outermost file.
                        now.ok().as_ref() != Some(&identity.outermost())
                    }
                    // A writer creates the folder just before its marker: only an old folder without
                    // one is stale.
                    Err(Miss::Absent) => older_than(&path, STALE_TMP),
                    Err(Miss::Invalid(_)) => true,
                };
            if stale {
                if fs::remove_dir_all(&path).is_ok() {
                    swept.folders += 1;
                }
                continue;
            }
            for f in fs::read_dir(&path).into_iter().flatten().flatten() {
                if f.file_name().as_bytes().starts_with(TMP_PREFIX.as_bytes())
                    && older_than(&f.path(), STALE_TMP)
                    && fs::remove_file(f.path()).is_ok()
                {
                    swept.temporary += 1;
                }
            }
        }
        swept
    }
}

fn older_than(path: &Path, age: Duration) -> bool {
    fs::metadata(path).and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|e| e > age))
}

/// The disk-cached blocks of one archive: what a format's reader holds.
#[derive(Clone)]
pub struct ArchiveBlocks {
    cache: Arc<DiskCache>,
    identity: Arc<Identity>,
    parts: Arc<Vec<Vec<u8>>>,
}

impl ArchiveBlocks {
    fn key(&self, stream: u32, block: u64) -> DiskKey<'_> {
        DiskKey { archive: &self.identity, stream, block }
    }

    /// Block `block` of `stream`, if cached (see [`DiskCache::get`]).
    pub fn get(&self, stream: u32, block: u64) -> Option<Vec<u8>> {
        self.cache.get(&self.key(stream, block))
    }

    /// Stores block `block` of `stream` (see [`DiskCache::put`]).
    pub fn put(&self, stream: u32, block: u64, bytes: &[u8]) -> io::Result<()> {
        self.cache.put(&self.key(stream, block), &self.parts, bytes)
    }

    /// True when the block has a file (unchecked).
    pub fn contains(&self, stream: u32, block: u64) -> bool {
        self.cache.contains(&self.key(stream, block))
    }

    /// The cache.
    pub fn cache(&self) -> &Arc<DiskCache> {
        &self.cache
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> Identity {
        Identity { path: format!("/nonexistent/a{n}.xz").into_bytes(), size: 10, mtime_ns: 5, dev: 1, ino: n }
    }

    fn blocks_in(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for folder in fs::read_dir(dir).unwrap().flatten().filter(|f| f.path().is_dir()) {
            out.extend(
                fs::read_dir(folder.path())
                    .unwrap()
                    .flatten()
                    .map(|f| f.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "blk")),
            );
        }
        out
    }

    fn disk_bytes(dir: &Path) -> u64 {
        blocks_in(dir).iter().map(|p| fs::metadata(p).unwrap().len()).sum()
    }

    #[test]
    fn a_block_round_trips_and_is_keyed_by_archive_stream_and_number() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path().join("blocks"), 1 << 20).unwrap();
        let a = cache.archive(id(1), &[]);
        let b = cache.archive(id(2), &[]);
        a.put(7, 3, b"seven-three").unwrap();
        assert_eq!(a.get(7, 3).as_deref(), Some(&b"seven-three"[..]));
        assert_eq!(a.get(7, 4), None);
        assert_eq!(a.get(8, 3), None);
        assert_eq!(b.get(7, 3), None, "another archive's block");
        assert_eq!(cache.used().unwrap(), disk_bytes(cache.dir()));
    }

    #[test]
    fn the_bound_holds_under_many_puts_and_eviction_is_lru() {
        let dir = tempfile::tempdir().unwrap();
        let cap = 64 << 10;
        let cache = DiskCache::open(dir.path().to_path_buf(), cap).unwrap();
        let a = cache.archive(id(1), &[]);
        let block = vec![7u8; 4000];
        a.put(0, 0, &block).unwrap();
        for n in 1..200u64 {
            // Block 0 is used all the time: it must survive.
            std::thread::sleep(Duration::from_millis(2));
            assert!(a.get(0, 0).is_some(), "the hot block was evicted at put {n}");
            a.put(0, n, &block).unwrap();
            assert!(disk_bytes(cache.dir()) <= cap, "over the bound at put {n}");
            assert_eq!(cache.used().unwrap(), disk_bytes(cache.dir()));
        }
        // The newest blocks are kept, the oldest cold ones are gone.
        assert!(a.get(0, 199).is_some() && a.get(0, 198).is_some());
        assert!(a.get(0, 1).is_none() && a.get(0, 50).is_none());
        assert!(blocks_in(cache.dir()).len() >= 10);
        // A block bigger than the whole bound is not stored.
        a.put(1, 0, &vec![0u8; cap as usize]).unwrap();
        assert!(a.get(1, 0).is_none());
    }

    #[test]
    fn a_corrupt_or_foreign_block_is_a_miss_and_is_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path().to_path_buf(), 1 << 20).unwrap();
        let a = cache.archive(id(1), &[]);
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        for (what, damage) in [
            ("flipped byte", &(|b: &mut Vec<u8>| b[3000] ^= 1) as &dyn Fn(&mut Vec<u8>)),
            ("truncated", &|b: &mut Vec<u8>| b.truncate(b.len() - 10)),
            ("empty", &|b: &mut Vec<u8>| b.clear()),
            ("older version", &|b: &mut Vec<u8>| b[8] = 0),
        ] {
            a.put(0, 1, &data).unwrap();
            let path = blocks_in(cache.dir()).pop().unwrap();
            let mut bytes = fs::read(&path).unwrap();
            damage(&mut bytes);
            fs::write(&path, &bytes).unwrap();
            assert_eq!(a.get(0, 1), None, "{what} served");
            assert!(!path.exists(), "{what} not deleted");
        }
        // Another archive's block under this one's name (a hash collision, or a copied file).
        let b = cache.archive(id(2), &[]);
        b.put(0, 1, &data).unwrap();
        let from_b = blocks_in(cache.dir()).pop().unwrap();
        a.put(0, 1, &data).unwrap();
        let a_path = blocks_in(cache.dir()).into_iter().find(|p| *p != from_b).unwrap();
        fs::copy(&from_b, &a_path).unwrap();
        assert_eq!(a.get(0, 1), None);
        assert!(!a_path.exists());
        // A block under another block's name.
        a.put(0, 2, &data).unwrap();
        let two = blocks_in(cache.dir()).into_iter().find(|p| *p != from_b).unwrap();
        fs::rename(&two, two.with_file_name(format!("{:08x}-{:016x}.blk", 0, 3))).unwrap();
        assert_eq!(a.get(0, 3), None);
        assert_eq!(blocks_in(cache.dir()), vec![from_b]);
    }

    #[test]
    fn threads_racing_on_one_key_never_see_half_a_block() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path().to_path_buf(), 64 << 20).unwrap();
        let a = cache.archive(id(1), &[]);
        let blocks: Vec<Vec<u8>> = (0..4u8).map(|t| vec![t; 300_000]).collect();
        std::thread::scope(|s| {
            for t in 0..4 {
                let (a, blocks) = (&a, &blocks);
                s.spawn(move || {
                    for _ in 0..30 {
                        a.put(0, 0, &blocks[t]).unwrap();
                        if let Some(got) = a.get(0, 0) {
                            assert!(blocks.contains(&got), "a mixed or partial block was served");
                        }
                    }
                });
            }
        });
        assert!(a.get(0, 0).is_some());
        assert_eq!(blocks_in(cache.dir()).len(), 1);
        assert_eq!(cache.used().unwrap(), disk_bytes(cache.dir()), "the count follows replacements");
        let leftovers = fs::read_dir(cache.folder_of(&id(1)))
            .unwrap()
            .flatten()
            .filter(|f| f.file_name().as_bytes().starts_with(TMP_PREFIX.as_bytes()));
        assert_eq!(leftovers.count(), 0);
    }

    #[test]
    fn processes_racing_on_one_key_never_see_half_a_block() {
        // Two processes: this test binary runs itself as the second writer.
        if let Ok(dir) = std::env::var("MEDFS_DISKCACHE_CHILD") {
            let cache = DiskCache::open(PathBuf::from(dir), 64 << 20).unwrap();
            let a = cache.archive(id(1), &[]);
            for _ in 0..40 {
                a.put(0, 0, &vec![2u8; 500_000]).unwrap();
            }
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "diskcache::tests::processes_racing_on_one_key_never_see_half_a_block", "--nocapture"])
            .env("MEDFS_DISKCACHE_CHILD", dir.path())
            .spawn()
            .unwrap();
        let cache = DiskCache::open(dir.path().to_path_buf(), 64 << 20).unwrap();
        let a = cache.archive(id(1), &[]);
        let mine = vec![1u8; 500_000];
        let theirs = vec![2u8; 500_000];
        for _ in 0..40 {
            a.put(0, 0, &mine).unwrap();
            if let Some(got) = a.get(0, 0) {
                assert!(got == mine || got == theirs, "a mixed or partial block was served");
            }
        }
        let mut child = child;
        assert!(child.wait().unwrap().success());
        assert_eq!(cache.used().unwrap(), disk_bytes(cache.dir()));
    }

    #[test]
    fn the_sweep_removes_gone_changed_and_foreign_version_folders() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path().join("blocks"), 1 << 20).unwrap();
        let live_file = dir.path().join("live.xz");
        fs::write(&live_file, b"x").unwrap();
        let changed_file = dir.path().join("changed.xz");
        fs::write(&changed_file, b"x").unwrap();
        let parts = [dir.path().join("s.001"), dir.path().join("s.002")];
        for p in &parts {
            fs::write(p, b"p").unwrap();
        }
        let live = cache.archive(Identity::of(&live_file).unwrap(), &[]);
        let split = cache.archive(Identity::of_parts(&parts).unwrap(), &parts);
        let changed = cache.archive(Identity::of(&changed_file).unwrap(), &[]);
        let gone = cache.archive(id(9), &[]);
        for a in [&live, &split, &changed, &gone] {
            a.put(0, 0, b"block").unwrap();
        }
        fs::write(&changed_file, b"longer now").unwrap();
        // A folder of an older format version.
        let old = cache.dir().join("00000000000000aa");
        fs::create_dir(&old).unwrap();
        fs::write(old.join(MARKER_FILE), b"MEDFSBLD\0\0\0\0").unwrap();
        // A temporary file left by a crash long ago, and one being written now.
        let live_folder = cache.folder_of(&live.identity);
        let crashed = live_folder.join(".medfs-crashed.tmp");
        fs::write(&crashed, b"half").unwrap();
        File::options().write(true).open(&crashed).unwrap().set_modified(SystemTime::now() - STALE_TMP * 2).unwrap();
        let writing = live_folder.join(".medfs-writing.tmp");
        fs::write(&writing, b"half").unwrap();

        let swept = cache.sweep(Duration::from_secs(10));
        assert_eq!(swept, Swept { folders: 3, temporary: 1, cut_short: false });
        assert!(live.get(0, 0).is_some() && split.get(0, 0).is_some());
        assert!(changed.get(0, 0).is_none() && gone.get(0, 0).is_none());
        assert!(!old.exists() && !crashed.exists() && writing.exists());
        // A sweep with no time left stops before looking.
        assert!(cache.sweep(Duration::ZERO).cut_short);
        // The background sweep at open recounts the bytes on disk.
        fs::write(cache.dir().join(LOCK_FILE), 12345u64.to_le_bytes()).unwrap();
        let reopened = DiskCache::open_and_sweep(cache.dir().to_path_buf(), 1 << 20, Duration::from_secs(10)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while reopened.used().unwrap() != disk_bytes(cache.dir()) {
            assert!(Instant::now() < deadline, "the count was not mended");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn the_default_bound_is_a_tenth_of_free_space_at_most_20_gib() {
        let dir = tempfile::tempdir().unwrap();
        let cap = default_capacity(&dir.path().join("not/yet"));
        let s = nix::sys::statvfs::statvfs(dir.path()).unwrap();
        #[allow(clippy::unnecessary_cast)]
        let free = s.blocks_available() as u64 * s.fragment_size() as u64;
        assert!(cap > 0 && cap <= DEFAULT_MAX && cap <= free / 10 + (1 << 20), "{cap} of {free}");
    }
}
