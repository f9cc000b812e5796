#!/usr/bin/env bash
# `make demo`: ukeyd on the software token in a temporary state directory, provisioned from
# policies/demo.yaml, then the host's boot chain over the socket as the hypervisor would run it:
# measure, log a user in, start user VMs, check executables, tamper with an image, attest.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=.build/debug
work=$(mktemp -d -t ukey-demo.XXXXXX)
chmod 0700 "$work"
daemon_pid=
cleanup() {
    [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
export UKEY_SOCKET="$work/run/ukeyd.sock"
export NO_COLOR="${NO_COLOR:-}"

bold=$'\e[1m'; dim=$'\e[2m'; green=$'\e[32m'; red=$'\e[31m'; off=$'\e[0m'
if [ ! -t 1 ] || [ -n "$NO_COLOR" ]; then bold=; dim=; green=; red=; off=; fi
say()  { printf '\n%s== %s ==%s\n' "$bold" "$*" "$off"; }
note() { printf '%s%s%s\n' "$dim" "$*" "$off"; }
run()  { printf '%s$ %s%s\n' "$dim" "$*" "$off"; "$@"; }
# Expect a refusal: the command must fail, or the demo stops.
refused() { printf '%s$ %s%s\n' "$dim" "$*" "$off"; if "$@"; then echo "${red}UNEXPECTED: accepted${off}"; exit 1; fi; }

say "ukey demo: the trusted root of a KVM host"
note "Every entity that boots is measured before its parent loads it, and trusted only if its"
note "digest matches the signed policy AND its parent was already trusted (the paper's Theorem 1)."

say "1. Start ukeyd on the software token"
# --allow-demo-keys: the demo signs its policy with keys/demo/, whose private key is public.
"$bin/ukeyd" --state-dir "$work/state" --runtime-dir "$work/run" --socket "$UKEY_SOCKET" --log-level warning --allow-demo-keys \
    2> "$work/ukeyd.log" &
daemon_pid=$!
for _ in $(seq 100); do [ -S "$UKEY_SOCKET" ] && break; sleep 0.05; done
echo "ukeyd (pid $daemon_pid) serving varlink on $UKEY_SOCKET"

say "2. Provision: the demo's policy signer, the token, the demo policy, two users"
note "keys/demo/ is a signer for demos and tests only: ukeyd refuses it without --allow-demo-keys."
demo_signer=keys/demo/policy-signer.TEST-ONLY
run "$bin/ukeyctl" init --so-pin demo-so-pin-1 --policy-signer "$demo_signer.pem" > "$work/root-ca.pem"
note "root CA: $(openssl x509 -in "$work/root-ca.pem" -noout -subject)"
scripts/demo-images.sh "$work/host" policies/demo.yaml
# The policy's file hints point where this demo keeps its stand-in images.
sed "s|file: /|file: $work/host/|" policies/demo.yaml > "$work/demo.yaml"
run "$bin/ukeyctl" policy sign "$work/demo.yaml" --key "$demo_signer.key.pem"
run "$bin/ukeyctl" policy load "$work/demo.yaml"
run "$bin/ukeyctl" user add alice --pin alice-pin-1 --roles office > /dev/null
run "$bin/ukeyctl" user add bob --pin bob-pin-12 --roles developer > /dev/null

say "3. The host boots: the hypervisor measures each entity before loading it"
note "ukeyd hashes each file the policy names, extends the entity's register, logs the event, decides."
for pair in vmm:kernel vmm:initrd vmm:qemu vmm:libvirtd io-vm:firmware io-vm:disk io-loader:grub \
            io-kernel:kernel io-kernel:initrd mgmt-vm:disk debian-base:disk; do
    "$bin/ukeyctl" measure "${pair%%:*}" "${pair##*:}"
done

say "4. Users start their VMs"
refused "$bin/ukeyctl" measure office overlay
note "a user VM needs a logged-in user whose policy lists it"
session=$("$bin/ukeyctl" login alice --pin alice-pin-1)
echo "alice logged in (session ${session:0:8}...)"
run "$bin/ukeyctl" measure office overlay --session="$session"
refused "$bin/ukeyctl" measure dev overlay --session="$session"
bob=$("$bin/ukeyctl" login bob --pin bob-pin-12)
run "$bin/ukeyctl" measure dev overlay --session="$bob"
echo
"$bin/ukeyctl" chain

say "5. Inside the VMs: the run-time whitelist"
soffice=sha256:5f0c3c1e2c0a3b1f3e1c55f2b3e2c1f0a9d8c7b6a5f4e3d2c1b0a99887766554
run "$bin/ukeyctl" exec-check office /usr/bin/soffice --digest "$soffice"
refused "$bin/ukeyctl" exec-check office /usr/bin/soffice --digest sha256:$(printf 'patched soffice' | sha256sum | cut -c1-64)
refused "$bin/ukeyctl" exec-check office /usr/bin/nc --digest "$soffice"

say "6. Someone tampers with the management VM's disk; it restarts"
printf 'backdoor' >> "$work/host/var/lib/libvirt/images/mgmt-vm.qcow2"
note "appended 8 bytes to mgmt-vm.qcow2"
refused "$bin/ukeyctl" measure mgmt-vm disk
note "refused, and it stays untrusted for the rest of this boot:"
"$bin/ukeyctl" chain | grep mgmt-vm

say "7. Attestation: a verifier checks the registers without trusting this host"
run "$bin/ukeyctl" quote --nonce "$(openssl rand -hex 16 | tee "$work/nonce")" --out "$work"
run "$bin/ukeyctl" quote verify --quote "$work/quote.bin" --signature "$work/quote.sig" \
    --cert "$work/attestation.pem" --nonce "$(cat "$work/nonce")" --root-ca "$work/root-ca.pem"
note "openssl agrees the key is the token's attestation key (token-keys policy, along the path):"
run openssl verify -x509_strict -CAfile "$work/root-ca.pem" -untrusted "$work/attestation.pem" \
    -policy 2.25.10392339744558737358530141729444115455.2.1 -explicit_policy "$work/attestation.pem"
openssl x509 -in "$work/attestation.pem" -pubkey -noout > "$work/ak.pem"
run openssl dgst -sha256 -verify "$work/ak.pem" -signature "$work/quote.sig" "$work/quote.bin"
run "$bin/ukeyctl" eventlog --out "$work/eventlog.bin"
if command -v tpm2_eventlog > /dev/null; then
    note "tpm2-tools replays the event log to the quoted registers:"
    tpm2_eventlog "$work/eventlog.bin" 2> /dev/null | sed -n '/^pcrs:/,$p' | sed 's/^/  /'
fi

say "8. The audit trail: every decision, hash-chained and signed"
run "$bin/ukeyctl" audit show --type exec
run "$bin/ukeyctl" audit show --type login
run "$bin/ukeyctl" audit verify
run "$bin/ukeyctl" cert audit > "$work/audit.pem"
note "ukeyd stops (a final signed checkpoint); an auditor checks the log offline, no daemon needed:"
kill -TERM "$daemon_pid"; wait "$daemon_pid" || true; daemon_pid=
run "$bin/ukeyctl" audit verify --log "$work/state/audit.log" --cert "$work/audit.pem"
note "Someone with root edits one record (a denial becomes an allow):"
sed '0,/"decision":"deny"/s//"decision":"allow"/' "$work/state/audit.log" > "$work/edited.log"
refused "$bin/ukeyctl" audit verify --log "$work/edited.log" --cert "$work/audit.pem"

say "9. A real guest: libvirt and QEMU start it only when ukeyd vouches for all it loads"
if [ "$(id -u)" -eq 0 ] && command -v libvirtd > /dev/null && ! pgrep -x libvirtd > /dev/null; then
    note "A Debian kernel and a busybox initramfs under real libvirt 9.0 and QEMU, gated by ukey's hook"
    note "(and again through ukey-qemu, the same gate without libvirt):"
    scripts/e2e.sh | sed 's/^/  /'
else
    note "(skipped: it needs root, libvirt installed, and no libvirtd already running; see 'make e2e')"
fi

say "Done"
echo "One boot of a KVM host over ukeyd's socket: ${green}every entity validated by its parent${off};"
echo "user VMs started only by the users the policy names; executables checked against each VM's"
echo "whitelist; a tampered disk ${red}refused${off}; the result attested, checked with openssl and tpm2-tools;"
echo "every decision in an audit log that ${green}verifies offline${off} and names the record someone edited;"
echo "and a real guest that libvirt and QEMU start ${green}only when its whole chain is trusted${off}."
