//! Connection counting, start-up checks, shutdown and drop.

mod common;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use common::{assert_reset, echo_server, round_trip};
use resilience_chaos::{ChaosProxy, Direction};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

#[tokio::test]
async fn connections_are_counted_and_ordered() {
    let proxy = ChaosProxy::start(echo_server().await).await.unwrap();
    let chaos = proxy.handle().clone();
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(TcpStream::connect(proxy.local_addr()).await.unwrap());
    }
    chaos.wait_for_connections(3).await;
    assert_eq!(proxy.connections(), 3);
    assert_eq!(proxy.accepted(), 3);
    let ids = chaos.connection_ids();
    assert_eq!(ids.iter().map(|id| id.get()).collect::<Vec<_>>(), [1, 2, 3]);

    drop(clients.remove(1));
    chaos.wait_for_connections(2).await;
    assert_eq!(chaos.connection_ids(), [ids[0], ids[2]]);
    assert_eq!(proxy.accepted(), 3);
}

#[tokio::test]
async fn shutdown_closes_every_connection_and_stops_accepting() {
    let proxy = ChaosProxy::start(echo_server().await).await.unwrap();
    let chaos = proxy.handle().clone();
    let addr = proxy.local_addr();
    let mut clients = Vec::new();
    for _ in 0..2 {
        let mut client = TcpStream::connect(addr).await.unwrap();
        round_trip(&mut client, b"hi").await.unwrap();
        clients.push(client);
    }
    chaos.freeze_connection(chaos.connection_ids()[0]);

    proxy.shutdown().await;

    assert_eq!(
        chaos.connections(),
        0,
        "shutdown waits for every connection task"
    );
    for client in &mut clients {
        let mut rest = Vec::new();
        assert_eq!(client.read_to_end(&mut rest).await.unwrap(), 0);
    }
    let refused = TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn dropping_the_proxy_closes_every_connection() {
    let proxy = ChaosProxy::start(echo_server().await).await.unwrap();
    let chaos = proxy.handle().clone();
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    round_trip(&mut client, b"hi").await.unwrap();
    chaos.set_delay(Duration::from_secs(3600));

    drop(proxy);

    chaos.wait_for_connections(0).await;
    let mut rest = Vec::new();
    assert_eq!(client.read_to_end(&mut rest).await.unwrap(), 0);
}

#[tokio::test]
async fn an_unreachable_upstream_resets_the_client() {
    let unused = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = unused.local_addr().unwrap();
    drop(unused);
    let proxy = ChaosProxy::start(upstream).await.unwrap();

    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();

    assert_reset(&mut client).await;
    proxy.handle().wait_for_connections(0).await;
}

#[tokio::test]
async fn a_non_loopback_listen_address_is_refused() {
    let listen: SocketAddr = "0.0.0.0:0".parse().unwrap();
    let error = ChaosProxy::start_on(listen, echo_server().await)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("127.0.0.1"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn faults_switch_on_and_off_on_one_open_connection() {
    let proxy = ChaosProxy::start(echo_server().await).await.unwrap();
    let chaos = proxy.handle();
    let mut client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    round_trip(&mut client, b"clean").await.unwrap();

    chaos.set_delay_in(Direction::ClientToServer, Duration::from_millis(500));
    let started = tokio::time::Instant::now();
    round_trip(&mut client, b"slow").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(500));

    chaos.clear();
    chaos.freeze_all();
    let stuck = tokio::time::timeout(Duration::from_secs(5), round_trip(&mut client, b"x")).await;
    assert!(stuck.is_err());

    chaos.clear();
    let mut reply = [0; 1];
    client.read_exact(&mut reply).await.unwrap();
    assert_eq!(round_trip(&mut client, b"fine").await.unwrap(), b"fine");

    chaos.reset_all();
    assert_reset(&mut client).await;
    assert_eq!(proxy.stats().accepted, 1);
}

/// An upstream that accepts connections and holds them in its one task, so the runtime's
/// task count only moves with the proxy's own tasks.
async fn holding_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    addr
}

#[tokio::test]
async fn shutdown_leaves_no_task_behind() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let upstream = holding_server().await;
    let before = metrics.num_alive_tasks();
    let proxy = ChaosProxy::start(upstream).await.unwrap();
    let chaos = proxy.handle().clone();
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(TcpStream::connect(proxy.local_addr()).await.unwrap());
    }
    chaos.wait_for_connections(3).await;
    chaos.freeze_all();
    assert_eq!(
        metrics.num_alive_tasks(),
        before + 4,
        "accept loop and 3 connections"
    );

    proxy.shutdown().await;

    assert_eq!(metrics.num_alive_tasks(), before);
}

#[tokio::test]
async fn dropping_the_proxy_leaves_no_task_behind() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let upstream = holding_server().await;
    let before = metrics.num_alive_tasks();
    let proxy = ChaosProxy::start(upstream).await.unwrap();
    let chaos = proxy.handle().clone();
    let _client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    chaos.wait_for_connections(1).await;

    drop(proxy);

    // Aborted tasks are released once the runtime gets to them.
    let released = tokio::time::timeout(Duration::from_secs(5), async {
        while metrics.num_alive_tasks() > before {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        released.is_ok(),
        "{} tasks alive",
        metrics.num_alive_tasks()
    );
    assert_eq!(chaos.connections(), 0);
}
