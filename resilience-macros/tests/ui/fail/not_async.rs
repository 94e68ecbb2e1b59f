use resilience_core::resilient_operation;

#[resilient_operation(policy = "db")]
fn ping(host: &str) -> Result<(), std::io::Error> {
    let _ = host;
    Ok(())
}

fn main() {}
