#!/usr/bin/env bash
# `make demo`: the demo host's boot chain walked three times, in process, with the policy of
# policies/demo.yaml and stand-in image files: once as it should go, once with a tampered base
# image, once out of order. Each verdict is the paper's Theorem 1 at work.
set -euo pipefail
cd "$(dirname "$0")/.."

ukeyctl=.build/debug/ukeyctl
policy=policies/demo.yaml
work=$(mktemp -d -t ukey-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT

bold=$'\e[1m'; dim=$'\e[2m'; off=$'\e[0m'
if [ ! -t 1 ] || [ -n "${NO_COLOR:-}" ]; then bold=; dim=; off=; fi
say()  { printf '\n%s== %s ==%s\n' "$bold" "$*" "$off"; }
note() { printf '%s%s%s\n' "$dim" "$*" "$off"; }

say "ukey demo: a trusted root for a KVM host"
note "Every entity that boots is measured before its parent loads it, and trusted only if its"
note "digest matches the policy AND its parent was already trusted (the paper's Theorem 1)."
note "Working directory: $work"

say "1. The policy"
"$ukeyctl" policy lint "$policy" && echo "policy lint: $policy is clean"
"$ukeyctl" policy show "$policy"

say "2. The host's images (stand-ins written by scripts/demo-images.sh)"
scripts/demo-images.sh "$work/host" "$policy"
(cd "$work/host" && find . -type f | sed 's|^\.||' | sort | sed 's/^/  /')

say "3. Boot in order: every entity validated by its parent"
"$ukeyctl" policy simulate "$policy" --root "$work/host" --event-log "$work/eventlog.bin"
echo
note "The event log (TCG PC Client crypto-agile format), replayed by tpm2-tools, not by us:"
if command -v tpm2_eventlog >/dev/null; then
    tpm2_eventlog "$work/eventlog.bin" 2>/dev/null | sed -n '/^pcrs:/,$p' | sed 's/^/  /'
else
    echo "  (tpm2_eventlog is not installed; make test installs it)"
fi

say "4. Someone tampers with the parent OS image"
printf 'rootkit' >> "$work/host/var/lib/libvirt/images/debian-12-base.qcow2"
note "appended 7 bytes to /var/lib/libvirt/images/debian-12-base.qcow2"
if "$ukeyctl" policy simulate "$policy" --root "$work/host"; then
    echo "UNEXPECTED: the tampered image was accepted" >&2; exit 1
fi
note "The base image is refused, and both user VMs layered on it are untrusted with it;"
note "the IO VM's branch is untouched."

say "5. Untampered images, loaded out of order"
rm -rf "$work/host" && scripts/demo-images.sh "$work/host" "$policy"
note "The hypervisor starts 'office' before its base image was validated:"
if "$ukeyctl" policy simulate "$policy" --root "$work/host" --order vmm,office,debian-base,dev; then
    echo "UNEXPECTED: an out-of-order boot was trusted" >&2; exit 1
fi
note "Its files are fine, but trust never flowed to it through its parent: parent-not-trusted,"
note "and nothing can make it trusted again until the next boot."

say "Done"
echo "Three boots, one policy: trusted in order; a tampered image refused, with the VMs layered on"
echo "it and the rest of the host unaffected; an out-of-order load refused though its bytes were right."
