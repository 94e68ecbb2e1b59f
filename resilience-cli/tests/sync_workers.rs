//! Several `resilient sync` workers on one pipeline whose state lives in Redis
//! (`[state] backend = "redis"`), against a real PostgreSQL and a real Redis: each source
//! is leased to one worker at a time; a worker killed with SIGKILL loses its lease after
//! the TTL and another takes its source over from the last checkpoint; the output holds
//! every row of every table exactly once. The folder stays refused to another state.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Scratch, TestDb, resilient, run_in, text};

const ROWS: i64 = 6_000;
const INCREMENTAL: [&str; 3] = ["e1", "e2", "e3"];

fn setup(tag: &str) -> TestDb {
    let mut sql = String::new();
    for table in INCREMENTAL.iter().chain(&["f1"]) {
        sql.push_str(&format!(
            "CREATE TABLE {table} (id bigint PRIMARY KEY, payload text NOT NULL, updated_at timestamp NOT NULL);
             INSERT INTO {table} SELECT g, '{table}-' || g, TIMESTAMP '2024-01-01' + (g / 10) * INTERVAL '1 second'
             FROM generate_series(1, {ROWS}) g;"
        ));
    }
    TestDb::create(tag, &sql)
}

/// The profile naming the shared store, and the pipeline: three incremental sources with
/// small parts and a full one, the state in Redis with a 2 s lease.
fn write_files(dir: &Scratch, db: &TestDb, prefix: &str) {
    common::fleet_profile(dir.path(), prefix);
    // A lease of 6 s, renewed every 2 s: short enough for quick takeovers, long enough
    // that a loaded machine's late renewal does not hand a live worker's source away.
    let mut pipeline = format!(
        "[pipeline]\npage_size = 200\ncommit_rows = 200\n\n[state]\nbackend = \"redis\"\n\
         pipeline = \"orders\"\nlease_ttl = \"6s\"\n\n[connections.main]\n{}\n",
        db.connection_toml()
    );
    for table in INCREMENTAL {
        pipeline.push_str(&format!(
            "[[sources]]\nname = \"{table}\"\ntype = \"postgres\"\nconnection = \"main\"\n\
             table = \"{table}\"\nsync_mode = \"incremental\"\ncursor_field = \"updated_at\"\n\n"
        ));
    }
    pipeline.push_str(
        "[[sources]]\nname = \"f1\"\ntype = \"postgres\"\nconnection = \"main\"\n\
         table = \"f1\"\nsync_mode = \"full\"\n",
    );
    std::fs::write(dir.path().join("p.toml"), pipeline).unwrap();
}

/// A worker: its own `--state` (where its journal goes), the shared output folder.
fn spawn_worker(dir: &Scratch, name: &str) -> Child {
    resilient()
        .current_dir(dir.path())
        .env("REDIS_URL", test_support::redis::url())
        .args(["sync", "--config", "p.toml", "--output", "out"])
        .args(["--state", &format!("{name}/state.json")])
        .args(["--policy-dir", ".", "--profile", "fleet"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// Sends each stderr line of `child` to a channel, so a test can wait on it with a bound.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits (bounded) for a line containing `what`; returns the lines seen.
fn wait_for(rx: &mpsc::Receiver<String>, what: &str, within: Duration) -> String {
    let until = Instant::now() + within;
    let mut seen = String::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
                if line.contains(what) {
                    return seen;
                }
            }
            Err(_) => panic!("no line with {what:?} within {within:?}: {seen}"),
        }
    }
}

/// Every id of each source in the output, with how often it appears.
fn output_ids(dir: &Scratch) -> BTreeMap<String, BTreeMap<i64, u32>> {
    let mut ids: BTreeMap<String, BTreeMap<i64, u32>> = BTreeMap::new();
    for name in dir.files("out") {
        if name.starts_with('.') {
            assert!(!name.ends_with(".tmp"), "temporary file left: {name}");
            continue;
        }
        let source = name.split('.').next().unwrap().to_owned();
        let text = std::fs::read_to_string(dir.path().join("out").join(&name)).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("id,payload,updated_at"), "{name}");
        for line in lines {
            let id: i64 = line.split(',').next().unwrap().parse().unwrap();
            *ids.entry(source.clone())
                .or_default()
                .entry(id)
                .or_insert(0) += 1;
        }
    }
    ids
}

#[test]
fn a_killed_worker_s_sources_are_finished_by_the_other_every_row_once() {
    let db = setup("workers");
    let dir = Scratch::new("workers");
    let prefix = format!("test-workers-{}-{}", std::process::id(), line!());
    write_files(&dir, &db, &prefix);

    let mut a = spawn_worker(&dir, "a");
    let a_lines = lines_of(&mut a);
    let mut b = spawn_worker(&dir, "b");
    let b_lines = lines_of(&mut b);
    // A is mid-run: it holds a lease and has committed a part under it.
    let a_log = wait_for(&a_lines, "committed part", Duration::from_secs(60));
    a.kill().unwrap();
    a.wait().unwrap();

    let status = {
        let until = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = b.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < until, "worker b did not finish");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let mut b_log = String::new();
    while let Ok(line) = b_lines.recv_timeout(Duration::from_secs(5)) {
        b_log.push_str(&line);
        b_log.push('\n');
    }
    assert!(status.success(), "worker b failed: {b_log}");
    // The source A was syncing when it died: B took it over after the TTL and resumed it
    // from A's last checkpoint.
    let killed_in = last_source(&a_log);
    assert!(
        b_log.lines().any(|l| l.contains("incremental sync started")
            && l.contains(&format!("source={killed_in}"))
            && l.contains("resume=true")),
        "b resumes {killed_in} from a's checkpoint:\n{a_log}\n{b_log}"
    );

    let ids = output_ids(&dir);
    let expected: Vec<i64> = (1..=ROWS).collect();
    for source in INCREMENTAL.iter().chain(&["f1"]) {
        let got = ids
            .get(*source)
            .unwrap_or_else(|| panic!("no output for {source}"));
        let repeated: Vec<_> = got.iter().filter(|(_, n)| **n > 1).take(5).collect();
        assert!(
            repeated.is_empty(),
            "{source}: rows written twice: {repeated:?}"
        );
        let got: Vec<i64> = got.keys().copied().collect();
        assert_eq!(got, expected, "{source}: every row exactly once");
    }

    // A rerun finds everything done: it reads no new rows and keeps the output as is.
    let mut again = spawn_worker(&dir, "c");
    let mut err = String::new();
    again
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(again.wait().unwrap().success(), "{err}");
    assert_eq!(output_ids(&dir), ids);

    // Another pipeline's run, with a local state file, is refused the workers' folder.
    std::fs::write(dir.path().join("other.toml"), db.full_pipeline("e1")).unwrap();
    let out = run_in(
        dir.path(),
        &[
            "sync",
            "--config",
            "other.toml",
            "--output",
            "out",
            "--state",
            "o/state.json",
        ],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "belongs to the state file redis:{prefix}:state:orders"
        )),
        "{stderr}"
    );
}

#[test]
fn redis_state_without_a_store_in_the_profile_is_a_usage_error() {
    let db = setup("workers_nostore");
    let dir = Scratch::new("workers-nostore");
    write_files(&dir, &db, "unused");
    let out = run_in(
        dir.path(),
        &["sync", "--config", "p.toml", "--output", "out"],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the profile has no [store]"), "{stderr}");

    // A backend that does not exist is named at its line, with what would be valid.
    let pipeline = std::fs::read_to_string(dir.path().join("p.toml")).unwrap();
    let line = pipeline
        .lines()
        .position(|l| l == "backend = \"redis\"")
        .unwrap()
        + 1;
    std::fs::write(
        dir.path().join("p.toml"),
        pipeline.replace("backend = \"redis\"", "backend = \"s3\""),
    )
    .unwrap();
    let out = run_in(
        dir.path(),
        &["sync", "--config", "p.toml", "--output", "out"],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("p.toml:{line}:")), "{stderr}");
    assert!(
        stderr.contains("file") && stderr.contains("redis"),
        "{stderr}"
    );
}

#[cfg(unix)]
#[test]
fn a_stalled_worker_whose_lease_lapsed_writes_nothing_more() {
    let db = setup("workers_stall");
    let dir = Scratch::new("workers-stall");
    let prefix = format!("test-workers-{}-{}", std::process::id(), line!());
    write_files(&dir, &db, &prefix);
    let signal = |child: &Child, sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    };

    let mut a = spawn_worker(&dir, "a");
    let a_lines = lines_of(&mut a);
    let a_log = wait_for(&a_lines, "committed part", Duration::from_secs(60));
    let held = last_source(&a_log);
    // A stalls (SIGSTOP) past its lease's TTL; B takes A's source over meanwhile.
    signal(&a, "-STOP");
    let mut b = spawn_worker(&dir, "b");
    let b_lines = lines_of(&mut b);
    let taken = format!("source={held}");
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let line = b_lines
            .recv_timeout(until.saturating_duration_since(Instant::now()))
            .expect("b takes the stalled worker's source over");
        if line.contains("incremental sync started") && line.contains(&taken) {
            assert!(line.contains("resume=true"), "{line}");
            break;
        }
    }
    // A wakes up: its lease is gone, so it stops without writing.
    signal(&a, "-CONT");
    let a_status = a.wait().unwrap();
    let mut a_rest = String::new();
    while let Ok(line) = a_lines.recv_timeout(Duration::from_secs(5)) {
        a_rest.push_str(&line);
        a_rest.push('\n');
    }
    assert!(!a_status.success(), "{a_rest}");
    assert!(a_rest.contains("lease lapsed"), "{a_rest}");

    let b_status = b.wait().unwrap();
    let mut b_log = String::new();
    while let Ok(line) = b_lines.recv_timeout(Duration::from_secs(5)) {
        b_log.push_str(&line);
        b_log.push('\n');
    }
    assert!(b_status.success(), "{b_log}");
    let ids = output_ids(&dir);
    let expected: Vec<i64> = (1..=ROWS).collect();
    for source in INCREMENTAL.iter().chain(&["f1"]) {
        let got = &ids[*source];
        assert!(
            got.values().all(|n| *n == 1),
            "{source}: a row written twice"
        );
        assert_eq!(
            got.keys().copied().collect::<Vec<_>>(),
            expected,
            "{source}"
        );
    }
}

/// The source named by the last line of `log` (a "committed part" line).
fn last_source(log: &str) -> String {
    log.lines()
        .last()
        .and_then(|l| l.split("source=").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .expect("the committed part names its source")
        .to_owned()
}
