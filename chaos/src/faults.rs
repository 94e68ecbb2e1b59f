//! The proxy-wide fault settings, as a plain value.
//!
//! Settings live in one [`Faults`] value behind a `tokio::sync::watch` channel: every
//! forwarding loop holds a receiver, so a change made from any task reaches connections that
//! are already open at once (a loop that is holding a chunk back wakes on the change and
//! re-evaluates) without any polling. Per-connection state (frozen, reset) is kept apart, in
//! the connection registry, because it names one connection rather than the proxy.

use std::fmt;
use std::time::Duration;

/// The direction bytes travel through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client that connected to the proxy towards the upstream server.
    ClientToServer,
    /// From the upstream server back to the client.
    ServerToClient,
}

impl Direction {
    /// Both directions, client to server first.
    pub const BOTH: [Direction; 2] = [Direction::ClientToServer, Direction::ServerToClient];

    pub(crate) fn index(self) -> usize {
        match self {
            Direction::ClientToServer => 0,
            Direction::ServerToClient => 1,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::ClientToServer => "client-to-server",
            Direction::ServerToClient => "server-to-client",
        })
    }
}

/// A snapshot of the proxy-wide fault settings, as returned by
/// [`ChaosHandle::faults`](crate::ChaosHandle::faults).
///
/// `Faults::default()` is a clean pass-through. The settings are changed through the
/// [`ChaosHandle`](crate::ChaosHandle) methods; this type is the read-only view, useful for
/// logging what a test or demo has switched on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Faults {
    /// Latency added to every chunk forwarded from client to server.
    pub delay_client_to_server: Duration,
    /// Latency added to every chunk forwarded from server to client.
    pub delay_server_to_client: Duration,
    /// Connections accepted from now on start frozen.
    pub freeze_new: bool,
    /// Connections accepted from now on are reset at once.
    pub refuse_new: bool,
    /// How many of the next accepted connections are still to be reset.
    pub reset_new: u32,
    /// Each connection is closed once this many server-to-client bytes have been forwarded
    /// on it.
    pub close_after_bytes: Option<u64>,
}

impl Faults {
    /// The latency added in `direction`.
    pub fn delay(&self, direction: Direction) -> Duration {
        match direction {
            Direction::ClientToServer => self.delay_client_to_server,
            Direction::ServerToClient => self.delay_server_to_client,
        }
    }

    pub(crate) fn set_delay(&mut self, direction: Direction, delay: Duration) {
        match direction {
            Direction::ClientToServer => self.delay_client_to_server = delay,
            Direction::ServerToClient => self.delay_server_to_client = delay,
        }
    }

    /// Whether nothing is switched on (a clean pass-through for new connections).
    pub fn is_clear(&self) -> bool {
        *self == Faults::default()
    }
}
