//! Records into Arrow: a stream's schema (declared in the settings, or inferred from its
//! first page and then fixed) and the decoding of a page into a record batch.
//!
//! A schema fixed once means every batch of a read, and of later reads, has the same
//! columns and types: a record whose value does not fit its column is a `data` error
//! naming the stream, not a silently changed schema. Fields a record has beyond the
//! schema are ignored.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Deserialize;

use crate::HttpError;

/// A declared column.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    /// The record's field.
    pub name: String,
    /// `integer`, `number`, `string`, `boolean` or `timestamp` (RFC 3339, kept in UTC).
    #[serde(rename = "type")]
    pub kind: String,
}

/// The Arrow schema of declared columns (all nullable).
pub fn declared(stream: &str, columns: &[Column]) -> Result<SchemaRef, HttpError> {
    let mut fields = Vec::with_capacity(columns.len());
    for (i, column) in columns.iter().enumerate() {
        let data_type = match column.kind.as_str() {
            "integer" => DataType::Int64,
            "number" => DataType::Float64,
            "string" => DataType::Utf8,
            "boolean" => DataType::Boolean,
            "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            other => {
                return Err(HttpError::config(
                    format!("streams.{stream}.schema[{i}].type"),
                    format!(
                        "`{other}` is not a column type, expected one of: integer, number, \
                         string, boolean, timestamp"
                    ),
                ));
            }
        };
        fields.push(Field::new(&column.name, data_type, true));
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// The schema of `records` as arrow-json infers it, columns in the first record's order.
pub fn infer(stream: &str, records: &[serde_json::Value]) -> Result<SchemaRef, HttpError> {
    let inferred = arrow_json::reader::infer_json_schema_from_iterator(records.iter().map(Ok))
        .map_err(|e| HttpError::Data {
            stream: stream.to_owned(),
            message: format!("cannot infer a schema from the first page: {e}"),
        })?;
    let order: Vec<&String> = match records.first() {
        Some(serde_json::Value::Object(first)) => first.keys().collect(),
        _ => Vec::new(),
    };
    let mut fields: Vec<Arc<Field>> = inferred.fields().iter().cloned().collect();
    fields.sort_by_key(|f| {
        order
            .iter()
            .position(|k| *k == f.name())
            .unwrap_or(usize::MAX)
    });
    Ok(Arc::new(Schema::new(fields)))
}

/// `records` as one batch of `schema`.
pub fn decode(
    stream: &str,
    schema: &SchemaRef,
    records: &[serde_json::Value],
) -> Result<RecordBatch, HttpError> {
    let fail = |e: arrow_schema::ArrowError| HttpError::Data {
        stream: stream.to_owned(),
        message: format!("a record does not fit the stream's schema: {e}"),
    };
    let mut decoder = arrow_json::ReaderBuilder::new(Arc::clone(schema))
        .with_batch_size(records.len().max(1))
        .build_decoder()
        .map_err(fail)?;
    decoder.serialize(records).map_err(fail)?;
    Ok(decoder
        .flush()
        .map_err(fail)?
        .unwrap_or_else(|| RecordBatch::new_empty(Arc::clone(schema))))
}

#[cfg(test)]
mod tests {
    use arrow_array::Array;

    use super::*;

    #[test]
    fn inferred_then_fixed() {
        let page = vec![
            serde_json::json!({"id": 1, "name": "a", "score": 1.5}),
            serde_json::json!({"id": 2, "name": null, "score": 2}),
        ];
        let schema = infer("s", &page).unwrap();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["id", "name", "score"]);
        assert_eq!(schema.field(0).data_type(), &DataType::Int64);
        let batch = decode("s", &schema, &page).unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert!(batch.column(1).is_null(1));
        let wrong = vec![serde_json::json!({"id": "not a number"})];
        let err = decode("s", &schema, &wrong).unwrap_err();
        assert!(err.to_string().contains("does not fit"), "{err}");
    }

    #[test]
    fn declared_types_are_checked() {
        let columns = vec![Column {
            name: "t".into(),
            kind: "date".into(),
        }];
        let err = declared("orders", &columns).unwrap_err();
        assert_eq!(
            err.to_string(),
            "streams.orders.schema[0].type: `date` is not a column type, expected one of: \
             integer, number, string, boolean, timestamp"
        );
    }
}
