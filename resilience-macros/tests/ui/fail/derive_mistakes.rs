// Every variant says its class; one holds the engine's verdict. Each mistake is reported at
// the variant or value it concerns.
use resilience_core::{Failure, ResilientError};

#[derive(Debug, ResilientError)]
enum SourceError {
    Untagged(u8),
    #[resilient(class = "flaky")]
    Flaky,
    #[resilient(classify = classify)]
    TwoFields(u8, u8),
    #[resilient(failure)]
    Stopped(Box<Failure<SourceError>>),
}

fn classify(_: &u8) -> resilience_core::ErrorClass {
    resilience_core::ErrorClass::Unknown
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("source error")
    }
}

fn main() {}
