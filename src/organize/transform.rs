//! The named transforms profiles can call (`transform = "..."`): the few formats no table or
//! pattern can describe. Each is documented in `mounts/README.md` under its name.

use serde_json::{Map, Value, json};

/// Views in the order DDSM abnormalities are listed (`mounts/README.md`, `ddsm_overlays`: LEFT_CC, LEFT_MLO, RIGHT_CC,
/// RIGHT_MLO).
const DDSM_VIEWS: [&str; 4] = ["LEFT_CC", "LEFT_MLO", "RIGHT_CC", "RIGHT_MLO"];

fn int_or_text(s: &str) -> Value {
    s.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::String(s.to_string()))
}

/// `ddsm_ics`: the fields of a DDSM `.ics` file.
///
/// The keys are always present (null when the line is missing) so that every DDSM
/// `metadata.json` has the same shape. Dates stay text: their day/month order is ambiguous.
pub fn ddsm_ics(text: &str) -> Value {
    let mut out = Map::new();
    for k in ["ics_filename", "date_of_study", "patient_age", "film_type", "density", "date_digitized", "digitizer"] {
        out.insert(k.into(), Value::Null);
    }
    let mut views = Map::new();
    for line in text.lines() {
        let line = line.trim();
        let (word, rest) = match line.split_once(char::is_whitespace) {
            Some((w, r)) => (w, r.trim()),
            None => (line, ""),
        };
        let set = |out: &mut Map<String, Value>, k: &str, v: Value| {
            if !rest.is_empty() {
                out.insert(k.into(), v);
            }
        };
        match word.to_ascii_uppercase().as_str() {
            "FILENAME" => set(&mut out, "ics_filename", json!(rest)),
            "DATE_OF_STUDY" => set(&mut out, "date_of_study", json!(rest)),
            "PATIENT_AGE" => set(&mut out, "patient_age", int_or_text(rest)),
            "FILM_TYPE" => set(&mut out, "film_type", json!(rest)),
            "DENSITY" => set(&mut out, "density", int_or_text(rest)),
            "DATE_DIGITIZED" => set(&mut out, "date_digitized", json!(rest)),
            "DIGITIZER" => set(&mut out, "digitizer", json!(rest)),
            v if DDSM_VIEWS.contains(&v) => {
                let mut view = Map::new();
                let toks: Vec<&str> = rest.split_whitespace().collect();
                let mut i = 0;
                while i < toks.len() {
                    match toks[i] {
                        "OVERLAY" => {
                            view.insert("overlay".into(), Value::Bool(true));
                            i += 1;
                        }
                        "NON_OVERLAY" => {
                            view.insert("overlay".into(), Value::Bool(false));
                            i += 1;
                        }
                        k if i + 1 < toks.len() => {
                            view.insert(k.to_ascii_lowercase(), int_or_text(toks[i + 1]));
                            i += 2;
                        }
                        _ => i += 1,
                    }
                }
                views.insert(v.to_string(), Value::Object(view));
            }
            _ => {}
        }
    }
    out.insert("views".into(), Value::Object(views));
    Value::Object(out)
}

/// The view of a DDSM overlay file name (`A_1509_1.RIGHT_CC.OVERLAY` → `RIGHT_CC`).
pub fn ddsm_view(file_name: &str) -> Option<&'static str> {
    let up = file_name.to_ascii_uppercase();
    DDSM_VIEWS.iter().copied().find(|v| up.contains(&format!(".{v}.")))
}

/// `ddsm_overlays`: the abnormalities of one `.OVERLAY` file, each tagged with `view`.
///
/// Grammar: `TOTAL_ABNORMALITIES n`, then per abnormality `ABNORMALITY n`, one or
/// more `LESION_TYPE <type> <KEY> <VALUE>...` lines, `ASSESSMENT`, `SUBTLETY`, `PATHOLOGY`,
/// `TOTAL_OUTLINES`, then the outlines (chain codes), which are skipped.
pub fn ddsm_overlay(view: &str, text: &str) -> Vec<Value> {
    let mut out: Vec<Map<String, Value>> = Vec::new();
    for line in text.lines() {
        let toks: Vec<&str> = line.split_whitespace().collect();
        let Some(first) = toks.first() else { continue };
        let arg = toks.get(1).copied();
        match first.to_ascii_uppercase().as_str() {
            "ABNORMALITY" => {
                let mut m = Map::new();
                m.insert("view".into(), json!(view));
                m.insert("abnormality".into(), arg.map(int_or_text).unwrap_or(Value::Null));
                m.insert("lesion_types".into(), Value::Array(Vec::new()));
                for k in ["assessment", "subtlety", "pathology", "total_outlines"] {
                    m.insert(k.into(), Value::Null);
                }
                out.push(m);
            }
            "LESION_TYPE" => {
                let Some(cur) = out.last_mut() else { continue };
                let mut lt = Map::new();
                lt.insert("lesion_type".into(), arg.map(|a| json!(a)).unwrap_or(Value::Null));
                let mut rest = toks[2.min(toks.len())..].iter();
                while let Some(k) = rest.next() {
                    let v = rest.next().map(|v| json!(v)).unwrap_or(Value::Null);
                    lt.insert(k.to_ascii_lowercase(), v);
                }
                if let Some(Value::Array(a)) = cur.get_mut("lesion_types") {
                    a.push(Value::Object(lt));
                }
            }
            k @ ("ASSESSMENT" | "SUBTLETY" | "TOTAL_OUTLINES") => {
                if let Some(cur) = out.last_mut() {
                    cur.insert(k.to_ascii_lowercase(), arg.map(int_or_text).unwrap_or(Value::Null));
                }
            }
            "PATHOLOGY" => {
                if let Some(cur) = out.last_mut() {
                    cur.insert("pathology".into(), arg.map(|a| json!(a)).unwrap_or(Value::Null));
                }
            }
            _ => {}
        }
    }
    out.into_iter().map(Value::Object).collect()
}

/// Orders abnormalities by view (fixed order) then number, as `mounts/README.md` documents for `ddsm_overlays`.
pub fn ddsm_sort(v: &mut [Value]) {
    let rank = |x: &Value| {
        let view = x.get("view").and_then(Value::as_str).unwrap_or("");
        let vi = DDSM_VIEWS.iter().position(|v| *v == view).unwrap_or(DDSM_VIEWS.len());
        let n = x.get("abnormality").and_then(Value::as_i64).unwrap_or(i64::MAX);
        (vi, n)
    };
    v.sort_by_key(rank);
}

/// How many bytes of a file the image-size readers want first.
pub const IMAGE_HEAD: usize = 64 * 1024;

/// Width and height from an image header (PNG, GIF, JPEG, TIFF), or `None` when the bytes are
/// not one of those or the size is not within `head`. `more` is called for TIFF files whose
/// first directory lies past the head (writers may put it at the end).
pub fn image_size(head: &[u8], more: &mut dyn FnMut() -> Option<Vec<u8>>) -> Option<(u64, u64)> {
    let be16 = |b: &[u8], o: usize| b.get(o..o + 2).map(|s| u16::from_be_bytes([s[0], s[1]]) as u64);
    let be32 = |b: &[u8], o: usize| b.get(o..o + 4).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as u64);
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some((be32(head, 16)?, be32(head, 20)?));
    }
    if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        let le = |o: usize| head.get(o..o + 2).map(|s| u16::from_le_bytes([s[0], s[1]]) as u64);
        return Some((le(6)?, le(8)?));
    }
    if head.starts_with(b"\xFF\xD8") {
        let mut i = 2;
        while i + 4 <= head.len() {
            if head[i] != 0xFF {
                i += 1;
                continue;
            }
            let marker = head[i + 1];
            if marker == 0xFF {
                i += 1;
                continue;
            }
            if marker == 0xD8 || (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
                i += 2;
                continue;
            }
            let len = be16(head, i + 2)? as usize;
            // SOF0..SOF15 except DHT (C4), JPG (C8), DAC (CC).
            if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
                return Some((be16(head, i + 7)?, be16(head, i + 5)?));
            }
            i += 2 + len;
        }
        return None;
    }
    if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        let full;
        let le = head[0] == b'I';
        let rd16 = |b: &[u8], o: usize| {
            b.get(o..o + 2)
                .map(|s| (if le { u16::from_le_bytes([s[0], s[1]]) } else { u16::from_be_bytes([s[0], s[1]]) }) as u64)
        };
        let rd32 = |b: &[u8], o: usize| {
            b.get(o..o + 4).map(|s| {
                let a = [s[0], s[1], s[2], s[3]];
                (if le { u32::from_le_bytes(a) } else { u32::from_be_bytes(a) }) as u64
            })
        };
        let ifd = rd32(head, 4)? as usize;
        let mut buf = head;
        if buf.len() < ifd + 2 || buf.len() < ifd + 2 + 12 * rd16(buf, ifd).unwrap_or(0) as usize {
            full = more()?;
            buf = &full;
        }
        let n = rd16(buf, ifd)? as usize;
        let (mut w, mut h) = (None, None);
        for e in 0..n {
            let o = ifd + 2 + 12 * e;
            let tag = rd16(buf, o)?;
            let ty = rd16(buf, o + 2)?;
            let val = if ty == 3 { rd16(buf, o + 8)? } else { rd32(buf, o + 8)? };
            match tag {
                256 => w = Some(val),
                257 => h = Some(val),
                _ => {}
            }
        }
        return Some((w?, h?));
    }
    None
}

/// Side of a headerless JSRT `.IMG` (square, 2 bytes per pixel) from its size.
pub fn jsrt_side(size: u64) -> Option<u64> {
    let px = size / 2;
    let side = (px as f64).sqrt().round() as u64;
    (size.is_multiple_of(2) && side * side == px && side > 0).then_some(side)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ics_sample_from_ddsm_md() {
        let ics = "ics_version 1.0\nfilename B-3024-1\nDATE_OF_STUDY 2 7 1995\nPATIENT_AGE 42\nFILM \nFILM_TYPE REGULAR\nDENSITY 4\nDATE_DIGITIZED 7 22 1997\nDIGITIZER LUMISYS LASER\nSELECTED\nLEFT_CC LINES 4696 PIXELS_PER_LINE 3024 BITS_PER_PIXEL 12 RESOLUTION 50 OVERLAY\nRIGHT_MLO LINES 4664 PIXELS_PER_LINE 3120 BITS_PER_PIXEL 12 RESOLUTION 50 NON_OVERLAY\n";
        let v = ddsm_ics(ics);
        assert_eq!(v["ics_filename"], "B-3024-1");
        assert_eq!(v["patient_age"], 42);
        assert_eq!(v["digitizer"], "LUMISYS LASER");
        assert_eq!(
            v["views"]["LEFT_CC"],
            json!({"lines": 4696, "pixels_per_line": 3024, "bits_per_pixel": 12, "resolution": 50, "overlay": true})
        );
        assert_eq!(v["views"]["RIGHT_MLO"]["overlay"], false);
    }

    #[test]
    fn overlay_sample_from_ddsm_md() {
        let ov = "TOTAL_ABNORMALITIES 1\nABNORMALITY 1\nLESION_TYPE MASS SHAPE IRREGULAR MARGINS SPICULATED\nASSESSMENT 4\nSUBTLETY 2\nPATHOLOGY MALIGNANT\nTOTAL_OUTLINES 1\nBOUNDARY\n1410 2130 1 1 2 2 3 7 #\n";
        let v = ddsm_overlay("RIGHT_CC", ov);
        assert_eq!(
            v,
            vec![json!({"view": "RIGHT_CC", "abnormality": 1,
                "lesion_types": [{"lesion_type": "MASS", "shape": "IRREGULAR", "margins": "SPICULATED"}],
                "assessment": 4, "subtlety": 2, "pathology": "MALIGNANT", "total_outlines": 1})]
        );
    }

    #[test]
    fn image_headers() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend(57u32.to_be_bytes());
        png.extend(58u32.to_be_bytes());
        assert_eq!(image_size(&png, &mut || None), Some((57, 58)));
        let gif = b"GIF89a\x39\x00\x3a\x00";
        assert_eq!(image_size(gif, &mut || None), Some((57, 58)));
        // JPEG: SOI, APP0 (len 4), SOF0.
        let jpg = [0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0, 0xFF, 0xC0, 0, 11, 8, 0, 58, 0, 57, 3];
        assert_eq!(image_size(&jpg, &mut || None), Some((57, 58)));
        // Little-endian TIFF with its IFD at offset 8: width 57 (SHORT), height 58 (LONG).
        let mut tif = b"II*\0\x08\0\0\0".to_vec();
        tif.extend(2u16.to_le_bytes());
        tif.extend([0, 1, 3, 0, 1, 0, 0, 0, 57, 0, 0, 0]);
        tif.extend([1, 1, 4, 0, 1, 0, 0, 0, 58, 0, 0, 0]);
        assert_eq!(image_size(&tif, &mut || None), Some((57, 58)));
        assert_eq!(jsrt_side(2048 * 2048 * 2), Some(2048));
        assert_eq!(jsrt_side(256 * 256 * 2), Some(256));
        assert_eq!(jsrt_side(1001), None);
    }

    /// What the old hand tokenizer got wrong: a `>` inside an attribute value ended its tag (the
    /// rest of the attribute became text), character references stayed undecoded, and prefixed
    /// and default namespaces must both match by local name.
    #[test]
    fn lidc_xml_reads_attributes_namespaces_and_entities() {
        let doc = "\u{FEFF}<?xml version=\"1.0\" encoding=\"UTF-8\"?>
<!-- exported by a viewer > 3.0 -->
<LidcReadMessage uid=\"1.3.6.1.4.1.14519.5.2.1.6279.6001.1308168927827.0\" note=\"a > b &amp; c\"
    xmlns=\"http://www.nih.gov\" xmlns:nih=\"http://www.nih.gov\">
  <ResponseHeader kind='x'><SeriesInstanceUid>1.2.840.<![CDATA[113619]]>.2</SeriesInstanceUid></ResponseHeader>
  <nih:readingSession>
    <unblindedReadNodule id=\"1\">
      <noduleID>Nodule &#233;&#x00e9; &amp; &lt;1&gt;</noduleID>
      <characteristics><malignancy> &#52; </malignancy></characteristics>
      <roi inclusion=\"TRUE\"/><roi/>
    </unblindedReadNodule>
    <nonNodule><nonNoduleID>N&apos;1&quot;</nonNoduleID></nonNodule>
  </nih:readingSession>
  <readingSession/>
</LidcReadMessage>
";
        let x = lidc_xml(doc).unwrap();
        assert_eq!(
            x,
            LidcXml {
                lidc: true,
                series: Some("1.2.840.113619.2".into()),
                sessions: 2,
                nodules: vec![(1, Some("Nodule \u{e9}\u{e9} & <1>".into()), Some(4), 2)],
                non_nodules: vec![(1, Some("N'1\"".into()))],
            }
        );
        // The root names the kind; an IDRI (chest X-ray) message is read but not LIDC.
        assert!(!lidc_xml("<IdriReadMessage xmlns=\"http://www.nih.gov/idri\"/>").unwrap().lidc);
    }

    /// Hostile documents end quickly with an error (or a bounded result), never a hang or an
    /// allocation out of proportion to the input.
    #[test]
    fn lidc_xml_refuses_hostile_documents() {
        // Billion laughs: roxmltree refuses any DTD (so no entity is ever expanded).
        let mut laughs = String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n");
        for i in 1..10 {
            let prev = if i == 1 { "lol".to_string() } else { format!("lol{}", i - 1) };
            laughs.push_str(&format!("<!ENTITY lol{i} \"{}\">\n", format!("&{prev};").repeat(10)));
        }
        laughs.push_str("]>\n<LidcReadMessage><readingSession>&lol9;</readingSession></LidcReadMessage>");
        assert!(matches!(lidc_xml(&laughs), Err(roxmltree::Error::DtdDetected)));
        // An unknown entity (what the DTD would have declared) is an error too.
        assert!(lidc_xml("<LidcReadMessage>&lol9;</LidcReadMessage>").is_err());
        // Deeply nested: a million open elements, never closed, then closed.
        let deep = format!("{}{}", "<a>".repeat(1_000_000), "</a>".repeat(1_000_000));
        let x = lidc_xml(&deep).unwrap();
        assert!(!x.lidc && x.sessions == 0);
        assert!(lidc_xml(&"<a>".repeat(1_000_000)).is_err());
        // More nodes than the cap: refused before the DOM grows past it (a small cap here, so
        // that the test stays fast; the real one is the same code with LIDC_MAX_NODES).
        let wide = format!("<LidcReadMessage>{}</LidcReadMessage>", "<readingSession/>".repeat(1000));
        assert_eq!(lidc_xml_within(&wide, 1002).unwrap().sessions, 1000);
        assert!(matches!(lidc_xml_within(&wide, 1001), Err(roxmltree::Error::NodesLimitReached)));
        // Not XML, truncated, mismatched tags.
        for bad in ["", "not xml", "<LidcReadMessage><readingSession>", "<LidcReadMessage></readingSession>"] {
            assert!(lidc_xml(bad).is_err(), "{bad:?}");
        }
    }
}

/// Bytes read from a volume file to find its header (a `.nii.gz` needs its gzip stream's start).
pub const VOLUME_HEAD: usize = 16 * 1024;

/// The geometry of a NIfTI-1, NIfTI-2 or Analyze 7.5 header.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeHeader {
    /// `dim[1..=dim[0]]`.
    pub shape: Vec<i64>,
    /// `pixdim[1..=dim[0]]`, rounded to the precision of the stored type.
    pub voxel_size: Vec<f64>,
}

/// The `N` bytes of a header field at `o`, in little-endian order whatever the header's (`big`),
/// for `from_le_bytes`. The caller has checked that the header is long enough.
fn field_le<const N: usize>(h: &[u8], o: usize, big: bool) -> [u8; N] {
    let mut b = [0u8; N];
    b.copy_from_slice(&h[o..o + N]);
    if big {
        b.reverse();
    }
    b
}

/// `volume_shape` / `voxel_size`: parses the header at the start of `head` (gzip-compressed or
/// not). NIfTI-1 and Analyze 7.5 share the 348-byte layout (`dim` int16[8] at 40, `pixdim`
/// float32[8] at 76); NIfTI-2 has 540 bytes (`dim` int64[8] at 16, `pixdim` float64[8] at 104).
/// The byte order is the one in which `sizeof_hdr` reads 348 or 540.
pub fn volume_header(head: &[u8]) -> Option<VolumeHeader> {
    let raw;
    let h: &[u8] = if head.starts_with(&[0x1f, 0x8b]) {
        use std::io::Read;
        let mut d = flate2::read::GzDecoder::new(head);
        let mut out = Vec::with_capacity(540);
        let mut buf = [0u8; 540];
        while out.len() < 540 {
            match d.read(&mut buf[..540 - out.len()]) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        raw = out;
        &raw
    } else {
        head
    };
    if h.len() < 348 {
        return None;
    }
    let le = u32::from_le_bytes(h[0..4].try_into().ok()?);
    let be = u32::from_be_bytes(h[0..4].try_into().ok()?);
    let (v2, big) = match (le, be) {
        (348, _) => (false, false),
        (_, 348) => (false, true),
        (540, _) => (true, false),
        (_, 540) => (true, true),
        _ => return None,
    };
    let (dims, pix): (Vec<i64>, Vec<f64>) = if v2 {
        if h.len() < 540 {
            return None;
        }
        (
            (0..8).map(|i| i64::from_le_bytes(field_le(h, 16 + 8 * i, big))).collect(),
            (0..8).map(|i| f64::from_le_bytes(field_le(h, 104 + 8 * i, big))).collect(),
        )
    } else {
        (
            (0..8).map(|i| i16::from_le_bytes(field_le(h, 40 + 2 * i, big)) as i64).collect(),
            // Shortest decimal form of the float32, so 1.2 stays 1.2 and not 1.2000000476837158.
            (0..8)
                .map(|i| {
                    f32::from_le_bytes(field_le(h, 76 + 4 * i, big)).to_string().parse::<f64>().unwrap_or(f64::NAN)
                })
                .collect(),
        )
    };
    let n = dims[0];
    if !(1..=7).contains(&n) {
        return None;
    }
    let n = n as usize;
    Some(VolumeHeader {
        shape: dims[1..=n].to_vec(),
        voxel_size: pix[1..=n].iter().map(|p| if p.is_finite() { *p } else { 0.0 }).collect(),
    })
}

/// What one LIDC XML file says, for `lidc_reading_sessions`, `lidc_nodules`, `lidc_non_nodules`.
#[derive(Debug, Default, PartialEq)]
pub struct LidcXml {
    /// The root is `LidcReadMessage` (only those contribute; `IdriReadMessage` does not).
    pub lidc: bool,
    /// `ResponseHeader/SeriesInstanceUid`.
    pub series: Option<String>,
    /// `readingSession` elements.
    pub sessions: usize,
    /// `{reader, nodule_id, malignancy, rois}` in document order (`series` added by the caller).
    pub nodules: Vec<(usize, Option<String>, Option<i64>, usize)>,
    /// `{reader, non_nodule_id}` in document order.
    pub non_nodules: Vec<(usize, Option<String>)>,
}

/// Most nodes (elements, texts, comments) an LIDC file may have. Real files have one node per
/// 10 to 15 bytes (an indented `edgeMap` point is 8 nodes in about 90 bytes), so this admits
/// files of 20 MB and more; it bounds what a hostile file can make the DOM allocate (measured:
/// 53 bytes a node, so about 110 MiB at most).
const LIDC_MAX_NODES: u32 = 1 << 21;

/// Parses an LIDC reading-session file (`LidcReadMessage`, namespace `http://www.nih.gov`).
///
/// A real XML parser (roxmltree), so attributes, namespaces, CDATA and character references are
/// read as XML says; elements are matched by local name, whatever their namespace. A document
/// that is not well-formed XML, has a DTD (roxmltree refuses them by default: no entity
/// expansion, no billion laughs) or more than [`LIDC_MAX_NODES`] nodes is an error.
pub fn lidc_xml(doc: &str) -> Result<LidcXml, roxmltree::Error> {
    lidc_xml_within(doc, LIDC_MAX_NODES)
}

fn lidc_xml_within(doc: &str, nodes_limit: u32) -> Result<LidcXml, roxmltree::Error> {
    let opts = roxmltree::ParsingOptions { allow_dtd: false, nodes_limit, ..Default::default() };
    let tree = roxmltree::Document::parse_with_options(doc, opts)?;
    use roxmltree::Node;
    // The trimmed text of `n` (all its direct text and CDATA), when not empty.
    fn text(n: Node) -> Option<String> {
        let t: String = n.children().filter_map(|c| if c.is_text() { c.text() } else { None }).collect();
        let t = t.trim();
        (!t.is_empty()).then(|| t.to_string())
    }
    fn children<'a, 'i>(n: Node<'a, 'i>, tag: &'static str) -> impl Iterator<Item = Node<'a, 'i>> {
        n.children().filter(move |c| c.is_element() && c.tag_name().name() == tag)
    }
    let mut out = LidcXml { lidc: tree.root_element().tag_name().name() == "LidcReadMessage", ..Default::default() };
    for n in tree.descendants().filter(Node::is_element) {
        let parent = n.parent_element().map_or("", |p| p.tag_name().name());
        match (n.tag_name().name(), parent) {
            ("readingSession", _) => out.sessions += 1,
            ("unblindedReadNodule", "readingSession") => {
                let id = children(n, "noduleID").filter_map(text).last();
                let malignancy = children(n, "characteristics")
                    .flat_map(|c| children(c, "malignancy"))
                    .filter_map(text)
                    .last()
                    .and_then(|t| t.parse().ok());
                out.nodules.push((out.sessions, id, malignancy, children(n, "roi").count()));
            }
            ("nonNodule", "readingSession") => {
                let id = children(n, "nonNoduleID").filter_map(text).last();
                out.non_nodules.push((out.sessions, id));
            }
            ("SeriesInstanceUid", "ResponseHeader") => {
                if let Some(t) = text(n) {
                    out.series = Some(t);
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// `cbis_csv_role`: which case-description path (`(role, path)` pairs, e.g. `("roi",
/// "Mass-Training_P_00001_LEFT_CC_1/<study uid>/<series uid>/000001.dcm")`) names the DICOM file
/// `base` of series `series`. A path names it when its series folder is the SeriesInstanceUID and
/// its file is the same basename or the old NBIA number of the new one (`00000N.dcm` ↔
/// `1-(N+1).dcm`); when the series has a single CSV path, the series alone decides.
pub fn cbis_csv_role(series: &str, base: &str, paths: &[(&'static str, &str)]) -> Option<&'static str> {
    let number = |name: &str| -> Option<u64> {
        let stem = name.strip_suffix(".dcm").unwrap_or(name);
        match stem.strip_prefix("1-") {
            Some(n) => n.parse::<u64>().ok().filter(|n| *n > 0).map(|n| n - 1),
            None => stem.parse::<u64>().ok(),
        }
    };
    let in_series: Vec<(&'static str, &str)> = paths
        .iter()
        .filter_map(|(role, p)| {
            let mut parts = p.rsplit('/');
            let file = parts.next()?;
            (parts.next()? == series).then_some((*role, file))
        })
        .collect();
    if let Some((role, _)) =
        in_series.iter().find(|(_, f)| *f == base || (number(f).is_some() && number(f) == number(base)))
    {
        return Some(role);
    }
    let mut roles: Vec<&str> = in_series.iter().map(|(r, _)| *r).collect();
    roles.dedup();
    match roles.as_slice() {
        [one] => Some(one),
        _ => None,
    }
}
