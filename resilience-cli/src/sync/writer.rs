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
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::args::Format;
use crate::error::CliError;
use crate::sync::format::{self, BatchWriter};
use crate::sync::state::sync_dir;

/// A file being written; dropped without [`commit`](Self::commit), it is removed.
pub struct AtomicFile {
    tmp: PathBuf,
    target: PathBuf,
    encoder: Option<Box<dyn BatchWriter>>,
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
    /// Starts `dir/name` as a temporary file of `format` holding batches of `schema`.
    pub fn create(
        dir: &Path,
        name: &str,
        format: Format,
        schema: &SchemaRef,
    ) -> Result<AtomicFile, CliError> {
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let file = File::create(&tmp)
            .map_err(|e| CliError::io(format!("cannot create {}", tmp.display()), e))?;
        let target = dir.join(name);
        let encoder = format::writer(format, file, schema).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            encode_error(&target, e)
        })?;
        Ok(AtomicFile {
            tmp,
            target,
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
        let Some(encoder) = self.encoder.as_mut() else {
            return Err(CliError::Failed("write after commit".into()));
        };
        encoder
            .write(batch)
            .map_err(|e| encode_error(&self.target, e))?;
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
        let encoder = self
            .encoder
            .take()
            .ok_or_else(|| CliError::Failed("committed twice".into()))?;
        let file = encoder
            .finish()
            .map_err(|e| encode_error(&self.target, e))?;
        file.sync_all().map_err(|e| io("fsync", e))?;
        drop(file);
        fs::rename(&self.tmp, &self.target).map_err(|e| io("rename", e))?;
        let dir = crate::sync::state::parent(&self.target);
        sync_dir(&dir).map_err(|e| io("fsync the folder of", e))?;
        Ok(self.target.clone())
    }
}

/// A failed encoding: a write error is operational (exit 1); a value or column the format
/// cannot hold, or a table that changed mid-run, is for the operator to resolve (exit 2).
fn encode_error(target: &Path, e: format::FormatError) -> CliError {
    let message = format!("cannot write {}: {e}", target.display());
    match e {
        format::FormatError::Io(source) => {
            CliError::io(format!("cannot write {}", target.display()), source)
        }
        format::FormatError::Unsupported(_) | format::FormatError::SchemaChanged(_) => {
            CliError::Usage(message)
        }
        format::FormatError::Parquet(_) => CliError::Failed(message),
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
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        fs::create_dir_all(&dir).unwrap();
        let mut f =
            AtomicFile::create(&dir, "t.000001.csv", Format::Csv, &batch().schema()).unwrap();
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
        let mut g =
            AtomicFile::create(&dir, "t.000002.jsonl", Format::Jsonl, &batch().schema()).unwrap();
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
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        fs::create_dir_all(&dir).unwrap();
        // A non-empty folder where the file should go: the rename fails.
        fs::create_dir_all(dir.join("t.csv/occupied")).unwrap();
        let mut f = AtomicFile::create(&dir, "t.csv", Format::Csv, &batch().schema()).unwrap();
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
