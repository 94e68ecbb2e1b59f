//! The output folder of workers sharing one pipeline's state in the store.
//!
//! Several workers write into one folder at once, each into the files of the sources it
//! leases, so the folder is not locked for a run; the manifest names the state by the
//! store's prefix and the pipeline (the same on every machine), and a run with any other
//! state is refused as before. Since the state of a source can only advance under its
//! lease, a worker accounts for a source's files once it holds that lease
//! ([`Claim::check_source`]): then nobody else writes them, and the check is exact.

use std::collections::BTreeSet;
use std::path::Path;

use super::account::{Account, Output, parse, temporary_of};
use super::{Claim, list, read_manifest, refuse};
use crate::error::CliError;
use crate::sync::config::Source;
use crate::sync::state::StateFile;

/// Whether `name` is an output (or temporary) file of one of `sources`.
pub(super) fn of_sources(name: &str, sources: &[Source]) -> bool {
    let owner = match parse(name) {
        Some(Output::Part { source, .. } | Output::Snapshot { source, .. }) => Some(source),
        None => temporary_of(name),
    };
    owner.is_some_and(|o| sources.iter().any(|s| s.name == o))
}

impl Claim {
    /// Under the lease of `source`, with its entry just read from the store: refuses the
    /// run when the folder holds a file of `source` the state does not account for.
    pub fn check_source(
        &self,
        output: &Path,
        state: &StateFile,
        source: &str,
    ) -> Result<(), CliError> {
        let owned = read_manifest(output)?.is_some_and(|m| m.state == self.me);
        let mut names = list(output)?;
        names.retain(|name| {
            matches!(parse(name),
                Some(Output::Part { source: s, .. } | Output::Snapshot { source: s, .. }) if s == source)
        });
        let account = Account {
            state: &state.state,
            existed: state.existed(),
            owned,
            sources: BTreeSet::from([source]),
        };
        let unaccounted = account.unaccounted(&names);
        if unaccounted.is_empty() {
            Ok(())
        } else {
            Err(refuse(output, state, owned, &unaccounted))
        }
    }
}
