//! `resilient sync` against a real PostgreSQL: a run killed in the middle (SIGKILL) or
//! interrupted (SIGINT) leaves consistent output and state, and the next run neither loses
//! nor repeats a row.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use common::{Scratch, TestDb, resilient, sync_in, text};

const ROWS: i64 = 30_000;

fn setup(tag: &str) -> TestDb {
    TestDb::create(
        tag,
        &format!(
            "CREATE TABLE events (id bigint PRIMARY KEY, payload text NOT NULL, updated_at timestamp NOT NULL);
             INSERT INTO events SELECT g, 'p' || g, TIMESTAMP '2024-01-01' + (g / 10) * INTERVAL '1 second'
             FROM generate_series(1, {ROWS}) g;"
        ),
    )
}

/// A pipeline with small pages and one part per page, so a run makes many commits; the
/// `db` policy's rate limit (burst 50, then 5 pages a second) keeps it running long
/// enough to be interrupted.
fn write_pipeline(dir: &Scratch, db: &TestDb) {
    std::fs::write(
        dir.path().join("p.toml"),
        format!(
            "[pipeline]\npage_size = 400\ncommit_rows = 400\n\n[connections.main]\n{}\n\
             [[sources]]\nname = \"events\"\ntype = \"postgres\"\nconnection = \"main\"\ntable = \"events\"\n\
             sync_mode = \"incremental\"\ncursor_field = \"updated_at\"\n",
            db.connection_toml()
        ),
    )
    .unwrap();
}

fn spawn_sync(dir: &Scratch, extra: &[&str]) -> Child {
    resilient()
        .current_dir(dir.path())
        .args(["sync", "--config", "p.toml", "--output", "out"])
        .args(["--state", "st/state.json"])
        .args(extra)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until the child has committed at least one part; returns the rest of stderr and
/// the lines read so far.
fn wait_for_commit(child: &mut Child) -> (BufReader<std::process::ChildStderr>, String) {
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = stderr.read_line(&mut line).unwrap();
        assert!(n > 0, "sync ended before committing: {seen}");
        seen.push_str(&line);
        if line.contains("committed part") {
            return (stderr, seen);
        }
    }
}

/// `GET /metrics` from the address a sync announced in its log.
fn scrape(log: &str) -> String {
    let url = log
        .lines()
        .find_map(|l| l.split("serving Prometheus metrics on http://").nth(1))
        .expect("the metrics address is logged");
    let addr = url.split('/').next().unwrap();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    std::io::Write::write_all(
        &mut stream,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response).unwrap();
    response
}

/// Every id in the output, with how often it appears; checks there are no temp files.
fn output_ids(dir: &Scratch) -> BTreeMap<i64, u32> {
    let mut ids = BTreeMap::new();
    for name in dir.files("out") {
        assert!(
            !name.ends_with(".tmp"),
            "temporary file left behind: {name}"
        );
        let text = std::fs::read_to_string(dir.path().join("out").join(&name)).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("id,payload,updated_at"),
            "{name} has a header"
        );
        for line in lines {
            let id: i64 = line.split(',').next().unwrap().parse().unwrap();
            *ids.entry(id).or_insert(0) += 1;
        }
    }
    ids
}

fn state_rows(dir: &Scratch) -> u64 {
    let text = std::fs::read_to_string(dir.path().join("st/state.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["sources"]["events"]["rows"].as_u64().unwrap()
}

fn assert_exactly(ids: &BTreeMap<i64, u32>, expected: impl Iterator<Item = i64>) {
    let expected: Vec<i64> = expected.collect();
    let repeated: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(repeated.is_empty(), "rows written twice: {repeated:?}");
    let got: Vec<i64> = ids.keys().copied().collect();
    assert_eq!(got.len(), expected.len(), "row count");
    assert_eq!(got, expected, "every row exactly once");
}

#[test]
fn killed_sync_resumes_without_losing_or_repeating_rows() {
    let db = setup("kill");
    let dir = Scratch::new("kill");
    write_pipeline(&dir, &db);

    let mut child = spawn_sync(&dir, &[]);
    let _stderr = wait_for_commit(&mut child);
    child.kill().unwrap();
    child.wait().unwrap();

    // What the killed run committed is consistent: the state covers exactly the parts.
    let committed = state_rows(&dir);
    assert!(
        committed > 0 && committed < ROWS as u64,
        "killed mid-run ({committed} rows)"
    );
    let ids = output_ids(&dir);
    assert!(ids.len() as u64 >= committed);
    // A kill between a part's rename and the state update leaves a part the state does not
    // list; the next run must delete it rather than keep its rows twice.
    let state = std::fs::read_to_string(dir.path().join("st/state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let next = state["sources"]["events"]["next_part"].as_u64().unwrap();
    std::fs::write(
        dir.path().join(format!("out/events.{next:06}.csv")),
        "id,payload,updated_at\n1,p1,2024-01-01T00:00:00\n",
    )
    .unwrap();

    let out = sync_in(dir.path(), &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_exactly(&output_ids(&dir), 1..=ROWS);
    assert_eq!(state_rows(&dir), ROWS as u64);

    // New rows arrive: the next run appends exactly those.
    common::rt().block_on(db.exec(&format!(
        "INSERT INTO events SELECT g, 'p' || g, TIMESTAMP '2025-01-01' FROM generate_series({}, {}) g",
        ROWS + 1,
        ROWS + 250
    )));
    let out = sync_in(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    assert_exactly(&output_ids(&dir), 1..=ROWS + 250);
}

#[cfg(unix)]
#[test]
fn interrupted_sync_exits_1_and_keeps_output_and_state_consistent() {
    let db = setup("sigint");
    let dir = Scratch::new("sigint");
    write_pipeline(&dir, &db);

    let mut child = spawn_sync(&dir, &["--metrics-addr", "127.0.0.1:0"]);
    let (mut stderr, log) = wait_for_commit(&mut child);
    let metrics = scrape(&log);
    assert!(metrics.starts_with("HTTP/1.1 200 OK"), "{metrics}");
    assert!(
        metrics.contains("# TYPE resilience_calls_total counter"),
        "{metrics}"
    );
    let calls = format!(
        "resilience_calls_total{{policy=\"db\",key=\"{}\"}}",
        db.host_key()
    );
    assert!(metrics.contains(&calls), "{metrics}");
    assert!(
        metrics.contains("sync_rows_total{source=\"events\"}"),
        "{metrics}"
    );
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(1), "{rest}");
    assert!(rest.contains("interrupted: Ctrl-C received"), "{rest}");

    let ids = output_ids(&dir);
    assert_eq!(
        ids.len() as u64,
        state_rows(&dir),
        "output and state agree after Ctrl-C"
    );
    assert!(ids.len() < ROWS as usize);

    let out = sync_in(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    assert_exactly(&output_ids(&dir), 1..=ROWS);
}
