//! Shared helpers for the command tests: the binary, scratch folders, test databases.
#![allow(dead_code)]

pub mod roundtrip;
pub mod secrets;

use std::path::Path;
use std::process::{Command, Output};

use sqlx::{AssertSqlSafe, Connection, Executor};
use test_support::postgres::{TestServer, pick_server};

/// The file in a sync's output folder that records which state file owns it.
pub const OUTPUT_MANIFEST: &str = ".resilient-output.json";
/// The lock file of a sync's output folder (left behind when a run is killed).
pub const OUTPUT_LOCK: &str = ".resilient-output.lock";

/// The variable pipeline files name (`password_env`) when the test server needs a password.
pub const PASSWORD_ENV: &str = "RESILIENT_TEST_PASSWORD";

/// The `resilient` binary with a clean environment (no inherited policy or log settings);
/// the password of a `DATABASE_URL` test server is passed as [`PASSWORD_ENV`].
pub fn resilient() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_resilient"));
    for var in [
        "DATABASE_URL",
        "RESILIENCE_PROFILE",
        "RESILIENCE_POLICY_DIR",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    if let Some(password) = server_password() {
        cmd.env(PASSWORD_ENV, password);
    }
    cmd
}

fn server_password() -> Option<String> {
    let url = std::env::var("DATABASE_URL").ok()?;
    let params = connector_postgres::PgParams::from_url(&url).ok()?;
    Some(params.password?.resolve().ok()?.expose().to_owned())
}

/// Runs `resilient args...` in `dir` and returns its output.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    resilient()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the binary runs")
}

/// `resilient sync` in `dir` on its pipeline `p.toml`, writing into `out/` with the
/// state in `st/state.json`, plus `extra` arguments: to run, or to add to first.
pub fn sync_cmd(dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = resilient();
    cmd.current_dir(dir)
        .args([
            "sync",
            "--config",
            "p.toml",
            "--output",
            "out",
            "--state",
            "st/state.json",
        ])
        .args(extra);
    cmd
}

/// Runs [`sync_cmd`] and returns its output.
pub fn sync_in(dir: &Path, extra: &[&str]) -> Output {
    sync_cmd(dir, extra).output().expect("the binary runs")
}

/// stdout and stderr as text.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A fresh, empty folder, removed on drop.
pub struct Scratch(tempfile::TempDir);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix(&format!("resilient-cli-{tag}-"))
            .tempdir()
            .expect("create a scratch folder");
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// Files in `sub` (sorted names), empty when it does not exist; the manifest and the
    /// lock file a sync keeps in its output folder are not listed, temporary files are.
    pub fn files(&self, sub: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path().join(sub))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|name| name != OUTPUT_MANIFEST && name != OUTPUT_LOCK)
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// Writes the `fleet` profile into `dir`: the test Redis as the shared store, under
/// `prefix`.
pub fn fleet_profile(dir: &Path, prefix: &str) {
    std::fs::write(
        dir.join("fleet.toml"),
        format!(
            "[store]\nbackend = \"redis\"\nurl = \"{}\"\nprefix = \"{prefix}\"\n",
            test_support::redis::url()
        ),
    )
    .unwrap();
}

/// A runtime for the async database helpers.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A database of the test's own on the test server, dropped on drop.
pub struct TestDb {
    pub server: TestServer,
    pub name: String,
}

impl TestDb {
    /// Creates `<tag>_<pid>` and runs `setup` (SQL) in it.
    pub fn create(tag: &str, setup: &str) -> TestDb {
        let name = format!("cli_{tag}_{}", std::process::id());
        rt().block_on(async {
            let server = pick_server().await.expect("a PostgreSQL server");
            server
                .create_database(&name)
                .await
                .expect("create database");
            let db = TestDb { server, name };
            db.exec(setup).await;
            db
        })
    }

    /// Runs SQL in the database.
    pub async fn exec(&self, sql: &str) {
        let mut conn = self.server.connect(&self.name).await.expect("connect");
        conn.execute(AssertSqlSafe(sql.to_owned()))
            .await
            .expect("sql runs");
        let _ = conn.close().await;
    }

    /// The admin URL of the database (with the password, if the server has one), for the
    /// command line of the binary under test.
    pub fn url(&self) -> String {
        self.server
            .url_with_password(&self.name)
            .expose()
            .to_owned()
    }

    /// A `[connections.NAME]` body for the database: the URL without a password, and
    /// `password_env` when the server needs one.
    pub fn connection_toml(&self) -> String {
        let p = self.server.params(&self.name);
        let mut toml = format!(
            "url = \"postgres://{}@{}/{}?sslmode=disable\"\n",
            p.user,
            p.host_key(),
            self.name
        );
        if p.password.is_some() {
            toml.push_str(&format!("password_env = \"{PASSWORD_ENV}\"\n"));
        }
        toml
    }

    /// A pipeline file's text: connection `main` to the database and one source named
    /// after `table` that syncs it in full.
    pub fn full_pipeline(&self, table: &str) -> String {
        format!(
            "[connections.main]\n{}\n[[sources]]\nname = \"{table}\"\ntype = \"postgres\"\n\
             connection = \"main\"\ntable = \"{table}\"\nsync_mode = \"full\"\n",
            self.connection_toml()
        )
    }

    /// `host:port` of the server.
    pub fn host_key(&self) -> String {
        self.server.host_key()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = rt().block_on(self.server.drop_database(&self.name));
    }
}
