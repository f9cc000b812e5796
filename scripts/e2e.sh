#!/usr/bin/env bash
# `make e2e` (and the last part of `make test`): a real guest under real libvirt and QEMU starts
# only when ukeyd has validated its whole chain. Builds a tiny guest on the fly (a Debian cloud
# kernel, a busybox initramfs that prints a marker and powers off, a qcow2 overlay on a qcow2
# base), enrols it, installs ukey's hook, starts libvirt without systemd, and checks that:
#   - the trusted guest boots and prints its marker; it writes a random token to its own disk on
#     its first boot and reads it back on the next (the disk is the VM's state, sealed by ukeyd at
#     every stop); the disk changed by the host while the VM is stopped is refused as
#     changed-since-stop until `ukeyctl vm accept`; a second VM over the same parent image starts
#     without the parent being hashed again (its measurement is `cached`);
#   - a changed kernel byte, a changed base image under an unchanged overlay, a user VM with no
#     logged-in user, and ukeyd down are each refused by `virsh create` with the hook's reason,
#     and QEMU never runs for them;
#   - each refusal is in ukeyd's audit log;
#   - inside the trusted guest, ukey-guard (over the VM's virtio-serial guard channel, which
#     ukeyd serves as that VM's) lets the program on the VM's list run, and the kernel refuses
#     one with a changed byte and one not on the list with EPERM; the host's audit log has each
#     decision with the VM's name.
# Needs root (libvirt's system instance). Everything it starts it stops by PID; the hook it
# installs it removes. Under CI=true a missing peer is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

[ "$(id -u)" -eq 0 ] || { echo "e2e: needs root (libvirt's system instance)" >&2; exit 1; }
for tool in virsh libvirtd virtlogd qemu-system-x86_64 qemu-img qemu-io busybox; do
    command -v "$tool" > /dev/null || { echo "e2e: $tool is missing (make test installs it)" >&2; exit 1; }
done
if pgrep -x libvirtd > /dev/null; then
    echo "e2e: a libvirtd is already running; its hooks were read when it started, so ukey's cannot be tested through it. Stop it first." >&2
    exit 1
fi

# The guest side of the vTPM checks: tpm2-tools in the initramfs, and its /init's lines.
. scripts/lib/vtpm-guest.sh
# The binaries: a build's (UKEY_BIN, default .build/debug), or an installed package's
# (UKEY_PREFIX=/usr: ukeyd in sbin, the hook in libexec/ukey, the rest in bin).
if [ -n "${UKEY_PREFIX:-}" ]; then
    bin=$UKEY_PREFIX/bin
    ukeyd_bin=$UKEY_PREFIX/sbin/ukeyd
    hook_bin=$UKEY_PREFIX/libexec/ukey/ukey-libvirt-hook
else
    bin=${UKEY_BIN:-.build/debug}
    case "$bin" in /*) ;; *) bin=$root/$bin ;; esac
    ukeyd_bin=$bin/ukeyd
    hook_bin=$bin/ukey-libvirt-hook
fi
work=$(mktemp -d -t ukey-e2e.XXXXXX)
images=/var/lib/libvirt/images/ukey-e2e.$$
# The VMs' guard channels: a directory QEMU (or libvirt for it) can reach, outside the 0700 work dir.
guard_dir=/run/ukey-e2e.$$/guard
# Where ukeyd runs the VMs' vTPMs (their control sockets): as reachable for QEMU as the guard's.
vtpm_dir=/run/ukey-e2e.$$/vtpm
# And their state: swtpm runs as tss, which must reach it (the work dir is root's alone).
vtpm_states=/run/ukey-e2e.$$/vtpm-state
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
    # An installed package's hook, put aside while this test's wrapper stood in its place.
    if [ -e "$work/hook.saved" ] || [ -L "$work/hook.saved" ]; then mv "$work/hook.saved" "$hook"; fi
    rm -rf "$work" "$images" "$(dirname "$guard_dir")"
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
# The virtio modules the guest needs for its guard port (the cloud kernel builds them as modules).
guest_modules="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_console virtio_blk"
if [ ! -s "$cache/$kernel_pkg.modules/virtio_console.ko" ] || [ ! -s "$cache/$kernel_pkg.modules/virtio_blk.ko" ]; then
    [ -d "$work/kernel" ] || { (cd "$work" && apt-get download -q "$kernel_pkg" > /dev/null 2>&1); dpkg -x "$work"/"$kernel_pkg"_*.deb "$work/kernel"; }
    mkdir -p "$cache/$kernel_pkg.modules"
    for module in $guest_modules; do
        find "$work/kernel/lib/modules" -name "$module.ko" -exec cp {} "$cache/$kernel_pkg.modules/" \;
    done
fi
cp "$cache/$kernel_pkg.vmlinuz" "$images/vmlinuz"
mkdir -p "$work/initramfs/bin" "$work/initramfs/modules" "$work/initramfs/progs" "$work/initramfs/guard"
cp "$(command -v busybox)" "$work/initramfs/bin/busybox"
cp "$cache/$kernel_pkg.modules"/*.ko "$work/initramfs/modules/"
# ukey-guard and the shared libraries it needs, at the paths it was linked against.
strip -o "$work/initramfs/guard/ukey-guard" "$bin/ukey-guard"
for library in $(ldd "$bin/ukey-guard" | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }'); do
    mkdir -p "$work/initramfs$(dirname "$library")"
    cp -L "$library" "$work/initramfs$library"
done
# Three programs for the guard: busybox as the policy lists it; with one byte changed; and a
# copy the policy does not list (one byte longer).
cp "$(command -v busybox)" "$work/initramfs/progs/busybox-allowed"
cp "$(command -v busybox)" "$work/initramfs/progs/busybox-changed"
size=$(stat -c %s "$work/initramfs/progs/busybox-changed")
printf '\x5a' | dd of="$work/initramfs/progs/busybox-changed" bs=1 seek=$((size - 16)) conv=notrunc status=none
cp "$(command -v busybox)" "$work/initramfs/progs/busybox-unlisted"
printf '\x00' >> "$work/initramfs/progs/busybox-unlisted"
cat > "$work/initramfs/init" << 'EOF'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc 2> /dev/null
/bin/busybox mount -t sysfs sysfs /sys 2> /dev/null
/bin/busybox mount -t devtmpfs devtmpfs /dev 2> /dev/null
for module in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_console virtio_blk; do
    /bin/busybox insmod /modules/$module.ko 2> /dev/null
done
#UKEY-VTPM-SNIPPET
# The guest's own disk, as a real guest uses it: a token written at 4 MiB on its first boot,
# read back on every later one.
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/vda ] && break; /bin/busybox sleep 0.2; done
if [ -b /dev/vda ]; then
    kept=$(/bin/busybox dd if=/dev/vda bs=512 skip=8192 count=1 2> /dev/null | /bin/busybox tr -d '\000' | /bin/busybox head -n 1)
    case "$kept" in
    "UKEY-TOKEN "*) echo "UKEY-TOKEN-READ ${kept#UKEY-TOKEN }" ;;
    *)
        token=$(/bin/busybox od -An -tx1 -N8 /dev/urandom | /bin/busybox tr -d ' \n')
        printf 'UKEY-TOKEN %s\n' "$token" | /bin/busybox dd of=/dev/vda bs=512 seek=8192 conv=notrunc,fsync 2> /dev/null
        echo "UKEY-TOKEN-WRITTEN $token"
        ;;
    esac
else
    echo "UKEY-TOKEN no disk"
fi
# What udev does for virtio-serial ports: /dev/virtio-ports/<name>.
/bin/busybox mkdir -p /dev/virtio-ports
for _ in 1 2 3 4 5 6 7 8 9 10; do
    for port in /sys/class/virtio-ports/*; do
        [ -e "$port/name" ] && /bin/busybox ln -sf "/dev/${port##*/}" "/dev/virtio-ports/$(/bin/busybox cat "$port/name")"
    done
    [ -e /dev/virtio-ports/io.ukey.guard.0 ] && break
    /bin/busybox sleep 0.2
done
if [ -e /dev/virtio-ports/io.ukey.guard.0 ]; then
    /bin/busybox mkdir -p /guarded /tmp
    /bin/busybox mount -t tmpfs -o size=16m tmpfs /guarded
    /bin/busybox cp /progs/* /guarded/
    /bin/busybox chmod 755 /guarded/*
    # The guest's kernel (6.1) has no vm.memfd_noexec and lets users make user namespaces: the
    # guard refuses to start there unless told to accept both gaps, which it then records.
    /guard/ukey-guard --port /dev/virtio-ports/io.ukey.guard.0 --mount /guarded --allow-memfd-exec --allow-user-namespaces > /tmp/guard.out 2> /dev/console &
    guard=$!
    for _ in $(/bin/busybox seq 100); do /bin/busybox grep -q ready /tmp/guard.out 2> /dev/null && break; /bin/busybox sleep 0.1; done
    for program in allowed changed unlisted; do
        if /guarded/busybox-$program true 2> /tmp/exec.err; then
            echo "UKEY-EXEC $program ran"
        else
            echo "UKEY-EXEC $program refused: $(/bin/busybox cat /tmp/exec.err)"
        fi
    done
    /bin/busybox kill $guard
else
    echo "UKEY-EXEC no guard channel"
fi
echo "UKEY-GUEST-BOOTED"
/bin/busybox poweroff -f
EOF
vtpm_guest_init_snippet > "$work/vtpm-snippet.sh"
sed -i -e "/^#UKEY-VTPM-SNIPPET\$/r $work/vtpm-snippet.sh" -e "/^#UKEY-VTPM-SNIPPET\$/d" "$work/initramfs/init"
vtpm_guest_install "$work/initramfs"
chmod 755 "$work/initramfs/init"
mkdir -p "$work/initramfs/proc" "$work/initramfs/sys" "$work/initramfs/dev"
(cd "$work/initramfs" && find . | busybox cpio -o -H newc 2> /dev/null | gzip -1 > "$images/initrd.gz")
# The attacker's initrd: the same userland, an init that says so. Kept outside the images until a
# test renames it over the measured one.
mkdir -p "$work/evil-initramfs" && cp -a "$work/initramfs/." "$work/evil-initramfs/"
printf '#!/bin/busybox sh\necho UKEY-EVIL-RAN\n/bin/busybox poweroff -f\n' > "$work/evil-initramfs/init"
(cd "$work/evil-initramfs" && find . | busybox cpio -o -H newc 2> /dev/null | gzip -1 > "$work/evil-initrd.gz")
qemu-img create -q -f qcow2 "$images/debian-base.qcow2" 16M
qemu-img create -q -f qcow2 -b debian-base.qcow2 -F qcow2 "$images/office.qcow2"
# A second desktop over the same parent OS image.
qemu-img create -q -f qcow2 -b debian-base.qcow2 -F qcow2 "$images/desk2.qcow2"
chmod 755 "$images"
chmod 644 "$images"/*

domain_xml() {  # $1: the start ticket, or empty for none
    cat << EOF
<domain type='$([ "$accel" = kvm ] && echo kvm || echo qemu)'>
  <name>$domain</name>
  <metadata>
    <ukey:entity xmlns:ukey="https://ukey.dev/libvirt/1"$([ -n "$1" ] && echo " session=\"$1\"")>office</ukey:entity>
  </metadata>
  <memory unit='MiB'>768</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$images/vmlinuz</kernel>
    <initrd>$images/initrd.gz</initrd>
    <cmdline>console=ttyS0 panic=-1 quiet</cmdline>
  </os>
  <features>
    <acpi/>
  </features>
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
    <channel type='unix'>
      <source mode='bind' path='$guard_dir/office.sock'/>
      <target type='virtio' name='io.ukey.guard.0'/>
    </channel>
    <tpm model='tpm-tis'>
      <backend type='external'>
        <source type='unix' mode='connect' path='$vtpm_dir/office.sock'/>
      </backend>
    </tpm>
  </devices>
</domain>
EOF
}
# desk2: the same guest on its own overlay over the same parent image, without a guard channel or a vTPM.
desk2_xml() {  # $1: the start ticket
    domain_xml "$1" | sed -e "s|<name>$domain</name>|<name>$domain-desk2</name>|; s|>office</ukey:entity>|>desk2</ukey:entity>|" \
        -e "s|office.qcow2|desk2.qcow2|; s|console.log|desk2-console.log|" -e "/<channel type='unix'>/,/<\/channel>/d" \
        -e "/<tpm model=/,/<\/tpm>/d"
}

echo "==> ukeyd on the soft token, provisioned; the guest enrolled with ukeyctl policy enroll-domain"
socket="$work/run/ukeyd.sock"
export UKEY_SOCKET="$socket"
ukeyctl() { "$bin/ukeyctl" "$@"; }
# Every exec decision is recorded (by default only denials are), so the log shows the allowed one.
printf '[audit]\nexec-allows = "all"\n' > "$work/ukeyd.toml"
mkdir -p "$(dirname "$guard_dir")" && chmod 755 "$(dirname "$guard_dir")"
start_ukeyd() {
    "$ukeyd_bin" --config "$work/ukeyd.toml" --state-dir "$work/state" --runtime-dir "$work/run" --socket "$socket" --policy-dir "$work/none" \
        --guest-socket-dir "$guard_dir" --vtpm-socket-dir "$vtpm_dir" --vtpm-state-dir "$vtpm_states" \
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
    vms: [office, desk2]

runtime:
  - vm: office
    default: deny
    allow:
      - path: /guarded/busybox-allowed
        digest: sha256:$(sha256sum "$work/initramfs/progs/busybox-allowed" | cut -d' ' -f1)
      - path: /guarded/busybox-changed
        digest: sha256:$(sha256sum "$work/initramfs/progs/busybox-allowed" | cut -d' ' -f1)
EOF
domain_xml "" > "$work/office.xml"
ukeyctl policy enroll-domain "$work/office.xml" --user-vm -o "$work/host.yaml" 2> /dev/null
# desk2 over the same parent: enroll-domain reuses the debian-base entity already there.
desk2_xml "" > "$work/desk2.xml"
ukeyctl policy enroll-domain "$work/desk2.xml" --user-vm -o "$work/host.yaml" 2> "$work/enroll-desk2.err" \
    || { echo "e2e: enrolling desk2 over the enrolled parent failed: $(cat "$work/enroll-desk2.err")" >&2; exit 1; }
ukeyctl policy sign "$work/host.yaml" --key "$work/signer.key.pem" > /dev/null
ukeyctl policy load "$work/host.yaml" > /dev/null
# A domain's XML is any local user's to read (virsh -r dumpxml): it carries a one-time start
# ticket for office, never alice's session.
ticket() { ukeyctl login alice --pin alice-pin-1 --for-vm "${1:-office}" 2> /dev/null || true; }

echo "==> libvirt, without systemd, with ukey's hook installed first"
mkdir -p "$(dirname "$hook")" /var/log/libvirt /var/run/libvirt
if [ -e "$hook" ] || [ -L "$hook" ]; then mv "$hook" "$work/hook.saved"; fi
# libvirt runs hooks with an empty environment: the wrapper only tells the hook where this test's
# ukeyd listens (an installed hook reads /etc/ukey/ukeyd.toml or /run/ukey/ukeyd.sock).
cat > "$hook" << EOF
#!/bin/sh
UKEY_SOCKET=$socket UKEY_GUARD_DIR=$guard_dir UKEY_VTPM_DIR=$vtpm_dir exec $hook_bin "\$@"
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
if [ -c /dev/kvm ] && timeout 30 qemu-system-x86_64 -machine accel=kvm -m 768 -kernel "$images/vmlinuz" -initrd "$images/initrd.gz" \
    -append "console=ttyS0 panic=-1 quiet" -display none -no-reboot -serial "file:$work/probe.log" > /dev/null 2>&1 \
    && grep -aq UKEY-GUEST-BOOTED "$work/probe.log"; then
    accel=kvm
    echo "  (QEMU with KVM: a probe boot worked)"
else
    echo "  (QEMU with TCG: a KVM probe boot did not work on this machine)"
fi

qemu_running() { pgrep -f "guest=$domain" > /dev/null; }
start() {  # $1: "ticket" (a fresh start ticket), "" (none), or a ticket to replay; prints virsh's error to $work/virsh.err
    local credential=$1
    [ "$credential" = ticket ] && credential=$(ticket)
    printf '%s' "$credential" > "$work/last-ticket"
    rm -f "$images/console.log"
    domain_xml "$credential" > "$work/start.xml"
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
session_for_start=ticket
started_at=$(date +%s.%N)
if start ticket && booted; then
    ok "trusted guest boots and prints its marker ($(awk -v a="$started_at" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f s", b - a }') from virsh create)"
else
    bad "trusted guest did not boot: $(tr '\n' ' ' < "$work/virsh.err")"
fi
stop_guest
# Inside that guest: ukey-guard over the VM's channel.
console=$(cat "$images/console.log" 2> /dev/null | tr -d '\r' || true)

echo "==> the guest's vTPM: run by ukeyd for a trusted start, its EK certified by the token's vTPM CA"
vtpm_state="$vtpm_states/office"
vtpm_running() { pgrep -f "tpmstate dir=$vtpm_state" > /dev/null; }
ek_hex=$(grep -ao "UKEY-VTPM-EK [0-9a-f]*" <<< "$console" | head -1 | cut -d' ' -f2 || true)
if [ -n "$ek_hex" ] && printf '%s' "$ek_hex" | python3 -c 'import binascii, sys; sys.stdout.buffer.write(binascii.unhexlify(sys.stdin.read().strip()))' > "$work/guest-ek.der" \
    && ukeyctl vm vtpm-cert office > "$work/vtpm-chain.pem" 2> "$work/vtpm-cert.err"; then
    # The chain as ukeyctl prints it: the EK's certificate, the vTPM CA's, the root's.
    awk '/BEGIN CERT/ { n++ } { print > (dir "/vtpm-" n ".pem") }' dir="$work" "$work/vtpm-chain.pem"
    openssl x509 -inform DER -in "$work/guest-ek.der" -out "$work/guest-ek.pem" 2> /dev/null
    if ! cmp -s "$work/guest-ek.pem" "$work/vtpm-1.pem"; then
        bad "the EK certificate the guest read from its TPM is not the one ukeyd issued for office"
    elif openssl verify -CAfile "$work/vtpm-3.pem" -untrusted "$work/vtpm-2.pem" \
        -policy 2.25.10392339744558737358530141729444115455.2.3 -explicit_policy "$work/guest-ek.pem" > "$work/verify.out" 2>&1 \
        && openssl x509 -in "$work/guest-ek.pem" -noout -text | grep -q "ukey vm office"; then
        ok "in the guest, the TPM's EK certificate (NV 0x1c00002) chains to this host's ukey root under the vTPM policy and names office (openssl verify)"
    else
        bad "the guest's EK certificate does not verify against ukey's root: $(tr '\n' ' ' < "$work/verify.out")"
    fi
else
    bad "no EK certificate from the guest's vTPM: $(grep -a "UKEY-VTPM" <<< "$console" | tr '\n' ' ') $(cat "$work/vtpm-cert.err" 2> /dev/null)"
fi
vtpm_secret=$(grep -ao "UKEY-VTPM-SEALED [0-9a-f]*" <<< "$console" | head -1 | cut -d' ' -f2 || true)
if [ -n "$vtpm_secret" ]; then
    ok "on its first boot the guest sealed a secret to its vTPM ($vtpm_secret)"
else
    bad "the guest sealed nothing to its vTPM: $(grep -a "UKEY-VTPM" <<< "$console" | tr '\n' ' ')"
fi
if vtpm_running; then bad "the vTPM still runs after the guest stopped"; else ok "the guest stopped: its vTPM was stopped with its release"; fi
if [ -n "$vtpm_secret" ] && ! grep -rqa "$vtpm_secret" "$vtpm_state"; then
    ok "the vTPM's state at rest holds no copy of the sealed secret (encrypted with a key in ukeyd's sealed store)"
else
    bad "the vTPM's state: $(ls "$vtpm_state" 2> /dev/null | tr '\n' ' ')$([ -n "$vtpm_secret" ] && grep -rqa "$vtpm_secret" "$vtpm_state" && echo ' holds the secret in the clear')"
fi
if grep -q "UKEY-EXEC allowed ran" <<< "$console"; then
    ok "in the guest, the program on office's list runs under ukey-guard"
else
    bad "in the guest, the listed program did not run: $(grep -a "UKEY-EXEC\|ukey-guard" <<< "$console" | tr '\n' ' ')"
fi
for program in changed unlisted; do
    if grep -q "UKEY-EXEC $program refused: .*Operation not permitted" <<< "$console"; then
        ok "in the guest, the kernel refuses the $program program with EPERM"
    else
        bad "in the guest, the $program program was not refused with EPERM: $(grep -a "UKEY-EXEC\|ukey-guard" <<< "$console" | tr '\n' ' ')"
    fi
done
execs=$(ukeyctl audit show --type exec 2> /dev/null || true)
if grep -q "path=/guarded/busybox-allowed.*vm=office" <<< "$execs" \
    && grep -q "path=/guarded/busybox-changed.*vm=office" <<< "$execs" && grep -q "path=/guarded/busybox-unlisted.*vm=office" <<< "$execs"; then
    ok "the host's audit log has the guest's three decisions with the VM's name"
else
    bad "the audit log lacks a guest decision: $(tr '\n' ' ' <<< "$execs" | cut -c1-600)"
fi

echo "==> the VM's disk is its state: sealed at every stop, refused when changed while stopped"
token=$(grep -ao "UKEY-TOKEN-WRITTEN [0-9a-f]*" <<< "$console" | head -1 | cut -d' ' -f2)
if [ -n "$token" ]; then
    ok "on its first boot the guest wrote a token to its own disk ($token); the stop sealed the disk"
else
    bad "the guest wrote no token to its disk: $(grep -a "UKEY-TOKEN" <<< "$console" | tr '\n' ' ')"
fi
if start ticket && booted && grep -aq "UKEY-TOKEN-READ $token" "$images/console.log"; then
    ok "a VM that wrote its disk starts again and reads its token back"
else
    bad "the second start of a VM that wrote its disk: $(tr '\n' ' ' < "$work/virsh.err") $(grep -a "UKEY-TOKEN" "$images/console.log" 2> /dev/null | tr '\n' ' ')"
fi
if [ -n "$vtpm_secret" ] && grep -aq "UKEY-VTPM-UNSEALED $vtpm_secret" "$images/console.log"; then
    ok "on its second boot the guest unsealed the same secret from its vTPM (the state persisted, encrypted)"
else
    bad "the second boot did not unseal the vTPM secret: $(grep -a "UKEY-VTPM" "$images/console.log" 2> /dev/null | grep -v EK | tr '\n' ' ')"
fi
stop_guest
if ukeyctl audit show --type vm-state-sealed 2> /dev/null | grep -q "entity=office"; then
    ok "each stop's seal is in the audit log, with the old and new digest"
else
    bad "no vm-state-sealed record for office"
fi
qemu-io -f qcow2 -c "write -P 0x41 0 4k" "$images/office.qcow2" > /dev/null
refused "the disk written by the host (qemu-io) while the VM was stopped" "office/disk-vda is untrusted (changed-since-stop)"
if ukeyctl vm status office > "$work/vm-status.out" 2>&1; then
    bad "ukeyctl vm status did not flag the changed disk: $(tr '\n' ' ' < "$work/vm-status.out")"
else
    ok "ukeyctl vm status flags the disk as changed since its stop"
fi
if ukeyctl vm accept office > "$work/accept.out" 2>&1 && start ticket && booted && grep -aq "UKEY-TOKEN-READ $token" "$images/console.log"; then
    ok "after ukeyctl vm accept the VM starts on its disk as it is ($(head -1 "$work/accept.out" | cut -c1-100))"
else
    bad "after ukeyctl vm accept: $(tr '\n' ' ' < "$work/accept.out") $(tr '\n' ' ' < "$work/virsh.err")"
fi
stop_guest
rm -f "$images/desk2-console.log"
if desk2_xml "$(ticket desk2)" > "$work/desk2-start.xml" && virsh -q -c qemu:///system create "$work/desk2-start.xml" > /dev/null 2> "$work/virsh.err"; then
    for _ in $(seq 600); do grep -aq UKEY-GUEST-BOOTED "$images/desk2-console.log" 2> /dev/null && break; sleep 0.1; done
    virsh -q -c qemu:///system destroy "$domain-desk2" > /dev/null 2>&1 || true
    parent=$(ukeyctl audit show --type measure 2> /dev/null | grep "entity=debian-base" | tail -1)
    if grep -aq UKEY-GUEST-BOOTED "$images/desk2-console.log" && grep -q "cached=yes" <<< "$parent"; then
        ok "a second VM over the same parent image starts without the parent hashed again (cached)"
    else
        bad "the second VM over the parent: booted $(grep -ac UKEY-GUEST-BOOTED "$images/desk2-console.log" 2> /dev/null), its parent's measure: $parent"
    fi
else
    bad "the second VM over the parent was refused: $(tr '\n' ' ' < "$work/virsh.err")"
fi

replay=$(cat "$work/last-ticket")
if start "$replay"; then
    bad "the trusted start's ticket, replayed from its XML: virsh create succeeded"
    stop_guest
elif grep -q "start-ticket-spent" "$work/virsh.err"; then
    ok "the trusted start's ticket, replayed from its XML (which any local user may read): refused (start-ticket-spent)"
else
    bad "the trusted start's ticket, replayed: not refused as spent: $(tr '\n' ' ' < "$work/virsh.err")"
fi
cp "$images/vmlinuz" "$work/vmlinuz.good"
printf '\x00' >> "$images/vmlinuz"
ukeyctl reset > /dev/null
ukeyctl measure-host > /dev/null
state_before=$(cd "$vtpm_state" 2> /dev/null && sha256sum -- * | sha256sum)
refused "a changed kernel byte" "office/kernel is untrusted (digest-mismatch)"
if vtpm_running; then
    bad "a changed kernel byte: a swtpm runs for office"
elif [ "$(cd "$vtpm_state" 2> /dev/null && sha256sum -- * | sha256sum)" != "$state_before" ]; then
    bad "a changed kernel byte: the vTPM's state changed"
else
    ok "a changed kernel byte: no swtpm was started for office, and its vTPM state is untouched"
fi
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
session_for_start=ticket

echo "==> what the hook does not understand, it refuses by name, and QEMU never runs"
# Each a domain libvirt accepts and the old hook let through (QEMU then read an unmeasured file).
variant() {  # $1: what, $2: sed expression applied to the trusted domain, $3: the text the refusal must hold
    new_boot_quiet
    domain_xml "$(ticket)" | sed -e "$2" > "$work/variant.xml"
    rm -f "$images/console.log"
    if virsh -q -c qemu:///system create "$work/variant.xml" > /dev/null 2> "$work/virsh.err"; then
        bad "$1: virsh create succeeded"
        stop_guest
    elif ! grep -q "ukey: .*$3" "$work/virsh.err"; then
        bad "$1: virsh's error is not ukey's naming '$3': $(tr '\n' ' ' < "$work/virsh.err")"
    elif qemu_running || [ -s "$images/console.log" ]; then
        bad "$1: refused, but QEMU ran"
    else
        ok "$1: refused ($(grep -o "ukey: .*" "$work/virsh.err" | head -1 | cut -c1-160))"
    fi
}
new_boot_quiet() { ukeyctl reset > /dev/null; ukeyctl measure-host > /dev/null; }
variant "<qemu:commandline> passing -kernel" \
    "s|<domain type='\([a-z]*\)'>|<domain type='\1' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>|; s|</devices>|</devices><qemu:commandline><qemu:arg value='-kernel'/><qemu:arg value='$work/evil'/></qemu:commandline>|" \
    "qemu:commandline"
qemu-img create -q -f qcow2 "$images/other-base.qcow2" 16M
variant "a <backingStore> naming another base than the overlay's header" \
    "s|<source file='$images/office.qcow2'/>|<source file='$images/office.qcow2'/><backingStore type='file'><format type='qcow2'/><source file='$images/other-base.qcow2'/><backingStore/></backingStore>|" \
    "other-base.qcow2"
variant "<os firmware='efi'> (libvirt picks the firmware after the hook)" "s|<os>|<os firmware='efi'>|" "firmware"
variant "a host directory shown as a disk (<disk type='dir'>)" \
    "s|</devices>|<disk type='dir' device='disk'><driver name='qemu' type='fat'/><source dir='/etc'/><target dev='vdb' bus='virtio'/><readonly/></disk></devices>|" "type 'dir'"

echo "==> the file QEMU opens is the file ukeyd measured: the initrd swapped just after ukeyd hashed it"
# An attacker with write access to the image directory waits (inotify) for ukeyd to close the
# initrd after hashing it, and renames another over it before QEMU opens it.
# ukeyd's guard queues the record as it refuses: it reaches the log within a batch (5 s at most).
open_refusal_audited() {
    for _ in $(seq 50); do
        ukeyctl audit show --type open-refused 2> /dev/null | grep -q "path=$1" && return 0
        sleep 0.1
    done
    return 1
}
cp "$images/initrd.gz" "$work/initrd.good"
cp "$work/evil-initrd.gz" "$images/.swap-initrd.gz"
new_boot_quiet
python3 - "$images/initrd.gz" "$images/.swap-initrd.gz" > "$work/swap.log" 2>&1 << 'PYEOF' &
import ctypes, os, select, sys
libc = ctypes.CDLL("libc.so.6", use_errno=True)
fd = libc.inotify_init1(0)
IN_CLOSE_NOWRITE = 0x10
libc.inotify_add_watch(fd, sys.argv[1].encode(), IN_CLOSE_NOWRITE)
print("watching", flush=True)
ready, _, _ = select.select([fd], [], [], 120)
if not ready:
    sys.exit("nobody read the initrd")
os.read(fd, 4096)
os.rename(sys.argv[2], sys.argv[1])
print("swapped", flush=True)
PYEOF
swapper=$!
pids+=("$swapper")
for _ in $(seq 50); do grep -q watching "$work/swap.log" 2> /dev/null && break; sleep 0.1; done
if start ticket; then
    booted || true
    bad "a swapped initrd: virsh create succeeded$(grep -aq UKEY-EVIL-RAN "$images/console.log" 2> /dev/null && echo ', and the guest ran the attacker'"'"'s initrd')"
    stop_guest
else
    wait "$swapper" 2> /dev/null || true
    if ! grep -q swapped "$work/swap.log"; then
        bad "a swapped initrd: the swap did not happen ($(tr '\n' ' ' < "$work/swap.log"))"
    elif grep -aq UKEY-EVIL-RAN "$images/console.log" 2> /dev/null; then
        bad "a swapped initrd: refused, but the attacker's initrd ran"
    elif ! open_refusal_audited "$images/initrd.gz"; then
        bad "a swapped initrd: refused, but no open-refused record for it"
    else
        ok "a swapped initrd: QEMU's open of it is refused, the start fails, the refusal is audited ($(grep -o "initrd.gz[^']*" "$work/virsh.err" | head -1 | cut -c1-120))"
    fi
fi
cp "$work/initrd.good" "$images/initrd.gz"

audit=$(ukeyctl audit show --type measure 2> /dev/null || true)
if grep -q "component=kernel.*entity=office.*load=no" <<< "$audit" && grep -q "entity=debian-base" <<< "$audit" && grep -q "authentication-required" <<< "$audit"; then
    ok "each refusal is in ukeyd's audit log"
else
    bad "the audit log lacks a refusal"
fi

echo "==> the same gate without libvirt: ukey-qemu, then the real qemu with the same arguments"
qemu_args=(-machine accel=$accel -m 768 -kernel "$images/vmlinuz" -initrd "$images/initrd.gz" -append "console=ttyS0 panic=-1 quiet"
    -drive "file=$images/office.qcow2,format=qcow2,if=virtio" -display none -no-reboot -serial "file:$work/qemu-console.log"
    -chardev "socket,id=chrtpm,path=$vtpm_dir/office.sock" -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0)
run_ukey_qemu() {  # $1: "ticket" (a fresh start ticket) or "" (none)
    [ "$1" = ticket ] && set -- "$(ticket)"
    rm -f "$work/qemu-console.log"
    UKEY_ENTITY=office UKEY_SESSION="$1" UKEY_VTPM_DIR="$vtpm_dir" timeout 120 "$bin/ukey-qemu" "${qemu_args[@]}" > /dev/null 2> "$work/ukey-qemu.err"
}
qemu_refused() {  # $1: what, $2: "ticket" or "", $3: the text the refusal must hold
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
seals_before=$(ukeyctl audit show --type vm-state-sealed 2> /dev/null | grep -c "entity=office" || true)
if run_ukey_qemu ticket && grep -aq UKEY-GUEST-BOOTED "$work/qemu-console.log"; then
    ok "ukey-qemu, trusted guest: qemu runs it and it prints its marker"
else
    bad "ukey-qemu, trusted guest did not boot: $(tr '\n' ' ' < "$work/ukey-qemu.err")"
fi
seals_after=$(ukeyctl audit show --type vm-state-sealed 2> /dev/null | grep -c "entity=office" || true)
if [ "$seals_after" -eq $((seals_before + 1)) ] && grep -aq "UKEY-TOKEN-READ $token" "$work/qemu-console.log" && ukeyctl vm status office > /dev/null 2>&1; then
    ok "ukey-qemu waits for qemu and seals the disk when it exits (the guest read its token; the disk holds the seal)"
else
    bad "ukey-qemu's seal at qemu's exit: $seals_before -> $seals_after seals; $(tr '\n' ' ' < "$work/ukey-qemu.err")"
fi
if [ -n "$vtpm_secret" ] && grep -aq "UKEY-VTPM-UNSEALED $vtpm_secret" "$work/qemu-console.log" && ! vtpm_running; then
    ok "ukey-qemu starts the same vTPM for -tpmdev emulator on ukeyd's socket (the guest unsealed its secret) and ukeyd stops it when qemu exits"
else
    bad "ukey-qemu's vTPM: $(grep -a "UKEY-VTPM" "$work/qemu-console.log" 2> /dev/null | grep -v EK | tr '\n' ' ')$(vtpm_running && echo ' (still running)')"
fi
printf '\x00' >> "$images/vmlinuz"
new_boot
qemu_refused "a changed kernel byte" ticket "office/kernel is untrusted (digest-mismatch)"
cp "$work/vmlinuz.good" "$images/vmlinuz"
printf '\x00' >> "$images/debian-base.qcow2"
new_boot
qemu_refused "a changed base image under an unchanged overlay" ticket "debian-base/image is untrusted (digest-mismatch)"
cp "$work/base.good" "$images/debian-base.qcow2"
new_boot
qemu_refused "a user VM with no logged-in user" "" "authentication-required"

echo "==> figures: what a vTPM adds to a start (virsh create until QEMU runs; the same guest, this run)"
new_boot_quiet
figure_start() {  # $1: sed expression applied to the domain; prints the seconds virsh create took
    domain_xml "$(ticket)" | sed -e "$1" > "$work/figure.xml"
    local began ended
    began=$(date +%s.%N)
    if ! virsh -q -c qemu:///system create "$work/figure.xml" > /dev/null 2> "$work/virsh.err"; then
        echo failed
        return
    fi
    ended=$(date +%s.%N)
    stop_guest
    awk -v a="$began" -v b="$ended" 'BEGIN { printf "%.3f", b - a }'
}
median() { tr ' ' '\n' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
without_tpm="/<tpm model=/,/<\/tpm>/d"
libvirt_tpm="/<backend type='external'>/,/<\/backend>/c\\      <backend type='emulator' version='2.0'/>"
none_times="" ukey_times="" libvirt_times=""
for _ in 1 2 3; do
    none_times+=" $(figure_start "$without_tpm")"
    ukey_times+=" $(figure_start "")"
    libvirt_times+=" $(figure_start "$libvirt_tpm")"
done
if grep -q failed <<< "$none_times$ukey_times$libvirt_times"; then
    bad "figures: a start failed (none:$none_times; ukey:$ukey_times; libvirt:$libvirt_times): $(tr '\n' ' ' < "$work/virsh.err")"
else
    first=$(ukeyctl audit show --type vtpm-start 2> /dev/null | grep -m1 "created=yes" || true)
    setup_ms=$(grep -o "setupMs=[0-9]*" <<< "$first" | cut -d= -f2 || true)
    start_ms=$(grep -o "startMs=[0-9]*" <<< "$first" | cut -d= -f2 || true)
    none=$(median <<< "$none_times") ukey=$(median <<< "$ukey_times") libvirt=$(median <<< "$libvirt_times")
    ok "figures, medians of 3 virsh create: no TPM ${none} s; ukey's vTPM ${ukey} s ($(awk -v a="$ukey" -v b="$none" 'BEGIN { printf "%+.3f", a - b }') s; its state exists: swtpm started as tss, key from the sealed store); libvirt's emulator ${libvirt} s ($(awk -v a="$libvirt" -v b="$none" 'BEGIN { printf "%+.3f", a - b }') s; a transient domain's vTPM is made at each start); ukey's first start of office made its vTPM in ${setup_ms:-?} ms (swtpm_setup, EK and platform certificates from the vTPM CA) and started it in ${start_ms:-?} ms"
fi

kill "$(cat "$work/ukeyd.pid")" && wait "$(cat "$work/ukeyd.pid")" 2> /dev/null || true
refused "ukeyd down" "ukeyd cannot be reached"
qemu_refused "ukeyd down" ticket "ukeyd cannot be reached"

[ "$failed" -eq 0 ] || echo "$audit" | tail -5
echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
