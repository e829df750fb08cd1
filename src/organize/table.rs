//! Label tables: CSV/TSV/line-list files found in the pool (or rows written in a profile), read
//! once and indexed by their join key.
//!
//! Real label files are messy (ChestX-ray14 headers with trailing commas and `[x,y,w,h]` split
//! over several cells, header-less MURA CSVs, JSRT TSVs with stray spaces), so reading is
//! lenient: ragged rows, a UTF-8 BOM, invalid UTF-8 and surrounding blanks are all accepted.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use csv::{ReaderBuilder, StringRecord, Trim};

use crate::organize::{ContentSource, PoolFile};
use crate::profile::field::ColumnAlt;
use crate::profile::{Table, TableFormat};

/// FNV-1a: table keys are short ids from trusted-enough files, and SipHash was a tenth of the
/// NIH-scale profile (224k lookups plus 112k inserts per run).
#[derive(Default)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for b in bytes {
            h ^= *b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// Key → rows map of a table.
pub type KeyIndex = HashMap<String, Vec<u32>, BuildHasherDefault<Fnv>>;

/// A table as read for one organize run.
#[derive(Debug, Default)]
pub struct LoadedTable {
    /// Basename of the (first) pool file read, for `table_file`.
    pub source_name: Option<String>,
    /// Archives the table was read from, for `dataset.json`.
    pub archives: Vec<String>,
    /// Header cells, trimmed and lower-cased; empty without a header.
    pub header: Vec<String>,
    /// Data rows.
    pub rows: Vec<StringRecord>,
    /// Key → row numbers, in file order.
    pub index: KeyIndex,
}

impl LoadedTable {
    /// Resolves a column reference against the header: first alternative that exists.
    pub fn resolve(&self, alts: &[ColumnAlt]) -> Option<usize> {
        alts.iter().find_map(|a| match a {
            ColumnAlt::Name(n) => {
                let n = n.trim().to_lowercase();
                self.header.iter().position(|h| *h == n)
            }
            ColumnAlt::Index(i) => Some(*i),
        })
    }

    /// Whether anything was read (a table missing from the pool stays empty).
    pub fn is_loaded(&self) -> bool {
        self.source_name.is_some() || !self.rows.is_empty()
    }
}

/// Reads a table from the chosen pool files (already ordered) or its inline rows.
pub fn load(
    table: &Table,
    files: &[usize],
    pool: &[PoolFile],
    content: &dyn ContentSource,
    warnings: &mut Vec<String>,
) -> LoadedTable {
    let mut out = LoadedTable::default();
    if let Some(rows) = &table.rows {
        out.rows = rows.iter().map(|r| StringRecord::from(r.clone())).collect();
    } else {
        for &i in files {
            let f = &pool[i];
            let bytes = match content.read_all(f.id) {
                Ok(b) => b,
                Err(e) => {
                    warnings.push(format!("table `{}`: cannot read {}:{}: {e}", table.name, f.archive, f.path));
                    continue;
                }
            };
            if out.source_name.is_none() {
                out.source_name = Some(f.path.rsplit('/').next().unwrap_or(&f.path).to_string());
            }
            if !out.archives.contains(&f.archive) {
                out.archives.push(f.archive.clone());
            }
            let first_file = out.header.is_empty();
            read_records(table, &bytes, first_file, &mut out);
        }
    }
    let Some(key_col) = out.resolve(&table.key) else {
        if out.is_loaded() {
            warnings.push(format!(
                "table `{}` ({}): no key column {:?} in the header; the table is ignored",
                table.name,
                out.source_name.as_deref().unwrap_or("inline"),
                table.key
            ));
        }
        return out;
    };
    let also: Vec<Option<usize>> = table.key_also.iter().map(|a| out.resolve(a)).collect();
    for (n, rec) in out.rows.iter().enumerate() {
        let Some(cell) = rec.get(key_col) else {
            continue;
        };
        let mut key = match (&table.key_pattern, &table.key_rewrite) {
            (Some(re), Some(rewrite)) => match re.captures(cell.trim()) {
                Some(c) => {
                    let mut k = String::new();
                    c.expand(rewrite, &mut k);
                    k
                }
                None => continue,
            },
            (Some(re), None) => match re.captures(cell.trim()).and_then(|c| c.name("key")) {
                Some(m) => m.as_str().to_string(),
                None => continue,
            },
            (None, _) => cell.trim().to_string(),
        };
        for (alts, col) in table.key_also.iter().zip(&also) {
            let _ = alts;
            key.push('|');
            key.push_str(col.and_then(|c| rec.get(c)).unwrap_or("").trim());
        }
        let slot = out.index.entry(key).or_default();
        if table.multi || slot.is_empty() {
            slot.push(n as u32);
        }
    }
    out
}

fn read_records(table: &Table, bytes: &[u8], take_header: bool, out: &mut LoadedTable) {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if table.format == TableFormat::Lines {
        let text = String::from_utf8_lossy(bytes);
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        if table.header
            && let Some(h) = lines.next()
            && take_header
        {
            out.header = vec![h.to_lowercase()];
        }
        out.rows.extend(lines.map(|l| StringRecord::from(vec![l])));
        return;
    }
    let mut rb = ReaderBuilder::new();
    rb.has_headers(false).flexible(true).trim(Trim::All);
    if table.format == TableFormat::Tsv {
        // JSRT text files are not CSV-quoted; a stray `"` must not swallow lines.
        rb.delimiter(b'\t').quoting(false);
    }
    let mut reader = rb.from_reader(bytes);
    let mut first = table.header;
    let mut rec = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            // Broken quoting etc.: keep what was read so far.
            Err(_) => break,
        }
        let srec = match StringRecord::from_byte_record(rec.clone()) {
            Ok(s) => s,
            Err(_) => {
                StringRecord::from(rec.iter().map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>())
            }
        };
        if first {
            first = false;
            if take_header {
                out.header = srec.iter().map(|c| c.trim().to_lowercase()).collect();
            }
            continue;
        }
        if srec.iter().all(|c| c.is_empty()) {
            continue;
        }
        out.rows.push(srec);
    }
}
