//! [`PostgresConnector`] as a generic [`Connector`](resilience_core::connector::Connector),
//! for pipelines and the CLI.

use futures_core::Stream;

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

resilience_core::impl_connector! {
    PostgresConnector {
        type Params = PgParams;
        type Error = PgError;
        type Table = DiscoveredTable;
        type Health = ConnectorHealth;
        type Schema = TableSchema;
        type Chunk = DataChunk;
        type Checkpoint = Checkpoint;
        type IncrementalChunk = IncrementalChunk;
        type IncrementalOptions = IncrementalOptions;
    }

    async fn discover(&self) -> Result<Vec<DiscoveredTable>, PgError> {
        PostgresConnector::discover(self).await
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
