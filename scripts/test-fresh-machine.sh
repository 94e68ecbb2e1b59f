#!/usr/bin/env bash
# Runs the test suite as a fresh machine would: in a network namespace of its own, where
# nothing answers on 127.0.0.1 (no PostgreSQL on 5432, no Redis on 6379), so every test
# must find or start the servers it needs by itself (throwaway clusters and redis-server
# processes from the binaries on the PATH).
#
# Needs root (ip netns) and the iproute2 tools. Any arguments go to `cargo test`.
# Exit status: cargo test's.
set -euo pipefail
cd "$(dirname "$0")/.."

ns="resilient-fresh-$$"
ip netns add "$ns"
trap 'ip netns delete "$ns"' EXIT
ip netns exec "$ns" ip link set lo up

# Build outside the namespace (crates.io is out of reach inside it), then test inside.
cargo test --workspace --no-run
env -u DATABASE_URL -u REDIS_URL ip netns exec "$ns" cargo test --workspace --offline "$@"
