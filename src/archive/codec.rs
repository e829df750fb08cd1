//! The compressed-stream codecs behind one face: which codec a stream uses, an indexing pass
//! that yields decompressed bytes while recording seek points, and the resulting index.
//!
//! Each codec lives in its own module (gzindex, bz2index, xzindex, zstdindex) with the same
//! shape; this module is the one place that knows there are four.

use std::io::{self, Read};
use std::sync::Arc;

use super::bz2index::{self, Bz2Index, Bz2Indexer};
use super::gzindex;
pub use super::gzindex::{GzIndex, GzIndexer, WindowSource};
use super::xzindex::{self, XzIndex, XzIndexer};
use super::zstdindex::{self, ZstdIndex, ZstdIndexer};
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

impl Codec {
    /// All codecs, in detection order.
    pub const ALL: [Codec; 4] = [Codec::Gzip, Codec::Bzip2, Codec::Xz, Codec::Zstd];

    /// The codec whose magic starts `head`.
    pub fn detect(head: &[u8]) -> Option<Codec> {
        Codec::ALL.into_iter().find(|c| match c {
            Codec::Gzip => gzindex::looks_like_gzip(head),
            Codec::Bzip2 => bz2index::looks_like_bzip2(head),
            Codec::Xz => xzindex::looks_like_xz(head),
            Codec::Zstd => zstdindex::looks_like_zstd(head),
        })
    }

    /// File-name suffixes of a bare compressed file, stripped to name its content.
    pub fn suffixes(self) -> &'static [&'static str] {
        match self {
            Codec::Gzip => &[".gz", ".GZ", ".gzip"],
            Codec::Bzip2 => &[".bz2", ".BZ2", ".bzip2"],
            Codec::Xz => &[".xz", ".XZ"],
            Codec::Zstd => &[".zst", ".ZST", ".zstd"],
        }
    }

    /// Wanted distance between seek points. Gzip points cost a 32 KiB window each, so they are
    /// placed to keep the index under 5% of the archive while a random read of a ~70 KB member
    /// inflates well under 1 MiB; the others sit on block/frame boundaries and cost bytes.
    pub fn spacing(self) -> u64 {
        match self {
            Codec::Gzip => 832 << 10,
            Codec::Bzip2 | Codec::Xz | Codec::Zstd => 1 << 20,
        }
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
        match self {
            Indexer::Gz(i) => i.read(buf),
            Indexer::Bz2(i) => i.read(buf),
            Indexer::Xz(i) => i.read(buf),
            Indexer::Zst(i) => i.read(buf),
        }
    }
}

impl<R: Read> Indexer<R> {
    /// The index of what decoded, and the error that stopped the pass, if any.
    pub fn finish_partial(self) -> (StreamIndex, Option<io::Error>) {
        match self {
            Indexer::Gz(i) => {
                let (x, e) = i.finish_partial();
                (StreamIndex::Gz(x), e)
            }
            Indexer::Bz2(i) => {
                let (x, e) = i.finish_partial();
                (StreamIndex::Bz2(x), e)
            }
            Indexer::Xz(i) => {
                let (x, e) = i.finish_partial();
                (StreamIndex::Xz(x), e)
            }
            Indexer::Zst(i) => {
                let (x, e) = i.finish_partial();
                (StreamIndex::Zst(x), e)
            }
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

macro_rules! each {
    ($self:expr, $x:ident => $e:expr) => {
        match $self {
            StreamIndex::Gz($x) => $e,
            StreamIndex::Bz2($x) => $e,
            StreamIndex::Xz($x) => $e,
            StreamIndex::Zst($x) => $e,
        }
    };
}

impl StreamIndex {
    /// Length of the decompressed stream covered.
    pub fn uncompressed_len(&self) -> u64 {
        each!(self, x => x.uncompressed_len())
    }

    /// Decompressed bytes covered by checks (CRCs) that passed.
    pub fn verified_len(&self) -> u64 {
        each!(self, x => x.verified_len())
    }

    /// Non-fatal problems met while indexing.
    pub fn warnings(&self) -> &[String] {
        each!(self, x => x.warnings())
    }

    /// The span `(index, start, end)` holding `offset`.
    pub fn span_of(&self, offset: u64) -> (usize, u64, u64) {
        each!(self, x => x.span_of(offset))
    }

    /// Working memory of a decoder started at a seek point that decodes `decoded` bytes, for
    /// the memory budget: zlib's state and buffers for gzip; bzip2's block tables (up to 900 kB
    /// blocks); for xz and zstd the dictionary or window, of which a decoder touches at most
    /// what it has decoded since its seek point (pages of a larger dictionary are never
    /// touched), plus their buffers.
    pub fn decoder_bytes(&self, decoded: u64) -> usize {
        let decoded = usize::try_from(decoded).unwrap_or(usize::MAX);
        match self {
            StreamIndex::Gz(_) => 384 << 10,
            StreamIndex::Bz2(_) => 4 << 20,
            StreamIndex::Xz(_) | StreamIndex::Zst(_) => (512usize << 10).saturating_add(decoded),
        }
    }

    /// Decompresses span `i` whole (OutOfMemory, before allocating, when longer than `max`).
    pub fn read_span(&self, src: Arc<dyn ByteSource>, i: usize, max: usize) -> io::Result<Vec<u8>> {
        each!(self, x => x.read_span(src, i, max))
    }

    /// Sequential decompressed bytes from `offset`.
    pub fn reader_at(&self, src: Arc<dyn ByteSource>, offset: u64) -> io::Result<Box<dyn Read + Send>> {
        Ok(match self {
            StreamIndex::Gz(x) => Box::new(x.reader_at(src, offset)?),
            StreamIndex::Bz2(x) => Box::new(x.reader_at(src, offset)?),
            StreamIndex::Xz(x) => Box::new(x.reader_at(src, offset)?),
            StreamIndex::Zst(x) => Box::new(x.reader_at(src, offset)?),
        })
    }

    /// Serialized for the persistent index: a table loaded at every mount, and gzip's windows,
    /// which stay in the index file and are read on demand.
    pub fn to_parts(&self) -> io::Result<(Vec<u8>, Vec<u8>)> {
        match self {
            StreamIndex::Gz(x) => x.to_parts(),
            StreamIndex::Bz2(x) => Ok((x.to_bytes(), Vec::new())),
            StreamIndex::Xz(x) => Ok((x.to_bytes(), Vec::new())),
            StreamIndex::Zst(x) => Ok((x.to_bytes(), Vec::new())),
        }
    }

    /// Parses [`to_parts`](Self::to_parts) output for `codec`.
    pub fn from_parts(codec: Codec, table: &[u8], windows: WindowSource) -> Result<StreamIndex, FormatError> {
        Ok(match codec {
            Codec::Gzip => StreamIndex::Gz(GzIndex::from_parts(table, windows)?),
            Codec::Bzip2 => StreamIndex::Bz2(Bz2Index::from_bytes(table)?),
            Codec::Xz => StreamIndex::Xz(XzIndex::from_bytes(table)?),
            Codec::Zstd => StreamIndex::Zst(ZstdIndex::from_bytes(table)?),
        })
    }
}
