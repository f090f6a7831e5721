#!/usr/bin/python3
# Proves: loaderd stops cleanly on SIGINT and SIGTERM even when started as a shell background
# job (which the shell starts with SIGINT ignored), writing its final statistics.

import subprocess

import harness
from harness import TestFailure

SCRIPT = """
"$1" --log-target stderr --control-socket "" --json --output "$2" 2>"$3" &
pid=$!
for i in $(seq 1 300); do grep -q "Ready:" "$3" && break; sleep 0.1; done
kill -"$4" $pid
wait $pid
"""


def main(t):
    for sig in ("INT", "TERM"):
        out = t.tmp / f"out-{sig}.jsonl"
        err = t.tmp / f"err-{sig}.txt"
        try:
            r = subprocess.run(["bash", "-c", SCRIPT, "bash", str(harness.LOADERD), str(out),
                                str(err), sig], timeout=120)
        except subprocess.TimeoutExpired:
            raise TestFailure(f"loaderd did not stop on SIG{sig} as a background job")
        if r.returncode != 0:
            raise TestFailure(f"loaderd exited {r.returncode} on SIG{sig}: {err.read_text()}")
        if '"type":"stats"' not in out.read_text().splitlines()[-1]:
            raise TestFailure(f"no final stats line after SIG{sig}")
    harness.log("SIGINT and SIGTERM stop a background loaderd cleanly")


if __name__ == "__main__":
    harness.run(main)
