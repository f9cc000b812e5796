#!/usr/bin/env bash
# `make install` / `make uninstall`, and the layout `make deb` packs: ukey's files where an
# administrator expects them, from a release build.
#
#   scripts/install.sh install     DESTDIR=... PREFIX=/usr/local (default)
#   scripts/install.sh uninstall   removes exactly what install wrote (its manifest), then the
#                                  directories it made if they are empty; /etc/ukey/ukeyd.toml
#                                  is kept when it was changed, as dpkg keeps a conffile
#
#   PREFIX/sbin/ukeyd                          PREFIX/bin/ukeyctl, ukey-guard, ukey-qemu, ukey-vcard,
#   PREFIX/libexec/ukey/ukey-libvirt-hook        ukey-keylime-agent, ukey-vtpm-certs
#   /etc/libvirt/hooks/qemu.d/50-ukey -> the hook        PREFIX/lib/ukey/ the Swift runtime (rpath)
#   PREFIX/lib/systemd/system/*.service, .socket         PREFIX/lib/sysusers.d, tmpfiles.d/ukey.conf
#   /etc/ukey/ukeyd.toml (commented defaults), /etc/ukey/policies/
#   PREFIX/share/man/man{1,5,8}, bash/zsh/fish completions of ukeyctl, PREFIX/share/doc/ukey
#
# Debian has no Swift runtime package, so the runtime libraries the binaries need are copied
# into PREFIX/lib/ukey and each binary's rpath points there (and nowhere else).
set -euo pipefail
cd "$(dirname "$0")/.."
action=${1:?usage: scripts/install.sh install|uninstall}
destdir=${DESTDIR:-}
prefix=${PREFIX:-/usr/local}
sysconfdir=${SYSCONFDIR:-/etc}
build=${BUILD:-.build/release}
manpages=${MANPAGES:-.build/man}
manifest="$destdir$prefix/lib/ukey/installed-files"
binaries=(ukeyctl ukey-guard ukey-qemu ukey-vcard ukey-keylime-agent ukey-vtpm-certs)

case "$action" in
uninstall)
    [ -f "$manifest" ] || { echo "uninstall: no $manifest: nothing was installed with PREFIX=$prefix" >&2; exit 1; }
    config="$destdir$sysconfdir/ukey/ukeyd.toml"
    if [ -f "$config" ] && ! cmp -s "$config" packaging/ukeyd.toml; then
        echo "uninstall: keeping $config (changed since it was installed)"
    fi
    # Files and links first, then the directories install made, deepest first, when empty.
    while IFS= read -r path; do
        [ "$path" = "$sysconfdir/ukey/ukeyd.toml" ] && ! cmp -s "$destdir$path" packaging/ukeyd.toml && continue
        [ -d "$destdir$path" ] && [ ! -L "$destdir$path" ] && continue
        rm -f "$destdir$path"
    done < "$manifest"
    made=$(sort -r "$manifest.dirs" 2> /dev/null || true)
    rm -f "$manifest" "$manifest.dirs"
    rmdir "$destdir$prefix/lib/ukey" 2> /dev/null || true
    while IFS= read -r directory; do
        [ -n "$directory" ] && { rmdir "$destdir$directory" 2> /dev/null || true; }
    done <<< "$made"
    echo "uninstalled ukey from $destdir$prefix"
    exit 0
    ;;
install) ;;
*) echo "usage: scripts/install.sh install|uninstall" >&2; exit 2 ;;
esac

for binary in ukeyd ukey-libvirt-hook "${binaries[@]}"; do
    [ -x "$build/$binary" ] || { echo "install: $build/$binary is missing (swift build -c release)" >&2; exit 1; }
done
command -v patchelf > /dev/null || { echo "install: patchelf is missing (make deps installs it)" >&2; exit 1; }

[ -z "$destdir" ] || mkdir -p "$destdir"
installed=()
directories=()
make_dir() {  # $1: a directory (without DESTDIR), its mode
    local path=$1 mode=${2:-0755} step=""
    local IFS=/
    for part in ${path#/}; do
        step="$step/$part"
        if [ ! -d "$destdir$step" ]; then
            mkdir -m "$mode" "$destdir$step"
            directories+=("$step")
        fi
    done
}
put() {  # $1: source, $2: destination (without DESTDIR), $3: mode
    make_dir "$(dirname "$2")"
    install -m "$3" "$1" "$destdir$2"
    installed+=("$2")
}
link() {  # $1: target, $2: the link (without DESTDIR)
    make_dir "$(dirname "$2")"
    ln -sfn "$1" "$destdir$2"
    installed+=("$2")
}

# The Swift runtime the binaries link, from the toolchain's runtime directory.
runtime_dir=$(dirname "$(ldd "$build/ukeyd" | awk '/libswiftCore.so/ { print $3 }')")
runtime=()
for binary in ukeyd ukey-libvirt-hook "${binaries[@]}"; do
    while read -r library; do runtime+=("$library"); done < <(ldd "$build/$binary" | awk -v dir="$runtime_dir/" 'index($3, dir) == 1 { print $3 }')
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for library in $(printf '%s\n' "${runtime[@]}" | sort -u); do
    strip --strip-unneeded -o "$work/$(basename "$library")" "$library"
    put "$work/$(basename "$library")" "$prefix/lib/ukey/$(basename "$library")" 0644
done
stage_binary() {  # $1: the binary, $2: where
    strip -o "$work/$1" "$build/$1"
    patchelf --set-rpath "$prefix/lib/ukey" "$work/$1"
    put "$work/$1" "$2" 0755
}
stage_binary ukeyd "$prefix/sbin/ukeyd"
for binary in "${binaries[@]}"; do stage_binary "$binary" "$prefix/bin/$binary"; done
stage_binary ukey-libvirt-hook "$prefix/libexec/ukey/ukey-libvirt-hook"
link "$prefix/libexec/ukey/ukey-libvirt-hook" "$sysconfdir/libvirt/hooks/qemu.d/50-ukey"

# Units, with the binaries where this layout puts them.
for unit in systemd/*.service systemd/*.socket; do
    sed -e "s|/usr/local/bin/ukeyd|$prefix/sbin/ukeyd|g" -e "s|/usr/local/bin/|$prefix/bin/|g" \
        -e "s|/usr/share/doc/ukey/|$prefix/share/doc/ukey/|g" "$unit" > "$work/$(basename "$unit")"
    put "$work/$(basename "$unit")" "$prefix/lib/systemd/system/$(basename "$unit")" 0644
done
# The drop-ins for the TPM and card backends: the administrator adds the one the host needs.
for dropin in systemd/*.conf; do put "$dropin" "$prefix/share/ukey/systemd/$(basename "$dropin")" 0644; done
put packaging/sysusers.d-ukey.conf "$prefix/lib/sysusers.d/ukey.conf" 0644
put packaging/tmpfiles.d-ukey.conf "$prefix/lib/tmpfiles.d/ukey.conf" 0644
make_dir "$sysconfdir/ukey" 0755
make_dir "$sysconfdir/ukey/policies" 0755
if [ -e "$destdir$sysconfdir/ukey/ukeyd.toml" ] && ! cmp -s "$destdir$sysconfdir/ukey/ukeyd.toml" packaging/ukeyd.toml; then
    echo "install: keeping $destdir$sysconfdir/ukey/ukeyd.toml (changed); the new default is $prefix/share/ukey/ukeyd.toml"
else
    put packaging/ukeyd.toml "$sysconfdir/ukey/ukeyd.toml" 0644
fi
put packaging/ukeyd.toml "$prefix/share/ukey/ukeyd.toml" 0644
put contrib/keylime/ukey_policy.py "$prefix/share/ukey/keylime/ukey_policy.py" 0644

# Man pages (scripts/man.sh writes them) and ukeyctl's completions (its own argument parser's).
for page in "$manpages"/*.[158]; do
    [ -e "$page" ] || { echo "install: no man pages in $manpages (scripts/man.sh)" >&2; exit 1; }
    section=${page##*.}
    gzip -9n < "$page" > "$work/$(basename "$page").gz"
    put "$work/$(basename "$page").gz" "$prefix/share/man/man$section/$(basename "$page").gz" 0644
done
# bash sources its completions: the script's own #! line would only mislead.
"$build/ukeyctl" --generate-completion-script bash | sed '1{/^#!/d}' > "$work/ukeyctl.bash"
"$build/ukeyctl" --generate-completion-script zsh > "$work/_ukeyctl"
"$build/ukeyctl" --generate-completion-script fish > "$work/ukeyctl.fish"
put "$work/ukeyctl.bash" "$prefix/share/bash-completion/completions/ukeyctl" 0644
put "$work/_ukeyctl" "$prefix/share/zsh/vendor-completions/_ukeyctl" 0644
put "$work/ukeyctl.fish" "$prefix/share/fish/vendor_completions.d/ukeyctl.fish" 0644
for doc in README.md docs/*.md; do put "$doc" "$prefix/share/doc/ukey/$(basename "$doc")" 0644; done

# What uninstall removes: these files and links, then these directories when empty.
make_dir "$prefix/lib/ukey"
printf '%s\n' "${installed[@]}" > "$manifest"
printf '%s\n' "${directories[@]}" > "$manifest.dirs"
echo "installed ukey in $destdir$prefix (${#installed[@]} files; scripts/install.sh uninstall removes them)"
