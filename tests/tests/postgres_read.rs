//! `read`: paged, resumable reads into Arrow, against a real server and real faults.

mod pg_read_support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use arrow_array::cast::AsArray;
use connector_postgres::{PagePath, PageSize, PostgresConnector, ReadOptions};
use futures_util::{StreamExt, TryStreamExt};
use pg_read_support::{TestDb, assert_each_once, assert_retried, count_ids, terminate};
use resilience_chaos::ChaosProxy;
use resilience_core::{Engine, ErrorClass, Policy, PolicySet, Resilient, ResilientError};
use test_support::postgres::{TestServer, ThrowawayCluster};

const ITEMS: &str = "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, \
                     price numeric(12,2), at timestamptz NOT NULL DEFAULT now());";

fn populate(n: i64) -> String {
    format!(
        "{ITEMS} INSERT INTO items (id, name, price) \
         SELECT g, 'item ' || g, g * 1.25 FROM generate_series(1, {n}) g;"
    )
}

/// Reads everything, calling `between` after each chunk with its index.
async fn read_ids<F, Fut>(pg: &PostgresConnector, batch: usize, between: F) -> BTreeMap<i64, u32>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    read_ids_with(pg, ReadOptions::new(batch), between).await
}

/// [`read_ids`] with read options.
async fn read_ids_with<F, Fut>(
    pg: &PostgresConnector,
    options: ReadOptions,
    mut between: F,
) -> BTreeMap<i64, u32>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut seen = BTreeMap::new();
    let batch = options.batch_size;
    let mut chunks = std::pin::pin!(pg.read_with("items", None, options));
    let mut index = 0;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.expect("chunk");
        assert!(chunk.resumable);
        assert!(chunk.batch.num_rows() <= batch);
        count_ids(&chunk.batch, "id", &mut seen);
        between(index).await;
        index += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_pages_by_key_and_projects_columns() {
    let db = TestDb::create("pgread_read_basic").await;
    db.exec(&populate(1000)).await;
    let pg = db.connector("pgread_read_basic");
    let seen = read_ids(&pg, 128, |_| async {}).await;
    assert_each_once(&seen, 1000);

    // A projection without the key still pages by it, and reports the key as the position.
    let cols = ["price", "name"];
    let chunks: Vec<_> = pg
        .read("items", Some(&cols), 300)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(chunks.len(), 4);
    let first = &chunks[0];
    assert_eq!(first.batch.schema().fields().len(), 2);
    assert_eq!(first.batch.schema().field(0).name(), "price");
    let position = first.position.as_ref().unwrap();
    assert_eq!(
        (position[0].column.as_str(), position[0].value.as_str()),
        ("id", "300")
    );
    drop(pg);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undisturbed_read_sees_one_snapshot_and_returns_its_connection() {
    let db = TestDb::create("pgread_read_snapshot").await;
    db.exec(&populate(1000)).await;
    let pg = db.connector("pgread_snapshot");
    let mut names = Vec::new();
    {
        let mut chunks = std::pin::pin!(pg.read("items", Some(&["name"]), 100));
        while let Some(chunk) = chunks.next().await {
            let batch = chunk.unwrap().batch;
            let column = batch.column(0).as_string::<i32>();
            names.extend(column.iter().map(|n| n.unwrap().to_owned()));
            if names.len() == 100 {
                db.exec("UPDATE items SET name = 'changed'; DELETE FROM items WHERE id > 900;")
                    .await;
            }
        }
    }
    assert_eq!(
        names.len(),
        1000,
        "rows deleted after the start are still read"
    );
    assert!(
        names.iter().all(|n| n != "changed"),
        "later pages saw a later snapshot"
    );
    // The read returned its connection.
    let size = pg.check_health().await.unwrap().pool_size;
    pg_read_support::wait_for_idle(&pg, size).await;
    drop(pg);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composite_uuid_and_timestamp_keys_page_exactly() {
    let db = TestDb::create("pgread_read_keys").await;
    db.exec(
        "CREATE TABLE comp (region text, day date, seq int2, id bigint NOT NULL, \
           PRIMARY KEY (region, day, seq));
         INSERT INTO comp SELECT r, date '2023-12-30' + d, s, row_number() OVER () \
           FROM unnest(ARRAY['eu', 'Eu ', 'us \"x\"']) r, generate_series(0, 6) d, \
                generate_series(1, 9) s;
         CREATE TABLE uu (u uuid PRIMARY KEY, id bigint NOT NULL);
         INSERT INTO uu SELECT md5(g::text)::uuid, g FROM generate_series(1, 500) g;
         CREATE TABLE tsk (at timestamptz PRIMARY KEY, id bigint NOT NULL);
         INSERT INTO tsk SELECT timestamptz '1999-12-31 23:59:59.999999+00' \
           + g * interval '1 microsecond' * 333, g FROM generate_series(1, 400) g;",
    )
    .await;
    let pg = db.connector("pgread_keys");
    // Positions as bound parameters (query pages) and as literals (COPY pages).
    for path in [PagePath::Query, PagePath::Copy] {
        let options = ReadOptions {
            page_size: PageSize::Fixed(13),
            path: Some(path),
            ..ReadOptions::new(13)
        };
        for (table, rows) in [("comp", 189), ("uu", 500), ("tsk", 400)] {
            let chunks: Vec<_> = pg
                .read_with(table, None, options.clone())
                .try_collect()
                .await
                .unwrap();
            assert!(chunks.iter().all(|c| c.resumable));
            let mut seen = BTreeMap::new();
            chunks
                .iter()
                .for_each(|c| count_ids(&c.batch, "id", &mut seen));
            assert_each_once(&seen, rows);
        }
    }
    drop(pg);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_without_primary_key_streams_once_and_says_it_cannot_resume() {
    let db = TestDb::create("pgread_read_nopk").await;
    db.exec(
        "CREATE TABLE log (id bigint, msg text); \
             INSERT INTO log SELECT g, 'm' FROM generate_series(1, 2500) g;",
    )
    .await;
    let pg = db.connector("pgread_read_nopk");
    let chunks: Vec<_> = pg.read("log", None, 1000).try_collect().await.unwrap();
    assert_eq!(
        chunks
            .iter()
            .map(|c| c.batch.num_rows())
            .collect::<Vec<_>>(),
        [1000, 1000, 500]
    );
    assert!(chunks.iter().all(|c| !c.resumable && c.position.is_none()));
    let mut seen = BTreeMap::new();
    chunks
        .iter()
        .for_each(|c| count_ids(&c.batch, "id", &mut seen));
    assert_each_once(&seen, 2500);
    drop(pg);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_without_primary_key_on_a_frozen_connection_ends_with_an_error() {
    let db = TestDb::create("pgread_read_nopk_freeze").await;
    // About 50 MB, far more than the socket buffers hold, so the query is mid-stream when
    // the path freezes.
    db.exec(
        "CREATE TABLE log (id bigint, msg text); \
         INSERT INTO log SELECT g, repeat('m', 250) FROM generate_series(1, 200000) g;",
    )
    .await;
    let upstream: SocketAddr = format!("127.0.0.1:{}", db.params.port).parse().unwrap();
    let proxy = ChaosProxy::start(upstream).await.unwrap();
    let mut params = db.params.clone();
    params.application_name = "pgread_nopk_freeze".to_owned();
    params.port = proxy.local_addr().port();
    params.pool_size = 1;
    let mut policy = Policy::default();
    policy.timeout.attempt = Duration::from_secs(1);
    policy.timeout.total = Duration::from_secs(60);
    policy.rate_limit.enabled = false;
    let mut pg = PostgresConnector::with_engine(Engine::new(
        PolicySet::from_policies([("db", policy)]).unwrap(),
    ));
    pg.configure(params).unwrap();

    let mut rows = 0;
    let mut error = None;
    let read = async {
        let mut chunks = std::pin::pin!(pg.read("log", None, 1000));
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(chunk) => {
                    assert!(!chunk.resumable);
                    rows += chunk.batch.num_rows();
                    if rows == 1000 {
                        assert_eq!(proxy.handle().freeze_all(), 1);
                    }
                }
                Err(e) => {
                    error = Some(e);
                    assert!(chunks.next().await.is_none(), "the error ends the stream");
                    break;
                }
            }
        }
    };
    // Generous: the read has to end, not be fast.
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("a read on a frozen connection ends");
    let error = error.expect("a stalled unkeyed read ends with an error, not silently");
    assert!(rows < 200_000, "the read stopped early: {rows} rows");
    assert_eq!(error.class(), ErrorClass::Timeout, "{error}");
    assert!(error.to_string().contains("cannot resume"), "{error}");

    // The frozen connection (still frozen) was discarded: the single pool slot serves a
    // new read on a new connection.
    let again = tokio::time::timeout(
        Duration::from_secs(60),
        pg.read("log", Some(&["id"]), 50_000)
            .try_collect::<Vec<_>>(),
    )
    .await
    .expect("the pool is not wedged")
    .unwrap();
    let mut seen = BTreeMap::new();
    again
        .iter()
        .for_each(|c| count_ids(&c.batch, "id", &mut seen));
    assert_each_once(&seen, 200_000);
    drop(pg);
    proxy.handle().reset_all();
    drop(proxy);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_backend_between_pages_loses_and_repeats_nothing() {
    let db = TestDb::create("pgread_read_kill_idle").await;
    db.exec(&populate(5000)).await;
    let pg = db.connector("pgread_kill_idle");
    let kills = AtomicI64::new(0);
    // Fixed pages of 700 rows: the reader holds its connection, idle in its transaction,
    // one page ahead, while the caller takes a batch; that idle session is killed.
    let options = ReadOptions {
        page_size: PageSize::Fixed(700),
        ..ReadOptions::new(700)
    };
    let seen = read_ids_with(&pg, options, |i| {
        let (db, kills) = (&db, &kills);
        async move {
            if i < 4 {
                // The reader may be reconnecting after the last kill: wait until its new
                // session exists, then kill it.
                let mut admin = db.admin().await;
                for _ in 0..2000 {
                    let n = terminate(&mut admin, "pgread_kill_idle", false).await;
                    if n > 0 {
                        kills.fetch_add(n, Ordering::SeqCst);
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    })
    .await;
    assert!(
        kills.load(Ordering::SeqCst) >= 4,
        "the reading session was terminated each time"
    );
    assert_each_once(&seen, 5000);
    assert_retried(&pg).await;
    drop(pg);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_backend_mid_page_resumes_at_the_last_page() {
    let db = TestDb::create("pgread_read_kill_active").await;
    db.exec(&populate(120_000)).await;
    let pg = db.connector("pgread_kill_active");
    let kills = Arc::new(AtomicI64::new(0));
    let killer = {
        let mut admin = db.admin().await;
        let kills = Arc::clone(&kills);
        tokio::spawn(async move {
            while kills.load(Ordering::SeqCst) < 2 {
                kills.fetch_add(
                    terminate(&mut admin, "pgread_kill_active", true).await,
                    Ordering::SeqCst,
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let seen = read_ids(&pg, 15_000, |_| async {}).await;
    killer.abort();
    assert!(
        kills.load(Ordering::SeqCst) >= 1,
        "a page query was terminated while running"
    );
    assert_each_once(&seen, 120_000);
    assert_retried(&pg).await;
    drop(pg);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_reset_mid_read_recovers() {
    let db = TestDb::create("pgread_read_proxy").await;
    db.exec(&populate(60_000)).await;
    let upstream: SocketAddr = format!("127.0.0.1:{}", db.params.port).parse().unwrap();
    let proxy = ChaosProxy::start(upstream).await.unwrap();
    let port = proxy.local_addr().port();
    let pg = db.connector_with("pgread_proxy", |p| p.port = port);
    let handle = proxy.handle().clone();
    handle.set_delay(Duration::from_millis(1));
    let resets = Arc::new(AtomicI64::new(0));
    let seen = read_ids(&pg, 10_000, |i| {
        let (handle, resets) = (handle.clone(), Arc::clone(&resets));
        async move {
            if i == 1 || i == 3 {
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    resets.fetch_add(handle.reset_all() as i64, Ordering::SeqCst);
                });
            }
        }
    })
    .await;
    assert!(
        resets.load(Ordering::SeqCst) >= 1,
        "connections were reset during the read"
    );
    assert_each_once(&seen, 60_000);
    assert_retried(&pg).await;
    drop(pg);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_during_read_delivers_every_row_once() {
    let cluster = match ThrowawayCluster::start().await {
        Ok(cluster) => cluster,
        Err(e) => panic!("a throwaway cluster is needed for the restart test: {e}"),
    };
    let db = TestDb::on(TestServer::Throwaway(cluster), "pgread_read_restart").await;
    db.exec(&populate(20_000)).await;
    let pg = db.connector("pgread_restart");
    let cluster = db.server.cluster().expect("throwaway");
    let restart_now = tokio::sync::Notify::new();
    let restarted = tokio::sync::Notify::new();
    // After its third page the read waits for the restart, so the next page meets the
    // restarted server on the connection the restart killed, however fast the machine.
    let read = read_ids(&pg, 2_000, |i| {
        let (restart_now, restarted) = (&restart_now, &restarted);
        async move {
            if i == 2 {
                restart_now.notify_one();
                restarted.notified().await;
            }
        }
    });
    let restart = async {
        restart_now.notified().await;
        cluster.restart_fast().await.expect("restart");
        restarted.notify_one();
    };
    let (seen, ()) = tokio::join!(read, restart);
    assert_each_once(&seen, 20_000);
    assert_retried(&pg).await;
    drop(pg);
    db.drop().await;
}

/// Regression: a read whose last page was full fetched one more, empty page; a fault on
/// that fetch failed a read that had delivered every row, and the caller could not tell
/// that nothing was missing. Each page now asks for one row more than it delivers, so the
/// read ends with its last rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_delivered_every_key_ends_without_fetching_an_empty_page() {
    let db = TestDb::create("pgread_read_lastpage").await;
    db.exec(&populate(200)).await;
    let upstream: SocketAddr = format!("127.0.0.1:{}", db.params.port).parse().unwrap();
    let proxy = ChaosProxy::start(upstream).await.unwrap();
    let port = proxy.local_addr().port();
    let pg = db.connector_with("pgread_lastpage", |p| p.port = port);
    let handle = proxy.handle().clone();
    let mut seen = BTreeMap::new();
    let mut pages = 0;
    {
        let mut chunks = std::pin::pin!(pg.read("items", None, 100));
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.expect("every page is delivered and the read ends cleanly");
            count_ids(&chunk.batch, "id", &mut seen);
            pages += 1;
            if pages == 2 {
                // Every row is delivered: the dependency may go away now.
                handle.refuse_new(true);
                handle.reset_all();
            }
        }
    }
    assert_eq!(pages, 2);
    assert_each_once(&seen, 200);
    let health = pg.resilience().engine().health();
    let fetches = health.get("db", pg.host_key()).unwrap().operations["fetch_page"].calls;
    assert_eq!(fetches, 2, "two full pages, no third fetch");
    drop(pg);
    handle.clear();
    proxy.shutdown().await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exactly_full_last_page_ends_the_read_without_an_empty_page() {
    let db = TestDb::create("pgread_read_lastpage_full").await;
    db.exec(&populate(1000)).await;
    let pg = db.connector("pgread_lastpage_full");
    let options = ReadOptions {
        page_size: PageSize::Fixed(100),
        ..ReadOptions::new(100)
    };
    let seen = read_ids_with(&pg, options, |_| async {}).await;
    assert_each_once(&seen, 1000);
    let health = pg.resilience().engine().health();
    let key = health.get("db", pg.host_key()).expect("the read's key");
    // Ten pages of 100 rows, each asking for 101: the tenth finds no 101st row and ends
    // the read. An eleventh, empty page could fail after every key was delivered.
    assert_eq!(key.operations["fetch_page"].calls, 10, "{key:?}");
    drop(pg);
    db.drop().await;
}
