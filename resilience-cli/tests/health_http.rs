//! `resilient health/debug --connector http`: a reachable API (exit 0, the JSON report),
//! a live request classified by debug, a refused credential (exit 2, said once, the
//! secret nowhere), missing settings (exit 2).

mod common;

use std::path::Path;
use std::process::Output;

use common::{Scratch, resilient};
use sqlx::postgres::PgPoolOptions;
use test_support::http::{ApiServer, Table};
use test_support::postgres::pick_server;

/// `resilient debug --connector http --resilience` on the settings file `config`.
fn debug(config: &Path) -> Output {
    resilient()
        .args([
            "debug",
            "--connector",
            "http",
            "--resilience",
            "--api-config",
        ])
        .arg(config)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_of_an_api_reports_reachability_and_refusals() {
    let pg = pick_server().await.expect("a PostgreSQL server");
    pg.create_database("cli_health_http").await.unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(pg.url_with_password("cli_health_http").expose())
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE items (id int8 PRIMARY KEY, name text);
         INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 25) g;",
    )
    .execute(&pool)
    .await
    .unwrap();
    let server = ApiServer::start(pool, vec![Table::new("items", "id")], Some("r1ght".into()))
        .await
        .unwrap();
    let scratch = Scratch::new("http-health");
    let token = scratch.path().join("token");
    let config = scratch.path().join("api.toml");
    std::fs::write(
        &config,
        format!(
            "base_url = \"{}/\"\nauth = {{ type = \"bearer\", from = {{ file = \"{}\" }} }}\n\n\
             [[streams]]\nname = \"items\"\npath = \"offset/items\"\nrecords = \"/data\"\n\
             pagination = {{ type = \"offset_limit\" }}\n",
            server.base_url(),
            token.display()
        ),
    )
    .unwrap();

    std::fs::write(&token, "r1ght").unwrap();
    let out = resilient()
        .args(["health", "--connector", "http", "--json", "--api-config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["reachable"], true);
    assert_eq!(report["host"], server.addr().to_string());
    assert_eq!(report["resilience"]["circuit_breaker_state"], "CLOSED");

    // debug: the policy, and one live request classified (a single attempt).
    server.push_fault(
        test_support::http::Fault::Throttle(test_support::http::RetryAfter::Seconds(30)),
        1,
    );
    server.clear_requests();
    let out = debug(&config);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("policy `api`"), "{text}");
    assert!(
        text.contains("class throttled, retried, counts for the breaker, Retry-After 29"),
        "{text}"
    );
    assert_eq!(server.requests().len(), 1, "one attempt only");
    let out = debug(&config);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Live request: answered in"));

    server.clear_requests();
    std::fs::write(&token, "wr0ng").unwrap();
    let out = resilient()
        .args(["health", "--connector", "http", "--api-config"])
        .arg(&config)
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("Status: UNREACHABLE"), "{all}");
    assert!(all.contains("HTTP 401 (auth)"), "{all}");
    assert!(!all.contains("wr0ng") && !all.contains("r1ght"), "{all}");
    assert_eq!(server.requests().len(), 1, "refused once, not retried");

    let out = resilient()
        .args(["health", "--connector", "http"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--connector http needs --api-config FILE")
    );
}
