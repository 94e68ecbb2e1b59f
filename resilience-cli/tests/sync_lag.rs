//! `resilient sync` with `lag` against a real PostgreSQL: a run killed in the middle
//! (SIGKILL) resumes, rows committed late inside the window are copied once, nothing is
//! copied twice, and the state file stays small however many rows the window holds.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::{Scratch, TestDb, resilient, sync_in, text};

const ROWS: i64 = 30_000;

/// Every id in the CSV output with how often it appears.
fn output_ids(dir: &Scratch) -> BTreeMap<i64, u32> {
    let mut ids = BTreeMap::new();
    for name in dir.files("out") {
        let body = std::fs::read_to_string(dir.path().join("out").join(&name)).unwrap();
        for line in body.lines().skip(1) {
            let id: i64 = line.split(',').next().unwrap().parse().unwrap();
            *ids.entry(id).or_insert(0) += 1;
        }
    }
    ids
}

fn assert_exactly(ids: &BTreeMap<i64, u32>, expected: &[i64]) {
    let repeated: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(repeated.is_empty(), "rows written twice: {repeated:?}");
    let got: Vec<i64> = ids.keys().copied().collect();
    assert_eq!(got.len(), expected.len(), "row count");
    assert_eq!(got, expected, "every row exactly once");
}

fn state_bytes(dir: &Scratch) -> u64 {
    std::fs::metadata(dir.path().join("st/state.json"))
        .unwrap()
        .len()
}

#[test]
fn killed_sync_with_lag_resumes_and_copies_late_commits_once_with_a_small_state() {
    let db = TestDb::create(
        "lagkill",
        &format!(
            "CREATE TABLE events (id bigint PRIMARY KEY, payload text NOT NULL, updated_at timestamp NOT NULL);
             CREATE INDEX ON events (updated_at);
             INSERT INTO events SELECT g, 'p' || g, TIMESTAMP '2024-01-01' + (g / 10) * INTERVAL '1 second'
             FROM generate_series(1, {ROWS}) g;"
        ),
    );
    let dir = Scratch::new("lagkill");
    // Small pages and one part per page, so the run commits often and the `db` policy's
    // rate limit keeps it running long enough to be killed; the window (2 h) holds every row.
    std::fs::write(
        dir.path().join("p.toml"),
        format!(
            "[pipeline]\npage_size = 400\ncommit_rows = 400\n\n[connections.main]\n{}\n\
             [[sources]]\nname = \"events\"\ntype = \"postgres\"\nconnection = \"main\"\ntable = \"events\"\n\
             sync_mode = \"incremental\"\ncursor_field = \"updated_at\"\nlag = \"2h\"\n",
            db.connection_toml()
        ),
    )
    .unwrap();

    let mut child = resilient()
        .current_dir(dir.path())
        .args(["sync", "--config", "p.toml", "--output", "out"])
        .args(["--state", "st/state.json"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "ended before committing: {seen}"
        );
        seen.push_str(&line);
        if line.contains("committed part") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // Rows committed late inside the window: the resumed run copies the rest and those.
    common::rt().block_on(db.exec(
        "INSERT INTO events SELECT g, 'late', TIMESTAMP '2024-01-01 00:05:00' FROM generate_series(40001, 40010) g",
    ));
    let out = sync_in(dir.path(), &[]);
    let stderr = text(&out).1;
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("CREATE INDEX"),
        "the cursor is indexed: {stderr}"
    );
    let mut want: Vec<i64> = (1..=ROWS).collect();
    want.extend(40001..=40010);
    assert_exactly(&output_ids(&dir), &want);
    // The window now holds all 30,000 rows; the state records snapshots, not the rows
    // (which took about 2 MB before).
    let bytes = state_bytes(&dir);
    assert!(bytes < 16_384, "state file of {bytes} bytes");

    // New rows move the window on.
    common::rt().block_on(db.exec(
        "INSERT INTO events SELECT g, 'new', TIMESTAMP '2024-01-02' FROM generate_series(40011, 40020) g",
    ));
    let out = sync_in(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    want.extend(40011..=40020);
    assert_exactly(&output_ids(&dir), &want);

    // Late again, inside the window below the new checkpoint (2024-01-02), then nothing:
    // copied once, then nothing more.
    common::rt().block_on(
        db.exec("INSERT INTO events VALUES (40021, 'late again', TIMESTAMP '2024-01-01 23:30:00')"),
    );
    let out = sync_in(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    want.push(40021);
    assert_exactly(&output_ids(&dir), &want);
    let out = sync_in(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    assert_exactly(&output_ids(&dir), &want);
}
