//! Byte-split downloads (`train.zip.001`, `.002`, ...: one archive cut into byte ranges) read as
//! one archive, virtually: no concatenated copy is ever written.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use super::{ByteSource, FileSource};

/// The concatenation of several sources (files, or members of a bundle), readable at any offset.
pub struct SplitSource {
    parts: Vec<Arc<dyn ByteSource>>,
    /// Offset of each part in the whole, plus the total length at the end.
    starts: Vec<u64>,
    name: String,
}

impl SplitSource {
    /// Opens the files `paths`, in order.
    pub fn open(paths: &[PathBuf]) -> io::Result<SplitSource> {
        let parts = paths
            .iter()
            .map(|p| FileSource::open(p).map(|f| Arc::new(f) as Arc<dyn ByteSource>))
            .collect::<io::Result<Vec<_>>>()?;
        let first = paths.first().map(|p| p.display().to_string()).unwrap_or_default();
        Ok(SplitSource::new(parts, first))
    }

    /// The parts `parts`, in order, named after `first` (the first part's name).
    pub fn new(parts: Vec<Arc<dyn ByteSource>>, first: String) -> SplitSource {
        let mut starts = Vec::with_capacity(parts.len() + 1);
        let mut at = 0u64;
        for p in &parts {
            starts.push(at);
            at += p.len();
        }
        starts.push(at);
        let name = format!("{first} (+{} parts)", parts.len().saturating_sub(1));
        SplitSource { parts, starts, name }
    }
}

impl ByteSource for SplitSource {
    fn len(&self) -> u64 {
        *self.starts.last().expect("starts has the total")
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.len() || buf.is_empty() {
            return Ok(0);
        }
        // The part holding `offset`; a read never crosses into the next part (callers loop).
        let i = self.starts.partition_point(|&s| s <= offset) - 1;
        self.parts[i].read_at(offset - self.starts[i], buf)
    }

    fn describe(&self) -> String {
        self.name.clone()
    }

    fn bytes_read(&self) -> u64 {
        self.parts.iter().map(|p| p.bytes_read()).sum()
    }
}

/// Of parts sorted by number, how many run from `.001` without a gap (those are read; parts
/// after a gap are not), and the warning to give when some are left out. `shown` names the
/// archive.
pub fn leading_run<T>(sorted: &[(u32, T)], shown: &str) -> (usize, Option<String>) {
    let run = sorted.iter().enumerate().take_while(|(k, (n, _))| *n == *k as u32 + 1).count();
    let warning = (run > 0 && run < sorted.len()).then(|| {
        format!("warning: {shown}: parts after .{run:03} are missing; the archive is read from .001 to .{run:03} only")
    });
    (run, warning)
}

/// `train.zip.001` → `("train.zip", 1)`: a numbered part of an archive-looking name.
pub fn part_number(name: &str) -> Option<(&str, u32)> {
    let (base, num) = name.rsplit_once('.')?;
    if num.len() < 3 || !num.bytes().all(|b| b.is_ascii_digit()) || base.is_empty() {
        return None;
    }
    Some((base, num.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_read_as_one_file_across_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let whole: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut paths = Vec::new();
        for (i, chunk) in whole.chunks(3000).enumerate() {
            let p = dir.path().join(format!("x.zip.{:03}", i + 1));
            std::fs::write(&p, chunk).unwrap();
            paths.push(p);
        }
        let s = SplitSource::open(&paths).unwrap();
        assert_eq!(s.len(), 10_000);
        for (off, len) in [(0, 10_000), (2990, 20), (5999, 2), (9990, 100)] {
            let mut buf = vec![0u8; len];
            let n = (len as u64).min(10_000 - off) as usize;
            s.read_exact_at(off, &mut buf[..n]).unwrap();
            assert_eq!(&buf[..n], &whole[off as usize..off as usize + n]);
        }
        assert_eq!(part_number("train.zip.001"), Some(("train.zip", 1)));
        assert_eq!(part_number("train.zip.12"), None);
        assert_eq!(part_number("notes.txt"), None);
    }
}
