//! Loading a sync's output back into PostgreSQL and comparing it with the source table.

use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use connector_postgres::arrow::render::{Column, Syntax};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sqlx::{AssertSqlSafe, Executor, PgConnection, Row};

use super::{Scratch, TestDb};

/// Session settings under which `::text` prints what the sync writes.
pub const PRINT: &str = "SET timezone = 'UTC'; SET datestyle = 'ISO, YMD'; \
                         SET intervalstyle = 'postgres'; SET extra_float_digits = 1; \
                         SET bytea_output = 'hex'";

/// The output files of a format, in order (the snapshot, or the parts).
pub fn outputs(dir: &Scratch, format: &str) -> Vec<PathBuf> {
    dir.files("out")
        .into_iter()
        .filter(|n| n.ends_with(&format!(".{format}")))
        .map(|n| dir.path().join("out").join(n))
        .collect()
}

pub async fn connect(db: &TestDb) -> PgConnection {
    db.server.connect(&db.name).await.expect("connect")
}

/// Loads `files` of `format` into a new table `back` shaped like `table`.
pub async fn load_back(
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
pub fn parquet_as_csv(file: &Path) -> Vec<u8> {
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
pub async fn mismatches(
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
            "(SELECT 'lost' AS side, id::bigint, {expr} AS v FROM {table} \
              EXCEPT ALL SELECT 'lost', id::bigint, {expr} FROM {back}) \
             UNION ALL \
             (SELECT 'added', id::bigint, {expr} FROM {back} \
              EXCEPT ALL SELECT 'added', id::bigint, {expr} FROM {table}) \
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

/// What `COPY (SELECT * FROM table ORDER BY id) TO STDOUT (FORMAT csv, HEADER)` writes under
/// [`PRINT`]; `select` replaces `*` when given.
pub async fn copy_csv_out(conn: &mut PgConnection, table: &str, select: Option<&str>) -> Vec<u8> {
    use futures_util::TryStreamExt;
    conn.execute(PRINT).await.unwrap();
    let mut out = conn
        .copy_out_raw(&format!(
            "COPY (SELECT {} FROM {table} ORDER BY id) TO STDOUT (FORMAT csv, HEADER)",
            select.unwrap_or("*")
        ))
        .await
        .unwrap();
    let mut bytes = Vec::new();
    while let Some(chunk) = out.try_next().await.unwrap() {
        bytes.extend_from_slice(&chunk);
    }
    bytes
}

/// The first line where two CSV texts differ, for a failure message.
pub fn first_difference(ours: &[u8], theirs: &[u8]) -> String {
    let (a, b) = (
        String::from_utf8_lossy(ours),
        String::from_utf8_lossy(theirs),
    );
    let line = a.lines().zip(b.lines()).position(|(x, y)| x != y);
    format!(
        "line {line:?}:\nours:   {:.400}\ntheirs: {:.400}",
        line.and_then(|l| a.lines().nth(l)).unwrap_or("(end)"),
        line.and_then(|l| b.lines().nth(l)).unwrap_or("(end)")
    )
}
