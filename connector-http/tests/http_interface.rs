//! The connector through the generic `Connector` interface: declared streams, a schema
//! inferred from the first page and fixed, full reads into Arrow equal to the table, and
//! incremental reads that deliver each new or changed record once, lookback included,
//! through faults.

mod support;

use std::time::Duration;

use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
use futures_util::TryStreamExt;
use resilience_core::connector::{Connector, ConnectorState};
use support::{api, connector, engine, params, styles};
use test_support::http::{Fault, RetryAfter};

/// `(id, name, updated_at)` of every row in the batches.
fn rows(batches: &[RecordBatch]) -> Vec<(i64, String, String)> {
    let mut out = Vec::new();
    for batch in batches {
        let ids = batch
            .column_by_name("id")
            .unwrap()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        let names = batch
            .column_by_name("name")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let times = batch
            .column_by_name("updated_at")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        for i in 0..batch.num_rows() {
            out.push((
                ids.value(i),
                names.value(i).to_owned(),
                times.value(i).to_owned(),
            ));
        }
    }
    out
}

/// The same, from the table's JSON rows.
fn table_rows(table: &[serde_json::Value]) -> Vec<(i64, String, String)> {
    table
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().unwrap(),
                r["name"].as_str().unwrap().to_owned(),
                r["updated_at"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_read_through_the_interface_equals_the_table() {
    let api = api("iface_full", None).await;
    let expected = table_rows(&api.table().await);
    for (style, path, records, pagination) in styles() {
        let engine = engine(|_| {});
        let mut http = connector_http::HttpConnector::with_engine(engine.clone());
        assert_eq!(Connector::state(&http), ConnectorState::Created);
        Connector::configure(&mut http, params(&api, path, records, pagination, None)).unwrap();
        assert_eq!(Connector::state(&http), ConnectorState::Configured);
        let streams = Connector::discover(&http).await.unwrap();
        assert_eq!(streams.len(), 1);
        assert_eq!(streams[0].name, "items");
        let test = Connector::test_connection(&http).await.unwrap();
        assert!(test.success, "{style}: {}", test.message);
        assert_eq!(Connector::state(&http), ConnectorState::Ready);
        let schema = Connector::get_schema(&http, "items").await.unwrap();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["id", "name", "updated_at"], "{style}");
        api.server.pass(1);
        api.server
            .push_fault(Fault::Throttle(RetryAfter::Absent), 1);
        api.server.pass(2);
        api.server.push_fault(Fault::Truncate, 1);
        let batches: Vec<RecordBatch> = Connector::read(&http, "items", None, 0)
            .try_collect()
            .await
            .unwrap();
        assert!(
            batches.iter().all(|b| b.schema() == schema),
            "{style}: one fixed schema"
        );
        assert_eq!(rows(&batches), expected, "{style}");
        let only: Vec<RecordBatch> = Connector::read(&http, "items", Some(&["id"]), 0)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(only[0].num_columns(), 1);
        let health = Connector::check_health(&http).await.unwrap();
        assert!(health.reachable, "{style}");
        let key = health.resilience.expect("the engine's view of the host");
        assert!(
            key.retries >= 2,
            "{style}: the faults were retried ({} retries)",
            key.retries
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_reads_deliver_each_new_or_changed_record_once() {
    let api = api("iface_incr", None).await;
    for lookback in [Duration::ZERO, Duration::from_secs(600)] {
        for (style, path, records, pagination) in styles() {
            sqlx::raw_sql(
                "TRUNCATE items;
                 INSERT INTO items SELECT g, 'item ' || g, timestamptz '2024-01-01' + g * interval '1 minute'
                   FROM generate_series(1, 95) g;",
            )
            .execute(&api.pool)
            .await
            .unwrap();
            let engine = engine(|_| {});
            let http = connector(&engine, params(&api, path, records, pagination, None));
            let options = connector_http::IncrementalOptions {
                lookback,
                ..Default::default()
            };
            // First run: everything, through faults.
            api.server.pass(2);
            api.server.push_fault(Fault::Unavailable, 1);
            api.server.pass(1);
            api.server.push_fault(Fault::Truncate, 1);
            let chunks: Vec<_> = http
                .read_incremental("items", "updated_at", None, options.clone())
                .try_collect()
                .await
                .unwrap_or_else(|e| panic!("{style}: {e}"));
            let batches: Vec<RecordBatch> = chunks.iter().map(|c| c.batch.clone()).collect();
            assert_eq!(
                rows(&batches),
                table_rows(&api.table().await),
                "{style}, first run"
            );
            let checkpoint = chunks.last().unwrap().checkpoint.clone();
            assert_eq!(checkpoint.cursor, "2024-01-01T01:35:00+00:00", "{style}");

            // Changes: a late row inside the window, a row updated at the checkpoint's
            // second (a tie), rows updated later, a new row.
            sqlx::raw_sql(
                "INSERT INTO items VALUES (200, 'late', timestamptz '2024-01-01 01:30:00');
                 INSERT INTO items VALUES (201, 'tie', timestamptz '2024-01-01 01:35:00');
                 UPDATE items SET name = 'changed', updated_at = timestamptz '2024-01-01 02:00:00' WHERE id IN (3, 50);
                 INSERT INTO items VALUES (300, 'new', timestamptz '2024-01-01 02:30:00');",
            )
            .execute(&api.pool)
            .await
            .unwrap();
            api.server
                .push_fault(Fault::Throttle(RetryAfter::Seconds(0)), 1);
            let chunks: Vec<_> = http
                .read_incremental("items", "updated_at", Some(checkpoint), options.clone())
                .try_collect()
                .await
                .unwrap_or_else(|e| panic!("{style}: {e}"));
            let batches: Vec<RecordBatch> = chunks.iter().map(|c| c.batch.clone()).collect();
            let mut got: Vec<i64> = rows(&batches).iter().map(|r| r.0).collect();
            got.sort();
            let mut want = vec![3, 50, 201, 300];
            if !lookback.is_zero() {
                want.push(200);
                want.sort();
            }
            assert_eq!(
                got, want,
                "{style}, lookback {lookback:?}: each change once"
            );
            let last = chunks.last().unwrap().checkpoint.clone();
            assert_eq!(last.cursor, "2024-01-01T02:30:00+00:00");

            // Nothing changed: nothing comes.
            let again: Vec<_> = http
                .read_incremental("items", "updated_at", Some(last), options.clone())
                .try_collect()
                .await
                .unwrap();
            assert!(
                again.is_empty(),
                "{style}: {} chunks of nothing new",
                again.len()
            );
        }
    }
}
