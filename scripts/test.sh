#!/usr/bin/env bash
# `make test`: runs the whole suite against real peers. Peers this script starts are stopped by PID
# on exit, whatever happens. Under CI=true a test whose peer is missing fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

started_pids=()
started_dirs=()
cleanup() {
    for pid in "${started_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${started_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    for dir in "${started_dirs[@]}"; do rm -rf "$dir"; done
}
trap cleanup EXIT

# Peers: command-line tools (tpm2-tools, openssl, python varlink) come from scripts/install-deps.sh.
# A swtpm for the whole run, on a Unix socket in a temp dir; its TCTI goes to the suites in
# UKEY_TEST_TCTI. (Tests that need a fresh TPM, a "new machine", start their own swtpm.)
swtpm_dir=$(mktemp -d -t ukey-test-swtpm.XXXXXX)
started_dirs=("$swtpm_dir")
if command -v swtpm > /dev/null; then
    swtpm socket --tpm2 --tpmstate dir="$swtpm_dir" \
        --server type=unixio,path="$swtpm_dir/swtpm.sock" --ctrl type=unixio,path="$swtpm_dir/swtpm.sock.ctrl" \
        --flags not-need-init,startup-clear > "$swtpm_dir/swtpm.log" 2>&1 &
    started_pids+=($!)
    for _ in $(seq 100); do [ -S "$swtpm_dir/swtpm.sock" ] && break; sleep 0.05; done
    [ -S "$swtpm_dir/swtpm.sock" ] || { echo "error: swtpm did not come up; its log:" >&2; cat "$swtpm_dir/swtpm.log" >&2; exit 1; }
    export UKEY_TEST_TCTI="swtpm:path=$swtpm_dir/swtpm.sock"
    echo "==> swtpm (pid ${started_pids[-1]}) at $UKEY_TEST_TCTI"
elif [ "${CI:-}" = "true" ]; then
    echo "error: swtpm is missing and CI=true: the TPM suites cannot run" >&2
    exit 1
fi
export TSS2_LOG=all+none

# Every run's output is kept, so the end of the run can list what was skipped and why.
test_log_dir=$(mktemp -d -t ukey-test-log.XXXXXX)
started_dirs+=("$test_log_dir")
skipped_elsewhere=()
run_logged() {
    local name=$1; shift
    "$@" 2>&1 | tee "$test_log_dir/$name.log"
    return "${PIPESTATUS[0]}"
}
# Said at the end of every run, passed or failed: the tests that did not run, and why
# (swift-testing's "skipped" lines, without colour). Under CI=true a missing peer fails instead,
# so the list must be empty there.
report_skipped() {
    local list
    list=$(cat "$test_log_dir"/*.log 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' | grep -E '^[^ ]+ (Suite|Test) .* skipped' | sed -E 's/^[^ ]+ /  /' | sort -u || true)
    for line in "${skipped_elsewhere[@]}"; do list+=$'\n'"  $line"; done
    list=$(printf '%s\n' "$list" | sed '/^$/d')
    if [ -z "$list" ]; then
        echo "==> skipped tests: none"
    else
        echo "==> skipped tests ($(printf '%s\n' "$list" | wc -l)), and why:"
        printf '%s\n' "$list"
    fi
}
trap 'report_skipped; cleanup' EXIT

# The style of .swift-format, checked before anything is built (`make format` applies it).
echo "==> swift format lint --strict (Sources, Tests)"
swift format lint --strict -r Sources Tests
echo "==> swift build --build-tests"
swift build --build-tests
# pcscd with the virtual reader, and ukey-vcard as the card in it, in a network namespace of
# their own (scripts/pcsc-peer.sh): the card suites find them through UKEY_TEST_PCSC_DIR.
pcsc_dir=$(mktemp -d -t ukey-test-pcsc.XXXXXX)
started_dirs+=("$pcsc_dir")
if [ "$(id -u)" -eq 0 ] && command -v pcscd > /dev/null && [ -f /usr/lib/pcsc/drivers/serial/libifdvpcd.so ]; then
    scripts/pcsc-peer.sh start "$pcsc_dir"
    trap 'scripts/pcsc-peer.sh stop "$pcsc_dir"; report_skipped; cleanup' EXIT
    export UKEY_TEST_PCSC_DIR="$pcsc_dir"
elif [ "${CI:-}" = "true" ]; then
    echo "error: pcscd, vpcd or root is missing and CI=true: the card suites cannot run" >&2
    exit 1
else
    skipped_elsewhere+=("the card suites: pcscd and vpcd need root and the packages make test installs")
fi
echo "==> swift test (every suite; the daemon on the soft token)"
run_logged soft swift test
# The daemon suites again with the tpm backend: every test daemon gets a swtpm of its own and
# keeps its registers in real PCRs, its store key sealed to that TPM.
echo "==> swift test --filter UkeyDaemonTests, with UKEY_TEST_BACKEND=tpm"
UKEY_TEST_BACKEND=tpm run_logged tpm swift test --filter UkeyDaemonTests
# The daemon suites again on a soft token initialised with SM2 keys (SM2-with-SM3, the GM/T
# default ID) and an SM3 register bank, the fixture's policy expecting SM3 digests: quotes,
# checkpoints and users' signatures are SM2, checked by ukeyctl and openssl dgst -sm3.
echo "==> swift test --filter UkeyDaemonTests, with UKEY_TEST_BACKEND=sm2"
UKEY_TEST_BACKEND=sm2 run_logged sm2 swift test --filter UkeyDaemonTests
# The daemon suites a third time with the keys and the store on the virtual card: a fresh card,
# enrolled by ukeyctl (keys made on the card, each certificate signed by the card itself).
# Users are on cards too (users = "pcsc"), each on a card of their own: ukeyd's keys card, which
# no user may log in with (its PIN is ukeyd's, in its pin file), is in the first reader, alice's
# in the second, bob's in the third. Each card's PUK is the suites' SO PIN (DaemonFixture.soPIN)
# and each test daemon first resets the PINs with it. The cards' PINs are shared state, so these
# run one test at a time.
if [ -n "${UKEY_TEST_PCSC_DIR:-}" ]; then
    echo "==> ukeyctl card enroll (ukeyd's keys card; alice's and bob's with --user), then swift test --no-parallel --filter UkeyDaemonTests, with UKEY_TEST_BACKEND=pcsc"
    readers=("Virtual PCD 00 00" "Virtual PCD 00 01" "Virtual PCD Users 00 00")
    for slot in 0 1 2; do
        scripts/pcsc-peer.sh fresh-card "$UKEY_TEST_PCSC_DIR" "$slot"
        case "$slot" in
        0) .build/debug/ukeyctl card enroll --reader "${readers[0]}"
           yubico-piv-tool -r "${readers[0]}" -a change-pin -P 123456 -N keys-p1 ;;
        # alice's card with --json: the keys it made, as a script reads them.
        1) .build/debug/ukeyctl card enroll --reader "${readers[1]}" --user alice --json > "$UKEY_TEST_PCSC_DIR/enroll.json"
           python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["user"] == "alice" and sorted(d["keys"]) == ["9a", "9c", "9d"], d' \
               "$UKEY_TEST_PCSC_DIR/enroll.json" ;;
        2) .build/debug/ukeyctl card enroll --reader "${readers[2]}" --user bob ;;
        esac
        yubico-piv-tool -r "${readers[$slot]}" -a change-puk -P 12345678 -N so-pin42
    done
    (umask 077 && printf 'keys-p1\n' > "$UKEY_TEST_PCSC_DIR/card.pin")
    UKEY_TEST_BACKEND=pcsc run_logged pcsc swift test --no-parallel --filter UkeyDaemonTests
fi
# A real guest under libvirt and QEMU, gated by ukey's hook (root: libvirt's system instance).
echo "==> scripts/e2e.sh: a real guest under libvirt and QEMU starts only when ukeyd vouches for it"
if [ "$(id -u)" -eq 0 ] || [ "${CI:-}" = "true" ]; then
    scripts/e2e.sh
else
    skipped_elsewhere+=("scripts/e2e.sh skipped: it needs root (libvirt's system instance); run 'sudo make e2e'")
fi
# The Debian package: built (from the debug build the suites ran), installed with dpkg -i, the
# e2e run against the installed files, then removed and purged, leaving nothing behind.
echo "==> scripts/deb-test.sh: make deb, dpkg -i, the e2e against the installed files, dpkg -r, dpkg -P"
if [ "$(id -u)" -eq 0 ]; then
    scripts/deb-test.sh
elif [ "${CI:-}" = "true" ]; then
    echo "error: the package test needs root (dpkg -i) and CI=true" >&2
    exit 1
else
    skipped_elsewhere+=("scripts/deb-test.sh skipped: it needs root (dpkg -i); run 'sudo make test'")
fi
# A fleet of ukey hosts attested by stock Keylime 7.14.3 from PyPI (swtpms, ukeyds, agents).
echo "==> scripts/fleet.sh: ten ukey hosts attested by Keylime; a tampered one fails, naming ukey's entity"
scripts/fleet.sh
