// A `Result` alias whose error type does not say its class: one error, at the alias.
use resilience_core::resilient_operation;

#[derive(Debug)]
struct Opaque;

impl std::fmt::Display for Opaque {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("opaque")
    }
}

type OpaqueResult<T> = Result<T, Opaque>;

#[resilient_operation(policy = "db")]
async fn fetch() -> OpaqueResult<u32> {
    Err(Opaque)
}

fn main() {}
