//! MedFs: the filesystem core in FUSE's shape (lookup, getattr, read, readdir...), returning
//! plain structs. It never sees fuser, so `medfs ls`/`cat` and tests drive it without a kernel.

use crate::archive::path::normalize;
use crate::archive::{DataLoc, MemberKind};
use crate::dicomtree::{DicomFile, organize_dicom};
use crate::error::FsError;
use crate::organize::{self, ContentSource, PoolFile};
use crate::pool::Pool;
use crate::profile::Profile;
use crate::reader::Reader;
use crate::tree::{self, NodeId, NodeKind, ROOT, Tree, TreeBuilder, TreeOptions};

/// Inode number of a node.
pub type Ino = u64;

/// The root's inode number.
pub const ROOT_INO: Ino = 1;

/// What an inode is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A folder.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link.
    Symlink,
}

/// Attributes of an inode, as `stat` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    /// Inode number.
    pub ino: Ino,
    /// Kind.
    pub kind: FileKind,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds since the epoch (also used for ctime and atime).
    pub mtime: i64,
    /// Permission bits: 0444 for files, 0555 for folders, 0777 for links.
    pub perm: u16,
    /// Link count.
    pub nlink: u32,
}

/// One directory entry with its attributes (readdirplus).
#[derive(Debug, Clone)]
pub struct DirEntry<'a> {
    /// Name.
    pub name: &'a [u8],
    /// Attributes of the entry.
    pub attr: Attr,
    /// Cookie to pass back to continue after this entry.
    pub next_offset: u64,
}

/// Filesystem-wide numbers for `statfs`.
#[derive(Debug, Clone, Copy)]
pub struct StatFs {
    /// Total bytes of all files.
    pub bytes: u64,
    /// Number of inodes.
    pub files: u64,
}

/// The core.
pub struct MedFs {
    tree: Tree,
    reader: Reader,
    total_bytes: u64,
    /// TEST HOOK, see `PANIC_HOOK_ENV`.
    panic_on: Option<Box<[u8]>>,
}

/// TEST HOOK: `MEDFS_TEST_PANIC_ON=<file name>` makes every read of a file of that name panic
/// inside the core, so the tests can check that one panicking request is answered with EIO and
/// the daemon keeps serving (src/fuse.rs `guard`). Read once when the core is built; unset (the
/// only setting outside tests) it costs one `Option` check per read.
pub const PANIC_HOOK_ENV: &str = "MEDFS_TEST_PANIC_ON";

impl MedFs {
    /// Builds the tree over a listed pool: the raw view of every archive, and a folder per
    /// dataset that `profiles` recognize in the pool.
    pub fn new(pool: Pool, opts: TreeOptions, profiles: &[Profile]) -> MedFs {
        let reader = Reader::new(pool);
        let tree = Self::build_tree(&reader, opts, profiles);
        MedFs::from_parts(tree, reader)
    }

    /// The core over a finished tree and the reader its file nodes point into. `new` ends here;
    /// tests start here, with a tree they built by hand or over a pool of in-memory sources, so
    /// that every operation can be driven without a kernel, a DICOM scan or a profile.
    pub fn from_parts(tree: Tree, reader: Reader) -> MedFs {
        let total_bytes = (0..tree.len() as NodeId).filter_map(|i| tree.node(i)).map(|n| n.size()).sum();
        let panic_on = std::env::var_os(PANIC_HOOK_ENV).map(|n| Box::from(n.as_encoded_bytes()));
        MedFs { tree, reader, total_bytes, panic_on }
    }

    /// The tree `new` shows over the reader's pool: DICOM headers scanned (when datasets are
    /// on), datasets organized by `profiles`, the raw view of every archive, and one DICOM
    /// dataset per archive that no profile claims.
    pub fn build_tree(reader: &Reader, opts: TreeOptions, profiles: &[Profile]) -> Tree {
        let newest = reader.pool().archives.iter().map(|a| a.mtime).max().unwrap_or(0);
        let started = std::time::Instant::now();
        let mut builder = TreeBuilder::new(newest, opts);
        // DICOM headers first: profiles may place files by their tags.
        let headers = if opts.datasets { crate::dicomscan::scan(reader, &reader.pool().store) } else { Vec::new() };
        // Recognizing datasets reads label tables and renders sidecars; the raw view needs none
        // of that: build both at once.
        let datasets = std::thread::scope(|s| {
            let organizing = s.spawn(|| {
                if profiles.is_empty() {
                    return Vec::new();
                }
                let files = pool_files(reader.pool(), &headers);
                organize::organize(profiles, &files, reader)
            });
            builder.archives_dir(newest);
            for (i, archive) in reader.pool().archives.iter().enumerate() {
                builder.add_archive(i as u32, archive);
            }
            organizing.join().expect("organizing datasets panicked")
        });
        tracing::info!("raw view built and datasets organized in {:.3} s", started.elapsed().as_secs_f64());
        let mut claimed = vec![false; reader.pool().archives.len()];
        let mut slugs: Vec<String> = Vec::new();
        for dataset in datasets {
            for f in &dataset.files {
                claimed[f.source.0 as usize] = true;
            }
            slugs.push(dataset.slug.clone());
            add_dataset(&mut builder, reader.pool(), dataset, newest);
        }
        // DICOM that no profile claims is organized by its tags, one dataset per archive.
        for (ai, found) in headers.iter().enumerate().filter(|(ai, h)| !h.is_empty() && !claimed[*ai]) {
            let a = &reader.pool().archives[ai];
            // Annotation XMLs carry only the series they name: not DICOM files to organize.
            let files: Vec<DicomFile> = found
                .iter()
                .filter(|(_, info)| !info.is_series_reference())
                .map(|(&m, info)| DicomFile {
                    id: (ai as u32, m),
                    archive: String::from_utf8_lossy(&a.mount_path.join(&b'/')).into_owned(),
                    path: String::from_utf8_lossy(&a.members[m as usize].path).into_owned(),
                    info: (**info).clone(),
                })
                .collect();
            if files.is_empty() {
                continue;
            }
            let slug = unique_slug(&dataset_stem(a), &mut slugs);
            add_dataset(&mut builder, reader.pool(), organize_dicom(&slug, &files), newest);
        }
        tracing::info!("DICOM organized after {:.3} s", started.elapsed().as_secs_f64());
        let tree = builder.finish();
        tracing::info!("tree of {} names built in {:.3} s", tree.len(), started.elapsed().as_secs_f64());
        tree
    }

    /// The tree.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// The pool.
    pub fn pool(&self) -> &Pool {
        self.reader.pool()
    }

    fn node_id(ino: Ino) -> Result<NodeId, FsError> {
        ino.checked_sub(1).and_then(|i| NodeId::try_from(i).ok()).ok_or(FsError::NotFound)
    }

    fn attr_of(&self, id: NodeId) -> Result<Attr, FsError> {
        let node = self.tree.node(id).ok_or(FsError::NotFound)?;
        let (kind, perm, nlink) = match &node.kind {
            NodeKind::Dir { subdirs, .. } => (FileKind::Dir, 0o555, 2 + subdirs),
            NodeKind::File { .. } | NodeKind::Generated { .. } => (FileKind::File, 0o444, 1),
            NodeKind::Symlink { .. } => (FileKind::Symlink, 0o777, 1),
        };
        Ok(Attr { ino: id as Ino + 1, kind, size: node.size(), mtime: node.mtime, perm, nlink })
    }

    /// Looks `name` up in folder `parent`.
    pub fn lookup(&self, parent: Ino, name: &[u8]) -> Result<Attr, FsError> {
        let dir = Self::node_id(parent)?;
        // An inode that does not exist is ENOENT, not "not a directory".
        self.tree.node(dir).ok_or(FsError::NotFound)?;
        if self.tree.children(dir).is_none() {
            return Err(FsError::NotADirectory);
        }
        let id = self.tree.lookup(dir, name).ok_or(FsError::NotFound)?;
        self.attr_of(id)
    }

    /// Attributes of an inode.
    pub fn getattr(&self, ino: Ino) -> Result<Attr, FsError> {
        self.attr_of(Self::node_id(ino)?)
    }

    /// Target of a symlink.
    pub fn readlink(&self, ino: Ino) -> Result<&[u8], FsError> {
        match &self.tree.node(Self::node_id(ino)?).ok_or(FsError::NotFound)?.kind {
            NodeKind::Symlink { target } => Ok(target),
            _ => Err(FsError::NotASymlink),
        }
    }

    /// Reads up to `size` bytes at `offset` into `out`.
    pub fn read(&self, ino: Ino, offset: u64, size: usize, out: &mut Vec<u8>) -> Result<(), FsError> {
        let node = self.tree.node(Self::node_id(ino)?).ok_or(FsError::NotFound)?;
        if self.panic_on.as_deref().is_some_and(|name| name == &*node.name) {
            panic!("{PANIC_HOOK_ENV} test hook: read of {}", String::from_utf8_lossy(&node.name));
        }
        match &node.kind {
            NodeKind::File { archive, member, .. } => self.reader.read(*archive, *member, offset, size, out),
            NodeKind::Generated { bytes } => {
                out.clear();
                let start = (offset.min(bytes.len() as u64)) as usize;
                let end = start.saturating_add(size).min(bytes.len());
                out.extend_from_slice(&bytes[start..end]);
                Ok(())
            }
            NodeKind::Dir { .. } => Err(FsError::IsADirectory),
            NodeKind::Symlink { .. } => Err(FsError::NotFound),
        }
    }

    /// Lists folder `ino` from cookie `offset` (0 to start), with `.` and `..`; `add` returns
    /// true when the reply buffer is full.
    pub fn readdir(&self, ino: Ino, offset: u64, mut add: impl FnMut(DirEntry<'_>) -> bool) -> Result<(), FsError> {
        let id = Self::node_id(ino)?;
        let node = self.tree.node(id).ok_or(FsError::NotFound)?;
        let children = self.tree.children(id).ok_or(FsError::NotADirectory)?;
        let total = children.len() as u64 + 2;
        for cookie in offset..total {
            let (name, target): (&[u8], NodeId) = match cookie {
                0 => (b".", id),
                1 => (b"..", node.parent),
                n => {
                    let child = children[(n - 2) as usize];
                    (&self.tree.node(child).expect("child exists").name, child)
                }
            };
            if add(DirEntry { name, attr: self.attr_of(target)?, next_offset: cookie + 1 }) {
                break;
            }
        }
        Ok(())
    }

    /// Filesystem numbers.
    pub fn statfs(&self) -> StatFs {
        StatFs { bytes: self.total_bytes, files: self.tree.len() as u64 }
    }

    /// Every path under `path` (depth first, sorted), for `medfs ls`.
    pub fn walk(&self, path: &[u8]) -> Result<Vec<(Vec<u8>, Attr)>, FsError> {
        let start = self.tree.resolve(path).ok_or(FsError::NotFound)?;
        let mut out = Vec::new();
        let mut stack = vec![start];
        while let Some(id) = stack.pop() {
            out.push((self.tree.path_of(id), self.attr_of(id)?));
            if let Some(children) = self.tree.children(id) {
                stack.extend(children.iter().rev());
            }
        }
        Ok(out)
    }

    /// Resolves a path to an inode.
    pub fn resolve(&self, path: &[u8]) -> Result<Ino, FsError> {
        self.tree.resolve(path).map(|id| id as Ino + 1).ok_or(FsError::NotFound)
    }

    /// Name of the raw view folder.
    pub fn archives_dir_name() -> &'static [u8] {
        tree::ARCHIVES_DIR
    }
}

/// The name a generic DICOM dataset takes: its archive's file stem, or its folder's name.
fn dataset_stem(a: &crate::pool::Archive) -> String {
    let name = match (a.loose_root(), a.mount_path.last()) {
        (Some(root), _) => root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "dicom".into()),
        (None, Some(last)) => String::from_utf8_lossy(last).into_owned(),
        (None, None) => "dicom".into(),
    };
    let lower = name.to_ascii_lowercase();
    let cut = [".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst", ".tgz", ".zip", ".tar", ".gz", ".7z"]
        .iter()
        .find(|ext| lower.ends_with(*ext))
        .map_or(name.len(), |ext| name.len() - ext.len());
    let stem = &name[..cut];
    if stem.is_empty() || stem.starts_with('_') { format!("dicom-{stem}") } else { stem.to_string() }
}

/// `slug`, or `slug~2`, `~3`... when a dataset of that name exists already.
fn unique_slug(slug: &str, taken: &mut Vec<String>) -> String {
    let unique = (1..)
        .map(|n| if n == 1 { slug.to_string() } else { format!("{slug}~{n}") })
        .find(|s| !taken.contains(s) && s.as_bytes() != tree::ARCHIVES_DIR)
        .expect("unbounded");
    taken.push(unique.clone());
    unique
}

/// Every readable file of the pool as the organizer sees it: the archive's name under
/// `_archives/` and the member's sanitized path. Loose files count their first path component
/// as their "archive" (a CSV next to the archives is its own source).
fn pool_files(pool: &Pool, headers: &[crate::dicomscan::Headers]) -> Vec<PoolFile> {
    let mut files = Vec::new();
    for (ai, a) in pool.archives.iter().enumerate() {
        let archive_name = String::from_utf8_lossy(&a.mount_path.join(&b'/')).into_owned();
        for (mi, m) in a.members.iter().enumerate() {
            if m.kind != MemberKind::File || matches!(m.data, DataLoc::Bad { .. }) {
                continue;
            }
            let Some(clean) = normalize(&m.path) else { continue };
            let path = String::from_utf8_lossy(&crate::archive::path::join(&clean.components)).into_owned();
            let archive = if a.loose_root().is_some() {
                String::from_utf8_lossy(&clean.components[0]).into_owned()
            } else {
                archive_name.clone()
            };
            let dicom = headers.get(ai).and_then(|h| h.get(&(mi as u32))).cloned();
            files.push(PoolFile { id: (ai as u32, mi as u32), archive, path, size: m.size, mtime: m.mtime, dicom });
        }
    }
    files
}

fn add_dataset(builder: &mut TreeBuilder, pool: &Pool, dataset: organize::Dataset, mtime: i64) {
    let root = builder.ensure_dir(ROOT, &[dataset.slug.as_bytes().to_vec()], mtime, &dataset.slug);
    // Paths come sorted, so a study's files are neighbours: remember the last folder instead of
    // looking every component up again (NIH scale is 700k names).
    let mut last_dir = String::new();
    let mut last_id = root;
    let mut dir_of = |builder: &mut TreeBuilder, rel_path: &str| -> NodeId {
        let dir = rel_path.rsplit_once('/').map_or("", |(d, _)| d);
        if dir != last_dir || last_id == root {
            let comps: Vec<Vec<u8>> = dir.split('/').filter(|c| !c.is_empty()).map(|c| c.as_bytes().to_vec()).collect();
            last_id = builder.ensure_dir(root, &comps, mtime, &dataset.slug);
            last_dir.clear();
            last_dir.push_str(dir);
        }
        last_id
    };
    let name_of = |rel_path: &str| rel_path.rsplit('/').next().unwrap_or(rel_path).as_bytes().to_vec();
    for f in &dataset.files {
        let dir = dir_of(builder, &f.rel_path);
        let m = &pool.archives[f.source.0 as usize].members[f.source.1 as usize];
        let kind = NodeKind::File { archive: f.source.0, member: f.source.1, size: m.size };
        builder.put(dir, &name_of(&f.rel_path), m.mtime, kind, &dataset.slug);
    }
    for g in dataset.generated {
        let dir = dir_of(builder, &g.rel_path);
        builder.add_generated(dir, &name_of(&g.rel_path), mtime, g.bytes.into_boxed_slice());
    }
    for w in &dataset.warnings {
        builder.warn(format!("{}: {w}", dataset.slug));
    }
}

/// The organizer reads label tables and image headers through the same reader as the mount.
impl ContentSource for Reader {
    fn read_all(&self, id: (u32, u32)) -> std::io::Result<Vec<u8>> {
        let size = self.pool().archives[id.0 as usize].members[id.1 as usize].size;
        let mut out = Vec::new();
        self.read(id.0, id.1, 0, size.min(usize::MAX as u64) as usize, &mut out)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(out)
    }

    fn read_head(&self, id: (u32, u32), len: usize) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        Reader::read_head(self, id.0, id.1, len, &mut out).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::archive::Member;
    use crate::tree::Node;

    /// Issue 3: the in-memory index of a 1,000,000-member archive stays under 200 bytes per
    /// member plus the names. Per member we hold its `Member`, its tree `Node`, its place in its
    /// folder's child list and (zip) its lazily resolved data offset.
    #[test]
    fn per_member_memory_stays_under_200_bytes_plus_names() {
        let per_member = std::mem::size_of::<Member>()
            + std::mem::size_of::<Node>()
            + std::mem::size_of::<crate::tree::NodeId>()
            + std::mem::size_of::<std::sync::atomic::AtomicU64>();
        eprintln!(
            "Member {} + Node {} + child id + data offset = {per_member} bytes",
            std::mem::size_of::<Member>(),
            std::mem::size_of::<Node>()
        );
        assert!(per_member < 200, "{per_member} bytes per member");
    }
}
