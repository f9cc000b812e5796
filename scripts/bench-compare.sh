#!/usr/bin/env bash
# `make bench-compare BASE=<git revision>`: this checkout's ukeyd against the one built from BASE
# (default: the commit before HEAD), side by side on this machine: GetInfo, CheckExec and Measure,
# each measured in pairs (one daemon, then the other at once) and judged by the median of the
# pairs' ratios. A change that should cost nothing on the hot paths stays within 5%.
set -euo pipefail
cd "$(dirname "$0")/.."

base=${BASE:-HEAD~1}
revision=$(git rev-parse --verify "$base^{commit}")
tree=.build-baseline/$revision
if [ ! -d "$tree" ]; then
    mkdir -p .build-baseline
    git worktree add --detach "$tree" "$revision" > /dev/null
fi
echo "==> the baseline: ukeyd of $(git log -1 --format='%h %s' "$revision" | cut -c1-80) (release)"
(cd "$tree" && swift build -c release --product ukeyd)
echo "==> this checkout: ukeyd and ukey-bench (release)"
swift build -c release --product ukeyd
swift build -c release --product ukey-bench
mkdir -p bench-results
UKEY_BENCH_ONLY=compare UKEYD_BINARY=.build/release/ukeyd UKEYD_BASELINE_BINARY="$tree/.build/release/ukeyd" \
    UKEY_BENCH_POLICY=policies/demo.yaml .build/release/ukey-bench | tee bench-results/compare.txt
