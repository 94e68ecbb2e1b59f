//! A small fault-injecting TCP proxy for testing how clients survive a bad network.
//!
//! [`ChaosProxy`] listens on a loopback port and forwards every connection to one upstream
//! address. Through its [`ChaosHandle`] a test switches faults on and off at any time, and
//! every switch reaches the connections that are already open:
//!
//! | fault | effect |
//! |---|---|
//! | [`set_delay`](ChaosHandle::set_delay), [`set_delay_in`](ChaosHandle::set_delay_in) | latency added to each chunk forwarded |
//! | [`freeze_all`](ChaosHandle::freeze_all), [`freeze_connection`](ChaosHandle::freeze_connection) | sockets stay open, nothing moves (a wedged connection) |
//! | [`freeze_new`](ChaosHandle::freeze_new) | new connections start frozen (a black hole) |
//! | [`reset_all`](ChaosHandle::reset_all), [`reset_connection`](ChaosHandle::reset_connection) | TCP RST to both peers |
//! | [`refuse_new`](ChaosHandle::refuse_new) | new connections are reset at once |
//! | [`reset_new`](ChaosHandle::reset_new) | the next `n` new connections are reset, later ones pass |
//! | [`close_after_bytes`](ChaosHandle::close_after_bytes) | each connection closed after `n` server-to-client bytes |
//! | [`clear`](ChaosHandle::clear) | back to a clean pass-through |
//!
//! Forwarding moves whole 32 KiB buffers and does no per-byte work, so bulk reads through
//! the proxy stay fast. Fault changes wake waiting connections through watch channels, not
//! timers, and all timing uses `tokio::time`, so tests can run it under paused time.
//! Dropping the proxy, or [`ChaosProxy::shutdown`], closes every connection and leaves no
//! task behind. Events are logged with `tracing` at debug level.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use resilience_chaos::ChaosProxy;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use tokio::net::{TcpListener, TcpStream};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! // An echo server to stand in for the real upstream.
//! let server = TcpListener::bind("127.0.0.1:0").await?;
//! let upstream = server.local_addr()?;
//! tokio::spawn(async move {
//!     while let Ok((mut socket, _)) = server.accept().await {
//!         tokio::spawn(async move {
//!             let (mut read, mut write) = socket.split();
//!             let _ = tokio::io::copy(&mut read, &mut write).await;
//!         });
//!     }
//! });
//!
//! let proxy = ChaosProxy::start(upstream).await?;
//! let mut client = TcpStream::connect(proxy.local_addr()).await?;
//!
//! // A clean pass-through...
//! client.write_all(b"ping").await?;
//! let mut reply = [0; 4];
//! client.read_exact(&mut reply).await?;
//! assert_eq!(&reply, b"ping");
//!
//! // ...until a fault is switched on for the open connection.
//! let chaos = proxy.handle().clone();
//! chaos.freeze_all();
//! client.write_all(b"pong").await?;
//! let read = tokio::time::timeout(Duration::from_millis(50), client.read_exact(&mut reply)).await;
//! assert!(read.is_err(), "nothing moves through a frozen connection");
//!
//! chaos.reset_all();
//! let read = client.read_exact(&mut reply).await;
//! assert!(read.is_err(), "the connection was reset");
//!
//! assert_eq!(proxy.stats().bytes_client_to_server, 4);
//! proxy.shutdown().await;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod connection;
mod faults;
mod handle;
mod proxy;
mod pump;
mod state;

pub use faults::{Direction, Faults};
pub use handle::{ChaosHandle, Stats};
pub use proxy::ChaosProxy;
pub use state::ConnectionId;
