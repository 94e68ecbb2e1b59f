//! What a sync writes is what was in the database: every type and edge value, in every
//! format, full and incremental, loaded back by PostgreSQL itself and compared column by
//! column with `EXCEPT ALL` both ways.
//!
//! CSV is loaded with `COPY ... FROM (FORMAT csv, HEADER)` and must also equal, byte for
//! byte, what `COPY ... TO` writes; JSON lines with `json_populate_record`; Parquet is read
//! back with the `parquet` crate and loaded through its PostgreSQL text.

mod common;

use std::sync::Arc;

use common::roundtrip::{
    PRINT, connect, copy_csv_out, first_difference, load_back, mismatches, outputs,
};
use common::{Scratch, TestDb, rt, sync_in, text};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sqlx::Executor;

/// The table of every type and edge value.
const EVERY_TYPE: &str = include_str!("fixtures/every_type.sql");

const FORMATS: [&str; 3] = ["csv", "jsonl", "parquet"];

/// Writes a one-source pipeline for `table`; `incremental` gives the cursor column.
fn pipeline(dir: &Scratch, db: &TestDb, table: &str, incremental: Option<&str>) {
    let mode = match incremental {
        Some(cursor) => format!("sync_mode = \"incremental\"\ncursor_field = \"{cursor}\"\n"),
        None => "sync_mode = \"full\"\n".to_owned(),
    };
    let body = format!(
        "[pipeline]\nbatch_size = 2\ncommit_rows = 3\n\n[connections.main]\n{}\n\
         [[sources]]\nname = \"{table}\"\ntype = \"postgres\"\nconnection = \"main\"\n\
         table = \"{table}\"\n{mode}",
        db.connection_toml()
    );
    std::fs::write(dir.path().join("p.toml"), body).unwrap();
}

fn sync_ok(dir: &Scratch, format: &str) {
    let out = sync_in(dir.path(), &["--format", format]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
}

/// How a column of the every-type table compares after a round trip through `format`.
/// JSON lines has three documented limits, all in `json` / `jsonb` columns: a line break
/// between the tokens of a `json` value becomes a space (a JSON line cannot hold one); a
/// value that is JSON `null` reads back as SQL NULL (the line says `null` for both, as
/// `row_to_json` does); and `json_populate_record` re-escapes a `json` value that is a bare
/// string (the line holds the original text; see `jsonl_holds_the_exact_json_text`).
fn every_type_normalize(format: &str) -> impl Fn(&str) -> Option<String> + '_ {
    move |column| match (format, column) {
        ("jsonl", "c_json") => Some(format!(
            "CASE json_typeof({column}) WHEN 'null' THEN NULL \
             WHEN 'string' THEN {column} #>> '{{}}' \
             ELSE regexp_replace({column}::text, E'[\\n\\r]', ' ', 'g') END"
        )),
        ("jsonl", "c_jsonb") => Some(format!(
            "CASE jsonb_typeof({column}) WHEN 'null' THEN NULL ELSE {column}::text END"
        )),
        _ => None,
    }
}

#[test]
fn every_type_and_edge_value_round_trips_in_every_format_full_and_incremental() {
    let db = TestDb::create("fidelity", EVERY_TYPE);
    let mut failures = Vec::new();
    for format in FORMATS {
        for incremental in [None, Some("id")] {
            let dir = Scratch::new("fidelity");
            pipeline(&dir, &db, "every_type", incremental);
            sync_ok(&dir, format);
            let files = outputs(&dir, format);
            if incremental.is_some() {
                assert!(files.len() > 1, "{format}: several parts: {files:?}");
            }
            let back = format!(
                "back_{format}_{}",
                if incremental.is_some() {
                    "incr"
                } else {
                    "full"
                }
            );
            failures.extend(rt().block_on(async {
                let mut conn = connect(&db).await;
                load_back(&mut conn, "every_type", &back, format, &files).await;
                mismatches(&mut conn, "every_type", &back, every_type_normalize(format)).await
            }));
        }
    }
    assert!(
        failures.is_empty(),
        "values changed:\n{}",
        failures.join("\n")
    );
}

#[test]
fn csv_is_byte_for_byte_what_copy_writes() {
    let db = TestDb::create("copyident", EVERY_TYPE);
    let dir = Scratch::new("copyident");
    pipeline(&dir, &db, "every_type", None);
    sync_ok(&dir, "csv");
    let ours = std::fs::read(dir.path().join("out/every_type.csv")).unwrap();
    let copy = rt().block_on(async {
        let mut conn = connect(&db).await;
        conn.execute(PRINT).await.unwrap();
        // xml through its cast to text: COPY prints xml with its output function, which drops
        // an XML declaration, and what it writes would read back without it; the sync keeps it.
        let select: Vec<String> = sqlx::query_scalar(
            "SELECT CASE WHEN atttypid = 'xml'::regtype \
                    THEN format('%I::text AS %I', attname, attname) \
                    ELSE format('%I', attname) END \
             FROM pg_attribute WHERE attrelid = 'every_type'::regclass \
             AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        copy_csv_out(&mut conn, "every_type", Some(&select.join(", "))).await
    });
    assert!(
        ours == copy,
        "the CSV differs from COPY's at {}",
        first_difference(&ours, &copy)
    );
}

#[test]
fn parquet_carries_logical_types_readers_understand() {
    use parquet::basic::{DecimalType, LogicalType, TimeUnit, TimestampType};
    let db = TestDb::create("pqtypes", EVERY_TYPE);
    let dir = Scratch::new("pqtypes");
    pipeline(&dir, &db, "every_type", None);
    sync_ok(&dir, "parquet");
    let file = std::fs::File::open(dir.path().join("out/every_type.parquet")).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let parquet = builder.parquet_schema();
    let logical = |name: &str| {
        let i = (0..parquet.num_columns())
            .find(|i| parquet.column(*i).name() == name)
            .unwrap_or_else(|| panic!("column {name}"));
        parquet.column(i).logical_type_ref().cloned()
    };
    assert_eq!(
        logical("c_num_bounded"),
        Some(LogicalType::Decimal(DecimalType {
            scale: 2,
            precision: 12
        }))
    );
    assert_eq!(logical("c_date"), Some(LogicalType::Date));
    assert!(matches!(
        logical("c_tstz"),
        Some(LogicalType::Timestamp(TimestampType {
            is_adjusted_to_u_t_c: true,
            unit: TimeUnit::MICROS
        }))
    ));
    assert!(matches!(
        logical("c_ts"),
        Some(LogicalType::Timestamp(TimestampType {
            is_adjusted_to_u_t_c: false,
            ..
        }))
    ));
    assert_eq!(logical("c_uuid"), Some(LogicalType::Uuid));
    assert_eq!(logical("c_jsonb"), Some(LogicalType::Json));
    assert_eq!(logical("c_text"), Some(LogicalType::String));
    // The Arrow schema is recorded with each column's PostgreSQL type.
    let arrow = builder.schema();
    assert_eq!(
        arrow.field_with_name("c_amount").unwrap().metadata()["postgres.type"],
        "amount"
    );
    assert_eq!(
        arrow.field_with_name("c_tstz").unwrap().data_type(),
        &arrow_schema::DataType::Timestamp(
            arrow_schema::TimeUnit::Microsecond,
            Some(Arc::from("UTC"))
        )
    );
}
