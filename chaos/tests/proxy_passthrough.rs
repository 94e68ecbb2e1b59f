//! With no fault switched on, the proxy is a transparent, efficient pass-through.

mod common;

use common::{echo_server, pattern, round_trip, source_server};
use resilience_chaos::{ChaosProxy, Direction};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn echo_passes_through_and_bytes_are_counted() {
    let proxy = ChaosProxy::start(echo_server().await).await.unwrap();
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();

    assert_eq!(round_trip(&mut client, b"hello").await.unwrap(), b"hello");
    assert_eq!(
        round_trip(&mut client, b", world").await.unwrap(),
        b", world"
    );

    let stats = proxy.stats();
    assert_eq!(stats.bytes(Direction::ClientToServer), 12);
    assert_eq!(stats.bytes(Direction::ServerToClient), 12);
    assert_eq!(stats.accepted, 1);
    assert_eq!(stats.rejected, 0);
    assert!(proxy.handle().faults().is_clear());
}

#[tokio::test]
async fn bulk_transfer_arrives_intact_in_both_directions() {
    const LEN: usize = 8 * 1024 * 1024;
    let proxy = ChaosProxy::start(echo_server().await).await.unwrap();
    let client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let (mut read, mut write) = client.into_split();

    let writer = tokio::spawn(async move {
        write.write_all(&pattern(LEN)).await.unwrap();
        write.shutdown().await.unwrap();
    });
    let mut received = Vec::with_capacity(LEN);
    read.read_to_end(&mut received).await.unwrap();
    writer.await.unwrap();

    assert_eq!(received.len(), LEN);
    assert!(received == pattern(LEN), "bytes were altered or reordered");
    let stats = proxy.stats();
    assert_eq!(stats.bytes_client_to_server, LEN as u64);
    assert_eq!(stats.bytes_server_to_client, LEN as u64);
}

#[tokio::test]
async fn server_end_of_stream_reaches_the_client() {
    let proxy = ChaosProxy::start(source_server(1000).await).await.unwrap();
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();

    let mut received = Vec::new();
    client.read_to_end(&mut received).await.unwrap();

    assert_eq!(received, pattern(1000));
    // The client's half is still open; the connection ends when it closes too.
    assert_eq!(proxy.connections(), 1);
    drop(client);
    proxy.handle().wait_for_connections(0).await;
}
