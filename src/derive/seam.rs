//! FROM h12png's SEAM (/tmp/s11/derive-seam.md, v1): a copy of the derived-file seam's types,
//! only so that the NIfTI kind compiles and is tested on this branch. At merge, delete this
//! file and point `nifti.rs`'s `use super::seam::...` at `super::` (the real `derive/mod.rs`).
//! `RenderCx` here reads inputs through a closure and caches nothing; the real one is
//! cache-charged and single-flight.

use std::io;
use std::sync::Arc;

/// Persisted in the tree: never renumber a kind, never reuse an id.
pub type KindId = u8;

/// One file of a study as a kind sees it when planning (build time).
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
}

/// A derived file a kind decided to make, with its exact size.
pub struct Planned {
    /// Its name in the study folder.
    pub name: String,
    /// Pool ids it reads, in the kind's own order.
    pub inputs: Vec<(u32, u32)>,
    /// Kind-owned bytes persisted in the tree.
    pub params: Vec<u8>,
    /// Exact byte size.
    pub size: u64,
    /// Index in `Study::files` of the original it is listed beside.
    pub beside: Option<usize>,
}

/// What the tree stores per derived file.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Spec {
    /// Which kind.
    pub kind: KindId,
    /// Its inputs.
    pub inputs: Vec<(u32, u32)>,
    /// Its params.
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
}

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

    /// Computes `load` (no cache here).
    pub fn memo(&self, _slot: u32, load: impl FnOnce() -> io::Result<Vec<u8>>) -> io::Result<Arc<[u8]>> {
        load().map(Arc::from)
    }

    /// Charges nothing here.
    pub fn reserve(&self, _bytes: usize) -> Reservation {
        Reservation
    }
}
