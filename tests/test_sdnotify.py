#!/usr/bin/python3
# Proves: under a service manager (NOTIFY_SOCKET set), loaderd reports READY=1 only once its
# probes are attached (with a STATUS= saying how many), feeds the watchdog every second, and
# reports STOPPING=1 when told to stop.

import signal
import socket
import time

import harness
from harness import TestFailure


def main(t):
    path = str(t.tmp / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.5)
    p = t.spawn_loaderd("--log-target", "stderr", "--output", t.tmp / "out.txt",
                        env={"NOTIFY_SOCKET": path})
    err = p.err
    msgs = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum("WATCHDOG=1" in m for m in msgs) < 2:
            try:
                msgs.append(sock.recv(4096).decode())
            except socket.timeout:
                pass
        if not err.wait_for("Ready:", 1, p):
            raise TestFailure("loaderd never logged Ready:")
    finally:
        p.send_signal(signal.SIGINT)
        rc = p.wait(60)
    while True:
        try:
            msgs.append(sock.recv(4096).decode())
        except socket.timeout:
            break
    harness.log(f"notifications: {msgs}")
    if rc != 0:
        raise TestFailure(f"loaderd exited with {rc}")
    if not msgs or not msgs[0].startswith("READY=1\nSTATUS=Capturing: "):
        raise TestFailure(f"first notification is not READY=1 with a status: {msgs[:1]}")
    probes = int(msgs[0].split("Capturing: ")[1].split()[0])
    if probes <= 0:
        raise TestFailure(f"READY=1 with {probes} probes attached")
    if sum("WATCHDOG=1" in m for m in msgs) < 2:
        raise TestFailure("fewer than two watchdog pings")
    if msgs[-1] != "STOPPING=1":
        raise TestFailure(f"last notification is {msgs[-1]!r}, expected STOPPING=1")


if __name__ == "__main__":
    harness.run(main)
