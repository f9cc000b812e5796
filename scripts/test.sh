#!/usr/bin/env bash
# `make test`: runs the whole suite against real peers. Peers this script starts are stopped by PID
# on exit, whatever happens. Under CI=true a test whose peer is missing fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

started_pids=()
cleanup() {
    for pid in "${started_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# Peers: the suites of this stage need only command-line tools (tpm2_eventlog, openssl), which
# scripts/install-deps.sh installed. Daemon peers (swtpm, pcscd) are started here as they come.

echo "==> swift build --build-tests"
swift build --build-tests
echo "==> swift test"
swift test
