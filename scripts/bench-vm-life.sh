#!/usr/bin/env bash
# Part of `make bench`: a user VM's life, measured.
#   (a) Quick starts: twenty VMs, each its own small overlay over one 4 GiB parent image. The first
#       start hashes the parent; the nineteen after it find it measured in this boot, unchanged
#       (ukeyd's measurement cache), so hashing is not what they pay. Figure: the median hook time
#       of the later starts as a ratio of `openssl dgst -sha256` of the parent in the same run
#       (goal: at most 0.05x).
#   (b) The seal at stop: a VM whose overlay holds 1 GiB stops; the libvirt hook's `release end`
#       waits while ukeyd hashes the overlay and seals its digest in the sealed store. Figure: the
#       release's time as a ratio of `openssl dgst -sha256` of that overlay (goal: at most 1.10x).
# Best of 3 for the peers and the release; the hook runs as libvirt runs it, the release build.
# Needs root (ukeyd holds measured files with fanotify).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.build/release
work=$(mktemp -d -t ukey-bench-life.XXXXXX)
ukeyd_pid=
trap '[ -n "$ukeyd_pid" ] && kill "$ukeyd_pid" 2> /dev/null; rm -rf "$work"' EXIT
export UKEY_CONFIG=/nonexistent
source scripts/bench-lib.sh
start_provisioned_ukeyd ""
head -c 4194304 /dev/urandom > "$work/vmlinuz"
head -c 8388608 /dev/urandom > "$work/initrd.img"
(yes "ukey bench parent image" || true) | head -c $((4 * 1073741824)) > "$work/parent.raw"

domain() {  # $1: the VM's name
    cat << EOF
<domain type='qemu'>
  <name>$1</name>
  <os><type arch='x86_64'>hvm</type><kernel>$work/vmlinuz</kernel><initrd>$work/initrd.img</initrd><cmdline>console=ttyS0</cmdline></os>
  <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$work/$1.qcow2'/><target dev='vda'/></disk></devices>
</domain>
EOF
}
cat > "$work/policy.yaml" << EOF
version: 1
mode: enforce
entities:
  - name: vmm
    parent: root
    kind: host
    components:
      - name: kernel
        digest: sha256:$(printf host | sha256sum | cut -d' ' -f1)
EOF
vms=$(seq -f "desk%02g" 1 20)
for vm in $vms sealer; do
    qemu-img create -q -f qcow2 -b parent.raw -F raw "$work/$vm.qcow2"
done
# The sealer's overlay holds 1 GiB the guest wrote.
qemu-io -f qcow2 -c "write -P 0x5a 0 1G" "$work/sealer.qcow2" > /dev/null
for vm in $vms sealer; do
    domain "$vm" > "$work/$vm.xml"
    # The first enrolment adds the parent; every later one reuses it.
    "$bin/ukeyctl" policy enroll-domain "$work/$vm.xml" -o "$work/policy.yaml" 2> /dev/null
done
"$bin/ukeyctl" policy sign "$work/policy.yaml" --key "$work/signer.key.pem" > /dev/null
"$bin/ukeyctl" policy load "$work/policy.yaml" > /dev/null
"$bin/ukeyctl" measure vmm kernel --digest "sha256:$(printf host | sha256sum | cut -d' ' -f1)" > /dev/null
hook() { "$bin/ukey-libvirt-hook" "$1" "$2" "$3" - < "$work/$1.xml"; }

echo
echo "a user VM's life (release build; peer: openssl dgst -sha256 in the same run)"
echo
# (a) Twenty starts over one parent, page cache warm for both sides alike.
cat "$work/parent.raw" > /dev/null
parent_time=$(best openssl dgst -sha256 "$work/parent.raw")
times=()
for vm in $vms; do
    start=$(seconds)
    hook "$vm" prepare begin
    times+=("$(elapsed "$start" "$(seconds)")")
    hook "$vm" started begin
done
grep -q '"cached":true' "$work/state/audit.log" || { echo "error: no later start took the parent from the measurement cache" >&2; exit 1; }
median=$(printf '%s\n' "${times[@]:1}" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
awk -v first="${times[0]}" -v m="$median" -v o="$parent_time" 'BEGIN {
    printf "  20 VMs over one 4 GiB parent: first start %.2f s; the 19 later starts median %.3f s, openssl dgst of the parent %.2f s: %.3fx (goal: at most 0.05x: %s)\n", first, m, o, m / o, (m / o <= 0.05 ? "met" : "NOT met")
}'
for vm in $vms; do hook "$vm" release end; done

# (b) The seal at stop of a 1 GiB overlay: started as QEMU would (its disk open, started begin),
# then the release, three times (each stop seals what the start before it found).
cat "$work/sealer.qcow2" > /dev/null
overlay_time=$(best openssl dgst -sha256 "$work/sealer.qcow2")
release_best=
for round in 1 2 3; do
    hook sealer prepare begin
    python3 -c 'import sys; open(sys.argv[1], "r+b").close()' "$work/sealer.qcow2"
    hook sealer started begin
    qemu-io -f qcow2 -c "write -P $round 0 64k" "$work/sealer.qcow2" > /dev/null
    cat "$work/sealer.qcow2" > /dev/null
    start=$(seconds)
    hook sealer release end 2> "$work/release.err"
    t=$(elapsed "$start" "$(seconds)")
    [ ! -s "$work/release.err" ] || { echo "error: the release did not seal: $(cat "$work/release.err")" >&2; exit 1; }
    if [ -z "$release_best" ] || awk -v t="$t" -v b="$release_best" 'BEGIN { exit !(t < b) }'; then release_best=$t; fi
done
sealed=$(grep -c '"vm-state-sealed"' "$work/state/audit.log" || true)
[ "$sealed" -ge 3 ] || { echo "error: $sealed seals recorded, 3 expected" >&2; exit 1; }
awk -v r="$release_best" -v o="$overlay_time" 'BEGIN {
    printf "  the seal at stop of a 1 GiB overlay: release %.2f s, openssl dgst of the overlay %.2f s: %.2fx (goal: at most 1.10x: %s)\n", r, o, r / o, (r / o <= 1.10 ? "met" : "NOT met")
}'
