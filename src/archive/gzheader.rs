//! Gzip member headers (RFC 1952): recognising one, and parsing one from the buffered
//! compressed input, its optional fields skipped and its header CRC checked.

use std::io;

use crate::archive::seekidx::{Feed, Input, eof, invalid};

/// True when `first_bytes` (at least 3, ideally 4) start like a gzip member header.
pub fn looks_like_gzip(first_bytes: &[u8]) -> bool {
    first_bytes.len() >= 3
        && first_bytes[0] == 0x1f
        && first_bytes[1] == 0x8b
        && first_bytes[2] == 8
        && first_bytes.get(3).is_none_or(|f| f & 0xe0 == 0)
}

/// Gzip member headers, parsed from the shared buffered input (`seekidx::Input`).
pub(crate) trait GzipHeader {
    /// Parses and skips a gzip member header (RFC 1952), checking FHCRC when present.
    fn gzip_header(&mut self) -> io::Result<()>;
}

impl<F: Feed> GzipHeader for Input<F> {
    fn gzip_header(&mut self) -> io::Result<()> {
        let at = self.pos();
        let trunc = || eof(format!("truncated gzip header at compressed offset {at}"));
        let mut h = crc32fast::Hasher::new();
        let mut fixed = [0u8; 10];
        self.exact(&mut fixed)?.ok_or_else(trunc)?;
        if fixed[0] != 0x1f || fixed[1] != 0x8b {
            return Err(invalid(format!("no gzip header at compressed offset {at}")));
        }
        if fixed[2] != 8 {
            return Err(invalid(format!(
                "unsupported compression method {} in gzip header at compressed offset {at}",
                fixed[2]
            )));
        }
        let flg = fixed[3];
        if flg & 0xe0 != 0 {
            return Err(invalid(format!("reserved flag bits set in gzip header at compressed offset {at}")));
        }
        h.update(&fixed);
        if flg & 4 != 0 {
            let mut xlen = [0u8; 2];
            self.exact(&mut xlen)?.ok_or_else(trunc)?;
            h.update(&xlen);
            let mut left = u16::from_le_bytes(xlen) as usize;
            while left > 0 {
                if !self.fill()? {
                    return Err(trunc());
                }
                let a = self.avail();
                let n = a.len().min(left);
                h.update(&a[..n]);
                self.consume(n);
                left -= n;
            }
        }
        for flag in [8u8, 16] {
            if flg & flag != 0 {
                // Zero-terminated file name / comment.
                loop {
                    if !self.fill()? {
                        return Err(trunc());
                    }
                    let a = self.avail();
                    if let Some(i) = a.iter().position(|&b| b == 0) {
                        h.update(&a[..=i]);
                        self.consume(i + 1);
                        break;
                    }
                    h.update(a);
                    let n = a.len();
                    self.consume(n);
                }
            }
        }
        if flg & 2 != 0 {
            let mut crc16 = [0u8; 2];
            self.exact(&mut crc16)?.ok_or_else(trunc)?;
            if u16::from_le_bytes(crc16) != h.finalize() as u16 {
                return Err(invalid(format!("gzip header CRC mismatch at compressed offset {at}")));
            }
        }
        Ok(())
    }
}
