//! State shared by a proxy, its handles and its connection tasks.
//!
//! Everything a [`ChaosHandle`](crate::ChaosHandle) can change lives here: the proxy-wide
//! [`Faults`] in a watch channel, and a registry of open connections, each with its own
//! watch channel carrying a [`Control`] (frozen, or told to end). Watch channels are the
//! wake-up mechanism: a forwarding loop waits on them instead of polling, so a fault switched
//! from another task takes effect on open connections immediately.
//!
//! A connection is registered by the accept loop before its task is spawned, and removed by
//! dropping its [`Registration`], which the task owns. The registry therefore never holds a
//! connection whose task is gone, even when the task is aborted before it first runs.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

use crate::faults::{Direction, Faults};

/// Identifies one proxied connection; ids increase in accept order and are never reused by
/// the same proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionId(u64);

impl ConnectionId {
    /// The id as a number (the first connection accepted is 1).
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// How a connection is told to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// Abortive close: `SO_LINGER` 0, so both peers receive a TCP RST.
    Reset,
    /// Orderly close: both peers receive a FIN.
    Close,
}

/// Per-connection switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Control {
    pub(crate) frozen: bool,
    pub(crate) end: Option<End>,
}

pub(crate) struct Shared {
    pub(crate) faults: watch::Sender<Faults>,
    connections: Mutex<BTreeMap<ConnectionId, watch::Sender<Control>>>,
    open: watch::Sender<usize>,
    next_id: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) rejected: AtomicU64,
    bytes: [AtomicU64; 2],
}

impl Shared {
    pub(crate) fn new() -> Arc<Shared> {
        Arc::new(Shared {
            faults: watch::Sender::new(Faults::default()),
            connections: Mutex::new(BTreeMap::new()),
            open: watch::Sender::new(0),
            next_id: AtomicU64::new(1),
            accepted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            bytes: [AtomicU64::new(0), AtomicU64::new(0)],
        })
    }

    fn registry(&self) -> MutexGuard<'_, BTreeMap<ConnectionId, watch::Sender<Control>>> {
        // The lock is never held across user code, so a poisoned map is still consistent.
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Decides the fate of a connection just accepted: `Err(reason)` if it must be reset,
    /// `Ok(frozen)` otherwise. Consumes one unit of `reset_new` when that applies.
    pub(crate) fn admit(&self) -> Result<bool, &'static str> {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        let mut verdict = Ok(false);
        self.faults.send_if_modified(|faults| {
            if faults.refuse_new {
                verdict = Err("refuse_new is on");
                false
            } else if faults.reset_new > 0 {
                faults.reset_new -= 1;
                verdict = Err("reset_new");
                true
            } else {
                verdict = Ok(faults.freeze_new);
                false
            }
        });
        if verdict.is_err() {
            self.rejected.fetch_add(1, Ordering::Relaxed);
        }
        verdict
    }

    pub(crate) fn register(
        self: &Arc<Self>,
        frozen: bool,
    ) -> (Registration, watch::Receiver<Control>) {
        let id = ConnectionId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = watch::channel(Control { frozen, end: None });
        let mut registry = self.registry();
        registry.insert(id, tx);
        self.open.send_replace(registry.len());
        let registration = Registration {
            shared: Arc::clone(self),
            id,
        };
        (registration, rx)
    }

    /// Applies `change` to one connection; false if it is not open.
    pub(crate) fn update(&self, id: ConnectionId, change: impl FnOnce(&mut Control)) -> bool {
        match self.registry().get(&id) {
            Some(control) => {
                control.send_modify(change);
                true
            }
            None => false,
        }
    }

    /// Applies `change` to every open connection; returns how many there were.
    pub(crate) fn update_all(&self, mut change: impl FnMut(&mut Control)) -> usize {
        let registry = self.registry();
        for control in registry.values() {
            control.send_modify(&mut change);
        }
        registry.len()
    }

    pub(crate) fn ids(&self) -> Vec<ConnectionId> {
        self.registry().keys().copied().collect()
    }

    pub(crate) fn open(&self) -> usize {
        *self.open.borrow()
    }

    pub(crate) fn watch_open(&self) -> watch::Receiver<usize> {
        self.open.subscribe()
    }

    pub(crate) fn add_bytes(&self, direction: Direction, n: u64) {
        self.bytes[direction.index()].fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn bytes(&self, direction: Direction) -> u64 {
        self.bytes[direction.index()].load(Ordering::Relaxed)
    }
}

/// A connection's place in the registry; dropping it removes the connection.
pub(crate) struct Registration {
    shared: Arc<Shared>,
    id: ConnectionId,
}

impl Registration {
    pub(crate) fn id(&self) -> ConnectionId {
        self.id
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut registry = self.shared.registry();
        registry.remove(&self.id);
        self.shared.open.send_replace(registry.len());
    }
}
