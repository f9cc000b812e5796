#!/usr/bin/env bash
# `make fuzz`: libFuzzer on every parser of untrusted bytes (Sources/UkeyFuzzTargets), each for
# FUZZ_SECONDS (default 60), from its committed corpus (Tests/Fuzz/Corpus/<target>/). Inputs the
# fuzzer finds are kept in .build-fuzz/corpus/<target>/ (not committed); an input that breaks a
# property is written to .build-fuzz/artifacts/ and the run fails. Usage: scripts/fuzz.sh [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
# FUZZ_RUNS: stop each target after this many executions instead (FUZZ_SECONDS still bounds it).
runs=${FUZZ_RUNS:--1}
jobs=${FUZZ_JOBS:-1}
# FUZZ_MAX_LEN: the longest input tried (default 8192). Shorter inputs run several times faster on
# the parsers whose cost grows with the input (policy YAML, varlink JSON): a long campaign may
# run those with 1024 after a first pass at full length.
max_len=${FUZZ_MAX_LEN:-8192}
build=.build-fuzz
echo "==> building the fuzz driver (release, -sanitize=fuzzer,address; its own build directory)"
if [ -z "${FUZZ_SKIP_BUILD:-}" ]; then
    # Release: the optimizer makes each execution several times cheaper (the policy target, which
    # runs libyaml through Yams, went from ~430 to thousands per second); ASan stays on.
    UKEY_FUZZ=1 swift build -c release --build-path "$build" --product ukey-fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library 2>&1 | grep -v "Cannot export local symbol" || true
fi
driver="$build/release/ukey-fuzz"
[ -x "$driver" ] || { echo "error: the fuzz driver did not build" >&2; exit 1; }

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=($(ls Tests/Fuzz/Corpus))
fi
mkdir -p "$build/artifacts" "$build/logs"
summary=()
failed=0
for target in "${targets[@]}"; do
    mkdir -p "$build/corpus/$target"
    log="$build/logs/$target.log"
    echo "==> $target: ${seconds}s"
    status=0
    jobs_flags=()
    [ "$jobs" -gt 1 ] && jobs_flags=(-jobs="$jobs" -workers="$jobs")
    # domain-xml reads through FoundationXML, which keeps a CFError per malformed document
    # (Tests/Fuzz/lsan.supp): a leak check after every such input ran the target at 23/s. Its
    # leaks are left unchecked; every other target's are checked.
    [ "$target" = "domain-xml" ] && jobs_flags+=(-detect_leaks=0)
    # Each target runs in a directory of its own, where libFuzzer's workers write fuzz-N.log,
    # so runs of several targets at once do not mix their logs.
    rundir="$PWD/$build/run/$target"
    rm -rf "$rundir" && mkdir -p "$rundir"
    (cd "$rundir" && LSAN_OPTIONS="suppressions=$OLDPWD/Tests/Fuzz/lsan.supp" UKEY_FUZZ_TARGET=$target "$OLDPWD/$driver" "$OLDPWD/$build/corpus/$target" "$OLDPWD/Tests/Fuzz/Corpus/$target" \
        -max_total_time="$seconds" -runs="$runs" -print_final_stats=1 -timeout=10 -rss_limit_mb=4096 -max_len="$max_len" \
        -artifact_prefix="$OLDPWD/$build/artifacts/$target-" "${jobs_flags[@]}") > "$log" 2>&1 || status=$?
    cat "$rundir"/fuzz-*.log >> "$log" 2>/dev/null || true
    execs=$(grep -oE "stat::number_of_executed_units: *[0-9]+" "$log" | grep -oE "[0-9]+$" | awk '{ total += $1 } END { print total }')
    edges=$(grep -oE "cov: [0-9]+" "$log" | tail -1 | cut -d' ' -f2)
    if [ "$status" -ne 0 ]; then
        failed=1
        summary+=("$target: FAILED after ${execs:-?} executions, ${edges:-?} edges; see $log and $build/artifacts/")
        grep -E "ukey-fuzz|ERROR|SUMMARY" "$log" | head -5 || true
    else
        summary+=("$target: ${execs:-?} executions, ${edges:-?} edges, no property broken")
    fi
done
echo "==> fuzzing summary"
printf '  %s\n' "${summary[@]}"
exit "$failed"
