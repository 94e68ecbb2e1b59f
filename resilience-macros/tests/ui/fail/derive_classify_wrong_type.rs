// A `classify` function receives a reference to the variant's field and returns its class;
// a function of another shape is a type error at the path the user wrote.
use resilience_core::{Failure, ResilientError};

#[derive(Debug, ResilientError)]
enum SourceError {
    #[resilient(classify = classify)]
    Io(std::io::Error),
    #[resilient(failure)]
    Stopped(Box<Failure<SourceError>>),
}

fn classify(_: &String) -> bool {
    false
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("source error")
    }
}

fn main() {}
