use resilience_core::resilient_operation;

#[resilient_operation(key = "127.0.0.1:5432")]
async fn ping(host: &str) -> Result<(), std::io::Error> {
    let _ = host;
    Ok(())
}

fn main() {}
