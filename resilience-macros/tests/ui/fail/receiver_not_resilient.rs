// A method's receiver must implement `Resilient`: that is where its engine comes from.
#[path = "../common.rs"]
mod common;

use common::DbError;
use resilience_core::resilient_operation;

struct Plain;

impl Plain {
    #[resilient_operation(policy = "db")]
    async fn ping(&self) -> Result<(), DbError> {
        Ok(())
    }
}

fn main() {}
