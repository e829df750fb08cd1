//! Kind `preview`: a small 8-bit grayscale `preview.png` per study, for file managers and quick
//! looks, made from the first image another kind of the study's profile plans (listed before
//! `preview` in the profile's `derive`): the study's first 2D image, downscaled.
//!
//! The image is shrunk by an integer factor so that its longer side is at most [`MAX_SIDE`]
//! pixels (each preview pixel is the mean of a factor x factor box), then stretched linearly from
//! its darkest to its brightest mean to 0-255. A source kind only has to implement
//! [`Image`](super::Image) (rows of samples and a shape); a volume kind (NIfTI) that implements
//! it with the volume's middle slice as its image gets previews of its series the same way.
//! Its inputs are the source's, so a decoded source (an LJPEG) is decoded once for both.

use std::io;

use super::png::{Layout, Shape};
use super::{Kind, KindId, Planned, RenderCx, Spec, Study, bad, by_id, unparams};
use crate::organize::ContentSource;

/// Longest side of a preview.
pub const MAX_SIDE: u32 = 256;

/// The file name.
pub const NAME: &str = "preview.png";

/// The kind.
pub struct Preview;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Params {
    /// The image it is made from.
    source: Spec,
    /// Its width, height, bits.
    from: (u32, u32, u8),
    /// Shrink factor.
    factor: u32,
    /// The preview.
    shape: Shape,
}

fn layout(spec: &Spec) -> Result<(Layout, Params), String> {
    let p: Params = unparams(spec)?;
    Ok((Layout::new(p.shape)?, p))
}

impl Kind for Preview {
    fn id(&self) -> KindId {
        4
    }

    fn name(&self) -> &'static str {
        "preview"
    }

    fn csv_role(&self) -> crate::profile::CsvRole {
        crate::profile::CsvRole::Neither
    }

    fn plan(&self, study: &Study<'_>, _: &dyn ContentSource, warn: &mut Vec<String>) -> Vec<Planned> {
        for p in study.planned {
            let Some(image) = by_id(p.spec.kind).and_then(|k| k.image()) else { continue };
            let (w, h, depth) = match image.shape(&p.spec) {
                Ok(s) => s,
                Err(e) => {
                    warn.push(format!("{}/{}: {e}; no preview", study.dir, p.name));
                    continue;
                }
            };
            let factor = w.max(h).div_ceil(MAX_SIDE).max(1);
            let shape = Shape { width: w.div_ceil(factor), height: h.div_ceil(factor), depth: 8 };
            let Ok(layout) = Layout::new(shape) else { continue };
            let params = Params { source: p.spec.clone(), from: (w, h, depth), factor, shape };
            return vec![Planned {
                name: NAME.into(),
                spec: Spec { kind: self.id(), inputs: p.spec.inputs.clone(), params: super::params(&params) },
                size: layout.size(),
                beside: None,
            }];
        }
        Vec::new()
    }

    fn parts(&self, spec: &Spec) -> Result<Vec<u64>, String> {
        Ok(layout(spec)?.0.part_lens())
    }

    fn render(&self, spec: &Spec, part: usize, cx: &RenderCx<'_>) -> io::Result<Vec<u8>> {
        let (layout, p) = layout(spec).map_err(bad)?;
        layout.render(part, cx, |rows| {
            let all = shrink(&p, cx)?;
            let w = p.shape.width as usize;
            Ok(all[rows.start as usize * w..rows.end as usize * w].to_vec())
        })
    }
}

/// The whole preview: box means, stretched to 0-255.
fn shrink(p: &Params, cx: &RenderCx<'_>) -> io::Result<Vec<u8>> {
    let image = by_id(p.source.kind).and_then(|k| k.image()).ok_or_else(|| bad("preview of an unknown image kind"))?;
    let (w, h, depth) = p.from;
    let (ow, oh, f) = (p.shape.width as usize, p.shape.height as usize, p.factor);
    let mut means = vec![0f64; ow * oh];
    let bytes = depth as usize / 8;
    for oy in 0..oh as u32 {
        let rows = oy * f..((oy + 1) * f).min(h);
        let samples = image.rows(&p.source, rows.clone(), cx)?;
        if samples.len() != (rows.end - rows.start) as usize * w as usize * bytes {
            return Err(bad("source rows shorter than planned"));
        }
        let (mut sums, mut counts) = (vec![0u64; ow], vec![0u64; ow]);
        for row in samples.chunks_exact(w as usize * bytes) {
            for x in 0..w as usize {
                let v =
                    if bytes == 2 { u16::from_be_bytes([row[2 * x], row[2 * x + 1]]) as u64 } else { row[x] as u64 };
                sums[x / f as usize] += v;
                counts[x / f as usize] += 1;
            }
        }
        for x in 0..ow {
            means[oy as usize * ow + x] = sums[x] as f64 / counts[x].max(1) as f64;
        }
    }
    let (lo, hi) = means.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &m| (lo.min(m), hi.max(m)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    Ok(means.iter().map(|m| ((m - lo) / span * 255.0).round() as u8).collect())
}
