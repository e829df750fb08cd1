//! Conformance of medfs on the shared corpus's plain tars, in process: every archive is mounted
//! by the real core (`corpus/mod.rs`: `Pool::from_sources`, the tree builder, `MedFs`), walked
//! and read through the core's calls, and judged as `check.py` judges a mount. The tar lister
//! must also list the same when its input arrives in short reads (as from a decompressor), and
//! content detection must recognise every tar that lists.

mod corpus;

use std::io::{self, Read};
use std::sync::mpsc;
use std::time::Duration;

use corpus::{KNOWN_DEVIATIONS, archive_path};
use medfs::archive::{Listing, tar as tar_format};
use serde_json::Value;

/// A lister that takes longer than this is treated as hung.
const LIST_TIMEOUT: Duration = Duration::from_secs(60);

/// A reader that returns at most a few bytes per call, to prove the lister copes with short
/// reads (decompressors return whatever they have).
struct Dribble<R>(R, usize);

impl<R: Read> Read for Dribble<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.1 = self.1 % 13 + 1;
        let n = buf.len().min(self.1 * 97);
        self.0.read(&mut buf[..n])
    }
}

/// Lists `entry`'s archive on a worker thread so a hang is reported instead of hanging the test.
fn list_with_timeout(entry: &Value, dribble: bool) -> Result<Result<Listing, String>, String> {
    let path = archive_path(entry);
    let name = entry["file"].as_str().expect("file").to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("open archive");
        let r = if dribble {
            tar_format::list(&mut Dribble(io::BufReader::with_capacity(64, file), 0), &name)
        } else {
            tar_format::list(&mut { file }, &name)
        };
        let _ = tx.send(r.map_err(|e| e.to_string()));
    });
    rx.recv_timeout(LIST_TIMEOUT).map_err(|_| format!("lister did not finish in {LIST_TIMEOUT:?} (hang?)"))
}

fn summary(l: &Result<Listing, String>) -> String {
    match l {
        Err(e) => format!("Err({e})"),
        Ok(l) => format!("{:?} {:?} {}", l.members, l.warnings, l.damaged),
    }
}

// ----------------------------------------------------------------------------------------------
// Assertions

#[test]
fn tar_conformance() {
    assert!(corpus::corpus("tar").len() > 50, "corpus not found at {}", corpus::CORPUS);
    corpus::run_corpus("tar", KNOWN_DEVIATIONS);
}

#[test]
fn tar_listing_is_the_same_in_short_reads() {
    let mut failed = Vec::new();
    for entry in corpus::corpus("tar") {
        let file = entry["file"].as_str().expect("file");
        match (list_with_timeout(&entry, false), list_with_timeout(&entry, true)) {
            (Ok(listed), Ok(dribbled)) if summary(&listed) != summary(&dribbled) => {
                failed.push(format!("{file}: listing differs when the input arrives in short reads"))
            }
            (Ok(_), Ok(_)) => {}
            (Err(e), _) | (_, Err(e)) => failed.push(format!("{file}: {e}")),
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn tar_outside_symlinks_hidden_by_default() {
    assert!(corpus::check_outside_symlinks_hidden("tar") > 0, "the corpus has tar links that leave the archive");
}

#[test]
fn detection_accepts_every_listable_corpus_tar() {
    // Every archive that lists with members must also be recognised by content.
    for entry in corpus::corpus("tar") {
        let bytes = std::fs::read(archive_path(&entry)).expect("read archive");
        let listed = tar_format::list(&mut &bytes[..], "x");
        if let Ok(l) = listed
            && !l.members.is_empty()
        {
            assert!(tar_format::looks_like_tar(&bytes), "{} lists but is not detected", entry["file"]);
        }
    }
}
