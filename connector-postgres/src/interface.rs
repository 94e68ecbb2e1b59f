//! [`PostgresConnector`] as a generic [`Connector`], for pipelines and the CLI.

use futures_core::Stream;
use resilience_core::connector::{ConnectionTestResult, Connector, ConnectorState};

use crate::catalog::TableSchema;
use crate::config::PgParams;
use crate::connector::ConnectorHealth;
use crate::connector::DiscoveredTable;
use crate::connector::PostgresConnector;
use crate::error::PgError;
use crate::incremental::Checkpoint;
use crate::incremental::IncrementalChunk;
use crate::incremental::IncrementalOptions;
use crate::read::DataChunk;

impl Connector for PostgresConnector {
    type Params = PgParams;
    type Error = PgError;
    type Table = DiscoveredTable;
    type Health = ConnectorHealth;
    type Schema = TableSchema;
    type Chunk = DataChunk;
    type Checkpoint = Checkpoint;
    type IncrementalChunk = IncrementalChunk;
    type IncrementalOptions = IncrementalOptions;

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

    async fn get_schema(&self, table: &str) -> Result<TableSchema, PgError> {
        PostgresConnector::get_schema(self, table).await
    }

    fn read<'a>(
        &'a self,
        table: &'a str,
        columns: Option<&'a [&'a str]>,
        batch_size: usize,
    ) -> impl Stream<Item = Result<DataChunk, PgError>> + Send + 'a {
        PostgresConnector::read(self, table, columns, batch_size)
    }

    fn read_incremental<'a>(
        &'a self,
        table: &'a str,
        cursor_field: &'a str,
        from: Option<Checkpoint>,
        batch_size: usize,
        options: IncrementalOptions,
    ) -> impl Stream<Item = Result<IncrementalChunk, PgError>> + Send + 'a {
        PostgresConnector::read_incremental(self, table, cursor_field, from, batch_size, options)
    }
}
