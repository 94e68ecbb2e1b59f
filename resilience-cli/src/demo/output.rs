//! The demo's result files, written atomically.
//!
//! Each file is written to a temporary name in the output folder, flushed to disk, then
//! renamed over the final name: a reader sees the previous file or the new one, never a
//! half-written one, even if the demo is interrupted.

use std::fs;
use std::io::Write;
use std::path::Path;

use super::seed::Counts;
use crate::error::CliError;

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
    let mut text = String::from(
        "test_name,customers_loaded,orders_loaded,products_loaded,order_items_loaded,status\n",
    );
    let fields = [
        "Resilient PostgreSQL Test".to_owned(),
        loaded.get("customers").to_string(),
        loaded.get("orders").to_string(),
        loaded.get("products").to_string(),
        loaded.get("order_items").to_string(),
        status.to_owned(),
    ];
    push_record(
        &mut text,
        &fields.iter().map(|f| Some(f.as_str())).collect::<Vec<_>>(),
    );
    write_atomic(dir, RESULTS_FILE, &text)
}

/// Writes `resilience_stress_test_results.csv`: one row per customer.
pub(crate) fn write_stress(dir: &Path, customers: &[CustomerRow]) -> Result<(), CliError> {
    let mut text = String::from("customer_id,customer_name,email,created_at,notes\n");
    for c in customers {
        let id = c.id.to_string();
        push_record(
            &mut text,
            &[
                Some(&id),
                Some(&c.name),
                Some(&c.email),
                Some(&c.created_at),
                c.notes.as_deref(),
            ],
        );
    }
    write_atomic(dir, STRESS_FILE, &text)
}

/// Appends one CSV record (RFC 4180): a field holding a comma, quote or line break is
/// quoted with inner quotes doubled; `None` is an empty field.
fn push_record(out: &mut String, fields: &[Option<&str>]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let field = field.unwrap_or("");
        if field.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(field);
        }
    }
    out.push('\n');
}

fn write_atomic(dir: &Path, name: &str, text: &str) -> Result<(), CliError> {
    fs::create_dir_all(dir).map_err(|e| CliError::io(format!("create {}", dir.display()), e))?;
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, &path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        CliError::io(format!("write {}", path.display()), e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_escaped() {
        let mut out = String::new();
        push_record(
            &mut out,
            &[Some("1"), Some("VIP, \"gold\""), None, Some("a\nb")],
        );
        assert_eq!(out, "1,\"VIP, \"\"gold\"\"\",,\"a\nb\"\n");
    }

    #[test]
    fn files_replace_atomically() {
        let dir =
            std::env::temp_dir().join(format!("resilient-demo-output-{}", std::process::id()));
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
        let customers = [CustomerRow {
            id: 1,
            name: "John Doe".into(),
            email: "john@example.com".into(),
            created_at: "2024-01-15".into(),
            notes: Some("VIP, prefers \"email\" contact".into()),
        }];
        write_stress(&dir, &customers).unwrap();
        let text = fs::read_to_string(dir.join(STRESS_FILE)).unwrap();
        assert_eq!(
            text,
            "customer_id,customer_name,email,created_at,notes\n\
             1,John Doe,john@example.com,2024-01-15,\"VIP, prefers \"\"email\"\" contact\"\n"
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
