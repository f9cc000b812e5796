#!/usr/bin/env bash
# Part of `make bench`: what the libvirt hook adds to a guest's start. libvirt waits for the hook
# before it starts QEMU, so the hook's run time is the time it adds to `virsh create`. Measured on
# a domain with a kernel, an initrd and a disk of 1 GiB and then 4 GiB (a qcow2 overlay on a raw
# base), and QEMU's SeaBIOS (the firmware of a domain with no <loader>), against `openssl dgst
# -sha256` over the same files in the same run, best of 3 each. The hook holds each file to what
# ukeyd hashed until QEMU opened it (fanotify marks on their directories): that is in its time.
# Goal: at most 1.10x openssl's time. Uses the release build (bench.sh builds it).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.build/release
work=$(mktemp -d -t ukey-bench-hook.XXXXXX)
ukeyd_pid=
trap '[ -n "$ukeyd_pid" ] && kill "$ukeyd_pid" 2> /dev/null; rm -rf "$work"' EXIT
source scripts/bench-lib.sh

# Every start hashes everything here: what a first start costs (bench-vm-life.sh measures the
# later ones, which find the parent measured in this boot).
start_provisioned_ukeyd '[boot]\nreuse-measurements = false\n'
head -c 16777216 /dev/urandom > "$work/vmlinuz"
firmware=$(realpath /usr/share/seabios/bios-256k.bin)
head -c 33554432 /dev/urandom > "$work/initrd.img"

echo
echo "the libvirt hook's added time to a guest start (release build; best of 3; peer: openssl dgst -sha256 on the same files)"
echo
for size in 1 4; do
    rm -f "$work/base.raw" "$work/vm.qcow2"
    (yes "ukey bench image" || true) | head -c $((size * 1073741824)) > "$work/base.raw"
    qemu-img create -q -f qcow2 -b base.raw -F raw "$work/vm.qcow2"
    cat > "$work/vm.xml" << EOF
<domain type='qemu'>
  <name>bench-$size</name>
  <os><type arch='x86_64'>hvm</type><kernel>$work/vmlinuz</kernel><initrd>$work/initrd.img</initrd><cmdline>console=ttyS0</cmdline></os>
  <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$work/vm.qcow2'/><target dev='vda'/></disk></devices>
</domain>
EOF
    cat > "$work/policy.yaml" << EOF
version: $size
mode: audit
entities:
  - name: vmm
    parent: root
    kind: host
    components:
      - name: kernel
        digest: sha256:$(printf host | sha256sum | cut -d' ' -f1)
EOF
    "$bin/ukeyctl" policy enroll-domain "$work/vm.xml" -o "$work/policy.yaml" 2> /dev/null
    "$bin/ukeyctl" policy sign "$work/policy.yaml" --key "$work/signer.key.pem" > /dev/null
    "$bin/ukeyctl" policy load "$work/policy.yaml" > /dev/null
    hook() { "$bin/ukey-libvirt-hook" "bench-$size" prepare begin - < "$work/vm.xml"; }
    # Warm the page cache for both sides alike.
    cat "$work/vmlinuz" "$work/initrd.img" "$work/base.raw" "$work/vm.qcow2" "$firmware" > /dev/null
    openssl_time=$(best openssl dgst -sha256 "$work/vmlinuz" "$work/initrd.img" "$work/base.raw" "$work/vm.qcow2" "$firmware")
    hook_time=$(best hook)
    # As libvirt would once QEMU started: ukeyd lets go of the files it held for this start.
    "$bin/ukey-libvirt-hook" "bench-$size" started begin - < "$work/vm.xml"
    awk -v s="$size" -v h="$hook_time" -v o="$openssl_time" 'BEGIN {
        printf "  guest with a %d GiB disk: hook %.2f s, openssl dgst %.2f s: %.2fx (goal: at most 1.10x: %s)\n", s, h, o, h / o, (h / o <= 1.10 ? "met" : "NOT met")
    }'
done
