//! The Redis the tests share: `REDIS_URL` when set, else the server answering on
//! 127.0.0.1:6379, else a throwaway `redis-server` (from the `PATH`) on a free port,
//! started once per test process, without persistence, and stopped when that process
//! exits. Child processes a test starts get the URL through `REDIS_URL`, so a fleet of
//! processes shares one server.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The environment variable naming the Redis to test against.
pub const URL_VARIABLE: &str = "REDIS_URL";

/// The URL of the Redis to test against (see the module docs).
///
/// # Panics
/// When nothing answers on 127.0.0.1:6379 and no `redis-server` can be started.
pub fn url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var(URL_VARIABLE) {
            return url;
        }
        if answers(6379) {
            return "redis://127.0.0.1:6379".to_owned();
        }
        let port = start_throwaway();
        format!("redis://127.0.0.1:{port}")
    })
    .clone()
}

/// Whether a Redis on 127.0.0.1:`port` answers `PING`.
pub fn answers(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

/// Starts `redis-server` on a free port, watched by a shell that stops it when this
/// process is gone, and waits until it answers. Returns the port.
///
/// The shell waits for end of file on a pipe whose only writer is this process: the
/// kernel closes it when this process exits, however it exits (`kill -9` included), so
/// the server stops at once instead of at the next poll.
// The watching shell outlives this process by design (it stops the server once this
// process has exited); init reaps it then, so it never lingers as a zombie.
#[allow(clippy::zombie_processes)]
fn start_throwaway() -> u16 {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let script = format!(
        "redis-server --port {port} --bind 127.0.0.1 --save '' --appendonly no \
         </dev/null >/dev/null 2>&1 & server=$!; cat >/dev/null; kill $server; wait $server"
    );
    let mut watcher = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sh and redis-server on the PATH");
    // Held open for the rest of this process's life; Rust opens pipes close-on-exec, so
    // processes a test starts do not keep it open after this one is gone.
    static WATCHED: OnceLock<std::process::ChildStdin> = OnceLock::new();
    let _ = WATCHED.set(watcher.stdin.take().expect("a piped stdin"));
    let until = Instant::now() + Duration::from_secs(10);
    while !answers(port) {
        assert!(
            Instant::now() < until,
            "redis-server did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    port
}
