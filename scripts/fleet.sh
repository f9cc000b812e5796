#!/usr/bin/env bash
# `make fleet`: a fleet of ukey hosts attested by stock Keylime 7.14.3. Each host is a swtpm made
# as a vendor ships one (swtpm_setup --create-ek-cert, its own local CA), a ukeyd on the tpm
# backend that boots the demo host's chain, and a ukey-keylime-agent on its own port. The
# verifier checks every host's quotes and boot log with ukey's policy (contrib/keylime). Then one
# host measures a tampered image: the verifier must fail it, naming ukey's entity, within two
# quote intervals, while the others stay attested; and a host whose agent restarts rejoins.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
hosts=${FLEET_HOSTS:-10}
export QUOTE_INTERVAL=${QUOTE_INTERVAL:-2}
bin=${UKEY_BIN:-.build/debug}
work=$(mktemp -d -t ukey-fleet.XXXXXX)
chmod 0700 "$work"
pids=()
failures=0

cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2> /dev/null || true; done
    scripts/keylime-peer.sh stop "$work/keylime" || true
    if [ "$failures" -eq 0 ] && [ -z "${FLEET_KEEP:-}" ]; then rm -rf "$work"; else echo "(kept $work)"; fi
}
trap cleanup EXIT

check() {  # check DESCRIPTION COMMAND...: counts a failure, goes on
    local what=$1
    shift
    if "$@"; then echo "  ok    $what"; else echo "  FAIL  $what"; failures=$((failures + 1)); fi
}

spoil_first_digest() {  # FILE: one byte of the first event's digest after the Spec ID header
    python3 - "$1" <<'PY'
import sys
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
spec = int.from_bytes(data[28:32], "little")  # the header event: 32 bytes, then its Spec ID data
data[32 + spec + 14] ^= 0xFF  # the next event: PCR, type, count, algorithm (14 bytes), then its digest
open(path, "wb").write(bytes(data))
PY
}

uuid() { printf 'd432fbb3-d2f1-4a97-9ef7-%012d' "$1"; }
port() { echo $((9100 + $1)); }

host() {  # host N: a manufactured TPM, ukeyd on it, the demo host booted, the refstate exported
    local n=$1 dir="$work/h$1"
    mkdir -p "$dir/tpm" "$dir/ca"
    chmod 0700 "$dir"
    printf 'statedir = %s\nsigningkey = %s/signkey.pem\nissuercert = %s/issuercert.pem\ncertserial = %s/certserial\n' \
        "$dir/ca" "$dir/ca" "$dir/ca" "$dir/ca" > "$dir/localca.conf"
    printf 'create_certs_tool = %s\ncreate_certs_tool_config = %s\ncreate_certs_tool_options = /etc/swtpm-localca.options\nactive_pcr_banks = sha256\n' \
        "$(command -v swtpm_localca)" "$dir/localca.conf" > "$dir/setup.conf"
    swtpm_setup --tpm2 --tpmstate "$dir/tpm" --create-ek-cert --config "$dir/setup.conf" > "$dir/setup.log" 2>&1
    swtpm socket --tpm2 --tpmstate dir="$dir/tpm" --server type=unixio,path="$dir/swtpm.sock" \
        --ctrl type=unixio,path="$dir/swtpm.sock.ctrl" --flags not-need-init,startup-clear > "$dir/swtpm.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do [ -S "$dir/swtpm.sock" ] && break; sleep 0.05; done
    if [ "$n" = 1 ]; then
        # Host 1 has a firmware: its log (written apart from ukey) and the PCRs that agree with
        # it, extended before ukeyd takes the TPM. Its agent sends that log, then ukey's.
        for extend in $(python3 scripts/firmware-log.py "$dir/firmware.bin"); do
            tpm2_pcrextend -T "swtpm:path=$dir/swtpm.sock" "$extend"
        done
    fi
    export UKEY_SOCKET="$dir/run/ukeyd.sock"
    # ukey's registers on the PCRs Keylime replays from the log and nothing else measures.
    printf '[tpm]\nregisters = "14-15"\n' > "$dir/ukeyd.toml"
    "$bin/ukeyd" --config "$dir/ukeyd.toml" --state-dir "$dir/state" --runtime-dir "$dir/run" --socket "$UKEY_SOCKET" --log-level error \
        --allow-demo-keys --registers tpm --keys tpm --tcti "swtpm:path=$dir/swtpm.sock" 2> "$dir/ukeyd.log" &
    pids+=($!)
    for _ in $(seq 200); do [ -S "$UKEY_SOCKET" ] && break; sleep 0.05; done
    local signer=keys/demo/policy-signer.TEST-ONLY
    "$bin/ukeyctl" init --so-pin fleet-so-pin-1 --policy-signer "$signer.pem" > "$dir/root-ca.pem"
    scripts/demo-images.sh "$dir/host" policies/demo.yaml > /dev/null
    # On a Keylime host ukey's registers sit where the verifier replays the log and nothing else
    # measures: the host's chain on PCR 14, the VMs' on 15.
    sed -e "s|file: /|file: $dir/host/|" -e 's/register: \(8\|9\)$/register: 14/' -e 's/register: 1[0-3]$/register: 15/' \
        policies/demo.yaml > "$dir/policy.yaml"
    "$bin/ukeyctl" policy sign "$dir/policy.yaml" --key "$signer.key.pem" > /dev/null
    "$bin/ukeyctl" policy load "$dir/policy.yaml" > /dev/null
    for pair in vmm:kernel vmm:initrd vmm:qemu vmm:libvirtd io-vm:firmware io-vm:disk io-loader:grub \
        io-kernel:kernel io-kernel:initrd mgmt-vm:disk debian-base:disk; do
        "$bin/ukeyctl" measure "${pair%%:*}" "${pair##*:}" > /dev/null
    done
    "$bin/ukeyctl" policy export --keylime --signer "$signer.pem" -o "$dir/refstate.json" "$dir/policy.yaml" > /dev/null
    cp "$dir/ca/issuercert.pem" "$work/keylime/tpm_cert_store/h$n.pem"
}

agent() {  # agent N: start host N's agent; waits until it is registered and activated
    local n=$1 dir="$work/h$1"
    local firmware=none
    [ -f "$dir/firmware.bin" ] && firmware="$dir/firmware.bin"
    "$bin/ukey-keylime-agent" --uuid "$(uuid "$n")" --socket "$dir/run/ukeyd.sock" --port "$(port "$n")" \
        --firmware-log "$firmware" \
        --trusted-client-ca "$work/keylime/cv_ca/cacert.crt" --state-directory "$dir/agent" >> "$dir/agent.log" 2>&1 &
    touch "$dir/agent.log"
    local pid=$!
    pids+=("$pid")
    echo "$pid" > "$dir/agent.pid"
    for _ in $(seq 120); do
        [ "$(grep -c "registered and activated" "$dir/agent.log")" -ge "${2:-1}" ] && return 0
        kill -0 "$pid" 2> /dev/null || break
        sleep 0.25
    done
    echo "error: host $n's agent did not register; its log:" >&2
    tail -5 "$dir/agent.log" >&2
    return 1
}

state() {  # state N: the verifier's view of host N, one JSON line
    local ca="$work/keylime/cv_ca"
    curl -s --cacert "$ca/cacert.crt" --cert "$ca/client-cert.crt" --key "$ca/client-private.pem" \
        "https://127.0.0.1:8881/v2.6/agents/$(uuid "$1")" |
        jq -c '.results | {operational_state, attestation_count, last_event_id}'
}
field() { state "$1" | jq -r ".$2"; }

scripts/keylime-peer.sh start "$work/keylime"
# shellcheck disable=SC1091
source "$work/keylime/env.sh"

started=$(date +%s)
echo "==> $hosts ukey hosts: swtpm with EK certificates, ukeyd on the TPM, the demo chain booted"
for n in $(seq "$hosts"); do host "$n"; done
echo "==> their agents register with the registrar and answer its challenge"
for n in $(seq "$hosts"); do agent "$n"; done
echo "==> keylime_tenant -c add, each with its refstate (ukey's measured-boot policy)"
for n in $(seq "$hosts"); do
    keylime_tenant -c add -u "$(uuid "$n")" -t 127.0.0.1 -tp "$(port "$n")" --mb-policy "$work/h$n/refstate.json" \
        > "$work/h$n/tenant-add.log" 2>&1 || { echo "error: tenant add of host $n failed:" >&2; tail -5 "$work/h$n/tenant-add.log" >&2; failures=$((failures + 1)); }
done

all_attested() {
    for n in $(seq "$hosts"); do
        [ "$(field "$n" operational_state)" = 3 ] && [ "$(field "$n" attestation_count)" -ge 2 ] || return 1
    done
}
for _ in $(seq 60); do all_attested && break; sleep 1; done
check "all $hosts hosts attested (state 3, two quotes or more each) $(($(date +%s) - started)) s after the start" all_attested

echo "==> Keylime's own policy harness on a host's boot log (python -m keylime.mba.elchecking)"
UKEY_SOCKET="$work/h$hosts/run/ukeyd.sock" "$bin/ukeyctl" eventlog --out "$work/h$hosts/boot.log" > /dev/null
harness=$(python -m keylime.mba.elchecking ukey "$work/h$hosts/refstate.json" "$work/h$hosts/boot.log" 2>&1 | grep -v -e WARN -e INFO | tail -1)
check "host $hosts's log against its refstate: $harness" test "$harness" = AOK

echo "==> the agent's door: only Keylime's client certificate gets in, and only Keylime's requests"
ca="$work/keylime/cv_ca"
agent_url="https://127.0.0.1:$(port 1)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=intruder \
    -keyout "$work/intruder.key" -out "$work/intruder.crt" 2> /dev/null
check "no client certificate: refused in the handshake" \
    bash -c "! curl -sk --max-time 10 '$agent_url/version' > /dev/null"
check "a client certificate Keylime's CA did not issue: refused" \
    bash -c "! curl -sk --max-time 10 --cert '$work/intruder.crt' --key '$work/intruder.key' '$agent_url/version' > /dev/null"
check "Keylime's client certificate: served" \
    bash -c "curl -sfk --max-time 10 --cert '$ca/client-cert.crt' --key '$ca/client-private.pem' '$agent_url/version' | grep -q supported_versions"
check "a request Keylime does not make: 400, saying why" \
    bash -c "curl -sk --max-time 10 --cert '$ca/client-cert.crt' --key '$ca/client-private.pem' '$agent_url/v2.6/quotes/identity?nonce=a%20b' | grep -q 'letters and digits'"

if [ -n "${FLEET_FIGURES:-}" ]; then
    # make bench: the verifier's rate over the fleet, and an agent's quote against tpm2_quote.
    total() { for n in $(seq "$hosts"); do field "$n" attestation_count; done | awk '{ s += $1 } END { print s }'; }
    a=$(total); t=$(date +%s.%N); sleep 20; b=$(total); u=$(date +%s.%N)
    rate=$(awk -v a="$a" -v b="$b" -v t="$t" -v u="$u" 'BEGIN { printf "%.2f", (b - a) / (u - t) }')
    ca="$work/keylime/cv_ca"
    agent_ms=$(python3 - "$ca" "$(port 1)" <<'PY'
import ssl, sys, time, urllib.request
ca, port = sys.argv[1], sys.argv[2]
context = ssl.create_default_context(cafile=None)
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE  # the timing only; the tenant checked this agent's certificate
context.load_cert_chain(f"{ca}/client-cert.crt", f"{ca}/client-private.pem")
times = []
for i in range(20):
    start = time.monotonic()
    urllib.request.urlopen(f"https://127.0.0.1:{port}/v2.6/quotes/identity?nonce=bench{i:04d}nonce", context=context).read()
    times.append(time.monotonic() - start)
times.sort()
print(f"{times[len(times) // 2] * 1000:.1f}")
PY
)
    # tpm2_quote on a swtpm of the same build and setup, its AK persistent in the TPM; one process
    # per quote, as a script runs it.
    peer="$work/peer"
    mkdir -p "$peer/tpm"
    swtpm_setup --tpm2 --tpmstate "$peer/tpm" --create-ek-cert --config "$work/h1/setup.conf" > /dev/null 2>&1
    swtpm socket --tpm2 --tpmstate dir="$peer/tpm" --server type=unixio,path="$peer/swtpm.sock" \
        --ctrl type=unixio,path="$peer/swtpm.sock.ctrl" --flags not-need-init,startup-clear > /dev/null 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do [ -S "$peer/swtpm.sock" ] && break; sleep 0.05; done
    export TPM2TOOLS_TCTI="swtpm:path=$peer/swtpm.sock"
    # Without a resource manager tpm2-tools leaves its objects loaded: the AK is made persistent
    # and the rest flushed, so each tpm2_quote finds its key at a handle.
    tpm2_createek -c "$peer/ek.ctx" -G rsa -u "$peer/ek.pub" > /dev/null
    tpm2_flushcontext -t
    tpm2_createak -C "$peer/ek.ctx" -c "$peer/ak.ctx" -G rsa -g sha256 -s rsassa -u "$peer/ak.pub" > /dev/null
    tpm2_flushcontext -t
    tpm2_flushcontext -s
    tpm2_evictcontrol -C o -c "$peer/ak.ctx" 0x81010002 > /dev/null
    tpm2_flushcontext -t
    tool_ms=$(python3 - "$peer" <<'PY'
import subprocess, sys, time
peer = sys.argv[1]
times = []
for i in range(20):
    start = time.monotonic()
    subprocess.run(["tpm2_quote", "-c", "0x81010002", "-l", "sha256:0,1,2,3,4,5,6,7,8,9,11,12,13,14,15,16",
                    "-q", f"{i:040x}", "-m", f"{peer}/q.msg", "-s", f"{peer}/q.sig", "-o", f"{peer}/q.pcrs"],
                   check=True, capture_output=True)
    times.append(time.monotonic() - start)
times.sort()
print(f"{times[len(times) // 2] * 1000:.1f}")
PY
)
    unset TPM2TOOLS_TCTI
    ratio=$(awk -v a="$agent_ms" -v t="$tool_ms" 'BEGIN { printf "%.2f", a / t }')
    echo "  figures: the verifier attested $rate quotes/s over $hosts hosts (quote_interval $QUOTE_INTERVAL s)"
    echo "  figures: an identity quote from ukey-keylime-agent (HTTPS, ukeyd, the TPM) $agent_ms ms, median of 20; tpm2_quote of the same PCRs on a swtpm of the same setup $tool_ms ms: x$ratio"
fi

victim=$((hosts > 2 ? 3 : 1))
echo "==> host $victim measures a tampered io-vm disk"
echo "tampered" >> "$work/h$victim/host/var/lib/libvirt/images/io-vm.qcow2"
t0=$(date +%s.%N)
# ukeyctl exits 1 for a refused component: that refusal is the point here.
UKEY_SOCKET="$work/h$victim/run/ukeyd.sock" "$bin/ukeyctl" measure io-vm disk | sed 's/^/  ukeyd: /' || true
failed=
for _ in $(seq $((QUOTE_INTERVAL * 2 * 10 + 50))); do
    s=$(field "$victim" operational_state)
    if [ "$s" != 3 ]; then failed=$s; break; fi
    sleep 0.1
done
elapsed=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')
echo "  the verifier: $(state "$victim") after ${elapsed} s"
[ -n "${FLEET_FIGURES:-}" ] && echo "  figures: from the tampered measurement to the verifier's failure: ${elapsed} s (quote_interval $QUOTE_INTERVAL s)"
check "host $victim failed (state ${failed:-3}) within two quote intervals ($((QUOTE_INTERVAL * 2)) s; took ${elapsed} s)" \
    test -n "$failed" -a "$(awk -v e="$elapsed" -v q="$QUOTE_INTERVAL" 'BEGIN { print (e <= 2 * q) }')" = 1
check "the failure is ukey's measured-boot policy" test "$(field "$victim" last_event_id)" = measured_boot.policy_ukey
check "the verifier's log names the entity and the component" grep -q "entity io-vm component disk" "$work/keylime/logs/verifier.log"

others_attested() {
    for n in $(seq "$hosts"); do
        [ "$n" = "$victim" ] && continue
        [ "$(field "$n" operational_state)" = 3 ] || return 1
    done
}
sleep "$QUOTE_INTERVAL"
check "the $((hosts - 1)) other hosts stay attested" others_attested

rejoin=$((hosts > 4 ? 5 : 1))
[ "$rejoin" = "$victim" ] && rejoin=$((victim % hosts + 1))
echo "==> host $rejoin's agent restarts"
before=$(field "$rejoin" attestation_count)
kill "$(cat "$work/h$rejoin/agent.pid")"
wait "$(cat "$work/h$rejoin/agent.pid")" 2> /dev/null || true
agent "$rejoin" 2
sleep $((QUOTE_INTERVAL * 2 + 1))
after=$(field "$rejoin" attestation_count)
check "host $rejoin rejoined: state $(field "$rejoin" operational_state), quotes $before -> $after" \
    test "$(field "$rejoin" operational_state)" = 3 -a "$after" -gt "$before"

# Host 1 has the firmware; with two hosts or fewer it is also the tampered one, and this is skipped.
if [ "$victim" != 1 ]; then
    echo "==> host 1's firmware log is altered (one byte of a PCR 0 event's digest)"
    spoil_first_digest "$work/h1/firmware.bin"
    failed=
    for _ in $(seq $((QUOTE_INTERVAL * 2 * 10 + 50))); do
        s=$(field 1 operational_state)
        if [ "$s" != 3 ]; then failed=$s; break; fi
        sleep 0.1
    done
    check "host 1 failed (state ${failed:-3}): its firmware's log no longer replays to its PCR 0 ($(field 1 last_event_id))" \
        bash -c "[ -n '$failed' ] && [ '$(field 1 last_event_id)' = measured_boot.invalid_pcr_0 ]"
fi
echo
if [ "$failures" -eq 0 ]; then echo "fleet: every check passed"; else echo "fleet: $failures check(s) failed"; exit 1; fi
