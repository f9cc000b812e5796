#!/usr/bin/env bash
# Stock Keylime 7.14.3 (registrar, verifier, tenant) from PyPI, for the fleet test:
#   keylime-peer.sh install          the venv in .build-keylime/ (once; about 30 s)
#   keylime-peer.sh start DIR        registrar and verifier on 127.0.0.1, sqlite, their own CA in
#                                    DIR/cv_ca, ukey's measured-boot policy loaded; DIR/env.sh for the tenant
#   keylime-peer.sh stop DIR         stops what start started, by the PIDs it wrote
# Nothing in Keylime is patched: its configuration is the stock one with a few keys set.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
version=7.14.3
venv="$root/.build-keylime/venv"
templates="$root/.build-keylime/templates"

install() {
    # Debian's python (python3-gpg is a Debian module), with its site packages for that module.
    [ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$venv"
    if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('keylime') != '$version')" 2>/dev/null; then
        echo "==> installing keylime $version and its requirements into $venv (PyPI)"
        # The wheel declares no dependencies: these are requirements.txt of Keylime's v7.14.3 tag.
        "$venv/bin/pip" install -q --disable-pip-version-check "keylime==$version" \
            'cryptography>=3.3.2' 'tornado>=5.0.2' 'pyzmq>=14.4' 'pyyaml>=3.11' 'requests>=2.6' \
            'sqlalchemy>=2.0.39' 'alembic>=1.1.0' 'packaging>=20.0' 'psutil>=5.4.2' 'lark>=1.0.0' \
            'pyasn1>=0.4.2' 'pyasn1-modules>=0.2.5' 'jinja2>=3.0.0' 'jsonschema>=2.6.0'
    fi
    if [ ! -f "$templates/2.6/verifier.j2" ]; then
        # The configuration templates ship only in the source distribution.
        local tmp
        tmp=$(mktemp -d)
        "$venv/bin/pip" download -q --disable-pip-version-check "keylime==$version" --no-binary :all: --no-deps -d "$tmp"
        tar -xzf "$tmp/keylime-$version.tar.gz" -C "$tmp"
        rm -rf "$templates"
        cp -r "$tmp/keylime-$version/templates" "$templates"
        rm -rf "$tmp"
    fi
}

# set FILE SECTION KEY VALUE...: Keylime's configuration files are INI.
set_keys() {
    "$venv/bin/python" - "$@" <<'PY'
import configparser, sys
path, rest = sys.argv[1], sys.argv[2:]
parser = configparser.RawConfigParser()
parser.optionxform = str
parser.read(path)
for i in range(0, len(rest), 3):
    section, key, value = rest[i:i + 3]
    if not parser.has_section(section):
        parser.add_section(section)
    parser.set(section, key, value)
with open(path, "w", encoding="utf-8") as out:
    parser.write(out)
PY
}

start() {
    local dir=$1
    mkdir -p "$dir/conf" "$dir/logs" "$dir/tpm_cert_store"
    "$venv/bin/keylime_upgrade_config" --defaults --templates "$templates" --out "$dir/conf" > "$dir/logs/config.log" 2>&1
    set_keys "$dir/conf/verifier.conf" \
        verifier quote_interval "${QUOTE_INTERVAL:-2}" \
        verifier measured_boot_policy_name ukey \
        verifier measured_boot_imports "['ukey_policy']" \
        verifier measured_boot_evaluate always \
        verifier num_workers 1 verifier retry_interval 1 verifier max_retries 5 \
        revocations enabled_revocation_notifications "[]"
    set_keys "$dir/conf/tenant.conf" \
        tenant tpm_cert_store "$dir/tpm_cert_store" tenant require_ek_cert True \
        tenant max_retries 5 tenant retry_interval 1
    set_keys "$dir/conf/registrar.conf" registrar max_workers 2
    cat > "$dir/env.sh" <<ENV
export KEYLIME_DIR="$dir"
export KEYLIME_VERIFIER_CONFIG="$dir/conf/verifier.conf"
export KEYLIME_REGISTRAR_CONFIG="$dir/conf/registrar.conf"
export KEYLIME_TENANT_CONFIG="$dir/conf/tenant.conf"
export KEYLIME_CA_CONFIG="$dir/conf/ca.conf"
export KEYLIME_LOGGING_CONFIG="$dir/conf/logging.conf"
export PATH="$venv/bin:\$PATH"
export PYTHONPATH="$root/contrib/keylime"
ENV
    # shellcheck disable=SC1091
    source "$dir/env.sh"
    local ca="$dir/cv_ca"
    # The verifier first: it makes the CA (DIR/cv_ca) that the registrar and tenant then use.
    (cd "$dir" && exec setsid "$venv/bin/keylime_verifier" > "$dir/logs/verifier.log" 2>&1 < /dev/null) &
    echo $! > "$dir/verifier.pid"
    wait_for verifier "$dir/verifier.pid" curl -sf --cacert "$ca/cacert.crt" --cert "$ca/client-cert.crt" \
        --key "$ca/client-private.pem" https://127.0.0.1:8881/version
    (cd "$dir" && exec setsid "$venv/bin/keylime_registrar" > "$dir/logs/registrar.log" 2>&1 < /dev/null) &
    echo $! > "$dir/registrar.pid"
    wait_for registrar "$dir/registrar.pid" curl -sf http://127.0.0.1:8890/version
    echo "==> keylime $version: verifier (pid $(cat "$dir/verifier.pid")) and registrar (pid $(cat "$dir/registrar.pid")) in $dir"
}

wait_for() {
    local what=$1 pidfile=$2
    shift 2
    for _ in $(seq 120); do
        "$@" > /dev/null 2>&1 && return 0
        kill -0 "$(cat "$pidfile")" 2> /dev/null || { echo "error: the $what died; its log:" >&2; tail -20 "$(dirname "$pidfile")/logs/$what.log" >&2; return 1; }
        sleep 0.5
    done
    echo "error: the $what did not answer in 60 s" >&2
    return 1
}

stop() {
    local dir=$1
    for service in registrar verifier; do
        local file="$dir/$service.pid"
        [ -f "$file" ] || continue
        local pid
        pid=$(cat "$file")
        # setsid made each its own process group: the service and the workers it forked.
        if kill -0 "$pid" 2> /dev/null; then
            kill -TERM -- "-$pid" 2> /dev/null || kill -TERM "$pid" 2> /dev/null || true
            for _ in $(seq 20); do kill -0 -- "-$pid" 2> /dev/null || break; sleep 0.5; done
            kill -KILL -- "-$pid" 2> /dev/null || true
        fi
        rm -f "$file"
    done
}

case "${1:-}" in
    install) install ;;
    start) install && start "$(realpath -m "$2")" ;;
    stop) stop "$(realpath -m "$2")" ;;
    *) echo "usage: $0 install | start DIR | stop DIR" >&2; exit 2 ;;
esac
