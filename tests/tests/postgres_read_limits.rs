//! Pages and the rate limit: every page is a call that takes a token, so readers sharing a
//! host stay within the policy's rate whatever their page size; adaptive pages grow so
//! that one reader is not held back by the limit.

mod pg_read_support;

use std::time::Instant;

use connector_postgres::{PageSize, PostgresConnector, ReadOptions};
use futures_util::TryStreamExt;
use pg_read_support::{TestDb, assert_each_once, count_ids};
use resilience_core::{Engine, Resilient};

async fn read_rows(pg: &PostgresConnector, options: ReadOptions) -> usize {
    let chunks: Vec<_> = pg
        .read_with("items", None, options)
        .try_collect()
        .await
        .expect("read");
    chunks.iter().map(|c| c.batch.num_rows()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_concurrent_readers_under_the_db_policy_stay_within_its_rate() {
    let db = TestDb::create("pgread_limits_four").await;
    db.exec(
        "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL); \
         INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 1500) g;",
    )
    .await;
    // The built-in `db` policy: 300 calls a minute (5 a second) after a burst of 50.
    let mut pg = PostgresConnector::with_engine(Engine::builtin());
    let mut params = db.params.clone();
    params.pool_size = 4;
    pg.configure(params).unwrap();
    let options = ReadOptions {
        page_size: PageSize::Fixed(100),
        ..ReadOptions::new(100)
    };
    let started = Instant::now();
    let reads = futures_util::future::join_all((0..4).map(|_| read_rows(&pg, options.clone())));
    let rows = reads.await;
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(rows, [1500; 4]);
    let health = pg.resilience().engine().health();
    let key = health.get("db", pg.host_key()).expect("the key's health");
    let pages = key.operations["fetch_page"].calls;
    assert_eq!(pages, 60, "15 pages a reader, each one call");
    // Every call (pages, catalog reads) took a token: beyond the burst of 50 the bucket
    // admits 5 a second, so the calls cannot have finished sooner than this.
    let floor = (key.calls.saturating_sub(50)) as f64 / 5.0;
    assert!(
        key.calls >= 64 && elapsed >= floor * 0.99,
        "{} calls in {elapsed:.2} s: faster than 5 a second after the burst",
        key.calls
    );
    assert!(key.rate_limit_waits > 0, "{key:?}");
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_pages_grow_so_one_reader_needs_few_tokens() {
    let db = TestDb::create("pgread_limits_adaptive").await;
    db.exec(
        "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL); \
         INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 200000) g;",
    )
    .await;
    let pg = db.connector("pgread_limits_adaptive");
    let mut seen = std::collections::BTreeMap::new();
    let chunks: Vec<_> = pg
        .read("items", None, 1000)
        .try_collect()
        .await
        .expect("read");
    for chunk in &chunks {
        assert!(
            chunk.batch.num_rows() <= 1000,
            "batches keep the batch size"
        );
        count_ids(&chunk.batch, "id", &mut seen);
    }
    assert_each_once(&seen, 200_000);
    let health = pg.resilience().engine().health();
    let pages = health.get("db", pg.host_key()).unwrap().operations["fetch_page"].calls;
    // 1,000 rows doubling while a page takes under 100 ms: 1k + 2k + ... reaches 200k in 8
    // pages on a quick machine; fixed pages of 1,000 rows take 200. The margin allows a
    // slow (debug, shared) machine to stop the growth early.
    assert!(pages <= 25, "{pages} pages");
    db.drop().await;
}
