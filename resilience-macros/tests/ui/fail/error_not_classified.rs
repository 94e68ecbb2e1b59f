// The error type must say its class: the engine decides on retries by it.
use resilience_core::resilient_operation;

#[derive(Debug)]
struct Opaque;

impl std::fmt::Display for Opaque {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("opaque")
    }
}

#[resilient_operation(policy = "db")]
async fn fetch() -> Result<u32, Opaque> {
    Err(Opaque)
}

fn main() {}
