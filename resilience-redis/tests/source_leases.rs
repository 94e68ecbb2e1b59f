//! Source leases with fencing tokens, and checkpoints written under them: two worker
//! processes share four sources; one is `kill -9`ed mid-source; the other takes its
//! source over after the TTL from the last checkpoint and finishes every source, and
//! every part is in the output once. A worker whose lease lapsed is fenced off.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{redis_url, unique_prefix};
use resilience_core::policy::StorePolicy;
use resilience_redis::RedisStore;
use resilience_redis::lease::Grant;

const SOURCES: [&str; 4] = ["a", "b", "c", "d"];
const PARTS: u64 = 20;
const TTL: Duration = Duration::from_millis(800);

fn store(prefix: &str) -> RedisStore {
    let mut policy = StorePolicy::redis(redis_url());
    policy.prefix = prefix.to_owned();
    RedisStore::new(&policy).unwrap()
}

fn spawn(prefix: &str, out: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .env("REDIS_URL", redis_url())
        .args(["--exact", "worker", "--nocapture", "--test-threads=1"])
        .env("LEASE_PREFIX", prefix)
        .env("LEASE_OUT", out)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

#[test]
fn a_killed_worker_s_source_is_taken_over_from_its_checkpoint_and_finished() {
    if std::env::var_os("LEASE_PREFIX").is_some() {
        return;
    }
    let prefix = unique_prefix("leases");
    let out = std::env::temp_dir().join(format!("redis-{prefix}"));
    std::fs::create_dir_all(&out).unwrap();
    let mut first = spawn(&prefix, &out);
    // Kill the first worker once it is in the middle of a source.
    let lines = BufReader::new(first.stdout.take().unwrap());
    for line in lines.lines() {
        if line.unwrap().contains("PART ") {
            break;
        }
    }
    let second = spawn(&prefix, &out);
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let done = second.wait_with_output().unwrap();
    assert!(done.status.success(), "the second worker failed");
    // The second worker resumed a source the first had started: its first part there is
    // past 1 (the checkpoint), under a larger token.
    let text = String::from_utf8(done.stdout).unwrap();
    let resumed = SOURCES.iter().any(|source| {
        text.lines()
            .filter_map(|l| l.split("PART ").nth(1))
            .filter_map(|p| p.strip_prefix(&format!("{source} ")))
            .filter_map(|p| p.split(' ').next()?.parse::<u64>().ok())
            .min()
            .is_some_and(|first| first > 1)
    });
    assert!(
        resumed,
        "no source was taken over from its checkpoint: {text}"
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let checker = runtime.block_on(async { store(&prefix) });
    for source in SOURCES {
        let checkpoint = runtime
            .block_on(checker.checkpoint("pipe", source))
            .unwrap();
        assert_eq!(checkpoint.as_deref(), Some("20"), "source {source}");
    }
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let mut expected: Vec<String> = SOURCES
        .iter()
        .flat_map(|s| (1..=PARTS).map(move |p| format!("{s}-{p:02}")))
        .collect();
    expected.sort();
    assert_eq!(files, expected, "every part once, no temporary left");
    for name in &files {
        let body = std::fs::read_to_string(out.join(name)).unwrap();
        assert_eq!(&body, name, "whole parts only");
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// Writes `path` atomically: a temporary file, then a rename.
fn write_part(dir: &Path, name: &str) {
    let tmp: PathBuf = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, name).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

/// One worker: leases sources one at a time, continues each from its checkpoint.
#[test]
fn worker() {
    let Some(prefix) = std::env::var_os("LEASE_PREFIX") else {
        return;
    };
    let out = PathBuf::from(std::env::var_os("LEASE_OUT").unwrap());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = store(prefix.to_str().unwrap());
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(Instant::now() < until, "the sources were never all done");
            let mut all_done = true;
            for source in SOURCES {
                let checkpoint = store.checkpoint("pipe", source).await.unwrap();
                let mut next: u64 = checkpoint.map_or(0, |c| c.parse().unwrap()) + 1;
                if next > PARTS {
                    continue;
                }
                all_done = false;
                let Grant::Held(lease) = store.acquire("pipe", source, TTL).await.unwrap() else {
                    continue;
                };
                // Re-read under the lease: the checkpoint may have moved meanwhile.
                let checkpoint = store.checkpoint("pipe", source).await.unwrap();
                next = checkpoint.map_or(0, |c| c.parse().unwrap()) + 1;
                while next <= PARTS {
                    write_part(&out, &format!("{source}-{next:02}"));
                    assert!(
                        store
                            .put_checkpoint(&lease, &next.to_string())
                            .await
                            .unwrap()
                    );
                    println!("PART {source} {next} token {}", lease.token);
                    assert!(store.renew(&lease).await.unwrap(), "lease lost");
                    next += 1;
                    tokio::time::sleep(Duration::from_millis(15)).await;
                }
                store.release(&lease).await.unwrap();
            }
            if all_done {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

#[tokio::test]
async fn a_lapsed_lease_is_fenced_off_by_its_successor() {
    let prefix = unique_prefix("fence");
    let (old, new) = (store(&prefix), store(&prefix));
    let Grant::Held(first) = old
        .acquire("pipe", "a", Duration::from_millis(100))
        .await
        .unwrap()
    else {
        panic!("a free lease is granted");
    };
    assert!(matches!(
        new.acquire("pipe", "a", TTL).await.unwrap(),
        Grant::Taken(_)
    ));
    assert!(old.put_checkpoint(&first, "1").await.unwrap());
    let until = Instant::now() + Duration::from_secs(10);
    let second = loop {
        assert!(Instant::now() < until, "the lease never lapsed");
        if let Grant::Held(lease) = new.acquire("pipe", "a", TTL).await.unwrap() {
            break lease;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(second.token > first.token, "tokens only grow");
    assert!(
        !old.put_checkpoint(&first, "stale").await.unwrap(),
        "fenced off"
    );
    assert!(!old.renew(&first).await.unwrap());
    assert!(new.put_checkpoint(&second, "2").await.unwrap());
    assert_eq!(
        new.checkpoint("pipe", "a").await.unwrap().as_deref(),
        Some("2")
    );
}
