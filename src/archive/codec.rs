//! The registry of compressed-stream codecs: which codec a stream uses, an indexing pass that
//! yields decompressed bytes while recording seek points, and the resulting index.
//!
//! Each codec is one module (gzindex, bz2index, xzindex, zstdindex) implementing
//! `seekidx::SeekCodec`; the index, its span lookup, readers and the indexing loop are shared
//! (`seekidx::Index`, `seekidx::Pass`). This module is the one place that knows there are four.
//! Adding a codec: a module with a marker type implementing `SeekCodec`, an `IndexStep` for its
//! pass, then one variant in [`Codec`], [`Indexer`] and [`StreamIndex`] and one arm in each
//! macro below.

use std::io::{self, Read};
use std::sync::Arc;

use super::bz2index::{Bz2, Bz2Index, Bz2Indexer};
use super::gzindex::Gz;
pub use super::gzindex::{GzIndex, GzIndexer, WindowSource};
use super::seekidx::{Index, SeekCodec};
use super::xzindex::{Xz, XzIndex, XzIndexer};
use super::zstdindex::{Zstd, ZstdIndex, ZstdIndexer};
use super::{ByteSource, FormatError};

/// A compression of a whole stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// gzip (possibly multi-member).
    Gzip,
    /// bzip2 (possibly several streams).
    Bzip2,
    /// xz (possibly several streams and blocks).
    Xz,
    /// zstd (possibly several frames).
    Zstd,
}

/// Runs `$e` with `$C` naming the [`SeekCodec`] of `$codec`.
macro_rules! with_codec {
    ($codec:expr, $C:ident => $e:expr) => {
        match $codec {
            Codec::Gzip => {
                type $C = Gz;
                $e
            }
            Codec::Bzip2 => {
                type $C = Bz2;
                $e
            }
            Codec::Xz => {
                type $C = Xz;
                $e
            }
            Codec::Zstd => {
                type $C = Zstd;
                $e
            }
        }
    };
}

/// Runs `$e` on the codec-specific value inside an [`Indexer`] or a [`StreamIndex`].
macro_rules! each {
    ($self:expr, $Enum:ident, $x:ident => $e:expr) => {
        match $self {
            $Enum::Gz($x) => $e,
            $Enum::Bz2($x) => $e,
            $Enum::Xz($x) => $e,
            $Enum::Zst($x) => $e,
        }
    };
}

impl Codec {
    /// All codecs, in detection order.
    pub const ALL: [Codec; 4] = [Codec::Gzip, Codec::Bzip2, Codec::Xz, Codec::Zstd];

    /// The codec whose magic starts `head`.
    pub fn detect(head: &[u8]) -> Option<Codec> {
        Codec::ALL.into_iter().find(|&c| with_codec!(c, C => C::looks_like(head)))
    }

    /// File-name suffixes of a bare compressed file, stripped to name its content.
    pub fn suffixes(self) -> &'static [&'static str] {
        with_codec!(self, C => C::SUFFIXES)
    }

    /// Wanted distance between seek points. Gzip points cost a 32 KiB window each, so they are
    /// placed to keep the index under 5% of the archive while a random read of a ~70 KB member
    /// inflates well under 1 MiB; the others sit on block/frame boundaries and cost bytes.
    pub fn spacing(self) -> u64 {
        with_codec!(self, C => C::SPACING)
    }

    /// A pass over `inner` yielding decompressed bytes and recording seek points.
    pub fn indexer<R: Read>(self, inner: R, spacing: u64) -> Indexer<R> {
        match self {
            Codec::Gzip => Indexer::Gz(GzIndexer::new(inner, spacing)),
            Codec::Bzip2 => Indexer::Bz2(Bz2Indexer::new(inner, spacing)),
            Codec::Xz => Indexer::Xz(XzIndexer::new(inner, spacing)),
            Codec::Zstd => Indexer::Zst(ZstdIndexer::new(inner, spacing)),
        }
    }
}

/// An indexing pass of some codec.
pub enum Indexer<R: Read> {
    /// gzip.
    Gz(GzIndexer<R>),
    /// bzip2.
    Bz2(Bz2Indexer<R>),
    /// xz.
    Xz(XzIndexer<R>),
    /// zstd.
    Zst(ZstdIndexer<R>),
}

impl<R: Read> Read for Indexer<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        each!(self, Indexer, i => i.read(buf))
    }
}

impl<R: Read> Indexer<R> {
    /// Where the last seek point recorded so far starts (xz and zstd; `None` for the others).
    pub fn last_point(&self) -> Option<u64> {
        each!(self, Indexer, i => i.last_point())
    }

    /// The index of what decoded, and the error that stopped the pass, if any.
    pub fn finish_partial(self) -> (StreamIndex, Option<io::Error>) {
        fn wrap<C: SeekCodec>(
            (index, err): (Index<C>, Option<io::Error>),
            variant: fn(Index<C>) -> StreamIndex,
        ) -> (StreamIndex, Option<io::Error>) {
            (variant(index), err)
        }
        match self {
            Indexer::Gz(i) => wrap(i.finish_partial(), StreamIndex::Gz),
            Indexer::Bz2(i) => wrap(i.finish_partial(), StreamIndex::Bz2),
            Indexer::Xz(i) => wrap(i.finish_partial(), StreamIndex::Xz),
            Indexer::Zst(i) => wrap(i.finish_partial(), StreamIndex::Zst),
        }
    }
}

/// Seek points of one compressed stream.
pub enum StreamIndex {
    /// gzip.
    Gz(GzIndex),
    /// bzip2.
    Bz2(Bz2Index),
    /// xz.
    Xz(XzIndex),
    /// zstd.
    Zst(ZstdIndex),
}

impl StreamIndex {
    /// Length of the decompressed stream covered.
    pub fn uncompressed_len(&self) -> u64 {
        each!(self, StreamIndex, x => x.uncompressed_len())
    }

    /// Decompressed bytes covered by checks (CRCs) that passed.
    pub fn verified_len(&self) -> u64 {
        each!(self, StreamIndex, x => x.verified_len())
    }

    /// Non-fatal problems met while indexing.
    pub fn warnings(&self) -> &[String] {
        each!(self, StreamIndex, x => x.warnings())
    }

    /// The span `(index, start, end)` holding `offset`.
    pub fn span_of(&self, offset: u64) -> (usize, u64, u64) {
        each!(self, StreamIndex, x => x.span_of(offset))
    }

    /// Working memory of a decoder started at a seek point that decodes `decoded` bytes, for
    /// the memory budget: zlib's state and buffers for gzip; bzip2's block tables (up to 900 kB
    /// blocks); for xz and zstd the dictionary or window, of which a decoder touches at most
    /// what it has decoded since its seek point (pages of a larger dictionary are never
    /// touched), plus their buffers.
    pub fn decoder_bytes(&self, decoded: u64) -> usize {
        each!(self, StreamIndex, x => x.decoder_bytes(decoded))
    }

    /// Decompresses span `i` whole (OutOfMemory, before allocating, when longer than `max`).
    pub fn read_span(&self, src: Arc<dyn ByteSource>, i: usize, max: usize) -> io::Result<Vec<u8>> {
        each!(self, StreamIndex, x => x.read_span(src, i, max))
    }

    /// Sequential decompressed bytes from `offset`.
    pub fn reader_at(&self, src: Arc<dyn ByteSource>, offset: u64) -> io::Result<Box<dyn Read + Send>> {
        each!(self, StreamIndex, x => Ok(Box::new(x.reader_at(src, offset)?)))
    }

    /// Serialized for the persistent index: a table loaded at every mount, and gzip's windows,
    /// which stay in the index file and are read on demand.
    pub fn to_parts(&self) -> io::Result<(Vec<u8>, Vec<u8>)> {
        each!(self, StreamIndex, x => x.to_parts())
    }

    /// Parses [`to_parts`](Self::to_parts) output for `codec`.
    pub fn from_parts(codec: Codec, table: &[u8], windows: WindowSource) -> Result<StreamIndex, FormatError> {
        Ok(match codec {
            Codec::Gzip => StreamIndex::Gz(Index::from_parts(table, windows)?),
            Codec::Bzip2 => StreamIndex::Bz2(Index::from_parts(table, windows)?),
            Codec::Xz => StreamIndex::Xz(Index::from_parts(table, windows)?),
            Codec::Zstd => StreamIndex::Zst(Index::from_parts(table, windows)?),
        })
    }
}
