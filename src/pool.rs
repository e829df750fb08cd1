//! The pool: every SOURCE of one mount opened, detected by content, and listed.
//!
//! A SOURCE is an archive file, a loose file, or a folder (each archive inside plus its loose
//! files). Each file is detected, listed, saved to and reopened from its index through the
//! format seam (`archive::format`); listing runs in parallel across archives.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use crate::archive::codec::WindowSource;
use crate::archive::compressed::compressed_image;
use crate::archive::format::{self, Detected, Format, ListCtx, OpenArchive, Opened};
use crate::archive::loose::Loose;
use crate::archive::split::{self, SplitSource};
use crate::archive::{ByteSource, DataLoc, FileSource, FormatError, Listing, Member, MemberKind};
use crate::cache::BlockCache;
use crate::diskcache::DiskCache;
use crate::index::{Identity, IndexStore, Loaded, Miss, Saved};

mod nested;
pub use nested::{MemberSource, RAW_SUFFIX};

/// One listed archive (or the loose files of a source), ready to be read.
pub struct Archive {
    /// Number of this archive in the pool (its place in `Pool::archives`).
    pub id: u32,
    /// The owner of its blocks and states in the cache: the `ListCtx::id` it was listed with,
    /// which formats keep (unique in the pool, and not its place, which is only known later).
    pub owner: u32,
    /// Index of the command-line SOURCE it came from.
    pub source_index: usize,
    /// Path for messages.
    pub display: String,
    /// Where it appears under `_archives/` (components); empty for loose files, which sit at
    /// their own relative paths.
    pub mount_path: Vec<Vec<u8>>,
    /// Bytes of the archive read to list it (0 when it came from the persistent index).
    pub listing_bytes_read: u64,
    /// The listing came from the persistent index.
    pub from_index: bool,
    /// Members in archive order.
    pub members: Vec<Member>,
    /// The archive file's mtime, for directories the archive does not date.
    pub mtime: i64,
    /// Problems met while listing.
    pub warnings: Vec<String>,
    /// Part of the archive could not be read.
    pub damaged: bool,
    /// The archive file the members were listed from; `None` for the loose files of a source,
    /// which are checked one by one as they are read.
    pub file: Option<ArchiveFile>,
    /// How members' bytes are read: the format's own state (shared with the archives nested
    /// in it, which read their bytes through it).
    pub data: Arc<dyn OpenArchive>,
    /// Members opened as nested archives one by one (sorted): the raw view shows each as a
    /// folder of its contents, and the member itself as `name~raw`.
    pub opened: Vec<u32>,
    /// Where this archive lies when it is nested in another one.
    pub nest: Option<Nest>,
}

/// Where a nested archive lies.
#[derive(Clone, Debug)]
pub struct Nest {
    /// The archive holding it (its place in `Pool::archives`).
    pub outer: u32,
    /// Its member there, or its parts in order for a byte-split archive.
    pub members: Vec<u32>,
    /// 1 inside a SOURCE's archive, 2 inside that one, ...
    pub depth: u32,
}

/// The file an archive was listed from.
pub struct ArchiveFile {
    /// Its format.
    pub format: &'static dyn Format,
    /// Who the file is (for side files of its index, and the check before every read); `None`
    /// when it has no path (`Pool::from_sources`) or could not be stat'ed.
    pub identity: Option<Identity>,
    /// The file(s) it was read from (a byte-split archive's parts in order), checked against
    /// `identity` before every read.
    pub origin: Vec<PathBuf>,
}

impl Archive {
    /// For loose files: the folder their paths are relative to.
    pub fn loose_root(&self) -> Option<&Path> {
        self.data.root()
    }
}

/// `path` made absolute against the current folder, as text.
fn absolute(path: &Path) -> String {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string()
}

/// What to do about a SOURCE that cannot be opened, when the error says it.
fn next_step(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::NotFound => "; check the path: each SOURCE is an existing archive, file or folder",
        io::ErrorKind::PermissionDenied => "; run medfs as a user who may read it",
        _ => "",
    }
}

/// Why the pool could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// A SOURCE does not exist or cannot be opened. The OS error is part of the message, not
    /// a `source()`: an error chain printed whole (`{:#}`) would say it twice.
    #[error("{path}: {error}{}", next_step(.error))]
    Open {
        /// The path given.
        path: String,
        /// The OS error.
        error: io::Error,
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
#[derive(Clone, Debug)]
pub struct PoolOptions {
    /// Refuse damaged archives instead of mounting what can be read.
    pub strict: bool,
    /// Show a progress bar for long listing passes (only when stderr is a terminal).
    pub progress: bool,
    /// Where persistent indexes live (default: `$XDG_CACHE_HOME/medfs/index`).
    pub index_dir: Option<PathBuf>,
    /// Neither load nor save persistent indexes.
    pub no_index: bool,
    /// Passwords of encrypted archives (7z), tried in order.
    pub passwords: Vec<String>,
    /// How many of `passwords` the user gave (the rest are published by dataset profiles).
    pub passwords_given: usize,
    /// The disk cache of decoded blocks (`None`: disabled, as in tests unless they ask).
    pub disk_cache: Option<Arc<DiskCache>>,
    /// How deep archives inside archives are opened (`--max-depth`; 0: never).
    pub max_depth: u32,
}

/// Default of `--max-depth`: a bundle holding a split zip holding a tar is three levels.
pub const DEFAULT_MAX_DEPTH: u32 = 3;

impl Default for PoolOptions {
    fn default() -> PoolOptions {
        PoolOptions {
            strict: false,
            progress: false,
            index_dir: None,
            no_index: false,
            passwords: Vec::new(),
            passwords_given: 0,
            disk_cache: None,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
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
    /// The command-line SOURCEs, by `Archive::source_index`: what the generic DICOM and NIfTI
    /// datasets are grouped and named by (`dicomtree::collections`). May be shorter than the
    /// sources (a pool built by hand); a missing one counts as an archive named alone.
    pub sources: Vec<Source>,
}

/// One command-line SOURCE as the organizer sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// Its file or folder name (of the canonical path, so `.` is named after the folder).
    pub name: String,
    /// A folder (its archives and loose files are one collection), not an archive or file.
    pub folder: bool,
}

impl Source {
    fn of(path: &Path, folder: bool) -> Source {
        let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let name = canon.file_name().or_else(|| path.file_name()).map(|n| n.to_string_lossy().into_owned());
        Source { name: name.unwrap_or_else(|| "source".into()), folder }
    }
}

impl Pool {
    /// Where member `member` of archive `archive` comes from, for the `user.medfs.source`
    /// extended attribute: `ARCHIVE:MEMBER` (an archive inside an archive adds a link per level,
    /// `outer.zip:inner.7z:member`; byte-split parts are joined by `+`), or the file's own path
    /// for loose files. Paths on disk are made absolute (the daemon never changes folder); a
    /// pool built from in-memory sources names them by their display names.
    pub fn source_of(&self, archive: u32, member: u32) -> String {
        let Some(a) = self.archives.get(archive as usize) else { return String::new() };
        let path: &[u8] = a.members.get(member as usize).map_or(b"", |m| &m.path);
        if let Some(root) = a.loose_root() {
            return absolute(&root.join(std::ffi::OsStr::from_bytes(path)));
        }
        format!("{}:{}", self.archive_source(a), String::from_utf8_lossy(path))
    }

    /// The chain naming archive `a` (see [`source_of`](Self::source_of)).
    fn archive_source(&self, a: &Archive) -> String {
        if let Some(nest) = &a.nest
            && let Some(outer) = self.archives.get(nest.outer as usize)
        {
            let parts: Vec<_> = nest
                .members
                .iter()
                .filter_map(|&m| outer.members.get(m as usize))
                .map(|m| String::from_utf8_lossy(&m.path).into_owned())
                .collect();
            return format!("{}:{}", self.archive_source(outer), parts.join("+"));
        }
        match a.file.as_ref().map(|f| f.origin.as_slice()) {
            Some(origin) if !origin.is_empty() => origin.iter().map(|p| absolute(p)).collect::<Vec<_>>().join("+"),
            _ => a.display.clone(),
        }
    }

    /// Heap bytes of the member tables (paths, locations, sparse extents, zip data offsets):
    /// memory outside the cache budget, reported at mount.
    pub fn member_table_bytes(&self) -> usize {
        self.archives
            .iter()
            .map(|a| {
                a.members.capacity() * std::mem::size_of::<Member>()
                    + a.data.table_bytes()
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

/// For `x.zip.001` named alone on the command line, its later parts `x.zip.002`, ... from its
/// folder, named as if they had been given too: a split archive is read whole or not at all.
fn add_sibling_parts(candidates: &mut Vec<Candidate>) {
    let mut found = Vec::new();
    for c in candidates.iter().filter(|c| c.named_on_command_line) {
        let Some(name) = c.path.file_name().and_then(|n| n.to_str()) else { continue };
        let Some((base, 1)) = split::part_number(name) else { continue };
        if !named_like_archive(base) {
            continue;
        }
        let dir = c.path.parent().unwrap_or(Path::new("."));
        for n in 2.. {
            let sibling = dir.join(format!("{base}.{n:0width$}", width = name.len() - base.len() - 1));
            if !sibling.is_file() {
                break;
            }
            if !candidates.iter().chain(&found).any(|o: &Candidate| o.path == sibling) {
                let rel = vec![sibling.file_name().map(|n| n.as_encoded_bytes().to_vec()).unwrap_or_default()];
                found.push(Candidate {
                    source_index: c.source_index,
                    path: sibling,
                    parts: Vec::new(),
                    rel,
                    named_on_command_line: true,
                });
            }
        }
    }
    candidates.extend(found);
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
        let (run, warning) = split::leading_run(&parts, &candidates[parts[0].1].path.display().to_string());
        warnings.extend(warning);
        if run == 0 {
            continue;
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
        let mut described = Vec::with_capacity(sources.len());
        for (source_index, path) in sources.iter().enumerate() {
            let meta =
                std::fs::metadata(path).map_err(|error| PoolError::Open { path: path.display().to_string(), error })?;
            described.push(Source::of(path, meta.is_dir()));
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
        add_sibling_parts(&mut candidates);
        let candidates = group_split_parts(candidates, &mut warnings);
        let cache = Arc::new(BlockCache::new(cache_bytes));
        let store = index_store(opts);
        let progress = crate::progress::Progress::new(opts.progress);
        let lister = Lister {
            cache: &cache,
            store: &store,
            progress: &progress,
            passwords: &opts.passwords,
            passwords_given: opts.passwords_given,
            disk_cache: opts.disk_cache.as_ref(),
        };
        let listed = list_all(&candidates, &lister);
        // Cache owners: candidate `i` was listed as `i`; loose files and nested archives follow.
        let loose_owners = candidates.len() as u32;

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
                    if let Some(file) = &mut a.file {
                        file.origin = if cand.parts.is_empty() { vec![cand.path.clone()] } else { cand.parts.clone() };
                    }
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
                        owner: loose_owners + cand.source_index as u32,
                        source_index: cand.source_index,
                        display: sources[cand.source_index].display().to_string(),
                        mount_path: Vec::new(),
                        listing_bytes_read: 0,
                        from_index: false,
                        members: Vec::new(),
                        mtime: meta.mtime(),
                        warnings: Vec::new(),
                        damaged: false,
                        file: None,
                        data: Arc::new(Loose::new(root, listed_at)),
                        opened: Vec::new(),
                        nest: None,
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
        let next_owner = loose_owners + sources.len() as u32;
        let mut pool = Pool { archives, cache: cache.clone(), warnings, store: store.clone(), sources: described };
        nested::open_nested(&mut pool, &lister, opts, next_owner)?;
        progress.finish();
        Ok(pool)
    }
}

// One per candidate, short-lived and moved once: boxing the big variant would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Listed {
    Archive(Archive),
    NotArchive,
    Failed(String),
}

fn index_store(opts: &PoolOptions) -> IndexStore {
    IndexStore::new(if opts.no_index { None } else { opts.index_dir.clone().or_else(IndexStore::default_dir) })
}

/// One file to detect and list: a file of a SOURCE, byte-split parts joined, or a member of an
/// archive (nested).
struct Target<'a> {
    file: Arc<dyn ByteSource>,
    /// Its path: names a bare compressed file's member; its last component is the name that
    /// detection's naming rules see.
    path: &'a Path,
    /// Who it is, for its index and disk-cache folder (`None`: neither).
    identity: Option<Identity>,
    /// The files on disk it lies in when they are byte-split parts (the disk cache's sweep
    /// checks them); empty otherwise.
    disk_parts: &'a [PathBuf],
    /// Its modification time.
    mtime: i64,
}

/// What listing needs besides the file: the shared cache, the index store, passwords, the disk
/// cache and the progress bars.
struct Lister<'a> {
    cache: &'a Arc<BlockCache>,
    store: &'a IndexStore,
    progress: &'a crate::progress::Progress,
    passwords: &'a [String],
    passwords_given: usize,
    disk_cache: Option<&'a Arc<DiskCache>>,
}

/// Lists every candidate, several at once (listing is I/O and inflate bound per archive), each
/// result in its candidate's place; candidate `i` is listed as cache owner `i`.
fn list_all(candidates: &[Candidate], lister: &Lister<'_>) -> Vec<Listed> {
    candidates
        .par_iter()
        .enumerate()
        .with_max_len(1)
        .map(|(i, cand)| {
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
            let identity =
                if cand.parts.is_empty() { Identity::of(path).ok() } else { Identity::of_parts(&cand.parts).ok() };
            let mtime = std::fs::metadata(path).map(|m| m.mtime()).unwrap_or(0);
            lister.list(Target { file, path, identity, disk_parts: &cand.parts, mtime }, i as u32)
        })
        .collect()
}

impl Lister<'_> {
    /// Detects and lists `t` as cache owner `owner`: from its index when a valid one is saved,
    /// else from its bytes (then saving the index).
    fn list(&self, t: Target<'_>, owner: u32) -> Listed {
        let Target { file, path, identity, disk_parts, mtime } = t;
        let display = file.describe();
        let blocks = self.disk_cache.zip(identity.as_ref()).map(|(d, id)| d.archive(id.clone(), disk_parts));
        let ctx = ListCtx {
            path,
            display: &display,
            id: owner,
            cache: self.cache,
            progress: self.progress,
            passwords: self.passwords,
            passwords_given: self.passwords_given,
            disk: blocks.as_ref(),
        };
        let store = self.store;
        let mut notes = Vec::new();
        if let Some(identity) = &identity {
            match store.load(identity) {
                Ok(loaded) => match from_saved(loaded, &file, &ctx) {
                    Ok((format, listing, data)) => {
                        let a = archive(&ctx, format, Some(identity.clone()), &*file, data, listing, mtime, true);
                        return Listed::Archive(a);
                    }
                    Err(why) => notes.push(format!("{display}: index rebuilt: {why}")),
                },
                Err(Miss::Invalid(why)) => notes.push(format!("index rebuilt: {why}")),
                Err(Miss::Absent) => {}
            }
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let (format, tag) = match format::detect(&*file, Some(name)) {
            Ok(Detected::Archive(format, tag)) => (format, tag),
            Ok(Detected::Unsupported(what)) => return Listed::Failed(format!("{what} archives are not supported yet")),
            Ok(Detected::NotArchive) => return Listed::NotArchive,
            Err(e) => return Listed::Failed(format!("cannot read: {e}")),
        };
        match format.list(tag, &file, &ctx) {
            Ok(Opened { mut listing, data, saved: (stream_table, stream_windows) }) => {
                let mut data: Arc<dyn OpenArchive> = Arc::from(data);
                if let Some(identity) = identity.as_ref().filter(|_| store.enabled()) {
                    let saved = Saved {
                        format: tag,
                        damaged: listing.damaged,
                        warnings: listing.warnings.clone(),
                        members: listing.members.clone(),
                        stream_table,
                        stream_windows,
                    };
                    match store.save(identity, &saved) {
                        // Serve from the saved index, so that what it keeps on disk (seek points'
                        // windows) leaves memory.
                        Ok(()) => match store.load(identity).map(|l| from_saved(l, &file, &ctx)) {
                            Ok(Ok((_, _, from_disk))) => data = from_disk,
                            _ => notes.push(format!(
                                "{display}: index saved but not readable back; its windows stay in memory"
                            )),
                        },
                        Err(e) => {
                            notes.push(format!("{display}: index not saved ({e}); this mount keeps it in memory only"))
                        }
                    }
                }
                listing.warnings.extend(notes);
                Listed::Archive(archive(&ctx, format, identity, &*file, data, listing, mtime, false))
            }
            Err(FormatError::NotThisFormat(_)) => Listed::NotArchive,
            Err(e) => Listed::Failed(e.to_string()),
        }
    }
}

/// An archive's format, listing and reading state, from its saved index.
type Reopened = (&'static dyn Format, Listing, Arc<dyn OpenArchive>);

/// Rebuilds a listing and its format's reading state from a saved index.
fn from_saved(loaded: Loaded, file: &Arc<dyn ByteSource>, ctx: &ListCtx<'_>) -> Result<Reopened, String> {
    let Loaded { saved, windows: (index_file, windows_at) } = loaded;
    let format = format::by_tag(saved.format).ok_or("unknown format tag")?;
    let bulk = WindowSource::Disk(index_file, windows_at);
    let data = format.reopen(saved.format, file, &saved.members, &saved.stream_table, bulk, ctx)?;
    let listing = Listing { members: saved.members, warnings: saved.warnings, damaged: saved.damaged };
    Ok((format, listing, Arc::from(data)))
}

/// A listed archive, before the pool places it (place, source, mount path, origin).
#[allow(clippy::too_many_arguments)]
fn archive(
    ctx: &ListCtx<'_>,
    format: &'static dyn Format,
    identity: Option<Identity>,
    file: &dyn ByteSource,
    data: Arc<dyn OpenArchive>,
    listing: Listing,
    mtime: i64,
    from_index: bool,
) -> Archive {
    Archive {
        id: 0,
        owner: ctx.id,
        source_index: 0,
        display: ctx.display.to_string(),
        mount_path: Vec::new(),
        listing_bytes_read: file.bytes_read(),
        from_index,
        members: listing.members,
        mtime,
        warnings: listing.warnings,
        damaged: listing.damaged,
        file: Some(ArchiveFile { format, identity, origin: Vec::new() }),
        data,
        opened: Vec::new(),
        nest: None,
    }
}

impl Pool {
    /// Opens the archives nested in this pool's archives, `max_depth` levels deep (see the
    /// `nested` module): for pools built by [`Pool::from_sources`], which opens none.
    pub fn open_nested(&mut self, max_depth: u32) -> Result<(), PoolError> {
        let (cache, store) = (self.cache.clone(), self.store.clone());
        let progress = crate::progress::Progress::new(false);
        let lister = Lister {
            cache: &cache,
            store: &store,
            progress: &progress,
            passwords: &[],
            passwords_given: 0,
            disk_cache: None,
        };
        let next_owner = self.archives.iter().map(|a| a.owner + 1).max().unwrap_or(0);
        nested::open_nested(self, &lister, &PoolOptions { max_depth, ..PoolOptions::default() }, next_owner)
    }
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
        let mut archives = Vec::new();
        let mut warnings = Vec::new();
        let mut described = Vec::with_capacity(sources.len());
        for (i, (name, file)) in sources.into_iter().enumerate() {
            described.push(Source { name: name.clone(), folder: false });
            let ctx = ListCtx {
                path: Path::new(&name),
                display: &name,
                id: i as u32,
                cache: &cache,
                progress: &progress,
                passwords: &[],
                passwords_given: 0,
                disk: None,
            };
            let refuse = |reason: String| PoolError::NotAnArchive { path: name.clone(), reason };
            // No naming rules: a source given here is meant to be opened.
            let (format, tag) = match format::detect(&*file, None).map_err(|e| refuse(format!("cannot read: {e}")))? {
                Detected::Archive(format, tag) => (format, tag),
                Detected::Unsupported(what) => return Err(refuse(format!("{what} archives are not supported yet"))),
                Detected::NotArchive => return Err(refuse("not a zip, tar or compressed archive".into())),
            };
            let Opened { listing, data, .. } = format.list(tag, &file, &ctx).map_err(|e| refuse(e.to_string()))?;
            if listing.damaged && strict {
                let reason = listing.warnings.first().cloned().unwrap_or_else(|| "damaged".into());
                return Err(PoolError::Damaged { path: name, reason });
            }
            let mut a = archive(&ctx, format, None, &*file, Arc::from(data), listing, 0, false);
            a.id = i as u32;
            a.source_index = i;
            a.mount_path = vec![name.into_bytes()];
            warnings.extend(a.warnings.iter().map(|w| format!("warning: {w}")));
            archives.push(a);
        }
        Ok(Pool { archives, cache, warnings, store, sources: described })
    }
}
