//! Regression tests, one per value a sync used to change or refuse (each failed before the
//! encoders wrote PostgreSQL's own syntax), and the refusals that stand in for values a
//! format cannot hold.

mod common;

use common::{Scratch, TestDb, rt, sync_in, text};

/// Writes a one-source pipeline for table `t`.
fn pipeline(dir: &Scratch, db: &TestDb, mode: &str) {
    let mode = match mode {
        "full" => "sync_mode = \"full\"\n".to_owned(),
        cursor => format!("sync_mode = \"incremental\"\ncursor_field = \"{cursor}\"\n"),
    };
    let body = format!(
        "[connections.main]\n{}\n[[sources]]\nname = \"t\"\ntype = \"postgres\"\n\
         connection = \"main\"\ntable = \"t\"\n{mode}",
        db.connection_toml()
    );
    std::fs::write(dir.path().join("p.toml"), body).unwrap();
}

fn read(dir: &Scratch, name: &str) -> String {
    std::fs::read_to_string(dir.path().join("out").join(name)).unwrap()
}

/// Syncs `t` in `format` (full) and returns the file's text.
fn sync_full(db: &TestDb, tag: &str, format: &str) -> String {
    let dir = Scratch::new(tag);
    pipeline(&dir, db, "full");
    let out = sync_in(dir.path(), &["--format", format]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    read(&dir, &format!("t.{format}"))
}

#[test]
fn timestamptz_column_syncs_in_every_format_and_mode() {
    let db = TestDb::create(
        "tstz",
        "CREATE TABLE t (id int PRIMARY KEY, updated_at timestamptz NOT NULL);
         INSERT INTO t VALUES (1, '2024-03-10 12:00:00+05:30'), (2, '2024-03-10 12:00:00-08'),
                              (3, '0044-03-15 12:00:00 BC'), (4, 'infinity'), (5, '-infinity');",
    );
    for format in ["csv", "jsonl", "parquet"] {
        for mode in ["full", "updated_at"] {
            let dir = Scratch::new("tstz");
            pipeline(&dir, &db, mode);
            let out = sync_in(dir.path(), &["--format", format]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{format} {mode}: {}",
                text(&out).1
            );
        }
    }
    let csv = sync_full(&db, "tstz-csv", "csv");
    assert_eq!(
        csv,
        "id,updated_at\n1,2024-03-10 06:30:00+00\n2,2024-03-10 20:00:00+00\n\
         3,0044-03-15 12:00:00+00 BC\n4,infinity\n5,-infinity\n",
        "UTC, and it says so"
    );
    let jsonl = sync_full(&db, "tstz-jsonl", "jsonl");
    assert!(
        jsonl.contains(r#"{"id":1,"updated_at":"2024-03-10T06:30:00+00:00"}"#),
        "{jsonl}"
    );
}

#[test]
fn infinity_dates_and_timestamps_are_written_as_infinity() {
    let db = TestDb::create(
        "inf",
        "CREATE TABLE t (id int PRIMARY KEY, d date, ts timestamp);
         INSERT INTO t VALUES (1, 'infinity', 'infinity'), (2, '-infinity', '-infinity');",
    );
    assert_eq!(
        sync_full(&db, "inf-csv", "csv"),
        "id,d,ts\n1,infinity,infinity\n2,-infinity,-infinity\n"
    );
    assert_eq!(
        sync_full(&db, "inf-jsonl", "jsonl"),
        "{\"id\":1,\"d\":\"infinity\",\"ts\":\"infinity\"}\n\
         {\"id\":2,\"d\":\"-infinity\",\"ts\":\"-infinity\"}\n"
    );
}

#[test]
fn float_nan_and_infinities_are_not_null_in_jsonl() {
    let db = TestDb::create(
        "nan",
        "CREATE TABLE t (id int PRIMARY KEY, f float8, r real);
         INSERT INTO t VALUES (1, 'NaN', 'NaN'), (2, 'Infinity', '-Infinity'), (3, '-0', '1e-45');",
    );
    assert_eq!(
        sync_full(&db, "nan-jsonl", "jsonl"),
        "{\"id\":1,\"f\":\"NaN\",\"r\":\"NaN\"}\n\
         {\"id\":2,\"f\":\"Infinity\",\"r\":\"-Infinity\"}\n\
         {\"id\":3,\"f\":-0,\"r\":1e-45}\n"
    );
}

#[test]
fn bytea_keeps_its_hex_prefix() {
    let db = TestDb::create(
        "bytea",
        "CREATE TABLE t (id int PRIMARY KEY, b bytea);
         INSERT INTO t VALUES (1, '\\xdeadbeef'), (2, '\\x');",
    );
    assert_eq!(
        sync_full(&db, "bytea-csv", "csv"),
        "id,b\n1,\\xdeadbeef\n2,\\x\n"
    );
    assert_eq!(
        sync_full(&db, "bytea-jsonl", "jsonl"),
        "{\"id\":1,\"b\":\"\\\\xdeadbeef\"}\n{\"id\":2,\"b\":\"\\\\x\"}\n"
    );
}

#[test]
fn bc_dates_and_timestamps_are_written_as_postgres_reads_them() {
    let db = TestDb::create(
        "bc",
        "CREATE TABLE t (id int PRIMARY KEY, d date, ts timestamp);
         INSERT INTO t VALUES (1, '0044-03-15 BC', '0044-03-15 12:30:00.25 BC');",
    );
    assert_eq!(
        sync_full(&db, "bc-csv", "csv"),
        "id,d,ts\n1,0044-03-15 BC,0044-03-15 12:30:00.25 BC\n"
    );
    assert_eq!(
        sync_full(&db, "bc-jsonl", "jsonl"),
        "{\"id\":1,\"d\":\"0044-03-15 BC\",\"ts\":\"0044-03-15T12:30:00.25 BC\"}\n"
    );
}

#[test]
fn csv_tells_null_from_the_empty_string() {
    let db = TestDb::create(
        "nullempty",
        "CREATE TABLE t (id int PRIMARY KEY, s text);
         INSERT INTO t VALUES (1, NULL), (2, ''), (3, 'NULL');",
    );
    assert_eq!(
        sync_full(&db, "nullempty-csv", "csv"),
        "id,s\n1,\n2,\"\"\n3,NULL\n"
    );
}

#[test]
fn numeric_nan_in_a_bounded_column_is_written_in_text_formats() {
    let db = TestDb::create(
        "nanbounded",
        "CREATE TABLE t (id int PRIMARY KEY, amount numeric(12, 2));
         INSERT INTO t VALUES (1, 'NaN'), (2, '12.50'), (3, NULL);",
    );
    assert_eq!(
        sync_full(&db, "nanbounded-csv", "csv"),
        "id,amount\n1,NaN\n2,12.50\n3,\n"
    );
    assert_eq!(
        sync_full(&db, "nanbounded-jsonl", "jsonl"),
        "{\"id\":1,\"amount\":\"NaN\"}\n{\"id\":2,\"amount\":12.50}\n{\"id\":3,\"amount\":null}\n"
    );
}

#[test]
fn numeric_nan_in_a_bounded_column_is_refused_by_parquet_with_nothing_written() {
    let db = TestDb::create(
        "nanparquet",
        "CREATE TABLE t (id int PRIMARY KEY, amount numeric(12, 2));
         INSERT INTO t SELECT g, g FROM generate_series(1, 10) g;",
    );
    // Full: the read refuses at the value, and nothing reaches the output or the state.
    rt().block_on(db.exec("UPDATE t SET amount = 'NaN' WHERE id = 7"));
    let dir = Scratch::new("nanparquet-full");
    pipeline(&dir, &db, "full");
    let out = sync_in(dir.path(), &["--format", "parquet"]);
    let err = text(&out).1;
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("column \"amount\" (numeric(12,2)) holds NaN")
            && err.contains("--format csv")
            && err.contains("nothing was committed"),
        "{err}"
    );
    assert!(dir.files("out").is_empty(), "{:?}", dir.files("out"));
    assert!(!dir.path().join("st/state.json").exists());

    // Incremental: a NaN among the rows after the checkpoint is refused before any part.
    rt().block_on(db.exec("UPDATE t SET amount = 7 WHERE id = 7"));
    let dir = Scratch::new("nanparquet-incr");
    pipeline(&dir, &db, "id");
    let out = sync_in(dir.path(), &["--format", "parquet"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let parts = dir.files("out");
    let state = std::fs::read(dir.path().join("st/state.json")).unwrap();
    rt().block_on(db.exec("INSERT INTO t VALUES (11, 'NaN'), (12, 12)"));
    let out = sync_in(dir.path(), &["--format", "parquet"]);
    let err = text(&out).1;
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("holds NaN in the rows to sync"), "{err}");
    assert_eq!(dir.files("out"), parts, "no part written");
    assert_eq!(
        std::fs::read(dir.path().join("st/state.json")).unwrap(),
        state,
        "state unchanged"
    );
}

#[test]
fn a_timestamp_beyond_294247_ad_is_refused_with_nothing_written() {
    let db = TestDb::create(
        "tsmax",
        "CREATE TABLE t (id int PRIMARY KEY, at timestamptz);
         INSERT INTO t VALUES (1, now()), (2, '294276-12-31 23:59:59.999999+00');",
    );
    let dir = Scratch::new("tsmax");
    pipeline(&dir, &db, "full");
    let out = sync_in(dir.path(), &["--format", "csv"]);
    let err = text(&out).1;
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("column \"at\" (timestamp with time zone) holds a timestamp after 294247 AD")
            && err.contains("casts the column to text"),
        "{err}"
    );
    assert!(dir.files("out").is_empty());
}

#[test]
fn jsonl_holds_the_exact_json_text() {
    // `json` keeps its text (escapes, key order, duplicate keys) and may hold `\u0000`, which
    // neither `jsonb` nor `json_populate_record` accepts: the line carries it verbatim.
    let db = TestDb::create(
        "jsontext",
        r#"CREATE TABLE t (id int PRIMARY KEY, j json, b jsonb);
           INSERT INTO t VALUES (1, '"\u00e9\n"', '"\u00e9"'),
                                (2, '{"a": "\u0000", "a": 2.50}', '{"a": 2.50}'),
                                (3, 'null', 'null'), (4, NULL, NULL);"#,
    );
    assert_eq!(
        sync_full(&db, "jsontext", "jsonl"),
        "{\"id\":1,\"j\":\"\\u00e9\\n\",\"b\":\"é\"}\n\
         {\"id\":2,\"j\":{\"a\": \"\\u0000\", \"a\": 2.50},\"b\":{\"a\": 2.50}}\n\
         {\"id\":3,\"j\":null,\"b\":null}\n\
         {\"id\":4,\"j\":null,\"b\":null}\n"
    );
    // CSV keeps the one difference JSON lines cannot show: JSON null against SQL NULL.
    assert_eq!(
        sync_full(&db, "jsontext-csv", "csv"),
        "id,j,b\n1,\"\"\"\\u00e9\\n\"\"\",\"\"\"é\"\"\"\n\
         2,\"{\"\"a\"\": \"\"\\u0000\"\", \"\"a\"\": 2.50}\",\"{\"\"a\"\": 2.50}\"\n\
         3,null,null\n4,,\n"
    );
}

#[test]
fn a_domain_is_written_as_its_base_type() {
    let db = TestDb::create(
        "domain",
        "CREATE DOMAIN money2 AS numeric(10, 2) CHECK (VALUE >= 0);
         CREATE DOMAIN stamp AS timestamptz;
         CREATE TABLE t (id int PRIMARY KEY, m money2, s stamp);
         INSERT INTO t VALUES (1, 12.5, '2024-01-01 00:00:00+02');",
    );
    assert_eq!(
        sync_full(&db, "domain-jsonl", "jsonl"),
        "{\"id\":1,\"m\":12.50,\"s\":\"2023-12-31T22:00:00+00:00\"}\n"
    );
}
