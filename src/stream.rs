//! Decoded streams as random-access byte sources: a compressed stream (gzip, bzip2, xz, zstd)
//! served from its seek points through the shared block cache.

use std::io::{self, Read};
use std::sync::Arc;

use crate::archive::ByteSource;
use crate::archive::codec::StreamIndex;
use crate::cache::{BlockCache, BlockKey};

/// Prefixes of spans are inflated in multiples of this.
const PREFIX_GRAIN: u64 = 64 << 10;

/// The decompressed bytes of a compressed file, readable at any offset.
///
/// A read inflates the seek-point span that holds it, once, into the block cache; neighbours in
/// the same span (the next members of a tar.gz) are then served from memory. Spans too large to
/// cache (a hostile or unusual stream) are streamed from their seek point instead.
pub struct CompressedStream {
    file: Arc<dyn ByteSource>,
    index: StreamIndex,
    cache: Arc<BlockCache>,
    /// Cache key of this stream's blocks: block `2 * span` is a whole span, `2 * span + 1` a
    /// prefix of it.
    owner: u32,
    item: u32,
}

impl CompressedStream {
    /// Wraps a compressed `file` whose seek points are `index`; `(owner, item)` keys its blocks
    /// in `cache` and must be unique to this stream.
    pub fn new(
        file: Arc<dyn ByteSource>,
        index: StreamIndex,
        cache: Arc<BlockCache>,
        owner: u32,
        item: u32,
    ) -> CompressedStream {
        CompressedStream { file, index, cache, owner, item }
    }

    /// The seek points.
    pub fn index(&self) -> &StreamIndex {
        &self.index
    }
}

impl ByteSource for CompressedStream {
    fn len(&self) -> u64 {
        self.index.uncompressed_len()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.len() || buf.is_empty() {
            return Ok(0);
        }
        let (span, start, end) = self.index.span_of(offset);
        let span_len = end - start;
        let need = (offset + buf.len() as u64).min(end) - start;
        let at = (offset - start) as usize;
        let serve = |block: &[u8], buf: &mut [u8]| {
            let n = buf.len().min(block.len().saturating_sub(at));
            buf[..n].copy_from_slice(&block[at..at + n]);
            n
        };
        if span_len as usize <= self.cache.max_block() {
            let full_key = BlockKey { owner: self.owner, item: self.item, block: 2 * span as u64 };
            let prefix_key = BlockKey { owner: self.owner, item: self.item, block: 2 * span as u64 + 1 };
            if let Some(block) = self.cache.get(&full_key) {
                return Ok(serve(&block, buf));
            }
            let prefix = self.cache.get(&prefix_key);
            if let Some(block) = &prefix
                && block.len() as u64 >= need
            {
                return Ok(serve(block, buf));
            }
            // A random read inflates only from the seek point to the end of what it needs
            // (rounded up, so the next members in archive order come along); the second time a
            // span is touched beyond that, it is inflated whole, so a sequential walk costs about
            // one pass and a random one about half a span.
            let target = need.div_ceil(PREFIX_GRAIN) * PREFIX_GRAIN;
            if prefix.is_none() && target < span_len * 3 / 4 {
                let block = self.cache.get_or_load(prefix_key, || {
                    let _working = self.cache.reserve(self.index.decoder_bytes(target) + target as usize);
                    let mut reader = self.index.reader_at(self.file.clone(), start)?;
                    let mut out = vec![0u8; target as usize];
                    reader.read_exact(&mut out)?;
                    Ok(out)
                })?;
                if block.len() as u64 >= need {
                    return Ok(serve(&block, buf));
                }
            }
            let block = self.cache.get_or_load(full_key, || {
                let _working = self.cache.reserve(self.index.decoder_bytes(span_len) + span_len as usize);
                self.index.read_span(self.file.clone(), span, span_len as usize)
            })?;
            return Ok(serve(&block, buf));
        }
        // A span too long to cache: stream from its seek point, charging the decoder meanwhile.
        let want = buf.len().min((end - offset) as usize);
        let _working = self.cache.reserve(self.index.decoder_bytes(offset + want as u64 - start));
        let mut reader = self.index.reader_at(self.file.clone(), offset)?;
        let mut got = 0;
        while got < want {
            match reader.read(&mut buf[got..want])? {
                0 => break,
                n => got += n,
            }
        }
        Ok(got)
    }

    fn describe(&self) -> String {
        format!("{} (decompressed)", self.file.describe())
    }
}
