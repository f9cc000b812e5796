#!/usr/bin/env bash
# The package on this machine, as an administrator would use it: make deb, dpkg -i, the e2e
# against the installed files (UKEY_PREFIX=/usr), dpkg -r (only the conffile stays), dpkg -P
# (nothing of the package stays). Run by make test after the e2e; root only.
set -euo pipefail
cd "$(dirname "$0")/.."
if dpkg-query -W -f='${Status}' ukey 2> /dev/null | grep -q "installed"; then
    echo "deb-test: a ukey package is installed on this machine; this test would remove it. Remove it first (dpkg -P ukey)." >&2
    exit 1
fi
passed=0
failed=0
ok() { echo "  PASS $*"; passed=$((passed + 1)); }
bad() { echo "  FAIL $*"; failed=$((failed + 1)); }
work=$(mktemp -d -t ukey-deb-test.XXXXXX)
cleanup() {
    dpkg -P ukey > /dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

UKEY_DEB_BUILD=${UKEY_DEB_BUILD:-debug} scripts/deb.sh | tee "$work/deb.log" | grep -E "^(==>|wrote|[EW]: )" || true
package=$(ls -t ukey_*.deb | head -1)
grep -q "no errors" "$work/deb.log" && ok "make deb: $package, lintian without errors ($(grep -c '^W: ' .build-deb/lintian.txt || true) warnings)" \
    || bad "make deb: $(tail -3 "$work/deb.log" | tr '\n' ' ')"

echo "==> make install DESTDIR=... PREFIX=/usr/local, then make uninstall"
root="$work/root"
mkdir -p "$root"
DESTDIR="$root" PREFIX=/usr/local BUILD=.build/${UKEY_DEB_BUILD:-debug} scripts/install.sh install > "$work/make-install.log"
installed=$(find "$root" -not -type d | wc -l)
layout_ok=1
for path in usr/local/sbin/ukeyd usr/local/bin/ukeyctl usr/local/libexec/ukey/ukey-libvirt-hook etc/libvirt/hooks/qemu.d/50-ukey \
    usr/local/lib/ukey/libswiftCore.so usr/local/lib/systemd/system/ukeyd.service etc/ukey/ukeyd.toml usr/local/share/man/man5/ukeyd.toml.5.gz; do
    [ -e "$root/$path" ] || [ -L "$root/$path" ] || { layout_ok=; bad "make install did not write $path"; }
done
grep -q "ExecStart=/usr/local/sbin/ukeyd" "$root/usr/local/lib/systemd/system/ukeyd.service" || { layout_ok=; bad "the installed unit does not run /usr/local/sbin/ukeyd"; }
DESTDIR="$root" PREFIX=/usr/local scripts/install.sh uninstall > "$work/make-uninstall.log"
left=$(find "$root" -mindepth 1 | head -5 | tr '\n' ' ')
if [ -n "$layout_ok" ] && [ -z "$left" ]; then
    ok "make install wrote $installed files in the package's layout under PREFIX=/usr/local; make uninstall removed them all, and the directories it made"
else
    bad "make uninstall left: ${left:-nothing}"
fi

echo "==> dpkg -i $package"
dpkg -i "$package" > "$work/install.log" 2>&1 || { cat "$work/install.log"; bad "dpkg -i failed"; exit 1; }
dpkg -L ukey | while read -r path; do [ -d "$path" ] || echo "$path"; done > "$work/files"
ok "dpkg -i: $(wc -l < "$work/files") files ($(du -sh /usr/lib/ukey | cut -f1) of Swift runtime in /usr/lib/ukey)"
for page in ukeyctl ukeyd ukeyd.toml ukey-libvirt-hook ukey-qemu ukey-guard ukey-vcard; do
    if man -w "$page" > /dev/null 2>&1 && [ -n "$(man "$page" 2> /dev/null)" ]; then :; else bad "man $page: no page"; continue; fi
done
grep -q "vtpm" <<< "$(man ukeyd.toml 2> /dev/null)" && grep -q "Exit status" <<< "$(man ukeyctl 2> /dev/null)" \
    && ok "man ukeyctl (its exit codes), man ukeyd.toml (every setting) and the other pages are installed" \
    || bad "man ukeyctl / man ukeyd.toml lack what they should say"
libraries=$(ldd /usr/sbin/ukeyd)
if grep -q "/usr/lib/ukey/libswiftCore.so" <<< "$libraries" && ! grep -q "not found" <<< "$libraries"; then
    ok "ukeyd links the Swift runtime from /usr/lib/ukey (rpath $(patchelf --print-rpath /usr/sbin/ukeyd))"
else
    bad "ukeyd's libraries: $(grep -E 'swift|not found' <<< "$libraries" | head -3 | tr '\n' ' ')"
fi
[ -L /etc/libvirt/hooks/qemu.d/50-ukey ] && [ -x /etc/libvirt/hooks/qemu.d/50-ukey ] \
    && ok "the libvirt hook is /etc/libvirt/hooks/qemu.d/50-ukey" || bad "no libvirt hook at /etc/libvirt/hooks/qemu.d/50-ukey"
getent group ukey > /dev/null && getent group ukey-admin > /dev/null && ok "postinst made the groups ukey and ukey-admin" \
    || bad "the groups ukey and ukey-admin are missing"
/usr/bin/ukeyctl --help > /dev/null && ok "ukeyctl runs" || bad "ukeyctl does not run"

echo "==> the e2e against the installed files (UKEY_PREFIX=/usr)"
if UKEY_PREFIX=/usr scripts/e2e.sh > "$work/e2e.log" 2>&1; then
    ok "the e2e against the installed ukeyd, hook, ukeyctl, ukey-qemu and ukey-guard: $(grep 'e2e:' "$work/e2e.log")"
else
    grep -E "FAIL|e2e:" "$work/e2e.log" | head -10
    bad "the e2e against the installed files: $(grep 'e2e:' "$work/e2e.log" || tail -3 "$work/e2e.log")"
fi
[ -L /etc/libvirt/hooks/qemu.d/50-ukey ] || bad "the e2e did not put the package's hook back"

# The package's files (not directories) still on disk.
still_there() {
    while read -r path; do
        if [ -e "$path" ] || [ -L "$path" ]; then printf '%s ' "$path"; fi
    done < "$work/files"
}
echo "==> dpkg -r ukey, then dpkg -P ukey"
dpkg -r ukey > "$work/remove.log" 2>&1 || { cat "$work/remove.log"; bad "dpkg -r failed"; }
left=$(still_there)
[ "$left" = "/etc/ukey/ukeyd.toml " ] && ok "dpkg -r removed every file but the conffile /etc/ukey/ukeyd.toml" \
    || bad "after dpkg -r, left: ${left:-nothing, not even the conffile}"
dpkg -P ukey > "$work/purge.log" 2>&1 || { cat "$work/purge.log"; bad "dpkg -P failed"; }
left=$(still_there)
[ -z "$left" ] && [ ! -e /etc/ukey ] && ! dpkg-query -W ukey > /dev/null 2>&1 \
    && ok "dpkg -P left nothing of the package (nor /etc/ukey)" || bad "after dpkg -P, left: $left $( [ -e /etc/ukey ] && echo /etc/ukey)"
echo "deb-test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
