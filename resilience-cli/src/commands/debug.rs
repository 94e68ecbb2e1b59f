//! `resilient debug --resilience`: what resilience will do for this connector, and why.
//!
//! It shows the effective policy, makes one live connection attempt outside the engine
//! and classifies its outcome exactly as the connector would (retried? counted by the
//! breaker?), then reads the server settings that decide how faults look from outside
//! (`max_connections`, `statement_timeout`, `ssl`) and the pool's state.

use std::time::Instant;

use connector_postgres::{Partitions, ReadOptions, ReadPlanReport};
use resilience_core::{ErrorClass, ResilientError};
use serde::Serialize;
use sqlx::Connection;

use crate::args::DebugArgs;
use crate::connect;
use crate::error::CliError;

/// The batch size `debug --table` lays a read out with: the sync's default.
const DEBUG_BATCH: usize = 5000;

/// `--partitions`: a positive number or `auto`.
fn partitions_arg(text: &str) -> Result<Partitions, CliError> {
    if text == "auto" {
        return Ok(Partitions::Auto);
    }
    text.parse::<std::num::NonZeroUsize>()
        .map(Partitions::Count)
        .map_err(|_| {
            CliError::Usage(format!(
                "--partitions {}: expected a whole number of at least 1 or \"auto\"",
                crate::echo::clip(text)
            ))
        })
}

const SETTINGS: &str = "SELECT name, setting FROM pg_settings WHERE name IN \
    ('max_connections', 'superuser_reserved_connections', 'statement_timeout', \
     'idle_in_transaction_session_timeout', 'ssl', 'tcp_keepalives_idle') ORDER BY name";

#[derive(Debug, Serialize)]
struct Attempt {
    success: bool,
    latency_ms: f64,
    error: Option<String>,
    sqlstate: Option<String>,
    class: Option<ErrorClass>,
    retried: Option<bool>,
    counts_for_breaker: Option<bool>,
}

#[derive(Debug, Serialize)]
struct Report {
    key: String,
    policy_name: String,
    policy: resilience_core::Policy,
    /// Whether the policy is shared through a `[store]`, and where.
    sharing: String,
    attempt: Attempt,
    server_settings: Vec<(String, String)>,
    connection_encrypted: Option<bool>,
    connections_in_use: Option<i64>,
    pool_max: u32,
    pool_size: u32,
    pool_idle: usize,
    discovered_tables: Result<usize, String>,
    circuit_breaker_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    read_plan: Option<Result<ReadPlanReport, String>>,
}

/// Runs `resilient debug`; exit 1 (2 for credentials or configuration) when the live
/// attempt fails, after printing the report.
pub async fn run(args: DebugArgs) -> Result<(), CliError> {
    if args.target.connector == crate::args::ConnectorKind::Http {
        return crate::commands::debug_http::run(&args).await;
    }
    let (pg, engine) =
        connect::from_flags(args.target.database_url.as_deref(), &args.target.policies)?;
    let params = pg
        .params()
        .cloned()
        .ok_or_else(|| CliError::Failed("not configured".into()))?;
    let policy = engine
        .policies()
        .get(&params.policy)
        .map(|p| (**p).clone())
        .ok_or_else(|| CliError::Usage(format!("unknown policy `{}`", params.policy)))?;
    let started = Instant::now();
    let live = connect::connect_once(&params, "resilient-debug").await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (attempt, mut conn) = match live {
        Ok(conn) => (
            Attempt {
                success: true,
                latency_ms,
                error: None,
                sqlstate: None,
                class: None,
                retried: None,
                counts_for_breaker: None,
            },
            Some(conn),
        ),
        Err(e) => {
            let class = e.class();
            let sqlstate = e.sqlstate();
            let attempt = Attempt {
                success: false,
                latency_ms,
                error: Some(e.to_string()),
                sqlstate,
                class: Some(class),
                retried: Some(policy.retry.retry_on.contains(class)),
                counts_for_breaker: Some(!policy.circuit_breaker.ignore.contains(class)),
            };
            (attempt, None)
        }
    };
    // Every await on the direct connection is bounded by the connect timeout: a server
    // that accepted the connection and then stops answering must not hang `debug`.
    let limit = params.connect_timeout;
    let (mut settings, mut encrypted, mut in_use) = (Vec::new(), None, None);
    if let Some(conn) = conn.as_mut() {
        settings = tokio::time::timeout(
            limit,
            sqlx::query_as::<_, (String, String)>(SETTINGS).fetch_all(&mut *conn),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
        encrypted = tokio::time::timeout(
            limit,
            sqlx::query_scalar::<_, bool>(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            )
            .fetch_optional(&mut *conn),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .flatten();
        in_use = tokio::time::timeout(
            limit,
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'",
            )
            .fetch_one(&mut *conn),
        )
        .await
        .ok()
        .and_then(Result::ok);
    }
    let conn_ok = conn.is_some();
    if let Some(conn) = conn {
        let _ = tokio::time::timeout(limit, conn.close()).await;
    }
    // One pooled operation, so the pool's state is the state under real use.
    let tables = if conn_ok {
        pg.discover()
            .await
            .map(|t| t.len())
            .map_err(|e| e.to_string())
    } else {
        Err("not attempted: the server did not accept a connection".to_owned())
    };
    let mut read_failure = None;
    let read_plan = match &args.table {
        Some(table) if conn_ok => {
            let options = ReadOptions {
                partitions: partitions_arg(&args.partitions)?,
                ..ReadOptions::new(DEBUG_BATCH)
            };
            match pg.explain_read(table, &options).await {
                Ok(plan) => Some(Ok(plan)),
                Err(e) => {
                    read_failure = Some(CliError::of_class(
                        e.class(),
                        format!("laying out a read of {}: {e}", crate::echo::clip(table)),
                    ));
                    Some(Err(e.to_string()))
                }
            }
        }
        Some(_) => Some(Err(
            "not attempted: the server did not accept a connection".to_owned()
        )),
        None => None,
    };
    let health = pg.check_health().await.ok();
    let report = Report {
        key: params.host_key(),
        policy_name: params.policy.clone(),
        policy,
        sharing: crate::sharing::for_policy(&engine.policies(), &params.policy),
        attempt,
        server_settings: settings,
        connection_encrypted: encrypted,
        connections_in_use: in_use,
        pool_size: health.as_ref().map_or(0, |h| h.pool_size),
        pool_idle: health.as_ref().map_or(0, |h| h.pool_idle),
        pool_max: params.pool_size,
        discovered_tables: tables,
        circuit_breaker_state: health
            .as_ref()
            .and_then(|h| h.circuit_breaker_state)
            .map(|s| s.as_str().to_owned()),
        read_plan,
    };
    if args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::Failed(format!("cannot encode JSON: {e}")))?;
        println!("{text}");
    } else {
        print_text(&report);
    }
    match (&report.attempt.error, report.attempt.class) {
        (None, _) => read_failure.map_or(Ok(()), Err),
        (Some(e), Some(class)) if class.is_caller_error() => Err(CliError::Usage(format!(
            "connection to {} rejected: {e}",
            report.key
        ))),
        (Some(e), _) => Err(CliError::Failed(format!(
            "cannot connect to {}: {e}",
            report.key
        ))),
    }
}

fn print_text(r: &Report) {
    println!(
        "connector:  postgres {} (policy `{}`)",
        r.key, r.policy_name
    );
    println!("\n[effective policy `{}`]", r.policy_name);
    print!("{}", toml::to_string(&r.policy).unwrap_or_default());
    print!("{}", r.sharing);
    println!("\n[live connection attempt]");
    let a = &r.attempt;
    if a.success {
        println!("ok in {:.1} ms", a.latency_ms);
    } else {
        println!(
            "failed after {:.1} ms: {}",
            a.latency_ms,
            a.error.as_deref().unwrap_or("")
        );
        println!(
            "sqlstate:           {}",
            a.sqlstate.as_deref().unwrap_or("-")
        );
        println!(
            "class:              {}",
            a.class.map_or("-", |c| c.as_str())
        );
        println!("retried by policy:  {}", a.retried.unwrap_or(false));
        println!(
            "counts for breaker: {}",
            a.counts_for_breaker.unwrap_or(false)
        );
    }
    if !r.server_settings.is_empty() {
        println!("\n[server settings]");
        for (name, value) in &r.server_settings {
            println!("{name:<38}{value}");
        }
        if let Some(enc) = r.connection_encrypted {
            println!("{:<38}{}", "this connection encrypted", enc);
        }
        if let Some(n) = r.connections_in_use {
            println!("{:<38}{}", "client connections in use", n);
        }
    }
    println!("\n[pool]");
    println!(
        "connections: {} of at most {}, idle: {}",
        r.pool_size, r.pool_max, r.pool_idle
    );
    match &r.discovered_tables {
        Ok(n) => println!("pooled discovery: {n} tables"),
        Err(e) => println!("pooled discovery failed: {e}"),
    }
    println!(
        "circuit breaker: {}",
        r.circuit_breaker_state
            .as_deref()
            .unwrap_or("CLOSED (no calls yet)")
    );
    match &r.read_plan {
        Some(Ok(plan)) => print_read_plan(plan),
        Some(Err(e)) => println!("\n[read]\nlaying out the read failed: {e}"),
        None => {}
    }
}

fn print_read_plan(p: &ReadPlanReport) {
    println!("\n[read of {}]", p.table);
    let rows = p
        .estimated_rows
        .map_or("unknown (never analyzed)".to_owned(), |r| r.to_string());
    println!("estimated rows:     {rows}");
    println!("page path:          {}", p.page_path);
    println!("page size:          {}", p.page_size);
    if p.page_memory > 0 {
        println!(
            "page memory:        at most {} MiB of Arrow buffers a page, two pages a reader",
            p.page_memory >> 20
        );
        println!(
            "page target:        pages grow while they take under {} ms",
            p.page_target_ms
        );
    }
    match &p.split_from {
        Some(from) => println!(
            "partitions:         {}, split at {} (from {from}), on one exported snapshot",
            p.partitions,
            p.split_points.join(", ")
        ),
        None => println!("partitions:         1"),
    }
    match p.rate_limit {
        Some((per_minute, burst)) => println!(
            "rate limit:         policy `{}`: {per_minute} calls a minute after a burst of \
             {burst}; every page is one call",
            p.policy
        ),
        None => println!("rate limit:         none (policy `{}`)", p.policy),
    }
}
