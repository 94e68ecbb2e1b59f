// The body runs once per attempt, so it cannot consume an owned argument.
#[path = "../common.rs"]
mod common;

use common::DbError;
use resilience_core::resilient_operation;

fn write_all(rows: Vec<String>) -> usize {
    rows.len()
}

#[resilient_operation(policy = "db")]
async fn insert(rows: Vec<String>) -> Result<usize, DbError> {
    Ok(write_all(rows))
}

fn main() {}
