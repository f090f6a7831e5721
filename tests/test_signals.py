#!/usr/bin/python3
# Proves: loaderd stops cleanly on SIGINT and SIGTERM even when started as a shell background
# job (which the shell starts with SIGINT ignored), writing its final statistics.

import subprocess

import harness
from harness import TestFailure

# $1 is the file for loaderd's stderr, $2 the signal, the rest loaderd's command line
# (harness.loaderd_argv: no configuration file, the test's own control socket, cache and rings).
SCRIPT = """
err=$1 sig=$2
shift 2
"$@" 2>"$err" &
pid=$!
until grep -q "Ready:" "$err"; do kill -0 $pid 2>/dev/null || exit 90; sleep 0.1; done
kill -"$sig" $pid
wait $pid
"""


def main(t):
    for sig in ("INT", "TERM"):
        out = t.tmp / f"out-{sig}.jsonl"
        err = t.tmp / f"err-{sig}.txt"
        argv = t.loaderd_argv("--log-target", "stderr", "--json", "--output", out)
        try:
            r = subprocess.run(["bash", "-c", SCRIPT, "bash", str(err), sig] + argv,
                               timeout=120)
        except subprocess.TimeoutExpired:
            raise TestFailure(f"loaderd did not stop on SIG{sig} as a background job")
        log = err.read_text(errors="replace")
        if r.returncode != 0:
            raise TestFailure(f"loaderd exited {r.returncode} on SIG{sig}: {log}")
        bad = [ln for ln in log.splitlines()
               if harness.SANITIZER_REPORT.search(ln) or harness.RESTART_LINE in ln]
        if bad:
            raise TestFailure(f"loaderd or its analyzer misbehaved on SIG{sig}: {bad[:5]}")
        if '"type":"stats"' not in out.read_text().splitlines()[-1]:
            raise TestFailure(f"no final stats line after SIG{sig}")
    harness.log("SIGINT and SIGTERM stop a background loaderd cleanly")


if __name__ == "__main__":
    harness.run(main)
