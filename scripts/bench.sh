#!/usr/bin/env bash
# `make bench`: builds the benchmark in release mode and runs it with its peers' figures measured
# in the same run, so every result is a ratio to a peer on the same machine at the same time.
set -euo pipefail
cd "$(dirname "$0")/.."

swift build -c release --product ukey-bench
swift build -c release --product ukeyd
swift build -c release --product ukeyctl
swift build -c release --product ukey-keylime-agent
swift build -c release --product ukey-libvirt-hook
swift build -c release --product ukey-qemu
swift build -c release --product ukey-vcard
swift build -c release --product ukey-guard

# A silent long phase draws one line on standard error while it runs (what, and the seconds so far;
# ten redraws a second), as systemd's tools do, and only when standard error is a terminal.
phase() {  # $1: what; the rest: the command
    local what=$1
    shift
    if [ ! -t 2 ]; then
        "$@"
        return
    fi
    "$@" &
    local pid=$! began=$SECONDS
    while kill -0 "$pid" 2> /dev/null; do
        printf '\r%s, %d s\033[K' "$what" $((SECONDS - began)) >&2
        sleep 0.1
    done
    printf '\r\033[K' >&2
    wait "$pid"
}

work=$(mktemp -d -t ukey-bench.XXXXXX)
swtpm_pid=
pcsc_started=
trap '[ -n "$swtpm_pid" ] && kill "$swtpm_pid" 2>/dev/null; [ -n "$pcsc_started" ] && scripts/pcsc-peer.sh stop "$work/pcsc"; rm -rf "$work"' EXIT
echo "==> peer: swtpm on a Unix socket (its quote and extend rates are measured live)"
swtpm socket --tpm2 --tpmstate dir="$work" --server type=unixio,path="$work/swtpm.sock" \
    --ctrl type=unixio,path="$work/swtpm.sock.ctrl" --flags not-need-init,startup-clear > /dev/null 2>&1 &
swtpm_pid=$!
for _ in $(seq 100); do [ -S "$work/swtpm.sock" ] && break; sleep 0.05; done
export UKEY_BENCH_TCTI="swtpm:path=$work/swtpm.sock" TSS2_LOG=all+none
echo "==> a 1 GiB image, and the peer: openssl dgst -sha256 on it (cached, best of 3)"
make_image() { (yes "ukey bench image" || true) | head -c 1073741824 > "$work/image.qcow2"; }
phase "writing a 1 GiB image" make_image
best=
for _ in 1 2 3; do
    start=$(date +%s.%N)
    openssl dgst -sha256 "$work/image.qcow2" > /dev/null
    t=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.6f", b - a }')
    if [ -z "$best" ] || awk -v t="$t" -v b="$best" 'BEGIN { exit !(t < b) }'; then best=$t; fi
done

echo "==> peer: openssl speed -elapsed -seconds 3 ecdsap256"
# "256 bits ecdsa (nistp256)   0.0000s   0.0001s  49000.1  15000.2": sign/s is the next-to-last field.
# -elapsed: wall-clock rates, as ours are (by default openssl speed divides by user CPU time).
speed() { openssl speed -elapsed -seconds 3 "$1" > "$work/speed-$1.txt" 2> /dev/null; }
phase "openssl speed ecdsap256 (3 s)" speed ecdsap256
signs=$(awk '/ecdsa \(nistp256\)/ { print $(NF-1) }' "$work/speed-ecdsap256.txt")
[ -n "$signs" ] || { echo "error: could not read openssl speed's ecdsap256 sign/s" >&2; exit 1; }
echo "==> peer: openssl speed -elapsed -seconds 3 sm2"
# "256 bits SM2 (CurveSM2)   0.0004s   0.0004s   2240.0   2339.0": sign/s and verify/s last.
# Run here, not from ukey-bench: openssl speed times itself with SIGALRM, which a child of
# Foundation's Process inherits blocked, and it would then never stop.
phase "openssl speed sm2 (3 s)" speed sm2
sm2=$(awk '/SM2/ { print $(NF-1) " " $NF }' "$work/speed-sm2.txt")
[ -n "$sm2" ] || { echo "error: could not read openssl speed's sm2 sign/s and verify/s" >&2; exit 1; }

# The card path: pcscd and ukey-vcard in their namespace (root; scripts/pcsc-peer.sh).
if [ "$(id -u)" -eq 0 ] && command -v pcscd > /dev/null; then
    echo "==> peer: pcscd with ukey-vcard, and opensc-tool"
    UKEY_VCARD=.build/release/ukey-vcard scripts/pcsc-peer.sh start "$work/pcsc" && pcsc_started=1 \
        && UKEY_VCARD=.build/release/ukey-vcard scripts/pcsc-peer.sh fresh-card "$work/pcsc" 1 && export UKEY_BENCH_PCSC=1
fi

# The exec guard against fapolicyd (root: fanotify, mounts, fapolicyd's own configuration, which
# the bench saves and restores). fapolicyd is installed here when missing, not by make test.
if [ "$(id -u)" -eq 0 ]; then
    if ! command -v fapolicyd > /dev/null; then
        echo "==> installing fapolicyd (the peer of ukey-guard)"
        apt-get update -qq && apt-get install -y -qq --no-install-recommends fapolicyd > /dev/null
    fi
    export UKEY_BENCH_GUARD=1
fi

mkdir -p bench-results
# The run's date and machine head the output: scripts/figures.py writes them with the tables.
{
    echo "# date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "# machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r)"
    echo "# build: release, $(git rev-parse --short HEAD 2> /dev/null || echo 'a tree')"
} > bench-results/latest.txt
OPENSSL_ECDSAP256_SIGNS=$signs OPENSSL_SM2="$sm2" OPENSSL_DGST_SECONDS=$best UKEY_BENCH_IMAGE="$work/image.qcow2" \
    UKEYD_BINARY=.build/release/ukeyd UKEY_BENCH_POLICY=policies/demo.yaml \
    .build/release/ukey-bench | tee -a bench-results/latest.txt

# What the libvirt hook adds to a guest's start, against openssl on the same files.
scripts/bench-hook.sh | tee -a bench-results/latest.txt

# A user VM's life: later starts over a parent measured in this boot, and the seal at stop.
if [ "$(id -u)" -eq 0 ]; then
    scripts/bench-vm-life.sh | tee -a bench-results/latest.txt
fi

# The whole end-to-end boot under libvirt and QEMU (root, libvirt installed, none running).
if [ "$(id -u)" -eq 0 ] && command -v libvirtd > /dev/null && ! pgrep -x libvirtd > /dev/null; then
    echo
    echo "the end-to-end guest (scripts/e2e.sh): virsh create to the guest's marker, ukey's hook included"
    UKEY_BIN=.build/release scripts/e2e.sh | grep -E "trusted guest boots|QEMU with" | sed 's/^ */  /' | tee -a bench-results/latest.txt
fi

# A fleet of ten ukey hosts under stock Keylime: the verifier's rate, an agent's quote against
# tpm2_quote, and the time from a tampered measurement to the verifier's failure.
echo
echo "the fleet (scripts/fleet.sh): ten ukey hosts attested by Keylime 7.14.3"
UKEY_BIN=.build/release FLEET_FIGURES=1 scripts/fleet.sh | grep -E "figures|  ok|FAIL" | sed 's/^ */  /' | tee -a bench-results/latest.txt

# The tables of docs/figures.md, from this run.
scripts/figures.py bench-results/latest.txt docs/figures.md
echo "==> docs/figures.md: this run's tables written"
