//! The two page paths, query and binary COPY, give identical batches for every type.
//!
//! The table is the sync's type-fidelity fixture (every built-in type family, arrays,
//! ranges, geometry, enums, domains, NULLs and edge values), plus rows whose keys need
//! quoting as COPY literals. Both numeric mappings are compared, with pages of two rows so
//! that positions cross page boundaries on both paths.

mod pg_read_support;

use arrow_array::RecordBatch;
use connector_postgres::arrow::NumericMapping;
use connector_postgres::{PagePath, PageSize, PostgresConnector, ReadOptions};
use futures_util::TryStreamExt;
use pg_read_support::TestDb;

const EVERY_TYPE: &str = include_str!("../../resilience-cli/tests/fixtures/every_type.sql");

async fn read_all(pg: &PostgresConnector, table: &str, path: PagePath) -> Vec<RecordBatch> {
    let options = ReadOptions {
        page_size: PageSize::Fixed(2),
        path: Some(path),
        ..ReadOptions::new(2)
    };
    pg.read_with(table, None, options)
        .map_ok(|chunk| chunk.batch)
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("reading {table} by {}: {e}", path.as_str()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_and_query_pages_decode_every_type_identically() {
    let db = TestDb::create("pgread_paths_types").await;
    db.exec(EVERY_TYPE).await;
    db.exec(
        "CREATE TABLE quoted_keys (k text PRIMARY KEY, d date, v numeric);
         INSERT INTO quoted_keys VALUES ('it''s', '2024-02-29', 'NaN'), ('back\\slash', \
           '0001-01-01 BC', '-0.000001'), ('E''x''', 'infinity', '1e300'), ('', NULL, NULL), \
           ('日本', '-infinity', '0');",
    )
    .await;
    for mapping in [NumericMapping::Text, NumericMapping::Decimal] {
        let mut pg = db.connector("pgread_paths");
        pg.set_numeric_mapping(mapping);
        for table in ["every_type", "quoted_keys"] {
            if table == "quoted_keys" && mapping == NumericMapping::Decimal {
                // An unbounded numeric holding NaN has no decimal form; the text mapping
                // covers it.
                continue;
            }
            let by_query = read_all(&pg, table, PagePath::Query).await;
            let by_copy = read_all(&pg, table, PagePath::Copy).await;
            let rows: usize = by_query.iter().map(RecordBatch::num_rows).sum();
            assert!(rows >= 5, "{table}: the fixture has rows ({rows})");
            assert_eq!(by_query.len(), by_copy.len(), "{table} {mapping:?}: pages");
            for (i, (q, c)) in by_query.iter().zip(&by_copy).enumerate() {
                assert_eq!(
                    q, c,
                    "{table} {mapping:?}: batch {i} differs between the paths"
                );
            }
        }
    }
    db.drop().await;
}
