//! Output files that appear whole or not at all.
//!
//! Layout of the output folder:
//! - full sources: `<source>.<ext>`, the latest complete snapshot, replaced each run;
//! - incremental sources: `<source>.<part>.<ext>` (`customers.000001.csv`, ...), one file
//!   per committed batch of rows; the union of the parts is the table's history.
//!
//! A file is written as `.<final name>.<pid>.tmp` in the same folder, fsynced, renamed
//! into place and the folder fsynced; only then does the state advance. A part whose
//! number the state has not reached yet is left over from a run killed between the rename
//! and the state update: the next run deletes it (and stray temporary files) before it
//! writes, so no row is ever present twice (see `ownership`).

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;

use crate::args::Format;
use crate::error::CliError;
use crate::sync::state::sync_dir;

enum Encoder {
    Csv(Box<arrow_csv::Writer<BufWriter<File>>>),
    Jsonl(arrow_json::LineDelimitedWriter<BufWriter<File>>),
}

/// A file being written; dropped without [`commit`](Self::commit), it is removed.
pub struct AtomicFile {
    tmp: PathBuf,
    target: PathBuf,
    encoder: Option<Encoder>,
    rows: u64,
}

/// The final name of part `part` of `source`.
pub fn part_name(source: &str, part: u64, format: Format) -> String {
    format!("{source}.{part:06}.{}", format.extension())
}

/// The final name of a full snapshot of `source`.
pub fn full_name(source: &str, format: Format) -> String {
    format!("{source}.{}", format.extension())
}

impl AtomicFile {
    /// Starts `dir/name` as a temporary file.
    pub fn create(dir: &Path, name: &str, format: Format) -> Result<AtomicFile, CliError> {
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let file = File::create(&tmp)
            .map_err(|e| CliError::io(format!("cannot create {}", tmp.display()), e))?;
        let out = BufWriter::with_capacity(256 * 1024, file);
        let encoder = match format {
            Format::Csv => Encoder::Csv(Box::new(
                arrow_csv::WriterBuilder::new().with_header(true).build(out),
            )),
            Format::Jsonl => Encoder::Jsonl(arrow_json::LineDelimitedWriter::new(out)),
        };
        Ok(AtomicFile {
            tmp,
            target: dir.join(name),
            encoder: Some(encoder),
            rows: 0,
        })
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Appends a batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), CliError> {
        let result = match self.encoder.as_mut() {
            Some(Encoder::Csv(w)) => w.write(batch),
            Some(Encoder::Jsonl(w)) => w.write(batch),
            None => return Err(CliError::Failed("write after commit".into())),
        };
        result.map_err(|e| {
            CliError::Failed(format!(
                "cannot encode rows for {}: {e}",
                self.target.display()
            ))
        })?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Flushes, fsyncs, renames into place and fsyncs the folder: after this returns the
    /// file is durable under its final name.
    /// On any error the temporary file is removed.
    pub fn commit(mut self) -> Result<PathBuf, CliError> {
        let result = self.finish();
        if result.is_err() {
            let _ = fs::remove_file(&self.tmp);
        }
        result
    }

    fn finish(&mut self) -> Result<PathBuf, CliError> {
        let tmp = self.tmp.clone();
        let io = |what: &str, e| CliError::io(format!("cannot {what} {}", tmp.display()), e);
        let out = match self.encoder.take() {
            Some(Encoder::Csv(w)) => w.into_inner(),
            Some(Encoder::Jsonl(mut w)) => {
                w.finish()
                    .map_err(|e| CliError::Failed(format!("cannot finish JSON: {e}")))?;
                w.into_inner()
            }
            None => return Err(CliError::Failed("committed twice".into())),
        };
        let file = out.into_inner().map_err(|e| io("flush", e.into_error()))?;
        file.sync_all().map_err(|e| io("fsync", e))?;
        drop(file);
        fs::rename(&self.tmp, &self.target).map_err(|e| io("rename", e))?;
        let dir = crate::sync::state::parent(&self.target);
        sync_dir(&dir).map_err(|e| io("fsync the folder of", e))?;
        Ok(self.target.clone())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.encoder.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, RecordBatch};

    use super::*;

    fn batch() -> RecordBatch {
        RecordBatch::try_from_iter([("id", Arc::new(Int64Array::from(vec![1, 2])) as _)]).unwrap()
    }

    #[test]
    fn commit_renames_and_drop_removes() {
        let dir = std::env::temp_dir().join(format!("writer-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mut f = AtomicFile::create(&dir, "t.000001.csv", Format::Csv).unwrap();
        f.write(&batch()).unwrap();
        assert!(
            !dir.join("t.000001.csv").exists(),
            "invisible until committed"
        );
        f.commit().unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("t.000001.csv")).unwrap(),
            "id\n1\n2\n"
        );
        let mut g = AtomicFile::create(&dir, "t.000002.jsonl", Format::Jsonl).unwrap();
        g.write(&batch()).unwrap();
        drop(g);
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            names,
            ["t.000001.csv"],
            "an uncommitted file leaves nothing behind"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_commit_removes_its_temporary_file() {
        let dir = std::env::temp_dir().join(format!("writer-fail-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        // A non-empty folder where the file should go: the rename fails.
        fs::create_dir_all(dir.join("t.csv/occupied")).unwrap();
        let mut f = AtomicFile::create(&dir, "t.csv", Format::Csv).unwrap();
        f.write(&batch()).unwrap();
        let err = f.commit().unwrap_err();
        assert!(err.to_string().contains("cannot rename"), "{err}");
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["t.csv"], "no temporary file is left behind");
        fs::remove_dir_all(&dir).unwrap();
    }
}
