//! Delay and freeze: bytes held back, never lost, and released when the fault changes.
//!
//! These run in paused (virtual) time. Real loopback I/O still completes, and the clock
//! only jumps when every task waits, so elapsed-time assertions are lower bounds (or bounds
//! far below a delay that must have been cut short).

mod common;

use std::time::Duration;

use common::{echo_server, round_trip};
use resilience_chaos::{ChaosProxy, Direction};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

#[tokio::test(start_paused = true)]
async fn delay_applies_to_each_direction() {
    let proxy = ChaosProxy::start(echo_server().await).await.unwrap();
    let chaos = proxy.handle();
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    round_trip(&mut client, b"warm").await.unwrap();

    chaos.set_delay(Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(round_trip(&mut client, b"both").await.unwrap(), b"both");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );

    chaos.set_delay(Duration::ZERO);
    chaos.set_delay_in(Direction::ServerToClient, Duration::from_millis(300));
    assert_eq!(
        chaos.faults().delay(Direction::ClientToServer),
        Duration::ZERO
    );
    let started = Instant::now();
    assert_eq!(round_trip(&mut client, b"down").await.unwrap(), b"down");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn delayed_chunks_keep_their_order() {
    let proxy = ChaosProxy::start(echo_server().await).await.unwrap();
    proxy.handle().set_delay(Duration::from_millis(10));
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();

    let mut expected = Vec::new();
    for i in 0..20u8 {
        let message = [i; 7];
        client.write_all(&message).await.unwrap();
        expected.extend_from_slice(&message);
    }
    let mut received = vec![0; expected.len()];
    client.read_exact(&mut received).await.unwrap();
    assert_eq!(received, expected);
}

#[tokio::test(start_paused = true)]
async fn clearing_a_delay_releases_a_waiting_chunk() {
    let proxy = ChaosProxy::start(echo_server().await).await.unwrap();
    let chaos = proxy.handle();
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    round_trip(&mut client, b"warm").await.unwrap();

    chaos.set_delay(Duration::from_secs(3600));
    let started = Instant::now();
    client.write_all(b"late").await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    chaos.clear();

    let mut reply = [0; 4];
    client.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"late");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn freeze_holds_bytes_until_unfrozen() {
    let proxy = ChaosProxy::start(echo_server().await).await.unwrap();
    let chaos = proxy.handle();
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    round_trip(&mut client, b"warm").await.unwrap();

    assert_eq!(chaos.freeze_all(), 1);
    client.write_all(b"held").await.unwrap();
    let mut reply = [0; 4];
    let frozen = timeout(Duration::from_secs(5), client.read_exact(&mut reply)).await;
    assert!(frozen.is_err(), "a frozen connection delivered {frozen:?}");
    assert_eq!(
        proxy.stats().bytes_server_to_client,
        4,
        "only the warm-up got through"
    );

    assert_eq!(chaos.unfreeze_all(), 1);
    client.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"held");
    assert_eq!(round_trip(&mut client, b"more").await.unwrap(), b"more");
}

#[tokio::test(start_paused = true)]
async fn freezing_one_connection_leaves_the_others_flowing() {
    let proxy = ChaosProxy::start(echo_server().await).await.unwrap();
    let chaos = proxy.handle();
    let mut first = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let mut second = TcpStream::connect(proxy.local_addr()).await.unwrap();
    chaos.wait_for_connections(2).await;
    let ids = chaos.connection_ids();
    assert!(ids[0] < ids[1], "ids are ordered by accept time: {ids:?}");

    assert!(chaos.freeze_connection(ids[0]));
    first.write_all(b"held").await.unwrap();
    assert_eq!(round_trip(&mut second, b"free").await.unwrap(), b"free");
    let mut reply = [0; 4];
    let frozen = timeout(Duration::from_secs(5), first.read_exact(&mut reply)).await;
    assert!(
        frozen.is_err(),
        "the frozen connection delivered {frozen:?}"
    );

    assert!(chaos.unfreeze_connection(ids[0]));
    first.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"held");
}

#[tokio::test(start_paused = true)]
async fn freeze_all_spares_new_connections_but_freeze_new_does_not() {
    let proxy = ChaosProxy::start(echo_server().await).await.unwrap();
    let chaos = proxy.handle();
    let mut old = TcpStream::connect(proxy.local_addr()).await.unwrap();
    round_trip(&mut old, b"warm").await.unwrap();
    chaos.freeze_all();

    let mut fresh = TcpStream::connect(proxy.local_addr()).await.unwrap();
    assert_eq!(round_trip(&mut fresh, b"ok").await.unwrap(), b"ok");

    chaos.freeze_new(true);
    let mut black_hole = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let stuck = timeout(Duration::from_secs(5), round_trip(&mut black_hole, b"lost")).await;
    assert!(
        stuck.is_err(),
        "a connection accepted under freeze_new delivered {stuck:?}"
    );

    chaos.clear();
    let mut reply = [0; 4];
    black_hole.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"lost");
}
