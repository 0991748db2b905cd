#!/usr/bin/env python3
"""loopback_tcp.py - the machine's ceiling for any iSCSI target on loopback:
how fast one sender can push 1 MiB writes through a plain TCP socket pair to
one receiver on 127.0.0.1. Prints one JSON line: {"mb_s": ..., "seconds": ...}.

Usage: loopback_tcp.py [SECONDS]   (default 3)
"""
import json
import os
import socket
import sys
import time

CHUNK = 1 << 20


def main():
    secs = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    port = lsock.getsockname()[1]
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # receiver: count bytes until the sender closes
        os.close(rfd)
        conn, _ = lsock.accept()
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        total = 0
        while True:
            n = conn.recv_into(view)
            if n == 0:
                break
            total += n
        os.write(wfd, str(total).encode())
        os._exit(0)
    os.close(wfd)
    lsock.close()
    s = socket.create_connection(("127.0.0.1", port))
    data = b"\xa5" * CHUNK
    t0 = time.monotonic()
    end = t0 + secs
    while time.monotonic() < end:
        s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    got = int(os.read(rfd, 64) or b"0")
    elapsed = time.monotonic() - t0
    os.waitpid(pid, 0)
    s.close()
    print(json.dumps({"mb_s": round(got / elapsed / 1e6, 1), "seconds": round(elapsed, 2),
                      "bytes": got}))


if __name__ == "__main__":
    main()
