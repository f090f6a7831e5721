#!/usr/bin/python3
# Proves: with --log-target journal, loaderd's events reach a real systemd-journald as
# structured entries: MESSAGE_IDs for started, probe attached and ready (docs/catalog.md),
# with PRIORITY, CODE_FILE and SYSLOG_IDENTIFIER fields, readable with journalctl -o json.

import json
import os
import shutil
import signal
import subprocess
import time

import harness
from harness import TestFailure

JOURNALD = "/lib/systemd/systemd-journald"
SOCKET = "/run/systemd/journal/socket"
IDS = {"6d0c3e1a2b7f4c59a1e8f0d2c4b6a801": "started",
       "6d0c3e1a2b7f4c59a1e8f0d2c4b6a803": "probe attached",
       "6d0c3e1a2b7f4c59a1e8f0d2c4b6a802": "ready"}


def main(t):
    started = None
    created_dir = not os.path.exists("/run/systemd/journal")
    if not os.path.exists(SOCKET) or subprocess.run(
            ["journalctl", "--no-pager", "-n", "0"], capture_output=True).returncode != 0:
        if not os.path.exists(JOURNALD):
            raise TestFailure(f"{JOURNALD} is missing (package systemd)")
        started = subprocess.Popen([JOURNALD], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        harness.wait_until(lambda: os.path.exists(SOCKET), 20, "journald's socket")
    try:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() - 1))
        p = subprocess.Popen([str(harness.LOADERD), "--log-target", "journal", "--output",
                              str(t.tmp / "out.txt"), "--control-socket", ""],
                             stderr=subprocess.DEVNULL)
        seen = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(seen) < len(IDS):
            out = subprocess.run(["journalctl", "--no-pager", "-o", "json", "--since", since,
                                  f"_PID={p.pid}"], capture_output=True, text=True).stdout
            for line in out.splitlines():
                e = json.loads(line)
                if e.get("MESSAGE_ID") in IDS:
                    seen[e["MESSAGE_ID"]] = e
            time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        if p.wait(60) != 0:
            raise TestFailure("loaderd did not exit cleanly")
        missing = [IDS[i] for i in IDS if i not in seen]
        if missing:
            raise TestFailure(f"journal entries missing for: {missing}")
        for mid, e in seen.items():
            for field in ("PRIORITY", "CODE_FILE", "CODE_LINE", "MESSAGE"):
                if field not in e:
                    raise TestFailure(f"{IDS[mid]} entry lacks {field}: {e}")
            if e.get("SYSLOG_IDENTIFIER") != "tlssniff-loaderd":
                raise TestFailure(f"{IDS[mid]} entry has identifier {e.get('SYSLOG_IDENTIFIER')}")
        if not seen["6d0c3e1a2b7f4c59a1e8f0d2c4b6a802"]["MESSAGE"].startswith("Ready: "):
            raise TestFailure("the ready entry does not say Ready:")
        harness.log("journal: " + "; ".join(f"{IDS[m]}: {e['MESSAGE']}" for m, e in seen.items()))
    finally:
        if started:
            started.send_signal(signal.SIGTERM)
            try:
                started.wait(20)
            except subprocess.TimeoutExpired:
                started.kill()
            if created_dir:
                shutil.rmtree("/run/systemd/journal", ignore_errors=True)


if __name__ == "__main__":
    harness.run(main)
