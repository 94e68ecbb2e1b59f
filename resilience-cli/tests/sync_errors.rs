//! `resilient sync` on bad input: a clear message, the right exit code, no output file and
//! no state.

mod common;

use common::{Scratch, TestDb, run_in, sync_in, text};

const SOURCE: &str = r#"
[[sources]]
name = "items"
type = "postgres"
connection = "main"
table = "items"
sync_mode = "incremental"
cursor_field = "updated_at"
"#;

fn pipeline(dir: &Scratch, connection: &str, sources: &str) -> &'static str {
    std::fs::write(
        dir.path().join("p.toml"),
        format!("[connections.main]\n{connection}\n{sources}"),
    )
    .unwrap();
    "p.toml"
}

fn sync(dir: &Scratch, extra: &[&str]) -> (Option<i32>, String) {
    let out = sync_in(dir.path(), extra);
    let (_, stderr) = text(&out);
    (out.status.code(), stderr)
}

fn assert_nothing_written(dir: &Scratch) {
    assert!(
        dir.files("out").is_empty(),
        "no output file: {:?}",
        dir.files("out")
    );
    assert!(
        !dir.path().join("st/state.json").exists(),
        "no state written"
    );
}

#[test]
fn unknown_field_is_reported_with_file_line_and_column() {
    let dir = Scratch::new("unknownfield");
    let bad = SOURCE.replace("table = \"items\"", "tabel = \"items\"");
    pipeline(&dir, "url = \"postgres://postgres@127.0.0.1:1/x\"", &bad);
    let (code, stderr) = sync(&dir, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("p.toml:8:1"), "{stderr}");
    assert!(stderr.contains("unknown field `tabel`"), "{stderr}");
    assert_nothing_written(&dir);
}

#[test]
fn semantic_errors_point_at_the_value() {
    let dir = Scratch::new("semantic");
    let bad = SOURCE.replace("connection = \"main\"", "connection = \"mian\"");
    pipeline(&dir, "url = \"postgres://postgres@127.0.0.1:1/x\"", &bad);
    let (code, stderr) = sync(&dir, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("p.toml:7:14: unknown connection `mian`, expected one of: main"),
        "{stderr}"
    );

    let bad = SOURCE.replace("sync_mode = \"incremental\"", "sync_mode = \"sometimes\"");
    pipeline(&dir, "url = \"postgres://postgres@127.0.0.1:1/x\"", &bad);
    let (code, stderr) = sync(&dir, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("p.toml:9:13"), "{stderr}");
    assert!(
        stderr.contains("`full`, `incremental`") || stderr.contains("`full` or `incremental`"),
        "{stderr}"
    );

    let bad = SOURCE.replace("cursor_field = \"updated_at\"", "policy = \"nope\"");
    pipeline(&dir, "url = \"postgres://postgres@127.0.0.1:1/x\"", &bad);
    let (code, stderr) = sync(&dir, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("p.toml:10:10: unknown policy `nope`, expected one of: api, db, file"),
        "{stderr}"
    );
    assert_nothing_written(&dir);
}

#[test]
fn inline_passwords_are_refused_and_never_echoed() {
    let dir = Scratch::new("inlinepw");
    pipeline(
        &dir,
        "url = \"postgres://app:hunter2@127.0.0.1:1/x\"",
        SOURCE,
    );
    let (code, stderr) = sync(&dir, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("p.toml:2:7"), "{stderr}");
    assert!(stderr.contains("password_env"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert_nothing_written(&dir);
}

#[test]
fn unknown_profile_is_a_usage_error() {
    let dir = Scratch::new("syncprofile");
    pipeline(&dir, "url = \"postgres://postgres@127.0.0.1:1/x\"", SOURCE);
    let (code, stderr) = sync(&dir, &["--profile", "staging"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("unknown profile `staging`"), "{stderr}");
    assert_nothing_written(&dir);
}

#[test]
fn unreachable_database_fails_with_exit_1_and_journals_the_retries() {
    let dir = Scratch::new("refused");
    // Port 1 on loopback refuses connections.
    pipeline(&dir, "url = \"postgres://postgres@127.0.0.1:1/x\"", SOURCE);
    let (code, stderr) = sync(&dir, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("source `items`"), "{stderr}");
    assert!(stderr.to_lowercase().contains("refused"), "{stderr}");
    assert_nothing_written(&dir);
    let out = run_in(dir.path(), &["metrics", "--state-dir", "st", "--json"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let key = &v["keys"][0];
    assert_eq!(key["policy"], "db");
    assert_eq!(key["key"], "127.0.0.1:1");
    assert_eq!(key["retries"], 2, "db retries twice: {stdout}");
    assert_eq!(key["gave_up"], 1, "the failed call is journaled: {stdout}");
    assert_eq!(
        key["gave_up_by_verdict"]["retries_exhausted"], 1,
        "with its verdict: {stdout}"
    );
}

#[test]
fn unknown_role_is_a_configuration_error() {
    let db = TestDb::create("role", "SELECT 1");
    let dir = Scratch::new("role");
    let (host, port) = db
        .host_key()
        .rsplit_once(':')
        .map(|(h, p)| (h.to_owned(), p.to_owned()))
        .unwrap();
    let connection = format!(
        "host = \"{host}\"\nport = {port}\ndatabase = \"{}\"\nuser = \"no_such_role_here\"\nsslmode = \"disable\"",
        db.name
    );
    pipeline(&dir, &connection, SOURCE);
    let (code, stderr) = sync(&dir, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("no_such_role_here"), "{stderr}");
    assert_nothing_written(&dir);
}

#[test]
fn unknown_table_is_a_configuration_error() {
    let db = TestDb::create("notable", "SELECT 1");
    let dir = Scratch::new("notable");
    pipeline(&dir, &db.connection_toml(), SOURCE);
    let (code, stderr) = sync(&dir, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("items"), "{stderr}");
    assert_nothing_written(&dir);
}

#[test]
fn unreadable_password_source_is_a_configuration_error() {
    let dir = Scratch::new("pwenv");
    let connection =
        "url = \"postgres://app@127.0.0.1:1/x\"\npassword_env = \"RESILIENT_SURELY_UNSET_PW\"";
    pipeline(&dir, connection, SOURCE);
    let (code, stderr) = sync(&dir, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "cannot read the password from environment variable RESILIENT_SURELY_UNSET_PW"
        ),
        "{stderr}"
    );
    assert_nothing_written(&dir);
}
