//! Byte rendering of the generated files: JSON sidecars and `labels.csv`.
//!
//! One format everywhere so that sizes are predictable and diffs are readable: JSON is
//! pretty-printed with two spaces, object keys sorted (serde_json's default map is ordered), and
//! a trailing newline; CSV is RFC 4180 with `\n` line ends.

use serde_json::Value;

/// A JSON sidecar's bytes.
pub fn json(v: &Value) -> Vec<u8> {
    // Rendered into a reused buffer, then copied out at its exact size: NIH renders 224k
    // sidecars, and both regrowth and spare capacity showed in the profile.
    thread_local!(static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) });
    BUF.with_borrow_mut(|buf| {
        buf.clear();
        serde_json::to_writer_pretty(&mut *buf, v).expect("a serde_json::Value always serializes");
        buf.push(b'\n');
        buf.as_slice().to_vec()
    })
}

/// A `labels.csv` cell: empty for null, text verbatim, numbers and booleans as JSON, lists and
/// objects as compact JSON.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Accumulates `labels.csv`.
pub struct LabelsCsv {
    writer: csv::Writer<Vec<u8>>,
}

impl LabelsCsv {
    /// Starts the file with its header.
    pub fn new(label_columns: &[String]) -> LabelsCsv {
        let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
        let mut header = vec!["path", "patient", "study", "split"];
        header.extend(label_columns.iter().map(String::as_str));
        writer.write_record(&header).expect("writing to a Vec cannot fail");
        LabelsCsv { writer }
    }

    /// Adds one row.
    pub fn row(&mut self, cells: &[String]) {
        self.writer.write_record(cells).expect("writing to a Vec cannot fail");
    }

    /// The finished bytes.
    pub fn finish(self) -> Vec<u8> {
        self.writer.into_inner().expect("flushing a Vec cannot fail")
    }
}

/// Completes a dataset's tree: adds `dataset.json` and `labels.csv`, and puts files and sidecars
/// in path order (names that sort differently as paths, a `-` vs `/`, need the final sort).
pub fn finish_dataset(
    files: &mut [super::DatasetFile],
    generated: &mut Vec<super::GeneratedFile>,
    dataset_json: &Value,
    labels: LabelsCsv,
) {
    generated.push(super::GeneratedFile { rel_path: "dataset.json".into(), bytes: json(dataset_json) });
    generated.push(super::GeneratedFile { rel_path: "labels.csv".into(), bytes: labels.finish() });
    files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    generated.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
}
