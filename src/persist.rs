//! The one envelope of every file medfs writes (the index, its seek-point companion, side files
//! such as the DICOM headers): magic, format version, archive identity, payload length, CRC-32,
//! atomic write; payloads in postcard.
//!
//! Every such file is a cache of something medfs can compute again, so reading is suspicious:
//! any doubt (missing, wrong magic, other version, other archive, lengths beyond the file,
//! checksum, payload that does not decode) is a [`Miss`], never a panic, and no length claimed by
//! the file is allocated before it was checked against the file's size.
//!
//! Layout, little-endian:
//!
//! ```text
//! magic [8] | version u32 | identity length u32 | payload length u64 | CRC-32 u32
//! identity (postcard of Identity) | payload | tail
//! ```
//!
//! The CRC-32 covers the 24 header bytes before it, the identity and the payload. The tail is not
//! covered: it is either data that carries its own checks and is read on demand (the index's
//! seek-point windows) or a log of records, each checked on its own ([`append_record`]), for the
//! append-only companion files.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::archive::{ByteSource, FileSource};

/// What a file is: its magic and the version of its payload's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// Names the kind in messages and, for side files, in the file name (`<index>.idx.<name>`).
    pub name: &'static str,
    /// First eight bytes of the file.
    pub magic: [u8; 8],
    /// Bumped whenever the payload's layout or the meaning of a stored field changes: files of
    /// another version are a miss and are written again.
    pub version: u32,
}

/// Magic, version, identity length, payload length, CRC-32.
const HEADER: usize = 8 + 4 + 4 + 8 + 4;

/// Who an archive is: a file written about it is valid only for exactly this file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    /// Canonical path.
    #[serde(with = "serde_bytes")]
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
        if all.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a split archive without parts"));
        }
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

    /// The identity of an archive nested in this one at `member` (a member path, or a split
    /// archive's first part and `+N`): this archive's size, times and inode, so the check
    /// before every read stats the outermost file and a change to it invalidates every level,
    /// and a path of its own (`outer NUL member`; NUL is in no file name), so each nested
    /// archive has its own index slot and disk-cache folder.
    pub fn nested(&self, member: &[u8]) -> Identity {
        let mut path = self.path.clone();
        path.push(NESTED);
        path.extend_from_slice(member);
        Identity { path, ..self.clone() }
    }

    /// The identity of the outermost file this one lives in: itself unless it is
    /// [`Identity::nested`].
    pub fn outermost(&self) -> Identity {
        let end = self.path.iter().position(|&b| b == NESTED).unwrap_or(self.path.len());
        Identity { path: self.path[..end].to_vec(), ..self.clone() }
    }
}

/// Separates an outer archive's path from a nested member's in a nested identity.
const NESTED: u8 = 0;

/// Why a saved file was not used (the caller rebuilds, and warns unless it simply did not exist).
#[derive(Debug)]
pub enum Miss {
    /// No file yet: the normal first mount.
    Absent,
    /// There was one, but it cannot be trusted.
    Invalid(String),
}

/// FNV-1a: a stable 64-bit hash for file names and split archives' inode numbers.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

/// `value` in postcard.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // Serializing into a Vec fails only for types serde cannot express (maps with unknown
    // length, which postcard needs up front); medfs stores none.
    postcard::to_stdvec(value).expect("postcard serializes every stored type")
}

/// Reads what [`encode`] wrote; bytes left over are an error too.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match postcard::take_from_bytes(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(format!("{} trailing bytes", rest.len())),
        Err(e) => Err(format!("undecodable payload ({e})")),
    }
}

/// The header, identity and payload of a `kind` file about `id` (its tail is appended by the
/// caller).
pub fn seal(kind: &Kind, id: &Identity, payload: &[u8]) -> Vec<u8> {
    let identity = encode(id);
    let mut out = Vec::with_capacity(HEADER + identity.len() + payload.len());
    out.extend_from_slice(&kind.magic);
    out.extend_from_slice(&kind.version.to_le_bytes());
    out.extend_from_slice(&(identity.len() as u32).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&out);
    crc.update(&identity);
    crc.update(payload);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&identity);
    out.extend_from_slice(payload);
    out
}

/// Checks the envelope at the start of `file`: the identity and payload, where the payload starts
/// in them, and where the tail starts.
fn unseal(kind: &Kind, file: &dyn ByteSource, id: &Identity) -> Result<(Vec<u8>, usize, u64), String> {
    let mut head = [0u8; HEADER];
    file.read_exact_at(0, &mut head).map_err(|_| "truncated".to_string())?;
    if head[..8] != kind.magic {
        return Err(format!("not a medfs {} file", kind.name));
    }
    let field = |at: usize, n: usize| head[at..at + n].iter().rev().fold(0u64, |v, &b| v << 8 | b as u64);
    let version = field(8, 4);
    if version != kind.version as u64 {
        return Err(format!("{} format {version}, this medfs writes {}", kind.name, kind.version));
    }
    let (identity_len, payload_len) = (field(12, 4), field(16, 8));
    let tail_at = (HEADER as u64 + identity_len)
        .checked_add(payload_len)
        .filter(|&end| end <= file.len())
        .ok_or_else(|| "truncated".to_string())?;
    let mut body = vec![0u8; (tail_at - HEADER as u64) as usize];
    file.read_exact_at(HEADER as u64, &mut body).map_err(|e| e.to_string())?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head[..HEADER - 4]);
    crc.update(&body);
    if crc.finalize() as u64 != field(24, 4) {
        return Err("checksum mismatch (corrupt or truncated)".into());
    }
    if body[..identity_len as usize] != encode(id) {
        return Err("the archive changed since it was indexed".into());
    }
    Ok((body, identity_len as usize, tail_at))
}

/// A checked file, its tail left on disk.
pub struct Opened<T> {
    /// The decoded payload.
    pub value: T,
    /// The open file (kept open: a concurrent rewrite renames a new file over it, which leaves
    /// this one intact).
    pub file: Arc<FileSource>,
    /// Where the tail starts.
    pub tail_at: u64,
}

/// Reads the `kind` file at `path` about `id`.
pub fn load<T: DeserializeOwned>(kind: &Kind, path: &Path, id: &Identity) -> Result<Opened<T>, Miss> {
    let file = match FileSource::open(path) {
        Ok(f) => Arc::new(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Miss::Absent),
        Err(e) => return Err(Miss::Invalid(format!("{}: {e}", path.display()))),
    };
    let invalid = |why: String| Miss::Invalid(format!("{}: {why}", path.display()));
    let (body, payload_at, tail_at) = unseal(kind, &*file, id).map_err(invalid)?;
    let value = decode(&body[payload_at..]).map_err(invalid)?;
    Ok(Opened { value, file, tail_at })
}

/// Writes `value` (and an unchecked `tail`) as the `kind` file at `path` about `id`, atomically:
/// readers see the old file or the whole new one, never a part.
pub fn save<T: Serialize + ?Sized>(kind: &Kind, path: &Path, id: &Identity, value: &T, tail: &[u8]) -> io::Result<()> {
    write_atomically(path, &[seal(kind, id, &encode(value)).as_slice(), tail])
}

/// Writes `parts` to a temporary file in `path`'s folder, syncs it and renames it over `path`;
/// on any error the temporary file is removed (and `path` is untouched).
pub fn write_atomically(path: &Path, parts: &[&[u8]]) -> io::Result<()> {
    let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let dir = path.parent().ok_or_else(|| named(io::Error::other("not in a folder")))?;
    fs::create_dir_all(dir).map_err(named)?;
    // Dropping the temporary file on an early return deletes it.
    let mut tmp = tempfile::Builder::new()
        .prefix(".medfs-")
        .suffix(".tmp")
        .permissions(fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(named)?;
    for part in parts {
        tmp.write_all(part).map_err(named)?;
    }
    tmp.as_file().sync_data().map_err(named)?;
    tmp.persist(path).map_err(|e| named(e.error))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Append-only files: the envelope (empty payload), then records.

/// Record header: key, checked length, unchecked length, CRC-32 of these 16 bytes and the checked
/// part.
const RECORD_HEADER: usize = 4 + 4 + 8 + 4;

/// Where one record's parts are in an append-only file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordAt {
    /// Offset and length of the part checked by the record's CRC-32.
    pub checked: (u64, u32),
    /// Offset of the part that follows it, unchecked here (it carries its own checks).
    pub unchecked: u64,
}

/// The records of an append-only `kind` file about `id`, by key (the last record of a key wins),
/// and where the last whole record ends. `None` when the file is not such a file. Records are not
/// read, only their headers; a torn last record (a crash while appending) ends the scan.
pub fn scan_records(kind: &Kind, file: &dyn ByteSource, id: &Identity) -> Option<(HashMap<u32, RecordAt>, u64)> {
    let (body, payload_at, mut pos) = unseal(kind, file, id).ok()?;
    if body.len() != payload_at {
        return None;
    }
    let mut at = HashMap::new();
    let mut h = [0u8; RECORD_HEADER];
    while file.read_exact_at(pos, &mut h).is_ok() {
        let key = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let checked_len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        let unchecked_len = u64::from_le_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]);
        let checked_at = pos + RECORD_HEADER as u64;
        let Some(end) = checked_at.checked_add(checked_len as u64).and_then(|e| e.checked_add(unchecked_len)) else {
            break;
        };
        if end > file.len() {
            break;
        }
        at.insert(key, RecordAt { checked: (checked_at, checked_len), unchecked: checked_at + checked_len as u64 });
        pos = end;
    }
    Some((at, pos))
}

/// The checked part of the record at `at`, if its CRC-32 holds.
pub fn read_record(file: &dyn ByteSource, at: RecordAt) -> Option<Vec<u8>> {
    let start = at.checked.0.checked_sub(RECORD_HEADER as u64)?;
    let end = at.checked.0.checked_add(at.checked.1 as u64).filter(|&e| e <= file.len())?;
    let mut record = vec![0u8; (end - start) as usize];
    file.read_exact_at(start, &mut record).ok()?;
    let (head, checked) = record.split_at(RECORD_HEADER);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head[..16]);
    crc.update(checked);
    (crc.finalize() == u32::from_le_bytes([head[16], head[17], head[18], head[19]])).then(|| checked.to_vec())
}

/// Appends a record (`key`, a `checked` part, an `unchecked` part) to the append-only `kind` file
/// at `path` about `id`, starting the file anew when it is about another archive or version.
/// Appends hold an exclusive `flock`, so two mounts of one archive never interleave records; a
/// crash leaves at most a torn last record, which [`scan_records`] ignores and the next append
/// cuts off.
pub fn append_record(
    kind: &Kind,
    path: &Path,
    id: &Identity,
    key: u32,
    checked: &[u8],
    unchecked: &[u8],
) -> io::Result<RecordAt> {
    let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let checked_len = u32::try_from(checked.len()).map_err(|_| named(io::Error::other("record too large")))?;
    fs::create_dir_all(path.parent().ok_or_else(|| named(io::Error::other("not in a folder")))?).map_err(named)?;
    let f: File =
        fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(named)?;
    // Released when the guard (and with it the file) is dropped.
    let mut f = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| named(e.into()))?;
    let source = FileSource::from_file(f.try_clone()?, path.to_path_buf())?;
    let end = match scan_records(kind, &source, id) {
        Some((_, valid_end)) => valid_end,
        None => {
            let head = seal(kind, id, &[]);
            f.set_len(0).map_err(named)?;
            f.seek(SeekFrom::Start(0))?;
            f.write_all(&head).map_err(named)?;
            head.len() as u64
        }
    };
    f.set_len(end).map_err(named)?;
    f.seek(SeekFrom::Start(end))?;
    let mut record = Vec::with_capacity(RECORD_HEADER + checked.len() + unchecked.len());
    record.extend_from_slice(&key.to_le_bytes());
    record.extend_from_slice(&checked_len.to_le_bytes());
    record.extend_from_slice(&(unchecked.len() as u64).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&record);
    crc.update(checked);
    record.extend_from_slice(&crc.finalize().to_le_bytes());
    record.extend_from_slice(checked);
    record.extend_from_slice(unchecked);
    // No fsync: a record torn by a crash fails its CRC (or runs past the end) and is ignored;
    // the unchecked part is checked again when read. Syncing cost ~40 ms per member.
    f.write_all(&record).map_err(named)?;
    let checked_at = end + RECORD_HEADER as u64;
    Ok(RecordAt { checked: (checked_at, checked_len), unchecked: checked_at + checked.len() as u64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIND: Kind = Kind { name: "test", magic: *b"MEDFSTST", version: 3 };

    fn id() -> Identity {
        Identity { path: b"/data/x.zip".to_vec(), size: 10, mtime_ns: -5, dev: 1, ino: 2 }
    }

    #[test]
    fn a_sealed_file_opens_only_whole_and_for_its_archive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/f");
        let value = (7u32, "seven".to_string(), vec![1u8, 2, 3]);
        save(&KIND, &path, &id(), &value, b"tail").unwrap();
        let opened: Opened<(u32, String, Vec<u8>)> = load(&KIND, &path, &id()).unwrap();
        assert_eq!(opened.value, value);
        assert_eq!(opened.file.len() - opened.tail_at, 4);
        assert!(matches!(load::<u32>(&KIND, &dir.path().join("none"), &id()), Err(Miss::Absent)));
        let miss = |bytes: &[u8], id: &Identity| {
            std::fs::write(&path, bytes).unwrap();
            match load::<(u32, String, Vec<u8>)>(&KIND, &path, id) {
                Err(Miss::Invalid(why)) => why,
                _ => panic!("accepted"),
            }
        };
        let good = std::fs::read(&path).unwrap();
        let body_end = good.len() - 4;
        for cut in 0..body_end {
            miss(&good[..cut], &id());
        }
        for i in 0..body_end {
            let mut bad = good.clone();
            bad[i] ^= 0x41;
            miss(&bad, &id());
        }
        let other = Identity { ino: 3, ..id() };
        assert!(miss(&good, &other).contains("changed"));
        let newer = Kind { version: 4, ..KIND };
        std::fs::write(&path, &good).unwrap();
        assert!(matches!(load::<u32>(&newer, &path, &id()), Err(Miss::Invalid(w)) if w.contains("format 3")));
        // A payload that is not the type asked for is a miss, not a panic.
        assert!(matches!(load::<(u64, u64, u64, u64)>(&KIND, &path, &id()), Err(Miss::Invalid(_))));
        // Lengths claimed beyond the file are refused before anything is allocated.
        let mut huge = good.clone();
        huge[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(miss(&huge, &id()).contains("truncated"));
        assert_eq!(std::fs::read_dir(dir.path().join("sub")).unwrap().count(), 1, "no temporary file left");
    }

    #[test]
    fn an_atomic_write_that_fails_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d");
        std::fs::create_dir(&path).unwrap(); // renaming a file over a folder fails
        let err = write_atomically(&path, &[b"x"]).unwrap_err();
        assert!(err.to_string().contains(&path.display().to_string()), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "the temporary file is removed");
    }

    #[test]
    fn records_append_and_a_torn_tail_is_ignored_and_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let a = append_record(&KIND, &path, &id(), 1, b"table-a", b"windows-a").unwrap();
        let b = append_record(&KIND, &path, &id(), 2, b"table-b", b"windows-b").unwrap();
        let file = FileSource::open(&path).unwrap();
        let (at, end) = scan_records(&KIND, &file, &id()).unwrap();
        assert_eq!((at[&1], at[&2], end), (a, b, file.len()));
        assert_eq!(read_record(&file, a).unwrap(), b"table-a");
        assert!(scan_records(&KIND, &file, &Identity { size: 11, ..id() }).is_none());
        // A torn last record: the first stays, the next append cuts the torn one off.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let (at, _) = scan_records(&KIND, &FileSource::open(&path).unwrap(), &id()).unwrap();
        assert_eq!(at.len(), 1);
        let c = append_record(&KIND, &path, &id(), 3, b"table-c", b"").unwrap();
        let file = FileSource::open(&path).unwrap();
        let (at, end) = scan_records(&KIND, &file, &id()).unwrap();
        assert_eq!((at.len(), at[&3], end), (2, c, file.len()));
        // A flipped byte in a checked part fails that record's CRC only.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[a.checked.0 as usize] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let file = FileSource::open(&path).unwrap();
        assert!(read_record(&file, a).is_none());
        assert_eq!(read_record(&file, c).unwrap(), b"table-c");
        // Another archive's file is started anew.
        let other = Identity { ino: 9, ..id() };
        append_record(&KIND, &path, &other, 5, b"t", b"w").unwrap();
        let (at, _) = scan_records(&KIND, &FileSource::open(&path).unwrap(), &other).unwrap();
        assert_eq!(at.keys().collect::<Vec<_>>(), vec![&5]);
    }
}
