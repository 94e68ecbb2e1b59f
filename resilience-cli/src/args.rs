//! The command-line surface: every subcommand and flag, in one place, so `--help` reads
//! as the manual. Modules receive these structs already parsed and validated by clap.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use resilience_core::policy::LoadOptions;

/// Policy-driven resilience for data connectors: demo, sync, health, metrics, debug and
/// policy tools.
///
/// Exit codes: 0 success, 1 operational failure, 2 usage or configuration error.
#[derive(Debug, Parser)]
#[command(name = "resilient", version, propagate_version = true)]
pub struct Cli {
    /// More log output (-v debug, -vv trace); `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the resilience demo against PostgreSQL through a fault-injecting proxy.
    Demo(DemoArgs),
    /// Copy tables declared in a pipeline file to CSV, JSON-lines or Parquet files, resumably.
    Sync(SyncArgs),
    /// Check a connector: reachability, latency, breaker state, retries, recoveries.
    Health(HealthArgs),
    /// Totals of resilience events from the journal, per policy and key.
    Metrics(MetricsArgs),
    /// Show what resilience would do for a connector, and what the server says.
    Debug(DebugArgs),
    /// Validate, show and explain policy files.
    Policy(PolicyArgs),
}

/// Where policies come from.
#[derive(Debug, Clone, Args)]
pub struct PolicySource {
    /// Policy profile merged over the defaults (`dev`, `prod`, `demo`, or `<dir>/<P>.toml`).
    #[arg(long, env = "RESILIENCE_PROFILE")]
    pub profile: Option<String>,
    /// Folder with `default.toml` and `<profile>.toml` policy files.
    #[arg(long = "dir", alias = "policy-dir", env = "RESILIENCE_POLICY_DIR")]
    pub dir: Option<PathBuf>,
}

impl PolicySource {
    /// The loader options.
    pub fn options(&self) -> LoadOptions {
        LoadOptions {
            dir: self.dir.clone(),
            profile: self.profile.clone().filter(|p| !p.is_empty()),
        }
    }
}

/// `resilient policy ...`
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// What to do with the policies.
    #[command(subcommand)]
    pub command: PolicyCommand,
}

/// The policy subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate the policy files; errors name file, line and column. With `--dir` and no
    /// `--profile`, every profile the folder offers is checked too.
    Check {
        /// Where policies come from.
        #[command(flatten)]
        source: PolicySource,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the effective, merged policies as a policy file.
    Show {
        /// Where policies come from.
        #[command(flatten)]
        source: PolicySource,
        /// Print JSON instead of TOML.
        #[arg(long)]
        json: bool,
    },
    /// Explain one policy: delays, worst case and rate-limit arithmetic.
    Explain {
        /// The policy name, e.g. `db`.
        name: String,
        /// Where policies come from.
        #[command(flatten)]
        source: PolicySource,
        /// Print the explanation as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Output file format of `sync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// Apache Parquet, zstd-compressed.
    Parquet,
}

impl Format {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Parquet => "parquet",
        }
    }
}

/// `resilient sync ...`
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The pipeline file declaring the sources.
    #[arg(long, default_value = "pipelines/resilient_postgres.toml")]
    pub config: PathBuf,
    /// Policy profile merged over the defaults.
    #[arg(long, env = "RESILIENCE_PROFILE")]
    pub profile: Option<String>,
    /// Folder with policy files.
    #[arg(long = "policy-dir", env = "RESILIENCE_POLICY_DIR")]
    pub policy_dir: Option<PathBuf>,
    /// Reload the policies when a file in the policy folder changes (they are always
    /// reloaded on SIGHUP); breakers, buckets and counters keep their state.
    #[arg(long)]
    pub watch_policies: bool,
    /// The state file (checkpoints); the journal is written next to it.
    #[arg(long, default_value = ".resilient/state.json")]
    pub state: PathBuf,
    /// The folder output files are written to.
    #[arg(long, default_value = "sync-output")]
    pub output: PathBuf,
    /// Output file format.
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    pub format: Format,
    /// Serve Prometheus metrics on this address while the sync runs (e.g. 127.0.0.1:9464).
    #[arg(long)]
    pub metrics_addr: Option<SocketAddr>,
    /// Override every source's connection with this `postgres://` URL.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Only sync these sources (by name; repeatable).
    #[arg(long = "source")]
    pub sources: Vec<String>,
}

impl SyncArgs {
    /// The folder holding the state file and the journal.
    pub fn state_dir(&self) -> PathBuf {
        match self.state.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        }
    }
}

/// A connector the operations commands can talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConnectorKind {
    /// PostgreSQL.
    Postgres,
    /// A REST API (its settings in --api-config).
    Http,
}

/// Where a connector connects to and under which policies.
#[derive(Debug, Args)]
pub struct Target {
    /// The connector.
    #[arg(long, value_enum, default_value_t = ConnectorKind::Postgres)]
    pub connector: ConnectorKind,
    /// `postgres://user@host:port/database` (password via `?password_env=VAR`).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// With `--connector http`: the API's settings, a TOML file (see the README, "The
    /// REST API connector").
    #[arg(long, value_name = "FILE")]
    pub api_config: Option<PathBuf>,
    /// Where policies come from.
    #[command(flatten)]
    pub policies: PolicySource,
}

/// `resilient health ...`
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The connector and where it connects.
    #[command(flatten)]
    pub target: Target,
    /// Also show pool figures and per-operation counts.
    #[arg(long)]
    pub detailed: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// The folder with the journal (for events of earlier runs).
    #[arg(long, default_value = ".resilient")]
    pub state_dir: PathBuf,
}

/// `resilient metrics ...`
#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Only events newer than this (e.g. 1h, 24h, 7d).
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub last: Duration,
    /// The folder with the journal (the state folder of `sync`).
    #[arg(long, default_value = ".resilient")]
    pub state_dir: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `resilient demo ...`
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// PostgreSQL server to run against, with rights to create a database. Default:
    /// 127.0.0.1:5432 when it answers, else a throwaway cluster started for the run.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Folder the result files are written to.
    #[arg(long, value_name = "DIR", default_value = "demo-output")]
    pub output: PathBuf,
    /// Name of the database the demo creates (dropped first if it exists); 1 to 63 of
    /// `[a-z0-9_]`.
    #[arg(long, value_name = "NAME", default_value = "resilient_demo")]
    pub database_name: String,
    /// Keep the demo database afterwards instead of dropping it.
    #[arg(long)]
    pub keep_database: bool,
}

/// `resilient debug ...`
#[derive(Debug, Args)]
pub struct DebugArgs {
    /// The connector and where it connects.
    #[command(flatten)]
    pub target: Target,
    /// Show the resilience view: policy, classification, server settings, pool.
    #[arg(long)]
    pub resilience: bool,
    /// Also say how a full read of this table goes: page path (binary COPY or query),
    /// page sizing, partitions and their split points, and the rate limit's share.
    #[arg(long, value_name = "TABLE")]
    pub table: Option<String>,
    /// With --table: the partitions to lay out (a number or `auto`).
    #[arg(long, value_name = "N", default_value = "1", requires = "table")]
    pub partitions: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e}; expected e.g. 30m, 24h or 7d"))
}

/// The journal file in a state folder.
pub fn journal_path(state_dir: &Path) -> PathBuf {
    state_dir.join("journal.jsonl")
}
