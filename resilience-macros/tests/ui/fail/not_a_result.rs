use resilience_core::resilient_operation;

#[resilient_operation(policy = "db")]
async fn count(table: &str) -> Option<u64> {
    Some(table.len() as u64)
}

#[resilient_operation(policy = "db")]
async fn ping(host: &str) {
    let _ = host;
}

fn main() {}
