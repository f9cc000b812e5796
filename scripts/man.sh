#!/usr/bin/env bash
# Writes ukey's man pages into .build/man (make deb and make install take them from there):
# - from each program's own argument parser (swift-argument-parser's generate-manual, run on the
#   built binary): ukeyctl(1) with its subcommands, ukeyd(8), ukey-guard(8), ukey-vcard(8),
#   ukey-keylime-agent(8);
# - written by hand, in packaging/man/, for the programs whose arguments are another program's
#   interface (libvirt's hook, QEMU's command line, swtpm_setup's certificate tool);
# - ukeyd.toml(5) from packaging/ukeyd.toml, the commented defaults the package installs (a test
#   holds that file to every setting ukeyd knows), so the page cannot drift from it.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-.build/release}
out=${MANPAGES:-.build/man}
date=$(git log -1 --format=%cs 2> /dev/null || date +%F)
swift build --product generate-manual > /dev/null
generate=.build/debug/generate-manual
rm -rf "$out" && mkdir -p "$out"
for page in ukeyctl:1 ukeyd:8 ukey-guard:8 ukey-vcard:8 ukey-keylime-agent:8; do
    tool=${page%%:*} section=${page##*:}
    "$generate" "$build/$tool" --section "$section" --date "$date" --authors "the ukey developers" -o "$out" > /dev/null
    [ -s "$out/$tool.$section" ] || { echo "man: no page for $tool" >&2; exit 1; }
done
cp packaging/man/*.[158] "$out/"

# ukeyd.toml(5): each [section], each key with its default and what it means.
{
    cat << EOF2
.Dd $(date -d "$date" '+%B %-d, %Y')
.Dt UKEYD.TOML 5
.Os
.Sh NAME
.Nm ukeyd.toml
.Nd settings of ukeyd, the trusted root of a KVM host
.Sh SYNOPSIS
.Pa /etc/ukey/ukeyd.toml
.Sh DESCRIPTION
.Xr ukeyd 8
reads its settings from
.Pa /etc/ukey/ukeyd.toml
(or the file
.Fl -config
names): TOML with the sections and keys below, each shown with its default. Flags on ukeyd's
command line override the file. An unknown key, or a value of the wrong kind, stops ukeyd with
the key named: a typo never falls back to a default quietly. The package installs this file with
every key commented out.
EOF2
    awk '
        /^\[/ { gsub(/[\[\]]/, ""); printf ".Ss [%s]\n.Bl -tag -width Ds\n", $0; open = 1; next }
        /^# [a-z0-9-]+ = / {
            line = substr($0, 3)
            key = line; sub(/ = .*/, "", key)
            rest = line; sub(/^[^=]*= /, "", rest)
            value = rest; comment = ""
            if (index(rest, "   #") > 0) { value = substr(rest, 1, index(rest, "   #") - 1); comment = substr(rest, index(rest, "   #") + 4) }
            sub(/^ *# */, "", comment); sub(/ +$/, "", value)
            printf ".It Cm %s No = Li %s\n%s\n", key, value, (comment == "" ? "(default shown)" : comment)
            next
        }
        /^$/ && open { print ".El"; open = 0 }
        END { if (open) print ".El" }
    ' packaging/ukeyd.toml
    cat << 'EOF2'
.Sh FILES
.Bl -tag -width Ds
.It Pa /etc/ukey/ukeyd.toml
this file
.It Pa /usr/share/ukey/ukeyd.toml
the defaults as shipped
.El
.Sh SEE ALSO
.Xr ukeyd 8 ,
.Xr ukeyctl 1 ,
.Xr ukey-libvirt-hook 8 ,
.Xr swtpm 8
EOF2
} > "$out/ukeyd.toml.5"
echo "man pages in $out: $(cd "$out" && ls | tr '\n' ' ')"
