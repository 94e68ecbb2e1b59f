//! Connection resets through the chaos proxy: refused and reset connections, and the
//! connection under a request in flight reset; every record still comes once.

mod support;

use std::time::Duration;

use resilience_chaos::ChaosProxy;
use support::{api, engine, styles};
use test_support::http::Fault;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_mid_read_every_record_once() {
    let api = api("resets", None).await;
    let expected = api.table().await;
    for (style, path, records, pagination) in styles() {
        let proxy = ChaosProxy::start(api.server.addr()).await.unwrap();
        let mut params = support::params(&api, path, records, pagination, None);
        params.base_url = format!("http://{}/", proxy.local_addr());
        let engine = engine(|_| {});
        let http = support::connector(&engine, params);
        api.server.clear_requests();
        // The first two connections are reset as they open; the fourth request is slow,
        // and its connection is reset while it waits.
        proxy.handle().reset_new(2);
        api.server.pass(3);
        api.server
            .push_fault(Fault::Slow(Duration::from_millis(800)), 1);
        let reader = tokio::spawn({
            let http = http;
            async move { http.read_all("items", vec![]).await }
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while api.server.faults_pending() > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{style}: the slow request never came"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let reset = proxy.handle().reset_all();
        assert!(reset >= 1, "{style}: a connection was open to reset");
        let read = reader
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{style}: {e}"));
        assert_eq!(read, expected, "{style}: every record once, in order");
        let health = engine.health();
        let key = health.keys.iter().find(|k| k.policy == "api").unwrap();
        assert!(key.retries >= 3, "{style}: {} retries", key.retries);
        proxy.shutdown().await;
    }
}
