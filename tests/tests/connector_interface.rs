//! The PostgreSQL connector driven only through the generic `Connector` interface, the
//! way a pipeline that does not know its database would drive it.

mod pg_read_support;

use futures_util::TryStreamExt;
use pg_read_support::TestDb;
use resilience_core::connector::{Connector, ConnectorState};
use resilience_core::{Engine, ErrorClass, ResilientError};

/// Copies a table through the interface: its schema, then every row, then the rows after
/// the last checkpoint. Returns (columns, rows read, rows read incrementally).
async fn copy_table<C: Connector>(
    connector: &C,
    table: &str,
    cursor: &str,
) -> Result<(usize, usize, usize), C::Error>
where
    C::Chunk: AsRef<arrow_array::RecordBatch>,
    C::IncrementalChunk: AsRef<arrow_array::RecordBatch>,
{
    connector.get_schema(table).await?;
    let columns = connector
        .read(table, None, 7)
        .try_fold(0, |n, chunk| async move {
            Ok(n.max(chunk.as_ref().num_columns()))
        })
        .await?;
    let rows = connector
        .read(table, None, 7)
        .map_ok(|chunk| chunk.as_ref().num_rows())
        .try_fold(0, |n, rows| async move { Ok(n + rows) })
        .await?;
    let incremental = connector
        .read_incremental(table, cursor, None, 7, Default::default())
        .map_ok(|chunk| chunk.as_ref().num_rows())
        .try_fold(0, |n, rows| async move { Ok(n + rows) })
        .await?;
    Ok((columns, rows, incremental))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_drives_postgres_through_the_interface() {
    let db = TestDb::create("pgi_interface").await;
    db.exec(
        "CREATE TABLE items (id int PRIMARY KEY, name text, updated_at timestamptz NOT NULL);
         INSERT INTO items SELECT g, 'item ' || g, TIMESTAMPTZ '2024-01-01' + g * INTERVAL '1 minute'
         FROM generate_series(1, 50) g;",
    )
    .await;

    let mut pg = connector_postgres::PostgresConnector::with_engine(Engine::builtin());
    assert_eq!(Connector::state(&pg), ConnectorState::Created);
    let early = Connector::discover(&pg).await.unwrap_err();
    assert_eq!(early.class(), ErrorClass::Config, "{early}");
    Connector::configure(&mut pg, db.params.clone()).unwrap();
    assert_eq!(Connector::state(&pg), ConnectorState::Configured);

    let tested = Connector::test_connection(&pg).await.unwrap();
    assert!(tested.success, "{}", tested.message);
    let tables = Connector::discover(&pg).await.unwrap();
    assert_eq!(tables.len(), 1);
    assert_eq!(
        copy_table(&pg, "items", "updated_at").await.unwrap(),
        (3, 50, 50)
    );
    assert_eq!(Connector::state(&pg), ConnectorState::Ready);

    let unknown = copy_table(&pg, "no_such_table", "updated_at")
        .await
        .unwrap_err();
    assert_eq!(unknown.class(), ErrorClass::InvalidInput, "{unknown}");
    let health = Connector::check_health(&pg).await.unwrap();
    let json = serde_json::to_value(&health).unwrap();
    assert!(json.to_string().contains("circuit_breaker_state"), "{json}");
    drop(pg);
    db.drop().await;
}
