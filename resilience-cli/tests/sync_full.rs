//! `resilient sync` in full mode: one snapshot per run, replaced atomically.

mod common;

use common::{Scratch, TestDb, run_in, sync_in, text};

const ROWS: i64 = 5_000;

fn pipeline(dir: &Scratch, db: &TestDb, table: &str) {
    std::fs::write(dir.path().join("p.toml"), db.full_pipeline(table)).unwrap();
}

fn sync(dir: &Scratch, format: &str) {
    let out = sync_in(dir.path(), &["--format", format]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
}

#[test]
fn full_sync_rewrites_one_snapshot_per_run_in_jsonl() {
    let db = TestDb::create(
        "full",
        &format!(
            "CREATE TABLE events (id bigint PRIMARY KEY, payload text NOT NULL);
             INSERT INTO events SELECT g, 'p' || g FROM generate_series(1, {ROWS}) g;"
        ),
    );
    let dir = Scratch::new("full");
    pipeline(&dir, &db, "events");
    for round in 0..2 {
        sync(&dir, "jsonl");
        assert_eq!(dir.files("out"), ["events.jsonl"], "round {round}");
        let body = std::fs::read_to_string(dir.path().join("out/events.jsonl")).unwrap();
        let mut ids: Vec<i64> = body
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        ids.sort();
        assert_eq!(
            ids,
            (1..=ROWS).collect::<Vec<_>>(),
            "round {round}: every row once"
        );
    }
    let state = std::fs::read_to_string(dir.path().join("st/state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["sources"]["events"]["mode"], "full");
    assert_eq!(state["sources"]["events"]["rows"], ROWS);
}

#[test]
fn empty_table_gets_a_header_only_file() {
    let db = TestDb::create(
        "empty",
        "CREATE TABLE nothing (id int PRIMARY KEY, name text)",
    );
    let dir = Scratch::new("empty");
    pipeline(&dir, &db, "nothing");
    sync(&dir, "csv");
    let body = std::fs::read_to_string(dir.path().join("out/nothing.csv")).unwrap();
    assert_eq!(body, "id,name\n");
}

fn try_sync(dir: &Scratch, format: &str) -> (Option<i32>, String) {
    let out = sync_in(dir.path(), &["--format", format]);
    (out.status.code(), text(&out).1)
}

#[test]
fn full_sync_refuses_a_state_written_for_another_format_or_mode() {
    let db = TestDb::create(
        "fullswitch",
        "CREATE TABLE events (id bigint PRIMARY KEY, updated_at timestamp NOT NULL);
         INSERT INTO events SELECT g, TIMESTAMP '2024-01-01' FROM generate_series(1, 50) g;",
    );
    let dir = Scratch::new("fullswitch");
    pipeline(&dir, &db, "events");
    sync(&dir, "csv");
    let state_path = dir.path().join("st/state.json");
    let before = std::fs::read_to_string(&state_path).unwrap();

    // Another format would leave the CSV snapshot behind as a stale file.
    let (code, stderr) = try_sync(&dir, "jsonl");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("format csv"), "{stderr}");
    assert!(stderr.contains("delete the entry \"events\""), "{stderr}");
    assert_eq!(dir.files("out"), ["events.csv"]);
    assert_eq!(std::fs::read_to_string(&state_path).unwrap(), before);

    // A state entry from an incremental sync: its part files and checkpoint would be
    // silently left next to a new snapshot.
    let dir = Scratch::new("incrtofull");
    let incremental = format!(
        "[connections.main]\n{}\n[[sources]]\nname = \"events\"\ntype = \"postgres\"\n\
         connection = \"main\"\ntable = \"events\"\nsync_mode = \"incremental\"\n\
         cursor_field = \"updated_at\"\n",
        db.connection_toml()
    );
    std::fs::write(dir.path().join("p.toml"), incremental).unwrap();
    sync(&dir, "csv");
    assert_eq!(dir.files("out"), ["events.000001.csv"]);
    let state_path = dir.path().join("st/state.json");
    let before = std::fs::read_to_string(&state_path).unwrap();
    pipeline(&dir, &db, "events");
    let (code, stderr) = try_sync(&dir, "csv");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("incremental mode"), "{stderr}");
    assert!(stderr.contains("use a new --state"), "{stderr}");
    assert_eq!(dir.files("out"), ["events.000001.csv"], "no snapshot added");
    assert_eq!(std::fs::read_to_string(&state_path).unwrap(), before);
}

#[test]
fn missing_pipeline_file_is_a_usage_error() {
    let dir = Scratch::new("nopipeline");
    let out = run_in(dir.path(), &["sync", "--config", "absent.toml"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot read the pipeline file absent.toml"),
        "{stderr}"
    );
}

#[test]
fn a_partitioned_full_sync_writes_every_row_once_into_one_snapshot() {
    let db = TestDb::create(
        "fullparts",
        "CREATE TABLE events (id bigint PRIMARY KEY, payload text NOT NULL);
         INSERT INTO events SELECT g, 'p' || g FROM generate_series(1, 30000) g;
         ANALYZE events;",
    );
    let dir = Scratch::new("fullparts");
    let pipeline = format!(
        "[pipeline]\npartitions = 3\npage_size = 2000\n\n[connections.main]\n{}\n\
         [[sources]]\nname = \"events\"\ntype = \"postgres\"\nconnection = \"main\"\n\
         table = \"events\"\nsync_mode = \"full\"\n",
        db.connection_toml()
    );
    std::fs::write(dir.path().join("p.toml"), pipeline).unwrap();
    sync(&dir, "csv");
    assert_eq!(dir.files("out"), ["events.csv"]);
    let body = std::fs::read_to_string(dir.path().join("out/events.csv")).unwrap();
    let mut lines = body.lines();
    assert_eq!(lines.next(), Some("id,payload"));
    let rows: Vec<i64> = lines
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    // Each partition's rows come in key order; the partitions' runs interleave.
    let descents = rows.windows(2).filter(|w| w[1] < w[0]).count();
    assert!(descents >= 1, "three partitions interleave");
    let mut sorted = rows.clone();
    sorted.sort();
    assert_eq!(sorted, (1..=30_000).collect::<Vec<_>>(), "every row once");
}

#[test]
fn a_full_sync_says_when_the_rate_limit_not_the_server_bounds_it() {
    let db = TestDb::create(
        "fulllimit",
        "CREATE TABLE events (id bigint PRIMARY KEY, payload text NOT NULL);
         INSERT INTO events SELECT g, 'payload ' || g FROM generate_series(1, 150000) g;
         ANALYZE events;",
    );
    let dir = Scratch::new("fulllimit");
    // Pages capped at 1 MiB (about 30,000 rows here) under 60 calls a minute after a
    // burst of 1: pages reach the budget by the fourth, and each waits for its token
    // (one a second) far longer than the server takes to send it, even on a loaded
    // machine.
    let pipeline = format!(
        "[pipeline]\npage_memory_mb = 1\n\n[connections.main]\n{}\n[[sources]]\n\
         name = \"events\"\ntype = \"postgres\"\nconnection = \"main\"\ntable = \"events\"\n\
         sync_mode = \"full\"\n",
        db.connection_toml()
    );
    std::fs::write(dir.path().join("p.toml"), pipeline).unwrap();
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    std::fs::write(
        dir.path().join("policies/slow.toml"),
        "[policy.db.rate_limit]\nrequests_per_minute = 60\nburst = 1\n",
    )
    .unwrap();
    let out = common::sync_in(
        dir.path(),
        &[
            "--format",
            "csv",
            "--policy-dir",
            "policies",
            "--profile",
            "slow",
        ],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("the rate limit, not the server, bounds this read")
            && stderr.contains("policy `db` allows 60 calls a minute")
            && stderr.contains("raise rate_limit.requests_per_minute"),
        "{stderr}"
    );
    let body = std::fs::read_to_string(dir.path().join("out/events.csv")).unwrap();
    assert_eq!(body.lines().count(), 150_001);

    // Under the built-in limit the same read stays within the burst and says nothing.
    let dir = Scratch::new("fullnolimit");
    std::fs::write(
        dir.path().join("p.toml"),
        format!(
            "[connections.main]\n{}\n[[sources]]\nname = \"events\"\ntype = \"postgres\"\n\
             connection = \"main\"\ntable = \"events\"\nsync_mode = \"full\"\n",
            db.connection_toml()
        ),
    )
    .unwrap();
    let out = common::sync_in(dir.path(), &["--format", "csv"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("bounds this read"), "{stderr}");
}
