//! A minimal HTTP/1.1 responder for `GET /metrics`, on a tokio `TcpListener`.
//!
//! Prometheus scrapes with a plain GET and reads one response per connection; that is all
//! this serves, so no HTTP framework is pulled in. Requests are read up to the end of the
//! headers (bounded in size and time), answered, and the connection is closed.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::error::CliError;
use crate::recorder::MemoryRecorder;

const MAX_REQUEST: usize = 8 * 1024;
/// The pause after a failed `accept`, so a persistent error does not spin the loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Binds `addr` and serves the recorder's metrics until the task is aborted; returns the
/// bound address (useful with port 0) and the task.
pub async fn serve(
    addr: SocketAddr,
    recorder: MemoryRecorder,
) -> Result<(SocketAddr, JoinHandle<()>), CliError> {
    // Any refusal to bind (in use, not a local address, a privileged port) is the
    // caller's to fix: a configuration error.
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        CliError::Usage(format!(
            "--metrics-addr {addr}: cannot listen there: {e}; choose a free port, or port 0 \
             for any free one"
        ))
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| CliError::io("cannot read the metrics address", e))?;
    let task = tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // A persistent error (EMFILE: out of file descriptors) would fail
                    // again at once: back off instead of spinning.
                    tracing::debug!(error = %e, "metrics: accept failed; retrying in 100 ms");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let recorder = recorder.clone();
            tokio::spawn(async move {
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), answer(stream, &recorder)).await;
            });
        }
    });
    Ok((bound, task))
}

async fn answer(mut stream: TcpStream, recorder: &MemoryRecorder) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_REQUEST {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let request = String::from_utf8_lossy(&buf);
    let mut first = request.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    let (status, body) = match (method, path.split('?').next().unwrap_or("")) {
        ("GET", "/metrics") => ("200 OK", recorder.render()),
        ("GET", _) => (
            "404 Not Found",
            "not found; metrics are at /metrics\n".to_owned(),
        ),
        _ => (
            "405 Method Not Allowed",
            "only GET is supported\n".to_owned(),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_metrics_and_404() {
        let recorder = MemoryRecorder::default();
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("sync_rows_total", "source" => "customers").increment(7);
        });
        let (addr, task) = serve("127.0.0.1:0".parse().unwrap(), recorder)
            .await
            .unwrap();
        let ok = get(addr, "/metrics").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(
            ok.contains("sync_rows_total{source=\"customers\"} 7\n"),
            "{ok}"
        );
        let missing = get(addr, "/").await;
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        task.abort();
    }
}
