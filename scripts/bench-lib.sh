# Sourced by the bench scripts (bench-hook.sh, bench-vm-life.sh): the timing and the provisioned
# ukeyd they share. Expects $bin (the release build) and $work (a temp dir, removed by the caller).

seconds() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b - a }'; }

best() {  # best wall time of 3 runs of "$@", in seconds
    local best_time= start t
    for _ in 1 2 3; do
        start=$(seconds)
        "$@" > /dev/null
        t=$(elapsed "$start" "$(seconds)")
        if [ -z "$best_time" ] || awk -v t="$t" -v b="$best_time" 'BEGIN { exit !(t < b) }'; then best_time=$t; fi
    done
    echo "$best_time"
}

# ukeyd on the soft token in $work, initialised with a fresh policy signer ($work/signer.*), its
# socket in UKEY_SOCKET; ukeyd_pid for the caller's trap. $1: extra ukeyd.toml lines (or empty).
start_provisioned_ukeyd() {
    export UKEY_SOCKET="$work/run/ukeyd.sock"
    printf '%b' "${1:-}" > "$work/ukeyd.toml"
    "$bin/ukeyd" --config "$work/ukeyd.toml" --state-dir "$work/state" --runtime-dir "$work/run" --socket "$UKEY_SOCKET" \
        --policy-dir "$work/none" > "$work/ukeyd.log" 2>&1 &
    ukeyd_pid=$!
    for _ in $(seq 200); do [ -S "$UKEY_SOCKET" ] && break; sleep 0.05; done
    "$bin/ukeyctl" keygen --out "$work/signer" > /dev/null
    "$bin/ukeyctl" init --so-pin so-secret-42 --policy-signer "$work/signer.pem" > /dev/null
}
