//! The persistent per-archive index: what listing found (members, offsets, sizes, mtimes) and
//! the decoded stream's seek points, saved so that a remount lists nothing again; and its
//! companions: the seek points of big compressed members (`<index>.idx.points`) and side files
//! such as the DICOM headers (`<index>.idx.dicom`).
//!
//! All of them are caches in the one envelope of [`crate::persist`] (magic, version, archive
//! identity, CRC-32, atomic write; postcard payloads): every doubt (stale, foreign, truncated,
//! corrupt, other version) makes a file a miss that is rebuilt with a warning, and two mounts of
//! the same archive at once each see either no file or a complete one.
//!
//! The index file is the envelope with `(Saved, windows length)` as payload and the stream's
//! seek-point windows as its tail, read on demand ([`Loaded::windows`]). The companion is the
//! envelope with an empty payload, then one record per member appended under a lock.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::archive::{ByteSource, FileSource, Member};
use crate::persist::{self, Kind, RecordAt};
pub use crate::persist::{Identity, Miss};

/// The index file. Its version is bumped whenever the payload's layout (here, or of the archive
/// types it stores) or the meaning of a stored field changes.
pub const INDEX: Kind = Kind { name: "index", magic: *b"MEDFSIDX", version: INDEX_VERSION };
/// Version of [`INDEX`]; 6: the persistence envelope and postcard payloads.
pub const INDEX_VERSION: u32 = 6;
/// The seek-point companion `<index>.idx.points`: the envelope with an empty payload, then one
/// record per member (its seek-point table checked by the record, then the windows).
const POINTS: Kind = Kind { name: "points", magic: *b"MEDFSMSP", version: 1 };

/// What an index holds besides the identity.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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
    #[serde(with = "serde_bytes")]
    pub stream_table: Vec<u8>,
    /// The seek points' windows. When saving: the bytes. When loaded: empty; they stay in the
    /// index file (see [`Loaded`]) and are read on demand. Stored as the envelope's tail, not in
    /// the payload: they carry their own CRC-32s in the stream table.
    #[serde(skip)]
    pub stream_windows: Vec<u8>,
}

/// A valid index, its windows left in the file.
pub struct Loaded {
    /// What was saved.
    pub saved: Saved,
    /// The open index file (kept open: a concurrent rebuild renames a new file over it, which
    /// leaves this one intact) and where its windows section starts.
    pub windows: (Arc<FileSource>, u64),
}

/// Where indexes live, or nowhere (in-memory only).
#[derive(Debug, Clone)]
pub struct IndexStore {
    dir: Option<PathBuf>,
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

    /// True when indexes are saved at all (not `--no-index`).
    pub fn enabled(&self) -> bool {
        self.dir.is_some()
    }

    /// The index file of an archive: named by a hash of its canonical path, so each archive has
    /// one slot; the identity inside tells whether the slot is still about the same file.
    pub fn file_for(&self, id: &Identity) -> Option<PathBuf> {
        let name = id.path.rsplit(|&b| b == b'/' || b == 0).next().unwrap_or(b"archive");
        let name: String = String::from_utf8_lossy(name)
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
            .take(60)
            .collect();
        let hash = persist::fnv1a64(&id.path);
        self.dir.as_ref().map(|d| d.join(format!("{name}.{hash:016x}.idx")))
    }

    /// A companion of the index file: `<index>.idx.<name>`.
    fn companion(&self, id: &Identity, name: &str) -> Option<PathBuf> {
        self.file_for(id).map(|p| p.with_extension(format!("idx.{name}")))
    }

    /// The saved listing of `id`, if there is a valid one. Reads the payload only; the windows
    /// stay in the file.
    pub fn load(&self, id: &Identity) -> Result<Loaded, Miss> {
        let Some(path) = self.file_for(id) else { return Err(Miss::Absent) };
        let opened = persist::load::<(Saved, u64)>(&INDEX, &path, id)?;
        let invalid = |why: String| Miss::Invalid(format!("{}: {why}", path.display()));
        let (saved, windows_len) = opened.value;
        if opened.tail_at.checked_add(windows_len) != Some(opened.file.len()) {
            return Err(invalid("windows section truncated or extended".into()));
        }
        if let Some(m) = saved.members.iter().find(|m| !m.is_consistent()) {
            return Err(invalid(format!("inconsistent data location of member {}", String::from_utf8_lossy(&m.path))));
        }
        Ok(Loaded { saved, windows: (opened.file, opened.tail_at) })
    }

    /// Saves atomically. Errors (read-only or full cache folder) are returned for a warning;
    /// the mount goes on with its in-memory listing.
    pub fn save(&self, id: &Identity, saved: &Saved) -> io::Result<()> {
        let Some(path) = self.file_for(id) else { return Ok(()) };
        persist::save(&INDEX, &path, id, &(saved, saved.stream_windows.len() as u64), &saved.stream_windows)
    }

    /// A side file of an archive's index (e.g. its DICOM headers, found after listing), stored
    /// as `<index>.idx.<kind name>` in the envelope of `kind`, so a side file of another version
    /// of the archive, or of another layout, is never used.
    pub fn load_side<T: serde::de::DeserializeOwned>(&self, id: &Identity, kind: &Kind) -> Option<T> {
        let path = self.companion(id, kind.name)?;
        let opened = persist::load::<T>(kind, &path, id).ok()?;
        (opened.tail_at == opened.file.len()).then_some(opened.value)
    }

    /// Saves a side file atomically (see [`load_side`](Self::load_side)).
    pub fn save_side<T: serde::Serialize + ?Sized>(&self, id: &Identity, kind: &Kind, value: &T) -> io::Result<()> {
        let Some(path) = self.companion(id, kind.name) else { return Ok(()) };
        persist::save(kind, &path, id, value, &[])
    }
}

/// Where one member's saved seek points are in the companion file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PointsAt {
    /// Offset and length of the seek-point table.
    pub table: (u64, u32),
    /// Offset of the windows (read on demand, each CRC-checked by its table).
    pub windows: u64,
}

impl From<RecordAt> for PointsAt {
    fn from(r: RecordAt) -> PointsAt {
        PointsAt { table: r.checked, windows: r.unchecked }
    }
}

/// The seek points saved for the members of one archive: a map to records of the companion
/// file, which stays open so windows are read from it on demand.
pub struct MemberPoints {
    /// The open companion file.
    pub file: Arc<FileSource>,
    /// Where each member's record is (the last record of a member wins).
    pub at: HashMap<u32, PointsAt>,
}

impl MemberPoints {
    /// The table of `member`, read and checked against its record's CRC-32.
    pub fn table(&self, member: u32) -> Option<(Vec<u8>, u64)> {
        let at = self.at.get(&member)?;
        let table = persist::read_record(&*self.file, RecordAt { checked: at.table, unchecked: at.windows })?;
        Some((table, at.windows))
    }

    /// Records a member just appended by [`IndexStore::add_member_points`]: the file is
    /// reopened (its length grew) unless it was replaced meanwhile, in which case the caller
    /// scans it again.
    pub fn add(&mut self, store: &IndexStore, id: &Identity, member: u32, at: PointsAt) -> bool {
        let Some(file) = store.companion(id, POINTS.name).and_then(|p| FileSource::open(&p).ok()) else {
            return false;
        };
        if file.len() < at.windows {
            return false;
        }
        self.file = Arc::new(file);
        self.at.insert(member, at);
        true
    }
}

impl IndexStore {
    /// The member seek points saved for archive `id`, if its companion file is about this very
    /// archive. A torn last record (a crash while appending) is ignored; every other doubt
    /// makes the whole file a miss.
    pub fn member_points(&self, id: &Identity) -> Option<MemberPoints> {
        let path = self.companion(id, POINTS.name)?;
        let file = Arc::new(FileSource::open(&path).ok()?);
        let (records, _) = persist::scan_records(&POINTS, &*file, id)?;
        let at = records.into_iter().map(|(member, r)| (member, r.into())).collect();
        Some(MemberPoints { file, at })
    }

    /// Appends the seek points of `member` (a table and its windows, as a codec index
    /// serializes them) to the archive's companion file, creating or replacing the file when it
    /// is about another version of the archive. Two mounts of one archive never interleave
    /// records; a crash leaves at most a torn last record (see [`persist::append_record`]).
    pub fn add_member_points(&self, id: &Identity, member: u32, table: &[u8], windows: &[u8]) -> io::Result<PointsAt> {
        let Some(path) = self.companion(id, POINTS.name) else { return Err(io::Error::other("indexes are off")) };
        persist::append_record(&POINTS, &path, id, member, table, windows).map(PointsAt::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{DataLoc, Extent, MemberKind, ZipData};

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
        let dir = tempfile::tempdir().unwrap();
        let store = IndexStore::new(Some(dir.path().to_path_buf()));
        let (id, saved) = sample();
        store.save(&id, &saved).unwrap();
        let path = store.file_for(&id).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let back = store.load(&id).unwrap();
        assert_eq!(back.windows.1, bytes.len() as u64 - 10, "the windows section is the tail");
        let back = back.saved;
        assert_eq!(format!("{:?}", back.members), format!("{:?}", saved.members));
        assert_eq!((back.format, back.damaged, &back.stream_table[..]), (2, true, &[1u8, 2, 3][..]));
        assert_eq!((back.warnings, back.stream_windows), (vec!["w1".to_string()], vec![]));
        let load = |b: &[u8], id: &Identity| {
            std::fs::write(&path, b).unwrap();
            store.load(id).map(|_| ())
        };
        // Any cut, also inside the windows section, and any flip before the windows is a miss.
        for cut in [0, 8, 20, bytes.len() / 2, bytes.len() - 11, bytes.len() - 1] {
            assert!(load(&bytes[..cut], &id).is_err(), "truncated at {cut}");
        }
        for i in (0..bytes.len() - 10).step_by(3) {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(load(&bad, &id).is_err(), "flip at {i}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(load(&longer, &id), Err(Miss::Invalid(w)) if w.contains("windows section")));
        let mut other = id.clone();
        other.mtime_ns += 1;
        assert!(matches!(load(&bytes, &other), Err(Miss::Invalid(w)) if w.contains("changed")));
    }

    #[test]
    fn a_member_whose_data_overflows_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let store = IndexStore::new(Some(dir.path().to_path_buf()));
        let (id, mut saved) = sample();
        saved.members[1].data = DataLoc::Raw { offset: u64::MAX - 3 };
        store.save(&id, &saved).unwrap();
        assert!(matches!(store.load(&id), Err(Miss::Invalid(w)) if w.contains("inconsistent")));
    }

    #[test]
    fn side_files_are_checked_like_the_index() {
        const SIDE: Kind = Kind { name: "test", magic: *b"MEDFSTST", version: 1 };
        let dir = tempfile::tempdir().unwrap();
        let store = IndexStore::new(Some(dir.path().to_path_buf()));
        let (id, _) = sample();
        store.save_side(&id, &SIDE, &vec![(1u32, "a".to_string())]).unwrap();
        assert_eq!(store.load_side::<Vec<(u32, String)>>(&id, &SIDE), Some(vec![(1, "a".to_string())]));
        let path = store.file_for(&id).unwrap().with_extension("idx.test");
        assert!(path.exists());
        assert_eq!(store.load_side::<Vec<(u32, String)>>(&Identity { ino: 5, ..id.clone() }, &SIDE), None);
        assert_eq!(store.load_side::<Vec<(u32, String)>>(&id, &Kind { version: 2, ..SIDE }), None);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.push(0);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(store.load_side::<Vec<(u32, String)>>(&id, &SIDE), None, "a tail is not allowed");
        assert_eq!(IndexStore::new(None).load_side::<u32>(&id, &SIDE), None);
        IndexStore::new(None).save_side(&id, &SIDE, &1u32).unwrap();
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
