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

    fn will_need(&self, mut offset: u64, len: u64) {
        let end = offset.saturating_add(len).min(self.len());
        while offset < end {
            let i = self.starts.partition_point(|&s| s <= offset) - 1;
            let part_end = self.starts[i] + self.parts[i].len();
            self.parts[i].will_need(offset - self.starts[i], end.min(part_end) - offset);
            offset = part_end;
        }
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

    #[test]
    fn a_read_ahead_hint_reaches_each_part_it_covers_in_its_own_offsets() {
        use std::sync::{Arc, Mutex};
        struct Recording(u64, Mutex<Vec<(u64, u64)>>);
        impl ByteSource for Recording {
            fn len(&self) -> u64 {
                self.0
            }
            fn read_at(&self, _: u64, _: &mut [u8]) -> io::Result<usize> {
                Ok(0)
            }
            fn describe(&self) -> String {
                "part".into()
            }
            fn will_need(&self, offset: u64, len: u64) {
                self.1.lock().unwrap().push((offset, len));
            }
        }
        let parts: Vec<Arc<Recording>> = (0..3).map(|_| Arc::new(Recording(100, Mutex::default()))).collect();
        let s = SplitSource::new(parts.iter().map(|p| p.clone() as Arc<dyn ByteSource>).collect(), "x.zip".into());
        s.will_need(90, 120);
        s.will_need(250, 1000);
        let seen: Vec<Vec<(u64, u64)>> = parts.iter().map(|p| p.1.lock().unwrap().clone()).collect();
        assert_eq!(seen, vec![vec![(90, 10)], vec![(0, 100)], vec![(0, 10), (50, 50)]]);
    }
}
