use resilience_core::resilient_operation;

#[resilient_operation(policy = "db", crate = "resilience core")]
async fn ping() -> Result<(), std::io::Error> {
    Ok(())
}

#[resilient_operation(policy = "db", crate = resilience_core)]
async fn pong() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
