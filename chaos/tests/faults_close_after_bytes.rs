//! `close_after_bytes`: a connection cut cleanly after exactly N server-to-client bytes.

mod common;

use common::{echo_server, pattern, round_trip, source_server};
use resilience_chaos::ChaosProxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn a_bulk_read_is_cut_after_exactly_the_limit() {
    let proxy = ChaosProxy::start(source_server(200_000).await)
        .await
        .unwrap();
    // Not a multiple of the buffer size, so the cut falls inside a chunk.
    proxy.handle().close_after_bytes(Some(50_001));

    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let mut received = Vec::new();
    client.read_to_end(&mut received).await.unwrap();

    assert_eq!(received.len(), 50_001);
    assert!(
        received == pattern(200_000)[..50_001],
        "the bytes before the cut are intact"
    );
    proxy.handle().wait_for_connections(0).await;
    assert_eq!(proxy.stats().bytes_server_to_client, 50_001);
}

#[tokio::test]
async fn only_server_to_client_bytes_count() {
    let proxy = ChaosProxy::start(echo_server().await).await.unwrap();
    proxy.handle().close_after_bytes(Some(10));
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();

    client.write_all(&[7; 25]).await.unwrap();
    let mut received = Vec::new();
    client.read_to_end(&mut received).await.unwrap();

    assert_eq!(received, [7; 10]);
    assert_eq!(proxy.stats().bytes_client_to_server, 25);
}

#[tokio::test]
async fn a_limit_already_passed_closes_an_idle_connection_at_once() {
    let proxy = ChaosProxy::start(echo_server().await).await.unwrap();
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    round_trip(&mut client, b"0123456789").await.unwrap();

    proxy.handle().close_after_bytes(Some(5));

    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    proxy.handle().wait_for_connections(0).await;
}

#[tokio::test]
async fn removing_the_limit_lets_connections_run_on() {
    let proxy = ChaosProxy::start(echo_server().await).await.unwrap();
    proxy.handle().close_after_bytes(Some(1_000));
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    round_trip(&mut client, &[1; 600]).await.unwrap();

    proxy.handle().close_after_bytes(None);

    round_trip(&mut client, &[2; 600]).await.unwrap();
    assert_eq!(proxy.stats().bytes_server_to_client, 1_200);
}
