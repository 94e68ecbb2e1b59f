//! [`PostgresConnector`] as a generic [`Connector`], for pipelines and the CLI.

use resilience_core::connector::{ConnectionTestResult, Connector, ConnectorState};

use crate::{ConnectorHealth, DiscoveredTable, PgError, PgParams, PostgresConnector};

impl Connector for PostgresConnector {
    type Params = PgParams;
    type Error = PgError;
    type Table = DiscoveredTable;
    type Health = ConnectorHealth;

    fn state(&self) -> ConnectorState {
        PostgresConnector::state(self)
    }

    fn configure(&mut self, params: PgParams) -> Result<(), PgError> {
        PostgresConnector::configure(self, params)
    }

    async fn test_connection(&self) -> Result<ConnectionTestResult, PgError> {
        PostgresConnector::test_connection(self).await
    }

    async fn discover(&self) -> Result<Vec<DiscoveredTable>, PgError> {
        PostgresConnector::discover(self).await
    }

    async fn check_health(&self) -> Result<ConnectorHealth, PgError> {
        PostgresConnector::check_health(self).await
    }
}
