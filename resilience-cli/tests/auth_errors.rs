//! Commands against a server that checks passwords: a wrong password is a configuration
//! error (exit 2) with a clear message, it writes no output and no state, it is not
//! retried, and the password itself never reaches the terminal or the state folder.
//!
//! The local test server trusts every connection, so these tests start a throwaway
//! cluster in which every role but `postgres` must present a `scram-sha-256` password.
//! Starting one takes seconds: the tests share a cluster while any of them runs.

mod common;

use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use common::secrets::{assert_not_printed, assert_not_written, with_secret};
use common::{Scratch, resilient, rt, sync_cmd, text};
use sqlx::{AssertSqlSafe, Connection, Executor};
use test_support::postgres::ThrowawayCluster;

/// The login role the commands use, and its real password.
const ROLE: &str = "app_login";
const RIGHT: &str = "Right-pw-4c1e8b";
/// Distinctive, so a leak anywhere in the output is found by a plain search.
const WRONG: &str = "Wr0ng-pw-9d27fa";
/// The variable the pipeline file names in `password_env`.
const PASSWORD_ENV: &str = "RESILIENT_AUTH_TEST_PASSWORD";
const ROWS: i64 = 25;

/// A throwaway cluster with the login role and a readable table `auth_items`.
struct AuthServer {
    cluster: ThrowawayCluster,
}

impl AuthServer {
    fn start() -> AuthServer {
        rt().block_on(async {
            let cluster = ThrowawayCluster::start()
                .await
                .expect("a throwaway PostgreSQL cluster (initdb and pg_ctl installed)");
            let url = format!(
                "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
                cluster.port()
            );
            let mut admin = sqlx::PgConnection::connect(&url)
                .await
                .expect("the postgres role is trusted");
            admin
                .execute(AssertSqlSafe(format!(
                    "CREATE ROLE {ROLE} LOGIN PASSWORD '{RIGHT}';
                         CREATE TABLE auth_items (id bigint PRIMARY KEY, name text NOT NULL);
                         INSERT INTO auth_items SELECT g, 'item ' || g
                             FROM generate_series(1, {ROWS}) g;
                         GRANT SELECT ON auth_items TO {ROLE};"
                )))
                .await
                .expect("setup SQL runs");
            let _ = admin.close().await;
            AuthServer { cluster }
        })
    }

    fn port(&self) -> u16 {
        self.cluster.port()
    }

    /// A URL for the login role with `password`.
    fn url(&self, password: &str) -> String {
        format!(
            "postgres://{ROLE}:{password}@127.0.0.1:{}/postgres?sslmode=disable",
            self.port()
        )
    }
}

/// The shared cluster: started by the first test that needs it, stopped and removed
/// when the last test holding it ends.
fn server() -> Arc<AuthServer> {
    static SHARED: Mutex<Weak<AuthServer>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(server) = shared.upgrade() {
        return server;
    }
    let server = Arc::new(AuthServer::start());
    *shared = Arc::downgrade(&server);
    server
}

/// Runs `resilient args...` in `dir`, with `password` in [`PASSWORD_ENV`] when given.
fn run(dir: &Path, password: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = resilient();
    cmd.current_dir(dir).args(args);
    with_secret(&mut cmd, PASSWORD_ENV, password)
        .output()
        .expect("the binary runs")
}

fn assert_no_secret(out: &Output) {
    assert_not_printed(out, &[WRONG, RIGHT]);
}

/// Writes `p.toml`: one full source `items` over `auth_items`, connecting as the login
/// role with the password from [`PASSWORD_ENV`].
fn pipeline(dir: &Scratch, port: u16) {
    let body = format!(
        "[connections.main]\n\
         url = \"postgres://{ROLE}@127.0.0.1:{port}/postgres?sslmode=disable\"\n\
         password_env = \"{PASSWORD_ENV}\"\n\n\
         [[sources]]\nname = \"items\"\ntype = \"postgres\"\nconnection = \"main\"\n\
         table = \"auth_items\"\nsync_mode = \"full\"\n"
    );
    std::fs::write(dir.path().join("p.toml"), body).unwrap();
}

fn sync(dir: &Scratch, password: &str) -> Output {
    let mut cmd = sync_cmd(dir.path(), &[]);
    with_secret(&mut cmd, PASSWORD_ENV, Some(password))
        .output()
        .expect("the binary runs")
}

/// No file under `sub` of `dir` contains a password.
fn assert_no_secret_in_files(dir: &Scratch, sub: &str) {
    assert_not_written(dir.path(), sub, &[WRONG, RIGHT]);
}

fn health_with_wrong_password() -> (Output, String, String) {
    let server = server();
    let dir = Scratch::new("auth-health");
    let url = server.url(WRONG);
    let out = run(
        dir.path(),
        None,
        &["health", "--connector", "postgres", "--database-url", &url],
    );
    let (stdout, stderr) = text(&out);
    (out, stdout, stderr)
}

#[test]
fn health_with_a_wrong_password_names_the_auth_failure_and_hides_the_password() {
    let (out, stdout, stderr) = health_with_wrong_password();
    assert_no_secret(&out);
    assert!(!out.status.success(), "{stdout}{stderr}");
    let needle =
        format!("authentication failed: password authentication failed for user \"{ROLE}\"");
    assert!(stdout.contains(&needle), "report names it: {stdout}");
    assert!(stderr.contains(&needle), "error names it: {stderr}");
}

#[test]
fn trace_logs_hold_no_password_in_any_form() {
    let server = server();
    let dir = Scratch::new("auth-trace");
    pipeline(&dir, server.port());
    // In a URL, in a libpq keyword string, in a URL's query string, and through the
    // pipeline's password_env.
    let in_url = server.url(WRONG);
    let keywords = format!(
        "host=127.0.0.1 port={} password={WRONG} dbname=x",
        server.port()
    );
    let in_query = format!("postgres://127.0.0.1:{}/x?password={WRONG}", server.port());
    let runs = [
        [
            "health",
            "--connector",
            "postgres",
            "--database-url",
            &in_url,
        ],
        [
            "health",
            "--connector",
            "postgres",
            "--database-url",
            &keywords,
        ],
        [
            "debug",
            "--connector",
            "postgres",
            "--database-url",
            &in_query,
        ],
    ];
    // A keyword string where an error message echoes it: the name of a variable.
    std::fs::write(
        dir.path().join("kw.toml"),
        format!(
            "[connections.a]\nurl = \"postgres://{ROLE}@127.0.0.1:{}/postgres\"\n\
             password_env = \"PGCONN host=h password={WRONG}\"\n[[sources]]\nname = \"t\"\n\
             type = \"postgres\"\nconnection = \"a\"\ntable = \"t\"\nsync_mode = \"full\"\n",
            server.port()
        ),
    )
    .unwrap();
    let out = resilient()
        .current_dir(dir.path())
        .args(["sync", "--config", "kw.toml"])
        .env("RUST_LOG", "trace")
        .output()
        .expect("the binary runs");
    assert!(text(&out).1.contains("password=***"), "{}", text(&out).1);
    assert_no_secret(&out);
    for args in runs {
        let out = resilient()
            .current_dir(dir.path())
            .args(args)
            .env("RUST_LOG", "trace")
            .output()
            .expect("the binary runs");
        assert_no_secret(&out);
    }
    let out = sync_cmd(dir.path(), &[])
        .env(PASSWORD_ENV, RIGHT)
        .env("RUST_LOG", "trace")
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    assert_no_secret(&out);
}

#[test]
fn health_with_a_wrong_password_exits_2() {
    let (out, stdout, stderr) = health_with_wrong_password();
    assert_eq!(
        out.status.code(),
        Some(2),
        "rejected credentials are a configuration error:\nstdout: {stdout}\nstderr: {stderr}"
    );
}

#[test]
fn sync_with_a_wrong_password_writes_nothing_and_exits_2() {
    let server = server();
    let dir = Scratch::new("auth-sync-wrong");
    pipeline(&dir, server.port());
    let out = sync(&dir, WRONG);
    let (stdout, stderr) = text(&out);
    assert_no_secret(&out);
    assert_no_secret_in_files(&dir, "st");
    assert!(
        stderr.contains("source `items`"),
        "names the source: {stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "password authentication failed for user \"{ROLE}\""
        )),
        "names the authentication failure: {stderr}"
    );
    assert!(
        dir.files("out").is_empty(),
        "no output file: {:?}",
        dir.files("out")
    );
    assert!(
        !dir.path().join("st/state.json").exists(),
        "no state written"
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "rejected credentials are a configuration error:\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert_eq!(journal_retries(&dir), 0, "a wrong password is not retried");
}

/// Retries the run journaled in `st`, over every policy and key.
fn journal_retries(dir: &Scratch) -> u64 {
    let out = run(
        dir.path(),
        None,
        &["metrics", "--state-dir", "st", "--json"],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    v["keys"]
        .as_array()
        .map(|keys| keys.iter().filter_map(|k| k["retries"].as_u64()).sum())
        .unwrap_or(0)
}

#[test]
fn sync_with_the_right_password_succeeds_and_a_wrong_one_leaves_it_unchanged() {
    let server = server();
    let dir = Scratch::new("auth-sync-right");
    pipeline(&dir, server.port());
    let out = sync(&dir, RIGHT);
    assert_no_secret(&out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    assert_eq!(dir.files("out"), ["items.csv"]);
    let body = std::fs::read_to_string(dir.path().join("out/items.csv")).unwrap();
    assert_eq!(
        body.lines().count() as i64,
        ROWS + 1,
        "header and every row"
    );
    let state = std::fs::read(dir.path().join("st/state.json")).unwrap();
    let csv = std::fs::read(dir.path().join("out/items.csv")).unwrap();

    // A later run with a wrong password neither advances nor damages what is there.
    let out = sync(&dir, WRONG);
    let (_, stderr) = text(&out);
    assert_no_secret(&out);
    assert_no_secret_in_files(&dir, "st");
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(dir.files("out"), ["items.csv"], "no partial file");
    assert_eq!(
        std::fs::read(dir.path().join("out/items.csv")).unwrap(),
        csv,
        "output unchanged"
    );
    assert_eq!(
        std::fs::read(dir.path().join("st/state.json")).unwrap(),
        state,
        "state unchanged"
    );
}

#[test]
fn debug_classifies_a_wrong_password_as_auth_not_retried() {
    let server = server();
    let dir = Scratch::new("auth-debug");
    let url = server.url(WRONG);
    let args = [
        "debug",
        "--connector",
        "postgres",
        "--resilience",
        "--database-url",
        &url,
    ];
    let out = run(dir.path(), None, &[&args[..], &["--json"]].concat());
    let (stdout, stderr) = text(&out);
    assert_no_secret(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let attempt = &v["attempt"];
    assert_eq!(attempt["success"], false, "{stdout}");
    assert_eq!(attempt["class"], "auth", "{stdout}");
    assert_eq!(attempt["sqlstate"], "28P01", "{stdout}");
    assert_eq!(attempt["retried"], false, "{stdout}");
    assert_eq!(attempt["counts_for_breaker"], false, "{stdout}");
    assert!(
        attempt["error"].as_str().unwrap().contains(&format!(
            "password authentication failed for user \"{ROLE}\""
        )),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!(
            "connection to 127.0.0.1:{} rejected",
            server.port()
        )),
        "{stderr}"
    );

    let out = run(dir.path(), None, &args);
    let (stdout, stderr) = text(&out);
    assert_no_secret(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for needle in [
        "sqlstate:           28P01",
        "class:              auth",
        "retried by policy:  false",
        "counts for breaker: false",
    ] {
        assert!(stdout.contains(needle), "{needle}: {stdout}");
    }
}
