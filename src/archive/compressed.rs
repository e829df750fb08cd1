//! The compressed-stream format: a tar inside gzip, bzip2, xz or zstd (`tar.gz`, `.tbz`, `.txz`,
//! `.tar.zst`), or one compressed file (`x.csv.gz`). Listed in one streaming pass that records
//! the codec's seek points; members are read from the decoded stream at their offsets.

use std::io::{self, BufReader, Read};
use std::sync::Arc;

use super::codec::{Codec, Indexer, StreamIndex, WindowSource};
use super::format::{Detection, Format, InStream, ListCtx, OpenArchive, Opened, Probe};
use super::{ByteSource, DataLoc, FormatError, Listing, Member, MemberKind, SourceReader, tar};
use crate::stream::{CompressedStream, DiskTee};

/// Cache item of an archive's own decoded stream (members' items are their indexes).
pub const ARCHIVE_STREAM: u32 = u32::MAX;

/// First index tag: codec number `c` (in `Codec::ALL`) is saved as `FIRST_TAG + 2c`, plus one
/// when a tar is inside.
const FIRST_TAG: u8 = 16;

/// The compressed-stream format (every codec).
pub struct Compressed;

fn tag(codec: Codec, is_tar: bool) -> u8 {
    let c = Codec::ALL.iter().position(|&x| x == codec).expect("every codec is in Codec::ALL") as u8;
    FIRST_TAG + 2 * c + is_tar as u8
}

/// The codec and whether a tar is inside, of one of this format's tags.
fn untag(tag: u8) -> Option<(Codec, bool)> {
    let i = tag.checked_sub(FIRST_TAG)?;
    Some((*Codec::ALL.get(usize::from(i / 2))?, i % 2 == 1))
}

impl Format for Compressed {
    fn name(&self) -> &'static str {
        "compressed"
    }

    fn owns(&self, tag: u8) -> bool {
        untag(tag).is_some()
    }

    fn detect(&self, probe: &Probe<'_>) -> io::Result<Detection> {
        let Some(codec) = Codec::detect(probe.head) else { return Ok(Detection::No) };
        // Peek into the decompressed stream: a tar header (or an empty tar) means a tarball.
        let mut dec = codec.indexer(BufReader::new(SourceReader { source: probe.file, pos: 0 }), u64::MAX);
        let mut block = [0u8; 1024];
        let got = read_fully(&mut dec, &mut block).unwrap_or(0);
        let is_tar =
            (got >= 512 && tar::looks_like_tar(&block[..512])) || (got == 1024 && block.iter().all(|&b| b == 0));
        if !is_tar && probe.name.is_some_and(|name| !opens_bare_stream(codec, name)) {
            return Ok(Detection::Plain);
        }
        Ok(Detection::Yes(tag(codec, is_tar)))
    }

    fn list(&self, tag: u8, file: &Arc<dyn ByteSource>, ctx: &ListCtx<'_>) -> Result<Opened, FormatError> {
        let (codec, is_tar) = untag(tag).ok_or(FormatError::NotThisFormat("compressed"))?;
        list(codec, is_tar, file, ctx)
    }

    fn reopen(
        &self,
        tag: u8,
        file: &Arc<dyn ByteSource>,
        _: &[Member],
        table: &[u8],
        bulk: WindowSource,
        ctx: &ListCtx<'_>,
    ) -> Result<Box<dyn OpenArchive>, String> {
        let (codec, _) = untag(tag).ok_or("not a compressed-stream tag")?;
        let index = StreamIndex::from_parts(codec, table, bulk).map_err(|e| e.to_string())?;
        let stream = CompressedStream::new(file.clone(), index, ctx.cache.clone(), ctx.id, ARCHIVE_STREAM);
        Ok(Box::new(InStream(Arc::new(stream.with_disk(ctx.disk.cloned())))))
    }
}

fn read_fully(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// Image formats that are gzip-compressed by convention and read that way by their tools
/// (nibabel, ITK): a `.nii.gz` is a file to show, not an archive to open. `lower`: the file
/// name in lower case.
pub fn compressed_image(lower: &str) -> bool {
    [".nii.gz", ".hdr.gz", ".img.gz"].iter().any(|ext| lower.ends_with(ext))
}

/// Whether a bare compressed stream (not a tarball) named `name` is opened: only when its name
/// says so (`x.csv.gz`, `simple.gz`) and it is not a compressed image. Anything else (a `.mgz`,
/// a `.nii.gz`) is a file in its own right.
fn opens_bare_stream(codec: Codec, name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !compressed_image(&lower) && codec.suffixes().iter().any(|s| lower.ends_with(&s.to_ascii_lowercase()))
}

/// One streaming pass over a compressed file: lists the tar inside (or the single file) and
/// records seek points as it goes. A stream that breaks half way keeps what was complete before.
fn list(codec: Codec, is_tar: bool, file: &Arc<dyn ByteSource>, ctx: &ListCtx<'_>) -> Result<Opened, FormatError> {
    let display = ctx.path.display().to_string();
    let bar = ctx.progress.add(&display, file.len());
    let counted = crate::progress::Counted::new(SourceReader { source: &**file, pos: 0 }, bar.clone());
    let indexer = codec.indexer(BufReader::with_capacity(1 << 20, counted), codec.spacing());
    // Blocks deep in a long span go to the disk cache as they pass: a later random read there is
    // a disk read instead of a decode from the span's start.
    let mut indexer =
        DiskTee::new(indexer, ctx.disk.cloned(), ARCHIVE_STREAM, ctx.cache.max_block() as u64, Indexer::last_point);
    let mut listing = if is_tar { tar::list(&mut indexer, &display)? } else { Listing::default() };
    // Drain what follows the tar's end (padding, or the whole file for a bare .gz), so that every
    // member's/block's check is verified and the seek points cover the whole stream.
    let drained = io::copy(&mut indexer, &mut io::sink());
    let (index, stream_error) = indexer.into_inner().finish_partial();
    bar.finish();
    listing.warnings.extend(index.warnings().iter().map(|w| format!("{display}: {w}")));
    for e in drained.as_ref().err().into_iter().chain(stream_error.as_ref()) {
        listing.damaged = true;
        listing.warnings.push(format!("{display}: compressed stream damaged: {e}"));
    }
    // A stream that merely ends early (a truncated download) decoded correctly up to where it
    // stops: the decoder fails at the cut, it does not invent bytes before it. A stream with bad
    // data or a checksum mismatch is trusted only up to the last check that passed.
    let truncated_only = matches!(&stream_error, Some(e) if e.kind() == io::ErrorKind::UnexpectedEof)
        && drained.as_ref().err().is_none_or(|e| e.kind() == io::ErrorKind::UnexpectedEof);
    let good_len = if truncated_only { index.uncompressed_len() } else { index.verified_len() };
    if !is_tar {
        let name = ctx.path.file_name().and_then(|n| n.to_str()).unwrap_or("data");
        let stem = codec.suffixes().iter().find_map(|s| name.strip_suffix(s)).filter(|s| !s.is_empty()).unwrap_or(name);
        listing.members.push(Member {
            path: stem.as_bytes().to_vec(),
            kind: MemberKind::File,
            size: good_len,
            mtime: 0,
            mode: 0o644,
            data: if listing.damaged {
                DataLoc::Bad { reason: "compressed stream damaged".into() }
            } else {
                DataLoc::Raw { offset: 0 }
            },
        });
    } else if listing.damaged {
        // Members whose bytes run past the last trusted byte cannot be served.
        for m in &mut listing.members {
            let past_good = match &m.data {
                DataLoc::Raw { offset } => offset + m.size > good_len,
                // A sparse member's stored runs are its bytes in the stream.
                DataLoc::Sparse { extents } => extents.iter().any(|e| e.offset + e.len > good_len),
                _ => false,
            };
            if past_good {
                m.data = DataLoc::Bad { reason: "data lies in a damaged part of the compressed stream".into() };
            }
        }
    }
    let saved = index.to_parts()?;
    let stream = CompressedStream::new(file.clone(), index, ctx.cache.clone(), ctx.id, ARCHIVE_STREAM)
        .with_disk(ctx.disk.cloned());
    Ok(Opened { listing, data: Box::new(InStream(Arc::new(stream))), saved })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_keep_their_saved_values() {
        for (c, codec) in Codec::ALL.into_iter().enumerate() {
            for is_tar in [false, true] {
                assert_eq!(tag(codec, is_tar), 16 + 2 * c as u8 + is_tar as u8);
                assert_eq!(untag(tag(codec, is_tar)), Some((codec, is_tar)));
            }
        }
        assert_eq!(untag(15), None);
        assert_eq!(untag(16 + 2 * Codec::ALL.len() as u8), None);
    }
}
