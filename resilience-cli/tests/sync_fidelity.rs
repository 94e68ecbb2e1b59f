//! What a sync writes is what was in the database: every type and edge value, in every
//! format, full and incremental, loaded back by PostgreSQL itself and compared column by
//! column with `EXCEPT ALL` both ways.
//!
//! CSV is loaded with `COPY ... FROM (FORMAT csv, HEADER)` and must also equal, byte for
//! byte, what `COPY ... TO` writes; JSON lines with `json_populate_record`; Parquet is read
//! back with the `parquet` crate and loaded through its PostgreSQL text.

mod common;

use std::path::Path;
use std::sync::Arc;

use arrow_array::RecordBatch;
use common::{Scratch, TestDb, rt, sync_in, text};
use connector_postgres::arrow::render::{Column, Syntax};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sqlx::{AssertSqlSafe, Executor, PgConnection, Row};

/// The table of every type and edge value.
const EVERY_TYPE: &str = include_str!("fixtures/every_type.sql");

/// Session settings under which `::text` prints what the sync writes.
const PRINT: &str = "SET timezone = 'UTC'; SET datestyle = 'ISO, YMD'; \
                     SET intervalstyle = 'postgres'; SET extra_float_digits = 1; \
                     SET bytea_output = 'hex'";

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

/// The output files of a format, in order (the snapshot, or the parts).
fn outputs(dir: &Scratch, format: &str) -> Vec<std::path::PathBuf> {
    dir.files("out")
        .into_iter()
        .filter(|n| n.ends_with(&format!(".{format}")))
        .map(|n| dir.path().join("out").join(n))
        .collect()
}

async fn connect(db: &TestDb) -> PgConnection {
    db.server.connect(&db.name).await.expect("connect")
}

/// Loads `files` of `format` into a new table `back` shaped like `table`.
async fn load_back(
    conn: &mut PgConnection,
    table: &str,
    back: &str,
    format: &str,
    files: &[std::path::PathBuf],
) {
    conn.execute(AssertSqlSafe(format!(
        "DROP TABLE IF EXISTS {back}; CREATE TABLE {back} (LIKE {table})"
    )))
    .await
    .unwrap();
    for file in files {
        match format {
            "csv" => copy_csv(conn, back, &std::fs::read(file).unwrap()).await,
            "jsonl" => {
                let body = std::fs::read_to_string(file).unwrap();
                for line in body.lines() {
                    sqlx::query(AssertSqlSafe(format!(
                        "INSERT INTO {back} SELECT * FROM json_populate_record(NULL::{back}, $1::json)"
                    )))
                    .bind(line)
                    .execute(&mut *conn)
                    .await
                    .unwrap_or_else(|e| panic!("loading {line:.200}: {e}"));
                }
            }
            "parquet" => {
                let csv = parquet_as_csv(file);
                copy_csv(conn, back, &csv).await;
            }
            other => panic!("unknown format {other}"),
        }
    }
}

async fn copy_csv(conn: &mut PgConnection, back: &str, bytes: &[u8]) {
    let mut copy = conn
        .copy_in_raw(&format!("COPY {back} FROM STDIN (FORMAT csv, HEADER)"))
        .await
        .unwrap();
    copy.send(bytes).await.unwrap();
    copy.finish().await.unwrap();
}

/// A Parquet file read back with the `parquet` crate, printed as CSV of PostgreSQL text
/// (every non-NULL value quoted, so that quoting cannot be what makes it pass).
fn parquet_as_csv(file: &Path) -> Vec<u8> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(file).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let mut out = Vec::new();
    let mut header = false;
    for batch in reader {
        let batch: RecordBatch = batch.unwrap();
        let schema = batch.schema();
        if !header {
            let names: Vec<_> = schema.fields().iter().map(|f| f.name().clone()).collect();
            out.extend_from_slice(names.join(",").as_bytes());
            out.push(b'\n');
            header = true;
        }
        let columns: Vec<Column> = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(a, f)| Column::new(a.as_ref(), f).unwrap())
            .collect();
        for row in 0..batch.num_rows() {
            for (i, column) in columns.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if column.is_null(row) {
                    continue;
                }
                let mut value = Vec::new();
                column.write(row, Syntax::Text, &mut value);
                out.push(b'"');
                for b in value {
                    if b == b'"' {
                        out.push(b'"');
                    }
                    out.push(b);
                }
                out.push(b'"');
            }
            out.push(b'\n');
        }
    }
    out
}

/// The columns of `table` whose text differs between `table` and `back` (both ways),
/// with a sample row each. `normalize` gives a column's comparison expression.
async fn mismatches(
    conn: &mut PgConnection,
    table: &str,
    back: &str,
    normalize: impl Fn(&str) -> Option<String>,
) -> Vec<String> {
    conn.execute(PRINT).await.unwrap();
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT attname::text FROM pg_attribute WHERE attrelid = $1::regclass \
         AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let rows: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {back}")))
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let want: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let mut bad = Vec::new();
    if rows != want {
        bad.push(format!("{back}: {rows} rows, want {want}"));
    }
    for column in columns {
        let expr = normalize(&column).unwrap_or_else(|| format!("\"{column}\"::text"));
        let sql = format!(
            "(SELECT 'lost' AS side, id, {expr} AS v FROM {table} \
              EXCEPT ALL SELECT 'lost', id, {expr} FROM {back}) \
             UNION ALL \
             (SELECT 'added', id, {expr} FROM {back} \
              EXCEPT ALL SELECT 'added', id, {expr} FROM {table}) \
             ORDER BY 2, 1 LIMIT 4"
        );
        let diff = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        if !diff.is_empty() {
            let sample: Vec<String> = diff
                .iter()
                .map(|r| {
                    let side: String = r.get(0);
                    let id: i64 = r.get(1);
                    let v: Option<String> = r.get(2);
                    format!("{side} id {id}: {:.120?}", v)
                })
                .collect();
            bad.push(format!("{back}.{column}: {}", sample.join("; ")));
        }
    }
    bad
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
        let mut out = conn
            .copy_out_raw(&format!(
                "COPY (SELECT {} FROM every_type ORDER BY id) TO STDOUT (FORMAT csv, HEADER)",
                select.join(", ")
            ))
            .await
            .unwrap();
        let mut bytes = Vec::new();
        use futures_util::TryStreamExt;
        while let Some(chunk) = out.try_next().await.unwrap() {
            bytes.extend_from_slice(&chunk);
        }
        bytes
    });
    if ours != copy {
        let (a, b) = (
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&copy),
        );
        let line = a.lines().zip(b.lines()).position(|(x, y)| x != y);
        panic!(
            "the CSV differs from COPY's at line {line:?}:\nours: {:.300}\ncopy: {:.300}",
            line.and_then(|l| a.lines().nth(l)).unwrap_or(""),
            line.and_then(|l| b.lines().nth(l)).unwrap_or("")
        );
    }
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
