//! The 7z format (through the `sevenz-rust2` crate): listing, passwords, and the decoded stream
//! members are read from. That stream is the archive's folders (solid blocks) decoded and
//! joined end to end; a member is a range of it (`DataLoc::Raw`). A folder is decoded front to
//! back by a cursor kept in the block cache as a state with its real weight, and every 1 MiB it
//! yields is cached, so random reads within what fits in the cache decode nothing twice, and a
//! sequential walk continues the cursor instead of restarting the folder.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use sevenz_rust2::{Archive, BlockDecoder, EncoderMethod, Password};
use sha2::{Digest, Sha256};

use super::codec::WindowSource;
use super::compressed::ARCHIVE_STREAM;
use super::format::{Detection, Format, ListCtx, OpenArchive, Opened, Probe, read_stored};
use super::{ByteSource, DataLoc, FormatError, Listing, Member, MemberKind};
use crate::cache::{BlockCache, BlockKey};
use crate::diskcache::ArchiveBlocks;
use crate::reader::ReadCtx;

/// The index tag of a 7z archive.
const TAG: u8 = 2;

/// The signature at offset 0.
pub const MAGIC: &[u8] = &[b'7', b'z', 0xbc, 0xaf, 0x27, 0x1c];

/// Decoded bytes are cached in blocks of this size.
const BLOCK: u64 = 1 << 20;

/// Cache item of the folders' cursors (their block number is the folder's): data blocks use
/// [`ARCHIVE_STREAM`], member indexes never come this high.
const CURSORS: u32 = ARCHIVE_STREAM - 1;

/// Memory charged for a running decoder besides its output block: its dictionary as the
/// folder's coders declare it ([`dictionary`]), else what common settings use at most (64 MiB,
/// `-mx9`), never more than the data it covers; plus buffers. Charging 64 MiB for the 256 KiB
/// dictionary of `-mx1` made each cursor of a 64 MiB folder weigh more than a 64 MiB budget,
/// so it was evicted at once and every read past it decoded the folder again from its start.
fn decoder_bytes(folder_len: u64, dictionary: Option<u64>) -> usize {
    (dictionary.unwrap_or(64 << 20).min(folder_len) as usize) + (2 << 20)
}

/// The largest dictionary (or PPMd model) the coders of `folder` declare; `None` when one of
/// them is a method whose memory is not known from its properties (the caller then assumes the
/// most). Filters and AES keep only small buffers.
fn dictionary(archive: &Archive, folder: usize) -> Option<u64> {
    let mut most = 0u64;
    for c in &archive.blocks.get(folder)?.coders {
        let p = c.properties();
        let size = match c.encoder_method_id() {
            EncoderMethod::ID_LZMA2 => match *p.first()? as u32 {
                b @ 0..40 => u64::from(2 | (b & 1)) << (b / 2 + 11),
                40 => u64::from(u32::MAX),
                _ => return None,
            },
            EncoderMethod::ID_LZMA | EncoderMethod::ID_PPMD => {
                u64::from(u32::from_le_bytes(p.get(1..5)?.try_into().ok()?))
            }
            EncoderMethod::ID_COPY
            | EncoderMethod::ID_AES256_SHA256
            | EncoderMethod::ID_DELTA
            | EncoderMethod::ID_BCJ_X86
            | EncoderMethod::ID_BCJ2
            | EncoderMethod::ID_BCJ_PPC
            | EncoderMethod::ID_BCJ_IA64
            | EncoderMethod::ID_BCJ_ARM
            | EncoderMethod::ID_BCJ_ARM64
            | EncoderMethod::ID_BCJ_ARM_THUMB
            | EncoderMethod::ID_BCJ_SPARC
            | EncoderMethod::ID_BCJ_RISCV => 0,
            _ => return None,
        };
        most = most.max(size);
    }
    Some(most)
}

/// The 7z format.
pub struct SevenZ;

/// What the index keeps of a 7z archive: the bytes the header parse read (so a remount parses
/// them again without reading the archive), and what reading needs.
#[derive(serde::Serialize, serde::Deserialize)]
struct Table {
    /// The archive's length.
    len: u64,
    /// Ranges of the archive read while parsing its headers: offset and bytes.
    header: Vec<(u64, serde_bytes::ByteBuf)>,
    /// CRC-32 of each member where 7z stores one.
    crcs: Vec<Option<u32>>,
    /// A slow salted hash of the password that opened the archive ([`key_check`]), so a remount
    /// picks the right one of several without decoding anything; `None`: no password.
    key_check: Option<[u8; 32]>,
    /// Data encrypted and no password opened it: members were listed unreadable.
    locked: bool,
}

impl Format for SevenZ {
    fn name(&self) -> &'static str {
        "7z"
    }

    fn owns(&self, tag: u8) -> bool {
        tag == TAG
    }

    fn detect(&self, probe: &Probe<'_>) -> io::Result<Detection> {
        Ok(if probe.head.starts_with(MAGIC) { Detection::Yes(TAG) } else { Detection::No })
    }

    fn list(&self, _: u8, file: &Arc<dyn ByteSource>, ctx: &ListCtx<'_>) -> Result<Opened, FormatError> {
        list(file, ctx)
    }

    fn reopen(
        &self,
        _: u8,
        file: &Arc<dyn ByteSource>,
        members: &[Member],
        table: &[u8],
        _: WindowSource,
        ctx: &ListCtx<'_>,
    ) -> Result<Box<dyn OpenArchive>, String> {
        let table: Table = postcard::from_bytes(table).map_err(|e| format!("7z table: {e}"))?;
        if table.crcs.len() != members.len() {
            return Err("7z table does not match the members".into());
        }
        if table.locked && !ctx.passwords.is_empty() {
            // Listed without a password; one is given now: list again to try it.
            return Err("encrypted 7z listed without its password, passwords given now".into());
        }
        if table.header.is_empty() && members.is_empty() {
            return Ok(Box::new(SevenZArchive { stream: None, crcs: Vec::new() }));
        }
        let password = match table.key_check {
            None => Password::empty(),
            Some(check) => candidates(ctx)
                .into_iter()
                .find(|p| key_check(p, table.len) == check)
                .map(|p| Password::new(&p))
                .ok_or_else(|| no_password(ctx))?,
        };
        let mut replay = Replay { len: table.len, ranges: &table.header, pos: 0 };
        let archive = parse(&mut replay, &password).map_err(|e| format!("7z header from the index: {e}"))?;
        Ok(Box::new(open(file, archive, password, table.crcs, members, ctx)?))
    }
}

/// Passwords to try after none, in order (`--password`s, then `MEDFS_PASSWORD`).
fn candidates(ctx: &ListCtx<'_>) -> Vec<String> {
    ctx.passwords.to_vec()
}

/// Rounds of [`key_check`]: 7z's own key derivation is 2^19 rounds of SHA-256 over salt and
/// password, so a check this slow tells an attacker who reads the index no more, no faster, than
/// the archive itself does (about 0.1 s a candidate, once a remount).
const KEY_CHECK_ROUNDS: u32 = 1 << 19;

fn key_check(password: &str, len: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"medfs 7z password check\0");
    h.update(len.to_le_bytes());
    h.update(password.as_bytes());
    let mut digest: [u8; 32] = h.finalize().into();
    for _ in 1..KEY_CHECK_ROUNDS {
        let mut h = Sha256::new();
        h.update(digest);
        h.update(password.as_bytes());
        digest = h.finalize().into();
    }
    digest
}

/// Why an encrypted archive cannot be read (the caller names the archive).
fn no_password(ctx: &ListCtx<'_>) -> String {
    let published = ctx.passwords.len().saturating_sub(ctx.passwords_given);
    match (ctx.passwords_given, published) {
        (0, 0) => "encrypted 7z, no password given (--password or MEDFS_PASSWORD)".into(),
        (0, n) => format!(
            "encrypted 7z, no password given (--password or MEDFS_PASSWORD) and none of the {n} \
             published by dataset profiles opens it"
        ),
        (k, 0) => format!("encrypted 7z, wrong password (none of the {k} given opens it)"),
        (k, n) => format!(
            "encrypted 7z, wrong password (none of the {k} given, nor of the {n} published by dataset profiles, \
             opens it)"
        ),
    }
}

fn parse<R: Read + Seek>(r: &mut R, password: &Password) -> Result<Archive, sevenz_rust2::Error> {
    Archive::read(r, password)
}

fn denied(msg: String) -> FormatError {
    FormatError::Io(io::Error::new(io::ErrorKind::PermissionDenied, msg))
}

fn list(file: &Arc<dyn ByteSource>, ctx: &ListCtx<'_>) -> Result<Opened, FormatError> {
    let len = file.len();
    if is_empty_archive(&**file)? {
        let saved = Table { len, header: Vec::new(), crcs: Vec::new(), key_check: None, locked: false };
        let saved = postcard::to_stdvec(&saved).map_err(|e| FormatError::Corrupt(format!("7z table: {e}")))?;
        let data = SevenZArchive { stream: None, crcs: Vec::new() };
        return Ok(Opened { listing: Listing::default(), data: Box::new(data), saved: (saved, Vec::new()) });
    }
    // The header: read in the clear first; an encrypted one then with each password.
    let mut rec = Recorder { file: &**file, pos: 0, ranges: Vec::new() };
    let mut chosen: Option<String> = None;
    let archive = match parse(&mut rec, &Password::empty()) {
        Ok(a) => a,
        Err(sevenz_rust2::Error::PasswordRequired) => {
            let mut found = None;
            for p in candidates(ctx) {
                rec.ranges.clear();
                if let Ok(a) = parse(&mut rec, &Password::new(&p)) {
                    found = Some(a);
                    chosen = Some(p);
                    break;
                }
            }
            found.ok_or_else(|| denied(no_password(ctx)))?
        }
        Err(e) => return Err(corrupt(e)),
    };
    // Data encrypted under a clear header: find the password that decodes a folder. Without
    // one the names are listed and every read fails (what the corpus expects of such archives).
    let mut locked = false;
    if chosen.is_none() && is_encrypted(&archive) {
        let folder = smallest_folder(&archive);
        chosen = candidates(ctx).into_iter().find(|p| decodes(file, &archive, folder, &Password::new(p)));
        locked = chosen.is_none();
    }
    let password = chosen.as_deref().map(Password::new).unwrap_or_else(Password::empty);
    let (mut members, crcs, mut warnings) = members(&archive);
    if locked {
        warnings.push(format!("{}: {}: its files are listed but cannot be read", ctx.display, no_password(ctx)));
        for (_, m) in members.iter_mut().filter(|(_, m)| matches!(m.data, DataLoc::Raw { .. })) {
            m.data = DataLoc::Bad { reason: "encrypted 7z, no password opens it".into() };
        }
    } else {
        resolve_links(file, &archive, &password, &mut members, &mut warnings);
    }
    let members: Vec<Member> = members.into_iter().map(|(_, m)| m).collect();
    let table = Table {
        len,
        header: rec.ranges.into_iter().map(|(o, b)| (o, serde_bytes::ByteBuf::from(b))).collect(),
        crcs: crcs.clone(),
        key_check: chosen.as_deref().map(|p| key_check(p, len)),
        locked,
    };
    let saved = postcard::to_stdvec(&table).map_err(|e| FormatError::Corrupt(format!("7z table: {e}")))?;
    let data = open(file, archive, password, crcs, &members, ctx).map_err(FormatError::Corrupt)?;
    Ok(Opened {
        listing: Listing { members, warnings, damaged: false },
        data: Box::new(data),
        saved: (saved, Vec::new()),
    })
}

fn corrupt(e: sevenz_rust2::Error) -> FormatError {
    match e {
        sevenz_rust2::Error::Io(e, _)
            if e.kind() != io::ErrorKind::UnexpectedEof && e.kind() != io::ErrorKind::InvalidData =>
        {
            FormatError::Io(e)
        }
        e => FormatError::Corrupt(format!("7z: {e}")),
    }
}

/// Whether some folder is AES-encrypted (method 06F10701).
fn is_encrypted(archive: &Archive) -> bool {
    archive.blocks.iter().any(|b| b.coders.iter().any(|c| c.encoder_method_id() == [0x06, 0xf1, 0x07, 0x01]))
}

fn folder_lens(archive: &Archive) -> Vec<u64> {
    let mut lens = vec![0u64; archive.blocks.len()];
    for (i, f) in archive.files.iter().enumerate() {
        if f.has_stream
            && let Some(Some(b)) = archive.stream_map.file_block_index.get(i)
            && let Some(l) = lens.get_mut(*b)
        {
            *l = l.saturating_add(f.size);
        }
    }
    lens
}

fn smallest_folder(archive: &Archive) -> usize {
    let lens = folder_lens(archive);
    (0..lens.len()).filter(|&i| lens[i] > 0).min_by_key(|&i| lens[i]).unwrap_or(0)
}

/// Whether `password` decodes the first MiB of `folder` (the whole folder when smaller, so its
/// CRCs are checked too).
fn decodes(file: &Arc<dyn ByteSource>, archive: &Archive, folder: usize, password: &Password) -> bool {
    let mut src = Owned { file: file.clone(), pos: 0 };
    let mut left = BLOCK;
    let mut buf = vec![0u8; 64 << 10];
    let result = BlockDecoder::new(1, folder, archive, password, &mut src).for_each_entries(&mut |_, r| {
        while left > 0 {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok(true);
            }
            left = left.saturating_sub(n as u64);
        }
        Err(sevenz_rust2::Error::Other("enough".into()))
    });
    result.is_ok() || left == 0
}

/// A member with its number among the archive's files.
type Numbered = (usize, Member);

/// Members of `archive`, their CRCs, and warnings.
fn members(archive: &Archive) -> (Vec<Numbered>, Vec<Option<u32>>, Vec<String>) {
    let lens = folder_lens(archive);
    let mut starts = Vec::with_capacity(lens.len());
    let mut at = 0u64;
    for l in &lens {
        starts.push(at);
        at = at.saturating_add(*l);
    }
    let mut within = vec![0u64; lens.len()];
    let mut members = Vec::with_capacity(archive.files.len());
    let mut crcs = Vec::with_capacity(archive.files.len());
    let mut warnings = Vec::new();
    let mut files = Vec::with_capacity(archive.files.len());
    for (i, f) in archive.files.iter().enumerate() {
        if f.is_anti_item {
            // An anti-item records a deletion in an update archive: nothing to show.
            continue;
        }
        let unix = f.has_windows_attributes && f.windows_attributes & 0x8000 != 0;
        let mode = if unix { (f.windows_attributes >> 16) & 0o7777 } else { 0 };
        let mtime = if f.has_last_modified_date { unix_seconds(f.last_modified_date.into()) } else { 0 };
        let (kind, size, data, crc) = if f.is_directory {
            (MemberKind::Dir, 0, DataLoc::None, None)
        } else if f.has_stream {
            match archive.stream_map.file_block_index.get(i).copied().flatten() {
                Some(b) if b < lens.len() => {
                    let offset = starts[b] + within[b];
                    within[b] += f.size;
                    let crc = f.has_crc.then_some(f.crc as u32);
                    (MemberKind::File, f.size, DataLoc::Raw { offset }, crc)
                }
                _ => {
                    warnings.push(format!("{}: no folder holds its data", f.name));
                    (MemberKind::File, f.size, DataLoc::Bad { reason: "7z: no folder holds its data".into() }, None)
                }
            }
        } else {
            (MemberKind::File, 0, DataLoc::None, None)
        };
        // p7zip keeps a link's target as its data, marked by the Unix mode.
        let kind = if unix && (f.windows_attributes >> 16) & 0o170000 == 0o120000 && kind == MemberKind::File {
            MemberKind::Symlink { target: Vec::new() }
        } else {
            kind
        };
        let mode = if mode != 0 {
            mode
        } else if kind == MemberKind::Dir {
            0o755
        } else {
            0o644
        };
        members.push(Member { path: f.name.as_bytes().to_vec(), kind, size, mtime, mode, data });
        crcs.push(crc);
        files.push(i);
    }
    (files.into_iter().zip(members).collect(), crcs, warnings)
}

/// Most bytes a symlink target may have.
const MAX_TARGET: u64 = 4096;

/// Reads the targets of symlinks (their data) by decoding the folders that hold them; a link
/// whose target cannot be read stays a link to nothing, with a warning.
fn resolve_links(
    file: &Arc<dyn ByteSource>,
    archive: &Archive,
    password: &Password,
    members: &mut [Numbered],
    warnings: &mut Vec<String>,
) {
    let mut wanted: std::collections::BTreeMap<usize, usize> = std::collections::BTreeMap::new();
    for (n, (i, m)) in members.iter().enumerate() {
        if matches!(m.kind, MemberKind::Symlink { .. }) && m.size <= MAX_TARGET {
            wanted.insert(*i, n);
        }
    }
    let folders: std::collections::BTreeSet<usize> =
        wanted.keys().filter_map(|&i| archive.stream_map.file_block_index.get(i).copied().flatten()).collect();
    for folder in folders {
        let Some(&first) = archive.stream_map.block_first_file_index.get(folder) else { continue };
        let mut index = first;
        let mut src = Owned { file: file.clone(), pos: 0 };
        let result = BlockDecoder::new(1, folder, archive, password, &mut src).for_each_entries(&mut |_, r| {
            if let Some(&n) = wanted.get(&index) {
                let mut target = Vec::new();
                r.take(MAX_TARGET).read_to_end(&mut target)?;
                members[n].1.kind = MemberKind::Symlink { target };
            }
            index += 1;
            Ok(true)
        });
        if let Err(e) = result {
            warnings.push(format!("symlink targets in 7z folder {folder} unreadable: {e}"));
        }
    }
    for (_, m) in members.iter_mut() {
        if matches!(m.kind, MemberKind::Symlink { .. }) {
            m.size = 0;
            m.data = DataLoc::None;
        }
    }
}

/// Whether `file` is a 7z with no header at all (an archive of nothing: 32 bytes).
fn is_empty_archive(file: &dyn ByteSource) -> io::Result<bool> {
    let mut head = [0u8; 32];
    if file.len() < 32 {
        return Ok(false);
    }
    file.read_exact_at(0, &mut head)?;
    Ok(head[12..32].iter().all(|&b| b == 0))
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// Builds the reading state of a listed archive.
fn open(
    file: &Arc<dyn ByteSource>,
    archive: Archive,
    password: Password,
    crcs: Vec<Option<u32>>,
    members: &[Member],
    ctx: &ListCtx<'_>,
) -> Result<SevenZArchive, String> {
    let lens = folder_lens(&archive);
    let mut starts = Vec::with_capacity(lens.len() + 1);
    let mut first_blocks = Vec::with_capacity(lens.len());
    let (mut at, mut blocks) = (0u64, 0u64);
    for l in &lens {
        starts.push(at);
        first_blocks.push(blocks);
        at = at.checked_add(*l).ok_or("7z folders longer than 2^64 bytes")?;
        blocks += l.div_ceil(BLOCK);
    }
    starts.push(at);
    if members.iter().any(|m| matches!(m.data, DataLoc::Raw { offset } if offset.saturating_add(m.size) > at)) {
        return Err("7z member past the end of its folders".into());
    }
    let dictionaries = (0..lens.len()).map(|f| dictionary(&archive, f)).collect();
    let stream = FolderStream {
        file: file.clone(),
        dictionaries,
        archive: Arc::new(archive),
        password,
        starts,
        first_blocks,
        cache: ctx.cache.clone(),
        disk: ctx.disk.cloned(),
        owner: ctx.id,
        name: ctx.display.to_string(),
    };
    Ok(SevenZArchive { stream: Some(Arc::new(stream)), crcs })
}

/// One listed 7z archive.
struct SevenZArchive {
    /// The decoded folders; `None` for an archive of nothing.
    stream: Option<Arc<dyn ByteSource>>,
    /// Each member's CRC-32 where stored, checked over every complete pass of reads.
    crcs: Vec<Option<u32>>,
}

impl OpenArchive for SevenZArchive {
    fn stream(&self) -> Option<&Arc<dyn ByteSource>> {
        self.stream.as_ref()
    }

    fn read(
        &self,
        ctx: &ReadCtx<'_>,
        member: u32,
        m: &Member,
        offset: u64,
        len: usize,
        out: &mut Vec<u8>,
    ) -> io::Result<()> {
        let Some(stream) = &self.stream else { return Err(io::Error::other("an empty 7z has no data")) };
        read_stored(&**stream, m, offset, len, out)?;
        match self.crcs.get(member as usize).copied().flatten() {
            Some(crc) => ctx.track_crc(member, m.size, crc, offset, out),
            None => Ok(()),
        }
    }

    fn table_bytes(&self) -> usize {
        self.crcs.capacity() * std::mem::size_of::<Option<u32>>()
    }
}

/// The folders of one archive decoded and joined end to end.
struct FolderStream {
    file: Arc<dyn ByteSource>,
    archive: Arc<Archive>,
    password: Password,
    /// Where each folder starts in the stream, and the stream's length last.
    starts: Vec<u64>,
    /// Each folder's first block number in the cache.
    first_blocks: Vec<u64>,
    /// Each folder's dictionary where its coders declare it ([`dictionary`]).
    dictionaries: Vec<Option<u64>>,
    cache: Arc<BlockCache>,
    /// The archive's blocks on disk: a solid folder evicted from memory is read back from there
    /// instead of decoded again from its start (stream = folder number).
    disk: Option<ArchiveBlocks>,
    owner: u32,
    name: String,
}

/// A folder being decoded: a thread runs the crate's decoder and hands over one block at a
/// time; dropping the cursor ends the thread at its next block.
struct Cursor {
    blocks: Receiver<io::Result<Vec<u8>>>,
    /// The folder-relative number of the block it yields next.
    next: u64,
}

type CursorSlot = Mutex<Option<Cursor>>;

impl FolderStream {
    fn key(&self, folder: usize, block: u64) -> BlockKey {
        BlockKey { owner: self.owner, item: ARCHIVE_STREAM, block: self.first_blocks[folder] + block }
    }

    /// Block `block` of folder `folder`, decoding up to it (from the folder's cursor when it is
    /// not past it, else from the folder's start).
    ///
    /// With a disk cache, the blocks a cursor passes on its way to the one asked for go to the
    /// disk only: in memory they would push out, least recently used, the cursors of the other
    /// folders, and an evicted cursor costs its folder's decoding again from the start, where a
    /// block passed over costs one read from the disk cache.
    fn block(&self, folder: usize, block: u64) -> io::Result<Arc<[u8]>> {
        let key = self.key(folder, block);
        if let Some(b) = self.cache.get(&key) {
            return Ok(b);
        }
        let folder_len = self.starts[folder + 1] - self.starts[folder];
        // Only folders of several blocks are worth the disk: a one-block folder decodes as fast.
        let disk = self.disk.as_ref().filter(|_| folder_len > BLOCK);
        // Taken (so made recently used) before the disk is asked: reads behind the cursor, served
        // from the disk, would otherwise age it out of the budget while the walk of its folder
        // goes on, and the next read ahead of it would decode the folder again.
        let state_key = BlockKey { owner: self.owner, item: CURSORS, block: folder as u64 };
        let slot: Arc<CursorSlot> = self.cache.state(state_key, || (Mutex::new(None), 0));
        if let Some(b) = self.disk_block(disk, folder, block, folder_len) {
            return Ok(b);
        }
        // The decoder, the block it is filling and the one it hands over.
        let weight = decoder_bytes(folder_len, self.dictionaries[folder]) + 2 * BLOCK as usize;
        let mut cursor = slot.lock();
        // Another reader may have decoded it while this one waited for the cursor.
        if let Some(b) = self.cache.get(&key) {
            return Ok(b);
        }
        if cursor.as_ref().is_none_or(|c| c.next > block) {
            // That reader may have passed it to the disk only.
            if let Some(b) = self.disk_block(disk, folder, block, folder_len) {
                return Ok(b);
            }
            // Counted by bench/sevenz_solid.py (MEDFS_LOG=medfs::archive::sevenz=debug): more
            // starts than folders means a folder was decoded again.
            tracing::debug!("{}: 7z folder {folder}: decoding from its start, block {block} wanted", self.name);
            *cursor = Some(self.start(folder)?);
            self.cache.reweigh(&state_key, weight);
        }
        let c = cursor.as_mut().expect("a cursor was just set");
        loop {
            let got = match c.blocks.recv() {
                Ok(Ok(data)) => data,
                Ok(Err(e)) => {
                    *cursor = None;
                    self.cache.reweigh(&state_key, 0);
                    return Err(e);
                }
                Err(_) => {
                    *cursor = None;
                    self.cache.reweigh(&state_key, 0);
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: 7z folder {folder} ended early", self.name),
                    ));
                }
            };
            let data: Arc<[u8]> = got.into();
            let n = c.next;
            c.next += 1;
            let on_disk = match disk.map(|d| d.put(folder as u32, n, &data)) {
                Some(Ok(())) => true,
                Some(Err(e)) => {
                    // The disk cache only saves work: a full or read-only disk must not fail the read.
                    tracing::debug!("{}: disk cache: {e}", self.name);
                    false
                }
                None => false,
            };
            if n == block || !on_disk {
                self.cache.insert(self.key(folder, n), data.clone());
            }
            if n == block {
                if c.next * BLOCK >= folder_len {
                    // The folder is done: its decoder's memory goes back to the budget.
                    *cursor = None;
                    self.cache.reweigh(&state_key, 0);
                }
                return Ok(data);
            }
        }
    }

    /// Block `block` of `folder` from the disk cache (then cached in memory), if there.
    fn disk_block(
        &self,
        disk: Option<&ArchiveBlocks>,
        folder: usize,
        block: u64,
        folder_len: u64,
    ) -> Option<Arc<[u8]>> {
        let disk = disk?;
        let want = (folder_len - block * BLOCK).min(BLOCK) as usize;
        let _reading = self.cache.reserve(want);
        let data: Arc<[u8]> = disk.get(folder as u32, block).filter(|b| b.len() == want)?.into();
        self.cache.insert(self.key(folder, block), data.clone());
        Some(data)
    }

    fn start(&self, folder: usize) -> io::Result<Cursor> {
        let (tx, rx) = sync_channel(0);
        let file = self.file.clone();
        let archive = self.archive.clone();
        let password = self.password.clone();
        let name = self.name.clone();
        std::thread::Builder::new()
            .name("medfs-7z".into())
            .spawn(move || decode_folder(file, &archive, folder, &password, &name, tx))?;
        Ok(Cursor { blocks: rx, next: 0 })
    }
}

/// Decodes `folder` front to back, sending it in blocks of [`BLOCK`] bytes, until done or the
/// receiver is gone.
fn decode_folder(
    file: Arc<dyn ByteSource>,
    archive: &Archive,
    folder: usize,
    password: &Password,
    name: &str,
    tx: SyncSender<io::Result<Vec<u8>>>,
) {
    let mut src = Owned { file, pos: 0 };
    let mut chunk = Vec::with_capacity(BLOCK as usize);
    let mut gone = false;
    let result = BlockDecoder::new(1, folder, archive, password, &mut src).for_each_entries(&mut |_, r| {
        loop {
            let want = BLOCK as usize - chunk.len();
            let at = chunk.len();
            chunk.resize(BLOCK as usize, 0);
            let n = match r.read(&mut chunk[at..at + want]) {
                Ok(n) => n,
                Err(e) => {
                    chunk.truncate(at);
                    return Err(e.into());
                }
            };
            chunk.truncate(at + n);
            if chunk.len() == BLOCK as usize {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(BLOCK as usize));
                if tx.send(Ok(full)).is_err() {
                    gone = true;
                    return Err(sevenz_rust2::Error::Other("reader gone".into()));
                }
            }
            if n == 0 {
                return Ok(true);
            }
        }
    });
    if gone {
        return;
    }
    let _ = match result {
        Ok(_) if !chunk.is_empty() => tx.send(Ok(chunk)),
        Ok(_) => Ok(()),
        // An OS error under the archive keeps its errno and is not the data's fault (the next
        // read tries again); anything else is corrupt data.
        Err(sevenz_rust2::Error::Io(e, _)) if e.raw_os_error().is_some() => tx.send(Err(e)),
        Err(e) => tx.send(Err(io::Error::new(io::ErrorKind::InvalidData, format!("{name}: 7z folder {folder}: {e}")))),
    };
}

impl ByteSource for FolderStream {
    fn len(&self) -> u64 {
        *self.starts.last().unwrap_or(&0)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.len() || buf.is_empty() {
            return Ok(0);
        }
        // The last folder starting at or before `offset` that is not empty.
        let folder = self.starts.partition_point(|&s| s <= offset) - 1;
        let rel = offset - self.starts[folder];
        let block = rel / BLOCK;
        let data = self.block(folder, block)?;
        let at = (rel - block * BLOCK) as usize;
        let n = buf.len().min(data.len().saturating_sub(at));
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{}: 7z folder {folder} short", self.name)));
        }
        buf[..n].copy_from_slice(&data[at..at + n]);
        Ok(n)
    }

    fn describe(&self) -> String {
        format!("{} (decoded)", self.file.describe())
    }
}

/// The archive as `Read + Seek` for the crate, recording what it reads (the header parse).
struct Recorder<'a> {
    file: &'a dyn ByteSource,
    pos: u64,
    ranges: Vec<(u64, Vec<u8>)>,
}

impl Read for Recorder<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(self.pos, buf)?;
        match self.ranges.last_mut() {
            Some((o, b)) if *o + b.len() as u64 == self.pos => b.extend_from_slice(&buf[..n]),
            _ => self.ranges.push((self.pos, buf[..n].to_vec())),
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Recorder<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = seek(self.pos, self.file.len(), to)?;
        Ok(self.pos)
    }
}

/// The recorded header reads served again, for a remount that reads nothing of the archive.
struct Replay<'a> {
    len: u64,
    ranges: &'a [(u64, serde_bytes::ByteBuf)],
    pos: u64,
}

impl Read for Replay<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let hit = self.ranges.iter().find(|(o, b)| *o <= self.pos && self.pos < o + b.len() as u64);
        let Some((o, b)) = hit else {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "7z header bytes not in the index"));
        };
        let at = (self.pos - o) as usize;
        let n = buf.len().min(b.len() - at);
        buf[..n].copy_from_slice(&b[at..at + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Replay<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = seek(self.pos, self.len, to)?;
        Ok(self.pos)
    }
}

/// The archive as `Read + Seek` owning its source (a decoder thread's).
struct Owned {
    file: Arc<dyn ByteSource>,
    pos: u64,
}

impl Read for Owned {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(self.pos, buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Owned {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = seek(self.pos, self.file.len(), to)?;
        Ok(self.pos)
    }
}

fn seek(pos: u64, len: u64, to: SeekFrom) -> io::Result<u64> {
    let new = match to {
        SeekFrom::Start(o) => Some(o),
        SeekFrom::End(d) => len.checked_add_signed(d),
        SeekFrom::Current(d) => pos.checked_add_signed(d),
    };
    new.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeks_stay_in_range() {
        assert_eq!(seek(5, 10, SeekFrom::End(-2)).unwrap(), 8);
        assert!(seek(5, 10, SeekFrom::Current(-6)).is_err());
    }
}
