//! Archives inside archives (a bundle zip holding a 7z, split zip parts, a tar.gz inside a tar):
//! found among the members of the pool's archives, opened in place and added to the pool.
//!
//! A member whose name promises an archive (`.zip`, `.7z`, `.tar`, `.tgz`, `.tar.gz`, ... and
//! their byte-split parts `x.zip.001`...) is detected by content like any file; its bytes are
//! read through its outer archive's reader ([`MemberSource`]): ranges of a stored member
//! directly, a compressed one through the outer format's cached decoding and seek points. A
//! member of any other name is never probed: reading the head of each of 100,000 compressed
//! images would cost a decode each. A single compressed file (`notes.csv.gz`) in an archive
//! stays a file. Split parts lying in one folder of one archive are joined as they are from a
//! folder on disk.
//!
//! A nested archive's index is saved under an identity made of its outermost file's and the
//! member's path ([`Identity::nested`]): a remount reads nothing, and any change to the
//! outermost file invalidates it. Its reads are checked against the outermost file like those of
//! the archive holding it. Nesting is followed `PoolOptions::max_depth` levels deep (a zip
//! holding itself stops there).
//!
//! In the raw view the opened archive is a folder named as the member
//! (`_archives/bundle.zip/train.7z/`), and the member's own bytes stay reachable as
//! `train.7z~raw` ([`RAW_SUFFIX`]); split parts keep their names beside the joined folder.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use super::{Listed, Lister, Nest, Pool, PoolError, PoolOptions, Target};
use crate::archive::format::OpenArchive;
use crate::archive::split::{self, SplitSource};
use crate::archive::{ByteSource, DataLoc, Member, MemberKind, path};
use crate::cache::BlockCache;
use crate::index::{Identity, IndexStore};
use crate::reader::{CrcTracks, ReadCtx};

/// Appended to the name of a member opened as a nested archive: its folder takes the name,
/// its own bytes are shown as `name~raw`.
pub const RAW_SUFFIX: &str = "~raw";

/// Most bytes one `read_at` asks the outer archive for (callers loop): bounds the buffer a
/// caller with a huge read could make us allocate.
const MAX_READ: usize = 4 << 20;

/// The bytes of one member of a listed archive, read through that archive's reader.
pub struct MemberSource {
    outer: Arc<dyn OpenArchive>,
    cache: Arc<BlockCache>,
    store: IndexStore,
    /// The outer archive's cache owner, name and identity (its seek-point companions).
    owner: u32,
    outer_display: String,
    identity: Option<Identity>,
    index: u32,
    member: Member,
    crc: CrcTracks,
    served: AtomicU64,
}

impl MemberSource {
    /// Member `index` of archive `outer` of `pool`.
    pub fn new(pool: &Pool, outer: u32, index: u32) -> MemberSource {
        let a = &pool.archives[outer as usize];
        MemberSource {
            outer: a.data.clone(),
            cache: pool.cache.clone(),
            store: pool.store.clone(),
            owner: a.owner,
            outer_display: a.display.clone(),
            identity: a.file.as_ref().and_then(|f| f.identity.clone()),
            index,
            member: a.members[index as usize].clone(),
            crc: CrcTracks::default(),
            served: AtomicU64::new(0),
        }
    }
}

impl ByteSource for MemberSource {
    fn len(&self) -> u64 {
        self.member.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let size = self.member.size;
        if offset >= size || buf.is_empty() {
            return Ok(0);
        }
        let len = buf.len().min(MAX_READ).min((size - offset).min(usize::MAX as u64) as usize);
        if let DataLoc::None = self.member.data {
            buf[..len].fill(0);
            return Ok(len);
        }
        let ctx =
            ReadCtx::new(&self.cache, &self.store, self.owner, &self.outer_display, self.identity.as_ref(), &self.crc);
        let mut out = Vec::with_capacity(len);
        self.outer.read(&ctx, self.index, &self.member, offset, len, &mut out)?;
        if out.len() != len {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{}: short read", self.describe())));
        }
        buf[..len].copy_from_slice(&out);
        self.served.fetch_add(len as u64, Ordering::Relaxed);
        Ok(len)
    }

    fn describe(&self) -> String {
        format!("{}/{}", self.outer_display, String::from_utf8_lossy(&self.member.path))
    }

    fn bytes_read(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

/// Member names that promise an archive worth opening in place.
fn nestable(name: &[u8]) -> bool {
    [".zip", ".7z", ".tar", ".tgz", ".tbz", ".tbz2", ".txz", ".tzst", ".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst"]
        .iter()
        .any(|ext| name.len() >= ext.len() && name[name.len() - ext.len()..].eq_ignore_ascii_case(ext.as_bytes()))
}

/// `train.zip.003` → `("train.zip", 3)`: a numbered part of a name [`nestable`] accepts.
fn part_of_nestable(name: &[u8]) -> Option<(&str, u32)> {
    std::str::from_utf8(name).ok().and_then(split::part_number).filter(|(base, _)| nestable(base.as_bytes()))
}

/// A member (or a run of split parts) to open.
struct Found {
    /// The archive holding it (place in the pool).
    outer: u32,
    /// Its member, or its parts in order.
    members: Vec<u32>,
    /// Its path in the outer archive, sanitized (for split parts: the joined name).
    components: Vec<Vec<u8>>,
}

/// The members of archive `a` (place `outer`) to open: single ones by name, split parts
/// grouped per folder from `.001` on without gaps (parts after a gap stay files, with a warning).
fn find(outer: u32, members: &[Member], display: &str, warnings: &mut Vec<String>) -> Vec<Found> {
    let mut out = Vec::new();
    let mut groups: BTreeMap<Vec<Vec<u8>>, Vec<(u32, u32)>> = BTreeMap::new();
    for (i, m) in members.iter().enumerate() {
        if m.kind != MemberKind::File || m.size == 0 || matches!(m.data, DataLoc::Bad { .. }) {
            continue;
        }
        // Cheap test first, no allocation: the sanitized name is one of the stored name's
        // `/`-separated pieces, so a member none of whose pieces could be an archive is passed
        // over without sanitizing (nearly every member of an image collection).
        let stored = m.path.split(|&b| b == 0).next().unwrap_or_default();
        if !stored.split(|&b| b == b'/').any(|piece| nestable(piece) || part_of_nestable(piece).is_some()) {
            continue;
        }
        let Some(clean) = path::normalize(&m.path) else { continue };
        let name = clean.components.last().expect("normalize never returns empty");
        if let Some((base, n)) = part_of_nestable(name) {
            let mut joined = clean.components.clone();
            *joined.last_mut().expect("non-empty") = base.as_bytes().to_vec();
            groups.entry(joined).or_default().push((n, i as u32));
        } else if nestable(name) {
            out.push(Found { outer, members: vec![i as u32], components: clean.components });
        }
    }
    for (components, mut parts) in groups {
        parts.sort();
        let shown = format!("{display}: {}", String::from_utf8_lossy(&path::join(&components)));
        let (run, warning) = split::leading_run(&parts, &shown);
        warnings.extend(warning);
        if run == 0 {
            continue;
        }
        out.push(Found { outer, members: parts[..run].iter().map(|&(_, m)| m).collect(), components });
    }
    out
}

/// Opens the archives nested in the pool's archives, level by level down to
/// `opts.max_depth`, and adds them to the pool; new cache owners start at `next_owner`.
pub(super) fn open_nested(
    pool: &mut Pool,
    lister: &Lister<'_>,
    opts: &PoolOptions,
    mut next_owner: u32,
) -> Result<(), PoolError> {
    let mut frontier: Vec<u32> = pool.archives.iter().filter(|a| a.file.is_some()).map(|a| a.id).collect();
    let mut depth = 0;
    loop {
        let mut found = Vec::new();
        for &outer in &frontier {
            let a = &pool.archives[outer as usize];
            found.extend(find(outer, &a.members, &a.display, &mut pool.warnings));
        }
        if found.is_empty() {
            return Ok(());
        }
        depth += 1;
        if depth > opts.max_depth {
            if opts.max_depth > 0 {
                let f = &found[0];
                pool.warnings.push(format!(
                    "warning: {}: {} and {} other archive(s) lie deeper than --max-depth {}; shown as files",
                    pool.archives[f.outer as usize].display,
                    String::from_utf8_lossy(&path::join(&f.components)),
                    found.len() - 1,
                    opts.max_depth
                ));
            }
            return Ok(());
        }
        let pool_ref = &*pool;
        let listed: Vec<Listed> = found
            .par_iter()
            .enumerate()
            .with_max_len(1)
            .map(|(k, f)| {
                let outer = &pool_ref.archives[f.outer as usize];
                let parts: Vec<Arc<dyn ByteSource>> = f
                    .members
                    .iter()
                    .map(|&m| Arc::new(MemberSource::new(pool_ref, f.outer, m)) as Arc<dyn ByteSource>)
                    .collect();
                let first = &outer.members[f.members[0] as usize].path;
                let (file, key): (Arc<dyn ByteSource>, Vec<u8>) = match parts.len() {
                    1 => (parts[0].clone(), first.clone()),
                    n => {
                        let name = parts[0].describe();
                        (
                            Arc::new(SplitSource::new(parts, name)),
                            [&first[..], format!("+{}", n - 1).as_bytes()].concat(),
                        )
                    }
                };
                let origin = outer.file.as_ref().map(|f| f.origin.as_slice()).unwrap_or_default();
                let joined = path::join(&f.components);
                let target = Target {
                    file,
                    path: Path::new(std::ffi::OsStr::from_bytes(&joined)),
                    identity: outer.file.as_ref().and_then(|f| f.identity.as_ref()).map(|id| id.nested(&key)),
                    disk_parts: if origin.len() > 1 { origin } else { &[] },
                    mtime: outer.members[f.members[0] as usize].mtime,
                };
                lister.list(target, next_owner + k as u32)
            })
            .collect();
        next_owner += found.len() as u32;
        frontier.clear();
        for (f, outcome) in found.into_iter().zip(listed) {
            let outer = &pool.archives[f.outer as usize];
            let shown = format!("{}: {}", outer.display, String::from_utf8_lossy(&path::join(&f.components)));
            match outcome {
                Listed::Archive(mut a) => {
                    if a.damaged && opts.strict {
                        let reason = a.warnings.first().cloned().unwrap_or_else(|| "damaged".into());
                        return Err(PoolError::Damaged { path: shown, reason });
                    }
                    a.id = pool.archives.len() as u32;
                    a.source_index = outer.source_index;
                    a.mount_path = [outer.mount_path.clone(), f.components].concat();
                    let origin: Vec<PathBuf> = outer.file.as_ref().map(|f| f.origin.clone()).unwrap_or_default();
                    if let Some(file) = &mut a.file {
                        file.origin = origin;
                    }
                    pool.warnings.extend(a.warnings.iter().map(|w| format!("warning: {w}")));
                    if let [single] = f.members[..] {
                        pool.archives[f.outer as usize].opened.push(single);
                    }
                    a.nest = Some(Nest { outer: f.outer, members: f.members, depth });
                    frontier.push(a.id);
                    pool.archives.push(a);
                }
                Listed::Failed(reason) => pool
                    .warnings
                    .push(format!("warning: {shown}: not opened as an archive ({reason}); shown as a file")),
                Listed::NotArchive => {
                    pool.warnings.push(format!("warning: {shown}: named like an archive but is none; shown as a file"))
                }
            }
        }
        for a in &mut pool.archives {
            a.opened.sort_unstable();
        }
    }
}
