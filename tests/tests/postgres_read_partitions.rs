//! Partitioned reads: key ranges read in parallel on one exported snapshot, against a real
//! server and real faults.

mod pg_read_support;

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use connector_postgres::{DataChunk, PageSize, Partitions, PostgresConnector, ReadOptions};
use futures_util::{StreamExt, TryStreamExt};
use pg_read_support::{TestDb, assert_each_once, assert_retried, count_ids, terminate};
use resilience_core::Resilient;
use test_support::postgres::{TestServer, ThrowawayCluster};

fn partitioned(n: usize, page: usize) -> ReadOptions {
    ReadOptions {
        page_size: PageSize::Fixed(page),
        partitions: Partitions::Count(NonZeroUsize::new(n).unwrap()),
        ..ReadOptions::new(page)
    }
}

fn connector(db: &TestDb, app: &str) -> PostgresConnector {
    db.connector_with(app, |p| p.pool_size = 6)
}

/// Reads `table`, calling `between` after each chunk; returns the chunks' ids and the rows
/// per partition.
async fn read_partitioned<F, Fut>(
    pg: &PostgresConnector,
    table: &str,
    options: ReadOptions,
    mut between: F,
) -> (BTreeMap<i64, u32>, BTreeMap<usize, usize>)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let (mut seen, mut per_partition) = (BTreeMap::new(), BTreeMap::new());
    let mut last_in_partition: BTreeMap<usize, i64> = BTreeMap::new();
    let mut chunks = std::pin::pin!(pg.read_with(table, None, options));
    let mut index = 0;
    while let Some(chunk) = chunks.next().await {
        let chunk: DataChunk = chunk.expect("chunk");
        let ids = chunk
            .batch
            .column_by_name("id")
            .unwrap()
            .as_primitive::<Int64Type>();
        let first = ids.value(0);
        if let Some(last) = last_in_partition.get(&chunk.partition) {
            assert!(
                first > *last,
                "partition {} went back in key order",
                chunk.partition
            );
        }
        last_in_partition.insert(chunk.partition, ids.value(ids.len() - 1));
        count_ids(&chunk.batch, "id", &mut seen);
        *per_partition.entry(chunk.partition).or_default() += chunk.batch.num_rows();
        between(index).await;
        index += 1;
    }
    (seen, per_partition)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skewed_keys_split_into_partitions_of_similar_size() {
    let db = TestDb::create("pgread_part_skew").await;
    // 90% of the rows in the first 1% of the key range.
    db.exec(
        "CREATE TABLE skew (id bigint PRIMARY KEY, v text) WITH (autovacuum_enabled = false); \
         INSERT INTO skew SELECT g, 'x' FROM generate_series(1, 90000) g; \
         INSERT INTO skew SELECT 100000 + g * 990, 'y' FROM generate_series(1, 10000) g;",
    )
    .await;
    let pg = connector(&db, "pgread_part_skew");
    // Never analyzed: split points from sampled keys; then from the statistics.
    for (expected, prepare) in [("sampled keys", None), ("statistics", Some("ANALYZE skew"))] {
        if let Some(sql) = prepare {
            db.exec(sql).await;
        }
        let options = ReadOptions {
            partitions: Partitions::Count(NonZeroUsize::new(4).unwrap()),
            ..ReadOptions::new(5000)
        };
        let report = pg.explain_read("skew", &options).await.unwrap();
        assert_eq!(report.split_from.as_deref(), Some(expected), "{report:?}");
        assert_eq!(report.partitions, 4);
        let (seen, per_partition) = read_partitioned(&pg, "skew", options, |_| async {}).await;
        assert_eq!(seen.len(), 100_000);
        assert!(seen.values().all(|c| *c == 1));
        let sizes: Vec<usize> = per_partition.values().copied().collect();
        let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert_eq!(sizes.len(), 4, "{expected}: {sizes:?}");
        assert!(
            max <= &(2 * min),
            "{expected}: partitions of {sizes:?} rows"
        );
    }
    drop(pg);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_writer_never_shows_a_mix_of_instants() {
    let db = TestDb::create("pgread_part_consistent").await;
    // Every write transaction k bumps every row's version to k, deletes id k and inserts
    // id 20000 + k: the table at version v holds exactly ids v+1 ..= 20000 + v.
    db.exec(
        "CREATE TABLE vers (id bigint PRIMARY KEY, version bigint NOT NULL); \
         INSERT INTO vers SELECT g, 0 FROM generate_series(1, 20000) g; ANALYZE vers;",
    )
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, mut conn) = (Arc::clone(&stop), db.admin().await);
        tokio::spawn(async move {
            let mut k = 0i64;
            while !stop.load(Ordering::SeqCst) {
                k += 1;
                let sql = format!(
                    "BEGIN; UPDATE vers SET version = {k}; DELETE FROM vers WHERE id = {k}; \
                     INSERT INTO vers VALUES ({}, {k}); COMMIT;",
                    20_000 + k
                );
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            k
        })
    };
    // Let a few versions commit first.
    while !writer.is_finished() {
        let mut conn = db.admin().await;
        let v: i64 = sqlx::query_scalar("SELECT max(version) FROM vers")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        if v >= 3 {
            break;
        }
    }
    let pg = connector(&db, "pgread_part_consistent");
    let kills = AtomicI64::new(0);
    let mut versions = BTreeMap::new();
    let mut seen = BTreeMap::new();
    {
        let mut chunks = std::pin::pin!(pg.read_with("vers", None, partitioned(4, 250)));
        let mut index = 0;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.expect("chunk");
            count_ids(&chunk.batch, "id", &mut seen);
            let version = chunk
                .batch
                .column_by_name("version")
                .unwrap()
                .as_primitive::<Int64Type>();
            for v in version.iter() {
                *versions.entry(v.unwrap()).or_insert(0) += 1;
            }
            // Partitions that reconnect import the same snapshot (the coordinator that
            // holds it is spared here).
            if index % 10 == 5 {
                let killed: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM \
                     pg_stat_activity WHERE application_name = $1 \
                     AND query NOT LIKE '%pg_export_snapshot%') t",
                )
                .bind("pgread_part_consistent")
                .fetch_one(&mut db.admin().await)
                .await
                .unwrap();
                kills.fetch_add(killed, Ordering::SeqCst);
            }
            index += 1;
        }
    }
    stop.store(true, Ordering::SeqCst);
    let last = writer.await.unwrap();
    assert!(
        kills.load(Ordering::SeqCst) >= 2,
        "partition sessions were killed"
    );
    assert!(last >= 4, "the writer committed during the read ({last})");
    assert_eq!(
        versions.len(),
        1,
        "one instant, not a mix: versions {versions:?}"
    );
    let v = *versions.keys().next().unwrap();
    let expected: Vec<i64> = (v + 1..=20_000 + v).collect();
    let ids: Vec<i64> = seen.keys().copied().collect();
    assert_eq!(ids, expected, "the rows of version {v}");
    assert!(seen.values().all(|c| *c == 1));
    assert_retried(&pg).await;
    drop(pg);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminating_random_partitions_mid_page_loses_and_repeats_nothing() {
    let db = TestDb::create("pgread_part_kill").await;
    db.exec(
        "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL); \
         INSERT INTO items SELECT g, repeat('n', 50) || g FROM generate_series(1, 200000) g; \
         ANALYZE items;",
    )
    .await;
    let pg = connector(&db, "pgread_part_kill");
    let kills = Arc::new(AtomicI64::new(0));
    let killer = {
        let (mut admin, kills) = (db.admin().await, Arc::clone(&kills));
        tokio::spawn(async move {
            // One partition's session at a time, whichever partition it belongs to: its
            // page query running, or the session between two pages inside the
            // partition's transaction.
            let sql = "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM \
                       (SELECT pid FROM pg_stat_activity WHERE application_name = $1 \
                        AND state IN ('active', 'idle in transaction') \
                        AND query LIKE '%LIMIT%' ORDER BY random() LIMIT 1) p) t";
            while kills.load(Ordering::SeqCst) < 4 {
                let n: i64 = sqlx::query_scalar(sql)
                    .bind("pgread_part_kill")
                    .fetch_one(&mut admin)
                    .await
                    .unwrap();
                kills.fetch_add(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        })
    };
    // A few pages in, the read waits until the killer has struck, so that a read
    // faster than the killer (a loaded machine) cannot pass without a fault.
    let (seen, per_partition) = read_partitioned(&pg, "items", partitioned(4, 5000), |index| {
        let kills = Arc::clone(&kills);
        async move {
            if index == 3 {
                let until = Instant::now() + Duration::from_secs(30);
                while kills.load(Ordering::SeqCst) < 1 && Instant::now() < until {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    })
    .await;
    killer.abort();
    assert!(
        kills.load(Ordering::SeqCst) >= 1,
        "page queries were terminated"
    );
    assert_eq!(per_partition.len(), 4);
    assert_each_once(&seen, 200_000);
    assert_retried(&pg).await;
    drop(pg);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_coordinator_restarts_the_unfinished_partitions_on_a_new_snapshot() {
    let db = TestDb::create("pgread_part_coord").await;
    db.exec(
        "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL); \
         INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 40000) g; ANALYZE items;",
    )
    .await;
    let pg = connector(&db, "pgread_part_coord");
    let (seen, _) = read_partitioned(&pg, "items", partitioned(3, 500), |i| {
        let db = &db;
        async move {
            if i == 3 {
                // The coordinator (idle in the exporting transaction), then every partition
                // session: each reconnects and finds the snapshot gone.
                let mut admin = db.admin().await;
                let gone: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM \
                     pg_stat_activity WHERE application_name = $1 \
                     AND query LIKE '%pg_export_snapshot%') t",
                )
                .bind("pgread_part_coord")
                .fetch_one(&mut admin)
                .await
                .unwrap();
                assert_eq!(gone, 1, "the coordinator's session");
                assert!(terminate(&mut admin, "pgread_part_coord", false).await >= 1);
            }
        }
    })
    .await;
    assert_each_once(&seen, 40_000);
    let health = pg.resilience().engine().health();
    let key = health.get("db", pg.host_key()).unwrap();
    assert!(
        key.operations["export_snapshot"].calls >= 2,
        "a new snapshot was exported: {key:?}"
    );
    drop(pg);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_during_a_partitioned_read_delivers_every_row_once() {
    let cluster = match ThrowawayCluster::start().await {
        Ok(cluster) => cluster,
        Err(e) => panic!("a throwaway cluster is needed for the restart test: {e}"),
    };
    let db = TestDb::on(TestServer::Throwaway(cluster), "pgread_part_restart").await;
    db.exec(
        "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL); \
         INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 30000) g; ANALYZE items;",
    )
    .await;
    let pg = connector(&db, "pgread_part_restart");
    let cluster = db.server.cluster().expect("throwaway");
    let restart_now = tokio::sync::Notify::new();
    let read = read_partitioned(&pg, "items", partitioned(2, 1000), |i| {
        let restart_now = &restart_now;
        async move {
            if i == 2 {
                restart_now.notify_one();
            }
        }
    });
    let restart = async {
        restart_now.notified().await;
        cluster.restart_fast().await.expect("restart");
    };
    let ((seen, _), ()) = tokio::join!(read, restart);
    assert_each_once(&seen, 30_000);
    assert_retried(&pg).await;
    drop(pg);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_beyond_the_pool_are_refused_with_the_fix() {
    let db = TestDb::create("pgread_part_pool").await;
    db.exec("CREATE TABLE items (id bigint PRIMARY KEY); INSERT INTO items VALUES (1);")
        .await;
    let pg = db.connector("pgread_part_pool");
    let err = pg
        .read_with("items", None, partitioned(4, 10))
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("partitions = 4 needs 5 connections") && err.contains("pool_size"),
        "{err}"
    );
    drop(pg);
    db.drop().await;
}
