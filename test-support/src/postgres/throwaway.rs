//! A PostgreSQL cluster of its own: `initdb` and `pg_ctl` in a temporary folder, on a
//! free loopback port, removed on drop.
//!
//! `initdb` refuses to run as root, so when the process is root every server command runs
//! as the `postgres` OS user (`runuser -u postgres --`) and the folder is handed to that
//! user. Durability is switched off (`fsync=off`): the cluster lives for one test run.
//! Authentication: the `postgres` role is trusted on 127.0.0.1 and the Unix socket (the
//! harness's admin connection needs no password), every other role must present its
//! password (`scram-sha-256`), so tests can provoke a real authentication failure.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::process::Command;

use crate::SupportError;

const HBA: &str = "\
local all all trust
host all postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
";

/// A running throwaway cluster; stopped and deleted when dropped.
#[derive(Debug)]
pub struct ThrowawayCluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl ThrowawayCluster {
    /// Creates and starts a cluster on a free port of 127.0.0.1.
    ///
    /// Binaries are looked up in `PG_BIN`, then `PATH`, then `/usr/lib/postgresql/*/bin`.
    pub async fn start() -> Result<ThrowawayCluster, SupportError> {
        let bin = find_bin()?;
        let as_postgres = is_root().await;
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pg-throwaway-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| fail(format!("create {}: {e}", dir.display())))?;
        let mut cluster = ThrowawayCluster {
            bin,
            dir,
            port: 0,
            as_postgres,
        };
        if as_postgres {
            cluster
                .run_plain("chown", &["-R", "postgres:", &cluster.dir_str()])
                .await?;
        }
        let data = cluster.data_str();
        cluster
            .run_pg(
                "initdb",
                &[
                    "-D",
                    &data,
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ],
            )
            .await?;
        std::fs::write(cluster.dir.join("data/pg_hba.conf"), HBA)
            .map_err(|e| fail(format!("write pg_hba.conf: {e}")))?;
        // A free port can be taken between the probe and the bind: try a few.
        let mut last = None;
        for _ in 0..3 {
            cluster.port = free_port()?;
            match cluster.pg_ctl_start().await {
                Ok(()) => return Ok(cluster),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| fail("could not start".into())))
    }

    /// The port the cluster listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Restarts the server in fast mode (sessions are terminated, clients see 57P01).
    pub async fn restart_fast(&self) -> Result<(), SupportError> {
        let data = self.data_str();
        let log = self.log_str();
        self.run_pg(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-m", "fast", "-w", "-t", "60", "restart",
            ],
        )
        .await
    }

    /// Stops the server (fast mode); the folder stays until drop.
    pub async fn stop(&self) -> Result<(), SupportError> {
        let data = self.data_str();
        self.run_pg("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"])
            .await
    }

    /// Starts a stopped server again on the same port.
    pub async fn start_again(&self) -> Result<(), SupportError> {
        self.pg_ctl_start().await
    }

    async fn pg_ctl_start(&self) -> Result<(), SupportError> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off",
            self.port,
            self.dir_str()
        );
        let data = self.data_str();
        let log = self.log_str();
        self.run_pg(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &options, "-w", "-t", "60", "start",
            ],
        )
        .await
    }

    fn dir_str(&self) -> String {
        self.dir.display().to_string()
    }

    fn data_str(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn log_str(&self) -> String {
        self.dir.join("server.log").display().to_string()
    }

    fn command(&self, tool: &str, args: &[&str]) -> StdCommand {
        let path = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut cmd = StdCommand::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(path);
            cmd
        } else {
            StdCommand::new(path)
        };
        cmd.args(args).current_dir(&self.dir);
        cmd
    }

    async fn run_pg(&self, tool: &str, args: &[&str]) -> Result<(), SupportError> {
        run(Command::from(self.command(tool, args)), tool, &self.dir).await
    }

    async fn run_plain(&self, program: &str, args: &[&str]) -> Result<(), SupportError> {
        let mut cmd = Command::new(program);
        cmd.args(args);
        run(cmd, program, &self.dir).await
    }
}

impl Drop for ThrowawayCluster {
    fn drop(&mut self) {
        let data = self.data_str();
        let _ = self
            .command("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn run(mut cmd: Command, name: &str, dir: &Path) -> Result<(), SupportError> {
    cmd.kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .map_err(|_| fail(format!("{name} did not finish within 120s")))?
        .map_err(|e| fail(format!("cannot run {name}: {e}")))?;
    if output.status.success() {
        return Ok(());
    }
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    Err(fail(format!(
        "{name} failed ({}): {}{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        log.lines().rev().take(10).collect::<Vec<_>>().join("\n")
    )))
}

fn fail(message: String) -> SupportError {
    SupportError::TestServer(message)
}

async fn is_root() -> bool {
    match Command::new("id").arg("-u").output().await {
        Ok(out) => String::from_utf8_lossy(&out.stdout).trim() == "0",
        Err(_) => false,
    }
}

fn free_port() -> Result<u16, SupportError> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| fail(format!("no free port: {e}")))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| fail(format!("no free port: {e}")))
}

/// The folder holding `initdb` and `pg_ctl`.
fn find_bin() -> Result<PathBuf, SupportError> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let from_env = std::env::var_os("PG_BIN").map(PathBuf::from);
    let from_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions.reverse();
    from_env
        .into_iter()
        .chain(from_path)
        .chain(versions)
        .find(|d| has_tools(d))
        .ok_or_else(|| {
            fail(
                "initdb and pg_ctl not found: install the PostgreSQL server binaries \
                 (e.g. `apt-get install postgresql`), or set PG_BIN to the folder that holds \
                 them, or point DATABASE_URL at a running server"
                    .into(),
            )
        })
}
