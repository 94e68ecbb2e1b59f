//! Identifiers: quoted everywhere, accepted only as the catalog spells them; and the
//! schema mapping of every supported type.

mod pg_read_support;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    TimestampMicrosecondType,
};
use arrow_schema::{DataType, TimeUnit};
use connector_postgres::PgError;
use connector_postgres::arrow::PG_TYPE_METADATA_KEY;
use futures_util::TryStreamExt;
use pg_read_support::TestDb;
use resilience_core::{ErrorClass, ResilientError};

const ODD_SCHEMA: &str = "my \"odd\" schema";
const ODD_TABLE: &str = "Order Items \"v2\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotes_spaces_and_case_read_correctly() {
    let db = TestDb::create("pgread_ident_odd").await;
    db.exec(
        r#"CREATE SCHEMA "my ""odd"" schema";
           CREATE TABLE "my ""odd"" schema"."Order Items ""v2""" (
               "Id" bigint PRIMARY KEY, "weird ""col""" text, "with space" int4, "café" text);
           INSERT INTO "my ""odd"" schema"."Order Items ""v2"""
           SELECT g, 'w' || g, g, 'é' || g FROM generate_series(1, 50) g;"#,
    )
    .await;
    let pg = db.connector_with("pgread_ident", |p| p.schema = Some(ODD_SCHEMA.into()));
    let schema = pg.get_schema(ODD_TABLE).await.unwrap();
    assert_eq!(schema.primary_key, ["Id"]);
    let cols = ["weird \"col\"", "café", "Id"];
    let chunks: Vec<_> = pg
        .read(ODD_TABLE, Some(&cols), 20)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(chunks.len(), 3);
    let last = &chunks[2].batch;
    assert_eq!(last.schema().field(0).name(), "weird \"col\"");
    assert_eq!(last.column(0).as_string::<i32>().value(9), "w50");
    assert_eq!(last.column(1).as_string::<i32>().value(9), "é50");
    drop(pg);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_not_in_the_catalog_are_refused() {
    let db = TestDb::create("pgread_ident_refuse").await;
    db.exec(r#"CREATE TABLE "Orders" (id int PRIMARY KEY); CREATE TABLE victim (id int);"#)
        .await;
    let pg = db.connector_with("pgread_refuse", |p| p.schema = Some("public".into()));
    for bad in [
        "orders",
        "nope",
        "victim; DROP TABLE victim",
        "\"Orders\"",
        "Or\0ders",
    ] {
        let err = pg
            .read(bad, None, 10)
            .try_collect::<Vec<_>>()
            .await
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::InvalidInput, "{bad:?}: {err}");
        assert!(matches!(err, PgError::InvalidInput(_)), "{bad:?}: {err:?}");
    }
    let err = pg.get_schema("nope").await.unwrap_err().to_string();
    assert!(
        err.contains("\"nope\"") && err.contains("as the catalog lists them"),
        "{err}"
    );
    // The exact spelling works, and the victim table survived.
    assert!(pg.get_schema("Orders").await.is_ok());
    assert!(pg.get_schema("victim").await.is_ok());
    let err = pg
        .read("Orders", Some(&["ID"]), 10)
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("its columns are: id"), "{err}");
    drop(pg);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_maps_to_its_arrow_type_and_decodes() {
    let db = TestDb::create("pgread_ident_types").await;
    db.exec(
        "CREATE TABLE t (id int8 PRIMARY KEY, i2 int2, i4 int4 NOT NULL, f4 float4, f8 float8, \
           b bool, tx text, vc varchar(10), ch char(3), dec numeric(12,2), big numeric, \
           d date, ts timestamp(6), tz timestamptz, by bytea, u uuid, j jsonb, arr int4[]);
         INSERT INTO t VALUES (1, -7, 42, 1.5, -2.25, true, 'héllo', 'v', 'ab', -12345.67, \
           '123456789012345678901234567890.123456789', '2024-02-29', '1999-12-31 23:59:59.999999', \
           '2024-01-01 02:00:00+02', '\\x00ff', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', \
           '{\"k\": [1, 2]}', '{1,2}');
         INSERT INTO t (id, i4) VALUES (2, 0);",
    )
    .await;
    let pg = db.connector("pgread_types");
    let schema = pg.get_schema("t").await.unwrap();
    let types: Vec<DataType> = schema
        .arrow
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    let utc = Some("UTC".into());
    assert_eq!(
        types,
        [
            DataType::Int64,
            DataType::Int16,
            DataType::Int32,
            DataType::Float32,
            DataType::Float64,
            DataType::Boolean,
            DataType::Utf8,
            DataType::Utf8,
            DataType::Utf8,
            DataType::Decimal128(12, 2),
            DataType::Utf8,
            DataType::Date32,
            DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Timestamp(TimeUnit::Microsecond, utc),
            DataType::Binary,
            DataType::FixedSizeBinary(16),
            DataType::Utf8,
            DataType::Utf8,
        ]
    );
    assert!(!schema.arrow.field(2).is_nullable() && schema.arrow.field(1).is_nullable());
    let meta = schema.arrow.field(9).metadata().get(PG_TYPE_METADATA_KEY);
    assert_eq!(meta.map(String::as_str), Some("numeric(12,2)"));

    let chunks: Vec<_> = pg.read("t", None, 10).try_collect().await.unwrap();
    let b = &chunks[0].batch;
    assert_eq!(b.column(1).as_primitive::<Int16Type>().value(0), -7);
    assert_eq!(b.column(2).as_primitive::<Int32Type>().value(0), 42);
    assert_eq!(b.column(3).as_primitive::<Float32Type>().value(0), 1.5);
    assert_eq!(b.column(4).as_primitive::<Float64Type>().value(0), -2.25);
    assert!(b.column(5).as_boolean().value(0));
    assert_eq!(b.column(6).as_string::<i32>().value(0), "héllo");
    assert_eq!(b.column(8).as_string::<i32>().value(0), "ab ");
    assert_eq!(
        b.column(9).as_primitive::<Decimal128Type>().value(0),
        -1_234_567
    );
    let big = b.column(10).as_string::<i32>().value(0);
    assert_eq!(big, "123456789012345678901234567890.123456789");
    assert_eq!(b.column(11).as_primitive::<Date32Type>().value(0), 19_782);
    let ts = b
        .column(12)
        .as_primitive::<TimestampMicrosecondType>()
        .value(0);
    assert_eq!(ts, 946_684_799_999_999);
    let tz = b
        .column(13)
        .as_primitive::<TimestampMicrosecondType>()
        .value(0);
    assert_eq!(tz, 1_704_067_200_000_000);
    assert_eq!(b.column(14).as_binary::<i32>().value(0), [0x00, 0xff]);
    assert_eq!(
        b.column(15).as_fixed_size_binary().value(0),
        [
            0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
            0x0a, 0x11
        ]
    );
    assert_eq!(
        schema.arrow.field(15).metadata()["ARROW:extension:name"],
        "arrow.uuid"
    );
    assert_eq!(b.column(16).as_string::<i32>().value(0), r#"{"k": [1, 2]}"#);
    assert_eq!(b.column(17).as_string::<i32>().value(0), "{1,2}");
    // The second row is NULL everywhere but its key and i4.
    let nulls = (0..b.num_columns())
        .filter(|c| b.column(*c).is_null(1))
        .count();
    assert_eq!(nulls, b.num_columns() - 2);
    assert_eq!(b.column(0).as_primitive::<Int64Type>().value(1), 2);
    drop(pg);
    db.drop().await;
}
