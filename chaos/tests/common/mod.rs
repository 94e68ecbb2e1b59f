//! Small real TCP servers on 127.0.0.1 for the proxy to forward to.

#![allow(dead_code)] // each test binary uses a different subset

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Starts an echo server; returns its address.
pub async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = socket.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    addr
}

/// Starts a server that sends `pattern(len)` on each connection, then closes it.
pub async fn source_server(len: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = socket.write_all(&pattern(len)).await;
            });
        }
    });
    addr
}

/// Starts an echo server that also reports how each connection's reading ended
/// (`Ok(bytes echoed)` at end of stream, or the error kind).
pub async fn recording_server() -> (
    SocketAddr,
    mpsc::UnboundedReceiver<Result<u64, io::ErrorKind>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (mut read, mut write) = socket.split();
                let result = tokio::io::copy(&mut read, &mut write).await;
                let _ = tx.send(result.map_err(|e| e.kind()));
            });
        }
    });
    (addr, rx)
}

/// A recognisable byte pattern, so truncation or reordering shows.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Sends `message` and reads back as many bytes.
pub async fn round_trip(client: &mut TcpStream, message: &[u8]) -> io::Result<Vec<u8>> {
    client.write_all(message).await?;
    let mut reply = vec![0; message.len()];
    client.read_exact(&mut reply).await?;
    Ok(reply)
}

/// Asserts that the connection was reset: reading fails with `ConnectionReset`, which is
/// what a TCP RST gives (an orderly close would give end of stream instead).
pub async fn assert_reset(client: &mut TcpStream) {
    let mut byte = [0u8; 1];
    let error = client
        .read_exact(&mut byte)
        .await
        .expect_err("the connection should have been reset");
    assert_eq!(error.kind(), io::ErrorKind::ConnectionReset, "{error}");
}
