// A `Result` alias is accepted, and a facade crate re-exports the attribute with
// `crate = "..."` (here a module stands in for the facade crate).
#[path = "../common.rs"]
mod common;

use common::{Connector, DbError};

/// What a facade crate would be: the attribute and the engine under its own path.
mod facade {
    pub use resilience_core as resilience;
    pub use resilience_core::resilient_operation;
}

type DbResult<T> = Result<T, DbError>;

impl Connector {
    /// Returns an alias: checked by the compiler, not by name.
    #[facade::resilient_operation]
    async fn count(&self, text: &str) -> DbResult<u32> {
        Ok(text.parse::<u32>()?)
    }

    /// A generic error type: its bound satisfies the check.
    #[facade::resilient_operation]
    async fn count_generic<E>(&self, text: &str) -> Result<u32, E>
    where
        E: resilience_core::ResilientError + From<std::num::ParseIntError>,
    {
        Ok(text.parse::<u32>()?)
    }

    /// Every runtime path goes through the facade.
    #[facade::resilient_operation(crate = "crate::facade::resilience", policy = "db")]
    async fn count_through_the_facade(&self, text: &str) -> DbResult<u32> {
        Ok(text.parse::<u32>()?)
    }
}

/// A free function through the facade, returning the alias.
#[facade::resilient_operation(crate = "facade::resilience", policy = "api")]
async fn ping() -> DbResult<()> {
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let connector = Connector::new();
    assert_eq!(connector.count("7").await.unwrap(), 7);
    assert_eq!(connector.count_through_the_facade("8").await.unwrap(), 8);
    assert_eq!(connector.count_generic::<DbError>("9").await.unwrap(), 9);
    ping().await.unwrap();
}
