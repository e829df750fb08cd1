//! The persisted tree: the finished tree of a pool (raw view, datasets, sidecars) saved beside
//! the indexes, so that a warm mount loads it instead of scanning DICOM headers, organizing
//! datasets and rendering sidecars.
//!
//! One file per set of sources and tree options (its slot), in the envelope of
//! [`crate::persist`] (kind [`TREE`]: magic, version, CRC-32, atomic write). The payload holds
//! the key and the checksums; the tree's own bytes are the envelope's tail:
//!
//! ```text
//! envelope | payload: Stored (key, counts, CRC-32 of core, CRC-32 per data block, warnings)
//!          | core: node records and strings (read whole and checked at load)
//!          | data: generated files (left in the file, each 64 KiB block checked when read)
//! ```
//!
//! The key is a SHA-256 of everything the tree is made of: every archive's identity (nested
//! ones included: `Identity::nested`), its place, name and member counts; the loose files'
//! paths, sizes and mtimes; each profile's file name and text; the tree options; the medfs
//! version. Another key is a stale file, rebuilt silently; a file that fails any check
//! (envelope, lengths, checksums, structure, a node pointing past the pool) is rebuilt with a
//! warning. A pool with no identities (`Pool::from_sources`) or no index folder is never
//! persisted.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use sha2::Digest;

use crate::archive::{ByteSource, DataLoc, FileSource, MemberKind};
use crate::index::{Identity, Miss};
use crate::persist::{self, Kind};
use crate::pool::Pool;
use crate::profile::Profile;
use crate::tree::{self, Data, DataFile, Tree, TreeOptions};

/// The persisted tree file. Bumped whenever the node layout (tree.rs) or the payload changes
/// (2: derived files).
pub const TREE: Kind = Kind { name: "tree", magic: *b"MEDFSTRE", version: 2 };

/// What the organizer makes of the same sources and profiles, in the key: bumped whenever the
/// datasets come out differently (2: generic DICOM per collection with descriptive study and
/// series names, generic NIfTI), so a tree persisted by an earlier build of the same version is
/// stale (rebuilt silently), never served.
pub const ORGANIZED: u32 = 2;

/// The payload: what is needed to check the tail and whether it is about these sources.
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    /// SHA-256 of the sources, profiles, options and version ([`Slot::key`]).
    key: [u8; 32],
    /// Number of node records.
    nodes: u32,
    /// Bytes of node records and strings.
    core_len: u64,
    /// CRC-32 of them.
    core_crc: u32,
    /// Bytes of generated files.
    data_len: u64,
    /// CRC-32 of each 64 KiB block of them.
    data_crcs: Vec<u32>,
    /// The build's warnings, shown again at every mount.
    warnings: Vec<String>,
}

/// Where the tree of one pool is saved, and what it must be about.
pub struct Slot {
    /// The file.
    pub path: PathBuf,
    /// The envelope's identity: the sources' paths and the options (stable while their
    /// contents change, so a rebuild replaces the file).
    identity: Identity,
    /// Everything the tree is made of.
    key: [u8; 32],
}

/// Why no persisted tree was used.
pub enum Missed {
    /// None saved yet.
    Absent,
    /// Saved for other contents of the same sources, other profiles or another medfs.
    Stale,
    /// Damaged or inconsistent: the reason.
    Invalid(String),
}

fn put(h: &mut sha2::Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// A digest of parsed profiles (each one's file name and text, in order).
pub fn profiles_digest(profiles: &[Profile]) -> [u8; 32] {
    let mut h = sha2::Sha256::new();
    h.update((profiles.len() as u64).to_le_bytes());
    for p in profiles {
        h.update(p.digest());
    }
    h.finalize().into()
}

/// The slot of `pool`'s tree for the profiles of digest `profiles` (from [`profiles_digest`] or
/// `profile::texts_digest`), or `None` when it must not be persisted: indexes are off, or a
/// source has no identity (in-process pools, a file that could not be stat'ed).
pub fn slot(pool: &Pool, opts: TreeOptions, profiles: &[u8; 32]) -> Option<Slot> {
    if !pool.store.enabled() {
        return None;
    }
    let mut h = sha2::Sha256::new();
    put(&mut h, b"medfs tree");
    put(&mut h, env!("CARGO_PKG_VERSION").as_bytes());
    h.update(TREE.version.to_le_bytes());
    h.update(ORGANIZED.to_le_bytes());
    h.update([opts.keep_outside_symlinks as u8, opts.datasets as u8, opts.derived as u8]);
    h.update(profiles);
    // The slot is named by where the sources are, not by what they hold.
    let mut place: Vec<u8> = Vec::new();
    h.update((pool.archives.len() as u64).to_le_bytes());
    for a in &pool.archives {
        h.update((a.source_index as u64).to_le_bytes());
        put(&mut h, a.display.as_bytes());
        h.update((a.mount_path.len() as u64).to_le_bytes());
        for c in &a.mount_path {
            put(&mut h, c);
        }
        h.update((a.opened.len() as u64).to_le_bytes());
        for m in &a.opened {
            h.update(m.to_le_bytes());
        }
        // What a password or a newer lister may change without the file changing.
        let bad = a.members.iter().filter(|m| matches!(m.data, DataLoc::Bad { .. })).count();
        h.update([a.members.len() as u64, bad as u64, a.damaged as u64].map(u64::to_le_bytes).concat());
        match (&a.file, a.loose_root()) {
            (Some(file), _) => {
                let id = file.identity.as_ref()?;
                put(&mut h, &persist::encode(id));
                if a.nest.is_none() {
                    place.extend_from_slice(&id.path);
                    place.push(0);
                }
            }
            (None, Some(root)) => {
                let root = std::os::unix::ffi::OsStrExt::as_bytes(root.as_os_str());
                put(&mut h, root);
                place.extend_from_slice(root);
                place.push(0);
                for m in &a.members {
                    put(&mut h, &m.path);
                    h.update(m.size.to_le_bytes());
                    h.update(m.mtime.to_le_bytes());
                    match &m.kind {
                        MemberKind::File => h.update([1]),
                        MemberKind::Dir => h.update([2]),
                        MemberKind::Symlink { target } => {
                            h.update([3]);
                            put(&mut h, target);
                        }
                    }
                }
            }
            (None, None) => return None,
        }
    }
    place.extend_from_slice(
        format!("tree-k{}d{}v{}", opts.keep_outside_symlinks as u8, opts.datasets as u8, opts.derived as u8).as_bytes(),
    );
    let identity = Identity { path: place, size: 0, mtime_ns: 0, dev: 0, ino: 0 };
    let path = pool.store.file_for(&identity)?.with_extension("tree");
    Some(Slot { path, identity, key: h.finalize().into() })
}

/// The tree saved in `slot`, checked whole (except the generated files' bytes, checked block by
/// block when read) and against `pool` (every file node names a member of it).
pub fn load(slot: &Slot, pool: &Pool) -> Result<Tree, Missed> {
    let opened = match persist::load::<Stored>(&TREE, &slot.path, &slot.identity) {
        Ok(o) => o,
        Err(Miss::Absent) => return Err(Missed::Absent),
        Err(Miss::Invalid(why)) => return Err(Missed::Invalid(why)),
    };
    let stored = opened.value;
    if stored.key != slot.key {
        return Err(Missed::Stale);
    }
    let invalid = |why: &str| Missed::Invalid(format!("{}: {why}", slot.path.display()));
    let file = opened.file;
    let at = opened.tail_at;
    if at.checked_add(stored.core_len).and_then(|e| e.checked_add(stored.data_len)) != Some(file.len()) {
        return Err(invalid("truncated or extended"));
    }
    let mut core = vec![0u8; stored.core_len as usize];
    file.read_exact_at(at, &mut core).map_err(|e| invalid(&e.to_string()))?;
    if crc32fast::hash(&core) != stored.core_crc {
        return Err(invalid("checksum mismatch (corrupt)"));
    }
    let data = data_file(slot, file, at + stored.core_len, stored.data_len, stored.data_crcs);
    let tree = Tree::from_parts(core, stored.nodes, data, stored.warnings).map_err(|e| invalid(&e))?;
    for (id, archive, member, size) in tree.files() {
        let m = pool.archives.get(archive as usize).and_then(|a| a.members.get(member as usize));
        if m.is_none_or(|m| m.size != size) {
            return Err(invalid(&format!("node {id} names no member of the pool")));
        }
    }
    Ok(tree)
}

fn data_file(slot: &Slot, file: Arc<FileSource>, at: u64, len: u64, crcs: Vec<u32>) -> Data {
    use std::os::unix::fs::MetadataExt;
    // Taken after the open: a file renamed over it in between only makes a damaged block remove
    // a good file (and the next mount build the tree again).
    let inode = std::fs::metadata(&slot.path).map_or((0, 0), |m| (m.dev(), m.ino()));
    Data::File(DataFile { file, at, len, crcs, path: slot.path.clone(), inode, reported: Default::default() })
}

/// Saves `tree` in `slot` atomically, then serves its generated files from the saved file, so
/// that they leave memory.
pub fn save(slot: &Slot, tree: &mut Tree) -> io::Result<()> {
    let (core, Some(data)) = tree.parts() else { return Ok(()) };
    let stored = Stored {
        key: slot.key,
        nodes: tree.len() as u32,
        core_len: core.len() as u64,
        core_crc: crc32fast::hash(core),
        data_len: data.len() as u64,
        data_crcs: tree::block_crcs(data),
        warnings: tree.warnings.clone(),
    };
    let head = persist::seal(&TREE, &slot.identity, &persist::encode(&stored));
    persist::write_atomically(&slot.path, &[&head, core, data])?;
    // Another mount may have renamed its own file over ours meanwhile: the blocks' checksums
    // would then refuse its bytes, so check what was opened is what was written.
    let file = Arc::new(FileSource::open(&slot.path)?);
    let mut again = vec![0u8; head.len()];
    file.read_exact_at(0, &mut again)?;
    if again == head && file.len() == (head.len() + core.len() + data.len()) as u64 {
        let at = (head.len() + core.len()) as u64;
        tree.set_data(data_file(slot, file, at, stored.data_len, stored.data_crcs));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{ZipMethod, entry, write_zip};
    use crate::pool::PoolOptions;

    fn pool(dir: &std::path::Path) -> Pool {
        let opts = PoolOptions { index_dir: Some(dir.join("idx")), ..Default::default() };
        Pool::open(&[dir.join("src")], 1 << 20, &opts).unwrap()
    }

    #[test]
    fn the_key_follows_profiles_options_and_sources_and_in_process_pools_have_none() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        write_zip(&dir.path().join("src/a.zip"), &[entry("x.dcm", b"x".repeat(200))], ZipMethod::Deflated).unwrap();
        std::fs::write(dir.path().join("src/labels.csv"), "a\n").unwrap();
        let on = TreeOptions { datasets: true, ..Default::default() };
        let builtin = crate::profile::builtin();
        let slot = |p: &Pool, opts, profiles: &[Profile]| slot(p, opts, &profiles_digest(profiles));
        let p = pool(dir.path());
        let a = slot(&p, on, &builtin).unwrap();
        let again = slot(&pool(dir.path()), on, &builtin).unwrap();
        assert_eq!((&a.path, a.key), (&again.path, again.key), "the same sources give the same slot and key");
        // Profiles: same slot (a rebuild replaces the file), another key.
        let fewer = slot(&p, on, &builtin[1..]).unwrap();
        assert_eq!(fewer.path, a.path);
        assert_ne!(fewer.key, a.key);
        let mut edited = builtin.clone();
        edited[0] =
            crate::profile::parse("mounts/mura.toml", &format!("{}\n# edited\n", include_str!("../mounts/mura.toml")))
                .unwrap();
        assert_ne!(slot(&p, on, &edited).unwrap().key, a.key, "a profile's text counts, not only its slug");
        // Options: a slot of their own.
        let off = slot(&p, TreeOptions::default(), &builtin).unwrap();
        assert_ne!(off.path, a.path);
        // A loose file changed: same slot, another key.
        std::fs::write(dir.path().join("src/labels.csv"), "ab\n").unwrap();
        let changed = slot(&pool(dir.path()), on, &builtin).unwrap();
        assert_eq!(changed.path, a.path);
        assert_ne!(changed.key, a.key);
        // In-process pools (no identities, no index folder) are never persisted.
        let bytes = std::fs::read(dir.path().join("src/a.zip")).unwrap();
        let mem: Arc<dyn ByteSource> = Arc::new(crate::fuzzing::Mem(bytes));
        let in_process = Pool::from_sources(vec![("a.zip".into(), mem)], 1 << 20, false).unwrap();
        assert!(slot(&in_process, on, &builtin).is_none());
        // The digest of the texts, before parsing: another profile folder, another digest.
        let plain = crate::profile::texts_digest(None).unwrap();
        assert_eq!(plain, crate::profile::texts_digest(None).unwrap());
        let user = dir.path().join("profiles");
        std::fs::create_dir(&user).unwrap();
        std::fs::write(user.join("x.toml"), "title = \"x\"\n").unwrap();
        let with_user = crate::profile::texts_digest(Some(&user)).unwrap();
        assert_ne!(with_user, plain);
        std::fs::write(user.join("x.toml"), "title = \"y\"\n").unwrap();
        assert_ne!(crate::profile::texts_digest(Some(&user)).unwrap(), with_user);
    }
}
