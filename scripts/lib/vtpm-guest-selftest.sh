#!/usr/bin/env bash
# The standalone proof of scripts/lib/vtpm-guest.sh: a busybox initramfs guest (the Debian cloud
# kernel scripts/e2e.sh uses, from its cache when there) booted twice under QEMU (TCG) against the
# same swtpm state, with an EK certificate from a throwaway swtpm-localca. Checks that
#   - boot 1 prints the EK certificate, which openssl parses and verifies up to the localca's root;
#   - boot 1 seals a secret S, and boot 2 unseals the same S;
#   - a third boot, with no TPM, says so and goes on.
# Needs qemu-system-x86_64, swtpm (+ swtpm-tools), tpm2-tools, busybox, openssl. Touches nothing
# outside its temp dir (and e2e.sh's kernel cache, which it fills the way e2e.sh does if empty).
# Everything it starts it stops by PID.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/vtpm-guest.sh

for tool in qemu-system-x86_64 swtpm swtpm_setup swtpm_localca busybox openssl ldd; do
    command -v "$tool" > /dev/null || { echo "vtpm-selftest: $tool is missing" >&2; exit 1; }
done

work=$(mktemp -d -t ukey-vtpm-selftest.XXXXXX)
pids=()
passed=0
failed=0
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2> /dev/null || true; done
    # UKEY_VTPM_SELFTEST_KEEP=1 keeps the consoles, the initramfs and the swtpm state to look at.
    if [ "${UKEY_VTPM_SELFTEST_KEEP:-}" = 1 ]; then echo "vtpm-selftest: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

ok() { echo "  PASS $*"; passed=$((passed + 1)); }
bad() { echo "  FAIL $*"; failed=$((failed + 1)); }
seconds() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

echo "==> the guest: the Debian cloud kernel, a busybox initramfs with tpm2-tools"
cache=${UKEY_E2E_CACHE:-/var/cache/ukey-e2e}
kernel_pkg() { apt-cache depends linux-image-cloud-amd64 2> /dev/null | awk '/Depends: linux-image-/ { print $2; exit }'; }
kernel_pkg=$(kernel_pkg)
if [ -z "$kernel_pkg" ]; then
    apt-get update -qq
    kernel_pkg=$(kernel_pkg)
fi
[ -n "$kernel_pkg" ] || { echo "vtpm-selftest: apt knows no linux-image-cloud-amd64" >&2; exit 1; }
if [ ! -s "$cache/$kernel_pkg.vmlinuz" ]; then
    mkdir -p "$cache"
    (cd "$work" && apt-get download -q "$kernel_pkg" > /dev/null 2>&1)
    dpkg -x "$work"/"$kernel_pkg"_*.deb "$work/kernel"
    cp "$work"/kernel/boot/vmlinuz-* "$cache/$kernel_pkg.vmlinuz"
    rm -rf "$work/kernel" "$work"/*.deb
fi
kernel=$cache/$kernel_pkg.vmlinuz

# Two trees: the bare one (busybox and an /init), to measure what the vTPM part adds.
make_initramfs() {  # DIR with-vtpm|bare
    mkdir -p "$1/bin" "$1/proc" "$1/sys" "$1/dev" "$1/tmp"
    cp "$(command -v busybox)" "$1/bin/busybox"
    {
        cat << 'EOF'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc 2> /dev/null
/bin/busybox mount -t sysfs sysfs /sys 2> /dev/null
/bin/busybox mount -t devtmpfs devtmpfs /dev 2> /dev/null
EOF
        if [ "$2" = with-vtpm ]; then
            vtpm_guest_init_snippet
            # For the report: which driver the kernel bound to the TPM.
            cat << 'EOF'
for dev in /sys/class/tpm/tpm*; do
    [ -e "$dev/device/driver" ] && echo "UKEY-SELFTEST-TPM ${dev##*/} driver=$(/bin/busybox basename "$(/bin/busybox readlink "$dev/device/driver")") major=$(/bin/busybox cat "$dev/tpm_version_major" 2> /dev/null)"
done
EOF
        fi
        cat << 'EOF'
echo "UKEY-GUEST-BOOTED"
/bin/busybox poweroff -f
EOF
    } > "$1/init"
    chmod 755 "$1/init"
    if [ "$2" = with-vtpm ]; then vtpm_guest_install "$1"; fi
    (cd "$1" && find . | busybox cpio -o -H newc 2> /dev/null | gzip -1 > "$1.gz")
}
make_initramfs "$work/bare" bare
make_initramfs "$work/initramfs" with-vtpm
bare_tree=$(du -sb "$work/bare" | cut -f1)
vtpm_tree=$(du -sb "$work/initramfs" | cut -f1)
bare_gz=$(stat -c %s "$work/bare.gz")
vtpm_gz=$(stat -c %s "$work/initramfs.gz")
echo "    initramfs: $((bare_gz / 1024)) KiB bare, $((vtpm_gz / 1024)) KiB with the vTPM part (+$(((vtpm_gz - bare_gz) / 1024)) KiB gzip -1; +$(((vtpm_tree - bare_tree) / 1024)) KiB unpacked)"

echo "==> the vTPM: swtpm state with an EK certificate from a throwaway localca"
mkdir -p "$work/ca" "$work/state"
cat > "$work/swtpm-localca.conf" << EOF
statedir = $work/ca
signingkey = $work/ca/signkey.pem
issuercert = $work/ca/issuercert.pem
certserial = $work/ca/certserial
EOF
printf -- '--platform-manufacturer ukey\n--platform-version 2.1\n--platform-model QEMU\n' > "$work/swtpm-localca.options"
cat > "$work/swtpm_setup.conf" << EOF
create_certs_tool = $(command -v swtpm_localca)
create_certs_tool_config = $work/swtpm-localca.conf
create_certs_tool_options = $work/swtpm-localca.options
active_pcr_banks = sha256
EOF
if ! swtpm_setup --tpm2 --tpmstate "$work/state" --create-ek-cert --config "$work/swtpm_setup.conf" \
    --logfile "$work/swtpm_setup.log" > /dev/null 2>&1; then
    cat "$work/swtpm_setup.log" >&2
    echo "vtpm-selftest: swtpm_setup failed" >&2
    exit 1
fi
# The localca makes a self-signed root and an issuer (intermediate) signed by it; the EK
# certificate is signed by the issuer.
root_ca=$work/ca/swtpm-localca-rootca-cert.pem
issuer=$work/ca/issuercert.pem
[ -s "$root_ca" ] && [ -s "$issuer" ] || { echo "vtpm-selftest: the localca wrote no root/issuer certificate" >&2; ls -la "$work/ca" >&2; exit 1; }

boot() {  # N [no-tpm]: boots the guest once (with a TPM: against $work/state); its console in $work/console.N.log
    local log=$work/console.$1.log sock=$work/swtpm.$1.sock swtpm_pid= qemu_pid start rc=0 tpm_args=()
    if [ "${2:-}" != no-tpm ]; then
        swtpm socket --tpm2 --tpmstate dir="$work/state" --ctrl type=unixio,path="$sock" --terminate \
            --log file="$work/swtpm.$1.log" &
        swtpm_pid=$!
        pids+=("$swtpm_pid")
        for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
        [ -S "$sock" ] || { echo "vtpm-selftest: swtpm made no socket" >&2; return 1; }
        tpm_args=(-chardev socket,id=chrtpm,path="$sock" -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-crb,tpmdev=tpm0)
    fi
    start=$(seconds)
    timeout 120 qemu-system-x86_64 -machine q35 -accel tcg -m 512 -no-reboot -nic none -display none \
        -serial file:"$log" -kernel "$kernel" -initrd "$work/initramfs.gz" -append 'console=ttyS0 panic=-1' \
        "${tpm_args[@]}" > "$work/qemu.$1.out" 2>&1 &
    qemu_pid=$!
    pids+=("$qemu_pid")
    wait "$qemu_pid" || rc=$?
    boot_time[$1]=$(elapsed "$start" "$(seconds)")
    [ "$rc" -eq 0 ] || echo "    boot $1: QEMU exited $rc (124: timed out): $(tr '\n' ' ' < "$work/qemu.$1.out")"
    if [ -n "$swtpm_pid" ]; then
        # --terminate: swtpm goes when QEMU closes the connection; it must be gone (its lock on the
        # state released) before the next boot starts another.
        for _ in $(seq 100); do kill -0 "$swtpm_pid" 2> /dev/null || break; sleep 0.05; done
        kill "$swtpm_pid" 2> /dev/null || true
        wait "$swtpm_pid" 2> /dev/null || true
    fi
    echo "    boot $1: ${boot_time[$1]} s"
    tr -d '\r' < "$log" | grep -a '^UKEY-' | cut -c1-100 | sed 's/^/      /' || true
}
# The marker lines of a boot's console: $1 boot, $2 marker. Prints the rest of the line.
marker() { tr -d '\r' < "$work/console.$1.log" | awk -v m="$2" 'index($0, m " ") == 1 { print substr($0, length(m) + 2); exit }'; }

declare -a boot_time
echo "==> boot 1 (fresh vTPM)"
boot 1
echo "==> boot 2 (same vTPM state, swtpm restarted)"
boot 2
echo "==> boot 3 (no TPM)"
boot 3 no-tpm

echo "==> checks"
for n in 1 2 3; do
    if grep -aq '^UKEY-GUEST-BOOTED' "$work/console.$n.log"; then ok "boot $n ran /init to its end"; else bad "boot $n did not reach the end of /init"; fi
    if [ "$n" -ne 3 ] && grep -aq '^UKEY-VTPM-NONE' "$work/console.$n.log"; then bad "boot $n saw no /dev/tpmrm0"; fi
    errors=$(tr -d '\r' < "$work/console.$n.log" | grep -a '^UKEY-VTPM-ERROR' || true)
    if [ -n "$errors" ]; then bad "boot $n: $errors"; fi
done
ek_hex=$(marker 1 UKEY-VTPM-EK)
if [ -z "$ek_hex" ] || [ "$ek_hex" = none ]; then
    bad "boot 1 printed no EK certificate (${ek_hex:-no UKEY-VTPM-EK line})"
elif ! printf '%s' "$ek_hex" | grep -Eqx '([0-9a-f]{2})+'; then
    bad "boot 1's EK line is not hex: ${ek_hex:0:80}..."
else
    printf '%s' "$ek_hex" | busybox xxd -r -p > "$work/ek.der"
    if openssl x509 -inform DER -in "$work/ek.der" -noout 2> "$work/x509.err"; then
        ok "boot 1's EK certificate ($(stat -c %s "$work/ek.der") bytes DER) parses: $(openssl x509 -inform DER -in "$work/ek.der" -noout -issuer -subject | tr '\n' ' ')"
        if verify=$(openssl verify -CAfile "$root_ca" -untrusted "$issuer" "$work/ek.der" 2>&1); then
            ok "it verifies against the localca (root + issuer): $verify"
        else
            bad "it does not verify against the localca: $(echo "$verify" | tr '\n' ' ')"
        fi
    else
        bad "boot 1's EK certificate does not parse: $(tr '\n' ' ' < "$work/x509.err")"
    fi
fi
sealed=$(marker 1 UKEY-VTPM-SEALED)
unsealed=$(marker 2 UKEY-VTPM-UNSEALED)
if printf '%s' "$sealed" | grep -Eqx '[0-9a-f]{32}'; then ok "boot 1 sealed a fresh secret $sealed"; else bad "boot 1 sealed no secret (${sealed:-no UKEY-VTPM-SEALED line})"; fi
if [ -n "$unsealed" ] && [ "$unsealed" = "$sealed" ]; then
    ok "boot 2 unsealed the same secret $unsealed"
else
    bad "boot 2 did not unseal boot 1's secret (${unsealed:-no UKEY-VTPM-UNSEALED line}; sealed ${sealed:-nothing})"
fi
if grep -aq '^UKEY-VTPM-SEALED' "$work/console.2.log"; then bad "boot 2 sealed again (the persistent object did not survive)"; fi
if grep -aq '^UKEY-VTPM-NONE' "$work/console.3.log"; then ok "boot 3 (no TPM) printed UKEY-VTPM-NONE"; else bad "boot 3 (no TPM) did not print UKEY-VTPM-NONE"; fi

echo "==> $passed passed, $failed failed (boots: ${boot_time[1]:-?} s, ${boot_time[2]:-?} s; no TPM: ${boot_time[3]:-?} s)"
if [ "$failed" -ne 0 ]; then
    echo "--- console of boot 1 (last 40 lines)"; tr -d '\r' < "$work/console.1.log" | tail -40 | cut -c1-200
    echo "--- console of boot 2 (last 40 lines)"; tr -d '\r' < "$work/console.2.log" | tail -40 | cut -c1-200
    echo "--- console of boot 3 (last 20 lines)"; tr -d '\r' < "$work/console.3.log" | tail -20 | cut -c1-200
    exit 1
fi
