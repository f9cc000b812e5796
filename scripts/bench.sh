#!/usr/bin/env bash
# `make bench`: builds the benchmark in release mode and runs it with its peers' figures measured
# in the same run, so every result is a ratio to a peer on the same machine at the same time.
set -euo pipefail
cd "$(dirname "$0")/.."

swift build -c release --product ukey-bench

echo "==> peer: openssl speed -elapsed -seconds 3 ecdsap256"
# "256 bits ecdsa (nistp256)   0.0000s   0.0001s  49000.1  15000.2": sign/s is the next-to-last field.
# -elapsed: wall-clock rates, as ours are (by default openssl speed divides by user CPU time).
signs=$(openssl speed -elapsed -seconds 3 ecdsap256 2>/dev/null | awk '/ecdsa \(nistp256\)/ { print $(NF-1) }')
[ -n "$signs" ] || { echo "error: could not read openssl speed's ecdsap256 sign/s" >&2; exit 1; }

mkdir -p bench-results
OPENSSL_ECDSAP256_SIGNS=$signs .build/release/ukey-bench | tee bench-results/latest.txt
