//! Tar listing: turns a tar stream (v7, ustar, GNU, star, pax) into `Member`s, applying long
//! names, resolving hard links and sparse maps, and stopping cleanly at the first damage.
//!
//! The lister only reads front to back (the stream may be a decompressor), so everything a member
//! needs must be known by the time its data has been skipped.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::Arc;

use super::codec::WindowSource;
use super::format::{Detection, Format, InStream, ListCtx, OpenArchive, Opened, Probe, read_up_to};
use super::{ByteSource, DataLoc, Extent, FormatError, Listing, Member, MemberKind, path};

const BLOCK: usize = 512;
/// Data is skipped by reading; one buffer this size is reused for the whole archive.
const SKIP_BUF: usize = 256 * 1024;
/// A pax header is a handful of records; anything larger is hostile or broken.
const MAX_PAX: u64 = 1 << 20;
/// Far above PATH_MAX, so only hostile input hits it.
const MAX_LONG_NAME: u64 = 64 << 10;
/// Each extent costs 24 bytes of memory for as long as the archive is mounted.
const MAX_EXTENTS: usize = 1_000_000;
/// Most sparse extents that hard links may copy in one archive: each link to a sparse file gets
/// its own copy of the map, so without a bound a few KB of link headers would multiply one
/// 24 MB map into gigabytes.
const MAX_LINKED_EXTENTS: usize = MAX_EXTENTS;
/// Sizes are u64 in memory, but offsets add sizes: keep far from overflow (1 EiB).
const MAX_SIZE: u64 = 1 << 60;

/// Lists a tar stream read front to back. Offsets in the returned DataLocs are byte offsets in
/// the stream (0 = first byte of `reader`). `reader` may be a decompressing reader (tar.gz), so
/// data must be skipped by reading (use a reasonably large buffer), never by seeking.
///
/// Damage after the first member (bad checksum, bad size, truncation, malformed extended header)
/// ends the listing: what was listed so far is returned with `damaged` set and a warning. Damage
/// before any member is listed is an error: `NotThisFormat` when the first block is not a tar
/// header at all, `Corrupt` otherwise.
pub fn list(reader: &mut dyn Read, name: &str) -> Result<Listing, FormatError> {
    list_input(Input::Read(reader), name)
}

/// Lists a plain tar that can be read at any offset: member data is skipped by moving the
/// offset, so listing a 40 GB tar reads only its headers.
pub fn list_source(src: &dyn ByteSource, name: &str) -> Result<Listing, FormatError> {
    list_input(Input::Source(src), name)
}

fn list_input(input: Input<'_>, name: &str) -> Result<Listing, FormatError> {
    let mut lister = Lister {
        s: Stream { inner: input, pos: 0, skip_buf: Vec::new() },
        name,
        listing: Listing::default(),
        pending: Pending::default(),
        ext_buf: Vec::new(),
        links: LinkIndex::default(),
        linked_extents: 0,
        io_error: None,
    };
    match lister.run() {
        Ok(()) => {}
        Err(Stop::NotTar) => return Err(FormatError::NotThisFormat("tar")),
        Err(Stop::Damaged) => lister.listing.damaged = true,
    }
    let listing = lister.listing;
    if listing.damaged && listing.members.is_empty() {
        // Nothing usable came out of it: better refused than mounted empty.
        if let Some(e) = lister.io_error {
            return Err(FormatError::Io(e));
        }
        let why = listing.warnings.last().cloned().unwrap_or_else(|| format!("{name}: damaged tar"));
        return Err(FormatError::Corrupt(why));
    }
    Ok(listing)
}

/// Cheap content check on the first 512 bytes: true if this looks like a tar header block
/// (valid header checksum; ustar/gnu magic or a plausible v7 header). Used for format detection.
///
/// An all-zero block (an empty archive) is not recognised: it carries no evidence of being tar.
pub fn looks_like_tar(first_block: &[u8]) -> bool {
    let Some(blk) = first_block.get(..BLOCK) else { return false };
    if !checksum_ok(blk) {
        return false;
    }
    let magic = &blk[257..263];
    if magic == b"ustar\0" || (magic == b"ustar " && &blk[263..265] == b" \0") {
        return true;
    }
    // A v7 header has no magic; demand the fields that every v7 writer fills sensibly.
    // GNU and pax extension types occur without magic too (old GNU volume labels).
    let plausible_type =
        matches!(blk[156], 0 | b'0'..=b'7' | b'D' | b'K' | b'L' | b'M' | b'N' | b'S' | b'V' | b'g' | b'x');
    plausible_type
        && blk[0] != 0
        && parse_numeric(&blk[124..136]).is_some_and(|v| v >= 0)
        && parse_numeric(&blk[100..108]).is_some()
}

/// Why listing stopped early.
enum Stop {
    /// The first block is not a tar header.
    NotTar,
    /// A warning has been pushed; return what was listed.
    Damaged,
}

type Step<T> = Result<T, Stop>;

/// Where the tar bytes come from.
enum Input<'a> {
    /// Front to back only (a decompressor): data is skipped by reading it.
    Read(&'a mut dyn Read),
    /// Random access: data is skipped by moving the offset.
    Source(&'a dyn ByteSource),
}

/// The input with a position, and the one buffer used for skipping.
struct Stream<'a> {
    inner: Input<'a>,
    pos: u64,
    skip_buf: Vec<u8>,
}

impl Stream<'_> {
    /// Fills `buf` unless the stream ends first; returns how many bytes were read.
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            let got = match &mut self.inner {
                Input::Read(r) => r.read(&mut buf[n..]),
                Input::Source(s) => s.read_at(self.pos + n as u64, &mut buf[n..]),
            };
            match got {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.pos += n as u64;
                    return Err(e);
                }
            }
        }
        self.pos += n as u64;
        Ok(n)
    }

    /// Skips `n` bytes by reading them; returns how many were skipped (fewer only at the end).
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        if n == 0 {
            return Ok(0);
        }
        if let Input::Source(s) = &self.inner {
            let skipped = n.min(s.len().saturating_sub(self.pos));
            self.pos += skipped;
            return Ok(skipped);
        }
        if self.skip_buf.is_empty() {
            self.skip_buf = vec![0; SKIP_BUF];
        }
        let mut left = n;
        while left > 0 {
            let want = left.min(SKIP_BUF as u64) as usize;
            let Input::Read(r) = &mut self.inner else { unreachable!("sources skip by seeking") };
            match r.read(&mut self.skip_buf[..want]) {
                Ok(0) => break,
                Ok(k) => {
                    left -= k as u64;
                    self.pos += k as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n - left)
    }
}

/// Extended headers (GNU long names, pax records) waiting for the member they describe.
#[derive(Default)]
struct Pending {
    /// Any extended header seen since the last member.
    any: bool,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: PaxAttrs,
}

/// The pax records medfs uses; everything else is validated and dropped.
#[derive(Default)]
struct PaxAttrs {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
    mtime: Option<i64>,
    sparse_major: Option<u64>,
    sparse_minor: Option<u64>,
    sparse_name: Option<Vec<u8>>,
    /// GNU.sparse.size (0.x) or GNU.sparse.realsize (1.0).
    sparse_realsize: Option<u64>,
    /// (offset, length) pairs of format 0.0 (GNU.sparse.offset/numbytes) or 0.1 (GNU.sparse.map).
    sparse_map: Option<Vec<(u64, u64)>>,
}

/// How a pax-described member stores its sparse map.
enum PaxSparse {
    /// Not sparse.
    No,
    /// Format 0.0 or 0.1: the map is in the pax records.
    InHeader,
    /// Format 1.0: the map is at the start of the data, in 512-byte blocks.
    InData,
}

impl PaxAttrs {
    fn sparse_format(&self) -> PaxSparse {
        match (self.sparse_major, self.sparse_minor) {
            (Some(1), Some(0)) => PaxSparse::InData,
            (Some(0), _) | (None, None) if self.sparse_map.is_some() => PaxSparse::InHeader,
            (Some(0), Some(0 | 1)) => PaxSparse::InHeader,
            _ => PaxSparse::No,
        }
    }
}

/// Maps normalized names to the latest member with that name. Built on the first hard link
/// only, so archives without hard links never pay for it.
#[derive(Default)]
struct LinkIndex {
    map: HashMap<Vec<u8>, usize>,
    indexed: usize,
}

impl LinkIndex {
    fn find(&mut self, members: &[Member], target: &[u8]) -> Option<usize> {
        for (i, m) in members.iter().enumerate().skip(self.indexed) {
            if let Some(key) = link_key(&m.path) {
                self.map.insert(key, i);
            }
        }
        self.indexed = members.len();
        self.map.get(&link_key(target)?).copied()
    }
}

/// The name a hard link target is matched by: the same normalization the tree applies.
fn link_key(raw: &[u8]) -> Option<Vec<u8>> {
    path::normalize(raw).map(|c| path::join(&c.components))
}

struct Lister<'a, 'r> {
    s: Stream<'r>,
    name: &'a str,
    listing: Listing,
    pending: Pending,
    /// Reused for pax headers and long names.
    ext_buf: Vec<u8>,
    links: LinkIndex,
    /// Sparse extents copied to hard links so far (bounded by [`MAX_LINKED_EXTENTS`]).
    linked_extents: usize,
    io_error: Option<io::Error>,
}

impl Lister<'_, '_> {
    /// Records damage and stops the listing.
    fn damaged(&mut self, what: &[u8], problem: impl std::fmt::Display) -> Stop {
        let msg = if what.is_empty() {
            // Header-level damage has no member of its own: say where in the archive it is.
            match self.listing.members.last() {
                Some(m) => format!("{}: after member {}: {problem}", self.name, String::from_utf8_lossy(&m.path)),
                None => format!("{}: {problem}", self.name),
            }
        } else {
            format!("{}: {}: {problem}", self.name, String::from_utf8_lossy(what))
        };
        tracing::warn!("{msg}");
        self.listing.warnings.push(msg);
        Stop::Damaged
    }

    fn warn(&mut self, what: &[u8], problem: impl std::fmt::Display) {
        let msg = format!("{}: {}: {problem}", self.name, String::from_utf8_lossy(what));
        tracing::warn!("{msg}");
        self.listing.warnings.push(msg);
    }

    fn io_failed(&mut self, what: &[u8], e: io::Error) -> Stop {
        let pos = self.s.pos;
        let stop = self.damaged(what, format_args!("read error at offset {pos}: {e}"));
        self.io_error = Some(e);
        stop
    }

    fn run(&mut self) -> Step<()> {
        let mut blk = [0u8; BLOCK];
        loop {
            let header_offset = self.s.pos;
            let n = match self.s.fill(&mut blk) {
                Ok(n) => n,
                Err(e) => return Err(self.io_failed(b"", e)),
            };
            // The end marker is two zero blocks, but writers that stop after one, or after the
            // last data block, are common enough that neither counts as damage.
            if n == 0 || blk[..n].iter().all(|&b| b == 0) {
                if self.pending.any {
                    return Err(
                        self.damaged(b"", "archive ends after an extended header, before the member it describes")
                    );
                }
                return Ok(());
            }
            if n < BLOCK {
                return Err(self.damaged(b"", format_args!("truncated header at offset {header_offset}")));
            }
            if !checksum_ok(&blk) {
                if header_offset == 0 {
                    return Err(Stop::NotTar);
                }
                return Err(self.damaged(b"", format_args!("bad header checksum at offset {header_offset}")));
            }
            let header_size = match parse_numeric(&blk[124..136]) {
                None => return Err(self.damaged(field_str(&blk[..100]), "unparsable size field")),
                Some(v) if v < 0 => return Err(self.damaged(field_str(&blk[..100]), format_args!("negative size {v}"))),
                Some(v) if v as u64 > MAX_SIZE => {
                    return Err(self.damaged(field_str(&blk[..100]), format_args!("absurd size {v}")));
                }
                Some(v) => v as u64,
            };
            match blk[156] {
                b'x' | b'X' => {
                    // 'X' is the pre-POSIX Solaris spelling of the same thing.
                    self.read_extended(header_size, MAX_PAX, "pax header")?;
                    self.pending.any = true;
                    // A later pax header replaces an earlier one whole, as Go and libarchive read it.
                    self.pending.pax = PaxAttrs::default();
                    let buf = std::mem::take(&mut self.ext_buf);
                    let parsed = parse_pax(&buf, Some(&mut self.pending.pax));
                    self.ext_buf = buf;
                    if let Err(e) = parsed {
                        return Err(self.damaged(field_str(&blk[..100]), format_args!("malformed pax header: {e}")));
                    }
                }
                b'g' => {
                    // Global records describe the archive, not a file; still, a malformed one
                    // means the archive is not what it claims to be.
                    self.read_extended(header_size, MAX_PAX, "pax global header")?;
                    if let Err(e) = parse_pax(&self.ext_buf, None) {
                        return Err(
                            self.damaged(field_str(&blk[..100]), format_args!("malformed pax global header: {e}"))
                        );
                    }
                }
                b'L' | b'K' => {
                    self.read_extended(header_size, MAX_LONG_NAME, "GNU long name")?;
                    self.pending.any = true;
                    let value = field_str(&self.ext_buf).to_vec();
                    if blk[156] == b'L' {
                        self.pending.long_name = Some(value);
                    } else {
                        self.pending.long_link = Some(value);
                    }
                }
                b'V' => {
                    // A volume label names the tape, not a file.
                    self.skip_data(b"", header_size, header_size)?;
                    self.pending = Pending::default();
                }
                _ => {
                    self.member(&blk, header_size)?;
                    self.pending = Pending::default();
                }
            }
        }
    }

    /// Reads an extended header's data (and padding) into `ext_buf`.
    fn read_extended(&mut self, size: u64, cap: u64, what: &str) -> Step<()> {
        if size > cap {
            return Err(self.damaged(b"", format_args!("{what} of {size} bytes exceeds the {cap}-byte limit")));
        }
        let mut buf = std::mem::take(&mut self.ext_buf);
        buf.clear();
        buf.resize(size as usize, 0);
        let got = self.s.fill(&mut buf);
        self.ext_buf = buf;
        match got {
            Ok(n) if n == size as usize => {}
            Ok(_) => return Err(self.damaged(b"", format_args!("truncated {what}"))),
            Err(e) => return Err(self.io_failed(b"", e)),
        }
        match self.s.skip(padding(size)) {
            Ok(_) => Ok(()),
            Err(e) => Err(self.io_failed(b"", e)),
        }
    }

    /// Skips a member's data and padding. `needed` is how much of it the member's content uses:
    /// only a stream ending inside that part is damage.
    fn skip_data(&mut self, what: &[u8], stored: u64, needed: u64) -> Step<Truncation> {
        let got = match self.s.skip(stored + padding(stored)) {
            Ok(n) => n,
            Err(e) => return Err(self.io_failed(what, e)),
        };
        if got < needed {
            Ok(Truncation::InData { present: got, expected: needed })
        } else if got < stored + padding(stored) {
            Ok(Truncation::AfterData)
        } else {
            Ok(Truncation::None)
        }
    }

    fn member(&mut self, blk: &[u8; BLOCK], header_size: u64) -> Step<()> {
        let typ = blk[156];
        let mut path = self.member_path(blk);
        let mode = parse_numeric(&blk[100..108]).map_or(0, |m| (m & 0o7777) as u32);
        let mtime = self.pending.pax.mtime.unwrap_or_else(|| parse_numeric(&blk[136..148]).unwrap_or(0));
        let mut m = Member { path: Vec::new(), kind: MemberKind::File, size: 0, mtime, mode, data: DataLoc::None };

        match typ {
            b'1' | b'2' => {
                let target = match (self.pending.long_link.take(), self.pending.pax.linkpath.take()) {
                    (_, Some(t)) | (Some(t), None) => t,
                    (None, None) => field_str(&blk[157..257]).to_vec(),
                };
                if typ == b'2' {
                    m.kind = MemberKind::Symlink { target };
                } else {
                    self.resolve_hardlink(&mut m, &path, &target);
                }
                // Links carry no data whatever their size field says (as Go and Python read it).
            }
            b'3' | b'4' | b'6' => {
                tracing::debug!("{}: skipping device or fifo {}", self.name, String::from_utf8_lossy(&path));
                return Ok(());
            }
            b'5' => m.kind = MemberKind::Dir,
            b'D' => {
                // GNU dumpdir: a directory whose data lists its contents for incremental restore.
                m.kind = MemberKind::Dir;
                m.path = path;
                let t = self.skip_data(&m.path, header_size, 0)?;
                return self.finish(m, t);
            }
            b'S' => {
                let stored = self.pending.pax.size.unwrap_or(header_size);
                return self.gnu_sparse(blk, m, path, stored);
            }
            b'M' => {
                let stored = self.pending.pax.size.unwrap_or(header_size);
                m.size = stored;
                m.data = DataLoc::Bad { reason: "continuation of a file from a previous tape volume".into() };
                self.warn(&path, "multi-volume continuation member; its content is incomplete and cannot be read");
                m.path = path;
                let t = self.skip_data(&m.path, stored, 0)?;
                return self.finish(m, t);
            }
            _ => {
                // Regular files, and every unknown type (POSIX says to read those as files).
                let stored = self.pending.pax.size.unwrap_or(header_size);
                match self.pending.pax.sparse_format() {
                    PaxSparse::InHeader | PaxSparse::InData => {
                        if let Some(n) = self.pending.pax.sparse_name.take() {
                            path = n;
                        }
                        m.path = path;
                        return self.pax_sparse(m, stored);
                    }
                    PaxSparse::No => {}
                }
                if matches!(typ, 0 | b'0') && path.last() == Some(&b'/') {
                    // Old writers mark directories only by the trailing slash.
                    m.kind = MemberKind::Dir;
                    m.path = path;
                    let t = self.skip_data(&m.path, stored, 0)?;
                    return self.finish(m, t);
                }
                m.size = stored;
                let offset = self.s.pos;
                m.data = if stored == 0 { DataLoc::None } else { DataLoc::Raw { offset } };
                m.path = path;
                let t = self.skip_data(&m.path, stored, stored)?;
                return self.finish(m, t);
            }
        }
        m.path = path;
        self.listing.members.push(m);
        Ok(())
    }

    /// Pushes a member whose data has been skipped, marking it unreadable if the data was cut.
    fn finish(&mut self, mut m: Member, t: Truncation) -> Step<()> {
        match t {
            // After data: the data is whole, the archive merely lacks its padding or end marker.
            Truncation::None | Truncation::AfterData => {
                self.listing.members.push(m);
                Ok(())
            }
            Truncation::InData { present, expected } => {
                let problem =
                    format!("truncated: the archive ends after {present} of this member's {expected} data bytes");
                if !matches!(m.kind, MemberKind::Dir) {
                    m.data = DataLoc::Bad { reason: problem.clone() };
                }
                let path = std::mem::take(&mut m.path);
                let stop = self.damaged(&path, problem);
                m.path = path;
                self.listing.members.push(m);
                Err(stop)
            }
        }
    }

    /// The member's name: pax path, else GNU long name, else the header's (with ustar prefix).
    fn member_path(&mut self, blk: &[u8; BLOCK]) -> Vec<u8> {
        if let Some(p) = self.pending.pax.path.take() {
            return p;
        }
        if let Some(p) = self.pending.long_name.take() {
            return p;
        }
        let name = field_str(&blk[..100]);
        // GNU headers keep atime/ctime where ustar keeps the prefix, so only ustar and star
        // headers have one...
        let prefix = match &blk[257..263] {
            b"ustar\0" if &blk[508..512] == b"tar\0" => field_str(&blk[345..476]),
            b"ustar\0" => field_str(&blk[345..500]),
            // ...except those of pre-1.8 Go writers, which put a prefix there anyway: when the
            // times do not parse but the field is ASCII, it is a prefix (Go's reading).
            b"ustar " => {
                let time_ok = |f: &[u8]| f[0] == 0 || parse_numeric(f).is_some();
                let prefix = field_str(&blk[345..500]);
                if !(time_ok(&blk[345..357]) && time_ok(&blk[357..369])) && prefix.is_ascii() { prefix } else { b"" }
            }
            _ => b"",
        };
        if prefix.is_empty() {
            return name.to_vec();
        }
        let mut p = Vec::with_capacity(prefix.len() + 1 + name.len());
        p.extend_from_slice(prefix);
        p.push(b'/');
        p.extend_from_slice(name);
        p
    }

    fn resolve_hardlink(&mut self, m: &mut Member, path: &[u8], target: &[u8]) {
        match self.links.find(&self.listing.members, target) {
            Some(i) => {
                let t = &self.listing.members[i];
                match &t.kind {
                    MemberKind::File => {
                        let copied = match &t.data {
                            DataLoc::Sparse { extents } => extents.len(),
                            _ => 0,
                        };
                        m.size = t.size;
                        if self.linked_extents + copied > MAX_LINKED_EXTENTS {
                            let msg = format!(
                                "hard link to sparse file {}: over {MAX_LINKED_EXTENTS} sparse extents copied to links",
                                String::from_utf8_lossy(target)
                            );
                            m.data = DataLoc::Bad { reason: msg.clone() };
                            self.warn(path, msg);
                        } else {
                            self.linked_extents += copied;
                            m.data = t.data.clone();
                        }
                    }
                    MemberKind::Symlink { .. } => m.kind = t.kind.clone(),
                    MemberKind::Dir => {
                        m.data = DataLoc::Bad { reason: "hard link to a directory".into() };
                        let msg = format!("hard link to directory {}", String::from_utf8_lossy(target));
                        self.warn(path, msg);
                    }
                }
            }
            None => {
                let msg = format!(
                    "hard link to {}, which is not an earlier member of the archive",
                    String::from_utf8_lossy(target)
                );
                m.data = DataLoc::Bad { reason: msg.clone() };
                self.warn(path, msg);
            }
        }
    }

    /// Old GNU sparse ('S'): the map is in the header and in the extension blocks after it.
    fn gnu_sparse(&mut self, blk: &[u8; BLOCK], mut m: Member, path: Vec<u8>, stored: u64) -> Step<()> {
        let realsize = match parse_numeric(&blk[483..495]) {
            Some(v) if (0..=MAX_SIZE as i64).contains(&v) => v as u64,
            _ => return Err(self.damaged(&path, "invalid real size in GNU sparse header")),
        };
        // Entries are parsed before the data start is known (extension blocks come first), so
        // their physical offsets are fixed up afterwards.
        let mut b = ExtentBuilder::new(realsize);
        let mut ext = blk[482] != 0;
        parse_gnu_sparse_entries(&blk[386..482], &mut b);
        let mut eblk = [0u8; BLOCK];
        // Each extension block costs the input 512 bytes, so a hostile chain ends at EOF.
        while ext {
            match self.s.fill(&mut eblk) {
                Ok(BLOCK) => {}
                Ok(_) => {
                    m.path = path;
                    m.size = realsize;
                    return self.finish(m, Truncation::InData { present: 0, expected: stored });
                }
                Err(e) => return Err(self.io_failed(&path, e)),
            }
            parse_gnu_sparse_entries(&eblk[..504], &mut b);
            ext = eblk[504] != 0;
        }
        m.path = path;
        m.size = realsize;
        let data_start = self.s.pos;
        m.data = b.finish(data_start, stored);
        if let DataLoc::Bad { reason } = &m.data {
            let reason = reason.clone();
            self.listing.damaged = true;
            self.warn(&m.path, reason);
        }
        let t = self.skip_data(&m.path, stored, stored)?;
        self.finish(m, t)
    }

    /// Pax sparse formats 0.0/0.1 (map in the records) and 1.0 (map in the data).
    fn pax_sparse(&mut self, mut m: Member, stored: u64) -> Step<()> {
        let realsize = self.pending.pax.sparse_realsize.unwrap_or(stored);
        m.size = realsize;
        let mut b = ExtentBuilder::new(realsize);
        let mut data_start = self.s.pos;
        let mut consumed = 0;
        match self.pending.pax.sparse_format() {
            PaxSparse::InHeader => {
                for &(off, len) in self.pending.pax.sparse_map.as_deref().unwrap_or(&[]) {
                    b.push(off, len);
                }
            }
            _ => match self.read_sparse_map_1_0(&mut b, stored) {
                Ok(n) => {
                    consumed = n;
                    data_start += n;
                }
                Err(MapError::Truncated { present }) => {
                    return self.finish(m, Truncation::InData { present, expected: stored });
                }
                Err(MapError::Io(e)) => return Err(self.io_failed(&m.path, e)),
                Err(MapError::Bad { consumed: n, why }) => {
                    consumed = n;
                    b.error.get_or_insert(why);
                }
            },
        }
        m.data = b.finish(data_start, stored - consumed);
        if let DataLoc::Bad { reason } = &m.data {
            let reason = reason.clone();
            self.listing.damaged = true;
            self.warn(&m.path, reason);
        }
        let rest = stored - consumed;
        // Padding is relative to the whole stored data, and `consumed` is whole blocks.
        let t = self.skip_data(&m.path, rest, rest)?;
        self.finish(m, t)
    }

    /// Reads the decimal, newline-separated 1.0 sparse map from the start of the data, a block
    /// at a time; returns the bytes consumed (whole blocks).
    fn read_sparse_map_1_0(&mut self, b: &mut ExtentBuilder, stored: u64) -> Result<u64, MapError> {
        let mut blk = [0u8; BLOCK];
        let mut consumed = 0u64;
        let mut count: Option<u64> = None;
        let mut numbers_left = 1u64;
        let mut pending_offset: Option<u64> = None;
        let mut acc: Option<u64> = None;
        let mut line_start = true;
        let mut comment = false;
        while numbers_left > 0 {
            if consumed + BLOCK as u64 > stored {
                return Err(MapError::Bad { consumed, why: "sparse map runs past the member's data".into() });
            }
            let n = self.s.fill(&mut blk).map_err(MapError::Io)?;
            consumed += n as u64;
            if n < BLOCK {
                return Err(MapError::Truncated { present: consumed });
            }
            for &c in &blk {
                if numbers_left == 0 {
                    break;
                }
                // GNU tar writes "#!gnu-sparse-format" style comment lines; libarchive skips them.
                if comment || (line_start && c == b'#') {
                    comment = c != b'\n';
                    line_start = c == b'\n';
                    continue;
                }
                line_start = c == b'\n';
                match c {
                    b'0'..=b'9' => {
                        let v = acc.unwrap_or(0).checked_mul(10).and_then(|v| v.checked_add(u64::from(c - b'0')));
                        match v {
                            Some(v) => acc = Some(v),
                            None => {
                                return Err(MapError::Bad { consumed, why: "number overflow in sparse map".into() });
                            }
                        }
                    }
                    b'\n' => {
                        let Some(v) = acc.take() else {
                            return Err(MapError::Bad { consumed, why: "empty number in sparse map".into() });
                        };
                        numbers_left -= 1;
                        match count {
                            None => {
                                if v > MAX_EXTENTS as u64 {
                                    return Err(MapError::Bad {
                                        consumed,
                                        why: format!("{v} sparse extents is over the limit"),
                                    });
                                }
                                count = Some(v);
                                numbers_left = 2 * v;
                            }
                            Some(_) => match pending_offset.take() {
                                None => pending_offset = Some(v),
                                Some(off) => b.push(off, v),
                            },
                        }
                    }
                    _ => return Err(MapError::Bad { consumed, why: "unexpected byte in sparse map".into() }),
                }
            }
        }
        Ok(consumed)
    }
}

enum MapError {
    Truncated { present: u64 },
    Io(io::Error),
    Bad { consumed: u64, why: String },
}

/// How skipping a member's data ended.
enum Truncation {
    None,
    /// The stream ended in the padding after complete data.
    AfterData,
    /// The stream ended inside the data.
    InData {
        present: u64,
        expected: u64,
    },
}

/// Collects sparse extents, checking them as they come.
struct ExtentBuilder {
    realsize: u64,
    /// (logical, len) with len > 0; physical offsets are assigned in `finish`.
    extents: Vec<Extent>,
    prev_end: u64,
    stored_needed: u64,
    error: Option<String>,
}

impl ExtentBuilder {
    fn new(realsize: u64) -> Self {
        ExtentBuilder { realsize, extents: Vec::new(), prev_end: 0, stored_needed: 0, error: None }
    }

    fn push(&mut self, logical: u64, len: u64) {
        if self.error.is_some() {
            return;
        }
        let Some(end) = logical.checked_add(len) else {
            self.error = Some("sparse extent overflows".into());
            return;
        };
        if logical < self.prev_end {
            self.error = Some(format!("sparse extents out of order or overlapping at offset {logical}"));
        } else if end > self.realsize {
            self.error = Some(format!("sparse extent {logical}+{len} is past the real size {}", self.realsize));
        } else if self.extents.len() >= MAX_EXTENTS {
            self.error = Some(format!("more than {MAX_EXTENTS} sparse extents"));
        } else {
            self.prev_end = end;
            if len > 0 {
                self.extents.push(Extent { logical, offset: self.stored_needed, len });
                self.stored_needed += len;
            }
        }
    }

    /// Turns the map into the member's data location; `stored` is the data available for it.
    fn finish(self, data_start: u64, stored: u64) -> DataLoc {
        if let Some(reason) = self.error {
            return DataLoc::Bad { reason };
        }
        if self.stored_needed > stored {
            return DataLoc::Bad {
                reason: format!("sparse map needs {} bytes of data but only {stored} are stored", self.stored_needed),
            };
        }
        if self.realsize == 0 {
            return DataLoc::None;
        }
        let mut extents = self.extents;
        for e in &mut extents {
            e.offset += data_start;
        }
        DataLoc::Sparse { extents: extents.into_boxed_slice() }
    }
}

/// Parses 24-byte (offset, numbytes) entries of an old GNU sparse header; an empty entry ends
/// the list.
fn parse_gnu_sparse_entries(area: &[u8], b: &mut ExtentBuilder) {
    for e in area.chunks_exact(24) {
        if e[0] == 0 && e[12] == 0 {
            break;
        }
        match (parse_numeric(&e[..12]), parse_numeric(&e[12..])) {
            (Some(off), Some(len)) if off >= 0 && len >= 0 => b.push(off as u64, len as u64),
            _ => {
                b.error.get_or_insert_with(|| "unparsable GNU sparse entry".into());
            }
        }
    }
}

/// Parses pax records ("LEN KEY=VALUE\n"), storing the ones medfs uses into `attrs` (global
/// headers pass `None`: they are only validated).
fn parse_pax(mut data: &[u8], mut attrs: Option<&mut PaxAttrs>) -> Result<(), String> {
    let mut new_map = true;
    while !data.is_empty() {
        if data[0] == 0 && data.iter().all(|&b| b == 0) {
            // Some writers pad the record area with NULs.
            break;
        }
        let sp = data.iter().take(20).position(|&b| b == b' ').ok_or("record length not followed by a space")?;
        let len = parse_decimal(&data[..sp]).ok_or("bad record length")?;
        if len < 5 || len > data.len() as u64 || (len as usize) <= sp + 2 {
            return Err(format!("record length {len} is impossible"));
        }
        let len = len as usize;
        if data[len - 1] != b'\n' {
            return Err("record does not end with a newline".into());
        }
        let rec = &data[sp + 1..len - 1];
        data = &data[len..];
        let eq = rec.iter().position(|&b| b == b'=').ok_or("record without '='")?;
        let (key, value) = (&rec[..eq], &rec[eq + 1..]);
        if key.is_empty() || key.contains(&0) {
            return Err("empty key or NUL in key".into());
        }
        let Some(a) = attrs.as_deref_mut() else { continue };
        let text = || String::from_utf8_lossy(value).into_owned();
        let num = || parse_decimal(value).filter(|&v| v <= MAX_SIZE).ok_or_else(|| format!("bad number {:?}", text()));
        let name = |what: &str| {
            if value.contains(&0) {
                Err(format!("NUL in {what}"))
            } else {
                // An empty value means "no override" (POSIX: the record is deleted).
                Ok((!value.is_empty()).then(|| value.to_vec()))
            }
        };
        match key {
            b"path" => a.path = name("path")?,
            b"linkpath" => a.linkpath = name("linkpath")?,
            b"size" => a.size = Some(num()?),
            // Other readers ignore an unparsable mtime, and so can we: it is informational.
            b"mtime" => a.mtime = parse_pax_time(value).or(a.mtime),
            b"GNU.sparse.major" => a.sparse_major = Some(num()?),
            b"GNU.sparse.minor" => a.sparse_minor = Some(num()?),
            b"GNU.sparse.name" => a.sparse_name = name("GNU.sparse.name")?,
            b"GNU.sparse.size" | b"GNU.sparse.realsize" => a.sparse_realsize = Some(num()?),
            b"GNU.sparse.map" => {
                let mut pairs = Vec::new();
                let mut it = value.split(|&b| b == b',');
                if !value.is_empty() {
                    while let Some(o) = it.next() {
                        let l = it.next().ok_or("odd number of values in GNU.sparse.map")?;
                        let (o, l) = (parse_decimal(o), parse_decimal(l));
                        let (Some(o), Some(l)) = (o, l) else { return Err("bad number in GNU.sparse.map".into()) };
                        if pairs.len() >= MAX_EXTENTS {
                            return Err("too many sparse extents".into());
                        }
                        pairs.push((o, l));
                    }
                }
                a.sparse_map = Some(pairs);
            }
            b"GNU.sparse.offset" | b"GNU.sparse.numbytes" => {
                // Format 0.0 repeats these two keys, in order, once per extent.
                let v = parse_decimal(value).ok_or("bad number in GNU.sparse.offset/numbytes")?;
                if new_map {
                    a.sparse_map = Some(Vec::new());
                    new_map = false;
                }
                let map = a.sparse_map.get_or_insert_with(Vec::new);
                // u64::MAX marks an offset still waiting for its numbytes.
                let awaiting = map.last().is_some_and(|&(_, l)| l == u64::MAX);
                match (key == b"GNU.sparse.offset", awaiting) {
                    (true, false) if map.len() < MAX_EXTENTS => map.push((v, u64::MAX)),
                    (true, false) => return Err("too many sparse extents".into()),
                    (false, true) => map.last_mut().expect("awaiting implies an entry").1 = v,
                    _ => return Err("GNU.sparse.offset and numbytes out of order".into()),
                }
            }
            _ => {}
        }
    }
    if let Some(a) = attrs
        && let Some(map) = &a.sparse_map
        && map.last().is_some_and(|&(_, l)| l == u64::MAX)
    {
        return Err("GNU.sparse.offset without numbytes".into());
    }
    Ok(())
}

/// Parses a pax time ("1350244992.023960108", "-1.5") into whole seconds, truncating the
/// fraction.
fn parse_pax_time(v: &[u8]) -> Option<i64> {
    let (neg, v) = match v.first() {
        Some(b'-') => (true, &v[1..]),
        _ => (false, v),
    };
    let (int, frac) = match v.iter().position(|&b| b == b'.') {
        Some(dot) => (&v[..dot], &v[dot + 1..]),
        None => (v, &v[v.len()..]),
    };
    let digits = |d: &[u8]| d.iter().all(u8::is_ascii_digit);
    if !digits(int) || !digits(frac) || (int.is_empty() && frac.is_empty()) {
        return None;
    }
    // Absurd times are clamped rather than rejected: the file is still readable.
    let secs = if int.is_empty() { 0 } else { parse_decimal(int).map_or(i64::MAX, |s| s.min(i64::MAX as u64) as i64) };
    Some(if neg { -secs } else { secs })
}

fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let mut x: u64 = 0;
    for &c in v {
        if !c.is_ascii_digit() {
            return None;
        }
        x = x.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(x)
}

/// Longest file taken for an empty tar: one record of the default blocking factor (20 blocks).
const EMPTY_TAR_MAX: u64 = 20 * BLOCK as u64;

/// Bytes of zero padding after `size` bytes of data.
fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// A NUL-terminated header string.
fn field_str(f: &[u8]) -> &[u8] {
    match f.iter().position(|&b| b == 0) {
        Some(n) => &f[..n],
        None => f,
    }
}

/// A numeric header field: octal text, or GNU base-256 when the high bit of the first byte is
/// set. `None` when unparsable or out of range.
fn parse_numeric(f: &[u8]) -> Option<i64> {
    if f.first().is_some_and(|&b| b & 0x80 != 0) {
        // Two's complement, big-endian, in the bits after the marker bit.
        let inv = if f[0] & 0x40 != 0 { 0xff } else { 0 };
        let mut x: u64 = 0;
        for (i, &c) in f.iter().enumerate() {
            let mut c = c ^ inv;
            if i == 0 {
                c &= 0x7f;
            }
            if x >> 56 != 0 {
                return None;
            }
            x = (x << 8) | u64::from(c);
        }
        if x >> 63 != 0 {
            return None;
        }
        return Some(if inv == 0xff { !(x as i64) } else { x as i64 });
    }
    parse_octal(f).map(|v| v as i64)
}

/// Octal text, space-padded on either side and ended by a NUL. A leading NUL makes the field
/// empty (0), as in Python and libarchive (Go skips leading NULs instead).
fn parse_octal(f: &[u8]) -> Option<u64> {
    let f = field_str(f);
    let start = f.iter().position(|&b| b != b' ').unwrap_or(f.len());
    let end = f.iter().rposition(|&b| b != b' ').map_or(start, |p| p + 1);
    let f = &f[start..end];
    let mut x: u64 = 0;
    for &c in f {
        if !(b'0'..=b'7').contains(&c) {
            return None;
        }
        x = x.checked_mul(8)?.checked_add(u64::from(c - b'0'))?;
    }
    (x <= i64::MAX as u64).then_some(x)
}

/// Verifies the header checksum, accepting both the unsigned sum (POSIX) and the signed one
/// (old Sun and other writers that summed `char`s).
fn checksum_ok(blk: &[u8]) -> bool {
    let Some(stored) = parse_octal(&blk[148..156]) else { return false };
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in blk[..BLOCK].iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    stored == unsigned || stored as i64 == signed
}

/// The tar format: members are read at their offsets in the file.
pub struct Tar;

/// Tar's index tag.
const TAG: u8 = 1;

impl Format for Tar {
    fn name(&self) -> &'static str {
        "tar"
    }

    fn owns(&self, tag: u8) -> bool {
        tag == TAG
    }

    fn detect(&self, probe: &Probe<'_>) -> io::Result<Detection> {
        let head = probe.head;
        if head.len() == BLOCK && looks_like_tar(head) {
            return Ok(Detection::Yes(TAG));
        }
        // An empty tar is nothing but zero blocks: two of them end the archive, padded to at
        // most one record (20 blocks, the writers' default blocking factor). That is weak
        // evidence (any format may start with zeros), so a zip's end record wins over it, and
        // only a file that is zeros to its end, and no longer than a record, is one: a raw
        // volume (`.raw`, Analyze `.img`) starts with zeros too and was shown as an empty folder.
        if head.len() == BLOCK
            && probe.file.len() >= 2 * BLOCK as u64
            && probe.file.len() <= EMPTY_TAR_MAX
            && probe.file.len().is_multiple_of(BLOCK as u64)
            && head.iter().all(|&b| b == 0)
        {
            let mut rest = vec![0u8; probe.file.len() as usize - BLOCK];
            if read_up_to(probe.file, BLOCK as u64, &mut rest)? == rest.len() && rest.iter().all(|&b| b == 0) {
                return Ok(Detection::Weak(TAG));
            }
        }
        Ok(Detection::No)
    }

    fn list(&self, _: u8, file: &Arc<dyn ByteSource>, ctx: &ListCtx<'_>) -> Result<Opened, FormatError> {
        let listing = list_source(&**file, ctx.display)?;
        Ok(Opened { listing, data: Box::new(InStream(file.clone())), saved: Default::default() })
    }

    fn reopen(
        &self,
        _: u8,
        file: &Arc<dyn ByteSource>,
        _: &[Member],
        _: &[u8],
        _: WindowSource,
        _: &ListCtx<'_>,
    ) -> Result<Box<dyn OpenArchive>, String> {
        Ok(Box::new(InStream(file.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_record_of_zeros_is_an_empty_tar_not_a_file_that_starts_with_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let detect = |bytes: &[u8]| {
            let path = dir.path().join("f");
            std::fs::write(&path, bytes).unwrap();
            let file = crate::archive::FileSource::open(&path).unwrap();
            let head = &bytes[..bytes.len().min(BLOCK)];
            Tar.detect(&Probe { file: &file, head, name: None }).unwrap()
        };
        assert!(matches!(detect(&[0u8; 2 * BLOCK]), Detection::Weak(TAG)));
        assert!(matches!(detect(&[0u8; 20 * BLOCK]), Detection::Weak(TAG)));
        // A raw volume whose first voxels are zero, of a size a tar could have.
        let mut volume = vec![0u8; 64 * BLOCK];
        volume[40 * BLOCK] = 7;
        assert!(matches!(detect(&volume), Detection::No));
        let mut short = vec![0u8; 4 * BLOCK];
        short[3 * BLOCK + 1] = 1;
        assert!(matches!(detect(&short), Detection::No));
        // Zeros to the end but longer than a record: no writer pads an empty tar so far.
        assert!(matches!(detect(&[0u8; 21 * BLOCK]), Detection::No));
    }

    /// A ustar header with `name`, `typ` and `size`, then `edit` applied, then the checksum.
    fn header(name: &[u8], typ: u8, size: u64, edit: impl FnOnce(&mut [u8; BLOCK])) -> [u8; BLOCK] {
        let mut h = [0u8; BLOCK];
        h[..name.len()].copy_from_slice(name);
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0001750\0");
        h[116..124].copy_from_slice(b"0001750\0");
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h[136..148].copy_from_slice(b"14712034017\0");
        h[156] = typ;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        edit(&mut h);
        set_checksum(&mut h);
        h
    }

    fn set_checksum(h: &mut [u8; BLOCK]) {
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    }

    /// Header plus data padded to a block.
    fn entry(name: &[u8], typ: u8, data: &[u8]) -> Vec<u8> {
        entry_with(name, typ, data, |_| {})
    }

    fn entry_with(name: &[u8], typ: u8, data: &[u8], edit: impl FnOnce(&mut [u8; BLOCK])) -> Vec<u8> {
        let mut v = header(name, typ, data.len() as u64, edit).to_vec();
        v.extend_from_slice(data);
        v.resize(v.len() + padding(data.len() as u64) as usize, 0);
        v
    }

    fn pax_records(recs: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in recs {
            let body = k.len() + v.len() + 3;
            let mut len = body + 1;
            while format!("{len}").len() + body != len {
                len += 1;
            }
            out.extend_from_slice(format!("{len} {k}=").as_bytes());
            out.extend_from_slice(v);
            out.push(b'\n');
        }
        out
    }

    fn end() -> Vec<u8> {
        vec![0; 2 * BLOCK]
    }

    fn list_bytes(b: &[u8]) -> Result<Listing, FormatError> {
        list(&mut &b[..], "test.tar")
    }

    fn raw_offset(m: &Member) -> u64 {
        match m.data {
            DataLoc::Raw { offset } => offset,
            ref d => panic!("expected raw data, got {d:?}"),
        }
    }

    #[test]
    fn plain_file_and_dir() {
        let mut t = entry(b"dir/", b'5', b"");
        t.extend(entry(b"dir/a.dcm", b'0', b"hello"));
        t.extend(end());
        let l = list_bytes(&t).unwrap();
        assert!(!l.damaged && l.warnings.is_empty());
        assert_eq!(l.members.len(), 2);
        assert_eq!(l.members[0].kind, MemberKind::Dir);
        assert_eq!(l.members[1].path, b"dir/a.dcm");
        assert_eq!(l.members[1].size, 5);
        assert_eq!(l.members[1].mode, 0o644);
        assert_eq!(l.members[1].mtime, 0o14712034017);
        let off = raw_offset(&l.members[1]) as usize;
        assert_eq!(&t[off..off + 5], b"hello");
    }

    #[test]
    fn ustar_prefix_applies_but_not_to_gnu_headers() {
        let mut t = entry_with(b"file.dcm", b'0', b"x", |h| h[345..351].copy_from_slice(b"a/b/cc"));
        // GNU headers store atime there: must not become a directory.
        t.extend(entry_with(b"gnu.dcm", b'0', b"y", |h| {
            h[257..265].copy_from_slice(b"ustar  \0");
            h[345..356].copy_from_slice(b"14130612002");
        }));
        t.extend(end());
        let l = list_bytes(&t).unwrap();
        assert_eq!(l.members[0].path, b"a/b/cc/file.dcm");
        assert_eq!(l.members[1].path, b"gnu.dcm");
    }

    #[test]
    fn gnu_long_name_and_link() {
        let long = "d/".repeat(120) + "file";
        let mut t = entry(b"././@LongLink", b'L', format!("{long}\0").as_bytes());
        t.extend(entry(b"truncated-name", b'0', b"data"));
        t.extend(entry(b"././@LongLink", b'K', long.as_bytes()));
        t.extend(entry(b"ln", b'2', b""));
        t.extend(end());
        let l = list_bytes(&t).unwrap();
        assert_eq!(l.members[0].path, long.as_bytes());
        assert_eq!(l.members[0].size, 4);
        assert_eq!(l.members[1].kind, MemberKind::Symlink { target: long.into_bytes() });
    }

    #[test]
    fn pax_path_size_and_mtime() {
        let recs = pax_records(&[
            ("path", b"long/pax/name.dcm"),
            ("size", b"3"),
            ("mtime", b"-1.75"),
            ("SCHILY.xattr.x", b"\0v"),
        ]);
        let mut t = entry(b"PaxHeaders/x", b'x', &recs);
        // The header size field is wrong on purpose: pax wins.
        t.extend(header(b"short", b'0', 0, |_| {}));
        t.extend_from_slice(b"abc");
        t.resize(t.len() + 509, 0);
        t.extend(end());
        let l = list_bytes(&t).unwrap();
        assert!(!l.damaged, "{:?}", l.warnings);
        let m = &l.members[0];
        assert_eq!(m.path, b"long/pax/name.dcm");
        assert_eq!(m.size, 3);
        assert_eq!(m.mtime, -1);
        let off = raw_offset(m) as usize;
        assert_eq!(&t[off..off + 3], b"abc");
    }

    #[test]
    fn pax_global_header_is_not_a_file() {
        let mut t = entry(b"global", b'g', &pax_records(&[("path", b"nope")]));
        t.extend(entry(b"f", b'0', b""));
        t.extend(end());
        let l = list_bytes(&t).unwrap();
        assert_eq!(l.members.len(), 1);
        assert_eq!(l.members[0].path, b"f");
        assert!(matches!(l.members[0].data, DataLoc::None));
    }

    #[test]
    fn hardlinks_share_the_latest_earlier_target() {
        let mut t = entry(b"./a", b'0', b"old");
        t.extend(entry(b"a", b'0', b"newer"));
        t.extend(entry_with(b"b", b'1', b"", |h| h[157..160].copy_from_slice(b"a/.")));
        t.extend(entry_with(b"self", b'1', b"", |h| h[157..161].copy_from_slice(b"self")));
        t.extend(end());
        let l = list_bytes(&t).unwrap();
        let b = &l.members[2];
        assert_eq!(b.kind, MemberKind::File);
        assert_eq!(b.size, 5);
        assert_eq!(raw_offset(b), raw_offset(&l.members[1]));
        assert!(matches!(l.members[3].data, DataLoc::Bad { .. }));
        assert_eq!(l.warnings.len(), 1);
        assert!(l.warnings[0].contains("self"), "{:?}", l.warnings);
        assert!(!l.damaged);
    }

    #[test]
    fn symlink_target_verbatim_and_devices_skipped() {
        let mut t = entry_with(b"s", b'2', b"", |h| h[157..167].copy_from_slice(b"../../etc/"));
        t.extend(entry(b"null", b'3', b""));
        t.extend(entry(b"fifo", b'6', b""));
        t.extend(end());
        let l = list_bytes(&t).unwrap();
        assert_eq!(l.members.len(), 1);
        assert_eq!(l.members[0].kind, MemberKind::Symlink { target: b"../../etc/".to_vec() });
    }

    #[test]
    fn truncated_data_is_damage_with_partial_listing() {
        let mut t = entry(b"ok", b'0', b"fine");
        t.extend(entry(b"cut.dcm", b'0', &[7u8; 2000]));
        t.truncate(BLOCK * 2 + BLOCK + 1000);
        let l = list_bytes(&t).unwrap();
        assert!(l.damaged);
        assert_eq!(l.members.len(), 2);
        assert!(matches!(l.members[0].data, DataLoc::Raw { .. }));
        assert!(matches!(l.members[1].data, DataLoc::Bad { .. }));
        assert!(l.warnings[0].contains("test.tar") && l.warnings[0].contains("cut.dcm"), "{:?}", l.warnings);
    }

    #[test]
    fn eof_after_data_without_end_marker_is_fine() {
        let mut t = entry(b"a", b'0', b"abc");
        t.truncate(BLOCK + 3);
        let l = list_bytes(&t).unwrap();
        assert!(!l.damaged);
        assert_eq!(l.members.len(), 1);
    }

    #[test]
    fn bad_checksum() {
        let mut t = entry(b"a", b'0', b"abc");
        t[0] = b'b';
        assert!(matches!(list_bytes(&t), Err(FormatError::NotThisFormat("tar"))));
        assert!(!looks_like_tar(&t));
        // Mid-archive: damage, keep what came before.
        let mut t = entry(b"a", b'0', b"abc");
        let mut second = entry(b"b", b'0', b"def");
        second[0] = b'c';
        t.extend(second);
        let l = list_bytes(&t).unwrap();
        assert!(l.damaged);
        assert_eq!(l.members.len(), 1);
        assert!(l.warnings[0].contains("checksum"));
    }

    #[test]
    fn signed_checksum_and_v7_detection() {
        let mut h = header(b"v7file", b'0', 0, |h| {
            h[257..265].fill(0);
            h[200] = 0xe9;
        });
        let signed: i64 =
            h.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { i64::from(b as i8) }).sum();
        h[148..156].copy_from_slice(format!("{signed:06o}\0 ").as_bytes());
        assert!(looks_like_tar(&h));
        let mut t = h.to_vec();
        t.extend(end());
        assert_eq!(list_bytes(&t).unwrap().members.len(), 1);
        assert!(!looks_like_tar(&[0u8; BLOCK]));
        assert!(!looks_like_tar(b"short"));
    }

    #[test]
    fn negative_size_first_is_corrupt() {
        let t = header(b"neg", b'0', 0, |h| {
            h[124] = 0xff;
            h[125..136].fill(0xff);
        });
        assert!(matches!(list_bytes(&t), Err(FormatError::Corrupt(_))));
    }

    #[test]
    fn base256_size() {
        let mut t = header(b"big", b'0', 0, |h| {
            h[124..136].fill(0);
            h[124] = 0x80;
            h[135] = 3;
        })
        .to_vec();
        t.extend_from_slice(b"xyz");
        t.resize(2 * BLOCK, 0);
        t.extend(end());
        assert_eq!(list_bytes(&t).unwrap().members[0].size, 3);
    }

    #[test]
    fn zero_length_pax_record_does_not_loop() {
        // CPython's recursion.tar: a record whose length field is 0.
        let t = entry(b"g", b'x', b"0 X=30 00000=0\n");
        assert!(matches!(list_bytes(&t), Err(FormatError::Corrupt(_))));
        let mut t = entry(b"ok", b'0', b"");
        t.extend(entry(b"g", b'x', b"0 X=30 00000=0\n"));
        t.extend(entry(b"after", b'0', b""));
        let l = list_bytes(&t).unwrap();
        assert!(l.damaged);
        assert_eq!(l.members.len(), 1);
    }

    #[test]
    fn oversized_extended_headers_are_refused_without_allocating() {
        let t = header(b"huge", b'x', 1 << 32, |_| {});
        assert!(matches!(list_bytes(&t), Err(FormatError::Corrupt(_))));
        let t = header(b"huge", b'L', 1 << 20, |_| {});
        assert!(matches!(list_bytes(&t), Err(FormatError::Corrupt(_))));
    }

    #[test]
    fn pax_nul_in_path_is_rejected() {
        let mut t = entry(b"p", b'x', &pax_records(&[("path", b"a\0b")]));
        t.extend(entry(b"f", b'0', b""));
        assert!(matches!(list_bytes(&t), Err(FormatError::Corrupt(_))));
    }

    #[test]
    fn pax_sparse_1_0() {
        let recs = pax_records(&[
            ("GNU.sparse.major", b"1"),
            ("GNU.sparse.minor", b"0"),
            ("GNU.sparse.name", b"real.img"),
            ("GNU.sparse.realsize", b"10000"),
        ]);
        let mut data = b"2\n100\n3\n9000\n2\n".to_vec();
        data.resize(BLOCK, 0);
        data.extend_from_slice(b"abcde");
        let mut t = entry(b"p", b'x', &recs);
        let data_block = t.len() + 2 * BLOCK;
        t.extend(entry(b"GNUSparseFile.0/real.img", b'0', &data));
        t.extend(end());
        let l = list_bytes(&t).unwrap();
        assert!(!l.damaged, "{:?}", l.warnings);
        let m = &l.members[0];
        assert_eq!(m.path, b"real.img");
        assert_eq!(m.size, 10000);
        let DataLoc::Sparse { extents } = &m.data else { panic!("{:?}", m.data) };
        let d = data_block as u64;
        assert_eq!(
            &extents[..],
            &[Extent { logical: 100, offset: d, len: 3 }, Extent { logical: 9000, offset: d + 3, len: 2 }]
        );
    }

    #[test]
    fn hard_links_cannot_multiply_a_sparse_map() {
        // One sparse file of 200k extents (1.0 map in its data), then many hard links to it:
        // the links share the cap on copied extents, the ones past it are unreadable.
        let n = 200_000u64;
        let realsize = (2 * n).to_string();
        let recs = pax_records(&[
            ("GNU.sparse.major", b"1"),
            ("GNU.sparse.minor", b"0"),
            ("GNU.sparse.name", b"s.img"),
            ("GNU.sparse.realsize", realsize.as_bytes()),
        ]);
        let mut data = format!("{n}\n").into_bytes();
        for i in 0..n {
            data.extend_from_slice(format!("{}\n1\n", 2 * i).as_bytes());
        }
        data.resize(data.len() + padding(data.len() as u64) as usize, 0);
        data.extend(std::iter::repeat_n(b'x', n as usize));
        let mut t = entry(b"p", b'x', &recs);
        t.extend(entry(b"GNUSparseFile.0/s.img", b'0', &data));
        let links = 2 * MAX_LINKED_EXTENTS as u64 / n;
        for i in 0..links {
            t.extend(header(format!("l{i}").as_bytes(), b'1', 0, |h| h[157..162].copy_from_slice(b"s.img")));
        }
        t.extend(end());
        let l = list_bytes(&t).unwrap();
        assert_eq!(l.members.len() as u64, 1 + links);
        let copied: usize = l.members[1..]
            .iter()
            .map(|m| match &m.data {
                DataLoc::Sparse { extents } => extents.len(),
                _ => 0,
            })
            .sum();
        assert!(copied <= MAX_LINKED_EXTENTS, "{copied} extents copied");
        assert!(matches!(l.members.last().unwrap().data, DataLoc::Bad { .. }));
        assert!(matches!(l.members[1].data, DataLoc::Sparse { .. }));
    }

    #[test]
    fn pax_sparse_0_0_pairs_in_order() {
        let recs = pax_records(&[
            ("GNU.sparse.size", b"100"),
            ("GNU.sparse.numblocks", b"2"),
            ("GNU.sparse.offset", b"10"),
            ("GNU.sparse.numbytes", b"2"),
            ("GNU.sparse.offset", b"90"),
            ("GNU.sparse.numbytes", b"1"),
        ]);
        let mut t = entry(b"p", b'x', &recs);
        t.extend(entry(b"s", b'0', b"abc"));
        t.extend(end());
        let l = list_bytes(&t).unwrap();
        let DataLoc::Sparse { extents } = &l.members[0].data else { panic!("{:?}", l.members[0].data) };
        assert_eq!(extents.iter().map(|e| (e.logical, e.len)).collect::<Vec<_>>(), [(10, 2), (90, 1)]);
        assert_eq!(l.members[0].size, 100);
        // numbytes before offset is malformed.
        let recs = pax_records(&[("GNU.sparse.numbytes", b"2"), ("GNU.sparse.offset", b"10")]);
        let mut t = entry(b"p", b'x', &recs);
        t.extend(entry(b"s", b'0', b"abc"));
        assert!(matches!(list_bytes(&t), Err(FormatError::Corrupt(_))));
    }

    #[test]
    fn sparse_map_out_of_order_is_bad() {
        let recs = pax_records(&[("GNU.sparse.size", b"100"), ("GNU.sparse.map", b"50,1,10,1")]);
        let mut t = entry(b"p", b'x', &recs);
        t.extend(entry(b"s", b'0', b"ab"));
        t.extend(end());
        let l = list_bytes(&t).unwrap();
        assert!(matches!(l.members[0].data, DataLoc::Bad { .. }));
        assert!(l.damaged);
    }

    #[test]
    fn old_gnu_sparse_with_extension_block() {
        // 5 extents: 4 in the header, 1 in an extension block.
        let mut h = header(b"sp", b'S', 5, |h| {
            h[257..265].copy_from_slice(b"ustar  \0");
            for i in 0..4 {
                let e = 386 + 24 * i;
                h[e..e + 12].copy_from_slice(format!("{:011o}\0", i * 100).as_bytes());
                h[e + 12..e + 24].copy_from_slice(b"00000000001\0");
            }
            h[482] = 1;
            h[483..495].copy_from_slice(format!("{:011o}\0", 1000).as_bytes());
        })
        .to_vec();
        let mut ext = [0u8; BLOCK];
        ext[..12].copy_from_slice(format!("{:011o}\0", 999).as_bytes());
        ext[12..24].copy_from_slice(b"00000000001\0");
        h.extend_from_slice(&ext);
        h.extend_from_slice(b"abcde");
        h.resize(3 * BLOCK, 0);
        h.extend(end());
        let l = list_bytes(&h).unwrap();
        assert!(!l.damaged, "{:?}", l.warnings);
        let m = &l.members[0];
        assert_eq!(m.size, 1000);
        let DataLoc::Sparse { extents } = &m.data else { panic!() };
        assert_eq!(extents.len(), 5);
        assert_eq!(extents[4], Extent { logical: 999, offset: 2 * BLOCK as u64 + 4, len: 1 });
    }

    #[test]
    fn regular_entry_with_trailing_slash_is_a_dir_and_label_is_skipped() {
        let mut t = entry(b"label", b'V', b"");
        t.extend(entry(b"olddir/", 0, b""));
        t.extend(end());
        let l = list_bytes(&t).unwrap();
        assert_eq!(l.members.len(), 1);
        assert_eq!(l.members[0].kind, MemberKind::Dir);
    }

    #[test]
    fn short_reads_are_handled() {
        struct Dribble<'a>(&'a [u8]);
        impl Read for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(7);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut t = entry(b"a", b'x', &pax_records(&[("path", b"pax-name")]));
        t.extend(entry(b"b", b'0', &[1u8; 3000]));
        t.extend(end());
        let l = list(&mut Dribble(&t), "t").unwrap();
        assert_eq!(l.members[0].path, b"pax-name");
        assert_eq!(raw_offset(&l.members[0]), 3 * BLOCK as u64);
    }
}
