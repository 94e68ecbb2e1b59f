// Every receiver and signature shape the attribute accepts, run once.
#[path = "../common.rs"]
mod common;

use std::fmt::Display;

use common::{Connector, DbError};
use resilience_core::resilient_operation;

trait Source {
    async fn read(&self, text: &str) -> Result<u32, DbError>;
}

impl Source for Connector {
    /// Reads a number; a method of a trait impl.
    #[resilient_operation(name = "source.read")]
    async fn read(&self, text: &str) -> Result<u32, DbError> {
        Ok(text.parse::<u32>()?)
    }
}

impl Connector {
    /// The receiver's default policy and key.
    #[resilient_operation]
    pub(crate) async fn test_connection(&self) -> Result<(), DbError> {
        Ok(())
    }

    /// All arguments; `?` and an early `return` end the attempt.
    #[resilient_operation(policy = "db", key = self.host_key(), name = "fetch_page")]
    pub async fn fetch(&self, text: &str, after: Option<&u32>) -> Result<u32, DbError> {
        if text.is_empty() {
            return Ok(after.copied().unwrap_or(0));
        }
        let value: u32 = text.parse()?;
        Ok(value)
    }

    /// State changed through `&mut self` is kept.
    #[resilient_operation(policy = "db")]
    async fn bump(&mut self) -> Result<u32, DbError> {
        self.calls += 1;
        Ok(self.calls)
    }

    /// Generics, lifetimes, a `where` clause and an `impl Trait` argument.
    #[resilient_operation]
    async fn describe<'a, T: Display + 'a, U>(
        &'a self,
        value: &'a T,
        items: impl AsRef<[U]>,
    ) -> Result<String, DbError>
    where
        U: Clone,
    {
        #![allow(clippy::useless_format)]
        Ok(format!("{value}:{}", items.as_ref().len()))
    }

    /// An opaque success type.
    #[resilient_operation]
    async fn opaque(&self) -> Result<impl Display, DbError> {
        Ok(7)
    }

    /// An associated function names its policy.
    #[resilient_operation(policy = "api")]
    async fn parse(text: &str) -> std::result::Result<u32, DbError> {
        Ok(text.parse()?)
    }
}

/// A free function, with a key.
#[resilient_operation(policy = "api", key = format!("{}:{}", host, 443))]
async fn length(host: &str, bytes: &[u8]) -> Result<usize, DbError> {
    Ok(bytes.len())
}

fn assert_send<T: Send>(t: T) -> T {
    t
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut connector = Connector::new();
    connector.test_connection().await.unwrap();
    assert_eq!(connector.read("12").await.unwrap(), 12);
    assert_eq!(assert_send(connector.fetch("", Some(&3))).await.unwrap(), 3);
    assert_eq!(connector.fetch("5", None).await.unwrap(), 5);
    assert_eq!(connector.bump().await.unwrap(), 1);
    assert_eq!(connector.describe(&1, [0u8; 2]).await.unwrap(), "1:2");
    assert_eq!(connector.opaque().await.unwrap().to_string(), "7");
    assert_eq!(Connector::parse("9").await.unwrap(), 9);
    assert_eq!(length("127.0.0.1", b"abc").await.unwrap(), 3);
}
