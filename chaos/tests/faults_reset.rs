//! Resets of open connections, and new connections refused or reset.

mod common;

use std::io;

use common::{assert_reset, echo_server, recording_server, round_trip};
use resilience_chaos::ChaosProxy;
use tokio::net::TcpStream;

#[tokio::test]
async fn reset_all_resets_the_client_and_the_server() {
    let (upstream, mut server_saw) = recording_server().await;
    let proxy = ChaosProxy::start(upstream).await.unwrap();
    let chaos = proxy.handle();
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    round_trip(&mut client, b"some bytes").await.unwrap();

    assert_eq!(chaos.reset_all(), 1);

    assert_reset(&mut client).await;
    assert_eq!(
        server_saw.recv().await,
        Some(Err(io::ErrorKind::ConnectionReset))
    );
    chaos.wait_for_connections(0).await;
}

#[tokio::test]
async fn reset_connection_resets_only_that_connection() {
    let proxy = ChaosProxy::start(echo_server().await).await.unwrap();
    let chaos = proxy.handle();
    let mut first = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let mut second = TcpStream::connect(proxy.local_addr()).await.unwrap();
    chaos.wait_for_connections(2).await;
    let ids = chaos.connection_ids();

    assert!(chaos.reset_connection(ids[0]));

    assert_reset(&mut first).await;
    assert_eq!(round_trip(&mut second, b"alive").await.unwrap(), b"alive");
    chaos.wait_for_connections(1).await;
    assert_eq!(chaos.connection_ids(), vec![ids[1]]);
    assert!(
        !chaos.reset_connection(ids[0]),
        "a closed connection cannot be reset"
    );
}

#[tokio::test]
async fn refuse_new_resets_new_connections_only_while_on() {
    let proxy = ChaosProxy::start(echo_server().await).await.unwrap();
    let chaos = proxy.handle();
    let mut open = TcpStream::connect(proxy.local_addr()).await.unwrap();
    round_trip(&mut open, b"warm").await.unwrap();

    chaos.refuse_new(true);
    for _ in 0..3 {
        let mut refused = TcpStream::connect(proxy.local_addr()).await.unwrap();
        assert_reset(&mut refused).await;
    }
    assert_eq!(
        round_trip(&mut open, b"still").await.unwrap(),
        b"still",
        "open connections are untouched"
    );

    chaos.refuse_new(false);
    let mut accepted = TcpStream::connect(proxy.local_addr()).await.unwrap();
    assert_eq!(round_trip(&mut accepted, b"back").await.unwrap(), b"back");
    let stats = proxy.stats();
    assert_eq!((stats.accepted, stats.rejected), (5, 3));
}

#[tokio::test]
async fn reset_new_resets_exactly_that_many_then_passes() {
    let proxy = ChaosProxy::start(echo_server().await).await.unwrap();
    let chaos = proxy.handle();
    chaos.reset_new(2);

    for attempt in 1..=2 {
        let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
        assert_reset(&mut client).await;
        assert_eq!(chaos.faults().reset_new, 2 - attempt);
    }
    for _ in 0..2 {
        let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
        assert_eq!(round_trip(&mut client, b"ok").await.unwrap(), b"ok");
    }
    assert_eq!(proxy.stats().rejected, 2);
}

#[tokio::test]
async fn refuse_new_takes_precedence_without_consuming_reset_new() {
    let proxy = ChaosProxy::start(echo_server().await).await.unwrap();
    let chaos = proxy.handle();
    chaos.reset_new(1);
    chaos.refuse_new(true);
    let mut refused = TcpStream::connect(proxy.local_addr()).await.unwrap();
    assert_reset(&mut refused).await;
    assert_eq!(chaos.faults().reset_new, 1);

    chaos.refuse_new(false);
    let mut reset = TcpStream::connect(proxy.local_addr()).await.unwrap();
    assert_reset(&mut reset).await;
    let mut passed = TcpStream::connect(proxy.local_addr()).await.unwrap();
    assert_eq!(round_trip(&mut passed, b"ok").await.unwrap(), b"ok");
}
