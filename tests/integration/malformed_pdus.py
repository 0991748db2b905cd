#!/usr/bin/env python3
# tests/integration/malformed_pdus.py - raw-socket abuse of sgvd (inside
# with_sgvd.sh): PDUs before login, reserved/unsupported opcodes, oversized
# data segments, a truncated header. Each must get the answer RFC 7143
# asks for (a Reject with the right reason, a login reject, or a closed
# connection) - never a hang - and a session logged in beforehand must keep
# working, as must a fresh iscsi-inq afterwards.
# usage: malformed_pdus.py [CASE...]   (no CASE: all of them)
import os
import socket
import struct
import subprocess
import sys

HOST = os.environ["SGVD_HOST"]
PORT = int(os.environ["SGVD_PORT"])
TARGET = os.environ["SGVD_TARGET"]
URL = os.environ["SGVD_URL"]
TIMEOUT = 5.0
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def pad4(b):
    return b + b"\0" * (-len(b) % 4)


def bhs(opcode, flags=0, dslen=0, itt=0, rest=b""):
    """48-byte BHS: opcode, flags, 2 opcode-specific bytes, TotalAHSLength 0,
    DataSegmentLength, LUN (8), ITT, then 28 opcode-specific bytes."""
    h = struct.pack(">BBHB", opcode, flags, 0, 0) + dslen.to_bytes(3, "big") + b"\0" * 8 + struct.pack(">I", itt)
    rest = rest.ljust(28, b"\0")
    return h + rest


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None  # closed
        buf += chunk
    return buf


def recv_pdu(s):
    """(bhs, data) or None when the target closed the connection.
    Raises socket.timeout when nothing arrives in time."""
    h = recv_exact(s, 48)
    if h is None:
        return None
    ahs = h[4] * 4
    dslen = int.from_bytes(h[5:8], "big")
    rest = recv_exact(s, ahs + dslen + (-dslen % 4))
    if rest is None:
        return None
    return h, rest[ahs:ahs + dslen]


def connect():
    s = socket.create_connection((HOST, PORT), timeout=TIMEOUT)
    s.settimeout(TIMEOUT)
    return s


def login(s, isid=b"\x80\x12\x34\x56\x00\x01"):
    """Logs in at the operational stage straight to full feature phase.
    Returns (ok, exp_statsn, exp_cmdsn, text)."""
    keys = ("InitiatorName=iqn.2026-11.io.sgv:malformed\0SessionType=Normal\0TargetName=%s\0"
            "HeaderDigest=None\0DataDigest=None\0" % TARGET).encode()
    cmdsn, statsn = 1, 0
    for attempt in range(4):
        # Login: immediate, T=1, CSG=operational(1), NSG=full feature(3);
        # bytes 8..15 hold ISID and TSIH instead of a LUN.
        h = struct.pack(">BBBB", 0x43, 0x87, 0, 0) + bytes([0]) + len(keys).to_bytes(3, "big") + isid + \
            b"\0\0" + struct.pack(">I", 0x1000 + attempt) + struct.pack(">HH", 1, 0) + \
            struct.pack(">II", cmdsn, statsn) + b"\0" * 16
        s.sendall(h + pad4(keys))
        keys = b""
        r = recv_pdu(s)
        if r is None:
            return False, 0, 0, "closed during login"
        rh, data = r
        if rh[0] & 0x3F != 0x23:
            return False, 0, 0, "login answered with opcode 0x%02x" % rh[0]
        statsn = struct.unpack(">I", rh[24:28])[0] + 1
        exp_cmdsn = struct.unpack(">I", rh[28:32])[0]
        if (rh[36], rh[37]) != (0, 0):
            return False, statsn, exp_cmdsn, "login status %d/%d" % (rh[36], rh[37])
        if rh[1] & 0x80 and rh[1] & 0x03 == 3:
            return True, statsn, exp_cmdsn, data.decode(errors="replace")
    return False, statsn, 0, "no transit to full feature phase"


def closed_or_rejected(s):
    """Reads what the target says next: ('reject', reason), ('closed', None),
    ('other', opcode) or ('timeout', None)."""
    try:
        while True:
            r = recv_pdu(s)
            if r is None:
                return "closed", None
            h, data = r
            op = h[0] & 0x3F
            if op == 0x20 and struct.unpack(">I", h[16:20])[0] == 0xFFFFFFFF:
                continue  # the target's own NOP-In ping
            if op == 0x3F:
                return "reject", h[2]
            return "other", op
    except ConnectionResetError:
        return "closed", None
    except socket.timeout:
        return "timeout", None


def nop_ping(s, itt, cmdsn, statsn):
    h = struct.pack(">BBBB", 0x40, 0x80, 0, 0) + b"\0" * 4 + b"\0" * 8 + struct.pack(">I", itt) + \
        struct.pack(">I", 0xFFFFFFFF) + struct.pack(">II", cmdsn, statsn) + b"\0" * 16
    try:
        s.sendall(h)
        while True:
            r = recv_pdu(s)
            if r is None:
                return False
            rh, _ = r
            if rh[0] & 0x3F == 0x20 and struct.unpack(">I", rh[16:20])[0] == itt:
                return True
    except OSError:  # includes socket.timeout and resets
        return False


def case_before_login():
    """A SCSI command before login: it must not reach the SCSI layer."""
    s = connect()
    cdb_inquiry = bytes([0x12, 0, 0, 0, 96, 0]) + b"\0" * 10
    s.sendall(bhs(0x01, 0xC0, 0, itt=7, rest=struct.pack(">III", 96, 1, 0) + cdb_inquiry))
    kind, detail = closed_or_rejected(s)
    check(kind in ("closed", "reject") or (kind == "other" and detail == 0x23),
          "SCSI command before login: closed, rejected or login-rejected (got %s %s)" % (kind, detail))
    s.close()


def case_reserved_opcode():
    """A reserved opcode as the first PDU."""
    s = connect()
    s.sendall(bhs(0x1A, 0x80, 0, itt=8))
    kind, detail = closed_or_rejected(s)
    check(kind in ("closed", "reject") or (kind == "other" and detail == 0x23),
          "reserved opcode before login: closed or rejected (got %s %s)" % (kind, detail))
    s.close()


def case_unsupported_opcode():
    """After login, a vendor-specific opcode sgvd does not implement: Reject
    reason 0x05 (Command not supported) carrying the offending header, and
    the connection stays usable."""
    s = connect()
    ok, statsn, cmdsn, text = login(s)
    check(ok, "login for the bad-opcode test (%s)" % text[:80])
    if ok:
        bad = bhs(0x5D, 0x80, 0, itt=0x42, rest=struct.pack(">III", 0xFFFFFFFF, cmdsn, statsn))
        s.sendall(bad)
        try:
            r = recv_pdu(s)
            while r is not None and r[0][0] & 0x3F == 0x20 and r[0][16:20] == b"\xff\xff\xff\xff":
                r = recv_pdu(s)
        except socket.timeout:
            r = "timeout"
        if r is None or r == "timeout":
            check(False, "unsupported opcode: expected a Reject, got %s" % ("close" if r is None else r))
        else:
            rh, data = r
            check(rh[0] & 0x3F == 0x3F and rh[2] == 0x05,
                  "unsupported opcode 0x1d: Reject reason 0x05 (got opcode 0x%02x reason 0x%02x)" % (rh[0] & 0x3F, rh[2]))
            check(data[:48] == bad, "the Reject carries the rejected header")
            check(nop_ping(s, 0x77, cmdsn, statsn + 1), "connection still answers NOP-Out after the Reject")
    s.close()


def case_oversized_segment():
    """After login, a data segment far beyond MaxRecvDataSegmentLength: a
    protocol error (Reject 0x04 / 0x09) or a close, never a hang waiting for
    16 MiB."""
    s = connect()
    ok, statsn, cmdsn, _ = login(s)
    check(ok, "login for the oversized-segment test")
    if ok:
        s.sendall(bhs(0x40, 0x80, 0xFFFFFF, itt=0x43, rest=struct.pack(">III", 0xFFFFFFFF, cmdsn, statsn)))
        s.sendall(b"\xAB" * 4096)  # a little of it, as a real sender would start
        kind, detail = closed_or_rejected(s)
        check(kind == "closed" or (kind == "reject" and detail in (0x04, 0x09)),
              "oversized data segment: Reject 0x04/0x09 or close (got %s %s)" % (kind, detail))
    s.close()


def case_oversized_login():
    """A login PDU announcing a 16 MiB data segment: during login the target
    accepts at most 8192 bytes (RFC 7143 MaxRecvDataSegmentLength default),
    so it must refuse or close at once instead of waiting for the data."""
    s = connect()
    h = struct.pack(">BBBB", 0x43, 0x87, 0, 0) + bytes([0]) + (0xFFFFFF).to_bytes(3, "big") + \
        b"\x80\x00\x00\x00\x00\x07" + b"\0\0" + struct.pack(">I", 1) + struct.pack(">HH", 1, 0) + \
        struct.pack(">II", 1, 0) + b"\0" * 16
    s.sendall(h + b"InitiatorName=iqn.2026-11.io.sgv:x\0")
    kind, detail = closed_or_rejected(s)
    check(kind in ("closed", "reject") or (kind == "other" and detail == 0x23),
          "16 MiB login segment: closed or rejected at once (got %s %s)" % (kind, detail))
    s.close()


def case_truncated_header():
    """A truncated header, then a half-close: sgvd must notice the EOF and
    let go of the connection."""
    s = connect()
    s.sendall(bhs(0x43, 0x87)[:20])
    s.shutdown(socket.SHUT_WR)
    kind, _ = closed_or_rejected(s)
    check(kind == "closed", "truncated header then EOF: connection closed (got %s)" % kind)
    s.close()


CASES = {
    "before_login": case_before_login,
    "reserved_opcode": case_reserved_opcode,
    "unsupported_opcode": case_unsupported_opcode,
    "oversized_segment": case_oversized_segment,
    "oversized_login": case_oversized_login,
    "truncated_header": case_truncated_header,
}


def main():
    names = sys.argv[1:] or list(CASES)
    # A healthy session opened first must survive the abuse.
    keeper = connect()
    ok, keeper_statsn, keeper_cmdsn, text = login(keeper, isid=b"\x80\x00\x00\x00\x00\x09")
    check(ok, "baseline login succeeds (%s)" % text.replace("\0", " ")[:120])
    for name in names:
        CASES[name]()
    # The first session still works; a fresh initiator still works.
    check(nop_ping(keeper, 0x99, keeper_cmdsn, keeper_statsn), "the session opened first still answers NOP-Out")
    keeper.close()
    inq = subprocess.run(["iscsi-inq", URL + "/0"], capture_output=True, text=True, timeout=30)
    check(inq.returncode == 0, "iscsi-inq works afterwards (exit %d: %s)" % (inq.returncode, inq.stderr.strip()[:200]))
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
