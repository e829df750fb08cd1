//! Decoded streams as random-access byte sources: a gzip stream served from its seek points
//! through the shared block cache.

use std::io::{self, Read};
use std::sync::Arc;

use crate::archive::ByteSource;
use crate::archive::gzindex::GzIndex;
use crate::cache::{BlockCache, BlockKey};

/// The decompressed bytes of a gzip file, readable at any offset.
///
/// A read inflates the seek-point span that holds it, once, into the block cache; neighbours in
/// the same span (the next members of a tar.gz) are then served from memory. Spans too large to
/// cache (a hostile or unusual stream) are streamed from their seek point instead.
pub struct GzStream {
    file: Arc<dyn ByteSource>,
    index: GzIndex,
    cache: Arc<BlockCache>,
    owner: u32,
}

impl GzStream {
    /// Wraps a gzip `file` whose seek points are `index`; `owner` keys its blocks in `cache`.
    pub fn new(file: Arc<dyn ByteSource>, index: GzIndex, cache: Arc<BlockCache>, owner: u32) -> GzStream {
        GzStream { file, index, cache, owner }
    }

    /// The seek points.
    pub fn index(&self) -> &GzIndex {
        &self.index
    }
}

impl ByteSource for GzStream {
    fn len(&self) -> u64 {
        self.index.uncompressed_len()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.len() || buf.is_empty() {
            return Ok(0);
        }
        let (span, start, end) = self.index.span_of(offset);
        let span_len = (end - start) as usize;
        if span_len <= self.cache.max_block() {
            let key = BlockKey { owner: self.owner, item: u32::MAX, block: span as u64 };
            let block = self.cache.get_or_load(key, || self.index.read_span(self.file.clone(), span, span_len))?;
            let at = (offset - start) as usize;
            let n = buf.len().min(block.len().saturating_sub(at));
            buf[..n].copy_from_slice(&block[at..at + n]);
            return Ok(n);
        }
        let mut reader = self.index.reader_at(self.file.clone(), offset)?;
        let want = buf.len().min((end - offset) as usize);
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
