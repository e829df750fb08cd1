//! Kind `jsrt_png`: a 16-bit grayscale PNG of each JSRT raw image (`JPCLN001.IMG` ->
//! `JPCLN001.png`), values kept as they are (12 bits used of 16).
//!
//! A JSRT `.IMG` has no header: 16-bit big-endian samples, square (2048 x 2048 in the
//! distribution; test copies are smaller), so the side is the square root of half the file
//! size, and a size that is not `2 * side^2` gets no PNG (a warning). PNG samples are big-endian
//! too, so a row part is the rows' bytes read straight from the member: no decoding, no memo.
//! Inputs: the study files of role `image` whose name ends in `.IMG` (any case).

use std::io;
use std::ops::Range;

use super::png::{Layout, Shape};
use super::{Image, Kind, KindId, Planned, RenderCx, Spec, Study, bad, derived_name, params, unparams};
use crate::organize::ContentSource;

/// The kind.
pub struct JsrtPng;

/// The side of a square image of 16-bit samples in `size` bytes (the organizer's rule).
fn side(size: u64) -> Option<u32> {
    crate::organize::transform::jsrt_side(size).and_then(|s| u32::try_from(s).ok())
}

fn layout(spec: &Spec) -> Result<Layout, String> {
    Layout::new(unparams::<Shape>(spec)?)
}

impl Kind for JsrtPng {
    fn id(&self) -> KindId {
        1
    }

    fn name(&self) -> &'static str {
        "jsrt_png"
    }

    fn plan(&self, study: &Study<'_>, _: &dyn ContentSource, warn: &mut Vec<String>) -> Vec<Planned> {
        let mut out = Vec::new();
        for (i, f) in study.files.iter().enumerate() {
            if f.role != "image" || !f.name.to_ascii_lowercase().ends_with(".img") {
                continue;
            }
            let Some(side) = side(f.size) else {
                warn.push(format!(
                    "{}/{}: {} bytes is not a square image of 16-bit samples; no PNG",
                    study.dir, f.name, f.size
                ));
                continue;
            };
            let shape = Shape { width: side, height: side, depth: 16 };
            match Layout::new(shape) {
                Ok(layout) => out.push(Planned {
                    name: derived_name(f.name, None, "png"),
                    spec: Spec { kind: self.id(), inputs: vec![f.id], params: params(&shape) },
                    size: layout.size(),
                    beside: Some(i),
                }),
                Err(e) => warn.push(format!("{}/{}: {e}; no PNG", study.dir, f.name)),
            }
        }
        out
    }

    fn parts(&self, spec: &Spec) -> Result<Vec<u64>, String> {
        Ok(layout(spec)?.part_lens())
    }

    fn render(&self, spec: &Spec, part: usize, cx: &RenderCx<'_>) -> io::Result<Vec<u8>> {
        let layout = layout(spec).map_err(bad)?;
        layout.render(part, cx, |rows| self.rows(spec, rows, cx))
    }

    fn image(&self) -> Option<&dyn Image> {
        Some(self)
    }
}

impl Image for JsrtPng {
    fn shape(&self, spec: &Spec) -> Result<(u32, u32, u8), String> {
        let s = unparams::<Shape>(spec)?;
        Ok((s.width, s.height, s.depth))
    }

    fn rows(&self, spec: &Spec, rows: Range<u32>, cx: &RenderCx<'_>) -> io::Result<Vec<u8>> {
        let s = unparams::<Shape>(spec).map_err(bad)?;
        let stride = s.width as u64 * 2;
        let len = (rows.end - rows.start) as u64 * stride;
        if cx.input_size(0)? != stride * s.height as u64 {
            return Err(bad("the raw image's size changed"));
        }
        let mut out = Vec::new();
        cx.read(0, rows.start as u64 * stride, len as usize, &mut out)?;
        if out.len() as u64 != len {
            return Err(bad("raw image shorter than planned"));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_side_comes_from_the_size() {
        assert_eq!(super::side(8_388_608), Some(2048));
        assert_eq!(super::side(2 * 256 * 256), Some(256));
        assert_eq!(super::side(2 * 256 * 256 + 2), None);
        assert_eq!(super::side(0), None);
        assert_eq!(super::side(3), None);
    }
}
