//! The filesystem core's error type and its one exhaustive errno table.

use std::io;

/// Why a filesystem operation failed. Every variant maps to exactly one errno in `errno()`;
/// there is no catch-all arm, so a new variant forces a decision.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// No such name in that directory, or no such inode.
    #[error("no such file or directory")]
    NotFound,
    /// A directory operation on a file.
    #[error("not a directory")]
    NotADirectory,
    /// A file operation on a directory.
    #[error("is a directory")]
    IsADirectory,
    /// readlink on something that is not a symlink.
    #[error("not a symbolic link")]
    NotASymlink,
    /// No extended attribute of that name on that inode.
    #[error("no such extended attribute")]
    NoAttribute,
    /// An extended attribute outside the `user.` namespace (`security.selinux`, ACLs): medfs
    /// keeps none. Not ENODATA: `ls -l` asks `security.selinux` of every file, and only this
    /// answer makes it stop asking (one FUSE round trip saved per file listed).
    #[error("extended attributes of that namespace are not supported")]
    NamespaceNotSupported,
    /// The caller's buffer is too small for an extended attribute's value or name list (it
    /// asks the size first with a buffer of 0, then again).
    #[error("buffer too small for the extended attribute")]
    BufferTooSmall,
    /// Any attempt to change the mount.
    #[error("read-only file system")]
    ReadOnly,
    /// The member's bytes cannot be produced correctly (corrupt data, CRC mismatch, truncated
    /// archive, unsupported method, encryption). Never answered with wrong bytes.
    #[error("{archive}: {member}: {reason}")]
    Unreadable {
        /// Archive display name.
        archive: String,
        /// Member path inside it.
        member: String,
        /// What went wrong.
        reason: String,
    },
    /// The archive (or loose file) is no longer the file that was listed: deleted, truncated,
    /// rewritten or replaced while mounted. Its offsets mean nothing in the new content, so
    /// every read of it fails until the sources are mounted again.
    #[error("{archive}: changed since it was mounted; unmount and mount again to read the new content")]
    ArchiveChanged {
        /// Archive display name.
        archive: String,
    },
    /// Reading the underlying archive file failed.
    #[error("{context}: {error}")]
    Io {
        /// What was being read.
        context: String,
        /// The OS error (in the message, not a `source()`, so that a printed chain says it once).
        error: io::Error,
    },
}

impl FsError {
    /// The errno the kernel gets for this error.
    pub fn errno(&self) -> i32 {
        match self {
            FsError::NotFound => libc::ENOENT,
            FsError::NotADirectory => libc::ENOTDIR,
            FsError::IsADirectory => libc::EISDIR,
            FsError::NotASymlink => libc::EINVAL,
            FsError::NoAttribute => libc::ENODATA,
            FsError::NamespaceNotSupported => libc::EOPNOTSUPP,
            FsError::BufferTooSmall => libc::ERANGE,
            FsError::ReadOnly => libc::EROFS,
            FsError::Unreadable { .. } | FsError::ArchiveChanged { .. } => libc::EIO,
            // Corrupt data surfaces as InvalidData/UnexpectedEof: that is EIO, not the
            // raw errno (there is none).
            FsError::Io { error, .. } => error.raw_os_error().unwrap_or_else(|| errno_of_kind(error.kind())),
        }
    }

    /// Expected misses are not worth a warning; real failures are.
    pub fn is_expected(&self) -> bool {
        match self {
            FsError::NotFound
            | FsError::NotADirectory
            | FsError::IsADirectory
            | FsError::NotASymlink
            | FsError::NoAttribute
            | FsError::NamespaceNotSupported
            | FsError::BufferTooSmall
            | FsError::ReadOnly => true,
            // Warned about once, by the reader, when the change is found; every later read of
            // the archive fails the same way and would only repeat it.
            FsError::ArchiveChanged { .. } => true,
            FsError::Unreadable { .. } | FsError::Io { .. } => false,
        }
    }
}

/// The errno of an OS error that lost its raw number on the way (the block cache hands a
/// failed load to the readers waiting on it as kind and message): the kinds that name one errno
/// keep it, anything else is EIO.
fn errno_of_kind(kind: io::ErrorKind) -> i32 {
    match kind {
        io::ErrorKind::PermissionDenied => libc::EACCES,
        io::ErrorKind::StaleNetworkFileHandle => libc::ESTALE,
        io::ErrorKind::TimedOut => libc::ETIMEDOUT,
        _ => libc::EIO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_data_is_eio_and_os_errors_keep_their_errno() {
        let corrupt = FsError::Io { context: "x".into(), error: io::Error::new(io::ErrorKind::InvalidData, "crc") };
        assert_eq!(corrupt.errno(), libc::EIO);
        let denied = FsError::Io { context: "x".into(), error: io::Error::from_raw_os_error(libc::EACCES) };
        assert_eq!(denied.errno(), libc::EACCES);
        assert_eq!(FsError::ReadOnly.errno(), libc::EROFS);
        let relayed = FsError::Io { context: "x".into(), error: io::ErrorKind::PermissionDenied.into() };
        assert_eq!(relayed.errno(), libc::EACCES, "an errno relayed as a kind only");
        assert!(!corrupt.is_expected());
    }
}
