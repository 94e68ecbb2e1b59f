use resilience_core::resilient_operation;

#[resilient_operation(policy = "db", retries = 3)]
async fn ping(host: &str) -> Result<(), std::io::Error> {
    let _ = host;
    Ok(())
}

fn main() {}
