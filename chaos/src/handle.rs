//! The control surface: a cheap, cloneable handle that switches faults from any task.
//!
//! Tests usually drive a proxy from a different task than the one that owns it (the code
//! under test holds connections through it while the test flips faults), so control is a
//! separate `Clone + Send + Sync` handle rather than `&mut` methods on the proxy. Every
//! switch takes effect on connections that are already open, not only on new ones.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::faults::{Direction, Faults};
use crate::state::{ConnectionId, End, Shared};

/// Counters of a proxy, as returned by [`ChaosHandle::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Connections accepted since start, including those reset at once.
    pub accepted: u64,
    /// Accepted connections reset at once (by [`ChaosHandle::refuse_new`] or
    /// [`ChaosHandle::reset_new`]).
    pub rejected: u64,
    /// Connections open now.
    pub open: usize,
    /// Bytes forwarded from clients to the upstream server, over all connections.
    pub bytes_client_to_server: u64,
    /// Bytes forwarded from the upstream server to clients, over all connections.
    pub bytes_server_to_client: u64,
}

impl Stats {
    /// Bytes forwarded in `direction`, over all connections.
    pub fn bytes(&self, direction: Direction) -> u64 {
        match direction {
            Direction::ClientToServer => self.bytes_client_to_server,
            Direction::ServerToClient => self.bytes_server_to_client,
        }
    }
}

/// Switches faults on a [`ChaosProxy`](crate::ChaosProxy) and reads its counters.
///
/// Cheap to clone (an `Arc` inside) and usable from any task. A handle stays valid after the
/// proxy shuts down; it then controls nothing and reports the final counters.
#[derive(Clone)]
pub struct ChaosHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ChaosHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaosHandle")
            .field("faults", &self.faults())
            .field("stats", &self.stats())
            .finish()
    }
}

impl ChaosHandle {
    pub(crate) fn new(shared: Arc<Shared>) -> ChaosHandle {
        ChaosHandle { shared }
    }

    /// The proxy-wide fault settings now in force.
    pub fn faults(&self) -> Faults {
        *self.shared.faults.borrow()
    }

    /// Adds `delay` of latency to every chunk forwarded, in both directions.
    ///
    /// A chunk is held for `delay` after it was read. Chunks of one direction are not
    /// pipelined, so a delay also caps throughput at one buffer (32 KiB) per `delay`.
    /// Applies to chunks already waiting: shortening or clearing a delay releases them.
    /// `Duration::ZERO` removes the delay.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.faults.send_modify(|faults| {
            for direction in Direction::BOTH {
                faults.set_delay(direction, delay);
            }
        });
    }

    /// Adds `delay` of latency to every chunk forwarded in `direction` only; see
    /// [`set_delay`](Self::set_delay).
    pub fn set_delay_in(&self, direction: Direction, delay: Duration) {
        self.shared
            .faults
            .send_modify(|faults| faults.set_delay(direction, delay));
    }

    /// Freezes every open connection: both sockets stay open, but no byte moves in either
    /// direction until it is unfrozen (a half-open or wedged network path). Returns how many
    /// connections were frozen.
    ///
    /// Connections accepted later are not frozen, so a client that gives up on a frozen
    /// connection can reconnect; use [`freeze_new`](Self::freeze_new) to freeze those too.
    /// Like a wedged path, a frozen connection does not notice a peer closing its end: it
    /// stays open (and counted) until it is unfrozen, reset, or the proxy stops.
    pub fn freeze_all(&self) -> usize {
        let n = self.shared.update_all(|control| control.frozen = true);
        tracing::debug!(connections = n, "froze all connections");
        n
    }

    /// Unfreezes every open connection; bytes held back are delivered. Returns how many
    /// connections are open.
    pub fn unfreeze_all(&self) -> usize {
        let n = self.shared.update_all(|control| control.frozen = false);
        tracing::debug!(connections = n, "unfroze all connections");
        n
    }

    /// Freezes one connection (see [`freeze_all`](Self::freeze_all)); false if it is not
    /// open.
    pub fn freeze_connection(&self, id: ConnectionId) -> bool {
        tracing::debug!(connection = %id, "freezing connection");
        self.shared.update(id, |control| control.frozen = true)
    }

    /// Unfreezes one connection; false if it is not open.
    pub fn unfreeze_connection(&self, id: ConnectionId) -> bool {
        tracing::debug!(connection = %id, "unfreezing connection");
        self.shared.update(id, |control| control.frozen = false)
    }

    /// When on, connections accepted from now on start frozen: the client's connect succeeds
    /// but nothing it sends is answered (a black hole).
    pub fn freeze_new(&self, on: bool) {
        self.shared
            .faults
            .send_modify(|faults| faults.freeze_new = on);
    }

    /// Closes every open connection with a TCP RST to both peers; the client sees
    /// `ConnectionReset` (or an unexpected end of stream). Returns how many were reset.
    pub fn reset_all(&self) -> usize {
        let n = self
            .shared
            .update_all(|control| control.end = Some(End::Reset));
        tracing::debug!(connections = n, "resetting all connections");
        n
    }

    /// Closes one connection with a TCP RST to both peers; false if it is not open.
    pub fn reset_connection(&self, id: ConnectionId) -> bool {
        tracing::debug!(connection = %id, "resetting connection");
        self.shared
            .update(id, |control| control.end = Some(End::Reset))
    }

    /// When on, every new connection is accepted and reset at once, so the client's first
    /// read or write fails with `ConnectionReset`. Open connections are not touched (combine
    /// with [`reset_all`](Self::reset_all) for a full outage). Takes precedence over
    /// [`reset_new`](Self::reset_new), whose count it does not consume.
    pub fn refuse_new(&self, on: bool) {
        tracing::debug!(on, "refuse_new");
        self.shared
            .faults
            .send_modify(|faults| faults.refuse_new = on);
    }

    /// Resets the next `n` new connections as [`refuse_new`](Self::refuse_new) does, then
    /// lets connections through again. Replaces any count still pending; 0 cancels it.
    pub fn reset_new(&self, n: u32) {
        tracing::debug!(n, "reset_new");
        self.shared
            .faults
            .send_modify(|faults| faults.reset_new = n);
    }

    /// Closes each connection (FIN to both peers) once it has forwarded `limit` bytes from
    /// server to client; `None` removes the limit.
    ///
    /// Only server-to-client bytes count, since on a read-heavy protocol that is where a
    /// mid-stream cut is interesting and the count is predictable. Exactly `limit` bytes
    /// reach the client. The count is per connection, from its accept; a connection already
    /// past a newly set limit is closed at once.
    pub fn close_after_bytes(&self, limit: Option<u64>) {
        tracing::debug!(?limit, "close_after_bytes");
        self.shared
            .faults
            .send_modify(|faults| faults.close_after_bytes = limit);
    }

    /// Back to a clean pass-through: clears every proxy-wide setting and unfreezes every
    /// open connection. Connections already reset stay closed.
    pub fn clear(&self) {
        self.shared.faults.send_replace(Faults::default());
        self.shared.update_all(|control| control.frozen = false);
        tracing::debug!("faults cleared");
    }

    /// Ids of the open connections, oldest first.
    pub fn connection_ids(&self) -> Vec<ConnectionId> {
        self.shared.ids()
    }

    /// How many connections are open now.
    pub fn connections(&self) -> usize {
        self.shared.open()
    }

    /// Waits until exactly `n` connections are open.
    ///
    /// A client's `connect` returns once the kernel has completed the handshake, which can
    /// be before the proxy has accepted the connection; wait on this before addressing a
    /// connection by id. Wrap it in a timeout if the count may never be reached.
    pub async fn wait_for_connections(&self, n: usize) {
        let mut open = self.shared.watch_open();
        // The sender lives as long as `self.shared`, so this cannot fail.
        let _ = open.wait_for(|&open| open == n).await;
    }

    /// The proxy's counters now.
    pub fn stats(&self) -> Stats {
        Stats {
            accepted: self.shared.accepted.load(Ordering::Relaxed),
            rejected: self.shared.rejected.load(Ordering::Relaxed),
            open: self.shared.open(),
            bytes_client_to_server: self.shared.bytes(Direction::ClientToServer),
            bytes_server_to_client: self.shared.bytes(Direction::ServerToClient),
        }
    }
}
