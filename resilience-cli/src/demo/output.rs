//! The demo's result files: CSV through the sync's own writer.
//!
//! The rows are Arrow record batches written by the same encoder and atomic file as
//! `resilient sync` (`sync::writer`): fsynced, renamed into place, so a reader sees the
//! previous file or the new one, never a half-written one; and every field in
//! PostgreSQL's CSV syntax (quoted when needed, NULL apart from the empty string).

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};

use super::seed::Counts;
use crate::args::Format;
use crate::error::CliError;
use crate::sync::writer::AtomicFile;

/// The summary file.
pub(crate) const RESULTS_FILE: &str = "resilience_test_results.csv";
/// The customers loaded under the stress configuration.
pub(crate) const STRESS_FILE: &str = "resilience_stress_test_results.csv";

/// One customer as loaded through the connector during the stress scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CustomerRow {
    pub id: i32,
    pub name: String,
    pub email: String,
    /// `YYYY-MM-DD`.
    pub created_at: String,
    pub notes: Option<String>,
}

/// Writes `resilience_test_results.csv`: one row with the rows loaded per table and the
/// status of the checks.
pub(crate) fn write_results(dir: &Path, loaded: &Counts, status: &str) -> Result<(), CliError> {
    let count =
        |table: &str| -> ArrayRef { Arc::new(Int64Array::from(vec![loaded.get(table) as i64])) };
    let batch = batch(vec![
        ("test_name", text(["Resilient PostgreSQL Test"])),
        ("customers_loaded", count("customers")),
        ("orders_loaded", count("orders")),
        ("products_loaded", count("products")),
        ("order_items_loaded", count("order_items")),
        ("status", text([status])),
    ])?;
    write_csv(dir, RESULTS_FILE, &batch)
}

/// Writes `resilience_stress_test_results.csv`: one row per customer.
pub(crate) fn write_stress(dir: &Path, customers: &[CustomerRow]) -> Result<(), CliError> {
    let batch = batch(vec![
        (
            "customer_id",
            Arc::new(Int32Array::from_iter_values(customers.iter().map(|c| c.id))),
        ),
        (
            "customer_name",
            text(customers.iter().map(|c| c.name.as_str())),
        ),
        ("email", text(customers.iter().map(|c| c.email.as_str()))),
        (
            "created_at",
            text(customers.iter().map(|c| c.created_at.as_str())),
        ),
        (
            "notes",
            Arc::new(StringArray::from_iter(
                customers.iter().map(|c| c.notes.as_deref()),
            )),
        ),
    ])?;
    write_csv(dir, STRESS_FILE, &batch)
}

fn text<'a>(values: impl IntoIterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> Result<RecordBatch, CliError> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| {
            Field::new(
                *name,
                array.data_type().clone(),
                *array.data_type() == DataType::Utf8,
            )
        })
        .collect();
    let arrays = columns.into_iter().map(|(_, array)| array).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .map_err(|e| CliError::Failed(format!("cannot build the demo's results: {e}")))
}

fn write_csv(dir: &Path, name: &str, batch: &RecordBatch) -> Result<(), CliError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::io(format!("create {}", dir.display()), e))?;
    let mut file = AtomicFile::create(dir, name, Format::Csv, &batch.schema())?;
    file.write(batch)?;
    file.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn files_replace_atomically() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let loaded = Counts([1000, 5000, 500, 15000]);
        write_results(&dir, &loaded, "All operations completed successfully").unwrap();
        write_results(&dir, &loaded, "All operations completed successfully").unwrap();
        let text = fs::read_to_string(dir.join(RESULTS_FILE)).unwrap();
        assert_eq!(
            text.lines().nth(1),
            Some(
                "Resilient PostgreSQL Test,1000,5000,500,15000,All operations completed successfully"
            )
        );
        let customers = [
            CustomerRow {
                id: 1,
                name: "John Doe".into(),
                email: "john@example.com".into(),
                created_at: "2024-01-15".into(),
                notes: Some("VIP, prefers \"email\" contact".into()),
            },
            CustomerRow {
                id: 2,
                name: "Ann".into(),
                email: "".into(),
                created_at: "2024-01-16".into(),
                notes: None,
            },
        ];
        write_stress(&dir, &customers).unwrap();
        let text = fs::read_to_string(dir.join(STRESS_FILE)).unwrap();
        assert_eq!(
            text,
            "customer_id,customer_name,email,created_at,notes\n\
             1,John Doe,john@example.com,2024-01-15,\"VIP, prefers \"\"email\"\" contact\"\n\
             2,Ann,\"\",2024-01-16,\n"
        );
        let leftovers = fs::read_dir(&dir).unwrap().filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".tmp")
        });
        assert_eq!(leftovers.count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }
}
