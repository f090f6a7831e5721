#!/usr/bin/python3
# Proves: loaderd holds its side of the boundary against a compromised analyzer
# (tests/rogue-analyzer.c, started with --analyzer in place of tlssniff-analyzer, as the
# tlssniff user): changes (attach, detach, reload) sent as A_CONTROL frames are refused,
# answered as refused and counted, and change nothing; a plan for a file never offered, a frame
# of an unknown type and a plan that does not decode are refused and counted; descriptors
# pushed at loaderd are closed; a frame header over the size cap makes loaderd replace the
# analyzer (logged, counted) and it treats the next one the same way, staying up throughout.
# Plans come from planners only: both plans the rogue sends are refused unread and counted
# (loaderd_analyzer_plans_refused), as is a planner's answer (P_PLAN) on the analyzer's socket.

import os
import pwd
import re
import signal

import harness
from harness import TestFailure

ROGUE = os.environ.get("TLSSNIFF_ROGUE_ANALYZER", "")


def rogue_lines(t, prefix):
    return [ln for ln in t.loaderd_err.lines if ln.startswith("ROGUE " + prefix)]


def main(t):
    if not os.access(ROGUE, os.X_OK):
        raise TestFailure(f"no rogue analyzer at {ROGUE!r} (TLSSNIFF_ROGUE_ANALYZER)")
    t.expected_restarts = 10  # the rogue breaks its stream on purpose, once per instance
    loaderd = t.start_loaderd("--analyzer", ROGUE)
    # Two rogue instances, each through all its attacks up to the oversized frame, and two
    # replacements by loaderd.
    harness.wait_until(lambda: len(rogue_lines(t, "sending an oversized")) >= 2 and
                       sum(harness.RESTART_LINE in ln for ln in t.loaderd_err.lines) >= 2,
                       90, "two rogue analyzers through their attacks, and two restarts")
    if loaderd.poll() is not None:
        raise TestFailure(f"loaderd exited ({loaderd.returncode}) under the rogue analyzer")

    # The rogue ran as the analyzer's user, never as root.
    uid = pwd.getpwnam("tlssniff").pw_uid
    started = rogue_lines(t, "started")
    if not started or any(int(ln.split()[-1]) != uid for ln in started):
        raise TestFailure(f"rogue analyzers started as {started}, expected uid {uid}")

    # Every change was answered as refused, pointing at the admin socket.
    results = rogue_lines(t, "control-result")
    if len(results) < 6 or any("ok=0" not in ln or "admin socket" not in ln for ln in results):
        raise TestFailure(f"the changes from the rogue were not all refused: {results}")

    # loaderd's counters, as it last sent them to the first rogue (a second after its attacks,
    # before its oversized frame): three changes refused, and seven frames refused (the
    # changes, the two plans, the planner's answer, the unknown type).
    lines = [ln for ln in t.loaderd_err.lines if ln.startswith("ROGUE ")]
    cut = next(i for i, ln in enumerate(lines) if ln.startswith("ROGUE sending an oversized"))
    stats = [ln for ln in lines[:cut] if ln.startswith("ROGUE stats")]
    if not stats:
        raise TestFailure("the first rogue never got loaderd's counters")
    first = dict(kv.split("=") for kv in stats[-1].split()[2:])
    if int(first.get("loaderd_analyzer_changes_refused", -1)) != 3 or \
            int(first.get("loaderd_frames_refused", -1)) != 7 or \
            int(first.get("loaderd_analyzer_plans_refused", -1)) != 2:
        raise TestFailure(f"loaderd's counters under the first rogue: {first}")
    if int(first.get("loaderd_reloads", -1)) != 0 or \
            int(first.get("loaderd_attached_pids", -1)) != 0:
        raise TestFailure(f"a change from the rogue was carried out: {first}")
    log = "\n".join(t.loaderd_err.lines)
    for why in ("a plan from the analyzer: plans come from planners", "unknown frame type",
                "changes come through the admin socket only"):
        if why not in log:
            raise TestFailure(f"loaderd did not log the refusal: {why!r}")
    if not re.search(r"The analyzer stopped \(its socket failed.*Restarting it\.", log):
        raise TestFailure("loaderd did not log why it replaced the analyzer")

    # The descriptors the rogue pushed were closed, not kept.
    held = harness.fds_of(loaderd.pid)
    # (the memfd's name exactly: the test's own folder is tlssniff-test_rogue-RANDOM)
    if any(h.startswith("/memfd:rogue-fd") for h in held):
        raise TestFailure(f"loaderd kept descriptors the rogue sent: {held}")

    loaderd.send_signal(signal.SIGINT)
    rc = loaderd.wait(harness.STOP_TIMEOUT)
    if rc != 0:
        raise TestFailure(f"loaderd exited with {rc} after SIGINT")
    harness.log(f"{len(started)} rogue analyzers: every change refused, bad frames refused and "
                f"counted, pushed descriptors closed, oversized frames answered with a restart")


if __name__ == "__main__":
    harness.run(main)
