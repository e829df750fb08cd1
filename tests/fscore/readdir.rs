//! readdir cookies: `.` and `..` first, every entry exactly once whatever the reply buffer
//! size, and a listing resumed at any cookie continues exactly where it left off.

use std::collections::BTreeSet;

use medfs::fs::{DirEntry, FileKind, Ino, MedFs, ROOT_INO};

use super::*;

/// One entry as the kernel keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    name: Vec<u8>,
    ino: Ino,
    kind: FileKind,
    cookie: u64,
}

fn seen(e: &DirEntry<'_>) -> Seen {
    Seen { name: e.name.to_vec(), ino: e.attr.ino, kind: e.attr.kind, cookie: e.next_offset }
}

/// Lists `dir` as the kernel does with a reply buffer of `room` entries: `add` refuses (and
/// does not keep) the entry that does not fit, and the next call starts at the cookie of the
/// last entry kept. Stops at the first empty reply.
fn list_in_buffers(fs: &MedFs, dir: Ino, room: usize) -> (Vec<Seen>, usize) {
    let mut all = Vec::new();
    let mut offset = 0;
    let mut calls = 0;
    loop {
        let mut reply = Vec::new();
        fs.readdir(dir, offset, |e| {
            if reply.len() == room {
                return true;
            }
            reply.push(seen(&e));
            false
        })
        .unwrap();
        calls += 1;
        assert!(calls < 100_000, "readdir never ends");
        let Some(last) = reply.last() else { break };
        offset = last.cookie;
        all.extend(reply);
    }
    (all, calls)
}

fn tree_with_a_big_folder() -> MedFs {
    let mut entries: Vec<Entry> = (0..517)
        .map(|i| entry(&format!("big/{:04}_{}.dcm", (i * 389) % 1000, "x".repeat(i % 40)), vec![i as u8]))
        .collect();
    entries.push(entry("big/sub/inner.txt", b"inner".to_vec()));
    entries.push(entry("big/empty/", vec![]));
    let zip = Faulty::new("a.zip", zip_bytes(&entries, ZipMethod::Stored));
    core(&[("a.zip", zip.source())])
}

#[test]
fn every_entry_comes_exactly_once_whatever_the_reply_buffer_size() {
    let fs = tree_with_a_big_folder();
    let big = ino(&fs, "_archives/a.zip/big");
    let parent = ino(&fs, "_archives/a.zip");
    let (reference, _) = list_in_buffers(&fs, big, usize::MAX);
    assert_eq!(reference.len(), 517 + 2 + 2, "517 files, sub/, empty/, . and ..");
    assert_eq!((reference[0].name.as_slice(), reference[0].ino), (&b"."[..], big));
    assert_eq!((reference[1].name.as_slice(), reference[1].ino), (&b".."[..], parent));
    assert!(reference[..2].iter().all(|e| e.kind == FileKind::Dir));
    let names: Vec<&[u8]> = reference[2..].iter().map(|e| e.name.as_slice()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(names, sorted, "children sorted by name bytes, none twice");
    assert!(reference.windows(2).all(|w| w[0].cookie < w[1].cookie), "cookies increase");
    // What readdir says about each entry is what lookup says.
    for e in &reference[2..] {
        let a = fs.lookup(big, &e.name).unwrap();
        assert_eq!((a.ino, a.kind), (e.ino, e.kind), "{}", String::from_utf8_lossy(&e.name));
    }
    for room in [1, 2, 3, 7, 64, 518, 519, 520, 521] {
        let (got, calls) = list_in_buffers(&fs, big, room);
        assert_eq!(got, reference, "reply buffers of {room} entries");
        assert_eq!(calls, reference.len().div_ceil(room) + 1, "{room}: one empty reply ends the listing");
    }
}

#[test]
fn a_listing_resumed_at_any_cookie_continues_where_it_stopped() {
    let fs = tree_with_a_big_folder();
    let big = ino(&fs, "_archives/a.zip/big");
    let (reference, _) = list_in_buffers(&fs, big, usize::MAX);
    // Cookie 0 starts at `.`, and the cookie an entry carries resumes right after it.
    let mut resumes = vec![0];
    resumes.extend(reference.iter().map(|e| e.cookie));
    for (i, &cookie) in resumes.iter().enumerate() {
        let mut rest = Vec::new();
        fs.readdir(big, cookie, |e| {
            rest.push(seen(&e));
            false
        })
        .unwrap();
        assert_eq!(rest, reference[i..], "resumed at cookie {cookie}");
    }
    // Past the end: nothing, and no error (a racing seekdir may ask).
    for cookie in [reference.last().unwrap().cookie + 1, u64::MAX] {
        let mut n = 0;
        fs.readdir(big, cookie, |_| {
            n += 1;
            false
        })
        .unwrap();
        assert_eq!(n, 0, "cookie {cookie}");
    }
}

#[test]
fn dot_and_dotdot_of_the_root_and_of_nested_folders_point_where_they_should() {
    let fs = tree_with_a_big_folder();
    let dots = |dir: Ino| {
        let (all, _) = list_in_buffers(&fs, dir, 2);
        assert_eq!((all[0].name.as_slice(), all[1].name.as_slice()), (&b"."[..], &b".."[..]));
        let names: BTreeSet<Vec<u8>> = all[2..].iter().map(|e| e.name.clone()).collect();
        assert!(!names.contains(b".".as_slice()) && !names.contains(b"..".as_slice()));
        (all[0].ino, all[1].ino, all.len() - 2)
    };
    assert_eq!(dots(ROOT_INO), (ROOT_INO, ROOT_INO, 1), "the root is its own parent; it holds _archives");
    let archives = ino(&fs, "_archives");
    assert_eq!(dots(archives), (archives, ROOT_INO, 1));
    let big = ino(&fs, "_archives/a.zip/big");
    let empty = ino(&fs, "_archives/a.zip/big/empty");
    assert_eq!(dots(empty), (empty, big, 0), "an empty folder lists . and .. only");
}
