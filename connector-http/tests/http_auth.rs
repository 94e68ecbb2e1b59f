//! Credentials: a `401` after the token expired re-reads it once and the read goes on;
//! a wrong credential fails once, clearly, with the breaker untouched; a credential
//! never shows in `Debug` or errors.

mod support;

use std::time::Duration;

use resilience_core::breaker::BreakerState;
use resilience_core::{ErrorClass, ResilientError};
use support::{api, connector, engine, params, styles};
use test_support::http::Fault;

fn token_file(name: &str, value: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("http-token-{name}-{}", std::process::id()));
    std::fs::write(&path, value).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_re_read_once_and_the_read_goes_on() {
    let api = api("auth_refresh", Some("first-t0ken")).await;
    let file = token_file("refresh", "first-t0ken");
    let (_, path, records, pagination) = styles().remove(1);
    let auth = serde_json::json!({"type": "bearer", "from": {"file": file}});
    let engine = engine(|_| {});
    let http = connector(&engine, params(&api, path, records, pagination, Some(auth)));
    // The operator rotates the token; the server starts refusing the old one mid-read.
    std::fs::write(&file, "second-t0ken").unwrap();
    api.server.pass(3);
    api.server
        .push_fault(Fault::ExpireSecret("second-t0ken".into()), 1);
    let read = http.read_all("items", vec![]).await.unwrap();
    assert_eq!(read, api.table().await);
    let statuses: Vec<u16> = api.server.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(statuses[3], 401);
    assert_eq!(
        statuses[4], 200,
        "the retry right after carries the new token"
    );
    let _ = std::fs::remove_file(file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_credential_fails_once_clearly_and_leaves_the_breaker_alone() {
    let api = api("auth_wrong", Some("right-t0ken")).await;
    let file = token_file("wrong", "wr0ng-t0ken");
    for (style, path, records, pagination) in styles() {
        api.server.clear_requests();
        let auth = serde_json::json!({"type": "api_key", "name": "api_key", "in_query": true, "from": {"file": file}});
        // One failure would open this breaker if it counted.
        let engine = engine(|p| p.circuit_breaker.failure_threshold = 1.try_into().unwrap());
        let http = connector(&engine, params(&api, path, records, pagination, Some(auth)));
        let err = http.read_all("items", vec![]).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Auth, "{style}");
        assert_eq!(err.status(), Some(401), "{style}");
        assert_eq!(
            api.server.requests().len(),
            1,
            "{style}: one request, not retried"
        );
        let message = err.to_string();
        assert!(message.contains("HTTP 401"), "{style}: {message}");
        assert!(
            !message.contains("wr0ng"),
            "{style}: the key is not in the message: {message}"
        );
        assert!(
            !format!("{err:?}").contains("wr0ng"),
            "{style}: nor in Debug"
        );
        assert!(
            !format!("{http:?}").contains("wr0ng"),
            "{style}: nor in the connector's Debug"
        );
        let health = engine.health();
        let key = health
            .get("api", http.host_key())
            .expect("the key was used");
        assert_eq!(key.circuit_breaker_state, BreakerState::Closed, "{style}");
        // The breaker still lets calls through: the next one reaches the server.
        api.server.set_secret(Some("wr0ng-t0ken".into()));
        tokio::time::timeout(Duration::from_secs(10), http.read_all("items", vec![]))
            .await
            .expect("no hang")
            .unwrap_or_else(|e| panic!("{style}: {e}"));
        api.server.set_secret(Some("right-t0ken".into()));
    }
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn a_missing_credential_fails_configure_naming_where_it_was_looked_for() {
    let params: connector_http::HttpParams = serde_json::from_value(serde_json::json!({
        "base_url": "http://127.0.0.1:9/",
        "auth": {"type": "bearer", "from": {"env": "HTTP_TEST_NO_SUCH_TOKEN_VAR"}},
        "streams": [{"name": "items", "path": "items"}]
    }))
    .unwrap();
    let mut http = connector_http::HttpConnector::new();
    let err = http.configure(params).unwrap_err();
    assert_eq!(err.class(), ErrorClass::Config);
    assert_eq!(
        err.to_string(),
        "credential: environment variable `HTTP_TEST_NO_SUCH_TOKEN_VAR` is not set"
    );
}
