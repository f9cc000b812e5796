#!/usr/bin/env bash
# Writes the stand-in images of policies/demo.yaml under DIR: one file per component 'file:' hint,
# with fixed content, so their digests are the ones the policy carries.
# Usage: scripts/demo-images.sh DIR [POLICY]
set -euo pipefail
dir=${1:?usage: demo-images.sh DIR [POLICY]}
policy=${2:-$(dirname "$0")/../policies/demo.yaml}
grep -E '^[[:space:]]*file:[[:space:]]*/' "$policy" | sed -E 's/^[[:space:]]*file:[[:space:]]*//; s/[[:space:]]+#.*$//' |
while read -r path; do
    mkdir -p "$dir$(dirname "$path")"
    # 1 MiB of a line that names the file: deterministic, distinct per file.
    (yes "ukey demo image $path" || true) | head -c 1048576 > "$dir$path"
done
