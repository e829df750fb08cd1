//! Zip archives: lists members from the central directory and decodes member data (stored,
//! deflate, deflate64, LZMA), checking sizes and CRC-32.
//!
//! Listing never touches the local headers (one large read of the central directory, so a
//! 100k-member archive lists in milliseconds); a member's local header is only resolved when it is
//! opened. Decoding is streaming: nothing here buffers a whole member, so a "zip bomb" costs CPU
//! time proportional to what the caller asks for, never memory. Capping how much decoded data is
//! kept (the block cache) is the caller's job. Listing refuses (marks unreadable) members whose
//! declared size no method could produce from their compressed size, and members whose data
//! overlaps another's (see `ratio_problem` and `refuse_overlaps`).
//!
//! Compatibility choices, each following a peer reader where they disagree:
//! - End-of-central-directory search follows Go's `archive/zip`: the *last* EOCD signature in the
//!   final 64 KiB + 22 bytes is authoritative, and a comment that runs past the end of the file is
//!   an error (an earlier EOCD hidden before it is never used: that is how "hidden archive"
//!   ambiguities are refused).
//! - Prepended data (self-extracting stubs): the offset shift is the difference between where the
//!   central directory actually ends (at the EOCD or zip64 EOCD record) and where
//!   `offset + size` claims it ends; like Go, a shift is ignored when the unshifted offset already
//!   points at a central-directory header (the recorded size is then what is wrong).
//! - Central-directory entries are read by count (the recorded directory size is only a hint).
//! - Names: the UTF-8 flag, or a matching Info-ZIP Unicode Path field (0x7075), means UTF-8;
//!   otherwise bytes that are valid UTF-8 are kept as-is (Info-ZIP on Linux writes UTF-8 without
//!   the flag) and anything else is decoded as CP437, the APPNOTE default. Backslashes are kept.

use std::io::{self, BufReader, Read};
use std::sync::Arc;

use super::{ByteSource, DataLoc, FormatError, Listing, Member, MemberKind, ZipData};

mod read;
pub use read::{Zip, ZipArchive};

const EOCD_SIG: u32 = 0x0605_4b50;
const EOCD_LEN: usize = 22;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_LOCATOR_LEN: u64 = 20;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const ZIP64_EOCD_LEN: usize = 56;
const CDH_SIG: u32 = 0x0201_4b50;
const CDH_LEN: usize = 46;
const LFH_SIG: u32 = 0x0403_4b50;
const LFH_LEN: usize = 30;
/// The EOCD is at most this far from the end: the record plus a maximal comment.
const EOCD_SEARCH: u64 = EOCD_LEN as u64 + 0xFFFF;

/// Symlink targets are decoded during listing; longer "targets" are not plausible links.
const MAX_SYMLINK_TARGET: u64 = 4096;
/// LZMA dictionaries beyond this are refused rather than allocated (the dictionary is also never
/// larger than the member itself). 7-Zip's largest preset uses 64 MiB.
const MAX_LZMA_DICT: u64 = 1 << 30;
/// Input buffer for compressed members: large enough that a deflate stream costs few preads.
pub(crate) const INPUT_BUF: usize = 64 << 10;
/// Zip bomb caps, judged from the directory alone. A member declaring more bytes than its method
/// can physically produce from its compressed size is a bomb or a lying directory: it is listed
/// as unreadable (EIO with this reason) instead of being decoded until the lie shows.
/// Deflate: a 258-byte match costs at least 2 bits, so 1032:1 is the ceiling.
const MAX_RATIO_DEFLATE: u64 = 1032;
/// Deflate64: a 65538-byte match costs at least 18 bits (29127:1); rounded up.
const MAX_RATIO_DEFLATE64: u64 = 1 << 15;
/// LZMA: a 273-byte rep match costs 14 binary decisions of at least 0.022 bits each (11-bit
/// probabilities never pass 2017/2048), so about 7100:1; twice that for margin.
const MAX_RATIO_LZMA: u64 = 1 << 14;
/// What every ratio allows on top, so tiny members (headers, end markers) are never judged.
const RATIO_SLACK: u64 = 64 << 10;
/// Overlapping members (several directory entries over the same compressed bytes) are how
/// non-recursive zip bombs multiply one stream thousands of times; like CPython's zipfile, the
/// later entries are refused.
const OVERLAP_REASON: &str = "its data overlaps another member's (a zip bomb pattern)";

const FLAG_ENCRYPTED: u16 = 1 << 0;
const FLAG_STRONG_ENCRYPTION: u16 = 1 << 6;
const FLAG_UTF8: u16 = 1 << 11;

const METHOD_STORED: u16 = 0;
const METHOD_DEFLATE: u16 = 8;
const METHOD_DEFLATE64: u16 = 9;
const METHOD_LZMA: u16 = 14;
const METHOD_AES: u16 = 99;

const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;
const S_IFLNK: u32 = 0o120000;
const DOS_DIR_ATTR: u32 = 0x10;

#[inline]
fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}
#[inline]
fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}
#[inline]
fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().unwrap())
}

/// Content check: true if the source looks like a zip (EOCD found near the end, or a local header
/// at 0). Cheap: reads 4 bytes at the start and at most the last 64 KiB + 22 bytes.
pub fn looks_like_zip(src: &dyn ByteSource) -> bool {
    let mut head = [0u8; 4];
    if src.read_exact_at(0, &mut head).is_ok() {
        let sig = u32::from_le_bytes(head);
        // A local header, or the EOCD of an empty archive.
        if sig == LFH_SIG || sig == EOCD_SIG {
            return true;
        }
    }
    matches!(find_eocd(src), Ok(Some(_)))
}

/// Where the end-of-central-directory record is, with the tail it was found in.
struct Eocd {
    /// Absolute offset of the record.
    pos: u64,
    /// The 22 bytes of the record.
    rec: [u8; EOCD_LEN],
}

/// Finds the last EOCD signature in the final 64 KiB + 22 bytes. `Ok(None)`: no signature;
/// `Err`: the last signature's comment runs past the end of the file (Go refuses such archives
/// because an earlier, different EOCD may hide before it; we do too).
fn find_eocd(src: &dyn ByteSource) -> Result<Option<Eocd>, FormatError> {
    let len = src.len();
    if len < EOCD_LEN as u64 {
        return Ok(None);
    }
    let tail_len = len.min(EOCD_SEARCH);
    let tail_start = len - tail_len;
    let mut tail = vec![0u8; tail_len as usize];
    src.read_exact_at(tail_start, &mut tail)?;
    let mut i = tail.len() - EOCD_LEN;
    loop {
        if tail[i] == b'P' && u32_at(&tail, i) == EOCD_SIG {
            let comment_len = u16_at(&tail, i + 20) as usize;
            if i + EOCD_LEN + comment_len > tail.len() {
                return Err(FormatError::Corrupt(format!(
                    "{}: the end-of-central-directory comment runs past the end of the file",
                    src.describe()
                )));
            }
            let mut rec = [0u8; EOCD_LEN];
            rec.copy_from_slice(&tail[i..i + EOCD_LEN]);
            return Ok(Some(Eocd { pos: tail_start + i as u64, rec }));
        }
        if i == 0 {
            return Ok(None);
        }
        i -= 1;
    }
}

/// The directory as the end records describe it.
struct DirInfo {
    /// Entry count.
    entries: u64,
    /// Recorded directory size (a hint: entries are read by count).
    size: u64,
    /// Recorded directory offset (before the prepended-data shift).
    offset: u64,
    /// Where the directory must end: the zip64 EOCD record, or the EOCD.
    end: u64,
    /// True when the zip64 records were used (entry counts are then exact).
    zip64: bool,
}

fn read_sig(src: &dyn ByteSource, at: u64) -> Option<u32> {
    let mut b = [0u8; 4];
    src.read_exact_at(at, &mut b).ok()?;
    Some(u32::from_le_bytes(b))
}

/// Reads the end records: the EOCD and, when a locator precedes it, the zip64 EOCD record.
fn dir_info(src: &dyn ByteSource, eocd: &Eocd, warnings: &mut Vec<String>) -> Result<DirInfo, FormatError> {
    let r = &eocd.rec;
    let disk = u16_at(r, 4);
    let cd_disk = u16_at(r, 6);
    let entries = u16_at(r, 10) as u64;
    let size = u32_at(r, 12) as u64;
    let offset = u32_at(r, 16) as u64;
    let saturated = entries == 0xFFFF || size == 0xFFFF_FFFF || offset == 0xFFFF_FFFF;

    if eocd.pos >= ZIP64_LOCATOR_LEN {
        let loc_pos = eocd.pos - ZIP64_LOCATOR_LEN;
        let mut loc = [0u8; ZIP64_LOCATOR_LEN as usize];
        src.read_exact_at(loc_pos, &mut loc)?;
        if u32_at(&loc, 0) == ZIP64_LOCATOR_SIG {
            let claimed = u64_at(&loc, 8);
            // The record normally sits right before the locator; with prepended data the
            // recorded offset is off by the prefix length, so try the natural spot too.
            let natural = loc_pos.checked_sub(ZIP64_EOCD_LEN as u64);
            let found = [Some(claimed), natural]
                .into_iter()
                .flatten()
                .find(|&at| at < loc_pos && read_sig(src, at) == Some(ZIP64_EOCD_SIG));
            match found {
                Some(at) => {
                    let mut rec = [0u8; ZIP64_EOCD_LEN];
                    src.read_exact_at(at, &mut rec)?;
                    return Ok(DirInfo {
                        entries: u64_at(&rec, 32),
                        size: u64_at(&rec, 40),
                        offset: u64_at(&rec, 48),
                        end: at,
                        zip64: true,
                    });
                }
                None if saturated => {
                    return Err(FormatError::Corrupt(format!(
                        "{}: zip64 end-of-central-directory record not found",
                        src.describe()
                    )));
                }
                None => warnings.push(format!(
                    "{}: zip64 locator points to no zip64 record; using the classic end record",
                    src.describe()
                )),
            }
        }
    }
    if disk != 0 || cd_disk != 0 {
        warnings.push(format!(
            "{}: end record names disk {disk} (directory on disk {cd_disk}); multi-disk archives are read as one file",
            src.describe()
        ));
    }
    Ok(DirInfo { entries, size, offset, end: eocd.pos, zip64: false })
}

/// Lists a zip from its central directory (found via the end-of-central-directory record, zip64
/// locator/record when present). Reads the central directory with one large `read_at`; symlink
/// targets (small) are decoded here, everything else is only located.
///
/// Errors: `NotThisFormat` when there is neither an EOCD nor a local header at 0, `Corrupt` when
/// the end records or the start of the directory are unusable. A directory that goes bad part way
/// gives the members before the bad record, `damaged = true` and a warning.
pub fn list(src: &dyn ByteSource) -> Result<Listing, FormatError> {
    let name = src.describe();
    let eocd = match find_eocd(src)? {
        Some(e) => e,
        None => {
            return if read_sig(src, 0) == Some(LFH_SIG) {
                Err(FormatError::Corrupt(format!("{name}: no end-of-central-directory record")))
            } else {
                Err(FormatError::NotThisFormat("zip"))
            };
        }
    };
    let mut listing = Listing::default();
    let info = dir_info(src, &eocd, &mut listing.warnings)?;
    if info.entries == 0 {
        return Ok(listing);
    }

    // Prepended data: the directory ends at `info.end` but claims to end at offset + size.
    let claimed_end = info.offset as i128 + info.size as i128;
    let shift = info.end as i128 - claimed_end;
    let at_claimed = info.offset < info.end && read_sig(src, info.offset) == Some(CDH_SIG);
    let base: u64 = if shift > 0 && !at_claimed {
        let shifted = info.offset as i128 + shift;
        if shifted < info.end as i128 && read_sig(src, shifted as u64) == Some(CDH_SIG) {
            shift as u64
        } else {
            return Err(FormatError::Corrupt(format!("{name}: central directory not found")));
        }
    } else if at_claimed {
        0
    } else {
        return Err(FormatError::Corrupt(format!("{name}: central directory not found at offset {}", info.offset)));
    };
    if base > 0 {
        listing.warnings.push(format!("{name}: {base} bytes of data precede the zip (offsets adjusted)"));
    }
    let cd_start = info.offset + base;
    // Read the whole directory region at once; bounded by the file, never by a header field.
    let region_len = info.end - cd_start;
    let mut cd = vec![
        0u8;
        usize::try_from(region_len)
            .map_err(|_| FormatError::Corrupt(format!("{name}: directory too large")))?
    ];
    src.read_exact_at(cd_start, &mut cd)?;
    if info.entries > region_len / CDH_LEN as u64 {
        listing.warnings.push(format!(
            "{name}: end record claims {} entries but the directory has room for at most {}",
            info.entries,
            region_len / CDH_LEN as u64
        ));
    }
    let expected = info.entries.min(region_len / CDH_LEN as u64) as usize;
    listing.members.reserve_exact(expected);

    let ctx = Ctx { src, name: &name, base, len: src.len() };
    let mut pos = 0usize;
    let mut index: u64 = 0;
    loop {
        if index >= info.entries {
            // A classic (16-bit) count wraps past 65535 entries: keep reading while records
            // follow. With zip64 the count is exact.
            if info.zip64 || cd.len() - pos < 4 || u32_at(&cd, pos) != CDH_SIG {
                break;
            }
            if index == info.entries {
                listing.warnings.push(format!(
                    "{name}: more central-directory entries than the end record's count {}; reading them all",
                    info.entries
                ));
            }
        }
        match parse_entry(&ctx, &cd, pos, index, &mut listing) {
            Ok(next) => pos = next,
            Err(why) => {
                listing.damaged = true;
                listing.warnings.push(format!(
                    "{name}: central directory entry {index} (at offset {}) is {why}; listing stops there",
                    cd_start + pos as u64
                ));
                break;
            }
        }
        index += 1;
    }
    refuse_overlaps(&mut listing, cd_start);
    summarize_unreadable(&name, &mut listing);
    Ok(listing)
}

/// One warning per kind of unreadable member (not one per member: a fully encrypted archive
/// would otherwise flood the log).
fn summarize_unreadable(name: &str, listing: &mut Listing) {
    let mut counts: Vec<(&str, usize, &[u8])> = Vec::new();
    for m in &listing.members {
        if let DataLoc::Bad { reason } = &m.data {
            match counts.iter_mut().find(|(r, _, _)| *r == reason.as_str()) {
                Some(c) => c.1 += 1,
                None => counts.push((reason.as_str(), 1, &m.path)),
            }
        }
    }
    let msgs: Vec<String> = counts
        .into_iter()
        .map(|(reason, n, first)| {
            let first = String::from_utf8_lossy(first);
            if n == 1 {
                format!("{name}: member {first} cannot be read: {reason}")
            } else {
                format!("{name}: {n} members cannot be read ({reason}), e.g. {first}")
            }
        })
        .collect();
    listing.warnings.extend(msgs);
}

struct Ctx<'a> {
    src: &'a dyn ByteSource,
    name: &'a str,
    base: u64,
    len: u64,
}

/// Values from a central-directory record's extra fields.
#[derive(Default)]
struct Extra<'a> {
    zip64: Option<&'a [u8]>,
    ext_mtime: Option<i64>,
    unix_mtime: Option<i64>,
    ntfs_mtime: Option<i64>,
    unicode_path: Option<(u32, &'a [u8])>,
}

fn parse_extra(mut e: &[u8]) -> Extra<'_> {
    let mut x = Extra::default();
    // Malformed or padded extra data (seen in the wild) ends parsing quietly: extras are optional.
    while e.len() >= 4 {
        let id = u16_at(e, 0);
        let n = u16_at(e, 2) as usize;
        if e.len() - 4 < n {
            break;
        }
        let d = &e[4..4 + n];
        match id {
            0x0001 => x.zip64 = Some(d),
            0x5455 if n >= 5 && d[0] & 1 != 0 => x.ext_mtime = Some(u32_at(d, 1) as i32 as i64),
            0x5855 if n >= 8 => x.unix_mtime = Some(u32_at(d, 4) as i32 as i64),
            0x000a if n >= 4 => {
                let mut t = &d[4..];
                while t.len() >= 4 {
                    let tag = u16_at(t, 0);
                    let sz = u16_at(t, 2) as usize;
                    if t.len() - 4 < sz {
                        break;
                    }
                    if tag == 1 && sz >= 8 {
                        let ft = u64_at(t, 4);
                        // FILETIME: 100 ns ticks since 1601-01-01 UTC.
                        x.ntfs_mtime = Some((ft / 10_000_000) as i64 - 11_644_473_600);
                    }
                    t = &t[4 + sz..];
                }
            }
            0x7075 if n >= 5 && d[0] == 1 => x.unicode_path = Some((u32_at(d, 1), &d[5..])),
            _ => {}
        }
        e = &e[4 + n..];
    }
    x
}

/// Parses the record at `pos`, pushes its member (if any) and returns the next record's offset.
/// `Err` carries why the directory cannot be trusted from here on.
fn parse_entry(ctx: &Ctx<'_>, cd: &[u8], pos: usize, index: u64, out: &mut Listing) -> Result<usize, &'static str> {
    let r = cd.get(pos..pos + CDH_LEN).ok_or("truncated")?;
    if u32_at(r, 0) != CDH_SIG {
        return Err("not a central-directory header (bad signature)");
    }
    let made_by = u16_at(r, 4);
    let flags = u16_at(r, 8);
    let method = u16_at(r, 10);
    let dos_time = u16_at(r, 12);
    let dos_date = u16_at(r, 14);
    let crc32 = u32_at(r, 16);
    let mut csize = u32_at(r, 20) as u64;
    let mut usize_ = u32_at(r, 24) as u64;
    let name_len = u16_at(r, 28) as usize;
    let extra_len = u16_at(r, 30) as usize;
    let comment_len = u16_at(r, 32) as usize;
    let ext_attr = u32_at(r, 38);
    let mut local = u32_at(r, 42) as u64;
    let name_start = pos + CDH_LEN;
    let next = name_start + name_len + extra_len + comment_len;
    if next > cd.len() {
        return Err("truncated (its name, extra field or comment runs past the directory)");
    }
    let raw_name = &cd[name_start..name_start + name_len];
    let extra = parse_extra(&cd[name_start + name_len..name_start + name_len + extra_len]);

    // Zip64 values appear in order, only for the fields saturated in the record.
    let mut bad: Option<String> = None;
    {
        let mut z = extra.zip64.unwrap_or(&[]);
        let mut take = |v: &mut u64| {
            if *v == 0xFFFF_FFFF {
                if z.len() >= 8 {
                    *v = u64_at(z, 0);
                    z = &z[8..];
                } else {
                    bad = Some("zip64 extra field missing or short".into());
                }
            }
        };
        take(&mut usize_);
        take(&mut csize);
        take(&mut local);
    }

    let path = decode_name(raw_name, flags, extra.unicode_path);
    let host = made_by >> 8;
    let unix_mode = if host == 3 || host == 19 { ext_attr >> 16 } else { 0 };
    let ends_slash = path.last() == Some(&b'/');
    let is_dir =
        ends_slash || (unix_mode & S_IFMT == S_IFDIR) || (unix_mode & S_IFMT == 0 && ext_attr & DOS_DIR_ATTR != 0);
    let is_link = !is_dir && unix_mode & S_IFMT == S_IFLNK;
    let mode = if unix_mode != 0 {
        unix_mode & 0o7777
    } else if is_dir {
        0o755
    } else {
        0o644
    };
    let mtime =
        extra.ext_mtime.or(extra.unix_mtime).or(extra.ntfs_mtime).unwrap_or_else(|| dos_to_unix(dos_date, dos_time));

    if is_dir {
        out.members.push(Member { path, kind: MemberKind::Dir, size: 0, mtime, mode, data: DataLoc::None });
        return Ok(next);
    }

    if bad.is_none() {
        bad = unreadable_reason(flags, method);
    }
    let header_offset = local.saturating_add(ctx.base);
    if bad.is_none() && header_offset.saturating_add(LFH_LEN as u64).saturating_add(csize) > ctx.len {
        bad = Some("member data runs past the end of the archive".into());
        out.warnings.push(format!(
            "{}: entry {index} ({}): local header offset {header_offset} + {csize} compressed bytes run past the end of the file",
            ctx.name,
            String::from_utf8_lossy(&path)
        ));
    }
    if bad.is_none()
        && let Some(why) = ratio_problem(method, csize, usize_)
    {
        out.warnings.push(format!("{}: entry {index} ({}): {why}", ctx.name, String::from_utf8_lossy(&path)));
        bad = Some("declared size is more than its compressed data can hold (a zip bomb or a lying directory)".into());
    }
    let zd = ZipData { header_offset, compressed_size: csize, method, crc32, flags };

    if is_link {
        let target = match &bad {
            Some(why) => Err(io::Error::other(why.clone())),
            None => read_small(ctx.src, &zd, usize_),
        };
        match target {
            Ok(target) => {
                out.members.push(Member {
                    path,
                    kind: MemberKind::Symlink { target },
                    size: 0,
                    mtime,
                    mode,
                    data: DataLoc::None,
                });
            }
            Err(e) => {
                // A link whose target cannot be read is left out: shown as a file it would have
                // the wrong type, and a symlink cannot report a read error.
                tracing::debug!(archive = ctx.name, index, "symlink target unreadable: {e}");
                out.warnings.push(format!(
                    "{}: entry {index} ({}) is a symlink whose target cannot be read ({e}); left out",
                    ctx.name,
                    String::from_utf8_lossy(&path)
                ));
            }
        }
        return Ok(next);
    }

    let data = match bad {
        Some(reason) => DataLoc::Bad { reason },
        None if usize_ == 0 && csize == 0 => DataLoc::None,
        None => DataLoc::Zip(zd),
    };
    out.members.push(Member { path, kind: MemberKind::File, size: usize_, mtime, mode, data });
    Ok(next)
}

/// The ratio cap: why `size` bytes cannot come out of `csize` compressed bytes with `method`.
fn ratio_problem(method: u16, csize: u64, size: u64) -> Option<String> {
    let (what, max) = match method {
        METHOD_STORED if csize != size => {
            return Some(format!("stored member declares {size} bytes but stores {csize}"));
        }
        METHOD_DEFLATE => ("deflate", MAX_RATIO_DEFLATE),
        METHOD_DEFLATE64 => ("deflate64", MAX_RATIO_DEFLATE64),
        METHOD_LZMA => ("LZMA", MAX_RATIO_LZMA),
        _ => return None,
    };
    (size > csize.saturating_mul(max).saturating_add(RATIO_SLACK))
        .then(|| format!("declares {size} bytes from {csize} compressed bytes, more than {what} can produce ({max}:1)"))
}

/// The overlap cap: members whose compressed bytes overlap another member's local header are
/// refused. A member's bytes span at least its 30-byte local header and its compressed size (the
/// header's name and extra only add to that), so the check needs no extra reads. Among entries
/// sharing one local header, the first in directory order stays readable.
fn refuse_overlaps(listing: &mut Listing, cd_start: u64) {
    let mut spans: Vec<(u64, u64, usize)> = listing
        .members
        .iter()
        .enumerate()
        .filter_map(|(i, m)| match &m.data {
            DataLoc::Zip(zd) => Some((zd.header_offset, zd.compressed_size, i)),
            _ => None,
        })
        .collect();
    spans.sort_unstable();
    let mut refused: Vec<usize> = Vec::new();
    for (k, &(start, csize, i)) in spans.iter().enumerate() {
        if k > 0 && spans[k - 1].0 == start {
            refused.push(i);
            continue;
        }
        // The next member's header, or the directory for the last member before it.
        let next = spans[k + 1..].iter().map(|s| s.0).find(|&o| o != start);
        let limit = match next {
            Some(o) if start < cd_start => o.min(cd_start),
            Some(o) => o,
            None if start < cd_start => cd_start,
            None => u64::MAX,
        };
        if start.saturating_add(LFH_LEN as u64).saturating_add(csize) > limit {
            refused.push(i);
        }
    }
    for i in refused {
        listing.members[i].data = DataLoc::Bad { reason: OVERLAP_REASON.into() };
    }
}

/// Why a member's data cannot be decoded at all, judged from its record alone.
fn unreadable_reason(flags: u16, method: u16) -> Option<String> {
    if flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION) != 0 || method == METHOD_AES {
        return Some("encrypted".into());
    }
    match method {
        METHOD_STORED | METHOD_DEFLATE | METHOD_DEFLATE64 | METHOD_LZMA => None,
        m => Some(format!("unsupported compression method {m}")),
    }
}

/// Decodes a small member (a symlink target) completely.
fn read_small(src: &dyn ByteSource, zd: &ZipData, size: u64) -> io::Result<Vec<u8>> {
    if size > MAX_SYMLINK_TARGET {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{size} bytes is too long for a link target")));
    }
    let mut r = decoder(src, zd, size, INPUT_BUF)?;
    let mut v = Vec::with_capacity(size as usize);
    r.read_to_end(&mut v)?;
    Ok(v)
}

/// Member name to UTF-8 (or raw bytes when the name is neither flagged nor valid UTF-8 and
/// CP437 is the only reading left).
fn decode_name(raw: &[u8], flags: u16, unicode: Option<(u32, &[u8])>) -> Vec<u8> {
    // The Unicode Path field is only valid for the exact name it was written with.
    if flags & FLAG_UTF8 == 0
        && let Some((crc, name)) = unicode
        && crc32fast::hash(raw) == crc
        && std::str::from_utf8(name).is_ok()
    {
        return name.to_vec();
    }
    if flags & FLAG_UTF8 != 0 || raw.is_ascii() || std::str::from_utf8(raw).is_ok() {
        return raw.to_vec();
    }
    let mut s = String::with_capacity(raw.len() * 2);
    for &b in raw {
        s.push(if b < 0x80 { b as char } else { CP437_HIGH[(b - 0x80) as usize] });
    }
    s.into_bytes()
}

/// CP437 code points for bytes 0x80..=0xFF.
const CP437_HIGH: [char; 128] = [
    'Ç', 'ü', 'é', 'â', 'ä', 'à', 'å', 'ç', 'ê', 'ë', 'è', 'ï', 'î', 'ì', 'Ä', 'Å', //
    'É', 'æ', 'Æ', 'ô', 'ö', 'ò', 'û', 'ù', 'ÿ', 'Ö', 'Ü', '¢', '£', '¥', '₧', 'ƒ', //
    'á', 'í', 'ó', 'ú', 'ñ', 'Ñ', 'ª', 'º', '¿', '⌐', '¬', '½', '¼', '¡', '«', '»', //
    '░', '▒', '▓', '│', '┤', '╡', '╢', '╖', '╕', '╣', '║', '╗', '╝', '╜', '╛', '┐', //
    '└', '┴', '┬', '├', '─', '┼', '╞', '╟', '╚', '╔', '╩', '╦', '╠', '═', '╬', '╧', //
    '╨', '╤', '╥', '╙', '╘', '╒', '╓', '╫', '╪', '┘', '┌', '█', '▄', '▌', '▐', '▀', //
    'α', 'ß', 'Γ', 'π', 'Σ', 'σ', 'µ', 'τ', 'Φ', 'Θ', 'Ω', 'δ', '∞', 'φ', 'ε', '∩', //
    '≡', '±', '≥', '≤', '⌠', '⌡', '÷', '≈', '°', '∙', '·', '√', 'ⁿ', '²', '■', '\u{a0}',
];

/// DOS date/time to Unix seconds. DOS times carry no zone; we read them as UTC so that the same
/// archive shows the same times on every machine (readers that use local time disagree by the
/// zone offset). Out-of-range fields are clamped rather than rejected.
fn dos_to_unix(date: u16, time: u16) -> i64 {
    let year = 1980 + (date >> 9) as i64;
    let month = ((date >> 5) & 0xF).clamp(1, 12) as i64;
    let day = (date & 0x1F).max(1) as i64;
    let hour = ((time >> 11) as i64).min(23);
    let min = (((time >> 5) & 0x3F) as i64).min(59);
    let sec = (((time & 0x1F) * 2) as i64).min(59);
    days_from_civil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Opens a sequential decoder for one member: resolves the local header (its own name/extra
/// lengths) to find the data start, then yields exactly `size` uncompressed bytes. The returned
/// reader verifies the CRC-32 when it reaches the end and returns `io::ErrorKind::InvalidData` on
/// mismatch, on more or fewer bytes than `size`, or on corrupt compressed data; never yields bytes
/// past `size`. The check happens before the last bytes are handed out, so a caller that reads
/// exactly `size` bytes still sees the error. Encrypted members fail with `InvalidData`,
/// unsupported methods with `Unsupported`.
///
/// Memory per reader: one 64 KiB input buffer plus the decoder state (32 KiB window for deflate,
/// 64 KiB for deflate64, up to min(dictionary, size) for LZMA, refused above 1 GiB).
pub fn open_member(src: Arc<dyn ByteSource>, zd: &ZipData, size: u64) -> io::Result<Box<dyn Read + Send>> {
    decoder(src, zd, size, INPUT_BUF)
}

/// [`open_member`] for a caller that reads only the first `head` bytes (the DICOM scan): its
/// input is read in pieces little longer than that, not 64 KiB, since thousands of heads
/// scattered over a cold archive are read from the disk.
pub fn open_member_head(
    src: Arc<dyn ByteSource>,
    zd: &ZipData,
    size: u64,
    head: usize,
) -> io::Result<Box<dyn Read + Send>> {
    decoder(src, zd, size, head_input(head))
}

/// Input buffer for reading the first `head` bytes of a member: deflate never takes much more
/// input than it gives output, so this is usually one read.
pub(crate) fn head_input(head: usize) -> usize {
    (head + 1024).next_multiple_of(4096).min(INPUT_BUF)
}

/// For stored, unencrypted members: the absolute offset of the data in the source (so the caller
/// can serve them with positioned reads). Reads the 30-byte local header and checks that the
/// `compressed_size` bytes lie inside the source.
///
/// Data served this way bypasses the size and CRC checks of `open_member`: use it only when
/// `zd.compressed_size` equals the member's `size` (a stored member whose sizes disagree is
/// corrupt, and `open_member` reports it), and prefer a first full read through `open_member` if
/// CRC errors in stored members must surface.
pub fn stored_data_offset(src: &dyn ByteSource, zd: &ZipData) -> io::Result<u64> {
    if let Some(why) = unreadable_reason(zd.flags, zd.method) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, why));
    }
    if zd.method != METHOD_STORED {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "member is compressed, not stored"));
    }
    data_start(src, zd)
}

/// For unencrypted members of any method: where the compressed bytes start (for callers that
/// decode them with seek points of their own, e.g. big deflated members).
pub fn compressed_data_offset(src: &dyn ByteSource, zd: &ZipData) -> io::Result<u64> {
    if let Some(why) = unreadable_reason(zd.flags, zd.method) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, why));
    }
    data_start(src, zd)
}

/// Resolves the local header: where the member's compressed bytes start. Checks that all of
/// them lie inside the source.
fn data_start(src: &dyn ByteSource, zd: &ZipData) -> io::Result<u64> {
    let mut h = [0u8; LFH_LEN];
    src.read_exact_at(zd.header_offset, &mut h).map_err(|e| {
        // Only a header cut short says something about the archive. An OS error (EIO, EACCES,
        // ESTALE) may pass: it keeps its errno, and is not reported as corrupt data, which
        // callers remember for good.
        if e.kind() != io::ErrorKind::UnexpectedEof {
            return e;
        }
        invalid(format!("{}: local header at offset {} unreadable: {e}", src.describe(), zd.header_offset))
    })?;
    if u32_at(&h, 0) != LFH_SIG {
        return Err(invalid(format!("{}: no local file header at offset {}", src.describe(), zd.header_offset)));
    }
    let start = zd.header_offset + LFH_LEN as u64 + u16_at(&h, 26) as u64 + u16_at(&h, 28) as u64;
    match start.checked_add(zd.compressed_size) {
        Some(end) if end <= src.len() => Ok(start),
        _ => Err(invalid(format!(
            "{}: member data at offset {start} ({} bytes) runs past the end of the file",
            src.describe(),
            zd.compressed_size
        ))),
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Something that hands out a `ByteSource`: an `Arc` for long-lived readers, a borrow for the
/// symlink targets decoded while listing.
trait SourceRef: Send {
    fn get(&self) -> &dyn ByteSource;
}
impl SourceRef for Arc<dyn ByteSource> {
    fn get(&self) -> &dyn ByteSource {
        &**self
    }
}
impl SourceRef for &dyn ByteSource {
    fn get(&self) -> &dyn ByteSource {
        *self
    }
}

/// The compressed bytes of one member, read with positioned reads (no shared cursor).
struct Span<S> {
    src: S,
    pos: u64,
    end: u64,
}

impl<S: SourceRef> Read for Span<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (buf.len() as u64).min(self.end - self.pos) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.src.get().read_at(self.pos, &mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

fn decoder<'a, S: SourceRef + 'a>(
    src: S,
    zd: &ZipData,
    size: u64,
    input_buf: usize,
) -> io::Result<Box<dyn Read + Send + 'a>> {
    if let Some(why) = unreadable_reason(zd.flags, zd.method) {
        let kind = if why == "encrypted" { io::ErrorKind::InvalidData } else { io::ErrorKind::Unsupported };
        return Err(io::Error::new(kind, format!("{}: {why}", src.get().describe())));
    }
    let start = data_start(src.get(), zd)?;
    let what = src.get().describe();
    let span = Span { src, pos: start, end: start + zd.compressed_size };
    let inner: Box<dyn Read + Send + 'a> = match zd.method {
        METHOD_STORED => Box::new(span),
        METHOD_DEFLATE => Box::new(flate2::bufread::DeflateDecoder::new(BufReader::with_capacity(input_buf, span))),
        METHOD_DEFLATE64 => {
            Box::new(deflate64::Deflate64Decoder::with_buffer(BufReader::with_capacity(input_buf, span)))
        }
        METHOD_LZMA => lzma_decoder(span, size, &what)?,
        m => {
            return Err(io::Error::new(io::ErrorKind::Unsupported, format!("unsupported compression method {m}")));
        }
    };
    Ok(Box::new(Checked {
        inner,
        remaining: size,
        hasher: crc32fast::Hasher::new(),
        expected_crc: zd.crc32,
        failed: None,
        done: false,
        what,
    }))
}

/// Zip's LZMA (method 14): 2 version bytes, a 2-byte properties length (5), the properties
/// (lc/lp/pb byte and dictionary size), then a raw LZMA stream, with an end marker when flag bit 1
/// is set. We always know the size from the directory, so flag bit 1 does not matter: the decoder
/// stops at the size and then checks that the stream ends (or has its end marker) right there.
fn lzma_decoder<'a, S: SourceRef + 'a>(
    mut span: Span<S>,
    size: u64,
    what: &str,
) -> io::Result<Box<dyn Read + Send + 'a>> {
    let mut hdr = [0u8; 9];
    span.read_exact(&mut hdr).map_err(|_| invalid(format!("{what}: LZMA header truncated")))?;
    if u16_at(&hdr, 2) != 5 {
        return Err(invalid(format!("{what}: LZMA properties length {} (expected 5)", u16_at(&hdr, 2))));
    }
    let props = hdr[4];
    let dict = u32_at(&hdr, 5);
    if (dict as u64).min(size.max(4096)) > MAX_LZMA_DICT {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{what}: LZMA dictionary of {dict} bytes is too large"),
        ));
    }
    let mut r =
        lzma_rust2::LzmaReader::new_with_props(BufReader::with_capacity(INPUT_BUF, span), size, props, dict, None)
            .map_err(|e| invalid(format!("{what}: bad LZMA properties: {e}")))?;
    r.set_relaxed_end_condition(false);
    Ok(Box::new(r))
}

/// Enforces the declared size and CRC-32 on a decoded stream.
struct Checked<'a> {
    inner: Box<dyn Read + Send + 'a>,
    remaining: u64,
    hasher: crc32fast::Hasher,
    expected_crc: u32,
    /// Once failed, every later read fails the same way.
    failed: Option<String>,
    done: bool,
    what: String,
}

impl Checked<'_> {
    fn fail(&mut self, msg: String) -> io::Error {
        let msg = format!("{}: {msg}", self.what);
        self.failed = Some(msg.clone());
        invalid(msg)
    }

    /// Called once `size` bytes have been produced: the stream must end here and match the CRC.
    fn finish(&mut self) -> io::Result<()> {
        let mut probe = [0u8; 1];
        loop {
            match self.inner.read(&mut probe) {
                Ok(0) => break,
                Ok(_) => {
                    return Err(self.fail("member data is longer than its declared size".into()));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(self.fail(format!("corrupt data at the end of the member: {e}")));
                }
            }
        }
        let got = std::mem::take(&mut self.hasher).finalize();
        if got != self.expected_crc {
            return Err(self.fail(format!("CRC-32 mismatch (stored {:08x}, computed {got:08x})", self.expected_crc)));
        }
        self.done = true;
        Ok(())
    }
}

impl Read for Checked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(msg) = &self.failed {
            return Err(invalid(msg.clone()));
        }
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.remaining == 0 {
            self.finish()?;
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.remaining) as usize;
        let n = match self.inner.read(&mut buf[..want]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => return Err(self.fail(format!("corrupt compressed data: {e}"))),
        };
        if n == 0 {
            let r = self.remaining;
            return Err(self.fail(format!("member data ends {r} bytes short of its declared size")));
        }
        self.hasher.update(&buf[..n]);
        self.remaining -= n as u64;
        if self.remaining == 0 {
            // Verify before handing out the final bytes, so no caller ever sees unverified data
            // as a complete, successful read.
            self.finish()?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// An in-memory source.
    struct Mem(Vec<u8>);
    impl ByteSource for Mem {
        fn len(&self) -> u64 {
            self.0.len() as u64
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
            if offset >= self.0.len() as u64 {
                return Ok(0);
            }
            let d = &self.0[offset as usize..];
            let n = d.len().min(buf.len());
            buf[..n].copy_from_slice(&d[..n]);
            Ok(n)
        }
        fn describe(&self) -> String {
            "mem.zip".into()
        }
    }

    fn read_member(src: &Arc<dyn ByteSource>, m: &Member) -> io::Result<Vec<u8>> {
        match &m.data {
            DataLoc::None => Ok(Vec::new()),
            DataLoc::Zip(zd) => {
                let mut v = Vec::new();
                open_member(src.clone(), zd, m.size)?.read_to_end(&mut v)?;
                Ok(v)
            }
            DataLoc::Bad { reason } => Err(io::Error::other(reason.clone())),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn big_data() -> Vec<u8> {
        // Mildly compressible, > 1 MiB, deterministic.
        let mut x: u32 = 12345;
        (0..(1 << 20) + 12345)
            .map(|i| {
                x = x.wrapping_mul(1103515245).wrapping_add(12345);
                if i % 3 == 0 { (x >> 24) as u8 } else { b'a' + (i % 7) as u8 }
            })
            .collect()
    }

    /// (name, content, method); names ending in '/' are directories.
    fn sample() -> (Vec<u8>, Vec<(String, Vec<u8>)>) {
        use zip::CompressionMethod::{Deflated, Stored};
        use zip::write::SimpleFileOptions;
        let mut w = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        let mut files = Vec::new();
        let mut add = |w: &mut zip::ZipWriter<io::Cursor<Vec<u8>>>, name: &str, data: Vec<u8>, m| {
            w.start_file(name, SimpleFileOptions::default().compression_method(m).unix_permissions(0o640)).unwrap();
            w.write_all(&data).unwrap();
            files.push((name.to_string(), data));
        };
        add(&mut w, "stored.txt", b"hello stored\n".to_vec(), Stored);
        add(&mut w, "deflated.txt", b"hello hello hello hello deflated\n".repeat(50), Deflated);
        add(&mut w, "big.bin", big_data(), Deflated);
        add(&mut w, "big-stored.bin", big_data(), Stored);
        add(&mut w, "empty", Vec::new(), Stored);
        add(&mut w, "empty-deflated", Vec::new(), Deflated);
        add(&mut w, "dir/ünïcødé 世界.txt", b"unicode\n".to_vec(), Deflated);
        w.add_directory("dir/sub/", SimpleFileOptions::default()).unwrap();
        w.add_symlink("link", "stored.txt", SimpleFileOptions::default()).unwrap();
        (w.finish().unwrap().into_inner(), files)
    }

    #[test]
    fn lists_and_reads_generated_zip() {
        let (bytes, files) = sample();
        let src: Arc<dyn ByteSource> = Arc::new(Mem(bytes));
        let l = list(&*src).unwrap();
        assert!(!l.damaged, "{:?}", l.warnings);
        assert_eq!(l.members.len(), files.len() + 2);
        for (name, data) in &files {
            let m = l.members.iter().find(|m| m.path == name.as_bytes()).unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!(m.kind, MemberKind::File);
            assert_eq!(m.size, data.len() as u64);
            assert_eq!(m.mode, 0o640, "{name}");
            assert_eq!(&read_member(&src, m).unwrap(), data, "{name}");
            if let DataLoc::Zip(zd) = &m.data {
                if zd.method == 0 {
                    let off = stored_data_offset(&*src, zd).unwrap();
                    let mut buf = vec![0u8; m.size as usize];
                    src.read_exact_at(off, &mut buf).unwrap();
                    assert_eq!(&buf, data);
                } else {
                    assert!(stored_data_offset(&*src, zd).is_err());
                }
            }
        }
        let d = l.members.iter().find(|m| m.path == b"dir/sub/").unwrap();
        assert_eq!(d.kind, MemberKind::Dir);
        let s = l.members.iter().find(|m| m.path == b"link").unwrap();
        assert_eq!(s.kind, MemberKind::Symlink { target: b"stored.txt".to_vec() });
        // Times are plausible (written "now" by the zip crate, DOS resolution).
        assert!(l.members.iter().all(|m| m.mtime >= 315_532_800), "DOS epoch or later");
    }

    /// Hand-built members for layouts the zip crate does not write: data descriptors (sizes
    /// and CRC only after the data, zeros in the local header) and zip64 records.
    struct Raw<'a> {
        name: &'a str,
        data: &'a [u8],
        deflate: bool,
        descriptor: bool,
    }

    fn raw_zip(entries: &[Raw<'_>], zip64: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut cd = Vec::new();
        for e in entries {
            let comp = if e.deflate {
                let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
                enc.write_all(e.data).unwrap();
                enc.finish().unwrap()
            } else {
                e.data.to_vec()
            };
            let crc = crc32fast::hash(e.data);
            let flags: u16 = if e.descriptor { 8 } else { 0 };
            let method: u16 = if e.deflate { 8 } else { 0 };
            let off = out.len() as u64;
            let (lcrc, lc, lu) = if e.descriptor { (0, 0, 0) } else { (crc, comp.len() as u32, e.data.len() as u32) };
            out.extend_from_slice(&LFH_SIG.to_le_bytes());
            for v in [20u16, flags, method, 0, 0x21] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            for v in [lcrc, lc, lu] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(e.name.as_bytes());
            out.extend_from_slice(&comp);
            if e.descriptor {
                for v in [0x0807_4b50u32, crc, comp.len() as u32, e.data.len() as u32] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            let mut extra = Vec::new();
            let (cc, cu, co) = if zip64 {
                extra.extend_from_slice(&1u16.to_le_bytes());
                extra.extend_from_slice(&24u16.to_le_bytes());
                for v in [e.data.len() as u64, comp.len() as u64, off] {
                    extra.extend_from_slice(&v.to_le_bytes());
                }
                (u32::MAX, u32::MAX, u32::MAX)
            } else {
                (comp.len() as u32, e.data.len() as u32, off as u32)
            };
            cd.extend_from_slice(&CDH_SIG.to_le_bytes());
            for v in [(3u16 << 8) | 45, 45, flags, method, 0, 0x21] {
                cd.extend_from_slice(&v.to_le_bytes());
            }
            for v in [crc, cc, cu] {
                cd.extend_from_slice(&v.to_le_bytes());
            }
            for v in [e.name.len() as u16, extra.len() as u16, 0, 0, 0] {
                cd.extend_from_slice(&v.to_le_bytes());
            }
            cd.extend_from_slice(&(0o100644u32 << 16).to_le_bytes());
            cd.extend_from_slice(&co.to_le_bytes());
            cd.extend_from_slice(e.name.as_bytes());
            cd.extend_from_slice(&extra);
        }
        let cd_off = out.len() as u64;
        out.extend_from_slice(&cd);
        let n = entries.len() as u64;
        if zip64 {
            let rec = out.len() as u64;
            out.extend_from_slice(&ZIP64_EOCD_SIG.to_le_bytes());
            out.extend_from_slice(&44u64.to_le_bytes());
            for v in [45u16, 45] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            for v in [0u32, 0] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            for v in [n, n, cd.len() as u64, cd_off] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&ZIP64_LOCATOR_SIG.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&rec.to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes());
        }
        out.extend_from_slice(&EOCD_SIG.to_le_bytes());
        let (en, cs, co) =
            if zip64 { (0xFFFF, u32::MAX, u32::MAX) } else { (n as u16, cd.len() as u32, cd_off as u32) };
        for v in [0u16, 0, en, en] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&cs.to_le_bytes());
        out.extend_from_slice(&co.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    #[test]
    fn data_descriptor_and_zip64_members() {
        let text = b"streamed data, size known only at the end\n".repeat(100);
        let entries = [
            Raw { name: "dd-deflated", data: &text, deflate: true, descriptor: true },
            Raw { name: "dd-stored", data: &text, deflate: false, descriptor: true },
            Raw { name: "plain", data: b"plain\n", deflate: true, descriptor: false },
        ];
        for zip64 in [false, true] {
            let bytes = raw_zip(&entries, zip64);
            for prefix in [0usize, 77] {
                let mut b = vec![0xAAu8; prefix];
                b.extend_from_slice(&bytes);
                let src: Arc<dyn ByteSource> = Arc::new(Mem(b));
                let l = list(&*src).unwrap();
                assert!(!l.damaged, "{:?}", l.warnings);
                assert_eq!(l.members.len(), 3);
                for (m, e) in l.members.iter().zip(&entries) {
                    assert_eq!(m.path, e.name.as_bytes());
                    assert_eq!(m.mode, 0o644);
                    assert_eq!(m.mtime, dos_to_unix(0x21, 0));
                    assert_eq!(read_member(&src, m).unwrap(), e.data, "{} zip64={zip64} prefix={prefix}", e.name);
                }
            }
        }
    }

    fn find(bytes: &[u8], needle: &[u8]) -> usize {
        bytes.windows(needle.len()).position(|w| w == needle).unwrap()
    }

    #[test]
    fn corrupt_deflate_byte_is_a_read_error() {
        let (mut bytes, _) = sample();
        let l = list(&Mem(bytes.clone())).unwrap();
        let m = l.members.iter().find(|m| m.path == b"big.bin").unwrap();
        let DataLoc::Zip(zd) = m.data.clone() else { panic!() };
        let start = data_start(&Mem(bytes.clone()), &zd).unwrap() as usize;
        for flip in [10usize, 1000, 50_000] {
            let mut b = bytes.clone();
            b[start + flip] ^= 0x55;
            let src: Arc<dyn ByteSource> = Arc::new(Mem(b));
            let e = read_member(&src, m).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        }
        // Truncating the compressed data (the member now ends before its stream) fails too.
        bytes.truncate(start + 100);
        let src: Arc<dyn ByteSource> = Arc::new(Mem(bytes));
        assert!(open_member(src, &zd, m.size).is_err());
    }

    #[test]
    fn stored_crc_corruption_fails_at_the_end() {
        let (bytes, _) = sample();
        let l = list(&Mem(bytes.clone())).unwrap();
        let m = l.members.iter().find(|m| m.path == b"stored.txt").unwrap();
        let DataLoc::Zip(zd) = m.data.clone() else { panic!() };
        let start = data_start(&Mem(bytes.clone()), &zd).unwrap() as usize;
        let mut b = bytes.clone();
        b[start + 3] ^= 1;
        let src: Arc<dyn ByteSource> = Arc::new(Mem(b));
        let mut r = open_member(src.clone(), &zd, m.size).unwrap();
        // Reading exactly `size` bytes (read_exact) already reports the mismatch.
        let mut buf = vec![0u8; m.size as usize];
        let e = r.read_exact(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("CRC"), "{e}");
        // And it stays failed.
        assert!(r.read(&mut buf).is_err());
        // A wrong declared size fails too, both ways, and never yields more than `size`.
        for size in [m.size - 1, m.size + 1] {
            let mut v = Vec::new();
            let mut r = open_member(src.clone(), &zd, size).unwrap();
            assert!(r.read_to_end(&mut v).is_err());
            assert!(v.len() as u64 <= size);
        }
    }

    #[test]
    fn names_cp437_and_unicode_extra() {
        assert_eq!(decode_name(b"plain", 0, None), b"plain");
        assert_eq!(decode_name(&[0x66, 0x91, 0x86], 0, None), "fæå".as_bytes());
        assert_eq!(decode_name("世界".as_bytes(), 0, None), "世界".as_bytes());
        let raw = [0x41u8, 0x94];
        let crc = crc32fast::hash(&raw);
        assert_eq!(decode_name(&raw, 0, Some((crc, "Aö".as_bytes()))), "Aö".as_bytes());
        assert_eq!(decode_name(&raw, 0, Some((crc ^ 1, "Xö".as_bytes()))), "Aö".as_bytes());
        assert_eq!(decode_name(&raw, FLAG_UTF8, None), raw);
    }

    #[test]
    fn dos_time() {
        // 2011-03-27 20:10:36 (zip crate / Go test values): date 0x3e7b, time 0xa152.
        assert_eq!(dos_to_unix(0x3e7b, 0xa152), 1301256636);
        assert_eq!(dos_to_unix(0, 0), 315532800);
    }

    #[test]
    fn rejects_non_zip_and_empty_archive() {
        assert!(matches!(list(&Mem(b"hello world, not a zip at all".to_vec())), Err(FormatError::NotThisFormat(_))));
        assert!(!looks_like_zip(&Mem(b"hello".to_vec())));
        let w = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        let empty = w.finish().unwrap().into_inner();
        assert!(looks_like_zip(&Mem(empty.clone())));
        assert!(list(&Mem(empty)).unwrap().members.is_empty());
    }

    #[test]
    fn prefix_and_trailing_junk() {
        let (bytes, files) = sample();
        let mut b = b"#!/bin/sh\nexit 0\n".repeat(100);
        b.extend_from_slice(&bytes);
        b.extend_from_slice(b"trailing junk");
        let src: Arc<dyn ByteSource> = Arc::new(Mem(b));
        let l = list(&*src).unwrap();
        assert!(!l.damaged);
        for (name, data) in &files {
            let m = l.members.iter().find(|m| m.path == name.as_bytes()).unwrap();
            assert_eq!(&read_member(&src, m).unwrap(), data);
        }
    }

    #[test]
    fn damaged_directory_keeps_earlier_members() {
        let (mut bytes, _) = sample();
        let cd = find(&bytes, &CDH_SIG.to_le_bytes());
        let second = cd + 4 + find(&bytes[cd + 4..], &CDH_SIG.to_le_bytes());
        bytes[second] = b'X';
        let l = list(&Mem(bytes)).unwrap();
        assert!(l.damaged);
        assert_eq!(l.members.len(), 1);
        assert!(l.warnings.iter().any(|w| w.contains("mem.zip") && w.contains("entry 1")), "{:?}", l.warnings);
    }

    #[test]
    fn encrypted_and_unsupported_are_listed_as_bad() {
        let (mut bytes, _) = sample();
        let cd = find(&bytes, &CDH_SIG.to_le_bytes());
        bytes[cd + 8] |= 1; // first entry: encrypted
        let second = cd + 4 + find(&bytes[cd + 4..], &CDH_SIG.to_le_bytes());
        bytes[second + 10] = 200; // second entry: method 200
        let src: Arc<dyn ByteSource> = Arc::new(Mem(bytes));
        let l = list(&*src).unwrap();
        assert!(matches!(&l.members[0].data, DataLoc::Bad { reason } if reason == "encrypted"));
        assert!(
            matches!(&l.members[1].data, DataLoc::Bad { reason } if reason == "unsupported compression method 200")
        );
        assert!(read_member(&src, &l.members[2]).is_ok());
    }

    /// Deterministic xorshift, so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    fn exercise(bytes: Vec<u8>) {
        let src: Arc<dyn ByteSource> = Arc::new(Mem(bytes));
        let _ = looks_like_zip(&*src);
        if let Ok(l) = list(&*src) {
            for m in &l.members {
                if let DataLoc::Zip(zd) = &m.data {
                    let _ = stored_data_offset(&*src, zd);
                    if let Ok(mut r) = open_member(src.clone(), zd, m.size) {
                        // Bounded drain: a flipped size field may claim gigabytes.
                        let mut buf = vec![0u8; 64 << 10];
                        let mut total = 0u64;
                        while let Ok(n) = r.read(&mut buf) {
                            if n == 0 || total > (8 << 20) {
                                break;
                            }
                            total += n as u64;
                            assert!(total <= m.size);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn fuzz_truncations_and_bit_flips() {
        let mut seeds: Vec<Vec<u8>> = Vec::new();
        {
            // A small varied archive, so each iteration is quick.
            use zip::write::SimpleFileOptions;
            let mut w = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
            for (i, m) in [zip::CompressionMethod::Stored, zip::CompressionMethod::Deflated]
                .into_iter()
                .cycle()
                .take(6)
                .enumerate()
            {
                w.start_file(format!("d{i}/f{i}.txt"), SimpleFileOptions::default().compression_method(m)).unwrap();
                w.write_all(&b"some content ".repeat(40 * (i + 1))).unwrap();
            }
            w.add_symlink("ln", "d0/f0.txt", SimpleFileOptions::default()).unwrap();
            w.add_directory("emptydir/", SimpleFileOptions::default()).unwrap();
            seeds.push(w.finish().unwrap().into_inner());
        }
        // Real archives from the repository's conformance corpus (small ones only).
        for dir in ["go-zip", "libarchive", "ratarmount", "cpython"] {
            let path = format!("{}/tests/conformance/{dir}", env!("CARGO_MANIFEST_DIR"));
            let rd = std::fs::read_dir(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            for e in rd.flatten() {
                let p = e.path();
                let is_zip = p.extension().is_some_and(|x| x == "zip" || x == "notzip");
                if let Ok(b) = std::fs::read(&p)
                    && is_zip
                    && b.len() < 16 << 10
                {
                    seeds.push(b);
                }
            }
        }
        // MEDFS_FUZZ_ITERS raises the per-seed count for a longer local run.
        let iters: usize = std::env::var("MEDFS_FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
        println!("fuzzing {} seed archives, {iters} mutations each", seeds.len());
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for seed in &seeds {
            // Every truncation of the tail region, plus some random ones.
            for cut in 0..seed.len().min(200) {
                exercise(seed[..seed.len() - cut].to_vec());
            }
            for _ in 0..iters {
                let mut b = seed.clone();
                if b.is_empty() {
                    break;
                }
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(b.len());
                    b[i] ^= 1 << rng.below(8);
                }
                if rng.below(4) == 0 {
                    let cut = rng.below(b.len());
                    b.truncate(cut);
                }
                exercise(b);
            }
        }
    }

    /// 100,000 members: more than the 16-bit count of the end record holds, so the lister
    /// must keep reading while headers follow. (Its speed is measured by the benchmark.)
    #[test]
    fn lists_100k_members_past_the_16_bit_count() {
        use zip::write::SimpleFileOptions;
        let n = 100_000;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("100k.zip");
        let f = std::fs::File::create(&path).unwrap();
        let mut w = zip::ZipWriter::new(io::BufWriter::new(f));
        let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for i in 0..n {
            w.start_file(format!("study{:03}/series{:03}/IM{:06}.dcm", i / 1000, (i / 100) % 10, i), opts).unwrap();
            w.write_all(b"DICM").unwrap();
        }
        w.finish().unwrap();
        let src = super::super::FileSource::open(&path).unwrap();
        let l = list(&src).unwrap();
        assert_eq!(l.members.len(), n);
        assert_eq!(l.members[n - 1].path, b"study099/series009/IM099999.dcm");
    }
}
