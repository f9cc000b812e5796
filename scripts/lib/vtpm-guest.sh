# Sourced by scripts/e2e.sh (and scripts/lib/vtpm-guest-selftest.sh): the guest side of the vTPM
# test. A busybox initramfs guest, given a TPM 2.0 (swtpm behind QEMU's tpm-crb), proves on its
# serial console that
#   - it reads the EK certificate swtpm_setup --create-ek-cert wrote (NV index 0x1c00002):
#       UKEY-VTPM-EK <hex of the DER>        or  UKEY-VTPM-EK none
#   - on its first boot it seals a fresh random secret into a persistent object (0x81000010):
#       UKEY-VTPM-SEALED <32 hex digits>
#   - on later boots (same swtpm state) it unseals that secret:
#       UKEY-VTPM-UNSEALED <32 hex digits>
#   - with no TPM (no /dev/tpmrm0 after ~2 s):  UKEY-VTPM-NONE
#   - a failed step:  UKEY-VTPM-ERROR <what failed>: <the tool's stderr, on one line>
# The Debian cloud kernel builds tpm_crb and tpm_tis in (no module to load), and makes
# /dev/tpmrm0 (the kernel's resource manager, which flushes each tool's transient objects).
#
#   vtpm_guest_install ROOT     copies tpm2-tools (the programs the snippet runs), every shared
#                               library they need, the TCTI library tss2 dlopens, and the dynamic
#                               loader into the initramfs tree ROOT, at the host's paths.
#   vtpm_guest_init_snippet     prints the busybox-sh fragment for the guest's /init, to be pasted
#                               after /proc, /sys and devtmpfs /dev are mounted. It never exits.

vtpm_guest_tcti=device:/dev/tpmrm0
vtpm_guest_tools="tpm2_getcap tpm2_nvread tpm2_createprimary tpm2_create tpm2_load tpm2_evictcontrol tpm2_unseal"
vtpm_guest_ek_index=0x1c00002
vtpm_guest_seal_handle=0x81000010

# Copies $1 (a file on the host) to ROOT at the same path, following symlinks.
_vtpm_guest_copy() {  # ROOT FILE
    mkdir -p "$1$(dirname "$2")" && cp -L "$2" "$1$2"
}

vtpm_guest_install() {  # ROOT
    local root=${1:?vtpm_guest_install: needs the initramfs root} tool path real name elf library
    local elves=() tctildr tcti
    [ -d "$root" ] || { echo "vtpm_guest_install: $root is not a directory" >&2; return 1; }
    mkdir -p "$root/usr/bin" "$root/tmp" || return 1
    # Debian's tpm2-tools is one multicall program (/usr/bin/tpm2) with a tpm2_<tool> symlink for
    # each tool; it dispatches on its argv[0]. Copy the program once, and keep the symlinks.
    for tool in $vtpm_guest_tools; do
        path=$(command -v "$tool") || { echo "vtpm_guest_install: $tool is missing (apt-get install tpm2-tools)" >&2; return 1; }
        real=$(readlink -f "$path")
        name=$(basename "$real")
        case " ${elves[*]} " in *" $real "*) ;; *) elves+=("$real") ;; esac
        [ -e "$root/usr/bin/$name" ] || cp "$real" "$root/usr/bin/$name" || return 1
        [ "$name" = "$tool" ] || ln -sfn "$name" "$root/usr/bin/$tool" || return 1
    done
    # tss2's TCTI loader (libtss2-tctildr) dlopens libtss2-tcti-<name>.so.0 at run time, which
    # ldd does not list: the device TCTI, from the loader's own directory.
    tctildr=$(ldd "${elves[0]}" | awk '/libtss2-tctildr\.so/ && $3 ~ /^\// { print $3; exit }')
    [ -n "$tctildr" ] || { echo "vtpm_guest_install: ${elves[0]} does not link libtss2-tctildr" >&2; return 1; }
    tcti=$(dirname "$tctildr")/libtss2-tcti-device.so.0
    [ -e "$tcti" ] || { echo "vtpm_guest_install: $tcti is missing (apt-get install libtss2-tcti-device0)" >&2; return 1; }
    _vtpm_guest_copy "$root" "$tcti" || return 1
    elves+=("$tcti")
    # Every shared library each of them needs (the dynamic loader too), at the paths ldd resolves.
    for elf in "${elves[@]}"; do
        for library in $(ldd "$elf" | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }'); do
            [ -e "$root$library" ] || _vtpm_guest_copy "$root" "$library" || return 1
        done
    done
}

vtpm_guest_init_snippet() {
    cat << EOF
# The vTPM: the EK certificate, and a secret sealed on the first boot and unsealed on later ones.
export TPM2TOOLS_TCTI=$vtpm_guest_tcti
vtpm_wait=0
while [ ! -c /dev/tpmrm0 ] && [ \$vtpm_wait -lt 10 ]; do /bin/busybox sleep 0.2; vtpm_wait=\$((vtpm_wait + 1)); done
if [ -c /dev/tpmrm0 ]; then
    /bin/busybox mkdir -p /tmp/vtpm
    /bin/busybox mount -t tmpfs -o size=1m,mode=0700 tmpfs /tmp/vtpm
    (
        t=/tmp/vtpm
        vtpm_error() { echo "UKEY-VTPM-ERROR \$1: \$(/bin/busybox tr -s '\n\r' '  ' < \$t/err)"; }
        if ! /usr/bin/tpm2_getcap handles-nv-index > \$t/nv 2> \$t/err; then
            vtpm_error "tpm2_getcap handles-nv-index"
        elif ! /bin/busybox grep -qix -- '- $vtpm_guest_ek_index' \$t/nv; then
            echo "UKEY-VTPM-EK none"
        elif ! /usr/bin/tpm2_nvread $vtpm_guest_ek_index -o \$t/ek.der 2> \$t/err; then
            vtpm_error "tpm2_nvread $vtpm_guest_ek_index"
        else
            echo "UKEY-VTPM-EK \$(/bin/busybox od -An -v -tx1 \$t/ek.der | /bin/busybox tr -d ' \n')"
        fi
        vtpm_seal() {
            if ! /usr/bin/tpm2_getcap handles-persistent > \$t/persistent 2> \$t/err; then
                vtpm_error "tpm2_getcap handles-persistent"
                return
            fi
            if /bin/busybox grep -qix -- '- $vtpm_guest_seal_handle' \$t/persistent; then
                if /usr/bin/tpm2_unseal -c $vtpm_guest_seal_handle -o \$t/secret 2> \$t/err; then
                    echo "UKEY-VTPM-UNSEALED \$(/bin/busybox cat \$t/secret)"
                else
                    vtpm_error "tpm2_unseal -c $vtpm_guest_seal_handle"
                fi
                return
            fi
            /bin/busybox od -An -v -tx1 -N16 /dev/urandom | /bin/busybox tr -d ' \n' > \$t/secret
            /usr/bin/tpm2_createprimary -Q -C o -c \$t/primary.ctx 2> \$t/err || { vtpm_error "tpm2_createprimary -C o"; return; }
            /usr/bin/tpm2_create -Q -C \$t/primary.ctx -i \$t/secret -u \$t/seal.pub -r \$t/seal.priv 2> \$t/err || { vtpm_error "tpm2_create (seal)"; return; }
            /usr/bin/tpm2_load -Q -C \$t/primary.ctx -u \$t/seal.pub -r \$t/seal.priv -c \$t/seal.ctx 2> \$t/err || { vtpm_error "tpm2_load"; return; }
            /usr/bin/tpm2_evictcontrol -Q -C o -c \$t/seal.ctx $vtpm_guest_seal_handle 2> \$t/err || { vtpm_error "tpm2_evictcontrol $vtpm_guest_seal_handle"; return; }
            echo "UKEY-VTPM-SEALED \$(/bin/busybox cat \$t/secret)"
        }
        vtpm_seal
    )
    # The tmpfs goes, and the secret with it.
    /bin/busybox umount /tmp/vtpm
else
    echo "UKEY-VTPM-NONE"
fi
EOF
}
