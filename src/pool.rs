//! The pool: every SOURCE of one mount opened, detected by content, and listed.
//!
//! A SOURCE is an archive file, a loose file, or a folder (each archive inside plus its loose
//! files). Listing runs in parallel across archives; a tar.gz is listed in one streaming pass
//! that also records its gzip seek points.

use std::io::{self, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::archive::codec::{Codec, StreamIndex};
use crate::archive::gzindex::WindowSource;
use crate::archive::split::{self, SplitSource};
use crate::archive::{ByteSource, DataLoc, FileSource, FormatError, Listing, Member, MemberKind, tar, zip};
use crate::cache::BlockCache;
use crate::index::{Identity, IndexStore, Loaded, Miss, Saved};
use crate::stream::CompressedStream;

/// Cache item of an archive's own decoded stream (members' items are their indexes).
pub const ARCHIVE_STREAM: u32 = u32::MAX;

/// How an archive's bytes are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A zip file (possibly self-extracting or with prepended data).
    Zip,
    /// A plain tar.
    Tar,
    /// A compressed stream: a tar inside (`tar.gz`, `.tbz`, `.txz`, `.tar.zst`), or one file.
    Compressed {
        /// The compression.
        codec: Codec,
        /// The decompressed stream is a tar.
        tar: bool,
    },
    /// Loose files of a folder source (and loose files named on the command line).
    Loose,
}

/// One listed archive (or the loose files of a source), ready to be read.
pub struct Archive {
    /// Number of this archive in the pool; also its cache owner id.
    pub id: u32,
    /// Index of the command-line SOURCE it came from.
    pub source_index: usize,
    /// Path for messages.
    pub display: String,
    /// Where it appears under `_archives/` (components); empty for loose files, which sit at
    /// their own relative paths.
    pub mount_path: Vec<Vec<u8>>,
    /// Storage format.
    pub format: Format,
    /// The archive file itself, or its parts joined (zip members are read from it).
    pub file: Option<Arc<dyn ByteSource>>,
    /// Bytes of the archive read to list it (0 when it came from the persistent index).
    pub listing_bytes_read: u64,
    /// The listing came from the persistent index.
    pub from_index: bool,
    /// Who the archive file is (for side files of its index); `None` for loose files.
    pub identity: Option<Identity>,
    /// The decoded stream that `DataLoc::Raw` offsets refer to (the file, or its decompression).
    pub stream: Option<Arc<dyn ByteSource>>,
    /// For loose files: the folder their paths are relative to.
    pub root: Option<PathBuf>,
    /// Members in archive order.
    pub members: Vec<Member>,
    /// The archive file's mtime, for directories the archive does not date.
    pub mtime: i64,
    /// Problems met while listing.
    pub warnings: Vec<String>,
    /// Part of the archive could not be read.
    pub damaged: bool,
    /// The file(s) the archive was read from (a byte-split archive's parts in order), checked
    /// against `identity` before every read; empty for loose files, which are checked one by one.
    pub origin: Vec<PathBuf>,
    /// When listing started (ns since the epoch): a loose file changed (ctime) after it is
    /// refused, as its size, bytes or both may differ from the listing.
    pub listed_at_ns: i128,
    /// Lazily resolved data offsets of zip members (`u64::MAX` = not yet known).
    pub zip_data_starts: Box<[AtomicU64]>,
}

/// Why the pool could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// A SOURCE does not exist or cannot be opened.
    #[error("{path}: {source}")]
    Open {
        /// The path given.
        path: String,
        /// The OS error.
        source: io::Error,
    },
    /// A SOURCE named as an archive is not one we can read.
    #[error("{path}: {reason}")]
    NotAnArchive {
        /// The path given.
        path: String,
        /// What detection found.
        reason: String,
    },
    /// An archive is damaged and `--strict` was given.
    #[error("{path}: damaged archive refused (--strict): {reason}")]
    Damaged {
        /// The archive.
        path: String,
        /// First problem found.
        reason: String,
    },
}

/// Options for building a pool.
#[derive(Clone, Debug, Default)]
pub struct PoolOptions {
    /// Refuse damaged archives instead of mounting what can be read.
    pub strict: bool,
    /// Show a progress bar for long listing passes (only when stderr is a terminal).
    pub progress: bool,
    /// Where persistent indexes live (default: `$XDG_CACHE_HOME/medfs/index`).
    pub index_dir: Option<PathBuf>,
    /// Neither load nor save persistent indexes.
    pub no_index: bool,
}

/// Everything one mount serves.
pub struct Pool {
    /// Listed archives, in a deterministic order (command line order, then sorted paths).
    pub archives: Vec<Archive>,
    /// The shared decompressed-block cache.
    pub cache: Arc<BlockCache>,
    /// Warnings about sources skipped or damaged, to print at mount time.
    pub warnings: Vec<String>,
    /// Where indexes (and their side files) live.
    pub store: IndexStore,
}

impl Pool {
    /// Heap bytes of the member tables (paths, locations, sparse extents, zip data offsets):
    /// memory outside the cache budget, reported at mount.
    pub fn member_table_bytes(&self) -> usize {
        self.archives
            .iter()
            .map(|a| {
                a.members.capacity() * std::mem::size_of::<Member>()
                    + a.zip_data_starts.len() * std::mem::size_of::<AtomicU64>()
                    + a.members
                        .iter()
                        .map(|m| {
                            m.path.capacity()
                                + match &m.data {
                                    DataLoc::Sparse { extents } => std::mem::size_of_val(&**extents),
                                    DataLoc::Bad { reason } => reason.capacity(),
                                    _ => 0,
                                }
                                + match &m.kind {
                                    MemberKind::Symlink { target } => target.capacity(),
                                    _ => 0,
                                }
                        })
                        .sum::<usize>()
            })
            .sum()
    }
}

/// What content detection decided about one file.
enum Detected {
    Archive(Format),
    /// A known archive format we cannot read yet (named, for the error message).
    Unsupported(&'static str),
    NotArchive,
}

fn detect(file: &dyn ByteSource) -> io::Result<Detected> {
    let mut head = [0u8; 512];
    let n = read_up_to(file, 0, &mut head)?;
    let head = &head[..n];
    if let Some(codec) = Codec::detect(head) {
        // Peek into the decompressed stream: a tar header (or an empty tar) means a tarball.
        let mut dec = codec.indexer(BufReader::new(crate::archive::SourceReader { source: file, pos: 0 }), u64::MAX);
        let mut block = [0u8; 1024];
        let got = read_fully(&mut dec, &mut block).unwrap_or(0);
        let tar = (got >= 512 && tar::looks_like_tar(&block[..512])) || (got == 1024 && block.iter().all(|&b| b == 0));
        return Ok(Detected::Archive(Format::Compressed { codec, tar }));
    }
    // A valid tar header (checksummed) at offset 0 wins over a zip's end record: a tar whose
    // last member is a zip (a bundle of downloads) ends like a zip with prepended data, while a
    // real zip, self-extracting or not, does not start with a tar header.
    if head.len() == 512 && tar::looks_like_tar(head) {
        return Ok(Detected::Archive(Format::Tar));
    }
    if zip::looks_like_zip(file) {
        return Ok(Detected::Archive(Format::Zip));
    }
    // An empty tar is nothing but zero blocks: two of them end the archive.
    let mut second = [0u8; 512];
    if head.len() == 512
        && file.len().is_multiple_of(512)
        && head.iter().all(|&b| b == 0)
        && read_up_to(file, 512, &mut second)? == 512
        && second.iter().all(|&b| b == 0)
    {
        return Ok(Detected::Archive(Format::Tar));
    }
    Ok(match head {
        [b'7', b'z', 0xbc, 0xaf, 0x27, 0x1c, ..] => Detected::Unsupported("7z"),
        [b'R', b'a', b'r', b'!', ..] => Detected::Unsupported("rar"),
        _ => Detected::NotArchive,
    })
}

fn read_up_to(src: &dyn ByteSource, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match src.read_at(offset + got as u64, &mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

fn read_fully(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// File names that promise an archive: such a file that is not readable as one is an error
/// when named on the command line, where any other file is simply a loose file (a label CSV).
fn named_like_archive(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    if compressed_image(&lower) {
        return false;
    }
    [".zip", ".tar", ".tgz", ".gz", ".tar.gz", ".7z", ".bz2", ".xz", ".zst", ".tbz", ".txz", ".rar"]
        .iter()
        .any(|ext| lower.ends_with(ext))
        || lower.rsplit_once('.').is_some_and(|(_, ext)| ext.len() == 3 && ext.bytes().all(|b| b.is_ascii_digit()))
}

/// Image formats that are gzip-compressed by convention and read that way by their tools
/// (nibabel, ITK): a `.nii.gz` is a file to show, not an archive to open.
fn compressed_image(lower: &str) -> bool {
    [".nii.gz", ".hdr.gz", ".img.gz"].iter().any(|ext| lower.ends_with(ext))
}

/// Whether a bare compressed stream (not a tarball) named `name` is opened: only when its name
/// says so (`x.csv.gz`, `simple.gz`) and it is not a compressed image. Anything else (a `.mgz`,
/// a `.nii.gz`) is a file in its own right.
fn opens_bare_stream(codec: Codec, name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !compressed_image(&lower) && codec.suffixes().iter().any(|s| lower.ends_with(&s.to_ascii_lowercase()))
}

/// A file found while expanding the sources, before listing.
struct Candidate {
    source_index: usize,
    path: PathBuf,
    /// For a byte-split archive, all its parts in order (`path` is the first); else empty.
    parts: Vec<PathBuf>,
    /// Components under `_archives/` (or, for loose files, their own relative path).
    rel: Vec<Vec<u8>>,
    named_on_command_line: bool,
}

fn components(rel: &Path) -> Vec<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    rel.components().map(|c| c.as_os_str().as_bytes().to_vec()).collect()
}

fn walk_folder(source_index: usize, root: &Path, dir: &Path, out: &mut Vec<Candidate>, warnings: &mut Vec<String>) {
    let mut entries: Vec<_> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok()).collect(),
        Err(e) => {
            warnings.push(format!("{}: skipped: {e}", dir.display()));
            return;
        }
    };
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        // Follow symlinks to files, but never into directories: a link loop must not hang us.
        let Ok(meta) = std::fs::metadata(&path) else {
            warnings.push(format!("{}: skipped: dangling link or unreadable", path.display()));
            continue;
        };
        if meta.is_dir() {
            if !entry.file_type().map(|t| t.is_symlink()).unwrap_or(false) {
                walk_folder(source_index, root, &path, out, warnings);
            }
        } else if meta.is_file() {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            out.push(Candidate {
                source_index,
                rel: components(rel),
                path,
                parts: Vec::new(),
                named_on_command_line: false,
            });
        }
    }
}

/// Joins `x.zip.001`, `x.zip.002`, ... of one folder into one candidate named `x.zip` whose
/// parts are read as one file. Numbering must start at 001 and have no gaps: parts after a gap
/// are left alone (and skipped with a warning, as they are not archives on their own).
fn group_split_parts(candidates: Vec<Candidate>, warnings: &mut Vec<String>) -> Vec<Candidate> {
    use std::collections::BTreeMap;
    // Keyed by folder and name, not by source: parts named one by one on the command line are
    // separate sources of one archive.
    let mut groups: BTreeMap<(PathBuf, String), Vec<(u32, usize)>> = BTreeMap::new();
    for (i, c) in candidates.iter().enumerate() {
        let Some(name) = c.path.file_name().and_then(|n| n.to_str()) else { continue };
        if let Some((base, n)) = split::part_number(name)
            && named_like_archive(base)
        {
            let dir = c.path.parent().map(Path::to_path_buf).unwrap_or_default();
            groups.entry((dir, base.to_string())).or_default().push((n, i));
        }
    }
    let mut absorbed = vec![false; candidates.len()];
    let mut merged: Vec<(usize, Candidate)> = Vec::new();
    for ((_, base), mut parts) in groups {
        parts.sort();
        let run = parts.iter().enumerate().take_while(|(k, (n, _))| *n == *k as u32 + 1).count();
        if run == 0 {
            continue;
        }
        if run < parts.len() {
            warnings.push(format!(
                "warning: {}: parts after .{:03} are missing; the archive is read from .001 to .{run:03} only",
                candidates[parts[0].1].path.display(),
                run
            ));
        }
        let first = &candidates[parts[0].1];
        let mut rel = first.rel.clone();
        *rel.last_mut().expect("a file has a name") = base.into_bytes();
        let paths = parts[..run].iter().map(|&(_, i)| candidates[i].path.clone()).collect();
        for &(_, i) in &parts[..run] {
            absorbed[i] = true;
        }
        merged.push((
            parts[0].1,
            Candidate {
                source_index: first.source_index,
                path: first.path.clone(),
                parts: paths,
                rel,
                named_on_command_line: first.named_on_command_line,
            },
        ));
    }
    let mut out: Vec<(usize, Candidate)> = candidates.into_iter().enumerate().filter(|(i, _)| !absorbed[*i]).collect();
    out.extend(merged);
    // Keep the order the sources gave (a merged archive takes its first part's place).
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, c)| c).collect()
}

impl Pool {
    /// Opens, detects and lists every source. Errors name the source and the problem.
    pub fn open(sources: &[PathBuf], cache_bytes: usize, opts: &PoolOptions) -> Result<Pool, PoolError> {
        // Taken before any file is looked at: a loose file whose inode changed after this
        // instant may differ from what was listed.
        let listed_at =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i128);
        let mut warnings = Vec::new();
        let mut candidates = Vec::new();
        for (source_index, path) in sources.iter().enumerate() {
            let meta = std::fs::metadata(path)
                .map_err(|source| PoolError::Open { path: path.display().to_string(), source })?;
            if meta.is_dir() {
                walk_folder(source_index, path, path, &mut candidates, &mut warnings);
            } else {
                let name = path.file_name().map(|n| n.as_encoded_bytes().to_vec()).unwrap_or_default();
                candidates.push(Candidate {
                    source_index,
                    path: path.clone(),
                    parts: Vec::new(),
                    rel: vec![name],
                    named_on_command_line: true,
                });
            }
        }
        let candidates = group_split_parts(candidates, &mut warnings);
        let cache = Arc::new(BlockCache::new(cache_bytes));
        let listed = list_all(&candidates, &cache, opts);

        let mut archives = Vec::new();
        // Loose files are gathered per source into one pseudo-archive, so that an extracted tree
        // of 100k files costs 100k members, not 100k archives.
        let mut loose: Vec<Option<Archive>> = (0..sources.len()).map(|_| None).collect();
        for (cand, outcome) in candidates.iter().zip(listed) {
            let display = cand.path.display().to_string();
            match outcome {
                Listed::Archive(mut a) => {
                    if a.damaged {
                        let reason = a.warnings.first().cloned().unwrap_or_else(|| "damaged".into());
                        if opts.strict {
                            return Err(PoolError::Damaged { path: display, reason });
                        }
                    }
                    a.source_index = cand.source_index;
                    a.mount_path = cand.rel.clone();
                    a.origin = if cand.parts.is_empty() { vec![cand.path.clone()] } else { cand.parts.clone() };
                    warnings.extend(a.warnings.iter().map(|w| format!("warning: {w}")));
                    archives.push(a);
                }
                Listed::Failed(reason) => {
                    if cand.named_on_command_line {
                        return Err(PoolError::NotAnArchive { path: display, reason });
                    }
                    warnings.push(format!("warning: {display}: skipped: {reason}"));
                }
                Listed::NotArchive => {
                    let name = cand.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    if named_like_archive(name) {
                        let reason = "not a zip, tar or compressed tar archive (format detected by content)";
                        if cand.named_on_command_line {
                            return Err(PoolError::NotAnArchive { path: display, reason: reason.into() });
                        }
                        warnings.push(format!("warning: {display}: skipped: {reason}"));
                        continue;
                    }
                    let Ok(meta) = std::fs::metadata(&cand.path) else { continue };
                    let slot = &mut loose[cand.source_index];
                    let root = if cand.named_on_command_line {
                        cand.path.parent().unwrap_or(Path::new(".")).to_path_buf()
                    } else {
                        sources[cand.source_index].clone()
                    };
                    let entry = slot.get_or_insert_with(|| Archive {
                        id: 0,
                        source_index: cand.source_index,
                        display: sources[cand.source_index].display().to_string(),
                        mount_path: Vec::new(),
                        format: Format::Loose,
                        listing_bytes_read: 0,
                        from_index: false,
                        identity: None,
                        file: None,
                        stream: None,
                        root: Some(root),
                        members: Vec::new(),
                        mtime: meta.mtime(),
                        warnings: Vec::new(),
                        damaged: false,
                        origin: Vec::new(),
                        listed_at_ns: listed_at,
                        zip_data_starts: Box::new([]),
                    });
                    entry.members.push(Member {
                        path: cand.rel.join(&b'/'),
                        kind: MemberKind::File,
                        size: meta.len(),
                        mtime: meta.mtime(),
                        mode: meta.mode(),
                        data: DataLoc::Raw { offset: 0 },
                    });
                }
            }
        }
        archives.extend(loose.into_iter().flatten());
        archives.sort_by_key(|a| a.source_index);
        for (i, a) in archives.iter_mut().enumerate() {
            a.id = i as u32;
        }
        Ok(Pool { archives, cache, warnings, store: index_store(opts) })
    }
}

// One per candidate, short-lived and moved once: boxing the big variant would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Listed {
    Archive(Archive),
    NotArchive,
    Failed(String),
}

/// Lists every candidate, several at once: listing is I/O and inflate bound per archive.
fn index_store(opts: &PoolOptions) -> IndexStore {
    IndexStore::new(if opts.no_index { None } else { opts.index_dir.clone().or_else(IndexStore::default_dir) })
}

fn list_all(candidates: &[Candidate], cache: &Arc<BlockCache>, opts: &PoolOptions) -> Vec<Listed> {
    let store = index_store(opts);
    let next = AtomicU64::new(0);
    let results: Vec<parking_lot::Mutex<Option<Listed>>> =
        candidates.iter().map(|_| parking_lot::Mutex::new(None)).collect();
    let progress = crate::progress::Progress::new(opts.progress);
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).min(candidates.len()).max(1);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(cand) = candidates.get(i) else { break };
                    let ctx = ListCtx { cache, progress: &progress, store: &store };
                    let outcome = list_one(cand, i as u32, &ctx);
                    *results[i].lock() = Some(outcome);
                }
            });
        }
    });
    progress.finish();
    results.into_iter().map(|m| m.into_inner().expect("every candidate listed")).collect()
}

/// What listing needs besides the archive itself.
struct ListCtx<'a> {
    cache: &'a Arc<BlockCache>,
    progress: &'a crate::progress::Progress,
    store: &'a IndexStore,
}

impl Format {
    /// Tag stored in the persistent index.
    fn tag(self) -> u8 {
        match self {
            Format::Zip => 0,
            Format::Tar => 1,
            Format::Loose => 4,
            Format::Compressed { codec, tar } => {
                let c = Codec::ALL.iter().position(|&x| x == codec).expect("listed") as u8;
                16 + 2 * c + tar as u8
            }
        }
    }

    fn from_tag(tag: u8) -> Option<Format> {
        let compressed =
            Codec::ALL.into_iter().flat_map(|codec| [false, true].map(|tar| Format::Compressed { codec, tar }));
        [Format::Zip, Format::Tar].into_iter().chain(compressed).find(|f| f.tag() == tag)
    }
}

fn list_one(cand: &Candidate, id: u32, ctx: &ListCtx<'_>) -> Listed {
    let path = cand.path.as_path();
    let opened: io::Result<Arc<dyn ByteSource>> = if cand.parts.is_empty() {
        FileSource::open(path).map(|f| Arc::new(f) as Arc<dyn ByteSource>)
    } else {
        SplitSource::open(&cand.parts).map(|f| Arc::new(f) as Arc<dyn ByteSource>)
    };
    let file = match opened {
        Ok(f) => f,
        Err(e) => return Listed::Failed(format!("cannot open: {e}")),
    };
    let display = file.describe();
    let mtime = std::fs::metadata(path).map(|m| m.mtime()).unwrap_or(0);
    let identity = if cand.parts.is_empty() { Identity::of(path).ok() } else { Identity::of_parts(&cand.parts).ok() };
    let mut notes = Vec::new();
    if let Some(identity) = &identity {
        match ctx.store.load(identity) {
            Ok(loaded) => match from_saved(loaded, &file, id, ctx.cache) {
                Ok((format, listing, stream)) => {
                    let mut a = archive(id, display, format, file, stream, listing, mtime, true);
                    a.identity = Some(identity.clone());
                    return Listed::Archive(a);
                }
                Err(why) => notes.push(format!("{display}: index rebuilt: {why}")),
            },
            Err(Miss::Invalid(why)) => notes.push(format!("index rebuilt: {why}")),
            Err(Miss::Absent) => {}
        }
    }
    let format = match detect(&*file) {
        Ok(Detected::Archive(Format::Compressed { codec, tar: false }))
            if !opens_bare_stream(codec, path.file_name().and_then(|n| n.to_str()).unwrap_or("")) =>
        {
            return Listed::NotArchive;
        }
        Ok(Detected::Archive(f)) => f,
        Ok(Detected::Unsupported(what)) => return Listed::Failed(format!("{what} archives are not supported yet")),
        Ok(Detected::NotArchive) => return Listed::NotArchive,
        Err(e) => return Listed::Failed(format!("cannot read: {e}")),
    };
    let source = file.clone();
    let listed = match format {
        Format::Zip => zip::list(&*source).map(|l| (l, source.clone(), Default::default())),
        Format::Tar => tar::list_source(&*source, &display).map(|l| (l, source.clone(), Default::default())),
        Format::Compressed { codec, tar } => list_compressed(codec, tar, path, &source, id, ctx),
        Format::Loose => unreachable!("detection never yields Loose"),
    };
    match listed {
        Ok((mut listing, mut stream, (stream_table, stream_windows))) => {
            if let Some(identity) = identity.as_ref().filter(|_| ctx.store.enabled()) {
                let saved = Saved {
                    format: format.tag(),
                    damaged: listing.damaged,
                    warnings: listing.warnings.clone(),
                    members: listing.members.clone(),
                    stream_table,
                    stream_windows,
                };
                match ctx.store.save(identity, &saved) {
                    // Serve from the saved index, so the seek points' windows leave memory.
                    Ok(()) => match ctx.store.load(identity).map(|l| from_saved(l, &file, id, ctx.cache)) {
                        Ok(Ok((_, _, from_disk))) => stream = from_disk,
                        _ => notes
                            .push(format!("{display}: index saved but not readable back; its windows stay in memory")),
                    },
                    Err(e) => {
                        notes.push(format!("{display}: index not saved ({e}); this mount keeps it in memory only"))
                    }
                }
            }
            listing.warnings.extend(notes);
            let mut a = archive(id, display, format, file, stream, listing, mtime, false);
            a.identity = identity;
            Listed::Archive(a)
        }
        Err(FormatError::NotThisFormat(_)) => Listed::NotArchive,
        Err(e) => Listed::Failed(e.to_string()),
    }
}

/// Rebuilds a listing and its decoded stream from a saved index.
fn from_saved(
    loaded: Loaded,
    file: &Arc<dyn ByteSource>,
    owner: u32,
    cache: &Arc<BlockCache>,
) -> Result<(Format, Listing, Arc<dyn ByteSource>), String> {
    let Loaded { saved, windows: (index_file, windows_at) } = loaded;
    let format = Format::from_tag(saved.format).ok_or("unknown format tag")?;
    let source = file.clone();
    let stream: Arc<dyn ByteSource> = match format {
        Format::Compressed { codec, .. } => {
            let windows = WindowSource::Disk(index_file, windows_at);
            let index = StreamIndex::from_parts(codec, &saved.stream_table, windows).map_err(|e| e.to_string())?;
            Arc::new(CompressedStream::new(source, index, cache.clone(), owner, ARCHIVE_STREAM))
        }
        _ => source,
    };
    let listing = Listing { members: saved.members, warnings: saved.warnings, damaged: saved.damaged };
    Ok((format, listing, stream))
}

#[allow(clippy::too_many_arguments)]
fn archive(
    id: u32,
    display: String,
    format: Format,
    file: Arc<dyn ByteSource>,
    stream: Arc<dyn ByteSource>,
    listing: Listing,
    mtime: i64,
    from_index: bool,
) -> Archive {
    let starts = if format == Format::Zip {
        (0..listing.members.len()).map(|_| AtomicU64::new(u64::MAX)).collect()
    } else {
        Box::new([]) as Box<[AtomicU64]>
    };
    Archive {
        id,
        source_index: 0,
        display,
        mount_path: Vec::new(),
        format,
        listing_bytes_read: file.bytes_read(),
        from_index,
        identity: None,
        file: Some(file),
        stream: Some(stream),
        root: None,
        members: listing.members,
        mtime,
        warnings: listing.warnings,
        damaged: listing.damaged,
        origin: Vec::new(),
        listed_at_ns: 0,
        zip_data_starts: starts,
    }
}

/// A listing, the decoded stream its offsets refer to, and the stream's saved seek points
/// (table, windows).
type StreamListing = (Listing, Arc<dyn ByteSource>, (Vec<u8>, Vec<u8>));

/// One streaming pass over a compressed file: lists the tar inside (or the single file) and
/// records seek points as it goes. A stream that breaks half way keeps what was complete before.
fn list_compressed(
    codec: Codec,
    is_tar: bool,
    path: &Path,
    file: &Arc<dyn ByteSource>,
    owner: u32,
    ctx: &ListCtx<'_>,
) -> Result<StreamListing, FormatError> {
    let display = path.display().to_string();
    let bar = ctx.progress.add(&display, file.len());
    let counted = crate::progress::Counted::new(crate::archive::SourceReader { source: &**file, pos: 0 }, bar.clone());
    let mut indexer = codec.indexer(BufReader::with_capacity(1 << 20, counted), codec.spacing());
    let mut listing = if is_tar { tar::list(&mut indexer, &display)? } else { Listing::default() };
    // Drain what follows the tar's end (padding, or the whole file for a bare .gz), so that every
    // member's/block's check is verified and the seek points cover the whole stream.
    let drained = io::copy(&mut indexer, &mut io::sink());
    let (index, stream_error) = indexer.finish_partial();
    bar.finish();
    listing.warnings.extend(index.warnings().iter().map(|w| format!("{display}: {w}")));
    for e in drained.as_ref().err().into_iter().chain(stream_error.as_ref()) {
        listing.damaged = true;
        listing.warnings.push(format!("{display}: compressed stream damaged: {e}"));
    }
    // A stream that merely ends early (a truncated download) decoded correctly up to where it
    // stops: the decoder fails at the cut, it does not invent bytes before it. A stream with bad
    // data or a checksum mismatch is trusted only up to the last check that passed.
    let truncated_only = matches!(&stream_error, Some(e) if e.kind() == io::ErrorKind::UnexpectedEof)
        && drained.as_ref().err().is_none_or(|e| e.kind() == io::ErrorKind::UnexpectedEof);
    let good_len = if truncated_only { index.uncompressed_len() } else { index.verified_len() };
    if !is_tar {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("data");
        let stem = codec.suffixes().iter().find_map(|s| name.strip_suffix(s)).filter(|s| !s.is_empty()).unwrap_or(name);
        listing.members.push(Member {
            path: stem.as_bytes().to_vec(),
            kind: MemberKind::File,
            size: good_len,
            mtime: 0,
            mode: 0o644,
            data: if listing.damaged {
                DataLoc::Bad { reason: "compressed stream damaged".into() }
            } else {
                DataLoc::Raw { offset: 0 }
            },
        });
    } else if listing.damaged {
        // Members whose bytes run past the last trusted byte cannot be served.
        for m in &mut listing.members {
            let past_good = match &m.data {
                DataLoc::Raw { offset } => offset + m.size > good_len,
                // A sparse member's stored runs are its bytes in the stream.
                DataLoc::Sparse { extents } => extents.iter().any(|e| e.offset + e.len > good_len),
                _ => false,
            };
            if past_good {
                m.data = DataLoc::Bad { reason: "data lies in a damaged part of the compressed stream".into() };
            }
        }
    }
    let saved_index = index.to_parts()?;
    let stream: Arc<dyn ByteSource> =
        Arc::new(CompressedStream::new(file.clone(), index, ctx.cache.clone(), owner, ARCHIVE_STREAM));
    Ok((listing, stream, saved_index))
}

// --- A pool of already-open byte sources (no paths): the core test tier builds its filesystem
// from in-memory archives and fault-injecting sources through this. Self-contained on purpose:
// it reuses detection and the per-format listers, never the path-based candidate walk.

impl Pool {
    /// Detects and lists already-open sources, each shown as `_archives/<name>`, in the order
    /// given. There is no path, so there is no persistent index either: every source is listed
    /// from its bytes, and its reads go to the source itself (a test sees each one). A source
    /// that is not a readable archive is an error naming it, as on the command line; a damaged
    /// one mounts with a warning unless `strict`.
    pub fn from_sources(
        sources: Vec<(String, Arc<dyn ByteSource>)>,
        cache_bytes: usize,
        strict: bool,
    ) -> Result<Pool, PoolError> {
        let cache = Arc::new(BlockCache::new(cache_bytes));
        let store = IndexStore::new(None);
        let progress = crate::progress::Progress::new(false);
        let ctx = ListCtx { cache: &cache, progress: &progress, store: &store };
        let mut archives = Vec::new();
        let mut warnings = Vec::new();
        for (i, (name, file)) in sources.into_iter().enumerate() {
            let id = i as u32;
            let refuse = |reason: String| PoolError::NotAnArchive { path: name.clone(), reason };
            let format = match detect(&*file).map_err(|e| refuse(format!("cannot read: {e}")))? {
                Detected::Archive(f) => f,
                Detected::Unsupported(what) => return Err(refuse(format!("{what} archives are not supported yet"))),
                Detected::NotArchive => return Err(refuse("not a zip, tar or compressed archive".into())),
            };
            let listed = match format {
                Format::Zip => zip::list(&*file).map(|l| (l, file.clone())),
                Format::Tar => tar::list_source(&*file, &name).map(|l| (l, file.clone())),
                Format::Compressed { codec, tar } => {
                    list_compressed(codec, tar, Path::new(&name), &file, id, &ctx).map(|(l, s, _)| (l, s))
                }
                Format::Loose => unreachable!("detection never yields Loose"),
            };
            let (listing, stream) = listed.map_err(|e| refuse(e.to_string()))?;
            if listing.damaged && strict {
                let reason = listing.warnings.first().cloned().unwrap_or_else(|| "damaged".into());
                return Err(PoolError::Damaged { path: name, reason });
            }
            let mut a = archive(id, name.clone(), format, file, stream, listing, 0, false);
            a.source_index = i;
            a.mount_path = vec![name.into_bytes()];
            warnings.extend(a.warnings.iter().map(|w| format!("warning: {w}")));
            archives.push(a);
        }
        Ok(Pool { archives, cache, warnings, store })
    }
}
