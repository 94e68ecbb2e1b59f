#!/usr/bin/env bash
# Runs the resilience test suite, then the resilience demo, in one command.
#
# The suite covers the policy loader, the engine, the macro, the chaos proxy, the
# PostgreSQL and REST API connectors, the Redis store and the command-line tool (the demo's own end-to-end test is
# skipped here because the demo runs right after). The output ends with the demo's six
# summary lines, copied from its output, so a failed check shows up as a ❌ line.
#
# PostgreSQL: DATABASE_URL, else 127.0.0.1:5432, else a throwaway cluster (needs the
# server binaries: initdb and pg_ctl on PATH, in PG_BIN or in /usr/lib/postgresql).
# Redis: REDIS_URL, else 127.0.0.1:6379, else a throwaway redis-server from the PATH.
#
# Environment:
#   OUTPUT=DIR      where the demo writes its files (default: demo-output)
#   RELEASE=1       build the demo in release mode (the tests always build in debug)
#   SKIP_TESTS=1    run only the demo
#
# Exit status: 0 when the tests and every demo check passed, 1 otherwise.
set -uo pipefail

cd "$(dirname "$0")/.."

output_dir="${OUTPUT:-demo-output}"
log="$(mktemp "${TMPDIR:-/tmp}/resilient-demo.XXXXXX")"
trap 'rm -f "$log"' EXIT

tests_status=0
if [[ "${SKIP_TESTS:-0}" != "1" ]]; then
    echo "==> resilience test suite"
    cargo test --workspace -- --skip demo_earns_every_line || tests_status=$?
fi

echo
echo "==> resilient demo"
profile=()
if [[ "${RELEASE:-0}" == "1" ]]; then
    profile=(--release)
fi
cargo run "${profile[@]}" -q -p resilience-cli -- demo --output "$output_dir" | tee "$log"
demo_status=${PIPESTATUS[0]}

echo
echo "==> summary"
if [[ "${SKIP_TESTS:-0}" == "1" ]]; then
    echo "test suite: skipped"
elif [[ $tests_status -eq 0 ]]; then
    echo "test suite: passed"
else
    echo "test suite: FAILED (cargo test exited with $tests_status)"
fi
echo "demo: exit status $demo_status, results in $output_dir/"
summary="$(grep -E '^(✅|❌) ' "$log")"
if [[ -z "$summary" ]]; then
    echo "❌ the demo printed no summary (see its output above)"
    exit 1
fi
echo "$summary"

if [[ $tests_status -ne 0 || $demo_status -ne 0 ]]; then
    exit 1
fi
