#!/usr/bin/env python3
"""fuzz/gen_login_seeds.py - writes the CHAP seeds of fuzz/corpus/login.

login_fuzz.cpp runs the real ChapAuthenticator with fixed credentials and a
fixed challenge source (CHAP_I 160, CHAP_C a0..af), so a seed can carry a
right answer and reach past the challenge: one-way and mutual, hex and
base64, plus the near misses the checks must refuse. Records are
[48-byte BHS][2-byte big-endian data length][data]; an odd total size
selects the authenticator (the harness uses size % 2).
Run from the repository root: python3 fuzz/gen_login_seeds.py
"""
import base64
import hashlib
import os
import struct

# Must match login_fuzz.cpp (target a; target b is one-way only).
USER, SECRET = b"user-a", b"secret-a-0123"
MUSER, MSECRET = b"target-a", b"mutual-a-4567"
CHAP_ID = 0xA0
CHALLENGE = bytes(range(0xA1, 0xB1))
INI_ID, INI_CHALLENGE = 7, bytes(range(0x10, 0x30))


def chap(ident, secret, challenge):
    return hashlib.md5(bytes([ident]) + secret + challenge).digest()


def bhs(flags, opcode=0x43):
    h = bytearray(48)
    h[0], h[1] = opcode, flags
    h[8:14] = bytes([0x40, 0, 1, 0x37, 0, 0])  # ISID
    h[16:20] = struct.pack(">I", 1)  # ITT
    h[20:22] = struct.pack(">H", 1)  # CID
    h[24:28] = struct.pack(">I", 1)  # CmdSN
    return bytes(h)


def rec(flags, keys, opcode=0x43):
    data = b"".join(k + b"\0" for k in keys)
    return bhs(flags, opcode) + struct.pack(">H", len(data)) + data


SEC = 0x00  # CSG 0, no transit
SEC_TO_OP = 0x81  # T, CSG 0 -> NSG 1
OP_TO_FFP = 0x87  # T, CSG 1 -> NSG 3
START = rec(SEC, [b"InitiatorName=iqn.i:ok", b"TargetName=iqn.t:a", b"SessionType=Normal", b"AuthMethod=CHAP,None"])
ALG = rec(SEC, [b"CHAP_A=7,5"])
# The target answers the first operational request with offers of its own
# (the harness turns ImmediateData off) and no T bit: a second, empty one
# takes the login to full feature phase.
TAIL = [rec(OP_TO_FFP, [b"MaxRecvDataSegmentLength=8192"]), rec(OP_TO_FFP, []),
        rec(0x80, [b"SendTargets=All"], opcode=0x04)]


def hexv(b):
    return b"0x" + b.hex().encode()


def b64v(b):
    return b"0b" + base64.b64encode(b)


right = chap(CHAP_ID, SECRET, CHALLENGE)
mutual = [b"CHAP_I=%d" % INI_ID, b"CHAP_C=" + hexv(INI_CHALLENGE)]
seeds = {
    "chap_oneway_hex": [START, ALG, rec(SEC_TO_OP, [b"CHAP_N=" + USER, b"CHAP_R=" + hexv(right)])] + TAIL,
    "chap_oneway_base64": [START, ALG, rec(SEC_TO_OP, [b"CHAP_N=" + USER, b"CHAP_R=" + b64v(right)])] + TAIL,
    "chap_mutual": [START, ALG, rec(SEC_TO_OP, [b"CHAP_N=" + USER, b"CHAP_R=" + hexv(right)] + mutual)] + TAIL,
    "chap_mutual_base64_id_hex": [START, ALG, rec(SEC_TO_OP, [b"CHAP_N=" + USER, b"CHAP_R=" + b64v(right),
                                  b"CHAP_I=0x%02x" % INI_ID, b"CHAP_C=" + b64v(INI_CHALLENGE)])] + TAIL,
    "chap_mutual_reflected": [START, ALG, rec(SEC_TO_OP, [b"CHAP_N=" + USER, b"CHAP_R=" + hexv(right),
                              b"CHAP_I=1", b"CHAP_C=" + hexv(CHALLENGE)])],
    "chap_wrong_response": [START, ALG, rec(SEC_TO_OP, [b"CHAP_N=" + USER, b"CHAP_R=" + hexv(bytes(16))])],
    "chap_wrong_name": [START, ALG, rec(SEC_TO_OP, [b"CHAP_N=someone", b"CHAP_R=" + hexv(right)])],
    "chap_odd_digits": [START, ALG, rec(SEC_TO_OP, [b"CHAP_N=" + USER, b"CHAP_R=0x" + right.hex()[1:].encode()])],
    # Target b has no mutual secret: a mutual request is refused.
    "chap_mutual_unconfigured": [START.replace(b"iqn.t:a", b"iqn.t:b"), ALG,
                                 rec(SEC_TO_OP, [b"CHAP_N=user-b",
                                                 b"CHAP_R=" + hexv(chap(CHAP_ID, b"secret-b-0123", CHALLENGE))] + mutual)],
    "chap_no_md5": [START, rec(SEC, [b"CHAP_A=6,7"])],
    "chap_continued_stage": [START, ALG, rec(SEC, [b"CHAP_N=" + USER, b"CHAP_R=" + hexv(right)]),
                             rec(SEC_TO_OP, [])] + TAIL,
}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "login")
for name, records in seeds.items():
    blob = b"".join(records)
    if len(blob) % 2 == 0:
        blob += b"\0"  # odd: with the authenticator; too short to be a record
    with open(os.path.join(out, name), "wb") as f:
        f.write(blob)
