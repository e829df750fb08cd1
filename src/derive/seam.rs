//! FROM h12png's SEAM (h12png's `src/derive/mod.rs`, v2): a copy of the derived-file seam's types,
//! only so that the NIfTI kind compiles and is tested on this branch. At merge, delete this
//! file and point `nifti.rs`'s `use super::seam::...` at `super::` (the real `derive/mod.rs`).
//! `RenderCx` here reads inputs through a closure and caches nothing; the real one is
//! cache-charged and single-flight.

use std::io;
use std::ops::Range;
use std::sync::Arc;

/// Persisted in the tree: never renumber a kind, never reuse an id.
pub type KindId = u8;

/// One file of a study as a kind sees it when planning (build time).
#[derive(Debug, Clone)]
pub struct StudyFile<'a> {
    /// Its name in the study folder (may contain '/').
    pub name: &'a str,
    /// The profile's role ("" for generic DICOM).
    pub role: &'a str,
    /// Pool id (archive, member).
    pub id: (u32, u32),
    /// Its size.
    pub size: u64,
    /// Its header when it is DICOM.
    pub dicom: Option<&'a crate::dicom::DicomInfo>,
}

/// One study: its files (sorted by name).
pub struct Study<'a> {
    /// Dataset slug.
    pub dataset: &'a str,
    /// "patient/study" below the dataset folder.
    pub dir: &'a str,
    /// Its files.
    pub files: Vec<StudyFile<'a>>,
    /// What the kinds listed before this one planned.
    pub planned: &'a [Planned],
}

/// A derived file a kind decided to make, with its exact size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Its name in the study folder.
    pub name: String,
    /// What it is computed from.
    pub spec: Spec,
    /// Exact byte size.
    pub size: u64,
    /// Index in `Study::files` of the original it is listed beside.
    pub beside: Option<usize>,
}

/// What the tree stores per derived file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Spec {
    /// Which kind.
    pub kind: KindId,
    /// Its inputs.
    pub inputs: Vec<(u32, u32)>,
    /// Its params.
    #[serde(with = "serde_bytes")]
    pub params: Vec<u8>,
}

/// A kind of derived file.
pub trait Kind: Send + Sync {
    /// Persisted id.
    fn id(&self) -> KindId;
    /// What profiles write in `derive = [...]`.
    fn name(&self) -> &'static str;
    /// Build time: the derived files of one study.
    fn plan(
        &self,
        study: &Study<'_>,
        content: &dyn crate::organize::ContentSource,
        warn: &mut Vec<String>,
    ) -> Vec<Planned>;
    /// Serve time: the parts' byte lengths (sum == size).
    fn parts(&self, spec: &Spec) -> Result<Vec<u64>, String>;
    /// Serve time: the bytes of one part.
    fn render(&self, spec: &Spec, part: usize, cx: &RenderCx<'_>) -> io::Result<Vec<u8>>;
    /// For kinds that make 2D images (previews are made from them).
    fn image(&self) -> Option<&dyn Image> {
        None
    }
}

/// A kind whose output is (or has) a 2D grayscale image.
pub trait Image: Send + Sync {
    /// Width, height, bits per sample (8 or 16).
    fn shape(&self, spec: &Spec) -> Result<(u32, u32, u8), String>;
    /// Rows `rows` as samples (big-endian when 16-bit), no filter bytes.
    fn rows(&self, spec: &Spec, rows: Range<u32>, cx: &RenderCx<'_>) -> io::Result<Vec<u8>>;
}

/// `name` without its last extension, `.qualifier` if any, then `.ext` (h12png's naming rule).
pub fn derived_name(name: &str, qualifier: Option<&str>, ext: &str) -> String {
    let (dir, file) = name.rsplit_once('/').map_or(("", name), |(d, f)| (d, f));
    let stem = match file.rfind('.') {
        Some(i) if i > 0 => &file[..i],
        _ => file,
    };
    let mut out = String::new();
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

/// A kind's own parameters, serialized.
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

/// Memo slot of the NIfTI kind: the middle slice of the volume whose first input is the memo's
/// key, as big-endian rows top to bottom (what [`Image::rows`] serves the preview). TO ADD to
/// h12png's mod.rs beside `MEMO_DECODED = 1`.
pub const MEMO_MIDDLE_SLICE: u16 = 2;

/// Memo slot of the NIfTI kind: every frame of a compressed multi-frame file (the memo's key),
/// decoded, little-endian. TO ADD to h12png's mod.rs too.
pub const MEMO_FRAMES: u16 = 3;

/// Stand-in for the real render context (see the module doc).
pub struct RenderCx<'a> {
    /// Reads input i whole.
    pub read_all: &'a dyn Fn(usize) -> io::Result<Vec<u8>>,
}

/// Stand-in for `crate::cache::Reservation`.
pub struct Reservation;

impl RenderCx<'_> {
    /// Input i, whole.
    pub fn read_all(&self, i: usize) -> io::Result<Vec<u8>> {
        (self.read_all)(i)
    }

    /// `len` bytes of input `i` at `offset` into `out` (cleared first; fewer only at its end).
    pub fn read(&self, i: usize, offset: u64, len: usize, out: &mut Vec<u8>) -> io::Result<()> {
        let all = (self.read_all)(i)?;
        let a = (offset as usize).min(all.len());
        out.clear();
        out.extend_from_slice(&all[a..(a + len).min(all.len())]);
        Ok(())
    }

    /// Computes `load` (no cache here).
    pub fn memo(&self, _slot: u16, load: impl FnOnce() -> io::Result<Vec<u8>>) -> io::Result<Arc<[u8]>> {
        load().map(Arc::from)
    }

    /// No budget here.
    pub fn budget(&self) -> usize {
        usize::MAX
    }

    /// Charges nothing here.
    pub fn reserve(&self, _bytes: usize) -> Reservation {
        Reservation
    }
}
