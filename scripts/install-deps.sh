#!/usr/bin/env bash
# Installs the Debian packages ukey builds and tests against, when any is missing.
# Runs apt-get only when something is missing, so a second `make` costs nothing.
set -euo pipefail

# libssl-dev: the openssl CLI and headers, for independent checks of signatures and certificates.
# libtss2-dev, tpm2-tools, swtpm: the TPM backend, its independent checks, and the software TPM.
# libpcsclite-dev: the smart-card backend.
# python3-pip: for the python varlink client; util-linux: setpriv, to run test clients as another uid.
# qemu-utils: qemu-img, the independent judge of the qcow2 backing chains the libvirt hook reads;
# libxml2: what Foundation's XML parser (the domain XML) runs on.
# qemu-system-x86, libvirt-daemon-system, libvirt-clients, busybox-static: the end-to-end test's
# real hypervisor (libvirt 9.0 and QEMU) and its tiny guest's userland.
# pcscd, vsmartcard-vpcd, opensc, yubico-piv-tool, iproute2: the smart-card peers (pcscd with the
# virtual reader ukey-vcard plugs into, and the independent PIV clients that check it).
# systemd: systemd-socket-activate, which hands ukeyd its socket as systemd would (LISTEN_FDS).
# python3-venv, python3-gpg, libefivar1, curl, jq: Keylime's registrar, verifier and tenant for
# the fleet test (scripts/keylime-peer.sh makes their venv from PyPI).
# patchelf, dpkg-dev, lintian: make deb (the binaries' rpath to the Swift runtime ukey ships
# privately, the package itself, and Debian's own check of it).
names=(openssl libssl-dev libtss2-dev libpcsclite-dev tpm2-tools swtpm swtpm-tools python3 python3-pip util-linux qemu-utils libxml2
    qemu-system-x86 libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients busybox-static systemd
    pcscd vsmartcard-vpcd opensc yubico-piv-tool iproute2 python3-venv python3-gpg libefivar1 curl jq
    patchelf dpkg-dev lintian)

missing=()
for p in "${names[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "==> installing missing packages: ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: these packages are missing and installing them needs root: ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The python varlink package: an independent client of ukeyd's socket API, for the tests.
if ! python3 -c 'import varlink' 2>/dev/null; then
    echo "==> installing the python varlink package (PyPI)"
    python3 -m pip install --quiet --disable-pip-version-check varlink
fi

command -v swift >/dev/null || { echo "error: swift is not on PATH (Swift 6.3 is expected at /opt/swift)" >&2; exit 1; }
# gmssl: a pure-Python SM2/SM3 that shares no code with OpenSSL, to cross-check ukey's GM/T algorithms.
if ! python3 -c 'import gmssl' 2>/dev/null; then
    echo "==> installing the python gmssl package (PyPI)"
    python3 -m pip install --quiet --disable-pip-version-check gmssl
fi
