// Shared by the pass cases: a connector error type and a receiver.
#![allow(dead_code)]
use std::fmt;

use resilience_core::{Engine, Failure, Resilience, Resilient, ResilientError};

#[derive(Debug, ResilientError)]
pub enum DbError {
    #[resilient(class = "invalid_input")]
    Parse(std::num::ParseIntError),
    #[resilient(failure)]
    Stopped(Box<Failure<DbError>>),
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Parse(e) => e.fmt(f),
            DbError::Stopped(failure) => failure.fmt(f),
        }
    }
}

impl From<std::num::ParseIntError> for DbError {
    fn from(e: std::num::ParseIntError) -> Self {
        DbError::Parse(e)
    }
}

pub struct Connector {
    pub resilience: Resilience,
    pub host: String,
    pub calls: u32,
}

impl Connector {
    pub fn new() -> Connector {
        let resilience = Resilience::new(Engine::builtin(), "db").expect("db is a built-in policy");
        Connector { resilience, host: "127.0.0.1:5432".to_owned(), calls: 0 }
    }

    pub fn host_key(&self) -> &str {
        &self.host
    }
}

impl Resilient for Connector {
    fn resilience(&self) -> &Resilience {
        &self.resilience
    }
}
