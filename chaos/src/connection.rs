//! One proxied connection: connect upstream, run both directions, end the way a fault says.
//!
//! Both directions run as futures inside one task, over borrowed halves of the two sockets,
//! so the task still owns both whole sockets when it decides how the connection ends. That
//! matters for a reset: `SO_LINGER` 0 must be set on the sockets themselves before they are
//! closed, so that both peers see a TCP RST rather than an orderly FIN.
//!
//! A failure on one side is mirrored to the other (a client reset resets the server side),
//! as a broken network path would look to both peers. A connection told to end while its
//! upstream connect is still pending abandons the connect; the upstream server then sees
//! at most an orderly close, since there is no socket yet to set `SO_LINGER` on.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::faults::{Direction, Faults};
use crate::pump::{Pump, PumpEnd};
use crate::state::{Control, End, Registration};

/// Serves one accepted client until the connection ends; owns its registration, so the
/// connection leaves the registry however this future ends (including being dropped).
pub(crate) async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    registration: Registration,
    mut control: watch::Receiver<Control>,
) {
    let id = registration.id();
    let shared = registration.shared();
    let mut faults = shared.faults.subscribe();
    let downstream = AtomicU64::new(0);

    let server = tokio::select! {
        server = TcpStream::connect(upstream) => server,
        end = ended(&mut control, &mut faults, &downstream) => {
            tracing::debug!(connection = %id, ?end, "ended before the upstream connection was made");
            finish(client, None, end).await;
            return;
        }
    };
    let mut server = match server {
        Ok(server) => server,
        Err(error) => {
            tracing::debug!(connection = %id, %upstream, %error, "upstream connect failed; resetting the client");
            finish(client, None, End::Reset).await;
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);

    let end = {
        let (mut client_read, mut client_write) = client.split();
        let (mut server_read, mut server_write) = server.split();
        let pump = |direction| Pump {
            direction,
            shared,
            faults: faults.clone(),
            control: control.clone(),
            downstream: &downstream,
        };
        let up = pump(Direction::ClientToServer).run(&mut client_read, &mut server_write);
        let down = pump(Direction::ServerToClient).run(&mut server_read, &mut client_write);
        let watcher = ended(&mut control, &mut faults, &downstream);
        tokio::pin!(up, down, watcher);
        let (mut up_done, mut down_done) = (false, false);
        loop {
            let finished = tokio::select! {
                end = &mut watcher => break end,
                finished = &mut up, if !up_done => { up_done = true; finished }
                finished = &mut down, if !down_done => { down_done = true; finished }
            };
            match finished {
                PumpEnd::Eof if up_done && down_done => break End::Close,
                PumpEnd::Eof => {}
                PumpEnd::LimitReached => break End::Close,
                PumpEnd::Ended(end) => break end,
                PumpEnd::Failed(error) => {
                    tracing::debug!(connection = %id, %error, "forwarding failed; resetting both sides");
                    break End::Reset;
                }
            }
        }
    };
    tracing::debug!(
        connection = %id,
        ?end,
        server_to_client = downstream.load(Ordering::Relaxed),
        "connection closed"
    );
    finish(client, Some(server), end).await;
}

/// Completes when the connection must end: it was told to, or it has already forwarded
/// the `close_after_bytes` limit (which may be lowered while it is idle).
async fn ended(
    control: &mut watch::Receiver<Control>,
    faults: &mut watch::Receiver<Faults>,
    downstream: &AtomicU64,
) -> End {
    loop {
        if let Some(end) = control.borrow_and_update().end {
            return end;
        }
        if let Some(limit) = faults.borrow_and_update().close_after_bytes
            && downstream.load(Ordering::Relaxed) >= limit
        {
            return End::Close;
        }
        let changed = tokio::select! {
            changed = control.changed() => changed,
            changed = faults.changed() => changed,
        };
        if changed.is_err() {
            return End::Close;
        }
    }
}

/// Closes the sockets: with RST for [`End::Reset`], with FIN for [`End::Close`].
async fn finish(mut client: TcpStream, server: Option<TcpStream>, end: End) {
    match end {
        End::Reset => {
            let _ = client.set_zero_linger();
            if let Some(server) = &server {
                let _ = server.set_zero_linger();
            }
        }
        End::Close => {
            let _ = client.shutdown().await;
            if let Some(mut server) = server {
                let _ = server.shutdown().await;
            }
        }
    }
}
