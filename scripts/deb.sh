#!/usr/bin/env bash
# `make deb`: ukey_<version>_amd64.deb from a release build, in the layout of scripts/install.sh
# (PREFIX=/usr), with Debian's maintainer scripts (packaging/deb/) and lintian's check of it.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/.*static let version = "\(.*\)".*/\1/p' Sources/UkeyDaemon/Services/Introspection/DaemonVersion.swift)
[ -n "$version" ] || { echo "deb: cannot read the version from DaemonVersion.swift" >&2; exit 1; }
arch=$(dpkg --print-architecture)
package="ukey_${version}_${arch}.deb"
stage=.build-deb/ukey
# The package ships a release build. make test packs the debug build it has already made
# (UKEY_DEB_BUILD=debug): the same layout, scripts and checks, without a second full build.
configuration=${UKEY_DEB_BUILD:-release}
echo "==> swift build -c $configuration"
swift build -c "$configuration"
build=.build/$configuration
echo "==> man pages"
BUILD=$build scripts/man.sh
echo "==> staging $stage"
rm -rf "$stage" && mkdir -p "$stage"
DESTDIR="$stage" PREFIX=/usr BUILD=$build scripts/install.sh install > /dev/null
# dpkg keeps the list of a package's files: install's own manifest is not shipped.
rm -f "$stage/usr/lib/ukey/installed-files" "$stage/usr/lib/ukey/installed-files.dirs"

doc="$stage/usr/share/doc/ukey"
cat > "$doc/copyright" << 'EOF2'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: ukey
Comment: ukey, a trusted root for KVM hosts. The Swift runtime libraries in /usr/lib/ukey are
 the Swift project's (Apache-2.0 with Runtime Library Exception), shipped privately because
 Debian has no Swift runtime package.

Files: *
Copyright: 2025-2026 the ukey developers
License: all-rights-reserved
 No licence has been chosen for ukey yet; until one is, the authors keep all rights.

Files: usr/lib/ukey/*
Copyright: Apple Inc. and the Swift project authors
License: Apache-2.0 with Runtime Library Exception
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0. Runtime Library Exception: as an exception, if you use
 this Software to compile your source code and portions of this Software are embedded into the
 binary product as a result, you may redistribute such product without providing attribution as
 would otherwise be required by Sections 4(a), 4(b) and 4(d) of the License.
EOF2
printf 'ukey (%s) unstable; urgency=medium\n\n  * Built from %s.\n\n -- ukey developers <maintainers@ukey.dev>  %s\n' \
    "$version" "$(git rev-parse --short HEAD 2> /dev/null || echo a tree)" "$(date -R)" | gzip -9n > "$doc/changelog.gz"

# Overrides, each with why (lintian shows them as overridden, not hidden).
mkdir -p "$stage/usr/share/lintian/overrides"
cat > "$stage/usr/share/lintian/overrides/ukey" << 'EOF2'
# Yams, ukey's YAML parser (policies), compiles libyaml's C sources into the binaries that read
# policies; it cannot link Debian's libyaml-0-2. The copy is the one Yams pins.
ukey: embedded-library libyaml [usr/bin/ukeyctl]
ukey: embedded-library libyaml [usr/sbin/ukeyd]
EOF2
mkdir -p "$stage/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" << EOF2
Package: ukey
Version: $version
Architecture: $arch
Maintainer: ukey developers <maintainers@ukey.dev>
Installed-Size: $size
Depends: libc6 (>= 2.34), libssl3, libtss2-esys-3.0.2-0, libtss2-tctildr0, libtss2-mu0, libtss2-rc0, libtss2-sys1, libpcsclite1, libstdc++6, libgcc-s1, systemd | systemd-standalone-sysusers | opensysusers
Recommends: libvirt-daemon-system, qemu-system-x86
Suggests: swtpm, swtpm-tools, tpm2-tools, pcscd
Section: admin
Priority: optional
Description: trusted root for KVM hosts
 ukey keeps the expected measurements of everything that boots on a
 hypervisor host and validates each entity before its parent loads it: the
 host, service VMs, user VMs, their loaders and kernels, then each VM's vTPM.
 Its daemon, ukeyd, answers libvirt's hook (and ukey-qemu) over a varlink
 socket, authenticates users by PIN and certificate, whitelists applications
 per VM (ukey-guard), keeps a tamper-evident audit log and enforces a signed
 policy, with its secrets in software, a TPM 2.0 or a PIV card.
EOF2
echo "/etc/ukey/ukeyd.toml" > "$stage/DEBIAN/conffiles"
for script in postinst prerm postrm; do install -m 0755 "packaging/deb/$script" "$stage/DEBIAN/$script"; done
# Every file root's, whoever built it.
echo "==> dpkg-deb --build"
dpkg-deb --root-owner-group --build "$stage" "$package" > /dev/null
echo "==> lintian $package"
lintian --no-tag-display-limit "$package" > .build-deb/lintian.txt 2>&1 || true
cat .build-deb/lintian.txt
if grep -q '^E: ' .build-deb/lintian.txt; then
    echo "deb: lintian found errors" >&2
    exit 1
fi
echo "wrote $package ($(du -h "$package" | cut -f1)); lintian: $(grep -c '^W: ' .build-deb/lintian.txt || true) warnings, no errors"
