//! Sync workers: several `resilient sync` processes, on one machine or several, running
//! one pipeline whose state lives in Redis (`[state] backend = "redis"`).
//!
//! ```toml
//! [state]
//! backend = "redis"     # the default, "file", is the local --state file
//! pipeline = "orders"   # optional: the name workers share (default: the file's stem)
//! lease_ttl = "30s"     # optional: how long a dead worker keeps its source
//! ```
//!
//! The store is the profile's `[store]` (URL, password, prefix). Each source is leased
//! before it is synced ([`RedisStore::acquire`]): one worker at a time per source, the
//! lease renewed every third of its TTL while the source runs, released when it is done.
//! Every checkpoint is written with the lease's fencing token
//! ([`RedisStore::put_checkpoint`]), so a worker whose lease lapsed (paused, cut off)
//! cannot overwrite what its successor wrote. A worker that dies, even by `kill -9`, keeps
//! its sources for at most the TTL; another worker then resumes them from the last
//! checkpoint. Before renaming each output file into place a worker checks, without a
//! request, that its lease has at least a tenth of its TTL left (measured from when the
//! last renewal was *sent*), so a worker that lost its lease stops before writing.
//!
//! Why the state is the lease's to guard rather than a file lock's: workers on different
//! machines share no file system lock, and a lock that outlives its dead holder is exactly
//! what the TTL avoids.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use resilience_core::policy::PolicySet;
use resilience_redis::RedisStore;
use resilience_redis::lease::{Grant, SourceLease};
use serde::Deserialize;
use tokio::task::JoinHandle;

use crate::error::CliError;
use crate::sync::state::SourceState;

/// The lease TTL when `[state]` does not set `lease_ttl`.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

/// Where the state lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Backend {
    /// The local `--state` file (one run at a time).
    File,
    /// The profile's `[store]`, shared by every worker.
    Redis,
}

/// The pipeline file's `[state]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    backend: Backend,
    pipeline: Option<String>,
    #[serde(default, with = "humantime_serde")]
    lease_ttl: Option<Duration>,
}

/// `[state] backend = "redis"`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The name the workers of this pipeline share in the store.
    pub pipeline: String,
    /// How long a lease lasts unless renewed.
    pub lease_ttl: Duration,
}

/// Resolves `[state]` of the pipeline file `path`: `None` for the local state file.
pub fn resolve(raw: &RawState, path: &Path) -> Result<Option<Settings>, String> {
    if raw.backend == Backend::File {
        if raw.pipeline.is_some() || raw.lease_ttl.is_some() {
            return Err(
                "`pipeline` and `lease_ttl` apply to backend = \"redis\" only; remove them or \
                 set backend = \"redis\""
                    .into(),
            );
        }
        return Ok(None);
    }
    let pipeline = match &raw.pipeline {
        Some(name) => name.clone(),
        None => path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned(),
    };
    if pipeline.is_empty()
        || !pipeline
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(format!(
            "[state] pipeline {:?} must be letters, digits, `_`, `-` or `.` (it names the \
             pipeline's keys in the store; set `pipeline = \"...\"`)",
            crate::echo::clip(&pipeline)
        ));
    }
    let lease_ttl = raw.lease_ttl.unwrap_or(DEFAULT_TTL);
    if lease_ttl < Duration::from_secs(1) {
        return Err(format!(
            "[state] lease_ttl = {:?} is too short: at least 1s (default 30s)",
            humantime::format_duration(lease_ttl).to_string()
        ));
    }
    Ok(Some(Settings {
        pipeline,
        lease_ttl,
    }))
}

/// The store the workers of one pipeline share.
#[derive(Debug)]
pub struct Workers {
    store: RedisStore,
    settings: Settings,
    identity: String,
}

impl Workers {
    /// The workers' store: the profile's `[store]`; without one, a usage error naming
    /// what to add.
    pub fn new(settings: Settings, policies: &PolicySet) -> Result<Arc<Workers>, CliError> {
        let Some(store) = policies.store() else {
            return Err(CliError::Usage(
                "[state] backend = \"redis\" keeps the state in the profile's shared store, \
                 but the profile has no [store]; add `[store] backend = \"redis\"` and `url` \
                 to the profile (--profile), or remove [state] to use the local --state file"
                    .into(),
            ));
        };
        let identity = format!("redis:{}:state:{}", store.prefix, settings.pipeline);
        let store =
            RedisStore::reader(store).map_err(|e| CliError::Usage(format!("[store]: {e}")))?;
        Ok(Arc::new(Workers {
            store,
            settings,
            identity,
        }))
    }

    /// What the output folder's manifest records as the owner: the store's prefix and
    /// the pipeline name, the same on every machine.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// How often a worker asks again for the sources other workers lease.
    pub fn poll(&self) -> Duration {
        (self.settings.lease_ttl / 10).clamp(Duration::from_millis(100), Duration::from_secs(1))
    }

    /// The entry the store holds for `source`.
    pub async fn entry(&self, source: &str) -> Result<Option<SourceState>, CliError> {
        let text = self
            .store
            .checkpoint(&self.settings.pipeline, source)
            .await
            .map_err(|_| self.unavailable(source, "read the checkpoint"))?;
        let Some(text) = text else {
            return Ok(None);
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            CliError::Failed(format!(
                "the checkpoint of source `{source}` in {} is not a state entry ({e}); delete \
                 that field to start the source over",
                self.identity
            ))
        })
    }

    /// Takes the lease of `source`, renewed in the background until the returned
    /// [`Held`] is released or dropped; `None` when another live worker holds it.
    pub async fn acquire(self: &Arc<Self>, source: &str) -> Result<Option<Held>, CliError> {
        let sent = Instant::now();
        let ttl = self.settings.lease_ttl;
        let grant = self
            .store
            .acquire(&self.settings.pipeline, source, ttl)
            .await
            .map_err(|_| self.unavailable(source, "take the lease"))?;
        let lease = match grant {
            Grant::Held(lease) => lease,
            Grant::Taken(_) => return Ok(None),
        };
        let valid = Arc::new(Mutex::new(Some(sent + ttl)));
        let renewer = tokio::spawn(renew(Arc::clone(self), lease.clone(), Arc::clone(&valid)));
        tracing::info!(source, token = lease.token, "lease taken");
        Ok(Some(Held {
            lease,
            valid,
            renewer,
        }))
    }

    /// Writes `entry` for the source of `held`, fenced by its token.
    pub async fn commit(&self, held: &Held, entry: &SourceState) -> Result<(), CliError> {
        let source = &held.lease.source;
        let text = serde_json::to_string(entry)
            .map_err(|e| CliError::Failed(format!("cannot encode the state: {e}")))?;
        match self.store.put_checkpoint(&held.lease, &text).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(lost(source)),
            Err(_) => Err(self.unavailable(source, "write the checkpoint")),
        }
    }

    /// Gives `held` back so that another worker may take the source at once.
    pub async fn release(&self, held: Held) {
        held.renewer.abort();
        if self.store.release(&held.lease).await.is_err() {
            tracing::warn!(source = %held.lease.source,
                "the store did not answer; the lease lapses after its TTL");
        }
    }

    fn unavailable(&self, source: &str, what: &str) -> CliError {
        CliError::Failed(format!(
            "source `{source}`: the shared store did not answer, cannot {what} in {}; \
             committed output and checkpoints are consistent, run again when it answers",
            self.identity
        ))
    }
}

/// A source's lease, held by this worker.
#[derive(Debug)]
pub struct Held {
    lease: SourceLease,
    /// Until when the lease is surely ours (from the send time of the last renewal);
    /// `None` once the store said it is lost.
    valid: Arc<Mutex<Option<Instant>>>,
    renewer: JoinHandle<()>,
}

impl Held {
    /// Before an output file is renamed into place: an error unless the lease has at
    /// least a tenth of its TTL left.
    pub fn check(&self) -> Result<(), CliError> {
        let valid = *self.valid.lock().unwrap_or_else(|e| e.into_inner());
        match valid {
            Some(until) if Instant::now() + self.lease.ttl / 10 < until => Ok(()),
            _ => Err(lost(&self.lease.source)),
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

fn lost(source: &str) -> CliError {
    CliError::Failed(format!(
        "source `{source}`: this worker's lease lapsed (another worker may have taken the \
         source over); nothing more is written for it, and its committed output and \
         checkpoint are consistent"
    ))
}

/// Renews `lease` every third of its TTL and records until when it is surely held.
async fn renew(workers: Arc<Workers>, lease: SourceLease, valid: Arc<Mutex<Option<Instant>>>) {
    let mut tick = tokio::time::interval(lease.ttl / 3);
    tick.tick().await;
    loop {
        tick.tick().await;
        let sent = Instant::now();
        let answer = workers.store.renew(&lease).await;
        let mut valid = valid.lock().unwrap_or_else(|e| e.into_inner());
        match answer {
            Ok(true) => *valid = Some(sent + lease.ttl),
            Ok(false) => {
                tracing::warn!(source = %lease.source, "lease lost to another worker");
                *valid = None;
                return;
            }
            // Unknown: the lease keeps the time it had.
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawState {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn settings_default_to_the_file_stem_and_refuse_bad_values() {
        let p = Path::new("/x/orders.toml");
        assert_eq!(resolve(&raw("backend = \"file\""), p).unwrap(), None);
        assert_eq!(
            resolve(&raw("backend = \"redis\""), p).unwrap(),
            Some(Settings {
                pipeline: "orders".into(),
                lease_ttl: DEFAULT_TTL
            })
        );
        let s = resolve(
            &raw("backend = \"redis\"\npipeline = \"a-b\"\nlease_ttl = \"2s\""),
            p,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (s.pipeline.as_str(), s.lease_ttl),
            ("a-b", Duration::from_secs(2))
        );
        let e = resolve(&raw("backend = \"redis\"\npipeline = \"a b\""), p).unwrap_err();
        assert!(e.contains("must be letters"), "{e}");
        let e = resolve(&raw("backend = \"redis\"\nlease_ttl = \"10ms\""), p).unwrap_err();
        assert!(e.contains("at least 1s"), "{e}");
        let e = resolve(&raw("backend = \"file\"\nlease_ttl = \"10s\""), p).unwrap_err();
        assert!(e.contains("redis\" only"), "{e}");
        assert!(toml::from_str::<RawState>("backend = \"s3\"").is_err());
    }
}
