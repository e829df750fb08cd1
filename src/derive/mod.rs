//! Derived files: images every tool opens (PNG of a DDSM LJPEG or a JSRT raw image, masks,
//! previews), computed from archive members beside their originals. This module owns the seam;
//! each kind is one module implementing [`Kind`], registered once in [`KINDS`].
//!
//! A derived file is a tree node (`tree::Kind::Derived`) whose bytes are a pure function of a
//! [`Spec`] (the kind, its input members, the kind's own parameters), with its **exact size**
//! decided when the tree is built (so `st_size` is right before any read) and persisted with the
//! tree. Its bytes are cut into *parts* ([`Kind::parts`], ~256 KiB each); a read renders only the
//! parts it touches, each one at most once at a time however many readers ask
//! (`BlockCache::get_or_load_costly`: single-flight), and keeps them as blocks of the one memory
//! budget. What several parts need (a decoded image) is a *memo* ([`RenderCx::memo`]), also a
//! cached block, also computed once. A part whose input is bad (`InvalidData`) fails the file for
//! good: later reads fail at once.
//!
//! Generic DICOM datasets (`dicomtree.rs`) plan the kinds whose [`Kind::dicom_series`] is true
//! once per series folder.
//!
//! Steps of a kind:
//! - **build time** ([`Kind::plan`]): the organizer hands it each study of a dataset whose profile
//!   lists the kind (`derive = ["jsrt_png", ...]`, in order; a kind also sees what the kinds
//!   before it planned, [`Study::planned`]); it reads the headers it needs through
//!   [`ContentSource`] and returns [`Planned`] files with their names and exact sizes;
//! - **serve time** ([`Kind::parts`], [`Kind::render`]): the parts' lengths from the spec alone,
//!   then a part's bytes from the inputs ([`RenderCx`]).
//!
//! Adding a kind: a module here implementing [`Kind`] with a new, never reused [`KindId`], one
//! line in [`KINDS`], its name in the profiles that want it, a row in ARCHITECTURE.md and the
//! README's list of derived files.
//!
//! **Naming rule** ([`derived_name`]): the original's name without its last extension, then an
//! optional qualifier, then the new extension: `A_1509_1.LEFT_CC.LJPEG` -> `A_1509_1.LEFT_CC.png`,
//! `A_1509_1.RIGHT_CC.OVERLAY` -> `A_1509_1.RIGHT_CC.mask1.png`; a study's preview is
//! `preview.png`. An original of the same name wins: the derived file is left out with a
//! warning.

pub mod bids;
pub mod ddsm;
pub mod jsrt;
pub mod nifti;
pub mod png;
pub mod preview;

use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cache::BlockKey;
use crate::error::FsError;
use crate::organize::ContentSource;
use crate::reader::Reader;
use crate::tree::{NodeId, Tree};

/// A kind's persisted number: never renumber one, never reuse one.
pub type KindId = u8;

/// Every kind, registered once.
pub static KINDS: &[&dyn Kind] =
    &[&jsrt::JsrtPng, &ddsm::DdsmPng, &ddsm::DdsmMask, &preview::Preview, &nifti::NiftiKind];

/// The kind named `name` (as profiles write it).
pub fn by_name(name: &str) -> Option<&'static dyn Kind> {
    KINDS.iter().copied().find(|k| k.name() == name)
}

/// The kind numbered `id`.
pub fn by_id(id: KindId) -> Option<&'static dyn Kind> {
    KINDS.iter().copied().find(|k| k.id() == id)
}

/// One file of a study as a kind sees it when planning.
#[derive(Debug, Clone)]
pub struct StudyFile<'a> {
    /// Its name in the study folder (may contain `/`: a series subfolder).
    pub name: &'a str,
    /// The profile's role for it (`""` for generic DICOM).
    pub role: &'a str,
    /// Pool id (archive, member).
    pub id: (u32, u32),
    /// Size in bytes.
    pub size: u64,
    /// Its DICOM header, when it is DICOM.
    pub dicom: Option<&'a crate::dicom::DicomInfo>,
}

/// One study, as planning sees it.
pub struct Study<'a> {
    /// The dataset's folder name.
    pub dataset: &'a str,
    /// `patient/study` below the dataset folder (for messages).
    pub dir: &'a str,
    /// Its files, sorted by name.
    pub files: Vec<StudyFile<'a>>,
    /// What the kinds listed before this one planned for the study.
    pub planned: &'a [Planned],
}

/// A derived file a kind decided to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Its name in the study folder ([`derived_name`]).
    pub name: String,
    /// What it is computed from.
    pub spec: Spec,
    /// Exact size in bytes.
    pub size: u64,
    /// Index in [`Study::files`] of the original it is listed beside (`labels.csv` gives it that
    /// file's row); `None`: a file of the whole study.
    pub beside: Option<usize>,
}

/// What a derived file is computed from: stored in the tree (postcard), its size in the node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Spec {
    /// The kind.
    pub kind: KindId,
    /// Pool ids (archive, member) of its inputs, in the kind's order.
    pub inputs: Vec<(u32, u32)>,
    /// The kind's own parameters (opaque here; kinds use postcard of a struct of their own).
    #[serde(with = "serde_bytes")]
    pub params: Vec<u8>,
}

/// A kind of derived file.
pub trait Kind: Send + Sync {
    /// Persisted number.
    fn id(&self) -> KindId;
    /// Name profiles use (`derive = [...]`).
    fn name(&self) -> &'static str;
    /// Build time: the derived files this kind makes for `study`, reading small inputs (headers)
    /// through `content`; problems go to `warn`, each naming the file.
    fn plan(&self, study: &Study<'_>, content: &dyn ContentSource, warn: &mut Vec<String>) -> Vec<Planned>;
    /// Serve time: the byte lengths of the file's parts, from the spec alone (they add up to the
    /// planned size).
    fn parts(&self, spec: &Spec) -> Result<Vec<u64>, String>;
    /// Serve time: the bytes of part `part` (exactly as long as [`parts`](Self::parts) says).
    fn render(&self, spec: &Spec, part: usize, cx: &RenderCx<'_>) -> io::Result<Vec<u8>>;
    /// For kinds that make 2D images (previews are made from them): rows `rows` of the image as
    /// big-endian samples, and its shape.
    fn image(&self) -> Option<&dyn Image> {
        None
    }
    /// Whether the kind is also planned per series folder of the DICOM datasets no profile
    /// claims (`dicomtree.rs`; each series a [`Study`] of its files, role `""`).
    fn dicom_series(&self) -> bool {
        false
    }
    /// What the kind's files are in `labels.csv`: `Row`, an image unit of its own (a PNG of an
    /// LJPEG, a series' NIfTI); `Column`, a label file (a mask), its path in a column named after
    /// the kind; `Neither` (a study's preview).
    fn csv_role(&self) -> crate::profile::CsvRole {
        crate::profile::CsvRole::Row
    }
}

/// A kind whose output is a 2D grayscale image.
pub trait Image: Send + Sync {
    /// Width, height, bits per sample (8 or 16).
    fn shape(&self, spec: &Spec) -> Result<(u32, u32, u8), String>;
    /// Rows `rows` as samples (big-endian when 16-bit), no filter bytes.
    fn rows(&self, spec: &Spec, rows: Range<u32>, cx: &RenderCx<'_>) -> io::Result<Vec<u8>>;
}

/// `name` without its last extension, `.qualifier` if any, then `.ext`.
pub fn derived_name(name: &str, qualifier: Option<&str>, ext: &str) -> String {
    let (dir, file) = name.rsplit_once('/').map_or(("", name), |(d, f)| (d, f));
    let stem = match file.rfind('.') {
        Some(i) if i > 0 => &file[..i],
        _ => file,
    };
    let mut out = String::with_capacity(name.len() + 8);
    if !dir.is_empty() {
        out.push_str(dir);
        out.push('/');
    }
    out.push_str(stem);
    if let Some(q) = qualifier {
        out.push('.');
        out.push_str(q);
    }
    out.push('.');
    out.push_str(ext);
    out
}

/// Plans the kinds named `kinds` for one study, in order, each seeing what the ones before it
/// planned; names taken by the study's files (or reserved) are refused with a warning.
pub fn plan_study(
    kinds: &[&'static dyn Kind],
    study: Study<'_>,
    reserved: &[&str],
    content: &dyn ContentSource,
    warn: &mut Vec<String>,
) -> Vec<Planned> {
    let mut planned: Vec<Planned> = Vec::new();
    for kind in kinds {
        let view = Study { dataset: study.dataset, dir: study.dir, files: study.files.clone(), planned: &planned };
        let mut new = kind.plan(&view, content, warn);
        new.retain(|p| {
            let taken = study.files.iter().any(|f| f.name == p.name)
                || reserved.contains(&p.name.as_str())
                || planned.iter().any(|q| q.name == p.name);
            if taken {
                warn.push(format!(
                    "{}/{}: a file of that name exists; no derived {} made",
                    study.dir,
                    p.name,
                    kind.name()
                ));
            }
            !taken
        });
        planned.extend(new);
    }
    planned
}

/// Cache owner of derived parts (item: the node, block: the part) and per-file states.
const PARTS_OWNER: u32 = u32::MAX;
/// Cache owner of memos (item: first input's archive, block: its member << 16 | slot).
const MEMO_OWNER: u32 = u32::MAX - 1;
/// Block of a file's loaded spec and layout (beside its parts).
const SPEC_BLOCK: u64 = u64::MAX;
/// Block of a kind's per-file state.
const STATE_BLOCK: u64 = u64::MAX - 1;

/// Memo slot: the first input decoded to an image (rows of big-endian samples).
pub const MEMO_DECODED: u16 = 1;

/// Memo slot: the middle slice of the NIfTI volume whose first input is the key, as big-endian
/// rows top to bottom (`nifti.rs`'s [`Image`], for previews).
pub const MEMO_MIDDLE_SLICE: u16 = 2;

/// Memo slot: every frame of a compressed multi-frame DICOM file (the key), decoded,
/// little-endian (`nifti.rs`).
pub const MEMO_FRAMES: u16 = 3;

/// What render gets: the inputs, the cache, the other parts of the same file.
pub struct RenderCx<'a> {
    reader: &'a Reader,
    spec: &'a Spec,
    node: NodeId,
    file: &'a Loaded,
    served: &'a Served,
    path: &'a dyn Fn() -> String,
}

impl RenderCx<'_> {
    fn input(&self, i: usize) -> io::Result<(u32, u32)> {
        let &(a, m) = self
            .spec
            .inputs
            .get(i)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("derived file has no input {i}")))?;
        let pool = self.reader.pool();
        if pool.archives.get(a as usize).is_none_or(|ar| m as usize >= ar.members.len()) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "derived file names no member of the pool"));
        }
        Ok((a, m))
    }

    /// Size of input `i`.
    pub fn input_size(&self, i: usize) -> io::Result<u64> {
        let (a, m) = self.input(i)?;
        Ok(self.reader.pool().archives[a as usize].members[m as usize].size)
    }

    /// `len` bytes of input `i` at `offset` into `out` (cleared first; fewer only at its end).
    pub fn read(&self, i: usize, offset: u64, len: usize, out: &mut Vec<u8>) -> io::Result<()> {
        let (a, m) = self.input(i)?;
        self.reader.read(a, m, offset, len, out).map_err(|e| {
            // An OS error may pass; anything else (a corrupt or changed input) stays.
            let kind = if matches!(e, FsError::Io { .. }) { io::ErrorKind::Other } else { io::ErrorKind::InvalidData };
            io::Error::new(kind, e.to_string())
        })
    }

    /// All of input `i`.
    pub fn read_all(&self, i: usize) -> io::Result<Vec<u8>> {
        let size = self.input_size(i)?;
        let mut out = Vec::new();
        self.read(i, 0, usize::try_from(size).unwrap_or(usize::MAX), &mut out)?;
        Ok(out)
    }

    /// Part `part` of this file (cached, computed once).
    pub fn part(&self, part: usize) -> io::Result<Arc<[u8]>> {
        part_of(self.reader, self.spec, self.node, self.file, self.served, part, self.path)
    }

    /// A value several parts need, computed once by `load` and kept as a block of the budget,
    /// keyed by this file's first input and `slot`: every kind computing `slot` from that input
    /// must compute the same bytes (so a PNG and a preview of one LJPEG decode it once).
    pub fn memo(&self, slot: u16, load: impl FnOnce() -> io::Result<Vec<u8>>) -> io::Result<Arc<[u8]>> {
        let (a, m) = self.input(0)?;
        let key = BlockKey { owner: MEMO_OWNER, item: a, block: (m as u64) << 16 | slot as u64 };
        self.reader.pool().cache.get_or_load_costly(key, || {
            self.served.memos.fetch_add(1, Ordering::Relaxed);
            load()
        })
    }

    /// The memory budget (`--cache-size`): a memo or a decoder's working memory beyond it is
    /// refused rather than taken.
    pub fn budget(&self) -> usize {
        self.reader.pool().cache.capacity()
    }

    /// Charges `bytes` of working memory to the budget while the reservation lives.
    pub fn reserve(&self, bytes: usize) -> crate::cache::Reservation<'_> {
        self.reader.pool().cache.reserve(bytes)
    }

    /// This file's state of type `T` (one per file, shared by its parts while cached), made by
    /// `init` (value, weight in bytes).
    pub fn state<T: std::any::Any + Send + Sync>(&self, init: impl FnOnce() -> (T, usize)) -> Arc<T> {
        let key = BlockKey { owner: PARTS_OWNER, item: self.node, block: STATE_BLOCK };
        self.reader.pool().cache.state(key, init)
    }

    /// The spec being rendered.
    pub fn spec(&self) -> &Spec {
        self.spec
    }
}

/// A derived file's spec and layout, loaded once per file while cached.
struct Loaded {
    spec: Spec,
    kind: &'static dyn Kind,
    /// Start of each part, then the size.
    starts: Vec<u64>,
    /// Why the file cannot be made (bad input data): every later read fails at once instead of
    /// decoding again (the kernel retries failed readahead pages one by one).
    failed: parking_lot::Mutex<Option<String>>,
}

/// Counts of work done, for logs and tests.
#[derive(Default)]
pub struct Served {
    /// Parts rendered.
    pub parts: AtomicU64,
    /// Memos computed (decoded images).
    pub memos: AtomicU64,
}

fn part_of(
    reader: &Reader,
    spec: &Spec,
    node: NodeId,
    file: &Loaded,
    served: &Served,
    part: usize,
    path: &dyn Fn() -> String,
) -> io::Result<Arc<[u8]>> {
    let want = file
        .starts
        .get(part + 1)
        .map(|e| e - file.starts[part])
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("no part {part}")))?;
    let key = BlockKey { owner: PARTS_OWNER, item: node, block: part as u64 };
    reader.pool().cache.get_or_load_costly(key, || {
        let cx = RenderCx { reader, spec, node, file, served, path };
        let bytes = file.kind.render(spec, part, &cx)?;
        served.parts.fetch_add(1, Ordering::Relaxed);
        tracing::debug!("derived {}: part {part} of {} rendered ({})", path(), file.starts.len() - 1, file.kind.name());
        if bytes.len() as u64 != want {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} made {} bytes for part {part}, {want} planned", file.kind.name(), bytes.len()),
            ));
        }
        Ok(bytes)
    })
}

/// Up to `len` bytes at `offset` of derived file `node` into `out` (cleared first).
pub fn read(
    tree: &Tree,
    reader: &Reader,
    served: &Served,
    node: NodeId,
    offset: u64,
    len: usize,
    out: &mut Vec<u8>,
) -> Result<(), FsError> {
    out.clear();
    let path = || String::from_utf8_lossy(&tree.path_of(node)).into_owned();
    let failed = |reason: String| FsError::Unreadable { archive: "derived file".into(), member: path(), reason };
    let Some(crate::tree::Kind::Derived { size }) = tree.node(node).map(|n| n.kind) else {
        return Err(failed("not a derived file".into()));
    };
    let key = BlockKey { owner: PARTS_OWNER, item: node, block: SPEC_BLOCK };
    // Loaded outside the cache's lock (the spec may be read from the persisted tree's file).
    let cache = &reader.pool().cache;
    let loaded: Arc<Result<Loaded, String>> = cache.get_state(&key).unwrap_or_else(|| {
        let loaded = load(tree, node, size);
        let weight = loaded.as_ref().map_or(64, |l| l.starts.len() * 8 + l.spec.params.len() + 64);
        cache.state(key, || (loaded, weight))
    });
    let file = loaded.as_ref().as_ref().map_err(|e| failed(e.clone()))?;
    let end = offset.saturating_add(len as u64).min(size);
    if offset >= end {
        return Ok(());
    }
    // The parts covering [offset, end).
    let first = file.starts.partition_point(|&s| s <= offset) - 1;
    if let Some(why) = file.failed.lock().clone() {
        return Err(failed(why));
    }
    let mut part = first;
    while part + 1 < file.starts.len() && file.starts[part] < end {
        let bytes = part_of(reader, &file.spec, node, file, served, part, &path).map_err(|e| {
            tracing::warn!("derived {}: {e}", path());
            if e.kind() == io::ErrorKind::InvalidData {
                *file.failed.lock() = Some(e.to_string());
            }
            failed(e.to_string())
        })?;
        let s = file.starts[part];
        let from = offset.max(s) - s;
        let to = end.min(file.starts[part + 1]) - s;
        out.extend_from_slice(&bytes[from as usize..to as usize]);
        part += 1;
    }
    Ok(())
}

/// The spec of derived file `node`, decoded.
pub fn spec_of(tree: &Tree, node: NodeId) -> Result<Spec, String> {
    let bytes = tree.derived_spec(node)?;
    postcard::from_bytes(&bytes).map_err(|e| format!("derived file spec unreadable: {e}"))
}

fn load(tree: &Tree, node: NodeId, size: u64) -> Result<Loaded, String> {
    let spec = spec_of(tree, node)?;
    let kind = by_id(spec.kind).ok_or_else(|| format!("unknown derived kind {}", spec.kind))?;
    let lens = kind.parts(&spec)?;
    let mut starts = Vec::with_capacity(lens.len() + 1);
    let mut at = 0u64;
    starts.push(0);
    for l in lens {
        at = at.checked_add(l).ok_or("derived file parts overflow")?;
        starts.push(at);
    }
    if at != size {
        return Err(format!("{} parts make {at} bytes, the tree says {size}", kind.name()));
    }
    Ok(Loaded { spec, kind, starts, failed: Default::default() })
}

/// A spec's bytes as the tree stores them.
pub fn encode(spec: &Spec) -> Vec<u8> {
    postcard::to_allocvec(spec).expect("a spec always serializes")
}

/// A kind's own parameters as bytes.
pub fn params<T: serde::Serialize>(p: &T) -> Vec<u8> {
    postcard::to_allocvec(p).expect("parameters always serialize")
}

/// A kind's own parameters back.
pub fn unparams<'a, T: serde::Deserialize<'a>>(spec: &'a Spec) -> Result<T, String> {
    postcard::from_bytes(&spec.params).map_err(|e| format!("derived file parameters unreadable: {e}"))
}

/// An `InvalidData` error.
pub fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_naming_rule() {
        assert_eq!(derived_name("A_1509_1.LEFT_CC.LJPEG", None, "png"), "A_1509_1.LEFT_CC.png");
        assert_eq!(derived_name("JPCLN001.IMG", None, "png"), "JPCLN001.png");
        assert_eq!(derived_name("A_1.RIGHT_CC.OVERLAY", Some("mask1"), "png"), "A_1.RIGHT_CC.mask1.png");
        assert_eq!(derived_name("s/1-001.dcm", None, "nii"), "s/1-001.nii");
        assert_eq!(derived_name("noext", None, "png"), "noext.png");
        assert_eq!(derived_name(".hidden", None, "png"), ".hidden.png");
    }

    #[test]
    fn kinds_have_unique_ids_and_names() {
        for (i, a) in KINDS.iter().enumerate() {
            for b in &KINDS[i + 1..] {
                assert!(a.id() != b.id() && a.name() != b.name());
            }
            assert_eq!(by_name(a.name()).map(|k| k.id()), Some(a.id()));
        }
    }
}
