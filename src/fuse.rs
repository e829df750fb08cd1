//! The kernel boundary: translates fuser calls into MedFs calls and back. The only module that
//! imports fuser; each operation is a call into the core and a reply.
//!
//! Every call into the core runs under `guard`: a panic while answering one request answers that
//! request with EIO and a logged error, and the worker thread goes on serving. Without it, fuser
//! loses the worker thread for good, and after `--threads` panics the mount hangs.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, Generation, INodeNo, InitFlags, KernelConfig, LockOwner,
    MountOption, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, SessionACL,
};
use tracing::{debug, error, warn};

use crate::error::FsError;
use crate::fs::{Attr, FileKind, MedFs, Xattr};

/// The mount never changes while mounted, so the kernel may cache names and attributes for as
/// long as it likes: every cached answer saves a round trip.
const TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// How a mount talks to the kernel.
#[derive(Clone, Debug)]
pub struct MountConfig {
    /// FUSE worker threads.
    pub threads: usize,
    /// Let other users see the mount.
    pub allow_other: bool,
}

/// The fuser adapter over the core.
pub struct MedFuse {
    fs: Arc<MedFs>,
    uid: u32,
    gid: u32,
    reads: ReadSizes,
}

/// What read sizes the kernel sends: requests by size class (powers of two up to 1 MiB, the
/// largest `max_pages_limit` allows here), logged at debug level when the mount ends.
#[derive(Default)]
struct ReadSizes {
    /// Requests of at most `4 KiB << i` bytes (the last class takes everything bigger).
    classes: [AtomicU64; 9],
    bytes: AtomicU64,
}

impl ReadSizes {
    fn count(&self, size: u32) {
        let class = (size.max(1).div_ceil(4096).next_power_of_two().trailing_zeros() as usize).min(8);
        self.classes[class].fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(u64::from(size), Ordering::Relaxed);
    }

    fn summary(&self) -> String {
        let counts: Vec<String> = self
            .classes
            .iter()
            .enumerate()
            .map(|(i, n)| (4u64 << i, n.load(Ordering::Relaxed)))
            .filter(|&(_, n)| n > 0)
            .map(|(kib, n)| format!("<={kib}K: {n}"))
            .collect();
        let total: u64 = self.classes.iter().map(|n| n.load(Ordering::Relaxed)).sum();
        format!(
            "{total} read requests, {} bytes asked; {}; {} spans decoded ahead of sequential readers",
            self.bytes.load(Ordering::Relaxed),
            counts.join(", "),
            crate::stream::AHEAD_DECODED.load(Ordering::Relaxed)
        )
    }
}

impl MedFuse {
    /// Serves `fs` as the mounting user.
    pub fn new(fs: Arc<MedFs>) -> MedFuse {
        MedFuse {
            fs,
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            reads: ReadSizes::default(),
        }
    }

    fn file_attr(&self, a: &Attr) -> FileAttr {
        let time = if a.mtime >= 0 {
            UNIX_EPOCH + Duration::from_secs(a.mtime as u64)
        } else {
            UNIX_EPOCH - Duration::from_secs(a.mtime.unsigned_abs())
        };
        FileAttr {
            ino: INodeNo(a.ino),
            size: a.size,
            blocks: a.size.div_ceil(512),
            atime: time,
            mtime: time,
            ctime: time,
            crtime: time,
            kind: match a.kind {
                FileKind::Dir => FileType::Directory,
                FileKind::File => FileType::RegularFile,
                FileKind::Symlink => FileType::Symlink,
            },
            perm: a.perm,
            nlink: a.nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 1 << 17,
            flags: 0,
        }
    }
}

/// Replies with an error, logging real failures once at warn and expected misses at debug.
fn errno(op: &str, e: &FsError) -> Errno {
    if e.is_expected() {
        debug!("{op}: {e}");
    } else {
        warn!("{op}: {e}");
    }
    Errno::from_i32(e.errno())
}

/// Runs one request's call into the core. Errors map to their errno; a panic is caught and becomes
/// EIO with an error in the log. The core's shared state is behind parking_lot locks, which do
/// not poison, so requests after a panic are served normally.
fn guard<T>(op: &str, ino: u64, call: impl FnOnce() -> Result<T, FsError>) -> Result<T, Errno> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(errno(op, &e)),
        Err(payload) => {
            let why = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            error!("{op} of inode {ino}: internal error (panic: {why}); answered EIO, still serving");
            Err(Errno::EIO)
        }
    }
}

/// Answers `getxattr`/`listxattr`: the size asked for, the value, or the error (ERANGE when the
/// caller's buffer is too small, decided by the core).
fn reply_xattr(result: Result<Xattr, Errno>, reply: ReplyXattr) {
    match result {
        Ok(Xattr::Size(n)) => reply.size(n),
        Ok(Xattr::Data(value)) => reply.data(&value),
        Err(e) => reply.error(e),
    }
}

impl Filesystem for MedFuse {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Fewer round trips is the whole game on FUSE: list with attributes, let lookups in one
        // folder run in parallel, and let open/opendir be skipped (answered ENOSYS below, which
        // makes the kernel keep page and directory caches by default).
        let wanted = InitFlags::FUSE_DO_READDIRPLUS
            | InitFlags::FUSE_PARALLEL_DIROPS
            | InitFlags::FUSE_CACHE_SYMLINKS
            | InitFlags::FUSE_NO_OPEN_SUPPORT
            | InitFlags::FUSE_NO_OPENDIR_SUPPORT;
        let supported = config.capabilities() & wanted;
        let _ = config.add_capabilities(supported);
        // The kernel offers its bdi's readahead (128 KiB by default) and only accepts less.
        match config.set_max_readahead(1 << 20) {
            Ok(_) => debug!("max_readahead 1 MiB accepted"),
            Err(max) => {
                debug!("max_readahead: the kernel offers at most {max} bytes");
                let _ = config.set_max_readahead(max);
            }
        }
        let _ = config.set_max_background(64);
        let _ = config.set_congestion_threshold(48);
        Ok(())
    }

    fn destroy(&mut self) {
        debug!("{}", self.reads.summary());
        let cache = &self.fs.pool().cache;
        let (parts, decoded) = self.fs.derived_work();
        debug!(
            "cache peak {} of {} bytes; derived files: {parts} parts rendered, {decoded} images decoded",
            cache.peak_bytes(),
            cache.capacity()
        );
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match guard("lookup", parent.0, || self.fs.lookup(parent.0, name.as_bytes()).map(|a| self.file_attr(&a))) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match guard("getattr", ino.0, || self.fs.getattr(ino.0).map(|a| self.file_attr(&a))) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match guard("readlink", ino.0, || self.fs.readlink(ino.0)) {
            Ok(target) => reply.data(target),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        // No per-open state: ENOSYS tells the kernel never to send open/release again.
        reply.error(Errno::ENOSYS);
    }

    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.error(Errno::ENOSYS);
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.reads.count(size);
        tracing::trace!("read inode {} at {offset}: {size} bytes", ino.0);
        let mut buf = Vec::with_capacity(size as usize);
        match guard("read", ino.0, || self.fs.read(ino.0, offset, size as usize, &mut buf)) {
            Ok(()) => reply.data(&buf),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let result = guard("readdir", ino.0, || {
            self.fs.readdir(ino.0, offset, |e| {
                let kind = match e.attr.kind {
                    FileKind::Dir => FileType::Directory,
                    FileKind::File => FileType::RegularFile,
                    FileKind::Symlink => FileType::Symlink,
                };
                reply.add(INodeNo(e.attr.ino), e.next_offset, kind, OsStr::from_bytes(e.name))
            })
        });
        // After a panic the entries added so far are dropped with the buffer: EIO, never half a
        // listing that looks complete.
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn readdirplus(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectoryPlus) {
        let result = guard("readdirplus", ino.0, || {
            self.fs.readdir(ino.0, offset, |e| {
                let attr = self.file_attr(&e.attr);
                reply.add(INodeNo(e.attr.ino), e.next_offset, OsStr::from_bytes(e.name), &TTL, &attr, Generation(0))
            })
        });
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match guard("statfs", 1, || Ok(self.fs.statfs())) {
            Ok(s) => reply.statfs(s.bytes.div_ceil(4096), 0, 0, s.files, 0, 4096, 255, 4096),
            Err(e) => reply.error(e),
        }
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        reply_xattr(guard("getxattr", ino.0, || self.fs.getxattr(ino.0, name.as_bytes(), size)), reply);
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        reply_xattr(guard("listxattr", ino.0, || self.fs.listxattr(ino.0, size)), reply);
    }

    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::from_i32(FsError::ReadOnly.errno()));
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::from_i32(FsError::ReadOnly.errno()));
    }

    fn access(&self, _req: &Request, _ino: INodeNo, mask: fuser::AccessFlags, reply: ReplyEmpty) {
        if mask.contains(fuser::AccessFlags::W_OK) {
            reply.error(Errno::EROFS);
        } else {
            reply.ok();
        }
    }

    // The mount is read-only (MS_RDONLY makes the kernel refuse most writes itself); these
    // answer whatever still reaches us.
    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _data: &[u8],
        _write_flags: fuser::WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        reply.error(Errno::EROFS);
    }

    fn setattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<fuser::TimeOrNow>,
        _mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<std::time::SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<std::time::SystemTime>,
        _chgtime: Option<std::time::SystemTime>,
        _bkuptime: Option<std::time::SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        reply.error(Errno::EROFS);
    }

    fn mkdir(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, _mode: u32, _umask: u32, reply: ReplyEntry) {
        reply.error(Errno::EROFS);
    }

    fn mknod(&self, _req: &Request, _p: INodeNo, _n: &OsStr, _m: u32, _u: u32, _r: u32, reply: ReplyEntry) {
        reply.error(Errno::EROFS);
    }

    fn unlink(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn rmdir(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn symlink(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, _target: &Path, reply: ReplyEntry) {
        reply.error(Errno::EROFS);
    }

    fn rename(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _newparent: INodeNo,
        _newname: &OsStr,
        _flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn link(&self, _req: &Request, _ino: INodeNo, _newparent: INodeNo, _newname: &OsStr, reply: ReplyEntry) {
        reply.error(Errno::EROFS);
    }

    fn create(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: fuser::ReplyCreate,
    ) {
        reply.error(Errno::EROFS);
    }
}

/// A mounted, initialized FUSE session, ready to serve.
pub struct Session(fuser::Session<MedFuse>);

/// Unmounts a session's mountpoint from another thread (signal handling).
pub struct Unmounter(fuser::SessionUnmounter);

impl Unmounter {
    /// Unmounts; the session's `run` then returns.
    pub fn unmount(&mut self) -> std::io::Result<()> {
        self.0.unmount()
    }
}

impl Session {
    /// Serves requests until the filesystem is unmounted.
    pub fn run(self) -> std::io::Result<()> {
        self.0.run()
    }

    /// A handle that unmounts this session from another thread.
    pub fn unmounter(&mut self) -> Unmounter {
        Unmounter(self.0.unmount_callable())
    }
}

/// Mounts `fs` at `mountpoint` and performs the INIT handshake; the returned session is ready to
/// `run`. Errors come back before anything is left mounted.
pub fn mount(fs: Arc<MedFs>, mountpoint: &Path, config: &MountConfig) -> std::io::Result<Session> {
    let mut c = Config::default();
    c.mount_options = vec![
        MountOption::RO,
        MountOption::FSName("medfs".into()),
        MountOption::Subtype("medfs".into()),
        MountOption::DefaultPermissions,
        MountOption::NoAtime,
        MountOption::NoDev,
        MountOption::NoSuid,
    ];
    c.acl = if config.allow_other { SessionACL::All } else { SessionACL::Owner };
    c.n_threads = Some(config.threads.max(1));
    c.clone_fd = true;
    fuser::Session::new(MedFuse::new(fs), mountpoint, &c).map(Session)
}
