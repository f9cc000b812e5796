#!/usr/bin/env bash
# The PC/SC peers the card suites need: pcscd with vsmartcard's vpcd reader, and ukey-vcard as the
# card in it, both in a network namespace of their own (vpcd listens on every interface, so
# whoever reaches its port becomes the card: in the namespace nothing outside can). Clients reach
# pcscd through its Unix socket as usual. Stopped by PID, never by name.
#   scripts/pcsc-peer.sh start DIR   # writes DIR/pcscd.pid, DIR/vcard.pid, DIR/ns.pid; waits for the card
#   scripts/pcsc-peer.sh fresh-card DIR [SLOT]   # a factory-new card in the running pcscd, in reader
#       SLOT: 0 "Virtual PCD 00 00" (the default; the daemon suites' keys card), 1 "Virtual PCD 00 01"
#       (alice's), 2 "Virtual PCD Users 00 00" (bob's). vpcd gives two readers per entry in
#       reader.conf, so the third comes from a second entry; reader SLOT listens on port 35963+SLOT.
#   scripts/pcsc-peer.sh stop DIR
set -euo pipefail
cd "$(dirname "$0")/.."
command=${1:?start or stop}
dir=${2:?a directory for the peers\' files}
vcard=${UKEY_VCARD:-$PWD/.build/debug/ukey-vcard}

stop() {
    for name in vcard vcard1 vcard2 pcscd ns; do
        if [ -f "$dir/$name.pid" ]; then
            pid=$(cat "$dir/$name.pid")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
            rm -f "$dir/$name.pid"
        fi
    done
}

case "$command" in
start)
    mkdir -p "$dir/readers" "$dir/card"
    chmod 700 "$dir/card"
    if [ -S /run/pcscd/pcscd.comm ]; then
        # One pcscd per machine (its socket path is fixed): refuse to start over a live one, and
        # clear what a dead one left behind. Live means the socket accepts a connection
        # (opensc-tool -l answers 0 over a dead socket too: "No smart card readers found").
        if python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(sys.argv[1])' /run/pcscd/pcscd.comm 2>/dev/null; then
            echo "error: a pcscd is already running on this machine; stop it first (its socket is /run/pcscd/pcscd.comm)" >&2
            exit 1
        fi
        echo "==> clearing the socket a pcscd that is gone left in /run/pcscd"
        rm -f /run/pcscd/pcscd.comm /run/pcscd/pcscd.pid
    fi
    cat > "$dir/readers/vpcd" <<CONF
FRIENDLYNAME "Virtual PCD"
DEVICENAME   /dev/null:0x8C7B
LIBPATH      /usr/lib/pcsc/drivers/serial/libifdvpcd.so
CHANNELID    0x8C7B
CONF
    # vpcd keeps its two slots in the driver's own static state, so a second entry naming the
    # same library shares (and breaks) them: the third reader runs a copy of the driver, loaded
    # apart from the first because its path differs.
    mkdir -p "$dir/driver"
    cp /usr/lib/pcsc/drivers/serial/libifdvpcd.so "$dir/driver/libifdvpcd-users.so"
    cat > "$dir/readers/vpcd-users" <<CONF
FRIENDLYNAME "Virtual PCD Users"
DEVICENAME   /dev/null:0x8C7D
LIBPATH      $dir/driver/libifdvpcd-users.so
CHANNELID    0x8C7D
CONF
    unshare --net bash -c '
        ip link set lo up
        pcscd --foreground -c "$1/readers" > "$1/pcscd.log" 2>&1 &
        echo $! > "$1/pcscd.pid"
        "$2" --state "$1/card" ${UKEY_VCARD_TRACE:+--trace} > "$1/vcard.log" 2>&1 &
        echo $! > "$1/vcard.pid"
        wait
    ' pcsc-peer "$dir" "$vcard" &
    echo $! > "$dir/ns.pid"
    # pcscd polls the reader every ~0.45 s: wait for the card rather than sleeping.
    for _ in $(seq 100); do
        if opensc-tool -l 2>/dev/null | grep -q "Virtual PCD 00 00.*Yes\|Virtual PCD 00 00" && opensc-tool -r 0 -a >/dev/null 2>&1; then
            echo "pcscd (pid $(cat "$dir/pcscd.pid")) and ukey-vcard (pid $(cat "$dir/vcard.pid")) are up in their namespace"
            exit 0
        fi
        sleep 0.1
    done
    echo "error: the virtual card did not appear in pcscd within 10 s; see $dir/pcscd.log and $dir/vcard.log" >&2
    stop
    exit 1
    ;;
fresh-card)
    # Pull the card, wipe it, insert a new one into pcscd's namespace: reader SLOT's card talks
    # to vpcd on port 35963+SLOT (two per reader.conf entry, the entries 2 ports apart).
    slot=${3:-0}
    case "$slot" in 0) suffix= ;; 1|2) suffix=$slot ;; *) echo "error: the readers are 0, 1 and 2, not '$slot'" >&2; exit 2 ;; esac
    if [ -f "$dir/vcard$suffix.pid" ]; then
        pid=$(cat "$dir/vcard$suffix.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir/card$suffix" && mkdir -p "$dir/card$suffix" && chmod 700 "$dir/card$suffix"
    gone=
    for _ in $(seq 100); do opensc-tool -r "$slot" -a >/dev/null 2>&1 || { gone=1; break; }; sleep 0.1; done
    [ -n "$gone" ] || { echo "error: the old card is still in the reader" >&2; exit 1; }
    nsenter --net="/proc/$(cat "$dir/pcscd.pid")/ns/net" -- "$vcard" --state "$dir/card$suffix" --port $((35963 + slot)) > "$dir/vcard$suffix.log" 2>&1 &
    echo $! > "$dir/vcard$suffix.pid"
    for _ in $(seq 100); do opensc-tool -r "$slot" -a >/dev/null 2>&1 && exit 0; sleep 0.1; done
    echo "error: the fresh card did not appear in pcscd" >&2
    exit 1
    ;;
stop)
    stop
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
