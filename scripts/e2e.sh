#!/usr/bin/env bash
# `make e2e` (and the last part of `make test`): a real guest under real libvirt and QEMU starts
# only when ukeyd has validated its whole chain. Builds a tiny guest on the fly (a Debian cloud
# kernel, a busybox initramfs that prints a marker and powers off, a qcow2 overlay on a qcow2
# base), enrols it, installs ukey's hook, starts libvirt without systemd, and checks that:
#   - the trusted guest boots and prints its marker;
#   - a changed kernel byte, a changed base image under an unchanged overlay, a user VM with no
#     logged-in user, and ukeyd down are each refused by `virsh create` with the hook's reason,
#     and QEMU never runs for them;
#   - each refusal is in ukeyd's audit log.
# Needs root (libvirt's system instance). Everything it starts it stops by PID; the hook it
# installs it removes. Under CI=true a missing peer is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

[ "$(id -u)" -eq 0 ] || { echo "e2e: needs root (libvirt's system instance)" >&2; exit 1; }
for tool in virsh libvirtd virtlogd qemu-system-x86_64 qemu-img busybox; do
    command -v "$tool" > /dev/null || { echo "e2e: $tool is missing (make test installs it)" >&2; exit 1; }
done
if pgrep -x libvirtd > /dev/null; then
    echo "e2e: a libvirtd is already running; its hooks were read when it started, so ukey's cannot be tested through it. Stop it first." >&2
    exit 1
fi

bin=${UKEY_BIN:-.build/debug}
work=$(mktemp -d -t ukey-e2e.XXXXXX)
images=/var/lib/libvirt/images/ukey-e2e.$$
hook=/etc/libvirt/hooks/qemu.d/50-ukey
domain=ukey-e2e-$$
accel=tcg
pids=()
passed=0
failed=0
cleanup() {
    virsh -q -c qemu:///system destroy "$domain" > /dev/null 2>&1 || true
    for pidfile in "$work/libvirtd.pid" "$work/virtlogd.pid" "$work/ukeyd.pid"; do
        [ -s "$pidfile" ] && kill "$(cat "$pidfile")" 2> /dev/null || true
    done
    for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2> /dev/null || true; done
    rm -f "$hook"
    rm -rf "$work" "$images"
}
trap cleanup EXIT

ok() { echo "  PASS $*"; passed=$((passed + 1)); }
bad() { echo "  FAIL $*"; failed=$((failed + 1)); }

echo "==> the guest: a Debian cloud kernel, a busybox initramfs, a qcow2 overlay on a qcow2 base"
cache=${UKEY_E2E_CACHE:-/var/cache/ukey-e2e}
mkdir -p "$cache" "$images"
kernel_pkg() { apt-cache depends linux-image-cloud-amd64 2> /dev/null | awk '/Depends: linux-image-/ { print $2; exit }'; }
kernel_pkg=$(kernel_pkg)
if [ -z "$kernel_pkg" ]; then
    apt-get update -qq
    kernel_pkg=$(kernel_pkg)
fi
[ -n "$kernel_pkg" ] || { echo "e2e: apt knows no linux-image-cloud-amd64" >&2; exit 1; }
if [ ! -s "$cache/$kernel_pkg.vmlinuz" ]; then
    (cd "$work" && apt-get download -q "$kernel_pkg" > /dev/null 2>&1)
    dpkg -x "$work"/"$kernel_pkg"_*.deb "$work/kernel"
    cp "$work"/kernel/boot/vmlinuz-* "$cache/$kernel_pkg.vmlinuz"
fi
cp "$cache/$kernel_pkg.vmlinuz" "$images/vmlinuz"
mkdir -p "$work/initramfs/bin"
cp "$(command -v busybox)" "$work/initramfs/bin/busybox"
cat > "$work/initramfs/init" << 'EOF'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc 2> /dev/null
echo "UKEY-GUEST-BOOTED"
/bin/busybox poweroff -f
EOF
chmod 755 "$work/initramfs/init"
mkdir -p "$work/initramfs/proc"
(cd "$work/initramfs" && find . | busybox cpio -o -H newc 2> /dev/null | gzip -9 > "$images/initrd.gz")
qemu-img create -q -f qcow2 "$images/debian-base.qcow2" 16M
qemu-img create -q -f qcow2 -b debian-base.qcow2 -F qcow2 "$images/office.qcow2"
chmod 755 "$images"
chmod 644 "$images"/*

domain_xml() {  # $1: the session, or empty for none
    cat << EOF
<domain type='$([ "$accel" = kvm ] && echo kvm || echo qemu)'>
  <name>$domain</name>
  <metadata>
    <ukey:entity xmlns:ukey="https://ukey.dev/libvirt/1"$([ -n "$1" ] && echo " session=\"$1\"")>office</ukey:entity>
  </metadata>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$images/vmlinuz</kernel>
    <initrd>$images/initrd.gz</initrd>
    <cmdline>console=ttyS0 panic=-1 quiet</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$images/office.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='file'>
      <source path='$images/console.log'/>
      <target port='0'/>
    </serial>
  </devices>
</domain>
EOF
}

echo "==> ukeyd on the soft token, provisioned; the guest enrolled with ukeyctl policy enroll-domain"
socket="$work/run/ukeyd.sock"
export UKEY_SOCKET="$socket"
ukeyctl() { "$bin/ukeyctl" "$@"; }
start_ukeyd() {
    "$bin/ukeyd" --state-dir "$work/state" --runtime-dir "$work/run" --socket "$socket" --policy-dir "$work/none" \
        > "$work/ukeyd.log" 2>&1 &
    echo $! > "$work/ukeyd.pid"
    pids+=("$(cat "$work/ukeyd.pid")")
    for _ in $(seq 200); do [ -S "$socket" ] && return 0; sleep 0.05; done
    echo "e2e: ukeyd did not come up:" >&2
    cat "$work/ukeyd.log" >&2
    exit 1
}
start_ukeyd
"$bin/ukeyctl" keygen --out "$work/signer" > /dev/null
ukeyctl init --so-pin so-secret-42 --policy-signer "$work/signer.pem" > /dev/null
ukeyctl user add alice --pin alice-pin-1 --roles office > /dev/null
# The host's own stack (the VMM entity) as ukey-measure-host.service measures it: here one file
# standing for the host kernel, hashed by ukeyd from the policy's file hint.
printf 'the host kernel' > "$work/host-vmlinuz"
host_kernel=$(sha256sum "$work/host-vmlinuz" | cut -d' ' -f1)
cat > "$work/host.yaml" << EOF
version: 1
mode: enforce
entities:
  - name: vmm
    parent: root
    kind: host
    components:
      - name: kernel
        file: $work/host-vmlinuz
        digest: sha256:$host_kernel

users:
  - name: alice
    roles: [office]
    vms: [office]
EOF
domain_xml "" > "$work/office.xml"
ukeyctl policy enroll-domain "$work/office.xml" --user-vm -o "$work/host.yaml" 2> /dev/null
ukeyctl policy sign "$work/host.yaml" --key "$work/signer.key.pem" > /dev/null
ukeyctl policy load "$work/host.yaml" > /dev/null
session=$(ukeyctl login alice --pin alice-pin-1)

echo "==> libvirt, without systemd, with ukey's hook installed first"
mkdir -p "$(dirname "$hook")" /var/log/libvirt /var/run/libvirt
# libvirt runs hooks with an empty environment: the wrapper only tells the hook where this test's
# ukeyd listens (an installed hook reads /etc/ukey/ukeyd.toml or /run/ukey/ukeyd.sock).
cat > "$hook" << EOF
#!/bin/sh
UKEY_SOCKET=$socket exec $root/$bin/ukey-libvirt-hook "\$@"
EOF
chmod 755 "$hook"
# ukey-measure-host.service's command is libvirtd's precondition: on a tampered host libvirtd
# does not start.
printf '\x00' >> "$work/host-vmlinuz"
if ukeyctl measure-host > /dev/null 2> "$work/measure-host.err"; then
    bad "a tampered host: measure-host let libvirtd start"
else
    ok "a tampered host: measure-host refuses, so libvirtd does not start ($(head -1 "$work/measure-host.err"))"
fi
printf 'the host kernel' > "$work/host-vmlinuz"
ukeyctl reset > /dev/null
ukeyctl measure-host > /dev/null || { echo "e2e: measure-host refused the intact host" >&2; exit 1; }
virtlogd -d --pid-file "$work/virtlogd.pid"
libvirtd -d --pid-file "$work/libvirtd.pid"
for _ in $(seq 100); do virsh -q -c qemu:///system version > /dev/null 2>&1 && break; sleep 0.1; done
virsh -q -c qemu:///system version > /dev/null || { echo "e2e: libvirtd did not come up" >&2; tail -5 /var/log/libvirt/libvirtd.log >&2; exit 1; }
# KVM when a short probe boot of the same guest works; TCG otherwise (here /dev/kvm is a
# paravirtualised device that does not run stock guest kernels).
accel=tcg
if [ -c /dev/kvm ] && timeout 30 qemu-system-x86_64 -machine accel=kvm -m 256 -kernel "$images/vmlinuz" -initrd "$images/initrd.gz" \
    -append "console=ttyS0 panic=-1 quiet" -display none -no-reboot -serial "file:$work/probe.log" > /dev/null 2>&1 \
    && grep -aq UKEY-GUEST-BOOTED "$work/probe.log"; then
    accel=kvm
    echo "  (QEMU with KVM: a probe boot worked)"
else
    echo "  (QEMU with TCG: a KVM probe boot did not work on this machine)"
fi

qemu_running() { pgrep -f "guest=$domain" > /dev/null; }
start() {  # $1: the session; prints virsh's error to $work/virsh.err
    rm -f "$images/console.log"
    domain_xml "$1" > "$work/start.xml"
    virsh -q -c qemu:///system create "$work/start.xml" > /dev/null 2> "$work/virsh.err"
}
booted() {
    for _ in $(seq 600); do
        grep -aq UKEY-GUEST-BOOTED "$images/console.log" 2> /dev/null && return 0
        sleep 0.1
    done
    return 1
}
stop_guest() {
    virsh -q -c qemu:///system destroy "$domain" > /dev/null 2>&1 || true
    for _ in $(seq 100); do qemu_running || return 0; sleep 0.1; done
}
refused() {  # $1: what, $2: the text virsh's error must hold
    if start "$session_for_start"; then
        bad "$1: virsh create succeeded"
        stop_guest
        return
    fi
    if ! grep -q "$2" "$work/virsh.err"; then
        bad "$1: virsh's error lacks '$2': $(tr '\n' ' ' < "$work/virsh.err")"
    elif qemu_running || grep -aq UKEY-GUEST-BOOTED "$images/console.log" 2> /dev/null; then
        bad "$1: refused, but QEMU ran"
    else
        ok "$1: refused ($(grep -o "ukey: .*" "$work/virsh.err" | head -1))"
    fi
}

echo "==> the checks"
session_for_start=$session
started_at=$(date +%s.%N)
if start "$session" && booted; then
    ok "trusted guest boots and prints its marker ($(awk -v a="$started_at" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f s", b - a }') from virsh create)"
else
    bad "trusted guest did not boot: $(tr '\n' ' ' < "$work/virsh.err")"
fi
stop_guest

cp "$images/vmlinuz" "$work/vmlinuz.good"
printf '\x00' >> "$images/vmlinuz"
ukeyctl reset > /dev/null
ukeyctl measure-host > /dev/null
refused "a changed kernel byte" "office/kernel is untrusted (digest-mismatch)"
cp "$work/vmlinuz.good" "$images/vmlinuz"

cp "$images/debian-base.qcow2" "$work/base.good"
printf '\x00' >> "$images/debian-base.qcow2"
ukeyctl reset > /dev/null
ukeyctl measure-host > /dev/null
refused "a changed base image under an unchanged overlay" "debian-base/image is untrusted (digest-mismatch)"
cp "$work/base.good" "$images/debian-base.qcow2"

ukeyctl reset > /dev/null
ukeyctl measure-host > /dev/null
session_for_start=""
refused "a user VM with no logged-in user" "authentication-required"
session_for_start=$session

audit=$(ukeyctl audit show --type measure 2> /dev/null || true)
if grep -q "component=kernel.*entity=office load=no" <<< "$audit" && grep -q "entity=debian-base" <<< "$audit" && grep -q "authentication-required" <<< "$audit"; then
    ok "each refusal is in ukeyd's audit log"
else
    bad "the audit log lacks a refusal"
fi

echo "==> the same gate without libvirt: ukey-qemu, then the real qemu with the same arguments"
qemu_args=(-machine accel=$accel -m 256 -kernel "$images/vmlinuz" -initrd "$images/initrd.gz" -append "console=ttyS0 panic=-1 quiet"
    -drive "file=$images/office.qcow2,format=qcow2,if=virtio" -display none -no-reboot -serial "file:$work/qemu-console.log")
run_ukey_qemu() {  # $1: the session
    rm -f "$work/qemu-console.log"
    UKEY_ENTITY=office UKEY_SESSION="$1" timeout 120 "$bin/ukey-qemu" "${qemu_args[@]}" > /dev/null 2> "$work/ukey-qemu.err"
}
qemu_refused() {  # $1: what, $2: the session, $3: the text the refusal must hold
    if run_ukey_qemu "$2"; then
        bad "ukey-qemu, $1: qemu ran"
    elif ! grep -q "$3" "$work/ukey-qemu.err"; then
        bad "ukey-qemu, $1: the refusal lacks '$3': $(tr '\n' ' ' < "$work/ukey-qemu.err")"
    elif [ -e "$work/qemu-console.log" ]; then
        bad "ukey-qemu, $1: refused, but qemu ran"
    else
        ok "ukey-qemu, $1: refused ($(head -1 "$work/ukey-qemu.err"))"
    fi
}
new_boot() {
    ukeyctl reset > /dev/null
    ukeyctl measure-host > /dev/null
}
new_boot
if run_ukey_qemu "$session" && grep -aq UKEY-GUEST-BOOTED "$work/qemu-console.log"; then
    ok "ukey-qemu, trusted guest: qemu runs it and it prints its marker"
else
    bad "ukey-qemu, trusted guest did not boot: $(tr '\n' ' ' < "$work/ukey-qemu.err")"
fi
printf '\x00' >> "$images/vmlinuz"
new_boot
qemu_refused "a changed kernel byte" "$session" "office/kernel is untrusted (digest-mismatch)"
cp "$work/vmlinuz.good" "$images/vmlinuz"
printf '\x00' >> "$images/debian-base.qcow2"
new_boot
qemu_refused "a changed base image under an unchanged overlay" "$session" "debian-base/image is untrusted (digest-mismatch)"
cp "$work/base.good" "$images/debian-base.qcow2"
new_boot
qemu_refused "a user VM with no logged-in user" "" "authentication-required"

kill "$(cat "$work/ukeyd.pid")" && wait "$(cat "$work/ukeyd.pid")" 2> /dev/null || true
refused "ukeyd down" "ukeyd cannot be reached"
qemu_refused "ukeyd down" "$session" "ukeyd cannot be reached"

[ "$failed" -eq 0 ] || { echo "  (session: $session)"; echo "$audit" | tail -5; }
echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
