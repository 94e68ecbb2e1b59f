//! Reloading the policies of a running `sync`: on `SIGHUP`, and with `--watch-policies`
//! whenever a file in the policy folder changes.
//!
//! The files are loaded and validated exactly as at start (the same folder, profile and
//! `<NAME>_RESILIENCE_CONFIG` files); a set that loads is swapped into the engine, which
//! keeps every breaker, bucket and counter, and each change is logged key by key. A file
//! that does not load is logged with its file, line and column, and the running policies
//! stay: a typo in an edit cannot stop a sync or reset its breakers.

use std::path::PathBuf;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use resilience_core::Engine;
use resilience_core::policy::{LoadOptions, PolicySet};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::CliError;

/// Editors write a file in several steps (truncate, write, rename): changes closer than
/// this are one reload.
const SETTLE: Duration = Duration::from_millis(200);

/// Reloads policies until dropped.
pub struct Reloader {
    task: JoinHandle<()>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl Drop for Reloader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why a reload runs.
#[derive(Debug, Clone, Copy)]
enum Trigger {
    Hangup,
    FileChanged,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Hangup => "SIGHUP",
            Trigger::FileChanged => "a policy file changed",
        }
    }
}

/// Starts reloading `engine`'s policies from `options` on `SIGHUP` and, with `watch`,
/// when a file in the policy folder (or the folder of a `<NAME>_RESILIENCE_CONFIG` file)
/// changes.
pub fn start(engine: Engine, options: LoadOptions, watch: bool) -> Result<Reloader, CliError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let watcher = if watch {
        Some(watch_files(&watched(&options)?, tx.clone())?)
    } else {
        None
    };
    // Installed before returning, so a SIGHUP from now on reloads instead of ending the
    // process (the default action of the signal).
    let hangups = hangups(tx);
    let task = tokio::spawn(async move {
        tokio::spawn(hangups);
        run(engine, options, rx).await;
    });
    Ok(Reloader {
        task,
        _watcher: watcher,
    })
}

/// Refuses `--watch-policies` without a policy folder, before anything is done.
pub fn check(options: &LoadOptions, watch: bool) -> Result<(), CliError> {
    if watch {
        watched(options)?;
    }
    Ok(())
}

/// The folders `--watch-policies` watches: the policy folder and those of the override
/// files (a folder, since editors replace a file by renaming a new one over it).
fn watched(options: &LoadOptions) -> Result<Vec<PathBuf>, CliError> {
    let mut dirs: Vec<PathBuf> = options.dir.iter().cloned().collect();
    for (_, file) in PolicySet::override_files() {
        let dir = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    if dirs.is_empty() {
        return Err(CliError::Usage(
            "--watch-policies needs a policy folder (set --policy-dir or RESILIENCE_POLICY_DIR) or a <NAME>_RESILIENCE_CONFIG file"
                .into(),
        ));
    }
    Ok(dirs)
}

fn watch_files(
    paths: &[PathBuf],
    tx: mpsc::UnboundedSender<Trigger>,
) -> Result<notify::RecommendedWatcher, CliError> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| e.kind.is_modify() || e.kind.is_create() || e.kind.is_remove()) {
            let _ = tx.send(Trigger::FileChanged);
        }
    })
    .map_err(|e| CliError::Failed(format!("cannot watch the policy files: {e}")))?;
    for path in paths {
        watcher
            .watch(path, RecursiveMode::NonRecursive)
            .map_err(|e| {
                CliError::Usage(format!(
                    "--watch-policies: cannot watch {}: {e}",
                    path.display()
                ))
            })?;
    }
    Ok(watcher)
}

async fn run(engine: Engine, options: LoadOptions, mut rx: mpsc::UnboundedReceiver<Trigger>) {
    while let Some(trigger) = rx.recv().await {
        if matches!(trigger, Trigger::FileChanged) {
            tokio::time::sleep(SETTLE).await;
            while rx.try_recv().is_ok() {}
        }
        reload(&engine, &options, trigger);
    }
}

/// A task forwarding every `SIGHUP` (on Unix; elsewhere there is none). The handler is
/// installed when this is called, not when the task first runs.
fn hangups(tx: mpsc::UnboundedSender<Trigger>) -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let hup = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::hangup())
            .inspect_err(|_| {
                tracing::warn!("cannot watch SIGHUP; policies reload only with --watch-policies");
            })
            .ok()
    };
    async move {
        #[cfg(unix)]
        if let Some(mut hup) = hup {
            while hup.recv().await.is_some() {
                if tx.send(Trigger::Hangup).is_err() {
                    return;
                }
            }
        }
        #[cfg(not(unix))]
        drop(tx);
    }
}

/// Loads the policies again and swaps them in, logging what changed or why not.
fn reload(engine: &Engine, options: &LoadOptions, trigger: Trigger) {
    let why = trigger.as_str();
    let loaded = PolicySet::load(options).map_err(|e| e.to_string());
    match loaded.and_then(|set| engine.reload(set).map_err(|e| e.to_string())) {
        Ok(changes) if changes.is_empty() => {
            tracing::info!(trigger = why, "policies reloaded ({why}): nothing changed");
        }
        Ok(changes) => {
            for change in changes {
                tracing::info!(trigger = why, "policies reloaded ({why}): {change}");
            }
        }
        Err(error) => tracing::error!(
            trigger = why,
            "policies not reloaded ({why}): {error}; the running policies stay"
        ),
    }
}
