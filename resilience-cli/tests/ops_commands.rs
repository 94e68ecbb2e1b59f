//! `resilient health`, `debug` and `metrics`, and that no password reaches the output.

mod common;

use common::{Scratch, TestDb, run_in, text};

#[test]
fn health_reports_a_reachable_database() {
    let db = TestDb::create("health", "SELECT 1");
    let dir = Scratch::new("health");
    let url = db.url();
    let out = run_in(
        dir.path(),
        &[
            "health",
            "--connector",
            "postgres",
            "--database-url",
            &url,
            "--json",
            "--detailed",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["health"]["reachable"], true);
    assert_eq!(v["health"]["key"], db.host_key());
    assert!(v["health"]["latency_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(v["last_hour"]["retry_attempts"], 0);

    let out = run_in(dir.path(), &["health", "--database-url", &url]);
    let (stdout, _) = text(&out);
    assert!(stdout.contains("status:           reachable"), "{stdout}");
    assert!(
        stdout.contains("circuit breaker:  unknown: no breaker events in the journal"),
        "{stdout}"
    );
}

/// One journal line as `sync` writes it.
fn journal_line(kind: &str, policy: &str, key: &str, ts: &str, unix_ms: u64) -> String {
    serde_json::json!({
        "ts": ts, "unix_ms": unix_ms, "kind": kind, "policy": policy, "key": key,
        "message": "Circuit breaker ...",
    })
    .to_string()
        + "\n"
}

#[test]
fn health_reports_the_breaker_state_last_journaled_for_the_key() {
    let db = TestDb::create("healthbreaker", "SELECT 1");
    let dir = Scratch::new("healthbreaker");
    let url = db.url();
    let key = db.host_key();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    // The journal `health` reads by default: .resilient/journal.jsonl.
    std::fs::create_dir_all(dir.path().join(".resilient")).unwrap();
    let journal = dir.path().join(".resilient/journal.jsonl");
    let mut lines = journal_line(
        "breaker_closed",
        "db",
        &key,
        "2026-01-01T00:00:00.000Z",
        now_ms - 60_000,
    );
    lines += &journal_line(
        "breaker_opened",
        "db",
        &key,
        "2026-01-01T00:01:00.000Z",
        now_ms - 30_000,
    );
    // Other keys and policies do not count.
    lines += &journal_line(
        "breaker_closed",
        "db",
        "10.9.9.9:5432",
        "2026-01-01T00:02:00.000Z",
        now_ms,
    );
    lines += &journal_line(
        "breaker_closed",
        "api",
        &key,
        "2026-01-01T00:02:00.000Z",
        now_ms,
    );
    std::fs::write(&journal, &lines).unwrap();

    let out = run_in(dir.path(), &["health", "--database-url", &url]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout
            .contains("circuit breaker:  OPEN (since 2026-01-01T00:01:00.000Z, from the journal)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("breaker opened (last hour):  1"),
        "{stdout}"
    );

    let out = run_in(dir.path(), &["health", "--database-url", &url, "--json"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["circuit_breaker"]["state"], "OPEN", "{stdout}");
    assert_eq!(v["circuit_breaker"]["source"], "journal", "{stdout}");

    // A later transition for the key wins.
    lines += &journal_line(
        "breaker_half_open",
        "db",
        &key,
        "2026-01-01T00:03:00.000Z",
        now_ms,
    );
    std::fs::write(&journal, &lines).unwrap();
    let out = run_in(dir.path(), &["health", "--database-url", &url]);
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains(
            "circuit breaker:  HALF_OPEN (since 2026-01-01T00:03:00.000Z, from the journal)"
        ),
        "{stdout}"
    );
}

#[test]
fn health_reports_one_set_of_numbers_and_waits_are_not_violations() {
    let db = TestDb::create("healthnumbers", "SELECT 1");
    let dir = Scratch::new("healthnumbers");
    let url = db.url();
    let key = db.host_key();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    std::fs::create_dir_all(dir.path().join(".resilient")).unwrap();
    let mut lines = String::new();
    for (kind, n) in [
        ("retry", 3),
        ("gave_up", 1),
        ("rate_limit_wait", 4),
        ("rate_limit_rejected", 2),
        ("recovery", 1),
        ("recovery_failed", 1),
        ("recovery_started", 2),
    ] {
        for _ in 0..n {
            lines += &journal_line(kind, "db", &key, "2026-01-01T00:00:00.000Z", now_ms);
        }
    }
    let mut bytes = lines.into_bytes();
    bytes.extend_from_slice(b"\xc3\x28 not utf-8\n");
    std::fs::write(dir.path().join(".resilient/journal.jsonl"), bytes).unwrap();

    let out = run_in(dir.path(), &["health", "--database-url", &url, "--json"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let recent = &v["last_hour"];
    assert_eq!(recent["retry_attempts"], 3);
    assert_eq!(recent["calls_gave_up"], 1);
    assert_eq!(recent["rate_limit_waits"], 4);
    assert_eq!(
        recent["rate_limit_violations"], 2,
        "only refusals are violations"
    );
    assert_eq!(recent["recovery_events"], 1);
    assert_eq!(recent["recovery_failures"], 1);
    assert_eq!(v["journal_skipped_lines"], 1);
    assert!(
        !stdout.contains("retry_attempts_last_hour"),
        "a second set of numbers: {stdout}"
    );

    let out = run_in(dir.path(), &["health", "--database-url", &url]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for line in [
        "retry attempts (last hour):  3",
        "calls given up (last hour):  1",
        "rate-limit waits:            4",
        "rate-limit violations:       2 (calls refused)",
        "recovery events:             1 (connection mended; 1 failed)",
    ] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
    assert!(
        stderr.contains("skipped 1 unreadable journal lines"),
        "{stderr}"
    );
}

#[test]
fn health_of_a_refused_port_exits_1_and_hides_the_password() {
    let dir = Scratch::new("health-refused");
    let out = run_in(
        dir.path(),
        &[
            "health",
            "--database-url",
            "postgres://app:hunter2@127.0.0.1:1/x",
            "-v",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.contains("UNREACHABLE"), "{stdout}");
    assert!(
        stderr.contains("postgres at 127.0.0.1:1 is not reachable"),
        "{stderr}"
    );
    assert!(stderr.to_lowercase().contains("refused"), "{stderr}");
    assert!(
        !stdout.contains("hunter2") && !stderr.contains("hunter2"),
        "{stdout}{stderr}"
    );
}

#[test]
fn bad_url_is_a_usage_error_without_echoing_it() {
    let dir = Scratch::new("badurl");
    let out = run_in(
        dir.path(),
        &[
            "health",
            "--database-url",
            "mysql://root:hunter2@127.0.0.1/x",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("postgres://"), "{stderr}");
    assert!(
        !stdout.contains("hunter2") && !stderr.contains("hunter2"),
        "{stderr}"
    );
}

#[test]
fn debug_shows_policy_classification_and_server_settings() {
    let db = TestDb::create("debug", "SELECT 1");
    let dir = Scratch::new("debug");
    let url = db.url();
    let out = run_in(
        dir.path(),
        &[
            "debug",
            "--connector",
            "postgres",
            "--resilience",
            "--database-url",
            &url,
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for needle in [
        "[effective policy `db`]",
        "max_attempts = 3",
        "ok in",
        "max_connections",
        "statement_timeout",
        "ssl",
        "[pool]",
    ] {
        assert!(stdout.contains(needle), "{needle}: {stdout}");
    }

    let refused = run_in(
        dir.path(),
        &[
            "debug",
            "--resilience",
            "--database-url",
            "postgres://postgres@127.0.0.1:1/x",
            "--json",
        ],
    );
    let (stdout, stderr) = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["attempt"]["class"], "connection");
    assert_eq!(v["attempt"]["retried"], true);
    assert_eq!(v["attempt"]["counts_for_breaker"], true);

    let host = db.host_key();
    let role = format!(
        "postgres://no_such_role_here@{host}/{}?sslmode=disable",
        db.name
    );
    let rejected = run_in(
        dir.path(),
        &["debug", "--resilience", "--database-url", &role, "--json"],
    );
    let (stdout, stderr) = text(&rejected);
    assert_eq!(rejected.status.code(), Some(2), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["attempt"]["class"], "auth");
    // An unknown role is 28000 under trust authentication; a server that asks for a
    // password answers 28P01 instead, to give nothing away about which roles exist.
    let sqlstate = v["attempt"]["sqlstate"].as_str().unwrap_or_default();
    assert!(matches!(sqlstate, "28000" | "28P01"), "{stdout}");
    assert_eq!(v["attempt"]["retried"], false);
}

#[test]
fn metrics_totals_the_journal_per_policy_and_key() {
    let dir = Scratch::new("metrics");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let line = |ms: u64, kind: &str, key: &str| {
        format!(
            "{{\"ts\":\"x\",\"unix_ms\":{ms},\"kind\":\"{kind}\",\"policy\":\"db\",\"key\":\"{key}\",\"message\":\"m\"}}\n"
        )
    };
    let gave_up = |ms: u64, verdict: &str| {
        format!(
            "{{\"ts\":\"x\",\"unix_ms\":{ms},\"kind\":\"gave_up\",\"policy\":\"db\",\"key\":\"a:1\",\"message\":\"m\",\"fields\":{{\"verdict\":\"{verdict}\"}}}}\n"
        )
    };
    let journal = [
        line(now - 1000, "retry", "a:1"),
        line(now - 2000, "retry", "a:1"),
        line(now - 3000, "breaker_opened", "a:1"),
        line(now - 4000, "rate_limit_wait", "b:2"),
        gave_up(now - 500, "retries_exhausted"),
        gave_up(now - 400, "circuit_open"),
        line(now - 3 * 3_600_000, "retry", "a:1"),
        "not json\n".to_owned(),
    ]
    .concat();
    // A line of bytes that are not UTF-8 is skipped like any unreadable line.
    let mut bytes = journal.into_bytes();
    bytes.extend_from_slice(b"\xff\xfe garbage \x80\n");
    std::fs::create_dir_all(dir.path().join("st")).unwrap();
    std::fs::write(dir.path().join("st/journal.jsonl"), bytes).unwrap();

    let out = run_in(
        dir.path(),
        &["metrics", "--last", "1h", "--state-dir", "st", "--json"],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["events"], 6, "the 3-hour-old event is outside --last 1h");
    assert_eq!(v["skipped_lines"], 2);
    assert_eq!(v["keys"][0]["key"], "a:1");
    assert_eq!(v["keys"][0]["retries"], 2);
    assert_eq!(v["keys"][0]["breaker_opened"], 1);
    assert_eq!(v["keys"][0]["gave_up"], 2);
    assert_eq!(v["keys"][0]["gave_up_by_verdict"]["retries_exhausted"], 1);
    assert_eq!(v["keys"][0]["gave_up_by_verdict"]["circuit_open"], 1);
    assert_eq!(v["keys"][1]["rate_limit_waits"], 1);

    let out = run_in(
        dir.path(),
        &["metrics", "--last", "24h", "--state-dir", "st"],
    );
    let (stdout, _) = text(&out);
    assert!(stdout.contains("policy db key a:1"), "{stdout}");
    assert!(stdout.contains("retries:                 3"), "{stdout}");
    assert!(
        stdout.contains("calls given up on:       2 (circuit open 1, retries exhausted 1)"),
        "{stdout}"
    );

    let out = run_in(dir.path(), &["metrics", "--last", "soon"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn debug_lays_out_the_read_of_a_table() {
    let db = TestDb::create(
        "debugtable",
        "CREATE TABLE items (id bigint PRIMARY KEY, v text); \
         INSERT INTO items SELECT g, 'v' FROM generate_series(1, 1000) g; ANALYZE items;",
    );
    let dir = Scratch::new("debugtable");
    let url = db.url();
    let out = run_in(
        dir.path(),
        &[
            "debug",
            "--database-url",
            &url,
            "--table",
            "items",
            "--partitions",
            "2",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for needle in [
        "[read of items]",
        "estimated rows:     1000",
        "page path:          binary COPY for pages of 1000 rows or more, query below",
        "page size:          adaptive, from 5000 rows",
        "partitions:         2, split at ",
        "on one exported snapshot",
        "rate limit:         policy `db`: 300 calls a minute after a burst of 50",
    ] {
        assert!(stdout.contains(needle), "{needle}: {stdout}");
    }
    let out = run_in(
        dir.path(),
        &["debug", "--database-url", &url, "--table", "nope", "--json"],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        v["read_plan"]["Err"].as_str().unwrap().contains("\"nope\""),
        "{stdout}"
    );
    assert!(stderr.contains("laying out a read of nope"), "{stderr}");
}
