//! Conformance of medfs on the shared corpus's zips, in process: every archive is mounted by the
//! real core (`corpus/mod.rs`: `Pool::from_sources`, the tree builder, `MedFs`), walked and read
//! through the core's calls, and judged by the rules of the corpus README / `check.py`: types,
//! sizes, symlink targets, SHA-256 of the content, read errors where `expect_read_error` says
//! so; `optional`, `any_type`, `alternatives`, `also_acceptable`, `tolerated_members` and
//! `lenient_members` as documented there. Stored members must also read the same through their
//! data offset as through the decoder.

mod corpus;

use std::io::Read;
use std::sync::Arc;

use medfs::archive::{ByteSource, DataLoc, FileSource, zip};

/// Archives allowed to fail, each with the reason. Keep empty unless a deviation is deliberate.
const KNOWN_DEVIATIONS: &[(&str, &str)] = &[];

#[test]
fn zip_conformance() {
    corpus::run_corpus("zip", KNOWN_DEVIATIONS);
}

#[test]
fn zip_outside_symlinks_hidden_by_default() {
    assert!(corpus::check_outside_symlinks_hidden("zip") > 0, "the corpus has zip links that leave the archive");
}

/// Stored members can be served by positioned reads at their data offset as well as through
/// `open_member`: both paths must give the same bytes wherever the member reads at all.
#[test]
fn zip_stored_data_offset_agrees_with_open_member() {
    let mut checked = 0;
    for entry in corpus::corpus("zip") {
        let src: Arc<dyn ByteSource> = Arc::new(FileSource::open(&corpus::archive_path(&entry)).expect("open"));
        let Ok(listing) = zip::list(&*src) else { continue };
        for m in &listing.members {
            let DataLoc::Zip(zd) = &m.data else { continue };
            if zd.method != 0 {
                continue;
            }
            let mut v = Vec::new();
            let Ok(()) = zip::open_member(src.clone(), zd, m.size).and_then(|mut r| r.read_to_end(&mut v).map(drop))
            else {
                continue;
            };
            let off = zip::stored_data_offset(&*src, zd).expect("a member that reads has a data offset");
            let mut raw = vec![0u8; v.len()];
            src.read_exact_at(off, &mut raw).expect("read at the data offset");
            assert_eq!(raw, v, "{}: stored_data_offset disagrees with open_member", entry["file"]);
            checked += 1;
        }
    }
    assert!(checked > 10, "only {checked} stored members checked");
}
