use resilience_core::resilient_operation;

const DB: &str = "db";

#[resilient_operation(policy = DB)]
async fn ping(host: &str) -> Result<(), std::io::Error> {
    let _ = host;
    Ok(())
}

fn main() {}
