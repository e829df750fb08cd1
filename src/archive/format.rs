//! The format seam: each archive format medfs reads is one module behind [`Format`] (detect,
//! list, reopen from its index, its tags) and [`OpenArchive`] (read members), registered in
//! [`FORMATS`]. Detection, the index's format tag and the reader's dispatch ask these traits;
//! nothing outside a format's module names it.
//!
//! Formats today: `compressed.rs` (a tar or a single file inside gzip, bzip2, xz or zstd),
//! `tar.rs`, `zip.rs` (listing) with `zip/read.rs` (its reading), `sevenz.rs` (7z), and
//! `loose.rs`, the loose files of a folder, which is no detected format but an [`OpenArchive`]
//! that `pool.rs` fills with the files no format claimed.
//!
//! # Adding a format (7z, say)
//!
//! 1. Write one module `src/archive/<name>.rs` (or `<name>/` with submodules), declared in
//!    `archive.rs`, holding a unit struct that implements [`Format`]:
//!    - `name`: the short name messages use ("7z").
//!    - `owns`: the index tags it answers to: pick unused ones (taken: 0 zip, 1 tar, 16..=23
//!      compressed; 4 was the loose files' and stays unused); the `tags_are_unique` test below
//!      fails on a clash. A tag is saved in the index, so never reuse one for something else.
//!    - `detect`: by content (magic in `Probe::head`, or anything read from `Probe::file`), by
//!      name only through `Probe::name` (`None` means: do not apply name rules). Answer
//!      `Weak` for evidence so thin that any other format's `Yes` should win.
//!    - `list`: parse the archive into `Member`s. Point `DataLoc::Raw`/`Sparse` offsets into
//!      the stream your [`OpenArchive::stream`] returns, and the reader serves them with no code
//!      of yours. 7z: the stream is the concatenation of the decoded folders (solid blocks),
//!      decoded through the block cache like `stream.rs`'s `CompressedStream`; a member is a
//!      range of it. Return what the index should save besides the members in
//!      `Opened::saved`: a table (kept in memory), and bulk bytes (kept on disk, read back on
//!      demand through the `WindowSource` given to `reopen`). Members must pass
//!      `Member::is_consistent`.
//!    - `reopen`: rebuild the reading state from that saved table and bulk bytes, reading
//!      nothing of the archive (a remount from the index reads 0 bytes of it).
//!
//!    and a struct for one listed archive implementing [`OpenArchive`]: `stream` (where Raw and
//!    Sparse offsets point), and `read` only for locations of its own (zip's `DataLoc::Zip`).
//!    Per-archive state (offsets resolved on first read, seek-point files) lives in that struct;
//!    per-member state that costs memory goes into the cache (`ReadCtx::cache`) as a state with
//!    its real weight, so the budget holds (see `zip/read.rs`). Cache keys: owner = the archive's
//!    `ListCtx::id`; items are member indexes, `compressed::ARCHIVE_STREAM` is the archive's own
//!    stream; owner bit 31 marks members' own decoded streams (`zip/read.rs`).
//! 2. Add one line to [`FORMATS`] below; its place is its detection order. If its magic is in
//!    [`UNSUPPORTED`], that entry is then never reached: delete it.
//! 3. Tests: conformance archives written by the reference tool in `tests/conformance/` with a
//!    `tests/<name>_conformance.rs` like `zip_conformance.rs`; an in-process test in
//!    `tests/fscore/` that lists and reads it through `Pool::from_sources` (corrupt bytes fail
//!    with EIO, never wrong bytes); a fuzz target in `fuzzing.rs` (list, then read every member
//!    through `read_all_members`) with its regressions folder; a remount from the index in
//!    `tests/index.rs` (reads no byte of the archive).
//!
//! Nothing else changes: `pool.rs` detects, lists, saves and reopens through these traits, and
//! `reader.rs` reads through them.

use std::io;
use std::path::Path;
use std::sync::Arc;

use super::codec::WindowSource;
use super::{ByteSource, DataLoc, FormatError, Listing, Member, compressed, sevenz, tar, zip};
use crate::cache::BlockCache;
use crate::progress::Progress;
use crate::reader::ReadCtx;

/// Every format that is detected and listed, in detection order (the first `Yes` wins): a
/// compressed stream's magic is certain, a checksummed tar header at 0 wins over a zip's end
/// record (a tar whose last member is a zip ends like one).
pub static FORMATS: &[&dyn Format] = &[&compressed::Compressed, &tar::Tar, &zip::Zip, &sevenz::SevenZ];

/// Known archive formats medfs cannot read yet: magic at offset 0, and the name for the error.
pub const UNSUPPORTED: &[(&[u8], &str)] = &[(b"Rar!", "rar")];

/// What detection sees of a file.
pub struct Probe<'a> {
    /// The whole file.
    pub file: &'a dyn ByteSource,
    /// Its first 512 bytes (fewer for a shorter file).
    pub head: &'a [u8],
    /// Its name, where naming rules apply (`x.csv.gz` is opened, `x.nii.gz` is not); `None`
    /// for sources that have no such rules (in-memory sources of the core tests).
    pub name: Option<&'a str>,
}

/// One format's answer about a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detection {
    /// Not this format: ask the next one.
    No,
    /// This format, saved in the index under this tag.
    Yes(u8),
    /// Weak evidence (an all-zero tar): taken only when no format answers `Yes`.
    Weak(u8),
    /// This format's bytes, but the file is shown as it is, not opened (a `.nii.gz`).
    Plain,
}

/// What content detection decided about one file.
pub enum Detected {
    /// An archive of this format, with the tag it is saved under.
    Archive(&'static dyn Format, u8),
    /// A known archive format we cannot read yet (named, for the error message).
    Unsupported(&'static str),
    /// A plain file.
    NotArchive,
}

/// What listing and reopening need besides the archive file.
pub struct ListCtx<'a> {
    /// The archive's path (its first part's, when split): names a bare compressed file's member.
    pub path: &'a Path,
    /// The archive's name in messages.
    pub display: &'a str,
    /// The archive's number in the pool: the owner of its blocks in `cache`.
    pub id: u32,
    /// The one block cache.
    pub cache: &'a Arc<BlockCache>,
    /// Progress bars of long listing passes.
    pub progress: &'a Progress,
    /// Passwords of encrypted archives, tried in order (`--password`s, then `MEDFS_PASSWORD`).
    pub passwords: &'a [String],
    /// How many of `passwords` the user gave (`--password`, `MEDFS_PASSWORD`); the rest are
    /// published by dataset profiles.
    pub passwords_given: usize,
    /// The archive's blocks in the disk cache (`None` when disabled or the archive has no
    /// identity): for blocks too costly to decode again (long spans, solid blocks).
    pub disk: Option<&'a crate::diskcache::ArchiveBlocks>,
}

/// A listed archive.
pub struct Opened {
    /// Its members, warnings and damage.
    pub listing: Listing,
    /// How its members are read.
    pub data: Box<dyn OpenArchive>,
    /// What the index saves besides the members: a table, and bulk bytes that stay on disk
    /// (`reopen` gets them as a `WindowSource`). Both empty for formats that need nothing.
    pub saved: (Vec<u8>, Vec<u8>),
}

/// An archive format: detected by content, listed into members, reopened from its index.
pub trait Format: Sync {
    /// Short name for messages ("zip").
    fn name(&self) -> &'static str;
    /// Whether `tag` (a detection's tag, saved in the index) is one of this format's.
    fn owns(&self, tag: u8) -> bool;
    /// Whether `probe` is this format.
    fn detect(&self, probe: &Probe<'_>) -> io::Result<Detection>;
    /// Lists the archive `file`, detected with `tag`.
    fn list(&self, tag: u8, file: &Arc<dyn ByteSource>, ctx: &ListCtx<'_>) -> Result<Opened, FormatError>;
    /// The reading state of `file`, listed earlier with `tag` into `members`, from what `list`
    /// saved (`table`, and the bulk bytes in `bulk`), without reading the archive.
    fn reopen(
        &self,
        tag: u8,
        file: &Arc<dyn ByteSource>,
        members: &[Member],
        table: &[u8],
        bulk: WindowSource,
        ctx: &ListCtx<'_>,
    ) -> Result<Box<dyn OpenArchive>, String>;
}

/// One listed archive's reading state.
pub trait OpenArchive: Send + Sync {
    /// The stream `DataLoc::Raw` and `DataLoc::Sparse` offsets refer to (the archive file, or
    /// its decoding); `None` where every member is a file of its own (loose files).
    fn stream(&self) -> Option<&Arc<dyn ByteSource>>;

    /// Reads `len` bytes (`offset + len` within the member, `len > 0`) of member number
    /// `member`, `m`, into `out` (empty). The default serves Raw and Sparse data from
    /// [`OpenArchive::stream`]; a format with locations of its own overrides it. An error of
    /// kind `InvalidData` marks the member corrupt for good.
    fn read(
        &self,
        ctx: &ReadCtx<'_>,
        member: u32,
        m: &Member,
        offset: u64,
        len: usize,
        out: &mut Vec<u8>,
    ) -> io::Result<()> {
        let _ = (ctx, member);
        match self.stream() {
            Some(stream) => read_stored(&**stream, m, offset, len, out),
            None => Err(io::Error::new(io::ErrorKind::Unsupported, "no stream to read this member from")),
        }
    }

    /// Whether [`OpenArchive::read_head`] serves the first `len` bytes of `m` more cheaply than
    /// `read` (a big compressed member whose head decodes alone).
    fn has_cheap_head(&self, m: &Member, len: usize) -> bool {
        let _ = (m, len);
        false
    }

    /// Reads the first `len` bytes of member `member` into `out` (empty), when
    /// [`OpenArchive::has_cheap_head`] says so.
    fn read_head(&self, ctx: &ReadCtx<'_>, member: u32, m: &Member, len: usize, out: &mut Vec<u8>) -> io::Result<()> {
        self.read(ctx, member, m, 0, len.min(m.size as usize), out)
    }

    /// A hint that the first `len` bytes of `m` will be read soon (the DICOM scan reads the
    /// heads of thousands of members): the default passes the range of stored data on to
    /// [`OpenArchive::stream`].
    fn will_read_head(&self, m: &Member, len: usize) {
        if let (Some(stream), DataLoc::Raw { offset }) = (self.stream(), &m.data) {
            stream.will_need(*offset, (len as u64).min(m.size));
        }
    }

    /// Heap bytes of per-member tables kept outside the cache budget (reported at mount).
    fn table_bytes(&self) -> usize {
        0
    }

    /// The folder members' paths are relative to, for loose files.
    fn root(&self) -> Option<&Path> {
        None
    }
}

/// An archive whose members all lie in one stream (tar: the file; a compressed stream: its
/// decoding): everything is read by [`OpenArchive`]'s default `read`.
pub struct InStream(pub Arc<dyn ByteSource>);

impl OpenArchive for InStream {
    fn stream(&self) -> Option<&Arc<dyn ByteSource>> {
        Some(&self.0)
    }
}

/// A member's own file changed or vanished since it was listed (loose files): the reader fails
/// it as an archive changed under the mount. Carried inside an `io::Error`.
#[derive(Debug, thiserror::Error)]
#[error("changed since it was listed")]
pub struct MemberChanged;

/// Reads Raw or Sparse data of `m` from `stream`: the part every format shares.
pub fn read_stored(stream: &dyn ByteSource, m: &Member, offset: u64, len: usize, out: &mut Vec<u8>) -> io::Result<()> {
    out.resize(len, 0);
    match &m.data {
        DataLoc::Raw { offset: start } => stream.read_exact_at(start + offset, out),
        DataLoc::Sparse { extents } => {
            let end = offset + len as u64;
            for e in extents.iter().filter(|e| e.logical < end && e.logical + e.len > offset) {
                let from = e.logical.max(offset);
                let to = (e.logical + e.len).min(end);
                let dst = &mut out[(from - offset) as usize..(to - offset) as usize];
                stream.read_exact_at(e.offset + (from - e.logical), dst)?;
            }
            Ok(())
        }
        DataLoc::None => Ok(()),
        _ => Err(io::Error::new(io::ErrorKind::InvalidData, "data location of another format")),
    }
}

/// Which format `file` is, asking [`FORMATS`] in order. `name`: see [`Probe::name`].
pub fn detect(file: &dyn ByteSource, name: Option<&str>) -> io::Result<Detected> {
    let mut head = [0u8; 512];
    let n = read_up_to(file, 0, &mut head)?;
    let probe = Probe { file, head: &head[..n], name };
    let mut weak = None;
    for &format in FORMATS {
        match format.detect(&probe)? {
            Detection::Yes(tag) => return Ok(Detected::Archive(format, tag)),
            Detection::Plain => return Ok(Detected::NotArchive),
            Detection::Weak(tag) => {
                weak.get_or_insert((format, tag));
            }
            Detection::No => {}
        }
    }
    if let Some((format, tag)) = weak {
        return Ok(Detected::Archive(format, tag));
    }
    Ok(UNSUPPORTED
        .iter()
        .find(|(magic, _)| probe.head.starts_with(magic))
        .map_or(Detected::NotArchive, |&(_, name)| Detected::Unsupported(name)))
}

/// The format that saved `tag` in an index.
pub fn by_tag(tag: u8) -> Option<&'static dyn Format> {
    FORMATS.iter().copied().find(|f| f.owns(tag))
}

/// Reads from `offset` until `buf` is full or the source ends; returns how much was read.
pub fn read_up_to(src: &dyn ByteSource, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match src.read_at(offset + got as u64, &mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_unique() {
        for tag in 0..=u8::MAX {
            let owners: Vec<&str> = FORMATS.iter().filter(|f| f.owns(tag)).map(|f| f.name()).collect();
            assert!(owners.len() <= 1, "tag {tag} is owned by {owners:?}");
        }
    }
}
