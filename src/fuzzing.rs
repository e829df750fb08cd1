//! Fuzzing entry points: one function per `fuzz/` target, each running arbitrary bytes through
//! the code a mount runs on them (listing, the shared reader, the persistent index loader, the
//! DICOM scanner's loop, profile compilation, the organizer's tables). Shared by the libFuzzer
//! targets and by `tests/fuzz_regressions.rs`, so every input a fuzzer found stays covered on
//! stable Rust.
//!
//! Contract of every entry point: never panic, never hang, never allocate without bound, whatever
//! the input. Reading is capped ([`READ_BUDGET`] decoded bytes per input) so a decompression bomb
//! costs bounded time: the parsers must stay bounded on their own, the cap only keeps the harness
//! from asking for gigabytes that legitimately exist. Where a result can be checked cheaply (the
//! seek-point reader against the indexing pass, a serialization round trip, the DICOM
//! `NeedMore` contract) it is asserted, so wrong bytes are bugs too.

use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::archive::codec::{Codec, StreamIndex, WindowSource};
use crate::archive::compressed::ARCHIVE_STREAM;
use crate::archive::format::{self, InStream, ListCtx, OpenArchive};
use crate::archive::{ByteSource, DataLoc, Listing, SourceReader, tar, zip};
use crate::cache::BlockCache;
use crate::dicom::{self, DicomError, DicomInfo};
use crate::index::{INDEX, Identity, IndexStore};
use crate::organize::{ContentSource, PoolFile, organize};
use crate::pool::{Archive, Pool};
use crate::profile::{self, Profile};
use crate::reader::Reader;
use crate::stream::CompressedStream;

/// Decoded bytes the harness reads per input, over all members and offsets.
pub const READ_BUDGET: u64 = 8 << 20;
/// Cache of the harness's pools: small, so that members above 64 KiB (its `max_block`) take the
/// reader's big-member paths (positioned reads with CRC tracking, deflate seek points, cursors).
const CACHE_BYTES: usize = 2 << 20;
/// Size of one read, as FUSE asks (`max_read`).
const CHUNK: usize = 128 << 10;

/// A fuzz target's entry point.
pub type Target = fn(&[u8]);

/// The targets, by name (the `fuzz/fuzz_targets/<name>.rs` files and the folders of
/// `tests/fuzz-regressions/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("zip", zip),
    ("tar", tar),
    ("sevenz", sevenz),
    ("nested", nested),
    ("codecs", codecs),
    ("index", index),
    ("dicom", dicom),
    ("profile", profile),
    ("table", table),
];

/// An in-memory `ByteSource`.
pub struct Mem(pub Vec<u8>);

impl ByteSource for Mem {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let off = offset.min(self.0.len() as u64) as usize;
        let n = buf.len().min(self.0.len() - off);
        buf[..n].copy_from_slice(&self.0[off..off + n]);
        Ok(n)
    }
    fn describe(&self) -> String {
        "fuzz input".into()
    }
}

fn mem(data: &[u8]) -> Arc<dyn ByteSource> {
    Arc::new(Mem(data.to_vec()))
}

// ---------------------------------------------------------------------------------------------
// Archives: listing, then every member read through the mount's reader.

/// `zip`: lists the input as a zip and reads every member through [`Reader`].
pub fn zip(data: &[u8]) {
    let src = mem(data);
    let _ = zip::looks_like_zip(&*src);
    if let Ok(listing) = zip::list(&*src) {
        assert_consistent(&listing);
        let data = Box::new(zip::ZipArchive::new(src, listing.members.len()));
        let _ = read_all_members(data, listing);
    }
}

/// Whether reading the input as a zip leaves the pool's block cache alive after the reader and
/// pool are dropped: a reference cycle (a cached member state holding the cache) leaks the cache
/// and everything in it.
pub fn zip_cache_outlives_reader(data: &[u8]) -> bool {
    let src = mem(data);
    let Ok(listing) = zip::list(&*src) else { return false };
    let data = Box::new(zip::ZipArchive::new(src, listing.members.len()));
    read_all_members(data, listing).upgrade().is_some()
}

/// `tar`: lists the input as a plain tar (by offsets, and as a stream read in odd-sized pieces,
/// the way a tar.gz is listed) and reads every member through [`Reader`].
pub fn tar(data: &[u8]) {
    let _ = tar::looks_like_tar(data);
    let mut dribble = Dribble { data, pos: 0, step: 1 };
    let src = mem(data);
    if let Ok(listing) = tar::list(&mut dribble, "fuzz.tar") {
        assert_consistent(&listing);
    }
    if let Ok(listing) = tar::list_source(&*src, "fuzz.tar") {
        assert_consistent(&listing);
        let _ = read_all_members(Box::new(InStream(src)), listing);
    }
}

/// `sevenz`: lists the input as a 7z (trying one password) and reads every member through
/// [`Reader`].
pub fn sevenz(data: &[u8]) {
    use crate::archive::format::Format;
    let src = mem(data);
    let cache = Arc::new(BlockCache::new(CACHE_BYTES));
    let progress = crate::progress::Progress::new(false);
    let passwords = ["fuzz".to_string()];
    let ctx = ListCtx {
        path: Path::new("fuzz.7z"),
        display: "fuzz.7z",
        id: 0,
        cache: &cache,
        progress: &progress,
        passwords: &passwords,
        passwords_given: 1,
        disk: None,
    };
    if let Ok(opened) = crate::archive::sevenz::SevenZ.list(2, &src, &ctx) {
        assert_consistent(&opened.listing);
        let _ = read_all_members(opened.data, opened.listing);
    }
}

/// `nested`: opens the input as any archive with the archives inside it, two levels deep, and
/// reads every member of every level through [`Reader`].
pub fn nested(data: &[u8]) {
    let Ok(mut pool) = Pool::from_sources(vec![("fuzz".into(), mem(data))], CACHE_BYTES, false) else { return };
    if pool.open_nested(2).is_ok() {
        for a in &pool.archives {
            assert_consistent(&Listing { members: a.members.clone(), warnings: Vec::new(), damaged: a.damaged });
        }
        let _ = read_pool(pool);
    }
}

/// What a lister returns must load back from the persistent index, which checks this.
fn assert_consistent(listing: &Listing) {
    for m in &listing.members {
        assert!(m.is_consistent(), "lister produced an inconsistent member: {m:?}");
    }
}

/// A reader handing out 1, 2, 3, ... 511 bytes per call: exercises every partial-read path.
struct Dribble<'a> {
    data: &'a [u8],
    pos: usize,
    step: usize,
}

impl Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.step).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        self.step = self.step % 511 + 1;
        Ok(n)
    }
}

fn archive(data: Box<dyn OpenArchive>, listing: Listing) -> Archive {
    Archive {
        id: 0,
        owner: 0,
        source_index: 0,
        display: "fuzz".into(),
        mount_path: vec![b"fuzz".to_vec()],
        listing_bytes_read: 0,
        from_index: false,
        members: listing.members,
        mtime: 0,
        warnings: listing.warnings,
        damaged: listing.damaged,
        file: None,
        data: Arc::from(data),
        opened: Vec::new(),
        nest: None,
    }
}

/// Reads every member of one archive through the mount's [`Reader`]: front to back in FUSE-sized
/// chunks, then its last bytes and its first bytes again (a backward read), within
/// [`READ_BUDGET`] decoded bytes in all.
/// Returns the pool's cache, weakly: it must be gone once the reader is (see
/// [`zip_cache_outlives_reader`]).
fn read_all_members(data: Box<dyn OpenArchive>, listing: Listing) -> std::sync::Weak<BlockCache> {
    let pool = Pool {
        archives: vec![archive(data, listing)],
        cache: Arc::new(BlockCache::new(CACHE_BYTES)),
        warnings: Vec::new(),
        store: IndexStore::new(None),
        sources: Vec::new(),
    };
    read_pool(pool)
}

/// [`read_all_members`] over every archive of `pool`, within one [`READ_BUDGET`].
fn read_pool(pool: Pool) -> std::sync::Weak<BlockCache> {
    let members: Vec<(u32, u32, u64, DataLoc)> = pool
        .archives
        .iter()
        .enumerate()
        .flat_map(|(a, arch)| {
            arch.members.iter().enumerate().map(move |(i, m)| (a as u32, i as u32, m.size, m.data.clone()))
        })
        .collect();
    let cache = Arc::downgrade(&pool.cache);
    let reader = Reader::new(pool);
    let mut budget = READ_BUDGET;
    let mut out = Vec::new();
    for (a, i, size, data) in members {
        let mut offset = 0u64;
        while offset < size && budget > 0 {
            let len = CHUNK.min(budget as usize);
            match reader.read(a, i, offset, len, &mut out) {
                Ok(()) => {
                    assert!(out.len() <= len, "read returned more than asked");
                    assert_eq!(out.len() as u64, len.min((size - offset) as usize) as u64, "short read without error");
                    budget -= len as u64;
                    offset += out.len() as u64;
                }
                Err(_) => break,
            }
        }
        // Random reads as the kernel makes them (readahead, a seek): the tail, the middle, the
        // head again. A compressed zip member is decoded up to the offset read, so those are
        // probed only when the whole member fits in the budget; other data costs no decoding.
        let decoded = matches!(data, DataLoc::Zip(zd) if zd.method != 0);
        if size > 0 && (!decoded || size <= budget) {
            for at in [size.saturating_sub(4096), size / 2, size - 1, 0] {
                let want = 4096.min(budget) as usize;
                if reader.read(a, i, at, want, &mut out).is_ok() {
                    assert_eq!(out.len() as u64, (size - at).min(want as u64), "short read at {at} without error");
                }
                budget -= want as u64;
            }
        }
        let _ = reader.read_head(a, i, 1024, &mut out);
        // Reading at or past the end is an empty answer (or the member's error), never a panic.
        let _ = reader.read(a, i, size, 10, &mut out);
        let _ = reader.read(a, i, u64::MAX - 1, 10, &mut out);
    }
    cache
}

// ---------------------------------------------------------------------------------------------
// Codecs: indexing pass, seek-point reads checked against it, serialization round trip.

/// `codecs`: the first byte picks the codec (bits 0-1), the seek-point spacing (bits 2-3) and
/// the mode (bits 4-6 all set: the rest is a serialized seek-point table to load with its
/// compressed file, see [`load_table`]; otherwise a compressed stream to index).
pub fn codecs(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else { return };
    let codec = Codec::ALL[(sel & 3) as usize];
    let spacing = [1u64, 4 << 10, 64 << 10, codec.spacing()][((sel >> 2) & 3) as usize];
    let _ = Codec::detect(rest);
    if sel & 0x70 == 0x70 {
        return load_table(codec, rest);
    }
    let src = mem(rest);
    let mut pass = codec.indexer(BufReader::new(SourceReader { source: &*src, pos: 0 }), spacing);
    let mut decoded = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match pass.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                decoded.extend_from_slice(&buf[..n]);
                if decoded.len() as u64 > READ_BUDGET {
                    return; // a bomb: the pass is bounded by what it is asked for
                }
            }
            Err(_) => break,
        }
    }
    let (index, _error) = pass.finish_partial();
    let len = index.uncompressed_len();
    assert!(len <= decoded.len() as u64, "index covers {len} bytes, the pass yielded {}", decoded.len());
    assert!(index.verified_len() <= len);
    check_reads(&index, &src, &decoded[..len as usize], 4);
    // The mount serves the stream through the block cache: same bytes.
    let stream = CompressedStream::new(src.clone(), index, Arc::new(BlockCache::new(CACHE_BYTES)), 0, ARCHIVE_STREAM);
    check_source(&stream, &decoded[..len as usize]);
    let index = stream.index();
    // Saved and loaded again (as the persistent index does): the same index, the same bytes.
    let (table, windows) = index.to_parts().expect("an in-memory index serializes");
    let back =
        StreamIndex::from_parts(codec, &table, WindowSource::Mem(windows.clone())).expect("own output loads back");
    assert_eq!(back.uncompressed_len(), index.uncompressed_len());
    assert_eq!(back.verified_len(), index.verified_len());
    assert!(back.to_parts().expect("serializes") == (table, windows), "to_parts(from_parts(x)) != x");
    check_reads(&back, &src, &decoded[..len as usize], 1);
}

/// Offsets worth reading at: both ends, the middle, and the start and middle of the first
/// `spans` seek-point spans.
fn probe_offsets(index: &StreamIndex, spans: usize) -> Vec<u64> {
    let len = index.uncompressed_len();
    let mut offs = vec![0, len / 2, len.saturating_sub(1), len, len + 1];
    let mut o = 0;
    for _ in 0..spans {
        let (_, start, end) = index.span_of(o);
        offs.extend([start, start + (end - start) / 2]);
        if end <= o || end >= len {
            break;
        }
        o = end;
    }
    offs.sort_unstable();
    offs.dedup();
    offs
}

/// `reader_at` and `read_span` (of up to `spans` spans) against the bytes of the indexing pass.
fn check_reads(index: &StreamIndex, src: &Arc<dyn ByteSource>, decoded: &[u8], spans: usize) {
    let len = index.uncompressed_len();
    let mut read_spans = Vec::new();
    for off in probe_offsets(index, spans) {
        let (span, start, end) = index.span_of(off.min(len.saturating_sub(1)));
        assert!(start <= end && end <= len.max(1), "span {span} = {start}..{end} of a {len}-byte stream");
        if let Ok(mut r) = index.reader_at(src.clone(), off) {
            let mut got = Vec::new();
            let _ = r.by_ref().take(16 << 10).read_to_end(&mut got);
            let expect = decoded.get(off as usize..).unwrap_or_default();
            assert!(got.len() <= expect.len(), "reader_at({off}) yields bytes past the end of the stream");
            assert_eq!(&got[..], &expect[..got.len()], "reader_at({off}) disagrees with the indexing pass");
        }
        if read_spans.len() < spans && !read_spans.contains(&span) {
            read_spans.push(span);
            if let Ok(bytes) = index.read_span(src.clone(), span, (end - start) as usize) {
                assert_eq!(&bytes[..], &decoded[start as usize..end as usize], "read_span({span}) is wrong");
            }
            let _ = index.read_span(src.clone(), span, 0);
        }
    }
}

fn check_source(s: &dyn ByteSource, decoded: &[u8]) {
    let mut buf = vec![0u8; 70 << 10];
    let len = s.len();
    for off in [0, len / 2, len.saturating_sub(100), len, len + 7] {
        if let Ok(n) = s.read_at(off, &mut buf) {
            let expect = decoded.get(off as usize..).unwrap_or_default();
            assert!(n <= expect.len(), "read_at({off}) returned {n} bytes past the end");
            assert_eq!(&buf[..n], &expect[..n], "read_at({off}) disagrees with the indexing pass");
        }
    }
}

/// A seek-point table that did not come from this medfs (a hostile or corrupt index file whose
/// checksum matches): `input` is `u16 table length, table, u32 windows length, windows, compressed
/// file`, and loading it fails, or reads from it fail or return bytes, never panic.
fn load_table(codec: Codec, input: &[u8]) {
    let mut parts = Parts(input);
    let table = parts.take_len(2).to_vec();
    let windows = parts.take_len(4).to_vec();
    let src = mem(parts.0);
    let Ok(index) = StreamIndex::from_parts(codec, &table, WindowSource::Mem(windows)) else { return };
    let mut budget = READ_BUDGET;
    for off in probe_offsets(&index, 4) {
        let (span, start, end) = index.span_of(off);
        assert!(start <= end, "span {span} = {start}..{end}");
        if let Ok(mut r) = index.reader_at(src.clone(), off) {
            let mut got = Vec::new();
            let _ = r.by_ref().take((64 << 10).min(budget)).read_to_end(&mut got);
            budget -= got.len() as u64;
        }
        if let Ok(bytes) = index.read_span(src.clone(), span, (1 << 20).min(budget as usize)) {
            assert_eq!(bytes.len() as u64, end - start, "read_span({span}) length");
            budget -= bytes.len() as u64;
        }
    }
    let stream = CompressedStream::new(src, index, Arc::new(BlockCache::new(CACHE_BYTES)), 0, ARCHIVE_STREAM);
    let mut buf = vec![0u8; 4096];
    for off in [0, stream.len() / 2, stream.len().saturating_sub(1)] {
        let _ = stream.read_at(off, &mut buf);
    }
    let _ = stream.index().to_parts();
}

// ---------------------------------------------------------------------------------------------
// The persistent index.

/// The archive every fuzzed index file claims to be about.
fn fuzz_identity() -> Identity {
    Identity { path: b"/fuzz/archive".to_vec(), size: 1 << 20, mtime_ns: 1_700_000_000_000_000_000, dev: 7, ino: 42 }
}

/// A folder of this process for fuzzed index files.
fn index_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm".into() } else { std::env::temp_dir() };
        let dir = base.join(format!("medfs-fuzz-index-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary folder");
        dir
    })
}

/// `index`: the input as an index file and the archive it describes. The first byte picks the
/// mode. Even: the rest is the whole index file as is (header, version, checksum checks; the
/// archive is empty). Odd: the rest is `u16 body length, body, u32 windows length, windows,
/// archive`, and the index file is a valid header and identity, the body, a valid CRC-32 and the
/// windows, so the fuzzer explores the decoder itself. A file that loads is then used as a
/// remount would: its seek-point table loaded and every member read through [`Reader`].
pub fn index(data: &[u8]) {
    let _ = index_reopens(data);
}

/// [`index`], telling whether the index loaded and its format reopened the archive from it (the
/// seeds must, or the fuzzer starts from inputs that stop at the first check).
pub fn index_reopens(data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else { return false };
    let id = fuzz_identity();
    let (file, archive_bytes) = if mode & 1 == 0 {
        (rest.to_vec(), Vec::new())
    } else {
        let mut parts = Parts(rest);
        let body = parts.take_len(2);
        let windows = parts.take_len(4);
        (wrap_index(&id, body, windows), parts.0.to_vec())
    };
    let store = IndexStore::new(Some(index_dir().clone()));
    let path = store.file_for(&id).expect("a folder is set");
    std::fs::write(&path, &file).expect("write the index file");
    let Ok(loaded) = store.load(&id) else { return false };
    let (index_file, windows_at) = loaded.windows;
    let saved = loaded.saved;
    // What pool.rs's `from_saved` does with it.
    let Some(format) = format::by_tag(saved.format) else { return false };
    let archive_bytes = mem(&archive_bytes);
    let cache = Arc::new(BlockCache::new(CACHE_BYTES));
    let progress = crate::progress::Progress::new(false);
    let ctx = ListCtx {
        path: Path::new("fuzz"),
        display: "fuzz",
        id: 0,
        cache: &cache,
        progress: &progress,
        passwords: &[],
        passwords_given: 0,
        disk: None,
    };
    let bulk = WindowSource::Disk(index_file, windows_at);
    let reopened = format.reopen(saved.format, &archive_bytes, &saved.members, &saved.stream_table, bulk, &ctx);
    let Ok(data) = reopened else { return false };
    let listing = Listing { members: saved.members, warnings: saved.warnings, damaged: saved.damaged };
    let _ = read_all_members(data, listing);
    true
}

/// Length-prefixed pieces of a fuzz input (a short input gives short pieces, never an error).
struct Parts<'a>(&'a [u8]);

impl<'a> Parts<'a> {
    /// A little-endian length of `width` bytes, then that many bytes.
    fn take_len(&mut self, width: usize) -> &'a [u8] {
        let w = width.min(self.0.len());
        let len = self.0[..w].iter().rev().fold(0usize, |n, &b| n << 8 | b as usize);
        let rest = &self.0[w..];
        let (piece, rest) = rest.split_at(len.min(rest.len()));
        self.0 = rest;
        piece
    }
}

/// The envelope (header, identity, CRC-32) around `body`, then `windows`: an index file as
/// `IndexStore::save` writes it.
fn wrap_index(id: &Identity, body: &[u8], windows: &[u8]) -> Vec<u8> {
    let mut f = crate::persist::seal(&INDEX, id, body);
    f.extend_from_slice(windows);
    f
}

// ---------------------------------------------------------------------------------------------
// DICOM.

/// `dicom`: the input as a member's bytes, read by the DICOM scanner's loop (a first head, more
/// while the parser asks for more), by the size-less parser, and as a saved header record.
pub fn dicom(data: &[u8]) {
    let _ = dicom::sniff(data);
    let size = data.len() as u64;
    // The scanner's first head is 64 KiB; smaller firsts reach the NeedMore paths with small inputs.
    let first = data.first().map_or(0, |&b| b as usize * 2);
    let mut want = first.min(data.len());
    loop {
        match dicom::parse_header_sized(&data[..want], size) {
            Ok(info) => {
                round_trip(&info);
                break;
            }
            Err(DicomError::NeedMore(n)) => {
                assert!(n > want && n as u64 <= size, "NeedMore({n}) with {want} of {size} bytes");
                want = n;
            }
            Err(_) => break,
        }
    }
    match dicom::parse_header(data) {
        Ok(info) => round_trip(&info),
        Err(DicomError::NeedMore(n)) => assert!(n > data.len(), "NeedMore({n}) with {} bytes", data.len()),
        Err(_) => {}
    }
    if let Ok(info) = DicomInfo::from_bytes(data) {
        round_trip(&info);
    }
}

fn round_trip(info: &DicomInfo) {
    let bytes = info.to_bytes();
    let back = DicomInfo::from_bytes(&bytes).expect("own record reads back");
    assert_eq!(back.to_bytes(), bytes, "record round trip");
    let _ = info.z();
}

// ---------------------------------------------------------------------------------------------
// Profiles and tables.

/// A content source over fixed bytes per pool file.
struct Contents(Vec<Vec<u8>>);

impl ContentSource for Contents {
    fn read_all(&self, id: (u32, u32)) -> io::Result<Vec<u8>> {
        self.0.get(id.1 as usize).cloned().ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }
}

fn pool_file(i: usize, archive: &str, path: &str, size: u64) -> PoolFile {
    PoolFile { id: (0, i as u32), archive: archive.into(), path: path.into(), size, mtime: 0, dicom: None }
}

/// `profile`: the input as a profile TOML file; one that compiles is then run on a small fixed
/// pool of look-alike files of several datasets.
pub fn profile(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(p) = profile::parse("mounts/fuzz.toml", text) else { return };
    let _ = (p.slug(), p.title(), p.homepage(), p.roles(), p.file());
    let paths = [
        ("MURA-v1.1.zip", "MURA-v1.1/train/XR_WRIST/patient00001/study1_positive/image1.png"),
        ("MURA-v1.1.zip", "MURA-v1.1/train_labeled_studies.csv"),
        ("images_001.tar.gz", "images/00000001_000.png"),
        ("Data_Entry_2017.csv", "Data_Entry_2017.csv"),
        ("train_val_list.txt", "train_val_list.txt"),
        ("x.zip", "disc1/OAS1_0001_MR1/RAW/OAS1_0001_MR1_mpr-1_anon.img"),
        ("x.zip", "a/b/1-001.dcm"),
        ("x.zip", "CLNDAT_EN.txt"),
        ("x.zip", "cases/cancers/cancer_01/case0001/A-0001-1.ics"),
        ("x.zip", "BraTS2021_00000/BraTS2021_00000_flair.nii.gz"),
    ];
    let csv = b"Image Index,Finding Labels,Patient ID\n00000001_000.png,Mass|Nodule,1\n".to_vec();
    let mut pool: Vec<PoolFile> = paths.iter().enumerate().map(|(i, (a, p))| pool_file(i, a, p, 100)).collect();
    pool[6].dicom = Some(Arc::new(DicomInfo {
        patient_id: Some("P1".into()),
        study_uid: Some("1.2.3".into()),
        series_uid: Some("1.2.3.4".into()),
        modality: Some("CT".into()),
        image_position: Some([0.0, 0.0, -5.5]),
        ..DicomInfo::default()
    }));
    let contents = Contents(
        paths
            .iter()
            .map(|(_, p)| {
                if p.ends_with(".csv") || p.ends_with(".txt") || p.ends_with(".ics") {
                    csv.clone()
                } else {
                    vec![0u8; 64]
                }
            })
            .collect(),
    );
    let _ = organize(&[p], &pool, &contents);
}

/// Built-in profiles, compiled once per process.
fn builtin_profiles() -> &'static [Profile] {
    static P: OnceLock<Vec<Profile>> = OnceLock::new();
    P.get_or_init(profile::builtin)
}

/// Label-table scenarios: (profile, table file, study files it joins with).
const TABLE_CASES: &[(&str, &str, &[&str])] = &[
    (
        "mura",
        "MURA-v1.1/train_labeled_studies.csv",
        &[
            "MURA-v1.1/train/XR_WRIST/patient00001/study1_positive/image1.png",
            "MURA-v1.1/train/XR_WRIST/patient00002/study1_negative/image1.png",
        ],
    ),
    ("chestxray14", "Data_Entry_2017.csv", &["images/00000001_000.png", "images/00000002_001.png"]),
    ("chestxray14", "BBox_List_2017.csv", &["images/00000001_000.png", "images/00000002_001.png"]),
    ("chestxray14", "train_val_list.txt", &["images/00000001_000.png", "images/00000002_001.png"]),
    ("scr", "CLNDAT_EN.txt", &["JPCLN001.IMG", "JPCNN001.IMG"]),
    ("kaggle-dr", "trainLabels.csv", &["train/10_left.jpeg", "train/10_right.jpeg"]),
    ("oasis1", "oasis_cross-sectional.csv", &["disc1/OAS1_0001_MR1/RAW/OAS1_0001_MR1_mpr-1_anon.img"]),
];

/// `table`: the first byte picks a scenario, the rest is the content of a label table that a
/// built-in profile reads (CSV with or without header, TSV, line lists) and joins with a few
/// study files; the last scenario feeds the organizer's file-format transforms instead (image
/// sizes, NIfTI/Analyze headers, DDSM `.ics` and overlays, LIDC XML).
pub fn table(data: &[u8]) {
    use crate::organize::transform;
    let Some((&sel, rest)) = data.split_first() else { return };
    let Some(&(slug, table_path, studies)) = TABLE_CASES.get(sel as usize % (TABLE_CASES.len() + 1)) else {
        let _ = transform::image_size(rest, &mut || None);
        let _ = transform::image_size(rest, &mut || Some(rest.to_vec()));
        let _ = transform::volume_header(rest);
        let text = String::from_utf8_lossy(rest);
        let _ = transform::ddsm_ics(&text);
        let mut overlays = transform::ddsm_overlay("LEFT_CC", &text);
        transform::ddsm_sort(&mut overlays);
        let _ = transform::lidc_xml(&text);
        let _ = transform::jsrt_side(rest.len() as u64);
        return;
    };
    let profile = builtin_profiles().iter().find(|p| p.slug() == slug).expect("a built-in profile").clone();
    let mut pool = vec![pool_file(0, table_path, table_path, rest.len() as u64)];
    let mut contents = vec![rest.to_vec()];
    for (i, s) in studies.iter().enumerate() {
        pool.push(pool_file(i + 1, "images.zip", s, 4));
        contents.push(b"\x89PNG".to_vec());
    }
    let _ = organize(&[profile], &pool, &Contents(contents));
}
