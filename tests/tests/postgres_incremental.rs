//! `read_incremental`: (cursor, key) paging, checkpoints, NULL cursors, lag, and faults.

mod pg_read_support;

use std::collections::BTreeMap;
use std::time::Duration;

use connector_postgres::{
    Checkpoint, IncrementalChunk, IncrementalOptions, Lag, NullCursor, PgError, PostgresConnector,
};
use futures_util::{StreamExt, TryStreamExt};
use pg_read_support::{TestDb, assert_each_once, assert_retried, count_ids, terminate};
use resilience_core::{ErrorClass, Resilient, ResilientError};

/// 10 rows share each cursor value, so every page boundary of 7 splits a tie.
const TIED: &str = "CREATE TABLE ev (id bigint PRIMARY KEY, v int4 NOT NULL, \
                    at timestamptz NOT NULL, note text);
                    INSERT INTO ev SELECT g, g / 10, \
                    timestamptz '2024-01-01 00:00:00+00' + (g / 10) * interval '1 second', 'n' \
                    FROM generate_series(1, 2000) g;";

async fn run(
    pg: &PostgresConnector,
    cursor: &str,
    from: Option<Checkpoint>,
    batch: usize,
    options: IncrementalOptions,
) -> Result<Vec<IncrementalChunk>, PgError> {
    pg.read_incremental("ev", cursor, from, batch, options)
        .try_collect()
        .await
}

fn ids(chunks: &[IncrementalChunk]) -> BTreeMap<i64, u32> {
    let mut seen = BTreeMap::new();
    chunks
        .iter()
        .for_each(|c| count_ids(&c.batch, "id", &mut seen));
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ties_across_page_boundaries_with_a_fault_at_each_boundary() {
    let db = TestDb::create("pgread_incr_ties").await;
    db.exec(TIED).await;
    let pg = db.connector("pgread_incr_ties");
    for cursor in ["v", "at"] {
        // Kill the session after every other page, and stop (as a crashed consumer would)
        // after 40 pages, then resume from the stored checkpoint.
        let mut seen = BTreeMap::new();
        let mut stored: Option<Checkpoint> = None;
        let mut kills = 0;
        {
            let mut chunks = std::pin::pin!(pg.read_incremental(
                "ev",
                cursor,
                None,
                7,
                IncrementalOptions::new()
            ));
            let mut page = 0;
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk.unwrap();
                count_ids(&chunk.batch, "id", &mut seen);
                stored = Some(chunk.checkpoint.clone());
                page += 1;
                if page % 2 == 0 {
                    kills += terminate(&mut db.admin().await, "pgread_incr_ties", false).await;
                }
                if page == 40 {
                    break;
                }
            }
        }
        assert!(kills >= 10, "sessions were terminated at page boundaries");
        assert_retried(&pg).await;
        let json = serde_json::to_string(stored.as_ref().unwrap()).unwrap();
        let resumed: Checkpoint = serde_json::from_str(&json).unwrap();
        assert_eq!(resumed.cursor.column, cursor);
        assert_eq!(resumed.primary_key[0].value, "280");
        let rest = run(&pg, cursor, Some(resumed), 7, IncrementalOptions::new())
            .await
            .unwrap();
        for c in &rest {
            count_ids(&c.batch, "id", &mut seen);
        }
        assert_each_once(&seen, 2000);
        // Nothing new: a run from the last checkpoint delivers nothing.
        let last = rest.last().unwrap().checkpoint.clone();
        assert!(
            run(&pg, cursor, Some(last), 7, IncrementalOptions::new())
                .await
                .unwrap()
                .is_empty()
        );
    }
    drop(pg);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_backend_mid_incremental_read() {
    let db = TestDb::create("pgread_incr_kill").await;
    db.exec(TIED).await;
    db.exec("INSERT INTO ev SELECT g, g / 10, now(), 'n' FROM generate_series(2001, 90000) g;")
        .await;
    let pg = db.connector("pgread_incr_kill");
    let mut admin = db.admin().await;
    // After the second and the fifth chunk, the reader's backends are terminated before the
    // read goes on: its next page (or the one already requested ahead) meets the fault,
    // whatever the speed of the machine.
    let mut chunks = Vec::new();
    let mut kills = 0;
    {
        let mut stream =
            std::pin::pin!(pg.read_incremental("ev", "v", None, 10_000, IncrementalOptions::new()));
        while let Some(chunk) = stream.next().await {
            chunks.push(chunk.unwrap());
            if matches!(chunks.len(), 2 | 5) {
                kills += terminate(&mut admin, "pgread_incr_kill", false).await;
            }
        }
    }
    assert!(
        kills >= 2,
        "the reader's backends were terminated ({kills})"
    );
    assert_each_once(&ids(&chunks), 90_000);
    assert_retried(&pg).await;
    drop(pg);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_commit_is_caught_with_lag_and_not_repeated() {
    let db = TestDb::create("pgread_incr_lag").await;
    db.exec(TIED).await;
    let pg = db.connector("pgread_incr_lag");
    let lag = || IncrementalOptions::new().lag(Lag::Time(Duration::from_secs(30)));
    let first = run(&pg, "at", None, 100, lag()).await.unwrap();
    assert_each_once(&ids(&first), 2000);
    let checkpoint = first.last().unwrap().checkpoint.clone();
    assert_eq!(checkpoint.cursor.value, "2024-01-01 00:03:20+00");
    // The window is remembered as the one snapshot that read it, not row by row.
    let window = checkpoint.lag_window.as_ref().expect("a lag window record");
    assert_eq!(window.segments(), 1);
    assert!(checkpoint.recent.is_empty());

    // A transaction that started earlier commits a row 20 s behind the checkpoint, and a
    // new row arrives.
    db.exec(
        "INSERT INTO ev VALUES (5001, 0, timestamptz '2024-01-01 00:03:00+00', 'late'), \
             (5002, 0, timestamptz '2024-01-01 00:04:00+00', 'new');",
    )
    .await;
    let without = run(
        &pg,
        "at",
        Some(checkpoint.clone()),
        100,
        IncrementalOptions::new(),
    )
    .await
    .unwrap();
    assert_eq!(
        ids(&without).into_keys().collect::<Vec<_>>(),
        [5002],
        "no lag: the late row is lost"
    );
    let with = run(&pg, "at", Some(checkpoint), 100, lag()).await.unwrap();
    assert_eq!(
        ids(&with).into_keys().collect::<Vec<_>>(),
        [5001, 5002],
        "lag: caught, no repeats"
    );
    let again = run(
        &pg,
        "at",
        Some(with.last().unwrap().checkpoint.clone()),
        100,
        lag(),
    )
    .await
    .unwrap();
    assert!(
        again.is_empty(),
        "a third run repeats nothing: {:?}",
        ids(&again)
    );

    // The same with an integer cursor and a window of 5 units.
    let units = || IncrementalOptions::new().lag(Lag::Units(5));
    let first = run(&pg, "v", None, 64, units()).await.unwrap();
    let checkpoint = first.last().unwrap().checkpoint.clone();
    assert_eq!(
        checkpoint.lag_window.as_ref().map(|w| w.segments()),
        Some(1)
    );
    db.exec("INSERT INTO ev VALUES (6001, 198, now(), 'late');")
        .await;
    let with = run(&pg, "v", Some(checkpoint), 64, units()).await.unwrap();
    assert_eq!(ids(&with).into_keys().collect::<Vec<_>>(), [6001]);
    drop(pg);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_cursors_cursor_types_and_checkpoints_are_checked() {
    let db = TestDb::create("pgread_incr_checks").await;
    db.exec(TIED).await;
    db.exec(
        "ALTER TABLE ev ADD COLUMN f float8, ADD COLUMN maybe int8; \
             UPDATE ev SET maybe = id WHERE id > 5;",
    )
    .await;
    let pg = db.connector("pgread_incr_checks");
    let skip = run(&pg, "maybe", None, 500, IncrementalOptions::new())
        .await
        .unwrap();
    assert_eq!(ids(&skip).len(), 1995);
    assert!(skip.iter().all(|c| c.null_cursor_rows == 5));
    let err = run(
        &pg,
        "maybe",
        None,
        500,
        IncrementalOptions::new().null_cursor(NullCursor::Error),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("5 rows"), "{err}");

    let err = run(&pg, "f", None, 10, IncrementalOptions::new())
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::InvalidInput);
    assert!(
        err.to_string().contains("allowed cursor types: smallint"),
        "{err}"
    );
    let bad_lag = IncrementalOptions::new().lag(Lag::Time(Duration::from_secs(1)));
    assert!(run(&pg, "v", None, 10, bad_lag).await.is_err());

    let other = run(&pg, "v", None, 10, IncrementalOptions::new())
        .await
        .unwrap();
    let mut forged = other[0].checkpoint.clone();
    forged.cursor.pg_type = "int4); DROP TABLE ev; --".into();
    forged.cursor.column = "at".into();
    let err = run(&pg, "v", Some(forged), 10, IncrementalOptions::new())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("checkpoint is for cursor"),
        "{err}"
    );

    // Only the types forged: a checkpoint's pg_type is never used in SQL (values are cast
    // to the catalog's types), so the read resumes exactly as from the genuine checkpoint.
    let genuine = run(
        &pg,
        "v",
        Some(other[0].checkpoint.clone()),
        500,
        IncrementalOptions::new(),
    )
    .await
    .unwrap();
    let mut forged = other[0].checkpoint.clone();
    forged.cursor.pg_type = "int4); DROP TABLE ev; --".into();
    for key in &mut forged.primary_key {
        key.pg_type = "bigint); DROP TABLE ev; --".into();
    }
    let resumed = run(&pg, "v", Some(forged), 500, IncrementalOptions::new())
        .await
        .unwrap();
    assert_eq!(ids(&resumed), ids(&genuine));
    assert_eq!(
        ids(&resumed).len(),
        1990,
        "every row after the first page of 10"
    );
    let mut admin = db.admin().await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM ev")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(left, 2000, "the table is untouched");
    drop(pg);
    db.drop().await;
}

/// With adaptive pages an incremental run is not bounded by its own rate limit: pages
/// start at the batch size and double while they are full and quick, so 100,000 rows take
/// a handful of calls instead of 100 (each call is one rate-limit token).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_pages_grow_and_deliver_every_row_once() {
    let db = TestDb::create("pgread_incr_adaptive").await;
    db.exec(
        "CREATE TABLE ev (id bigint PRIMARY KEY, v int4 NOT NULL, at timestamptz NOT NULL, \
         note text); INSERT INTO ev SELECT g, g / 10, now(), 'n' \
         FROM generate_series(1, 100000) g;",
    )
    .await;
    let pg = db.connector("pgread_incr_adaptive");
    let options = IncrementalOptions::new().adaptive_pages(true);
    let chunks = run(&pg, "v", None, 1_000, options).await.unwrap();
    assert_each_once(&ids(&chunks), 100_000);
    assert!(
        chunks.iter().any(|c| c.batch.num_rows() > 1_000),
        "pages grew beyond the batch size"
    );
    let health = pg.resilience().engine().health();
    let calls = health.get("db", pg.host_key()).unwrap().operations["fetch_page"].calls;
    assert!(calls <= 20, "{calls} page calls for 100,000 rows");
    // A fixed size keeps every chunk within the batch size.
    let fixed = run(&pg, "v", None, 1_000, IncrementalOptions::new())
        .await
        .unwrap();
    assert!(fixed.iter().all(|c| c.batch.num_rows() <= 1_000));
    assert_each_once(&ids(&fixed), 100_000);
    drop(pg);
    db.drop().await;
}
