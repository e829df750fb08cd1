//! The persistent per-archive index: what listing found (members, offsets, sizes, mtimes) and
//! the decoded stream's seek points, saved so that a remount lists nothing again.
//!
//! An index is a cache: it carries a format version and the archive's identity (canonical path,
//! size, mtime, device and inode), is checked by a CRC-32 over its whole content, and every doubt
//! (stale, foreign, truncated, corrupt, other version) makes it a miss that is rebuilt with a
//! warning. Files are written to a temporary name and renamed, so two mounts of the same archive
//! at once each see either no index or a complete one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::archive::{DataLoc, Extent, Member, MemberKind, ZipData};

/// Bumped whenever the layout below or the meaning of a stored field changes.
pub const INDEX_VERSION: u32 = 5;
const MAGIC: &[u8; 8] = b"MEDFSIDX";
/// Magic, version, length of the main section.
const HEADER: usize = 8 + 4 + 8;

/// Who an archive is: an index is valid only for exactly this file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Canonical path.
    pub path: Vec<u8>,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
    /// Device and inode: a replaced file (mv, cp over a rename) is a different archive.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
}

impl Identity {
    /// The identity of a byte-split archive: every part counts, so changing any part (or the
    /// number of parts) invalidates the index.
    pub fn of_parts(parts: &[PathBuf]) -> io::Result<Identity> {
        let mut all = parts.iter().map(|p| Identity::of(p)).collect::<io::Result<Vec<_>>>()?;
        let first = all.remove(0);
        let mut path = first.path.clone();
        path.extend_from_slice(format!("+{}", all.len()).as_bytes());
        Ok(all.iter().fold(Identity { path, ..first }, |mut id, part| {
            id.size += part.size;
            id.mtime_ns = id.mtime_ns.max(part.mtime_ns);
            id.ino = fnv1a64(&[id.ino.to_le_bytes(), part.ino.to_le_bytes()].concat());
            id
        }))
    }

    /// The identity of the file at `path` now.
    pub fn of(path: &Path) -> io::Result<Identity> {
        let canon = fs::canonicalize(path)?;
        let meta = fs::metadata(&canon)?;
        Ok(Identity {
            path: canon.as_os_str().as_bytes().to_vec(),
            size: meta.len(),
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
}

/// What an index holds besides the identity.
#[derive(Debug, Clone)]
pub struct Saved {
    /// Format tag chosen by the pool (opaque here).
    pub format: u8,
    /// Listing found damage.
    pub damaged: bool,
    /// Listing warnings, shown again at every mount.
    pub warnings: Vec<String>,
    /// Members in archive order.
    pub members: Vec<Member>,
    /// Seek-point table of the decoded stream (empty when there is none).
    pub stream_table: Vec<u8>,
    /// The seek points' windows. When saving: the bytes. When loaded: empty; they stay in the
    /// index file (see [`Loaded`]) and are read on demand.
    pub stream_windows: Vec<u8>,
}

/// A valid index, its windows left in the file.
pub struct Loaded {
    /// What was saved.
    pub saved: Saved,
    /// The open index file (kept open: a concurrent rebuild renames a new file over it, which
    /// leaves this one intact) and where its windows section starts.
    pub windows: (std::sync::Arc<crate::archive::FileSource>, u64),
}

/// Where indexes live, or nowhere (in-memory only).
#[derive(Debug, Clone)]
pub struct IndexStore {
    dir: Option<PathBuf>,
}

/// Why an index was not used (the caller rebuilds and warns unless it simply did not exist).
#[derive(Debug)]
pub enum Miss {
    /// No index yet: the normal first mount.
    Absent,
    /// There was one, but it cannot be trusted.
    Invalid(String),
}

impl IndexStore {
    /// Indexes under `dir` (`None`: never saved, never loaded).
    pub fn new(dir: Option<PathBuf>) -> IndexStore {
        IndexStore { dir }
    }

    /// `$XDG_CACHE_HOME/medfs/index`, else `~/.cache/medfs/index`.
    pub fn default_dir() -> Option<PathBuf> {
        std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|c| c.join("medfs").join("index"))
    }

    /// The index file of an archive: named by a hash of its canonical path, so each archive has
    /// one slot; the identity inside tells whether the slot is still about the same file.
    pub fn file_for(&self, id: &Identity) -> Option<PathBuf> {
        let name = id.path.rsplit(|&b| b == b'/').next().unwrap_or(b"archive");
        let name: String = String::from_utf8_lossy(name)
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
            .take(60)
            .collect();
        let hash = fnv1a64(&id.path);
        self.dir.as_ref().map(|d| d.join(format!("{name}.{hash:016x}.idx")))
    }

    /// The saved listing of `id`, if there is a valid one. Reads the main section only.
    pub fn load(&self, id: &Identity) -> Result<Loaded, Miss> {
        use crate::archive::ByteSource;
        let Some(path) = self.file_for(id) else { return Err(Miss::Absent) };
        let file = match crate::archive::FileSource::open(&path) {
            Ok(f) => std::sync::Arc::new(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Miss::Absent),
            Err(e) => return Err(Miss::Invalid(format!("{}: {e}", path.display()))),
        };
        let invalid = |why: String| Miss::Invalid(format!("{}: {why}", path.display()));
        let mut head = [0u8; HEADER];
        file.read_exact_at(0, &mut head).map_err(|_| invalid("truncated".into()))?;
        let main_len = u64::from_le_bytes(head[12..20].try_into().unwrap());
        let windows_at = (HEADER as u64)
            .checked_add(main_len)
            .and_then(|v| v.checked_add(4))
            .filter(|&end| end <= file.len())
            .ok_or_else(|| invalid("truncated".into()))?;
        let mut main = vec![0u8; windows_at as usize];
        file.read_exact_at(0, &mut main).map_err(|e| invalid(e.to_string()))?;
        let (saved, windows_len) = decode(&main, id).map_err(invalid)?;
        if windows_at.checked_add(windows_len) != Some(file.len()) {
            return Err(invalid("windows section truncated or extended".into()));
        }
        Ok(Loaded { saved, windows: (file, windows_at) })
    }

    /// Saves atomically. Errors (read-only or full cache folder) are returned for a warning;
    /// the mount goes on with its in-memory listing.
    pub fn save(&self, id: &Identity, saved: &Saved) -> io::Result<()> {
        let Some(file) = self.file_for(id) else { return Ok(()) };
        let dir = file.parent().expect("index files live in a folder");
        fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".{}.{}.tmp", file.file_name().unwrap().to_string_lossy(), std::process::id()));
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(&encode(id, saved))?;
            f.sync_data()?;
            fs::rename(&tmp, &file)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

impl IndexStore {
    /// A side file of an archive's index (e.g. its DICOM headers, found after listing): stored
    /// under the index's name plus `.kind`, prefixed with the archive identity so a side file of
    /// another version of the archive is never used.
    pub fn load_side(&self, id: &Identity, kind: &str) -> Option<Vec<u8>> {
        let path = self.file_for(id)?.with_extension(format!("idx.{kind}"));
        let bytes = fs::read(path).ok()?;
        let head = encode_identity(id);
        bytes.strip_prefix(head.as_slice()).map(<[u8]>::to_vec)
    }

    /// Saves a side file atomically (see [`load_side`](Self::load_side)).
    pub fn save_side(&self, id: &Identity, kind: &str, body: &[u8]) -> io::Result<()> {
        let Some(path) = self.file_for(id).map(|p| p.with_extension(format!("idx.{kind}"))) else { return Ok(()) };
        fs::create_dir_all(path.parent().expect("in a folder"))?;
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        let mut bytes = encode_identity(id);
        bytes.extend_from_slice(body);
        let result = fs::write(&tmp, &bytes).and_then(|()| fs::rename(&tmp, &path));
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

/// Magic of the member seek-point file, the one companion of an archive's index that holds the
/// seek points of all its big compressed members.
const POINTS_MAGIC: &[u8; 8] = b"MEDFSMSP";
/// Record header: member, table length, windows length, CRC-32 of these 16 bytes and the table.
const RECORD_HEADER: usize = 4 + 4 + 8 + 4;

/// Where one member's saved seek points are in the companion file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PointsAt {
    /// Offset and length of the seek-point table.
    pub table: (u64, u32),
    /// Offset of the windows (read on demand, each CRC-checked by its table).
    pub windows: u64,
}

/// The seek points saved for the members of one archive: a map to records of the companion
/// file, which stays open so windows are read from it on demand.
pub struct MemberPoints {
    /// The open companion file.
    pub file: std::sync::Arc<crate::archive::FileSource>,
    /// Where each member's record is (the last record of a member wins).
    pub at: std::collections::HashMap<u32, PointsAt>,
}

impl MemberPoints {
    /// The table of `member`, read and checked against its record's CRC-32.
    pub fn table(&self, member: u32) -> Option<(Vec<u8>, u64)> {
        use crate::archive::ByteSource;
        let at = self.at.get(&member)?;
        let mut record = vec![0u8; RECORD_HEADER + at.table.1 as usize];
        self.file.read_exact_at(at.table.0 - RECORD_HEADER as u64, &mut record).ok()?;
        let (head, table) = record.split_at(RECORD_HEADER);
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&head[..16]);
        hasher.update(table);
        (hasher.finalize() == u32::from_le_bytes(head[16..20].try_into().unwrap()))
            .then(|| (table.to_vec(), at.windows))
    }
}

impl MemberPoints {
    /// Records a member just appended by [`IndexStore::add_member_points`]: the file is
    /// reopened (its length grew) unless it was replaced meanwhile, in which case the caller
    /// scans it again.
    pub fn add(&mut self, store: &IndexStore, id: &Identity, member: u32, at: PointsAt) -> bool {
        use crate::archive::ByteSource;
        let Some(file) = store.points_file(id).and_then(|p| crate::archive::FileSource::open(&p).ok()) else {
            return false;
        };
        if file.len() < at.windows {
            return false;
        }
        self.file = std::sync::Arc::new(file);
        self.at.insert(member, at);
        true
    }
}

impl IndexStore {
    fn points_file(&self, id: &Identity) -> Option<PathBuf> {
        self.file_for(id).map(|p| p.with_extension("idx.points"))
    }

    /// True when indexes are saved at all (not `--no-index`).
    pub fn enabled(&self) -> bool {
        self.dir.is_some()
    }

    /// The member seek points saved for archive `id`, if its companion file is about this very
    /// archive. A torn last record (a crash while appending) is ignored; every other doubt
    /// makes the whole file a miss.
    pub fn member_points(&self, id: &Identity) -> Option<MemberPoints> {
        let path = self.points_file(id)?;
        let file = std::sync::Arc::new(crate::archive::FileSource::open(&path).ok()?);
        let (mut at, _) = scan_points(&*file, id)?;
        at.shrink_to_fit();
        Some(MemberPoints { file, at })
    }

    /// Appends the seek points of `member` (a table and its windows, as a codec index
    /// serializes them) to the archive's companion file, creating or replacing the file when it
    /// is about another version of the archive. Appends hold an exclusive lock on the file, so
    /// two mounts of one archive never interleave records; a crash leaves at most a torn last
    /// record, which readers ignore and the next append cuts off.
    pub fn add_member_points(&self, id: &Identity, member: u32, table: &[u8], windows: &[u8]) -> io::Result<PointsAt> {
        use std::io::{Seek, SeekFrom};
        use std::os::unix::io::AsRawFd;
        let Some(path) = self.points_file(id) else { return Err(io::Error::other("indexes are off")) };
        fs::create_dir_all(path.parent().expect("in a folder"))?;
        let mut f = fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
        // SAFETY: flock on a descriptor we own; the lock is released when `f` is closed.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let source = crate::archive::FileSource::from_file(f.try_clone()?, path.clone())?;
        let end = match scan_points(&source, id) {
            Some((_, valid_end)) => valid_end,
            None => {
                let mut head = POINTS_MAGIC.to_vec();
                head.extend_from_slice(&encode_identity(id));
                f.set_len(0)?;
                f.seek(SeekFrom::Start(0))?;
                f.write_all(&head)?;
                head.len() as u64
            }
        };
        f.set_len(end)?;
        f.seek(SeekFrom::Start(end))?;
        let table_len = u32::try_from(table.len()).map_err(|_| io::Error::other("seek-point table too large"))?;
        let mut record = Vec::with_capacity(RECORD_HEADER + table.len() + windows.len());
        record.extend_from_slice(&member.to_le_bytes());
        record.extend_from_slice(&table_len.to_le_bytes());
        record.extend_from_slice(&(windows.len() as u64).to_le_bytes());
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&record[..16]);
        hasher.update(table);
        record.extend_from_slice(&hasher.finalize().to_le_bytes());
        record.extend_from_slice(table);
        record.extend_from_slice(windows);
        // No fsync: a record torn by a crash fails its CRC (or runs past the end) and is
        // ignored; each window is checked again when read. Syncing cost ~40 ms per member.
        f.write_all(&record)?;
        Ok(PointsAt {
            table: (end + RECORD_HEADER as u64, table_len),
            windows: end + (RECORD_HEADER + table.len()) as u64,
        })
    }
}

/// Reads the record headers of a companion file: where each member's record is, and where the
/// last whole record ends. `None` when the file is not about archive `id`.
fn scan_points(
    file: &dyn crate::archive::ByteSource,
    id: &Identity,
) -> Option<(std::collections::HashMap<u32, PointsAt>, u64)> {
    let mut head = POINTS_MAGIC.to_vec();
    head.extend_from_slice(&encode_identity(id));
    let mut got = vec![0u8; head.len()];
    file.read_exact_at(0, &mut got).ok()?;
    if got != head {
        return None;
    }
    let mut at = std::collections::HashMap::new();
    let mut pos = head.len() as u64;
    let mut h = [0u8; RECORD_HEADER];
    while file.read_exact_at(pos, &mut h).is_ok() {
        let member = u32::from_le_bytes(h[0..4].try_into().unwrap());
        let table_len = u32::from_le_bytes(h[4..8].try_into().unwrap());
        let windows_len = u64::from_le_bytes(h[8..16].try_into().unwrap());
        let table_at = pos + RECORD_HEADER as u64;
        let Some(end) = table_at.checked_add(table_len as u64).and_then(|e| e.checked_add(windows_len)) else { break };
        if end > file.len() {
            break;
        }
        at.insert(member, PointsAt { table: (table_at, table_len), windows: table_at + table_len as u64 });
        pos = end;
    }
    Some((at, pos))
}

/// The identity as bytes, with the index format version in front.
fn encode_identity(id: &Identity) -> Vec<u8> {
    let mut e = Enc(Vec::new());
    e.u32(INDEX_VERSION);
    e.bytes(&id.path);
    e.u64(id.size);
    e.0.extend_from_slice(&id.mtime_ns.to_le_bytes());
    e.u64(id.dev);
    e.u64(id.ino);
    e.0
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
    }
}

fn encode(id: &Identity, s: &Saved) -> Vec<u8> {
    let mut e = Enc(Vec::with_capacity(64 + s.members.len() * 64 + s.stream_table.len() + s.stream_windows.len()));
    e.0.extend_from_slice(MAGIC);
    e.u32(INDEX_VERSION);
    e.u64(0); // main section length, filled in below
    e.bytes(&id.path);
    e.u64(id.size);
    e.0.extend_from_slice(&id.mtime_ns.to_le_bytes());
    e.u64(id.dev);
    e.u64(id.ino);
    e.u8(s.format);
    e.u8(s.damaged as u8);
    e.u64(s.warnings.len() as u64);
    for w in &s.warnings {
        e.bytes(w.as_bytes());
    }
    e.u64(s.members.len() as u64);
    for m in &s.members {
        e.bytes(&m.path);
        match &m.kind {
            MemberKind::File => e.u8(0),
            MemberKind::Dir => e.u8(1),
            MemberKind::Symlink { target } => {
                e.u8(2);
                e.bytes(target);
            }
        }
        e.u64(m.size);
        e.i64(m.mtime);
        e.u32(m.mode);
        match &m.data {
            DataLoc::None => e.u8(0),
            DataLoc::Raw { offset } => {
                e.u8(1);
                e.u64(*offset);
            }
            DataLoc::Sparse { extents } => {
                e.u8(2);
                e.u64(extents.len() as u64);
                for x in extents.iter() {
                    e.u64(x.logical);
                    e.u64(x.offset);
                    e.u64(x.len);
                }
            }
            DataLoc::Zip(z) => {
                e.u8(3);
                e.u64(z.header_offset);
                e.u64(z.compressed_size);
                e.0.extend_from_slice(&z.method.to_le_bytes());
                e.u32(z.crc32);
                e.0.extend_from_slice(&z.flags.to_le_bytes());
            }
            DataLoc::Bad { reason } => {
                e.u8(4);
                e.bytes(reason.as_bytes());
            }
        }
    }
    e.bytes(&s.stream_table);
    e.u64(s.stream_windows.len() as u64);
    let main_len = (e.0.len() - HEADER) as u64;
    e.0[12..20].copy_from_slice(&main_len.to_le_bytes());
    let crc = crc32fast::hash(&e.0);
    e.u32(crc);
    // The windows carry their own CRC-32s in the stream table: they are checked when read.
    e.0.extend_from_slice(&s.stream_windows);
    e.0
}

struct Dec<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Dec<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len()).ok_or("truncated")?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    /// A count of items of at least `min_size` bytes each, checked against what is left, so a
    /// corrupt count cannot make us allocate.
    fn count(&mut self, min_size: usize) -> Result<usize, String> {
        let n = self.u64()?;
        let left = (self.b.len() - self.at) as u64;
        if n.saturating_mul(min_size as u64) > left {
            return Err("count larger than the file".into());
        }
        Ok(n as usize)
    }
    fn bytes(&mut self) -> Result<Vec<u8>, String> {
        let n = self.count(1)?;
        Ok(self.take(n)?.to_vec())
    }
}

/// Decodes the header and main section (with its CRC-32 at the end); returns what was saved
/// and the length of the windows section that follows.
fn decode(b: &[u8], want: &Identity) -> Result<(Saved, u64), String> {
    if b.len() < HEADER + 4 || &b[..8] != MAGIC {
        return Err("not a medfs index".into());
    }
    let version = u32::from_le_bytes(b[8..12].try_into().unwrap());
    if version != INDEX_VERSION {
        return Err(format!("index format {version}, this medfs writes {INDEX_VERSION}"));
    }
    let (body, crc) = b.split_at(b.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().unwrap()) {
        return Err("checksum mismatch (corrupt or truncated)".into());
    }
    let mut d = Dec { b: body, at: HEADER };
    let got = Identity {
        path: d.bytes()?,
        size: d.u64()?,
        mtime_ns: i128::from_le_bytes(d.take(16)?.try_into().unwrap()),
        dev: d.u64()?,
        ino: d.u64()?,
    };
    if got != *want {
        return Err("the archive changed since it was indexed".into());
    }
    let format = d.u8()?;
    let damaged = d.u8()? != 0;
    let n = d.count(8)?;
    let warnings =
        (0..n).map(|_| d.bytes().map(|w| String::from_utf8_lossy(&w).into_owned())).collect::<Result<_, _>>()?;
    let n = d.count(30)?;
    let mut members = Vec::with_capacity(n);
    for _ in 0..n {
        let path = d.bytes()?;
        let kind = match d.u8()? {
            0 => MemberKind::File,
            1 => MemberKind::Dir,
            2 => MemberKind::Symlink { target: d.bytes()? },
            k => return Err(format!("unknown member kind {k}")),
        };
        let (size, mtime, mode) = (d.u64()?, d.i64()?, d.u32()?);
        let data = match d.u8()? {
            0 => DataLoc::None,
            1 => DataLoc::Raw { offset: d.u64()? },
            2 => {
                let n = d.count(24)?;
                let extents = (0..n)
                    .map(|_| Ok(Extent { logical: d.u64()?, offset: d.u64()?, len: d.u64()? }))
                    .collect::<Result<Vec<_>, String>>()?;
                DataLoc::Sparse { extents: extents.into_boxed_slice() }
            }
            3 => DataLoc::Zip(ZipData {
                header_offset: d.u64()?,
                compressed_size: d.u64()?,
                method: d.u16()?,
                crc32: d.u32()?,
                flags: d.u16()?,
            }),
            4 => DataLoc::Bad { reason: String::from_utf8_lossy(&d.bytes()?).into_owned() },
            t => return Err(format!("unknown data tag {t}")),
        };
        let m = Member { path, kind, size, mtime, mode, data };
        if !m.is_consistent() {
            return Err(format!("inconsistent data location of member {}", String::from_utf8_lossy(&m.path)));
        }
        members.push(m);
    }
    let stream_table = d.bytes()?;
    let windows_len = d.u64()?;
    if d.at != body.len() {
        return Err("trailing bytes".into());
    }
    Ok((Saved { format, damaged, warnings, members, stream_table, stream_windows: Vec::new() }, windows_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Identity, Saved) {
        let id = Identity {
            path: b"/data/x.tar.gz".to_vec(),
            size: 1234,
            mtime_ns: 1_600_000_000_123_456_789,
            dev: 1,
            ino: 2,
        };
        let members = vec![
            Member { path: b"a/".to_vec(), kind: MemberKind::Dir, size: 0, mtime: 5, mode: 0o755, data: DataLoc::None },
            Member {
                path: b"a/f".to_vec(),
                kind: MemberKind::File,
                size: 10,
                mtime: -3,
                mode: 0o644,
                data: DataLoc::Raw { offset: 512 },
            },
            Member {
                path: b"a/s".to_vec(),
                kind: MemberKind::File,
                size: 100,
                mtime: 0,
                mode: 0,
                data: DataLoc::Sparse { extents: vec![Extent { logical: 50, offset: 1024, len: 10 }].into() },
            },
            Member {
                path: b"z".to_vec(),
                kind: MemberKind::File,
                size: 7,
                mtime: 1,
                mode: 0,
                data: DataLoc::Zip(ZipData {
                    header_offset: 9,
                    compressed_size: 8,
                    method: 8,
                    crc32: 0xdeadbeef,
                    flags: 8,
                }),
            },
            Member {
                path: b"l".to_vec(),
                kind: MemberKind::Symlink { target: b"a/f".to_vec() },
                size: 0,
                mtime: 0,
                mode: 0,
                data: DataLoc::None,
            },
            Member {
                path: b"b".to_vec(),
                kind: MemberKind::File,
                size: 3,
                mtime: 0,
                mode: 0,
                data: DataLoc::Bad { reason: "encrypted".into() },
            },
        ];
        let saved = Saved {
            format: 2,
            damaged: true,
            warnings: vec!["w1".into()],
            members,
            stream_table: vec![1, 2, 3],
            stream_windows: vec![9; 10],
        };
        (id, saved)
    }

    #[test]
    fn roundtrips_and_rejects_any_damage_or_other_identity() {
        let (id, saved) = sample();
        let mut bytes = encode(&id, &saved);
        bytes.truncate(bytes.len() - 10); // the windows section: decode sees the main section
        let (back, windows_len) = decode(&bytes, &id).unwrap();
        assert_eq!(windows_len, 10);
        assert_eq!(format!("{:?}", back.members), format!("{:?}", saved.members));
        assert_eq!((back.format, back.damaged, back.stream_table), (2, true, vec![1, 2, 3]));
        for cut in [0, 8, 20, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(&bytes[..cut], &id).is_err(), "truncated at {cut}");
        }
        for i in (0..bytes.len()).step_by(7) {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(decode(&bad, &id).is_err(), "flip at {i}");
        }
        let mut other = id.clone();
        other.mtime_ns += 1;
        assert!(decode(&bytes, &other).unwrap_err().contains("changed"));
    }

    #[test]
    fn store_saves_atomically_and_loads_only_for_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("a.tar");
        std::fs::write(&archive, b"0123").unwrap();
        let store = IndexStore::new(Some(dir.path().join("idx")));
        let id = Identity::of(&archive).unwrap();
        assert!(matches!(store.load(&id), Err(Miss::Absent)));
        let (_, saved) = sample();
        store.save(&id, &saved).unwrap();
        let loaded = store.load(&id).unwrap();
        assert_eq!(loaded.saved.members.len(), saved.members.len());
        let mut windows = vec![0u8; 10];
        crate::archive::ByteSource::read_exact_at(&*loaded.windows.0, loaded.windows.1, &mut windows).unwrap();
        assert_eq!(windows, saved.stream_windows);
        std::fs::write(&archive, b"01234").unwrap();
        let changed = Identity::of(&archive).unwrap();
        assert!(matches!(store.load(&changed), Err(Miss::Invalid(_))));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("idx")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary files left behind");
    }
}
