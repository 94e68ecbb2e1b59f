//! One direction of a proxied connection: read a chunk, hold it back while a fault says so,
//! write it on.
//!
//! The loop does no per-byte work: it moves whole reads of up to [`BUFFER_SIZE`] bytes with
//! one `write_all` each. Faults are applied between the read and the write (the "gate"), so
//! a frozen or delayed connection holds at most one buffer; the kernel's socket buffers
//! then fill and push back on the sender, as a wedged network path would. The gate waits on
//! the watch channels, never on a polling timer, and measures a delay from the moment the
//! chunk was read, so changing or clearing a delay also re-times a chunk already waiting.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use crate::faults::{Direction, Faults};
use crate::state::{Control, End, Shared};

/// Size of the buffer each direction of each connection forwards through.
pub(crate) const BUFFER_SIZE: usize = 32 * 1024;

/// Why a direction stopped.
#[derive(Debug)]
pub(crate) enum PumpEnd {
    /// The reader reached end of stream; the end was passed on to the writer.
    Eof,
    /// The server-to-client byte limit was reached.
    LimitReached,
    /// Reading or writing failed (a peer reset or vanished).
    Failed(io::Error),
    /// The connection was told to end.
    Ended(End),
}

/// Watch receivers for one direction, and the counters it updates.
pub(crate) struct Pump<'a> {
    pub(crate) direction: Direction,
    pub(crate) shared: &'a Shared,
    pub(crate) faults: watch::Receiver<Faults>,
    pub(crate) control: watch::Receiver<Control>,
    /// Server-to-client bytes forwarded on this connection (the `close_after_bytes` count).
    pub(crate) downstream: &'a AtomicU64,
}

impl Pump<'_> {
    /// Forwards from `reader` to `writer` until end of stream, an error or a fault ends it.
    pub(crate) async fn run<R, W>(mut self, reader: &mut R, writer: &mut W) -> PumpEnd
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut buf = vec![0u8; BUFFER_SIZE].into_boxed_slice();
        loop {
            let n = match reader.read(&mut buf).await {
                Ok(0) => {
                    // Pass the half-close on; a failure here means the peer is gone, which
                    // the other direction reports.
                    let _ = writer.shutdown().await;
                    return PumpEnd::Eof;
                }
                Ok(n) => n,
                Err(error) => return PumpEnd::Failed(error),
            };
            let allowed = match self.gate(Instant::now()).await {
                Ok(allowed) => allowed,
                Err(end) => return end,
            };
            let chunk = &buf[..n.min(allowed)];
            if let Err(error) = writer.write_all(chunk).await {
                return PumpEnd::Failed(error);
            }
            let written = chunk.len() as u64;
            self.shared.add_bytes(self.direction, written);
            if self.direction == Direction::ServerToClient {
                self.downstream.fetch_add(written, Ordering::Relaxed);
                if chunk.len() < n {
                    return PumpEnd::LimitReached;
                }
            }
        }
    }

    /// Waits until a chunk read at `read_at` may be forwarded; returns how many of its bytes
    /// may go (less than a full chunk only under `close_after_bytes`).
    async fn gate(&mut self, read_at: Instant) -> Result<usize, PumpEnd> {
        loop {
            let control = *self.control.borrow_and_update();
            if let Some(end) = control.end {
                return Err(PumpEnd::Ended(end));
            }
            let faults = *self.faults.borrow_and_update();
            if control.frozen {
                self.changed().await?;
                continue;
            }
            let allowed = self.allowed(&faults)?;
            let deadline = read_at + faults.delay(self.direction);
            if deadline <= Instant::now() {
                return Ok(allowed);
            }
            tokio::select! {
                () = sleep_until(deadline) => {}
                changed = self.changed() => changed?,
            }
        }
    }

    fn allowed(&self, faults: &Faults) -> Result<usize, PumpEnd> {
        match (self.direction, faults.close_after_bytes) {
            (Direction::ServerToClient, Some(limit)) => {
                let remaining = limit.saturating_sub(self.downstream.load(Ordering::Relaxed));
                if remaining == 0 {
                    Err(PumpEnd::LimitReached)
                } else {
                    Ok(usize::try_from(remaining).unwrap_or(usize::MAX))
                }
            }
            _ => Ok(usize::MAX),
        }
    }

    async fn changed(&mut self) -> Result<(), PumpEnd> {
        let changed = tokio::select! {
            changed = self.faults.changed() => changed,
            changed = self.control.changed() => changed,
        };
        // A closed channel means the proxy is gone: end in an orderly way.
        changed.map_err(|_| PumpEnd::Ended(End::Close))
    }
}
