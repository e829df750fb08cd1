//! Kinds `ddsm_png` and `ddsm_mask`: DDSM mammograms and their outlined abnormalities as PNGs.
//!
//! `ddsm_png`: a 16-bit grayscale PNG of each `.LJPEG` (`A_1509_1.LEFT_CC.LJPEG` ->
//! `A_1509_1.LEFT_CC.png`), values kept as they are (12 or 16 bits). An LJPEG is a lossless JPEG
//! (ITU-T T.81 process 14, SOF3); it is decoded with `jpeg-decoder`, whole (the crate decodes
//! whole images only), once per image: the decoded
//! samples are a memo charged to the cache, and every row part is cut from it. The PNG's width
//! and height are the `.ics` line of the view (`PIXELS_PER_LINE`, `LINES`), planned from the
//! `.ics` and the JPEG frame header alone. Some headers give width and height the other way
//! round (ddsm.md): the samples are then taken in their order as `LINES` rows of
//! `PIXELS_PER_LINE` (a reshape, as every DDSM reader does), so a header whose pixel count
//! differs from the `.ics` gets no PNG (a warning). A stream `jpeg-decoder` refuses fails the
//! read with EIO and the decoder's message in the log; the real files' PVRG-coded streams were
//! not available to check against, only T.81 SOF3 streams written by the tests.
//!
//! `ddsm_mask`: an 8-bit mask PNG (0 outside, 255 inside and on the outline) per abnormality of
//! each `.OVERLAY` (`A_1509_1.RIGHT_CC.OVERLAY` -> `A_1509_1.RIGHT_CC.mask1.png` for
//! `ABNORMALITY 1`), the size of the view's image (`.ics`), from the abnormality's `BOUNDARY`
//! outline: a Freeman chain code (start x y, then directions 0-7 until `#`; 0 is up (y - 1),
//! then clockwise: 1 up-right, 2 right, 3 down-right, 4 down, 5 down-left, 6 left, 7 up-left).
//! The outline's pixels and those inside it (even-odd rule on each row) are set; rows are
//! computed per part from the outline, never the whole mask at once.
//!
//! Inputs, by role: `ljpeg`, `overlay`, and the study's `ics` for the dimensions.

use std::io;
use std::ops::Range;

use serde_json::Value;

use super::png::{Layout, Shape};
use super::{Image, Kind, KindId, MEMO_DECODED, Planned, RenderCx, Spec, Study, bad, derived_name, params, unparams};
use crate::organize::ContentSource;
use crate::organize::transform::{ddsm_ics, ddsm_view};

/// The PNG of an LJPEG.
pub struct DdsmPng;
/// A mask per abnormality of an OVERLAY.
pub struct DdsmMask;

/// Parameters of a `ddsm_png` file.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct PngParams {
    shape: Shape,
    /// Bits per sample of the JPEG frame (kept: a decoded stream of another precision is wrong).
    precision: u8,
}

/// Parameters of a `ddsm_mask` file.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct MaskParams {
    shape: Shape,
    /// `ABNORMALITY n` of the overlay.
    abnormality: u32,
}

/// (lines, pixels per line) of each view of the study's `.ics`.
fn ics_views(study: &Study<'_>, content: &dyn ContentSource, warn: &mut Vec<String>) -> Option<Value> {
    let ics = study.files.iter().find(|f| f.role == "ics")?;
    match content.read_all(ics.id) {
        Ok(bytes) => ddsm_ics(&String::from_utf8_lossy(&bytes)).get("views").cloned(),
        Err(e) => {
            warn.push(format!("{}/{}: {e}; no derived images", study.dir, ics.name));
            None
        }
    }
}

/// The study's files of `role` with their view's (width, height) from the study's `.ics`, and
/// their `dir/name` for messages; those without are left out with a warning (`no {what}`).
fn sized(
    study: &Study<'_>,
    role: &str,
    content: &dyn ContentSource,
    warn: &mut Vec<String>,
    what: &str,
) -> Vec<(usize, String, u32, u32)> {
    let files: Vec<usize> = (0..study.files.len()).filter(|&i| study.files[i].role == role).collect();
    if files.is_empty() {
        return Vec::new();
    }
    let Some(views) = ics_views(study, content, warn) else { return Vec::new() };
    let mut out = Vec::new();
    for i in files {
        let f = &study.files[i];
        let at = format!("{}/{}", study.dir, f.name);
        match ddsm_view(f.name).and_then(|v| view_dims(&views, v)) {
            Some((w, h)) => out.push((i, at, w, h)),
            None => warn.push(format!("{at}: no LINES and PIXELS_PER_LINE for its view in the .ics; no {what}")),
        }
    }
    out
}

/// The view's (width, height) from the `.ics` views.
fn view_dims(views: &Value, view: &str) -> Option<(u32, u32)> {
    let v = views.get(view)?;
    let get = |k: &str| v.get(k).and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok());
    Some((get("pixels_per_line")?, get("lines")?))
}

/// The frame header of a JPEG stream: (marker, precision, height, width, components).
pub fn frame_header(head: &[u8]) -> Result<(u8, u8, u16, u16, u8), String> {
    if head.get(..2) != Some(&[0xFF, 0xD8]) {
        return Err("not a JPEG stream (no SOI marker)".into());
    }
    let mut at = 2;
    loop {
        // Fill bytes may precede a marker.
        while head.get(at) == Some(&0xFF) && head.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let (Some(&0xFF), Some(&marker)) = (head.get(at), head.get(at + 1)) else {
            return Err("no frame header in the first bytes".into());
        };
        let len = head.get(at + 2..at + 4).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize).unwrap_or(0);
        if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
            let f = head.get(at + 4..at + 10).ok_or("short frame header")?;
            return Ok((marker, f[0], u16::from_be_bytes([f[1], f[2]]), u16::from_be_bytes([f[3], f[4]]), f[5]));
        }
        if len < 2 {
            return Err(format!("bad segment length at byte {at}"));
        }
        at += 2 + len;
    }
}

fn png_layout(spec: &Spec) -> Result<(Layout, PngParams), String> {
    let p: PngParams = unparams(spec)?;
    Ok((Layout::new(p.shape)?, p))
}

impl Kind for DdsmPng {
    fn id(&self) -> KindId {
        2
    }

    fn name(&self) -> &'static str {
        "ddsm_png"
    }

    fn plan(&self, study: &Study<'_>, content: &dyn ContentSource, warn: &mut Vec<String>) -> Vec<Planned> {
        let mut out = Vec::new();
        for (i, at, w, h) in sized(study, "ljpeg", content, warn, "PNG") {
            let f = &study.files[i];
            let head = match content.read_head(f.id, 64 << 10) {
                Ok(h) => h,
                Err(e) => {
                    warn.push(format!("{at}: {e}; no PNG"));
                    continue;
                }
            };
            let (marker, precision, fh, fw, comps) = match frame_header(&head) {
                Ok(x) => x,
                Err(e) => {
                    warn.push(format!("{at}: {e}; no PNG"));
                    continue;
                }
            };
            if marker != 0xC3 || comps != 1 || !(2..=16).contains(&precision) {
                warn.push(format!(
                    "{at}: frame SOF{} with {comps} components at {precision} bits, not a one-component \
                     lossless JPEG (SOF3); no PNG",
                    marker - 0xC0
                ));
                continue;
            }
            if fw as u64 * fh as u64 != w as u64 * h as u64 {
                warn.push(format!(
                    "{at}: the JPEG header says {fw}x{fh}, the .ics {w}x{h} (PIXELS_PER_LINE x LINES); no PNG"
                ));
                continue;
            }
            if (fw as u32, fh as u32) != (w, h) {
                tracing::debug!("{at}: header {fw}x{fh} transposed against the .ics {w}x{h}: reshaped to the .ics");
            }
            let shape = Shape { width: w, height: h, depth: 16 };
            match Layout::new(shape) {
                Ok(layout) => out.push(Planned {
                    name: derived_name(f.name, None, "png"),
                    spec: Spec { kind: self.id(), inputs: vec![f.id], params: params(&PngParams { shape, precision }) },
                    size: layout.size(),
                    beside: Some(i),
                }),
                Err(e) => warn.push(format!("{at}: {e}; no PNG")),
            }
        }
        out
    }

    fn parts(&self, spec: &Spec) -> Result<Vec<u64>, String> {
        Ok(png_layout(spec)?.0.part_lens())
    }

    fn render(&self, spec: &Spec, part: usize, cx: &RenderCx<'_>) -> io::Result<Vec<u8>> {
        let (layout, _) = png_layout(spec).map_err(bad)?;
        layout.render(part, cx, |rows| self.rows(spec, rows, cx))
    }

    fn image(&self) -> Option<&dyn Image> {
        Some(self)
    }
}

/// The whole LJPEG decoded: big-endian 16-bit samples in stream order.
fn decode(cx: &RenderCx<'_>, p: &PngParams) -> io::Result<Vec<u8>> {
    let pixels = p.shape.width as usize * p.shape.height as usize;
    // The decoded image stays in the cache; while decoding, the decoder's planes and its output
    // are about two more copies. Beyond the budget: refused, never taken.
    if pixels.saturating_mul(4) > cx.budget() {
        return Err(bad(format!(
            "decoding {}x{} pixels needs {} MiB, more than the cache budget (--cache-size)",
            p.shape.width,
            p.shape.height,
            pixels.saturating_mul(4) >> 20
        )));
    }
    let bytes = cx.read_all(0)?;
    let _working = cx.reserve(pixels * 4);
    let mut decoder = jpeg_decoder::Decoder::new(&bytes[..]);
    decoder.set_max_decoding_buffer_size(pixels);
    let samples = decoder.decode().map_err(|e| bad(format!("lossless JPEG: {e}")))?;
    let info = decoder.info().ok_or_else(|| bad("lossless JPEG: no frame"))?;
    if info.width as usize * info.height as usize != pixels {
        return Err(bad(format!("lossless JPEG decoded to {}x{}, not as planned", info.width, info.height)));
    }
    match info.pixel_format {
        jpeg_decoder::PixelFormat::L16 if samples.len() == pixels * 2 => {
            // jpeg-decoder gives native-endian samples; PNG wants big-endian: swapped in place.
            let mut samples = samples;
            if cfg!(target_endian = "little") {
                for s in samples.chunks_exact_mut(2) {
                    s.swap(0, 1);
                }
            }
            Ok(samples)
        }
        jpeg_decoder::PixelFormat::L8 if samples.len() == pixels => {
            Ok(samples.iter().flat_map(|&s| (s as u16).to_be_bytes()).collect())
        }
        f => Err(bad(format!("lossless JPEG decoded as {f:?}, not one gray channel"))),
    }
}

impl Image for DdsmPng {
    fn shape(&self, spec: &Spec) -> Result<(u32, u32, u8), String> {
        let (l, _) = png_layout(spec)?;
        Ok((l.shape.width, l.shape.height, 16))
    }

    fn rows(&self, spec: &Spec, rows: Range<u32>, cx: &RenderCx<'_>) -> io::Result<Vec<u8>> {
        let (_, p) = png_layout(spec).map_err(bad)?;
        let image = cx.memo(MEMO_DECODED, || decode(cx, &p))?;
        let stride = p.shape.width as usize * 2;
        image
            .get(rows.start as usize * stride..rows.end as usize * stride)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| bad("decoded image shorter than planned"))
    }
}

/// The outlines of each abnormality of an overlay: (number, outlines as chain codes: start x,
/// start y, directions).
type Outline = (i64, i64, Vec<u8>);

/// `ABNORMALITY n` -> its outlines (`BOUNDARY` first, then `CORE`s), in file order.
pub fn overlay_outlines(text: &str) -> Vec<(u32, Vec<Outline>)> {
    let mut out: Vec<(u32, Vec<Outline>)> = Vec::new();
    let mut toks = text.split_whitespace().peekable();
    while let Some(t) = toks.next() {
        match t.to_ascii_uppercase().as_str() {
            "ABNORMALITY" => {
                if let Some(n) = toks.peek().and_then(|n| n.parse().ok()) {
                    toks.next();
                    out.push((n, Vec::new()));
                }
            }
            "BOUNDARY" | "CORE" => {
                let (Some(x), Some(y)) = (toks.next(), toks.next()) else { break };
                let mut dirs = Vec::new();
                let mut ok = true;
                for d in toks.by_ref() {
                    if d == "#" {
                        break;
                    }
                    match d.parse::<u8>() {
                        Ok(d) if d < 8 => dirs.push(d),
                        _ => ok = false,
                    }
                }
                // Coordinates as i32, walked as i64: no chain (one step per byte of the file)
                // can overflow.
                if let (Ok(x), Ok(y), true, Some(last)) = (x.parse::<i32>(), y.parse::<i32>(), ok, out.last_mut()) {
                    last.1.push((x as i64, y as i64, dirs));
                }
            }
            _ => {}
        }
    }
    out
}

/// Freeman directions: 0 up, then clockwise.
const STEPS: [(i64, i64); 8] = [(0, -1), (1, -1), (1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1)];

/// Rows `rows` of the mask of `outline` in an image `width` wide: 0 or 255 per pixel.
pub fn mask_rows(outline: &Outline, width: u32, rows: Range<u32>) -> Vec<u8> {
    let w = width as usize;
    let mut out = vec![0u8; (rows.end - rows.start) as usize * w];
    let mut pts = Vec::with_capacity(outline.2.len() + 1);
    let (mut x, mut y) = (outline.0, outline.1);
    pts.push((x, y));
    for &d in &outline.2 {
        let (dx, dy) = STEPS[d as usize];
        x += dx;
        y += dy;
        pts.push((x, y));
    }
    let inside = |x: i64, y: i64| x >= 0 && x < width as i64 && y >= rows.start as i64 && y < rows.end as i64;
    let set = |out: &mut [u8], x: i64, y: i64| {
        if inside(x, y) {
            out[(y - rows.start as i64) as usize * w + x as usize] = 255;
        }
    };
    // Inside: even-odd crossings of each row with the closed outline (rows it spans only).
    let (top, bottom) = pts.iter().fold((i64::MAX, i64::MIN), |(t, b), p| (t.min(p.1), b.max(p.1)));
    let mut xs: Vec<f64> = Vec::new();
    for row in rows.clone().filter(|&r| (top..=bottom).contains(&(r as i64))) {
        let yr = row as i64;
        xs.clear();
        for i in 0..pts.len() {
            let (a, b) = (pts[i], pts[(i + 1) % pts.len()]);
            if (a.1 <= yr) != (b.1 <= yr) {
                xs.push(a.0 as f64 + (yr - a.1) as f64 * (b.0 - a.0) as f64 / (b.1 - a.1) as f64);
            }
        }
        xs.sort_by(f64::total_cmp);
        for pair in xs.chunks_exact(2) {
            let from = pair[0].ceil().max(0.0) as i64;
            let to = pair[1].floor().min(width as f64 - 1.0) as i64;
            for x in from..=to {
                set(&mut out, x, yr);
            }
        }
    }
    for &(x, y) in &pts {
        set(&mut out, x, y);
    }
    out
}

fn mask_layout(spec: &Spec) -> Result<(Layout, MaskParams), String> {
    let p: MaskParams = unparams(spec)?;
    Ok((Layout::new(p.shape)?, p))
}

impl Kind for DdsmMask {
    fn id(&self) -> KindId {
        3
    }

    fn name(&self) -> &'static str {
        "ddsm_mask"
    }

    fn csv_role(&self) -> crate::profile::CsvRole {
        crate::profile::CsvRole::Column
    }

    fn plan(&self, study: &Study<'_>, content: &dyn ContentSource, warn: &mut Vec<String>) -> Vec<Planned> {
        let mut out = Vec::new();
        for (i, at, w, h) in sized(study, "overlay", content, warn, "masks") {
            let f = &study.files[i];
            let text = match content.read_all(f.id) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => {
                    warn.push(format!("{at}: {e}; no masks"));
                    continue;
                }
            };
            let shape = Shape { width: w, height: h, depth: 8 };
            let Ok(layout) = Layout::new(shape) else {
                warn.push(format!("{at}: a {w}x{h} image; no masks"));
                continue;
            };
            for (n, outlines) in overlay_outlines(&text) {
                if outlines.is_empty() {
                    warn.push(format!("{at}: abnormality {n} has no outline; no mask"));
                    continue;
                }
                out.push(Planned {
                    name: derived_name(f.name, Some(&format!("mask{n}")), "png"),
                    spec: Spec {
                        kind: self.id(),
                        inputs: vec![f.id],
                        params: params(&MaskParams { shape, abnormality: n }),
                    },
                    size: layout.size(),
                    beside: Some(i),
                });
            }
        }
        out
    }

    fn parts(&self, spec: &Spec) -> Result<Vec<u64>, String> {
        Ok(mask_layout(spec)?.0.part_lens())
    }

    fn render(&self, spec: &Spec, part: usize, cx: &RenderCx<'_>) -> io::Result<Vec<u8>> {
        let (layout, p) = mask_layout(spec).map_err(bad)?;
        layout.render(part, cx, |rows| {
            let text = String::from_utf8_lossy(&cx.read_all(0)?).into_owned();
            let all = overlay_outlines(&text);
            let (_, outlines) = all
                .iter()
                .find(|(n, _)| *n == p.abnormality)
                .ok_or_else(|| bad(format!("the overlay has no abnormality {} any more", p.abnormality)))?;
            Ok(mask_rows(&outlines[0], p.shape.width, rows))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outlines_are_parsed_per_abnormality() {
        let text = "TOTAL_ABNORMALITIES 2\nABNORMALITY 1\nLESION_TYPE MASS\nTOTAL_OUTLINES 2\nBOUNDARY\n10 20 2 2\n4 4 #\n\
                    CORE\n11 21 2 #\nABNORMALITY 2\nTOTAL_OUTLINES 1\nBOUNDARY\n 5 6 0 9 #\n";
        let o = overlay_outlines(text);
        assert_eq!(o.len(), 2);
        assert_eq!(o[0], (1, vec![(10, 20, vec![2, 2, 4, 4]), (11, 21, vec![2])]));
        assert!(o[1].1.is_empty(), "a direction out of 0-7 drops the outline");
        // Coordinates past i32 drop the outline; a far-away outline makes an empty mask.
        assert!(overlay_outlines("ABNORMALITY 1\nBOUNDARY\n9223372036854775807 0 2 2 #\n")[0].1.is_empty());
        let far = overlay_outlines("ABNORMALITY 1\nBOUNDARY\n2147483647 -2147483648 2 2 4 4 6 6 0 0 #\n");
        assert!(mask_rows(&far[0].1[0], 10, 0..10).iter().all(|&v| v == 0));
    }

    #[test]
    fn a_square_outline_fills_its_inside() {
        // 4 right, 4 down, 4 left, 4 up from (2, 1): the square x 2..=6, y 1..=5.
        let outline = (2, 1, [vec![2; 4], vec![4; 4], vec![6; 4], vec![0; 4]].concat());
        let m = mask_rows(&outline, 10, 0..8);
        for y in 0..8 {
            for x in 0..10 {
                let want = (2..=6).contains(&x) && (1..=5).contains(&y);
                assert_eq!(m[y * 10 + x] == 255, want, "({x}, {y})");
            }
        }
        // By rows: the same bytes.
        let top = mask_rows(&outline, 10, 0..3);
        let bottom = mask_rows(&outline, 10, 3..8);
        assert_eq!([top, bottom].concat(), m);
    }

    #[test]
    fn jpeg_decoder_reads_the_test_lossless_writer_at_12_and_16_bits() {
        for (w, h, bits) in [(37u16, 23u16, 12u8), (64, 9, 16), (1, 1, 12), (5, 300, 16)] {
            let max = (1u32 << bits) - 1;
            let samples: Vec<u16> = (0..w as u32 * h as u32)
                .map(|i| match i % 7 {
                    0 => 0,
                    1 => max as u16,
                    _ => (i.wrapping_mul(2_654_435_761) >> 7 & max) as u16,
                })
                .collect();
            let j = crate::fixtures::ljpeg_lossless(w, h, bits, &samples);
            assert_eq!(frame_header(&j), Ok((0xC3, bits, h, w, 1)));
            let mut d = jpeg_decoder::Decoder::new(&j[..]);
            let out = d.decode().unwrap();
            let got: Vec<u16> = out.chunks_exact(2).map(|c| u16::from_ne_bytes([c[0], c[1]])).collect();
            assert_eq!(got, samples, "{w}x{h} at {bits} bits");
        }
    }

    #[test]
    fn frame_headers_are_found_after_other_segments() {
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 1, 2, 0xFF, 0xC4, 0, 2];
        j.extend_from_slice(&[0xFF, 0xC3, 0, 11, 12, 0, 5, 0, 7, 1, 1, 0x11, 0]);
        assert_eq!(frame_header(&j), Ok((0xC3, 12, 5, 7, 1)));
        assert!(frame_header(b"GIF89a").is_err());
        assert!(frame_header(&[0xFF, 0xD8, 0xFF, 0xE0]).is_err());
    }
}
