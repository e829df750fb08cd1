//! Label tables: CSV/TSV/line-list files and spreadsheets (`.xlsx`, `.xls`, `.ods`: the first
//! worksheet, read with calamine) found in the pool, or rows written in a profile; read once and
//! indexed by their join key.
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
            if is_workbook(&bytes) {
                if let Err(e) = read_workbook(table, &bytes, first_file, &mut out) {
                    warnings
                        .push(format!("table `{}`: {}:{}: {e}; its rows are left out", table.name, f.archive, f.path));
                }
                continue;
            }
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

/// A spreadsheet by its first bytes, whatever the file is called or the table's `format`: a zip
/// (`.xlsx`, `.ods`) or an OLE compound file (`.xls`). No text table starts like either.
fn is_workbook(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1])
}

/// The most a workbook's parts may hold once inflated, by their zip directory (a label table is a
/// few MiB; this keeps a zip bomb named `.xlsx` from inflating without bound).
const WORKBOOK_MAX_INFLATED: u64 = 256 << 20;

/// Reads the first worksheet of a spreadsheet as rows of text: numbers in their shortest form
/// (`87`, not `87.0`; `0.696`), booleans `true`/`false`, dates as their serial number, errors
/// and empty cells blank.
fn read_workbook(table: &Table, bytes: &[u8], take_header: bool, out: &mut LoadedTable) -> Result<(), String> {
    use calamine::{Data, Reader};
    if bytes.starts_with(b"PK\x03\x04") {
        let bad = |e: zip::result::ZipError| format!("not a readable spreadsheet: {e}");
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(bad)?;
        let mut inflated = 0u64;
        for i in 0..zip.len() {
            inflated = inflated.saturating_add(zip.by_index_raw(i).map_err(bad)?.size());
        }
        if inflated > WORKBOOK_MAX_INFLATED {
            return Err(format!("spreadsheet inflates to {inflated} bytes (more than {WORKBOOK_MAX_INFLATED})"));
        }
    }
    let mut book = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a readable spreadsheet: {e}"))?;
    let range = match book.worksheet_range_at(0) {
        Some(r) => r.map_err(|e| format!("first worksheet unreadable: {e}"))?,
        None => return Err("the spreadsheet has no worksheet".into()),
    };
    let text = |c: &Data| -> String {
        let num = |f: f64| if f.fract() == 0.0 && f.abs() < 1e15 { format!("{}", f as i64) } else { format!("{f}") };
        match c {
            Data::Int(i) => i.to_string(),
            Data::Float(f) => num(*f),
            Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.trim().to_string(),
            Data::Bool(b) => b.to_string(),
            Data::DateTime(d) => num(d.as_f64()),
            Data::Error(_) | Data::Empty => String::new(),
        }
    };
    let mut first = table.header;
    for row in range.rows() {
        let cells: Vec<String> = row.iter().map(text).collect();
        if first {
            first = false;
            if take_header {
                out.header = cells.iter().map(|c| c.to_lowercase()).collect();
            }
            continue;
        }
        if cells.iter().all(String::is_empty) {
            continue;
        }
        out.rows.push(StringRecord::from(cells));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    struct Bytes(Vec<Vec<u8>>);
    impl ContentSource for Bytes {
        fn read_all(&self, id: (u32, u32)) -> std::io::Result<Vec<u8>> {
            Ok(self.0[id.1 as usize].clone())
        }
    }

    fn table() -> Table {
        let p = crate::profile::parse(
            "t.toml",
            "title = \"T\"\n[[files]]\nrole = \"x\"\npath = 'x'\npatient = \"p\"\nstudy = \"s\"\n\
             [tables.t]\nfiles = ['t']\nkey = \"id\"\njoin = \"{patient}\"\n",
        )
        .unwrap();
        p.tables[0].clone()
    }

    fn load_bytes(files: Vec<Vec<u8>>) -> (LoadedTable, Vec<String>) {
        let pool: Vec<PoolFile> = (0..files.len())
            .map(|i| PoolFile {
                id: (0, i as u32),
                archive: "a".into(),
                path: format!("t{i}.xlsx"),
                size: 0,
                mtime: 0,
                dicom: None,
            })
            .collect();
        let mut warnings = Vec::new();
        let idx: Vec<usize> = (0..files.len()).collect();
        let t = load(&table(), &idx, &pool, &Bytes(files), &mut warnings);
        (t, warnings)
    }

    #[test]
    fn workbook_cells_as_text() {
        let book = crate::fixtures::xlsx(&[
            vec!["ID", "Age", "nWBV", "Group"],
            vec!["s1", "87", "0.696", "Nondemented"],
            vec!["s2", "", "1e3", "A & B <x>"],
        ]);
        let (t, w) = load_bytes(vec![book]);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(t.header, ["id", "age", "nwbv", "group"]);
        let rows: Vec<Vec<&str>> = t.rows.iter().map(|r| r.iter().collect()).collect();
        assert_eq!(rows, [vec!["s1", "87", "0.696", "Nondemented"], vec!["s2", "", "1000", "A & B <x>"]]);
        assert_eq!(t.index["s2"], [1]);
    }

    #[test]
    fn broken_workbooks_warn_and_read_nothing() {
        let book = crate::fixtures::xlsx(&[vec!["ID"], vec!["s1"]]);
        let (t, w) = load_bytes(vec![b"PK\x03\x04 not a zip".to_vec(), book[..book.len() / 2].to_vec()]);
        assert!(t.rows.is_empty());
        assert!(w[0].contains("a:t0.xlsx") && w[0].contains("not a readable spreadsheet"), "{w:?}");
        assert!(w[1].contains("a:t1.xlsx") && w[1].contains("not a readable spreadsheet"), "{w:?}");
    }
}
