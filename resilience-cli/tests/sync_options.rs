//! `resilient sync` source options: `null_cursor` and `lag`.

mod common;

use common::{Scratch, TestDb, sync_in, text};

fn pipeline(dir: &Scratch, db: &TestDb, table: &str, cursor: &str, extra: &str) {
    std::fs::write(
        dir.path().join("p.toml"),
        format!(
            "[connections.main]\n{}\n[[sources]]\nname = \"{table}\"\ntype = \"postgres\"\n\
             connection = \"main\"\ntable = \"{table}\"\nsync_mode = \"incremental\"\n\
             cursor_field = \"{cursor}\"\n{extra}",
            db.connection_toml()
        ),
    )
    .unwrap();
}

fn sync(dir: &Scratch) -> (Option<i32>, String) {
    let out = sync_in(dir.path(), &[]);
    (out.status.code(), text(&out).1)
}

/// Every id in the CSV output (first column), sorted, duplicates kept.
fn ids(dir: &Scratch) -> Vec<i64> {
    let mut ids = Vec::new();
    for name in dir.files("out") {
        let body = std::fs::read_to_string(dir.path().join("out").join(name)).unwrap();
        ids.extend(
            body.lines()
                .skip(1)
                .map(|l| l.split(',').next().unwrap().parse::<i64>().unwrap()),
        );
    }
    ids.sort();
    ids
}

fn state(dir: &Scratch) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.path().join("st/state.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn null_cursors_fail_by_default_and_are_counted_when_skipped() {
    let db = TestDb::create(
        "nullcur",
        "CREATE TABLE items (id bigint PRIMARY KEY, updated_at timestamp);
         INSERT INTO items SELECT g, CASE WHEN g % 4 = 0 THEN NULL
             ELSE TIMESTAMP '2024-01-01' + g * INTERVAL '1 minute' END
         FROM generate_series(1, 12) g;",
    );
    let dir = Scratch::new("nullcur");

    // The default is "error": nothing is written, and the message says how to opt out.
    pipeline(&dir, &db, "items", "updated_at", "");
    let (code, stderr) = sync(&dir);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("NULL"), "{stderr}");
    assert!(stderr.contains("null_cursor = \"skip\""), "{stderr}");
    assert!(dir.files("out").is_empty(), "{:?}", dir.files("out"));
    assert!(!dir.path().join("st/state.json").exists());

    // An explicit "error" behaves the same.
    pipeline(
        &dir,
        &db,
        "items",
        "updated_at",
        "null_cursor = \"error\"\n",
    );
    let (code, stderr) = sync(&dir);
    assert_eq!(code, Some(1), "{stderr}");

    // "skip": the other rows are copied, and the skipped ones are reported and recorded.
    pipeline(&dir, &db, "items", "updated_at", "null_cursor = \"skip\"\n");
    let (code, stderr) = sync(&dir);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(ids(&dir), [1, 2, 3, 5, 6, 7, 9, 10, 11]);
    assert_eq!(state(&dir)["sources"]["items"]["null_cursor_rows"], 3);
    assert!(
        stderr.contains("rows with a NULL cursor were skipped"),
        "{stderr}"
    );
}

#[test]
fn lag_rereads_late_commits_without_repeating_rows() {
    let db = TestDb::create(
        "lag",
        "CREATE TABLE seq (id bigint PRIMARY KEY, version bigint NOT NULL);
         INSERT INTO seq SELECT g, g * 10 FROM generate_series(1, 20) g;",
    );
    let dir = Scratch::new("lag");
    pipeline(&dir, &db, "seq", "version", "lag = 50\n");
    let (code, stderr) = sync(&dir);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(ids(&dir), (1..=20).collect::<Vec<_>>());
    // No index on the cursor: every page scans the table, and the run says how to fix it.
    assert!(
        stderr.contains(r#"CREATE INDEX ON "public"."seq" ("version")"#),
        "{stderr}"
    );

    // A row that committed late, below the checkpoint (200) but within the lag window,
    // and a row after it: the next run copies both, and nothing twice.
    common::rt().block_on(db.exec("INSERT INTO seq VALUES (100, 185), (101, 300)"));
    let (code, stderr) = sync(&dir);
    assert_eq!(code, Some(0), "{stderr}");
    let mut want: Vec<i64> = (1..=20).collect();
    want.extend([100, 101]);
    assert_eq!(ids(&dir), want);

    // Late again, below the new checkpoint (300), with nothing newer: still copied once.
    common::rt().block_on(db.exec("INSERT INTO seq VALUES (102, 250)"));
    let (code, stderr) = sync(&dir);
    assert_eq!(code, Some(0), "{stderr}");
    want.push(102);
    assert_eq!(ids(&dir), want);

    // A run that copied only a late row did not move the checkpoint back: the next run,
    // with nothing new, copies nothing (it used to copy the row at 200 again).
    let cursor = &state(&dir)["sources"]["seq"]["checkpoint"]["cursor"]["value"];
    assert_eq!(cursor, "300");
    let (code, stderr) = sync(&dir);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(ids(&dir), want);
}

#[test]
fn a_lag_that_does_not_fit_the_cursor_is_a_configuration_error() {
    let db = TestDb::create(
        "lagtype",
        "CREATE TABLE seq (id bigint PRIMARY KEY, version bigint NOT NULL);
         INSERT INTO seq VALUES (1, 1);",
    );
    let dir = Scratch::new("lagtype");
    pipeline(&dir, &db, "seq", "version", "lag = \"5m\"\n");
    let (code, stderr) = sync(&dir);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("lag"), "{stderr}");
    assert!(dir.files("out").is_empty(), "{:?}", dir.files("out"));
}
