//! MedFs: the filesystem core in FUSE's shape (lookup, getattr, read, readdir...), returning
//! plain structs. It never sees fuser, so `medfs ls`/`cat` and tests drive it without a kernel.
//! It only serves: the tree and reader it serves are made by `build.rs`.

use crate::derive;
use crate::error::FsError;
use crate::pool::Pool;
use crate::reader::Reader;
use crate::tree::{self, Kind, NodeId, Tree};

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

/// Extended attribute: where a file's bytes come from (see [`MedFs::getxattr`]).
pub const XATTR_SOURCE: &str = "user.medfs.source";
/// Extended attribute: the labels of the study a file or folder belongs to.
pub const XATTR_LABELS: &str = "user.medfs.labels";

/// The answer to `getxattr`/`listxattr`, as FUSE wants it: a caller asking with a buffer of 0
/// bytes gets the size it needs, then asks again with a buffer that big.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Xattr {
    /// The length of the value (the caller's size was 0).
    Size(u32),
    /// The value (it fits the caller's buffer).
    Data(Vec<u8>),
}

impl Xattr {
    /// `value` answered to a caller whose buffer holds `size` bytes.
    fn fit(value: Vec<u8>, size: u32) -> Result<Xattr, FsError> {
        let len = u32::try_from(value.len()).map_err(|_| FsError::BufferTooSmall)?;
        match size {
            0 => Ok(Xattr::Size(len)),
            s if s < len => Err(FsError::BufferTooSmall),
            _ => Ok(Xattr::Data(value)),
        }
    }
}

/// The core.
pub struct MedFs {
    tree: Tree,
    reader: Reader,
    total_bytes: u64,
    /// Work done for derived files.
    derived: derive::Served,
    /// TEST HOOK, see `PANIC_HOOK_ENV`.
    panic_on: Option<Box<[u8]>>,
}

/// TEST HOOK: `MEDFS_TEST_PANIC_ON=<file name>` makes every read of a file of that name panic
/// inside the core, so the tests can check that one panicking request is answered with EIO and
/// the daemon keeps serving (src/fuse.rs `guard`). Read once when the core is built; unset (the
/// only setting outside tests) it costs one `Option` check per read.
pub const PANIC_HOOK_ENV: &str = "MEDFS_TEST_PANIC_ON";

impl MedFs {
    /// The core over a finished tree and the reader its file nodes point into: those of
    /// `build::parts` (datasets and raw view over a pool), or a tree a test built by hand, so
    /// that every operation can be driven without a kernel, a DICOM scan or a profile.
    pub fn from_parts(tree: Tree, reader: Reader) -> MedFs {
        let total_bytes = tree.total_bytes();
        let panic_on = std::env::var_os(PANIC_HOOK_ENV).map(|n| Box::from(n.as_encoded_bytes()));
        MedFs { tree, reader, total_bytes, derived: derive::Served::default(), panic_on }
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
            Kind::Dir { subdirs, .. } => (FileKind::Dir, 0o555, 2 + subdirs),
            Kind::File { .. } | Kind::Generated { .. } | Kind::Derived { .. } => (FileKind::File, 0o444, 1),
            Kind::Symlink { .. } => (FileKind::Symlink, 0o777, 1),
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
        match self.tree.node(Self::node_id(ino)?).ok_or(FsError::NotFound)?.kind {
            Kind::Symlink { target } => Ok(target),
            _ => Err(FsError::NotASymlink),
        }
    }

    /// Reads up to `size` bytes at `offset` into `out`.
    pub fn read(&self, ino: Ino, offset: u64, size: usize, out: &mut Vec<u8>) -> Result<(), FsError> {
        let id = Self::node_id(ino)?;
        let node = self.tree.node(id).ok_or(FsError::NotFound)?;
        if self.panic_on.as_deref().is_some_and(|name| name == node.name) {
            panic!("{PANIC_HOOK_ENV} test hook: read of {}", String::from_utf8_lossy(node.name));
        }
        match node.kind {
            Kind::File { archive, member, .. } => self.reader.read(archive, member, offset, size, out),
            Kind::Generated { .. } => {
                self.tree.read_generated(id, offset, size, out).map_err(|reason| FsError::Unreadable {
                    archive: "persisted tree".into(),
                    member: String::from_utf8_lossy(&self.tree.path_of(id)).into_owned(),
                    reason,
                })
            }
            Kind::Derived { .. } => derive::read(&self.tree, &self.reader, &self.derived, id, offset, size, out),
            Kind::Dir { .. } => Err(FsError::IsADirectory),
            Kind::Symlink { .. } => Err(FsError::NotFound),
        }
    }

    /// The extended attributes of an inode, names only (cheap: no sidecar is read): every file
    /// has [`XATTR_SOURCE`]; a study folder and everything in it has [`XATTR_LABELS`].
    /// Symlinks have none (Linux refuses `user.` attributes on them before asking).
    pub fn xattr_names(&self, ino: Ino) -> Result<Vec<&'static str>, FsError> {
        let id = Self::node_id(ino)?;
        let node = self.tree.node(id).ok_or(FsError::NotFound)?;
        let mut names = Vec::new();
        if matches!(node.kind, Kind::File { .. } | Kind::Generated { .. } | Kind::Derived { .. }) {
            names.push(XATTR_SOURCE);
        }
        if !matches!(node.kind, Kind::Symlink { .. }) && self.tree.study_labels(id).is_some() {
            names.push(XATTR_LABELS);
        }
        Ok(names)
    }

    /// `listxattr`: the names, each followed by a NUL.
    pub fn listxattr(&self, ino: Ino, size: u32) -> Result<Xattr, FsError> {
        let list = self.xattr_names(ino)?.iter().flat_map(|n| n.bytes().chain([0])).collect();
        Xattr::fit(list, size)
    }

    /// `getxattr`: the value of attribute `name` of inode `ino`. [`XATTR_SOURCE`]: the archive
    /// and member (`Pool::source_of`), `generated by medfs` for sidecars, or the kind and the
    /// inputs' sources for derived files. [`XATTR_LABELS`]: the study's `labels.json`, byte for
    /// byte. Any other `user.` name: [`FsError::NoAttribute`] (ENODATA); a name of another
    /// namespace: [`FsError::NamespaceNotSupported`] (EOPNOTSUPP).
    pub fn getxattr(&self, ino: Ino, name: &[u8], size: u32) -> Result<Xattr, FsError> {
        let id = Self::node_id(ino)?;
        let node = self.tree.node(id).ok_or(FsError::NotFound)?;
        if !name.starts_with(b"user.") {
            return Err(FsError::NamespaceNotSupported);
        }
        if !self.xattr_names(ino)?.iter().any(|n| n.as_bytes() == name) {
            return Err(FsError::NoAttribute);
        }
        let unreadable = |reason: String| FsError::Unreadable {
            archive: "persisted tree".into(),
            member: String::from_utf8_lossy(&self.tree.path_of(id)).into_owned(),
            reason,
        };
        let value = if name == XATTR_SOURCE.as_bytes() {
            match node.kind {
                Kind::File { archive, member, .. } => self.pool().source_of(archive, member).into_bytes(),
                Kind::Derived { .. } => {
                    let spec = derive::spec_of(&self.tree, id).map_err(unreadable)?;
                    let kind = derive::by_id(spec.kind).map_or("unknown kind", |k| k.name());
                    let inputs: Vec<String> = spec.inputs.iter().map(|&(a, m)| self.pool().source_of(a, m)).collect();
                    format!("derived by medfs ({kind}) from {}", inputs.join(", ")).into_bytes()
                }
                _ => b"generated by medfs".to_vec(),
            }
        } else {
            let labels = self.tree.study_labels(id).ok_or(FsError::NoAttribute)?;
            let len = self.tree.node(labels).map_or(0, |n| n.size());
            let mut out = Vec::new();
            self.tree.read_generated(labels, 0, len as usize, &mut out).map_err(unreadable)?;
            out
        };
        Xattr::fit(value, size)
    }

    /// Work done for derived files so far: (parts rendered, decoded images computed).
    pub fn derived_work(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.derived.parts.load(Relaxed), self.derived.memos.load(Relaxed))
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
                    let child = children.start + (n - 2) as NodeId;
                    (self.tree.node(child).expect("child exists").name, child)
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
                stack.extend(children.rev());
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

#[cfg(test)]
mod tests {
    use crate::archive::Member;

    /// Issue 3: the in-memory index of a 1,000,000-member archive stays under 200 bytes per
    /// member plus the names. Per member we hold its `Member`, its tree node record (its place
    /// in its folder is its id) and (zip) its lazily resolved data offset.
    #[test]
    fn per_member_memory_stays_under_200_bytes_plus_names() {
        let per_member = std::mem::size_of::<Member>()
            + crate::tree::NODE_BYTES
            + std::mem::size_of::<std::sync::atomic::AtomicU64>();
        eprintln!(
            "Member {} + node {} + data offset = {per_member} bytes",
            std::mem::size_of::<Member>(),
            crate::tree::NODE_BYTES
        );
        assert!(per_member < 200, "{per_member} bytes per member");
    }
}
