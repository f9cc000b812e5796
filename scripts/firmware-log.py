#!/usr/bin/env python3
"""firmware-log.py OUT: a firmware's TCG crypto-agile event log, for a test TPM to stand for a
host's firmware (the fleet's host 1). Written here in Python, apart from ukey's Swift log code, so
ukey's merge of it is checked against a log ukey did not write. Prints, one per line, the
"PCR:sha256=DIGEST" extends that make a TPM agree with the log (tpm2_pcrextend's syntax).

Events (SHA-256 bank only): EV_S_CRTM_VERSION on PCR 0, EV_POST_CODE on PCR 0, and an
EV_SEPARATOR on each of PCRs 0-7, as a firmware ends its part."""
import hashlib
import struct
import sys

SHA256 = 0x000B
EV_SEPARATOR, EV_POST_CODE, EV_S_CRTM_VERSION, EV_NO_ACTION = 0x4, 0x1, 0x8, 0x3


def header() -> bytes:
    spec = b"Spec ID Event03\x00" + struct.pack("<IBBBB", 0, 0, 2, 0, 2)
    spec += struct.pack("<I", 1) + struct.pack("<HH", SHA256, 32) + struct.pack("<B", 0)
    return struct.pack("<II", 0, EV_NO_ACTION) + b"\x00" * 20 + struct.pack("<I", len(spec)) + spec


def event(pcr: int, kind: int, data: bytes, measured: bytes) -> tuple[bytes, bytes]:
    digest = hashlib.sha256(measured).digest()
    body = struct.pack("<III", pcr, kind, 1) + struct.pack("<H", SHA256) + digest
    return body + struct.pack("<I", len(data)) + data, digest


events = [
    (0, EV_S_CRTM_VERSION, "1.0 test firmware\0".encode("utf-16-le")),
    (0, EV_POST_CODE, b"POST CODE"),
] + [(pcr, EV_SEPARATOR, b"\x00\x00\x00\x00") for pcr in range(8)]
out = header()
for pcr, kind, data in events:
    raw, digest = event(pcr, kind, data, data)
    out += raw
    print(f"{pcr}:sha256={digest.hex()}")
with open(sys.argv[1], "wb") as f:
    f.write(out)
