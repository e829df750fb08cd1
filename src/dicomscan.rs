//! Finding the DICOM members of the pool: read each candidate's header (never its pixel data),
//! in parallel, and remember the result beside the archive's index so a remount reads none.

use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;

use crate::archive::{DataLoc, MemberKind};
use crate::dicom::{self, DicomError, DicomInfo};
use crate::index::{Identity, IndexStore};
use crate::persist::Kind;
use crate::pool::Archive;
use crate::reader::Reader;

/// DICOM headers of one archive's members, by member index (shared with the organizer).
pub type Headers = HashMap<u32, Arc<DicomInfo>>;

/// Members worth sniffing: DICOM files carry `.dcm`/`.dicom`/`.ima` or no extension at all (old
/// scanner exports, DICOMDIR trees); images, volumes and tables are skipped unread.
fn candidate(path: &[u8]) -> bool {
    let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    let Some(dot) = name.iter().rposition(|&b| b == b'.') else { return !name.is_empty() };
    let ext = name[dot + 1..].to_ascii_lowercase();
    matches!(ext.as_slice(), b"dcm" | b"dicom" | b"ima" | b"dic" | b"xml")
        || (!ext.is_empty() && ext.iter().all(|b| b.is_ascii_digit()))
}

/// The series a DICOM annotation XML is about (`<SeriesInstanceUid>` of an LIDC
/// `ResponseHeader`), as a header that names only that series: the XML-only downloads keep their
/// XMLs apart from the images, and only this tag joins them.
fn xml_series(head: &[u8]) -> Option<DicomInfo> {
    let text = std::str::from_utf8(&head[..head.len().min(16 << 10)]).ok()?;
    let open = "<SeriesInstanceUid>";
    let start = text.find(open)? + open.len();
    let uid = text[start..].split('<').next()?.trim();
    let valid = !uid.is_empty() && uid.len() <= 64 && uid.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    valid.then(|| DicomInfo::series_reference(uid.to_string()))
}

/// First read of a header: most CT and MR headers end within a few KiB, and a compressed
/// member's head is inflated from its start at every try, so start small and let the parser ask
/// for more (it doubles). The first mount of a zip of 1,200 deflated 0.5 MB CT files took 1.03 s
/// with 16 KiB against 1.79 s with 64 KiB (`bench/decode.py`, medians of 3).
const FIRST_HEAD: usize = 4 << 10;

/// Members whose heads the kernel is asked to read ahead of the scan at once.
const HINT_BATCH: usize = 256;

/// Reads one member's header: the first 16 KiB, more only if the header goes on (never the
/// pixel data's bytes past that, and nothing of the member is left in the cache).
fn header(reader: &Reader, archive: u32, member: u32, size: u64) -> Option<DicomInfo> {
    if reader.pool().archives[archive as usize].members[member as usize].path.to_ascii_lowercase().ends_with(b".xml") {
        let mut head = Vec::new();
        reader.read_head(archive, member, (16 << 10).min(size as usize), &mut head).ok()?;
        return xml_series(&head);
    }
    let mut want = (FIRST_HEAD as u64).min(size) as usize;
    let mut head = Vec::new();
    loop {
        reader.read_head(archive, member, want, &mut head).ok()?;
        match dicom::parse_header_sized(&head, size) {
            Ok(info) => return Some(info),
            Err(DicomError::NeedMore(n)) if n > head.len() && n <= 64 << 20 => want = n,
            Err(_) => return None,
        }
    }
}

/// The DICOM headers of every archive of the pool, loaded from their side files or read now
/// (in parallel; saved for the next mount).
pub fn scan(reader: &Reader, store: &IndexStore) -> Vec<Headers> {
    let archives = &reader.pool().archives;
    let mut out: Vec<Option<Headers>> = archives.iter().map(|a| load(a, store)).collect();
    for (ai, a) in archives.iter().enumerate() {
        if out[ai].is_some() {
            continue;
        }
        let todo: Vec<u32> = a
            .members
            .iter()
            .enumerate()
            .filter(|(_, m)| m.kind == MemberKind::File && m.size >= 132 && !matches!(m.data, DataLoc::Bad { .. }))
            .filter(|(_, m)| candidate(&m.path))
            .map(|(i, _)| i as u32)
            .collect();
        let scan_started = std::time::Instant::now();
        // Heads are scattered over the archive: read from a cold disk one by one (two threads,
        // one request each) they cost 0.55 s for 1,200 members of a 408 MB zip against 0.07 s
        // warm. So the kernel is told a batch ahead which heads come next, and reads them while
        // the batch before is parsed (kept to a batch, so hints never push unread heads out).
        let mut found = Headers::new();
        let batches: Vec<&[u32]> = todo.chunks(HINT_BATCH).collect();
        for (i, batch) in batches.iter().enumerate() {
            if i == 0 {
                reader.will_read_heads(ai as u32, batch, FIRST_HEAD);
            }
            if let Some(next) = batches.get(i + 1) {
                reader.will_read_heads(ai as u32, next, FIRST_HEAD);
            }
            found.par_extend(
                batch
                    .par_iter()
                    .filter_map(|&m| Some((m, Arc::new(header(reader, ai as u32, m, a.members[m as usize].size)?)))),
            );
        }
        tracing::info!(
            "{}: {} DICOM headers found among {} candidates in {:.3} s",
            a.display,
            found.len(),
            todo.len(),
            scan_started.elapsed().as_secs_f64()
        );
        save(a, store, &found);
        out[ai] = Some(found);
    }
    out.into_iter().map(Option::unwrap_or_default).collect()
}

fn identity(a: &Archive) -> Option<Identity> {
    // Loose files have no archive file: they are cheap to sniff again, and have no single identity.
    a.file.as_ref()?.identity.clone()
}

/// The side file `<index>.idx.dicom`: the headers found, as (member, header) pairs in member
/// order.
const SIDE: Kind = Kind { name: "dicom", magic: *b"MEDFSDCM", version: dicom::FORMAT_VERSION };

fn load(a: &Archive, store: &IndexStore) -> Option<Headers> {
    let Stored(headers) = store.load_side(&identity(a)?, &SIDE)?;
    headers.keys().all(|&m| (m as usize) < a.members.len()).then_some(headers)
}

/// The side file's payload read straight into [`Headers`]: a list of (member, header) pairs
/// (what [`save`] writes), each header put in its `Arc` as it is decoded. Through a `Vec` first,
/// loading 10,000 CT headers took ~20% longer (7 MB of records moved twice).
struct Stored(Headers);

impl<'de> serde::Deserialize<'de> for Stored {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Stored, D::Error> {
        struct Pairs;
        impl<'de> serde::de::Visitor<'de> for Pairs {
            type Value = Stored;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of (member, DICOM header) pairs")
            }
            fn visit_seq<S: serde::de::SeqAccess<'de>>(self, mut seq: S) -> Result<Stored, S::Error> {
                // A length claimed by the file only sizes a bounded first allocation.
                let mut headers = Headers::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
                while let Some((member, info)) = seq.next_element::<(u32, DicomInfo)>()? {
                    headers.insert(member, Arc::new(info));
                }
                Ok(Stored(headers))
            }
        }
        d.deserialize_seq(Pairs)
    }
}

fn save(a: &Archive, store: &IndexStore, headers: &Headers) {
    let Some(id) = identity(a) else { return };
    let mut records: Vec<(u32, &DicomInfo)> = headers.iter().map(|(&m, info)| (m, &**info)).collect();
    records.sort_unstable_by_key(|&(m, _)| m);
    if let Err(e) = store.save_side(&id, &SIDE, &records) {
        tracing::warn!("{}: DICOM headers not saved ({e}); the next mount reads them again", a.display);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_annotation_xml_names_its_series() {
        let xml = b"<?xml version=\"1.0\"?><LidcReadMessage><ResponseHeader><SeriesInstanceUid>1.3.6.1.4.1.14519.5.2.1.6279.6001.179049373636438705059720603192</SeriesInstanceUid></ResponseHeader>";
        let info = xml_series(xml).unwrap();
        assert_eq!(
            info.series_uid.as_deref(),
            Some("1.3.6.1.4.1.14519.5.2.1.6279.6001.179049373636438705059720603192")
        );
        assert!(info.is_series_reference());
        assert!(xml_series(b"<SeriesInstanceUid>../../etc</SeriesInstanceUid>").is_none());
        assert!(xml_series(b"<root/>").is_none());
    }

    #[test]
    fn only_plausible_dicom_names_are_sniffed() {
        for yes in [
            &b"LIDC/1-001.dcm"[..],
            b"a/IM0001",
            b"x/1.2.840.113619.2.55.3.604688119.969.1268071029.320",
            b"s/I10.DCM",
            b"CT.001",
        ] {
            assert!(candidate(yes), "{}", String::from_utf8_lossy(yes));
        }
        for no in [&b"img.png"[..], b"vol.nii.gz", b"labels.csv", b"a/"] {
            assert!(!candidate(no), "{}", String::from_utf8_lossy(no));
        }
    }
}
