//! DICOM series -> one uncompressed NIfTI-1 file (`<series>.nii`, issue 12 item 6): whether a
//! series is a volume, its slice order and geometry as dcm2niix writes them, the exact header
//! and size before any pixel is read, and each slice's voxels rendered on demand from its file.
//!
//! Pure: [`plan`] takes the headers the DICOM scan already keeps in the index
//! ([`DicomInfo`]); [`render_slice`] takes one slice file's bytes. Nothing here reads an archive.
//!
//! What dcm2niix does, and so this module (its `nii_dicom.cpp` / `nii_dicom_batch.cpp`):
//!
//! * **Slice order**: by position along the slice normal N = row cosines x column cosines,
//!   ascending. (dcm2niix orders by InstanceNumber, re-sorts by position when that order is
//!   not monotonic, and reverses a descending stack with `nii_flipZ`: the same result, checked
//!   against dcm2niix itself by `tests/derive_nifti.rs`.)
//! * **Slice spacing** is the distance between the first two slices' ImagePositionPatient, not
//!   SliceThickness (CT slices often overlap, MR ones have gaps).
//! * **Affine**: in DICOM's LPS, voxel (i, j, k) of the stored (unflipped) order sits at
//!   P0 + i·dc·R + j·dr·C + k·dz·N, P0 the first slice's position, dc/dr
//!   PixelSpacing\[1\]/\[0\]. The rows are then
//!   flipped (NIfTI row 0 = DICOM's last row: `nii_flipY`), which negates the second column
//!   and moves the origin to the last row, and LPS becomes RAS by negating x and y. An axial
//!   series thus comes out as dcm2niix's familiar LAS. sform and qform (code 1, scanner) both
//!   carry it; qfac (pixdim\[0\]) is -1 when the determinant is negative.
//! * **Values**: the stored integers, as they are (uint8, int16 or uint16 by BitsAllocated and
//!   PixelRepresentation), with RescaleSlope/Intercept in scl_slope/scl_inter.
//!
//! **Multi-frame** files (Enhanced CT/MR and the like) are a volume each: their per-frame
//! positions, orientation, spacing and rescale are in functional-group sequences the header
//! scan skips, so the kind reads the file's header at build time ([`frames_of`]) and plans the
//! frames as slices; native frames are then read at their offset, compressed ones all decoded
//! at once into one memo of the cache (refused when larger than the budget).
//!
//! What is not a volume (each a [`NotVolume`] reason, logged by the caller; the series then
//! gets no `.nii`): fewer than two slices; a slice without the geometry tags; a multi-frame
//! file among other slices; colour or 32-bit pixels; a transfer syntax dicom-rs does not decode
//! here (JPEG-LS, deflated, video); differing Rows/Columns, PixelSpacing, bits or orientation (a
//! localizer among axial slices); slope/intercept that differ between slices (NIfTI has one
//! pair); two slices at one position (echoes, repeats); positions that leave the normal (gantry
//! tilt: dcm2niix resamples, medfs does not) or uneven spacing.
//!
//! Layout of the file: the 348-byte header, 4 zero extension bytes, then the voxels from
//! offset [`VOX_OFFSET`] = 352, x fastest, one slice after the other in the plan's order. So a
//! read of bytes `a..b` needs only the slices [`VolumePlan::slices_for`] names.

use std::fmt;
use std::ops::Range;

use crate::dicom::{self, DicomError, DicomInfo};

/// Where the voxels start: the 348-byte header plus the 4-byte extension flag.
pub const VOX_OFFSET: u64 = 352;

/// The largest slice rendered: 64 MiB (an 8192x4096 16-bit image).
pub const MAX_SLICE_BYTES: usize = 64 << 20;

/// Tolerance for "the same" direction cosine, pixel spacing and rescale value.
const SAME: f64 = 1e-4;

/// Why a series gets no NIfTI (for the debug log and the tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotVolume(pub String);

impl fmt::Display for NotVolume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a volume: {}", self.0)
    }
}

impl std::error::Error for NotVolume {}

fn not(why: impl Into<String>) -> NotVolume {
    NotVolume(why.into())
}

/// Why one slice's voxels could not be rendered (the read then fails with EIO).
#[derive(Debug, Clone, PartialEq)]
pub enum RenderError {
    /// The slice file's header or Pixel Data could not be read.
    Dicom(DicomError),
    /// The file disagrees with the plan made from the index (changed member, bad data).
    Mismatch(String),
    /// Compressed pixel data this build cannot decode.
    UnsupportedSyntax(String),
    /// The decoder failed on the compressed frame.
    Decode(String),
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenderError::Dicom(e) => write!(f, "{e}"),
            RenderError::Mismatch(why) => write!(f, "slice does not match its series: {why}"),
            RenderError::UnsupportedSyntax(ts) => {
                write!(f, "unsupported transfer syntax {ts} for the derived NIfTI")
            }
            RenderError::Decode(why) => write!(f, "cannot decode pixel data: {why}"),
        }
    }
}

impl std::error::Error for RenderError {}

impl From<DicomError> for RenderError {
    fn from(e: DicomError) -> Self {
        RenderError::Dicom(e)
    }
}

/// The voxel type: the DICOM integers kept as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Voxel {
    /// BitsAllocated 8, PixelRepresentation 0 (NIfTI DT_UINT8 = 2).
    U8,
    /// BitsAllocated 8, PixelRepresentation 1 (DT_INT8 = 256).
    I8,
    /// BitsAllocated 16, PixelRepresentation 1 (DT_INT16 = 4).
    I16,
    /// BitsAllocated 16, PixelRepresentation 0 (DT_UINT16 = 512).
    U16,
}

impl Voxel {
    /// NIfTI `datatype` code.
    pub fn code(self) -> i16 {
        match self {
            Voxel::U8 => 2,
            Voxel::I8 => 256,
            Voxel::I16 => 4,
            Voxel::U16 => 512,
        }
    }

    /// Bytes per voxel.
    pub fn bytes(self) -> usize {
        match self {
            Voxel::U8 | Voxel::I8 => 1,
            Voxel::I16 | Voxel::U16 => 2,
        }
    }
}

/// A series that is a volume: slice order, geometry, header and size.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VolumePlan {
    /// Indices into the slices given to [`plan`], in the file's slice order (k = 0, 1, ...).
    pub order: Vec<usize>,
    /// Columns, rows, slices.
    pub dim: [usize; 3],
    /// The voxel type.
    pub voxel: Voxel,
    /// Voxel size in mm: column spacing, row spacing, slice spacing.
    pub pixdim: [f64; 3],
    /// The voxel-to-RAS affine (sform rows; the implicit fourth row is 0 0 0 1).
    pub affine: [[f64; 4]; 3],
    /// RescaleSlope (1 when absent).
    pub slope: f64,
    /// RescaleIntercept (0 when absent).
    pub inter: f64,
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}

fn unit(a: [f64; 3]) -> Option<[f64; 3]> {
    let n = norm(a);
    (n > 1e-6).then(|| [a[0] / n, a[1] / n, a[2] / n])
}

/// What [`plan`] needs of one slice, checked present.
struct Geo {
    rows: u32,
    cols: u32,
    spacing: [f64; 2],
    iop: [f64; 6],
    ipp: [f64; 3],
    bits: u32,
    signed: bool,
    slope: f64,
    inter: f64,
}

fn geo(i: usize, s: &DicomInfo) -> Result<Geo, NotVolume> {
    let missing = |what: &str| not(format!("slice {} has no {what}", i + 1));
    if let Some(n) = s.number_of_frames.filter(|&n| n > 1) {
        return Err(not(format!("a multi-frame file (NumberOfFrames {n}) among the slices")));
    }
    if let Some(n) = s.samples_per_pixel.filter(|&n| n != 1) {
        return Err(not(format!("colour pixels (SamplesPerPixel {n}) are not converted")));
    }
    if let Some(ts) = s.transfer_syntax.as_deref().filter(|&t| !syntax_supported(Some(t))) {
        return Err(not(format!("transfer syntax {ts} is not decoded (slice {})", i + 1)));
    }
    let bits = s.bits_allocated.unwrap_or(16);
    if bits != 8 && bits != 16 {
        return Err(not(format!("BitsAllocated {bits} is not converted (8 or 16 are)")));
    }
    let spacing = s.pixel_spacing.ok_or_else(|| missing("PixelSpacing"))?;
    if spacing.iter().any(|&d| d <= 0.0) {
        return Err(not(format!("slice {} has PixelSpacing {spacing:?}", i + 1)));
    }
    Ok(Geo {
        rows: s.rows.filter(|&r| r > 0).ok_or_else(|| missing("Rows"))?,
        cols: s.columns.filter(|&c| c > 0).ok_or_else(|| missing("Columns"))?,
        spacing,
        iop: s.image_orientation.ok_or_else(|| missing("ImageOrientationPatient"))?,
        ipp: s.image_position.ok_or_else(|| missing("ImagePositionPatient"))?,
        bits,
        signed: s.pixel_representation == Some(1),
        slope: s.rescale_slope.unwrap_or(1.0),
        inter: s.rescale_intercept.unwrap_or(0.0),
    })
}

fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol * x.abs().max(y.abs()).max(1.0))
}

/// Decides whether `slices` (the headers of one series' files, in any order) form a volume,
/// and if so how it is written. See the module doc for the rules.
pub fn plan(slices: &[&DicomInfo]) -> Result<VolumePlan, NotVolume> {
    if slices.len() < 2 {
        return Err(not(format!("{} slice(s)", slices.len())));
    }
    let g: Vec<Geo> = slices.iter().enumerate().map(|(i, s)| geo(i, s)).collect::<Result<_, _>>()?;
    let g0 = &g[0];
    for (i, s) in g.iter().enumerate().skip(1) {
        let at = i + 1;
        if (s.rows, s.cols) != (g0.rows, g0.cols) {
            return Err(not(format!(
                "mixed image sizes ({}x{} and {}x{} at slice {at})",
                g0.cols, g0.rows, s.cols, s.rows
            )));
        }
        if (s.bits, s.signed) != (g0.bits, g0.signed) {
            return Err(not(format!("mixed BitsAllocated/PixelRepresentation at slice {at}")));
        }
        if !close(&s.spacing, &g0.spacing, SAME) {
            return Err(not(format!("mixed PixelSpacing ({:?} and {:?})", g0.spacing, s.spacing)));
        }
        if !close(&s.iop, &g0.iop, SAME) {
            return Err(not(format!("mixed orientations (a localizer?): {:?} and {:?} at slice {at}", g0.iop, s.iop)));
        }
        if !close(&[s.slope, s.inter], &[g0.slope, g0.inter], 1e-6) {
            return Err(not(format!(
                "rescale differs between slices (slope {} intercept {} and slope {} intercept {}); NIfTI has one",
                g0.slope, g0.inter, s.slope, s.inter
            )));
        }
    }
    let bad_iop = || not(format!("ImageOrientationPatient {:?} is not two orthogonal directions", g0.iop));
    let r = unit([g0.iop[0], g0.iop[1], g0.iop[2]]).ok_or_else(bad_iop)?;
    let c = unit([g0.iop[3], g0.iop[4], g0.iop[5]]).ok_or_else(bad_iop)?;
    if dot(r, c).abs() > 1e-3 {
        return Err(bad_iop());
    }
    let n = unit(cross(r, c)).ok_or_else(bad_iop)?;

    // Ascending along N (ties, rejected below, by InstanceNumber then input order).
    let along: Vec<f64> = g.iter().map(|s| dot(sub(s.ipp, g0.ipp), n)).collect();
    let mut order: Vec<usize> = (0..g.len()).collect();
    order.sort_by(|&a, &b| {
        let key = |i: usize| slices[i].instance_number.unwrap_or(i64::MAX);
        along[a].total_cmp(&along[b]).then(key(a).cmp(&key(b))).then(a.cmp(&b))
    });
    let st: Vec<f64> = order.windows(2).map(|w| along[w[1]] - along[w[0]]).collect();
    let first = order[0];
    // Two slices at one place: echoes, repeats, or two series under one UID.
    if let Some(k) = st.iter().position(|d| d.abs() < 1e-3) {
        let positions = {
            let mut a: Vec<i64> = along.iter().map(|x| (x * 1000.0).round() as i64).collect();
            a.sort_unstable();
            a.dedup();
            a.len()
        };
        return Err(not(format!(
            "duplicate slice positions ({} slices at {positions} positions; first at {:?})",
            g.len(),
            g[order[k + 1]].ipp
        )));
    }
    // Every slice on the line through the first along N: else a gantry tilt or a shear.
    for &i in &order {
        let off = sub(sub(g[i].ipp, g0.ipp), [n[0] * along[i], n[1] * along[i], n[2] * along[i]]);
        if norm(off) > 0.01 + 1e-3 * along[i].abs() {
            return Err(not(format!(
                "slices are not stacked along their normal (gantry tilt or shear): slice at {:?} is {:.3} mm off",
                g[i].ipp,
                norm(off)
            )));
        }
    }
    // dcm2niix: the distance between the first two slices.
    let dz = norm(sub(g[order[1]].ipp, g[first].ipp));
    let (lo, hi) = st.iter().fold((f64::MAX, 0f64), |(lo, hi), d| (lo.min(d.abs()), hi.max(d.abs())));
    if hi - lo > 0.01 + 1e-3 * hi {
        return Err(not(format!("uneven slice spacing ({lo:.4} to {hi:.4} mm)")));
    }

    let (dr, dc) = (g0.spacing[0], g0.spacing[1]);
    let (nx, ny, nz) = (g0.cols as usize, g0.rows as usize, g.len());
    if nx.max(ny).max(nz) > i16::MAX as usize {
        return Err(not(format!("{nx}x{ny}x{nz} voxels: NIfTI-1 dimensions stop at 32767")));
    }
    // A slice is rendered (and cached) whole: keep it well inside any memory budget.
    let slice = nx * ny * (g0.bits as usize / 8);
    if slice > MAX_SLICE_BYTES {
        return Err(not(format!("{nx}x{ny} slices of {slice} bytes (more than {MAX_SLICE_BYTES})")));
    }
    let s = n;
    let p0 = g[first].ipp;
    let mut affine = [[0.0; 4]; 3];
    for a in 0..3 {
        // LPS: columns dc·R, -dr·C (rows flipped), dz·S; origin at the first slice's last row.
        let lps = [dc * r[a], -dr * c[a], dz * s[a], p0[a] + (ny as f64 - 1.0) * dr * c[a]];
        let sign = if a < 2 { -1.0 } else { 1.0 };
        for (m, v) in affine[a].iter_mut().zip(lps) {
            *m = sign * v;
        }
    }
    let voxel = match (g0.bits, g0.signed) {
        (8, false) => Voxel::U8,
        (8, true) => Voxel::I8,
        (_, true) => Voxel::I16,
        _ => Voxel::U16,
    };
    Ok(VolumePlan { order, dim: [nx, ny, nz], voxel, pixdim: [dc, dr, dz], affine, slope: g0.slope, inter: g0.inter })
}

/// nifti1_io's `nifti_mat44_to_quatern`: the qform (quaternion b, c, d, offset, qfac) of an
/// affine whose columns are orthogonal (they are here, up to rounding: Gram-Schmidt mends it).
fn quatern(a: &[[f64; 4]; 3]) -> ([f64; 3], [f64; 3], f64) {
    let col = |j: usize| [a[0][j], a[1][j], a[2][j]];
    let x = unit(col(0)).unwrap_or([1.0, 0.0, 0.0]);
    let y0 = col(1);
    let y = unit(sub(y0, [x[0] * dot(x, y0), x[1] * dot(x, y0), x[2] * dot(x, y0)])).unwrap_or([0.0, 1.0, 0.0]);
    // The stored rotation is proper; qfac carries a reflection of the third axis.
    let z = cross(x, y);
    let qfac = if dot(z, col(2)) < 0.0 { -1.0 } else { 1.0 };
    let m = [[x[0], y[0], z[0]], [x[1], y[1], z[1]], [x[2], y[2], z[2]]];
    let (r11, r12, r13) = (m[0][0], m[0][1], m[0][2]);
    let (r21, r22, r23) = (m[1][0], m[1][1], m[1][2]);
    let (r31, r32, r33) = (m[2][0], m[2][1], m[2][2]);
    let t = r11 + r22 + r33 + 1.0;
    let (qa, mut b, mut c, mut d);
    if t > 0.5 {
        qa = 0.5 * t.sqrt();
        b = 0.25 * (r32 - r23) / qa;
        c = 0.25 * (r13 - r31) / qa;
        d = 0.25 * (r21 - r12) / qa;
    } else {
        let xd = 1.0 + r11 - (r22 + r33);
        let yd = 1.0 + r22 - (r11 + r33);
        let zd = 1.0 + r33 - (r11 + r22);
        if xd > 1.0 {
            b = 0.5 * xd.sqrt();
            c = 0.25 * (r12 + r21) / b;
            d = 0.25 * (r13 + r31) / b;
            qa = 0.25 * (r32 - r23) / b;
        } else if yd > 1.0 {
            c = 0.5 * yd.sqrt();
            b = 0.25 * (r12 + r21) / c;
            d = 0.25 * (r23 + r32) / c;
            qa = 0.25 * (r13 - r31) / c;
        } else {
            d = 0.5 * zd.sqrt();
            b = 0.25 * (r13 + r31) / d;
            c = 0.25 * (r23 + r32) / d;
            qa = 0.25 * (r21 - r12) / d;
        }
        // q and -q are the same rotation; nifti keeps a >= 0 (a itself is not stored).
        if qa < 0.0 {
            b = -b;
            c = -c;
            d = -d;
        }
    }
    ([b, c, d], [a[0][3], a[1][3], a[2][3]], qfac)
}

impl VolumePlan {
    /// Bytes of one slice's voxels.
    pub fn slice_bytes(&self) -> u64 {
        (self.dim[0] * self.dim[1] * self.voxel.bytes()) as u64
    }

    /// The file's exact size: header, extension flag and every voxel.
    pub fn size(&self) -> u64 {
        VOX_OFFSET + self.slice_bytes() * self.dim[2] as u64
    }

    /// The slices (positions k in [`order`](Self::order)) whose voxels bytes `range` of the
    /// file touches; empty when it holds only header bytes or lies past the end.
    pub fn slices_for(&self, range: Range<u64>) -> Range<usize> {
        let end = range.end.min(self.size());
        if end <= VOX_OFFSET || range.start >= end {
            return 0..0;
        }
        let sb = self.slice_bytes();
        let a = range.start.max(VOX_OFFSET) - VOX_OFFSET;
        let b = end - VOX_OFFSET;
        (a / sb) as usize..b.div_ceil(sb) as usize
    }

    /// Where slice k's voxels start in the file.
    pub fn slice_offset(&self, k: usize) -> u64 {
        VOX_OFFSET + self.slice_bytes() * k as u64
    }

    /// The 352 bytes before the voxels: the NIfTI-1 header (little-endian) and a zero
    /// extension flag.
    pub fn header(&self) -> [u8; VOX_OFFSET as usize] {
        let mut h = [0u8; VOX_OFFSET as usize];
        let mut put = |at: usize, b: &[u8]| h[at..at + b.len()].copy_from_slice(b);
        put(0, &348i32.to_le_bytes());
        put(38, b"r");
        let dims = [3i16, self.dim[0] as i16, self.dim[1] as i16, self.dim[2] as i16, 1, 1, 1, 1];
        for (i, d) in dims.iter().enumerate() {
            put(40 + 2 * i, &d.to_le_bytes());
        }
        put(70, &self.voxel.code().to_le_bytes());
        put(72, &(8 * self.voxel.bytes() as i16).to_le_bytes());
        let (q, off, qfac) = quatern(&self.affine);
        let pixdim = [qfac, self.pixdim[0], self.pixdim[1], self.pixdim[2], 0.0, 0.0, 0.0, 0.0];
        for (i, p) in pixdim.iter().enumerate() {
            put(76 + 4 * i, &(*p as f32).to_le_bytes());
        }
        put(108, &(VOX_OFFSET as f32).to_le_bytes());
        put(112, &(self.slope as f32).to_le_bytes());
        put(116, &(self.inter as f32).to_le_bytes());
        put(123, &[2 | 8]); // mm and s
        put(148, b"medfs: DICOM series");
        put(252, &1i16.to_le_bytes()); // qform_code: scanner anatomical
        put(254, &1i16.to_le_bytes()); // sform_code: scanner anatomical
        for (i, v) in q.iter().chain(off.iter()).enumerate() {
            put(256 + 4 * i, &(*v as f32).to_le_bytes());
        }
        for (r, row) in self.affine.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                put(280 + 16 * r + 4 * j, &(*v as f32).to_le_bytes());
            }
        }
        put(344, b"n+1\0");
        h
    }

    /// Fills `out` with the file's bytes from `offset`: the header where it overlaps, and the
    /// voxels of each slice the range needs, which `slice(k)` renders (k in file order; it is
    /// called once per slice, in ascending order). Returns the bytes written (short at the end
    /// of the file).
    pub fn read_at<S: AsRef<[u8]>, E>(
        &self,
        offset: u64,
        out: &mut [u8],
        mut slice: impl FnMut(usize) -> Result<S, E>,
    ) -> Result<usize, E> {
        let end = (offset + out.len() as u64).min(self.size());
        if offset >= end {
            return Ok(0);
        }
        let n = (end - offset) as usize;
        if offset < VOX_OFFSET {
            let h = self.header();
            let hb = (VOX_OFFSET.min(end) - offset) as usize;
            out[..hb].copy_from_slice(&h[offset as usize..offset as usize + hb]);
        }
        for k in self.slices_for(offset..end) {
            let s0 = self.slice_offset(k);
            let s1 = s0 + self.slice_bytes();
            let (a, b) = (s0.max(offset), s1.min(end));
            let px = slice(k)?;
            let px = px.as_ref();
            out[(a - offset) as usize..(b - offset) as usize]
                .copy_from_slice(&px[(a - s0) as usize..(b - s0) as usize]);
        }
        Ok(n)
    }
}

const TS_NATIVE: [&str; 3] = ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"];

/// One slice's voxels in the file's order: `file` is the whole slice DICOM file (of the series
/// the plan was made from); returns exactly [`VolumePlan::slice_bytes`] bytes, little-endian,
/// rows flipped (NIfTI row 0 = the DICOM's last row).
pub fn render_slice(plan: &VolumePlan, file: &[u8]) -> Result<Vec<u8>, RenderError> {
    let native = slice_pixels(plan, file)?;
    let row = plan.dim[0] * plan.voxel.bytes();
    let mut out = Vec::with_capacity(native.len());
    for r in native.rchunks_exact(row) {
        out.extend_from_slice(r);
    }
    Ok(out)
}

/// One slice's stored values as the DICOM has them (rows top to bottom), little-endian,
/// exactly [`VolumePlan::slice_bytes`] long. Native (uncompressed) pixel data in any of the
/// three uncompressed syntaxes is byte-reordered; compressed syntaxes go to [`decode_frame`].
pub fn slice_pixels(plan: &VolumePlan, file: &[u8]) -> Result<Vec<u8>, RenderError> {
    let pd = dicom::pixel_data(file)?;
    let info = &pd.info;
    let (nx, ny) = (plan.dim[0], plan.dim[1]);
    let bits = info.bits_allocated.unwrap_or(16) as usize;
    if (info.columns, info.rows) != (Some(nx as u32), Some(ny as u32)) || bits != 8 * plan.voxel.bytes() {
        return Err(RenderError::Mismatch(format!(
            "{:?}x{:?} pixels of {bits} bits, the series has {nx}x{ny} of {}",
            info.columns,
            info.rows,
            8 * plan.voxel.bytes()
        )));
    }
    let bpp = plan.voxel.bytes();
    let want = nx * ny * bpp;
    let ts = info.transfer_syntax.as_deref().unwrap_or(TS_NATIVE[0]);
    match pd.len {
        Some(len) if TS_NATIVE.contains(&ts) || info.transfer_syntax.is_none() => {
            if len < want {
                return Err(RenderError::Mismatch(format!("Pixel Data holds {len} bytes, a slice needs {want}")));
            }
            let px = &file[pd.offset..pd.offset + want];
            Ok(if pd.big_endian && bpp == 2 {
                px.chunks_exact(2).flat_map(|p| [p[1], p[0]]).collect()
            } else {
                px.to_vec()
            })
        }
        _ => {
            let mut v = decode_frame(file, ts)?;
            if v.len() < want {
                return Err(RenderError::Decode(format!("decoded {} bytes, a slice needs {want}", v.len())));
            }
            v.truncate(want);
            Ok(v)
        }
    }
}

/// Transfer syntaxes whose pixel data [`decode_frame`] decodes with dicom-rs: JPEG baseline
/// and extended, JPEG lossless (process 14 and its selection value 1), JPEG 2000 (lossless and
/// not), RLE lossless. Others (JPEG-LS, deflated, video, JPEG XL, HTJ2K) make a series
/// [`NotVolume`].
const TS_DECODED: [&str; 7] = [
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.5",
];

/// Whether slices in this transfer syntax can be rendered (None: no meta group, read as
/// Implicit VR Little Endian).
pub fn syntax_supported(ts: Option<&str>) -> bool {
    ts.is_none_or(|ts| TS_NATIVE.contains(&ts) || TS_DECODED.contains(&ts))
}

/// The first frame of a file's compressed (encapsulated) pixel data, decoded by dicom-rs
/// (`dicom-object` parses the file, `dicom-pixeldata` runs the codec): native little-endian
/// samples, rows top to bottom.
pub fn decode_frame(file: &[u8], ts: &str) -> Result<Vec<u8>, RenderError> {
    use dicom_pixeldata::PixelDecoder;
    if !TS_DECODED.contains(&ts) {
        return Err(RenderError::UnsupportedSyntax(ts.to_string()));
    }
    let obj = dicom_object::OpenFileOptions::new()
        .from_reader(file)
        .map_err(|e| RenderError::Decode(format!("dicom-object: {e}")))?;
    let px = obj.decode_pixel_data_frame(0).map_err(|e| RenderError::Decode(format!("dicom-pixeldata: {e}")))?;
    Ok(px.into_data())
}

/// One frame of a multi-frame file as a slice: `pd.info` with the frame's position,
/// orientation, spacing and rescale from the functional groups (per-frame, else shared) of the
/// file's header. `head` holds at least the header up to the Pixel Data element
/// ([`dicom::locate_pixel_data`] found it as `pd`). The frames' instance numbers are their
/// indices + 1, so [`plan`]'s `order` gives frame indices.
pub fn frames_of(head: &[u8], pd: &dicom::PixelData) -> Result<Vec<DicomInfo>, NotVolume> {
    use dicom_object::{InMemDicomObject, Tag};
    let n = pd.info.number_of_frames.unwrap_or(1);
    if !(1..=100_000).contains(&n) {
        return Err(not(format!("NumberOfFrames {n}")));
    }
    let obj = dicom_object::OpenFileOptions::new()
        .read_until(Tag(0x7FE0, 0x0010))
        .from_reader(&head[..pd.offset.min(head.len())])
        .map_err(|e| not(format!("multi-frame header unreadable: {e}")))?;
    let item = |o: &InMemDicomObject, seq: u32| -> Option<InMemDicomObject> {
        o.element_opt(Tag((seq >> 16) as u16, seq as u16)).ok()??.items()?.first().cloned()
    };
    let shared = item(&obj, 0x5200_9229);
    let per: Vec<InMemDicomObject> = obj
        .element_opt(Tag(0x5200, 0x9230))
        .ok()
        .flatten()
        .and_then(|e| e.items().map(<[_]>::to_vec))
        .unwrap_or_default();
    if per.len() as i64 != n {
        return Err(not(format!("{} per-frame functional groups for {n} frames", per.len())));
    }
    // A frame's attribute `tag` in functional group `seq`: its own, else the shared one.
    let get = |f: &InMemDicomObject, seq: u32, tag: u32| -> Option<Vec<f64>> {
        let from = |o: &InMemDicomObject| {
            item(o, seq)?.element_opt(Tag((tag >> 16) as u16, tag as u16)).ok()??.to_multi_float64().ok()
        };
        from(f).or_else(|| shared.as_ref().and_then(from))
    };
    let arr = |v: Option<Vec<f64>>| -> Option<[f64; 6]> {
        let v = v?;
        let mut a = [0.0; 6];
        (v.len() >= 6).then(|| {
            a.copy_from_slice(&v[..6]);
            a
        })
    };
    Ok(per
        .iter()
        .enumerate()
        .map(|(i, f)| DicomInfo {
            number_of_frames: None,
            instance_number: Some(i as i64 + 1),
            image_position: get(f, 0x0020_9113, 0x0020_0032).filter(|v| v.len() >= 3).map(|v| [v[0], v[1], v[2]]),
            image_orientation: arr(get(f, 0x0020_9116, 0x0020_0037)),
            pixel_spacing: get(f, 0x0028_9110, 0x0028_0030).filter(|v| v.len() >= 2).map(|v| [v[0], v[1]]),
            slice_thickness: get(f, 0x0028_9110, 0x0018_0050).and_then(|v| v.first().copied()),
            rescale_intercept: get(f, 0x0028_9145, 0x0028_1052).and_then(|v| v.first().copied()),
            rescale_slope: get(f, 0x0028_9145, 0x0028_1053).and_then(|v| v.first().copied()),
            ..pd.info.clone()
        })
        .collect())
}

/// Every frame of a compressed multi-frame file (the whole `file`), decoded by dicom-rs:
/// stored values, frame after frame, rows top to bottom, little-endian.
fn all_frames(plan: &VolumePlan, frames: usize, file: &[u8]) -> Result<Vec<u8>, RenderError> {
    use dicom_pixeldata::PixelDecoder;
    let want = plan.slice_bytes() as usize * frames;
    let obj = dicom_object::OpenFileOptions::new()
        .from_reader(file)
        .map_err(|e| RenderError::Decode(format!("dicom-object: {e}")))?;
    let mut v = obj.decode_pixel_data().map_err(|e| RenderError::Decode(format!("dicom-pixeldata: {e}")))?.into_data();
    if v.len() < want {
        return Err(RenderError::Decode(format!("decoded {} bytes, {frames} frames need {want}", v.len())));
    }
    v.truncate(want);
    Ok(v)
}

/// A native frame's stored values (rows top to bottom, little-endian) from its bytes.
fn frame_pixels(plan: &VolumePlan, mf: &MultiFrame, bytes: &[u8]) -> Result<Vec<u8>, RenderError> {
    let want = plan.slice_bytes() as usize;
    if bytes.len() < want {
        return Err(RenderError::Dicom(DicomError::Truncated));
    }
    let px = &bytes[..want];
    Ok(if mf.big_endian && plan.voxel.bytes() == 2 {
        px.chunks_exact(2).flat_map(|p| [p[1], p[0]]).collect()
    } else {
        px.to_vec()
    })
}

// ---------------------------------------------------------------------------------------------
// The derived-file kind

use super::{
    Image, Kind, KindId, MEMO_FRAMES, MEMO_MIDDLE_SLICE, Planned, RenderCx, Spec, Study, bad, derived_name, params,
    unparams,
};

/// The kind's persisted id (h12png's kinds take the ids below it).
pub const KIND_ID: KindId = 5;

/// Slices rendered together as one cached part: at most this many bytes of voxels, at least
/// one slice (a 512x512 16-bit slice, 512 KiB, is a part of its own).
const PART_BYTES: u64 = 256 << 10;

/// What the tree keeps per derived file of this kind (`Spec::params`).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum Params {
    /// A `.nii`: its plan, `order` being the identity (the spec's inputs are in file order).
    Volume(VolumePlan),
    /// A `.json` sidecar: its bytes (a few hundred).
    Sidecar(Vec<u8>),
    /// A `.nii` of one multi-frame file (the spec's one input): slice k is frame `frames[k]`.
    Frames(VolumePlan, MultiFrame),
}

/// Where a multi-frame file's frames are.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct MultiFrame {
    /// Frame index of each slice, in file order.
    frames: Vec<u32>,
    /// Offset of the Pixel Data value in the file.
    offset: u64,
    /// Native values are big-endian.
    big_endian: bool,
    /// Encapsulated (compressed) frames: decoded from the whole file.
    compressed: bool,
}

/// DICOM series -> `<series folder>/<series folder name>.nii` and `.json`.
pub struct NiftiKind;

impl VolumePlan {
    /// Slices per part.
    fn per_part(&self) -> usize {
        (PART_BYTES / self.slice_bytes().max(1)).max(1) as usize
    }
}

fn load(spec: &Spec) -> Result<Params, String> {
    unparams(spec)
}

/// A `.nii`'s plan, and where its frames are when it is one multi-frame file.
fn load_volume(spec: &Spec) -> Result<(VolumePlan, Option<MultiFrame>), String> {
    match load(spec)? {
        Params::Volume(p) if p.dim[2] == spec.inputs.len() => Ok((p, None)),
        Params::Frames(p, mf) if p.dim[2] == mf.frames.len() && spec.inputs.len() == 1 => Ok((p, Some(mf))),
        Params::Volume(p) | Params::Frames(p, _) => {
            Err(format!("derived NIfTI: {} slices, {} inputs", p.dim[2], spec.inputs.len()))
        }
        Params::Sidecar(_) => Err("a derived JSON is not an image".into()),
    }
}

/// Slice k's stored values (rows top to bottom, little-endian), read through `cx`.
fn slice_at(p: &VolumePlan, mf: Option<&MultiFrame>, k: usize, cx: &RenderCx<'_>) -> std::io::Result<Vec<u8>> {
    let err = |e: RenderError| bad(format!("slice {} of the derived NIfTI: {e}", k + 1));
    match mf {
        None => slice_pixels(p, &cx.read_all(k)?).map_err(err),
        Some(mf) if mf.compressed => {
            // Every frame decoded once into one memo (a compressed file is read whole to
            // decode any frame of it), refused when it would not fit the budget.
            let sb = p.slice_bytes() as usize;
            let total = sb * mf.frames.len();
            let all = cx.memo(MEMO_FRAMES, || {
                if total > cx.budget() {
                    return Err(bad(format!(
                        "the derived NIfTI's {total} decoded bytes exceed the cache budget ({})",
                        cx.budget()
                    )));
                }
                let file = cx.read_all(0)?;
                let _charge = cx.reserve(file.len() + total);
                all_frames(p, mf.frames.len(), &file).map_err(err)
            })?;
            let f = mf.frames[k] as usize;
            all.get(f * sb..(f + 1) * sb).map(<[u8]>::to_vec).ok_or_else(|| bad("frame past the decoded data"))
        }
        Some(mf) => {
            let sb = p.slice_bytes();
            let mut px = Vec::new();
            cx.read(0, mf.offset + mf.frames[k] as u64 * sb, sb as usize, &mut px)?;
            frame_pixels(p, mf, &px).map_err(err)
        }
    }
}

/// Why a multi-frame file gets no `.nii`.
enum FramesError {
    /// Its header cannot be read (a damaged file: warned about).
    Unreadable(String),
    /// It is not a volume (logged at debug level).
    NotVolume(String),
}

/// Plans a multi-frame file: its header read through `content` (as much of its head as it
/// takes to reach Pixel Data), its frames as slices.
fn plan_frames(
    id: (u32, u32),
    size: u64,
    content: &dyn crate::organize::ContentSource,
) -> Result<(VolumePlan, MultiFrame, Vec<DicomInfo>), FramesError> {
    use FramesError::{NotVolume as Not, Unreadable};
    let mut want = (64usize << 10).min(size as usize);
    let (head, pd) = loop {
        let head = content.read_head(id, want).map_err(|e| Unreadable(format!("cannot read the header: {e}")))?;
        let head_size = (head.len() as u64).min(size);
        match dicom::locate_pixel_data(&head[..head_size as usize], size) {
            Ok(pd) => break (head, pd),
            Err(DicomError::NeedMore(n)) if n > head.len() && n <= 64 << 20 => want = n,
            Err(e) => return Err(Unreadable(e.to_string())),
        }
    };
    let frames = frames_of(&head, &pd).map_err(|e| Not(e.0))?;
    let refs: Vec<&DicomInfo> = frames.iter().collect();
    let p = plan(&refs).map_err(|e| Not(e.0))?;
    let n = frames.len() as u64;
    if let Some(len) = pd.len.filter(|&l| (l as u64) < n * p.slice_bytes()) {
        return Err(Unreadable(format!("Pixel Data holds {len} bytes, {n} frames need {}", n * p.slice_bytes())));
    }
    let frames_order = p.order.iter().map(|&k| k as u32).collect();
    let mf = MultiFrame {
        frames: frames_order,
        offset: pd.offset as u64,
        big_endian: pd.big_endian,
        compressed: pd.len.is_none(),
    };
    Ok((p, mf, frames))
}

impl Kind for NiftiKind {
    fn id(&self) -> KindId {
        KIND_ID
    }

    fn name(&self) -> &'static str {
        "nifti"
    }

    /// One `.nii` + `.json` per series of the study that is a volume (and per multi-frame file
    /// that is one); the others get a debug log line saying why not, a multi-frame file whose
    /// header cannot be read a warning.
    fn plan(
        &self,
        study: &Study<'_>,
        content: &dyn crate::organize::ContentSource,
        warn: &mut Vec<String>,
    ) -> Vec<Planned> {
        use std::collections::BTreeMap;
        // Series by (folder, SeriesInstanceUID): the generic DICOM tree has one folder per series.
        let mut series: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
        let mut out = Vec::new();
        for (i, f) in study.files.iter().enumerate() {
            let Some(info) = f.dicom.filter(|d| !d.is_series_reference()) else { continue };
            if info.number_of_frames.is_some_and(|n| n > 1) {
                // A multi-frame file is a volume of its own, named after it.
                let where_ = format!("{}/{}", study.dir, f.name);
                match plan_frames(f.id, f.size, content) {
                    Ok((p, mf, frames)) => {
                        let refs: Vec<&DicomInfo> = frames.iter().collect();
                        let json = super::bids::sidecar(&p, &refs);
                        let size = p.size();
                        let stored = VolumePlan { order: (0..p.order.len()).collect(), ..p };
                        let spec =
                            Spec { kind: KIND_ID, inputs: vec![f.id], params: params(&Params::Frames(stored, mf)) };
                        out.push(Planned { name: derived_name(f.name, None, "nii"), spec, size, beside: Some(i) });
                        let size = json.len() as u64;
                        let spec = Spec { kind: KIND_ID, inputs: Vec::new(), params: params(&Params::Sidecar(json)) };
                        out.push(Planned { name: derived_name(f.name, None, "json"), spec, size, beside: Some(i) });
                    }
                    // Its header could not be read: a problem with the file, worth a warning.
                    Err(FramesError::Unreadable(why)) => warn.push(format!("{where_}: no .nii: {why}")),
                    Err(FramesError::NotVolume(why)) => tracing::debug!("{where_}: no .nii: {why}"),
                }
                continue;
            }
            let folder = f.name.rfind('/').map_or("", |p| &f.name[..p]);
            series.entry((folder, info.series_uid.as_deref().unwrap_or(""))).or_default().push(i);
        }
        let per_folder = |folder: &str| series.keys().filter(|(f, _)| *f == folder).count();
        for ((folder, uid), idx) in &series {
            let infos: Vec<&DicomInfo> = idx.iter().map(|&i| study.files[i].dicom.expect("grouped DICOM")).collect();
            let stem = match folder.rsplit('/').next() {
                Some(last) if !last.is_empty() && per_folder(folder) == 1 => last.to_string(),
                _ if uid.is_empty() => "series".to_string(),
                _ => uid.replace(['/', '\0'], "_"),
            };
            let base = if folder.is_empty() { stem } else { format!("{folder}/{stem}") };
            let where_ = format!("{}/{base}", study.dir);
            // Not a volume (a lone radiograph, a localizer, echoes): usual, so a debug line only.
            let p = match plan(&infos) {
                Ok(p) => p,
                Err(e) => {
                    tracing::debug!("{where_}: no .nii: {}", e.0);
                    continue;
                }
            };
            let json = super::bids::sidecar(&p, &infos);
            let beside = Some(idx[p.order[0]]);
            let inputs = p.order.iter().map(|&k| study.files[idx[k]].id).collect();
            let size = p.size();
            let stored = VolumePlan { order: (0..p.order.len()).collect(), ..p };
            let spec = Spec { kind: KIND_ID, inputs, params: params(&Params::Volume(stored)) };
            out.push(Planned { name: format!("{base}.nii"), spec, size, beside });
            let size = json.len() as u64;
            let spec = Spec { kind: KIND_ID, inputs: Vec::new(), params: params(&Params::Sidecar(json)) };
            out.push(Planned { name: format!("{base}.json"), spec, size, beside });
        }
        out
    }

    /// A `.nii`: the 352 header bytes, then groups of whole slices of about 1 MiB. A `.json`:
    /// one part.
    fn parts(&self, spec: &Spec) -> Result<Vec<u64>, String> {
        match load(spec)? {
            Params::Sidecar(b) => Ok(vec![b.len() as u64]),
            Params::Volume(_) | Params::Frames(..) => {
                let (p, _) = load_volume(spec)?;
                let g = p.per_part();
                let mut parts = vec![VOX_OFFSET];
                let mut k = 0;
                while k < p.dim[2] {
                    let n = g.min(p.dim[2] - k);
                    parts.push(n as u64 * p.slice_bytes());
                    k += n;
                }
                Ok(parts)
            }
        }
    }

    /// Part 0 of a `.nii` is its header; part n its slices (n-1)·g .. n·g, each read whole
    /// from its DICOM file and rendered by [`render_slice`].
    fn render(&self, spec: &Spec, part: usize, cx: &RenderCx<'_>) -> std::io::Result<Vec<u8>> {
        if let Params::Sidecar(b) = load(spec).map_err(bad)? {
            return if part == 0 { Ok(b) } else { Err(bad("a derived JSON has one part")) };
        }
        let (p, mf) = load_volume(spec).map_err(bad)?;
        if part == 0 {
            return Ok(p.header().to_vec());
        }
        let g = p.per_part();
        let first = (part - 1) * g;
        if first >= p.dim[2] {
            return Err(bad(format!("derived NIfTI has no part {part}")));
        }
        let slices = first..(first + g).min(p.dim[2]);
        let mut out = Vec::with_capacity(slices.len() * p.slice_bytes() as usize);
        let row = p.dim[0] * p.voxel.bytes();
        for k in slices {
            // The slice's file (or frame) and its values are held while it renders.
            let _charge = cx.reserve(2 * p.slice_bytes() as usize);
            let px = slice_at(&p, mf.as_ref(), k, cx)?;
            for r in px.rchunks_exact(row) {
                out.extend_from_slice(r);
            }
        }
        Ok(out)
    }

    /// A `.nii` is an image for previews: its middle slice.
    fn image(&self) -> Option<&dyn Image> {
        Some(self)
    }

    /// Planned per series folder of the DICOM datasets no profile claims.
    fn dicom_series(&self) -> bool {
        true
    }
}

/// The middle slice of the volume (slice nz/2 in file order), as the DICOM shows it: rows top
/// to bottom, 16-bit samples big-endian; signed values shifted by 32768 (128 for 8 bits) so
/// that their order is kept (a preview stretches them anyway).
impl Image for NiftiKind {
    fn shape(&self, spec: &Spec) -> Result<(u32, u32, u8), String> {
        let (p, _) = load_volume(spec)?;
        Ok((p.dim[0] as u32, p.dim[1] as u32, 8 * p.voxel.bytes() as u8))
    }

    fn rows(&self, spec: &Spec, rows: Range<u32>, cx: &RenderCx<'_>) -> std::io::Result<Vec<u8>> {
        let (p, mf) = load_volume(spec).map_err(bad)?;
        if rows.end as usize > p.dim[1] || rows.start > rows.end {
            return Err(bad(format!("derived NIfTI image has {} rows, not {rows:?}", p.dim[1])));
        }
        let k = p.dim[2] / 2;
        let all = cx.memo(MEMO_MIDDLE_SLICE, || {
            let le = slice_at(&p, mf.as_ref(), k, cx)?;
            Ok(match p.voxel {
                Voxel::U8 => le,
                Voxel::I8 => le.into_iter().map(|v| v ^ 0x80).collect(),
                Voxel::U16 => le.chunks_exact(2).flat_map(|s| [s[1], s[0]]).collect(),
                Voxel::I16 => {
                    le.chunks_exact(2).flat_map(|s| (u16::from_le_bytes([s[0], s[1]]) ^ 0x8000).to_be_bytes()).collect()
                }
            })
        })?;
        let row = p.dim[0] * p.voxel.bytes();
        Ok(all[rows.start as usize * row..rows.end as usize * row].to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slice of a series: geometry from the arguments, the rest a plain CT.
    fn slice(ipp: [f64; 3], iop: [f64; 6], instance: i64) -> DicomInfo {
        DicomInfo {
            rows: Some(4),
            columns: Some(3),
            pixel_spacing: Some([0.5, 0.75]),
            image_orientation: Some(iop),
            image_position: Some(ipp),
            instance_number: Some(instance),
            bits_allocated: Some(16),
            pixel_representation: Some(1),
            rescale_slope: Some(1.0),
            rescale_intercept: Some(-1024.0),
            samples_per_pixel: Some(1),
            ..DicomInfo::default()
        }
    }

    const AXIAL: [f64; 6] = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
    const SAGITTAL: [f64; 6] = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0];
    const CORONAL: [f64; 6] = [1.0, 0.0, 0.0, 0.0, 0.0, -1.0];

    fn series(iop: [f64; 6], n: usize, step: f64) -> Vec<DicomInfo> {
        let r = [iop[0], iop[1], iop[2]];
        let c = [iop[3], iop[4], iop[5]];
        let nrm = cross(r, c);
        (0..n)
            .map(|k| {
                slice(
                    [
                        10.0 + step * k as f64 * nrm[0],
                        -20.0 + step * k as f64 * nrm[1],
                        30.0 + step * k as f64 * nrm[2],
                    ],
                    iop,
                    k as i64 + 1,
                )
            })
            .collect()
    }

    fn refs(v: &[DicomInfo]) -> Vec<&DicomInfo> {
        v.iter().collect()
    }

    fn approx(a: &[[f64; 4]; 3], b: &[[f64; 4]; 3]) {
        for r in 0..3 {
            for c in 0..4 {
                assert!((a[r][c] - b[r][c]).abs() < 1e-9, "{a:?}\n!=\n{b:?}");
            }
        }
    }

    /// An axial stack is dcm2niix's LAS: x negated (L), rows flipped (A), z up (S); the
    /// origin is the first slice's last row, in RAS.
    #[test]
    fn axial_is_las() {
        let s = series(AXIAL, 5, 2.5);
        let p = plan(&refs(&s)).unwrap();
        assert_eq!(p.order, vec![0, 1, 2, 3, 4]);
        assert_eq!(p.dim, [3, 4, 5]);
        assert_eq!(p.voxel, Voxel::I16);
        assert_eq!(p.pixdim, [0.75, 0.5, 2.5]);
        assert_eq!((p.slope, p.inter), (1.0, -1024.0));
        // Last row y (LPS) = -20 + 3*0.5 = -18.5 -> RAS y 18.5; x 10 -> -10.
        approx(&p.affine, &[[-0.75, 0.0, 0.0, -10.0], [0.0, 0.5, 0.0, 18.5], [0.0, 0.0, 2.5, 30.0]]);
        assert_eq!(p.size(), 352 + 3 * 4 * 5 * 2);
    }

    /// Slices given in any order, numbered from the top down or at random, describe the same
    /// space in the same order: ascending along the normal (dcm2niix's result).
    #[test]
    fn reversed_and_shuffled_order() {
        let mut s = series(AXIAL, 5, 2.5);
        let up = plan(&refs(&s)).unwrap();
        for (k, x) in s.iter_mut().enumerate() {
            x.instance_number = Some(10 - k as i64);
        }
        let p = plan(&refs(&s)).unwrap();
        assert_eq!(p.order, vec![0, 1, 2, 3, 4]);
        assert_eq!(p.affine, up.affine);
        for (x, i) in s.iter_mut().zip([3, 1, 5, 2, 4]) {
            x.instance_number = Some(i);
        }
        assert_eq!(plan(&refs(&s)).unwrap(), p);
        let mut rev: Vec<&DicomInfo> = refs(&s);
        rev.reverse();
        let q = plan(&rev).unwrap();
        assert_eq!(q.order, vec![4, 3, 2, 1, 0]);
        assert_eq!(q.affine, p.affine);
        // A stack written downwards: the first slice of the file is the lowest one.
        let down = series(AXIAL, 5, -2.5);
        let d = plan(&refs(&down)).unwrap();
        assert_eq!(d.order, vec![4, 3, 2, 1, 0]);
        approx(&d.affine, &[[-0.75, 0.0, 0.0, -10.0], [0.0, 0.5, 0.0, 18.5], [0.0, 0.0, 2.5, 20.0]]);
    }

    /// Sagittal and coronal stacks: the columns follow the direction cosines, negated for RAS.
    #[test]
    fn sagittal_and_coronal() {
        // Sagittal: rows along +y (LPS posterior), columns along -z; N = R x C = (-1, 0, 0).
        let p = plan(&refs(&series(SAGITTAL, 4, 1.2))).unwrap();
        // Origin: first slice (10,-20,30) + 3 rows * 0.5 * (0,0,-1) = (10,-20,28.5) -> RAS (-10,20,28.5).
        approx(&p.affine, &[[0.0, 0.0, 1.2, -10.0], [-0.75, 0.0, 0.0, 20.0], [0.0, 0.5, 0.0, 28.5]]);
        // Coronal: rows along +x, columns along -z; N = (0, 1, 0).
        let p = plan(&refs(&series(CORONAL, 4, 3.0))).unwrap();
        approx(&p.affine, &[[-0.75, 0.0, 0.0, -10.0], [0.0, 0.0, -3.0, 20.0], [0.0, 0.5, 0.0, 28.5]]);
    }

    /// An oblique stack: the affine's columns are the scaled, flipped cosines and its slice
    /// column is the normal times the spacing; every voxel maps where the DICOM puts it.
    #[test]
    fn oblique() {
        let (a, b) = (30f64.to_radians(), 20f64.to_radians());
        let r = [a.cos(), a.sin(), 0.0];
        let c = [-a.sin() * b.cos(), a.cos() * b.cos(), b.sin()];
        let iop = [r[0], r[1], r[2], c[0], c[1], c[2]];
        let s = series(iop, 6, 1.7);
        let p = plan(&refs(&s)).unwrap();
        assert!((p.pixdim[2] - 1.7).abs() < 1e-9);
        // Voxel (i, j', k) in the file is DICOM pixel (column i, row ny-1-j') of slice k.
        for (i, jf, k) in [(0, 0, 0), (2, 1, 3), (1, 3, 5)] {
            let row = 3 - jf;
            let ipp = s[p.order[k]].image_position.unwrap();
            let lps: Vec<f64> = (0..3).map(|a| ipp[a] + i as f64 * 0.75 * r[a] + row as f64 * 0.5 * c[a]).collect();
            let ras = [-lps[0], -lps[1], lps[2]];
            for (a, (m, want)) in p.affine.iter().zip(ras).enumerate() {
                let got = m[0] * i as f64 + m[1] * jf as f64 + m[2] * k as f64 + m[3];
                assert!((got - want).abs() < 1e-9, "axis {a}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn what_is_not_a_volume() {
        let why = |v: Vec<DicomInfo>| plan(&refs(&v)).unwrap_err().0;
        assert!(why(series(AXIAL, 1, 1.0)).contains("1 slice"));
        let mut s = series(AXIAL, 4, 2.0);
        s[2].rows = Some(8);
        assert!(why(s).contains("mixed image sizes"));
        let mut s = series(AXIAL, 4, 2.0);
        s[1].image_orientation = Some(SAGITTAL);
        assert!(why(s).contains("localizer"));
        let mut s = series(AXIAL, 4, 2.0);
        s[3].image_position = s[1].image_position;
        assert!(why(s).contains("duplicate slice positions"));
        // Gantry tilt: each slice shifted along y as z goes up.
        let mut s = series(AXIAL, 4, 2.0);
        for (k, x) in s.iter_mut().enumerate() {
            x.image_position.as_mut().unwrap()[1] += 0.5 * k as f64;
        }
        assert!(why(s).contains("gantry tilt"));
        let mut s = series(AXIAL, 4, 2.0);
        s[3].image_position.as_mut().unwrap()[2] += 1.0;
        assert!(why(s).contains("uneven slice spacing"));
        let mut s = series(AXIAL, 4, 2.0);
        s[2].rescale_slope = Some(2.0);
        assert!(why(s).contains("rescale differs"));
        let mut s = series(AXIAL, 4, 2.0);
        s[0].number_of_frames = Some(20);
        assert!(why(s).contains("multi-frame"));
        let mut s = series(AXIAL, 4, 2.0);
        for x in &mut s {
            x.rows = Some(40_000);
        }
        assert!(why(s).contains("NIfTI-1 dimensions stop at 32767"));
        let mut s = series(AXIAL, 4, 2.0);
        for x in &mut s {
            (x.rows, x.columns) = (Some(8192), Some(8192));
        }
        assert!(why(s).contains("more than 67108864"));
        let mut s = series(AXIAL, 4, 2.0);
        s[0].samples_per_pixel = Some(3);
        assert!(why(s).contains("colour"));
        let mut s = series(AXIAL, 4, 2.0);
        s[1].image_position = None;
        assert!(why(s).contains("slice 2 has no ImagePositionPatient"));
        let mut s = series(AXIAL, 4, 2.0);
        for x in &mut s {
            x.image_orientation = Some([1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
        }
        assert!(why(s).contains("not two orthogonal"));
        let mut s = series(AXIAL, 4, 2.0);
        s[3].transfer_syntax = Some("1.2.840.10008.1.2.4.80".into()); // JPEG-LS
        assert!(why(s).contains("transfer syntax 1.2.840.10008.1.2.4.80 is not decoded"));
        let mut s = series(AXIAL, 4, 2.0);
        s[3].transfer_syntax = Some("1.2.840.10008.1.2.4.70".into()); // JPEG lossless: decoded
        assert!(plan(&refs(&s)).is_ok());
    }

    /// Rescale and voxel types: slope/intercept land in the header, the type follows the bits.
    #[test]
    fn rescale_and_types() {
        let mut s = series(AXIAL, 3, 1.0);
        for x in &mut s {
            x.rescale_slope = Some(0.5);
            x.rescale_intercept = Some(3.0);
            x.pixel_representation = Some(0);
        }
        let p = plan(&refs(&s)).unwrap();
        assert_eq!(p.voxel, Voxel::U16);
        let h = p.header();
        let f = |at: usize| f32::from_le_bytes(h[at..at + 4].try_into().unwrap());
        assert_eq!((f(112), f(116)), (0.5, 3.0));
        assert_eq!(i16::from_le_bytes([h[70], h[71]]), 512);
        for x in &mut s {
            x.bits_allocated = Some(8);
            x.rescale_slope = None;
            x.rescale_intercept = None;
        }
        let p = plan(&refs(&s)).unwrap();
        assert_eq!((p.voxel, p.slope, p.inter), (Voxel::U8, 1.0, 0.0));
        for x in &mut s {
            x.pixel_representation = Some(1);
        }
        let p = plan(&refs(&s)).unwrap();
        assert_eq!((p.voxel, p.voxel.code()), (Voxel::I8, 256));
        assert_eq!(p.size(), 352 + 3 * 4 * 3);
    }

    /// The header's fixed fields, and its qform agrees with its sform (nifti1_io's formula
    /// applied back to the stored quaternion).
    #[test]
    fn header_fields_and_qform() {
        let (a, b) = (25f64.to_radians(), -10f64.to_radians());
        let r = [a.cos(), a.sin(), 0.0];
        let c = [-a.sin() * b.cos(), a.cos() * b.cos(), b.sin()];
        for iop in [AXIAL, SAGITTAL, CORONAL, [r[0], r[1], r[2], c[0], c[1], c[2]]] {
            for step in [2.0, -2.0] {
                let p = plan(&refs(&series(iop, 3, step))).unwrap();
                let h = p.header();
                let i32at = |at: usize| i32::from_le_bytes(h[at..at + 4].try_into().unwrap());
                let i16at = |at: usize| i16::from_le_bytes([h[at], h[at + 1]]);
                let f = |at: usize| f32::from_le_bytes(h[at..at + 4].try_into().unwrap()) as f64;
                assert_eq!(i32at(0), 348);
                assert_eq!(&h[344..352], b"n+1\0\0\0\0\0");
                assert_eq!(f(108), 352.0);
                assert_eq!((i16at(40), i16at(42), i16at(44), i16at(46)), (3, 3, 4, 3));
                assert_eq!((i16at(252), i16at(254)), (1, 1));
                let (qb, qc, qd, qfac) = (f(256), f(260), f(264), f(76));
                let qa = (1.0 - (qb * qb + qc * qc + qd * qd)).max(0.0).sqrt();
                let rot = [
                    [qa * qa + qb * qb - qc * qc - qd * qd, 2.0 * (qb * qc - qa * qd), 2.0 * (qb * qd + qa * qc)],
                    [2.0 * (qb * qc + qa * qd), qa * qa + qc * qc - qb * qb - qd * qd, 2.0 * (qc * qd - qa * qb)],
                    [2.0 * (qb * qd - qa * qc), 2.0 * (qc * qd + qa * qb), qa * qa + qd * qd - qc * qc - qb * qb],
                ];
                let pd = [f(80), f(84), f(88) * qfac];
                for (i, rot_i) in rot.iter().enumerate() {
                    for j in 0..3 {
                        let q = rot_i[j] * pd[j];
                        // a = sqrt(1 - b² - c² - d²) from f32s: ~1e-4 near half turns (nifti1_io too).
                        assert!(
                            (q - p.affine[i][j]).abs() < 1e-3,
                            "{iop:?} {step}: [{i}][{j}] {q} vs {}",
                            p.affine[i][j]
                        );
                        assert!((f(280 + 16 * i + 4 * j) - p.affine[i][j]).abs() < 1e-5);
                    }
                    assert!((f(268 + 4 * i) - p.affine[i][3]).abs() < 1e-4);
                }
            }
        }
    }

    /// Ranges map to the slices they touch; `read_at` assembles header and slices exactly.
    #[test]
    fn ranges_and_read_at() {
        let p = plan(&refs(&series(AXIAL, 5, 1.0))).unwrap();
        let sb = p.slice_bytes();
        assert_eq!(sb, 24);
        assert_eq!(p.slices_for(0..352), 0..0);
        assert_eq!(p.slices_for(0..353), 0..1);
        assert_eq!(p.slices_for(352 + sb..352 + sb + 1), 1..2);
        assert_eq!(p.slices_for(352 + sb - 1..352 + sb + 1), 0..2);
        assert_eq!(p.slices_for(0..u64::MAX), 0..5);
        assert_eq!(p.slices_for(p.size()..p.size() + 10), 0..0);
        let fake = |k: usize| -> Result<Vec<u8>, ()> { Ok(vec![k as u8 + 1; 24]) };
        let mut whole = vec![0xEE; p.size() as usize + 7];
        assert_eq!(p.read_at(0, &mut whole, fake), Ok(p.size() as usize));
        assert_eq!(&whole[..352], &p.header()[..]);
        for k in 0..5 {
            assert!(whole[352 + 24 * k..352 + 24 * (k + 1)].iter().all(|&b| b == k as u8 + 1));
        }
        // Every window of every size reads the same bytes, asking only for the slices it needs.
        for off in [0u64, 100, 351, 352, 360, 375, 376, 400, 471] {
            for len in [1usize, 2, 24, 25, 100, 500] {
                let mut asked = Vec::new();
                let mut buf = vec![0; len];
                let n = p
                    .read_at(off, &mut buf, |k| {
                        asked.push(k);
                        fake(k)
                    })
                    .unwrap();
                let want = (p.size().saturating_sub(off) as usize).min(len);
                assert_eq!(n, want);
                assert_eq!(&buf[..n], &whole[off as usize..off as usize + n]);
                let expect: Vec<usize> = p.slices_for(off..off + len as u64).collect();
                assert_eq!(asked, expect);
            }
        }
    }

    /// The kind plans a `.nii` + `.json` per series folder that is a volume (named after the
    /// folder, or after the series UID when a folder holds several), nothing and no warning
    /// for the rest; parts cover the file exactly.
    #[test]
    fn kind_plans_series() {
        use super::super::StudyFile;
        struct NoContent;
        impl crate::organize::ContentSource for NoContent {
            fn read_all(&self, _: (u32, u32)) -> std::io::Result<Vec<u8>> {
                Err(std::io::Error::other("single-frame series are planned from headers"))
            }
        }
        let mut a = series(AXIAL, 3, 2.0);
        a.reverse();
        let b = series(AXIAL, 1, 2.0);
        let mut c1 = series(SAGITTAL, 2, 1.0);
        let mut c2 = series(CORONAL, 2, 1.0);
        for x in &mut c1 {
            x.series_uid = Some("1.2.1".into());
        }
        for x in &mut c2 {
            x.series_uid = Some("1.2/2".into());
        }
        let files: Vec<(String, &DicomInfo)> = [("A", &a), ("B", &b), ("C", &c1), ("C", &c2)]
            .iter()
            .flat_map(|(dir, v)| v.iter().map(move |x| (format!("{dir}/{}.dcm", x.instance_number.unwrap()), x)))
            .collect();
        let study = Study {
            dataset: "d",
            dir: "P/S",
            files: files
                .iter()
                .enumerate()
                .map(|(i, (name, info))| StudyFile { name, role: "", id: (0, i as u32), size: 100, dicom: Some(info) })
                .collect(),
            planned: &[],
        };
        let mut warn = Vec::new();
        let planned = NiftiKind.plan(&study, &NoContent, &mut warn);
        assert!(warn.is_empty(), "{warn:?}");
        let names: Vec<&str> = planned.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["A/A.nii", "A/A.json", "C/1.2.1.nii", "C/1.2.1.json", "C/1.2_2.nii", "C/1.2_2.json"]);
        // A's slices were given top-down: its inputs go bottom-up, beside its lowest slice.
        assert_eq!(planned[0].spec.inputs, vec![(0, 2), (0, 1), (0, 0)]);
        assert_eq!(planned[0].beside, Some(2));
        assert_eq!(planned[1].spec.inputs, vec![]);
        for p in &planned {
            let parts = NiftiKind.parts(&p.spec).unwrap();
            assert_eq!(parts.iter().sum::<u64>(), p.size, "{}", p.name);
        }
        assert_eq!(NiftiKind.parts(&planned[0].spec).unwrap(), vec![352, 3 * 24]);
    }

    /// Corrupted and truncated slice files: an error or a slice of the right size, never a
    /// panic.
    #[test]
    fn garbage_slices_never_panic() {
        use crate::dicom::testgen::{Opts, Syntax, write_pixels};
        use rand::{Rng, SeedableRng};
        let s = series(AXIAL, 2, 1.0);
        let p = plan(&refs(&s)).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(12);
        for syntax in [Syntax::ImplicitLe, Syntax::ExplicitLe, Syntax::ExplicitBe] {
            let file = write_pixels(&s[0], &Opts { syntax, ..Opts::default() }, Some(&[7; 24]));
            for _ in 0..3000 {
                let mut g = file.clone();
                for _ in 0..rng.random_range(1..4) {
                    let i = rng.random_range(0..g.len());
                    g[i] = rng.random();
                }
                g.truncate(rng.random_range(0..=g.len()));
                if let Ok(v) = render_slice(&p, &g) {
                    assert_eq!(v.len() as u64, p.slice_bytes());
                }
            }
        }
    }

    /// Native pixel data in each uncompressed syntax renders to the same voxels: little-endian,
    /// rows flipped.
    #[test]
    fn render_native_syntaxes() {
        use crate::dicom::testgen::{Opts, Syntax, write_pixels};
        let s = series(AXIAL, 2, 1.0);
        let p = plan(&refs(&s)).unwrap();
        let values: Vec<i16> = (0..12).map(|v| v * 100 - 600).collect();
        let mut expect = Vec::new();
        for row in (0..4).rev() {
            for col in 0..3 {
                expect.extend_from_slice(&values[row * 3 + col].to_le_bytes());
            }
        }
        for syntax in [Syntax::ImplicitLe, Syntax::ExplicitLe, Syntax::ExplicitBe] {
            let px: Vec<u8> = values
                .iter()
                .flat_map(|v| if syntax == Syntax::ExplicitBe { v.to_be_bytes() } else { v.to_le_bytes() })
                .collect();
            let file = write_pixels(&s[0], &Opts { syntax, ..Opts::default() }, Some(&px));
            assert_eq!(render_slice(&p, &file).unwrap(), expect, "{syntax:?}");
            // A truncated file or one of another size is an error, never wrong bytes.
            assert!(matches!(
                render_slice(&p, &file[..file.len() - 1]),
                Err(RenderError::Dicom(DicomError::Truncated))
            ));
            let mut other = s[0].clone();
            other.rows = Some(2);
            let f2 = write_pixels(&other, &Opts { syntax, ..Opts::default() }, Some(&px[..12]));
            assert!(matches!(render_slice(&p, &f2), Err(RenderError::Mismatch(_))));
        }
    }
}
