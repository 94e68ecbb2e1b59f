//! The proxy itself: a loopback listener and the accept loop that spawns connections.
//!
//! The accept loop owns every connection task in a `JoinSet`. That gives the two ways to
//! stop a clean meaning: [`ChaosProxy::shutdown`] stops accepting, closes every connection
//! and waits for the tasks to finish; dropping the proxy aborts the accept task, whose
//! `JoinSet` then aborts every connection task, so no task outlives the proxy either way.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use crate::connection;
use crate::handle::{ChaosHandle, Stats};
use crate::state::{End, Shared};

/// Pause after a failed `accept` (for example when out of file descriptors), so the loop
/// does not spin while the condition lasts.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// A fault-injecting TCP proxy from a loopback port to one upstream address.
///
/// Clients connect to [`local_addr`](Self::local_addr); each connection is forwarded to the
/// upstream address through the faults switched on with [`handle`](Self::handle). With no
/// fault switched on it is a transparent pass-through.
///
/// Dropping the proxy stops it at once and closes every connection; use
/// [`shutdown`](Self::shutdown) to also wait until that is done.
#[derive(Debug)]
pub struct ChaosProxy {
    local_addr: SocketAddr,
    upstream: SocketAddr,
    handle: ChaosHandle,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ChaosProxy {
    /// Starts a proxy on an ephemeral port of 127.0.0.1, forwarding to `upstream`.
    ///
    /// The upstream address is only connected to when a client connects; if that fails the
    /// client's connection is reset.
    ///
    /// # Errors
    ///
    /// Fails if the listener cannot be bound.
    ///
    /// # Panics
    ///
    /// Panics if called outside a Tokio runtime.
    pub async fn start(upstream: SocketAddr) -> io::Result<ChaosProxy> {
        ChaosProxy::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), upstream).await
    }

    /// Starts a proxy listening on `listen`, which must be a loopback address (port 0 picks
    /// a free port), forwarding to `upstream`.
    ///
    /// # Errors
    ///
    /// Fails with [`io::ErrorKind::InvalidInput`] if `listen` is not a loopback address
    /// (a fault injector has no business being reachable from other hosts), or if the
    /// listener cannot be bound.
    ///
    /// # Panics
    ///
    /// Panics if called outside a Tokio runtime.
    pub async fn start_on(listen: SocketAddr, upstream: SocketAddr) -> io::Result<ChaosProxy> {
        if !listen.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "chaos proxy listen address {listen} is not a loopback address; \
                     use 127.0.0.1 or ::1"
                ),
            ));
        }
        let listener = TcpListener::bind(listen).await?;
        let local_addr = listener.local_addr()?;
        let shared = Shared::new();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(
            listener,
            upstream,
            Arc::clone(&shared),
            stopped,
        ));
        tracing::debug!(%local_addr, %upstream, "chaos proxy started");
        Ok(ChaosProxy {
            local_addr,
            upstream,
            handle: ChaosHandle::new(shared),
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address connections are forwarded to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// The handle that switches faults; clone it to use it from other tasks.
    pub fn handle(&self) -> &ChaosHandle {
        &self.handle
    }

    /// How many connections are open now.
    pub fn connections(&self) -> usize {
        self.handle.connections()
    }

    /// How many connections were accepted since start, including those reset at once.
    pub fn accepted(&self) -> u64 {
        self.handle.stats().accepted
    }

    /// The proxy's counters now.
    pub fn stats(&self) -> Stats {
        self.handle.stats()
    }

    /// Stops accepting, closes every open connection (FIN to both peers) and waits until
    /// every connection task has finished.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            // The loop only ends by the stop signal; a join error would be a panic in it,
            // which is not ours to swallow silently.
            if let Err(error) = task.await
                && error.is_panic()
            {
                std::panic::resume_unwind(error.into_panic());
            }
        }
        tracing::debug!(local_addr = %self.local_addr, "chaos proxy shut down");
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => accept(client, peer, upstream, &shared, &mut connections),
                Err(error) => {
                    tracing::debug!(%error, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            },
        }
    }
    drop(listener);
    let n = shared.update_all(|control| control.end = Some(End::Close));
    tracing::debug!(connections = n, "closing all connections");
    while connections.join_next().await.is_some() {}
}

fn accept(
    client: TcpStream,
    peer: SocketAddr,
    upstream: SocketAddr,
    shared: &Arc<Shared>,
    connections: &mut JoinSet<()>,
) {
    let frozen = match shared.admit() {
        Ok(frozen) => frozen,
        Err(reason) => {
            tracing::debug!(%peer, reason, "resetting new connection");
            let _ = client.set_zero_linger();
            return;
        }
    };
    let (registration, control) = shared.register(frozen);
    tracing::debug!(connection = %registration.id(), %peer, frozen, "accepted connection");
    connections.spawn(connection::serve(client, upstream, registration, control));
}
