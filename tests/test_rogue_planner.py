#!/usr/bin/python3
# Proves: a planner that a hostile binary took over can put probes into nothing but that file.
# loaderd runs with --planner tests/rogue-planner (as the tlssniff user): the planners of
# libssl and libcrypto are the real one; every other file's planner attacks (a plan for
# another file with a mid-instruction probe, a frame that is not a plan, a header over the
# size cap, a probe outside its own executable segments, a body that does not decode with
# descriptors attached, no answer at all, no answer ever). loaderd refuses each (a counter and
# a log line per class), kills the planner, closes the descriptors it pushed, and keeps
# capturing real traffic byte-exact; from the kernel's view (the file of each uprobe link
# loaderd holds, tests/uprobe-links.c) no probe lands in any file but libssl and libcrypto.

import os
import pwd
import re
import shutil
import subprocess

import harness
from harness import TestFailure

ROGUE = os.environ.get("TLSSNIFF_ROGUE_PLANNER", "")
UPROBE_LINKS = os.environ.get("TLSSNIFF_UPROBE_LINKS", "")


def attacks(t):
    out = {}
    for ln in t.loaderd_err.lines:
        m = re.search(r"ROGUE-PLANNER attack=(\w+) file=(\d+)", ln)
        if m:
            out.setdefault(m.group(1), []).append(int(m.group(2)))
    return out


def probed_files(loaderd_pid):
    """The files of the uprobes loaderd holds, as the kernel has them (tests/uprobe-links.c)."""
    r = subprocess.run([UPROBE_LINKS, str(loaderd_pid)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    if r.returncode != 0:
        raise TestFailure(f"uprobe-links failed: {r.stderr.decode()}")
    places = [ln.split() for ln in r.stdout.decode().splitlines()]
    return {p[1] for p in places}, len(places)


def main(t):
    if not os.access(ROGUE, os.X_OK):
        raise TestFailure(f"no rogue planner at {ROGUE!r} (TLSSNIFF_ROGUE_PLANNER)")
    cert, key = t.make_cert()
    server, port = t.start_server("framed", cert, key)
    loaderd = t.start_loaderd("--planner", ROGUE)
    sock = t.tmp / "control"

    # A file of its own that its planner never answers: loaderd's deadline ends it.
    stall = t.tmp / "rogue-stall"
    shutil.copy("/bin/sleep", stall)
    sleeper = t.spawn([stall, "120"], name="rogue-stall")
    # Meanwhile real traffic through libssl, planned by the real planner.
    payload, reply_len = os.urandom(70000), 33333
    client = harness.spawn_client(t, "client", port, [(payload, reply_len)], cert)
    res = harness.client_results(t, client)

    seen = attacks(t)
    missing = [a for a in ("0", "1", "2", "3", "4", "5") if a not in seen]
    if missing:
        raise TestFailure(f"no file's planner made attacks {missing}: {seen}")
    st = harness.wait_until_stats(sock, lambda s: s.get("loaderd_planners_timeouts", 0) >= 1,
                                  60, "the stalled planner ended by loaderd's deadline")
    sleeper.kill()
    sleeper.wait()

    # Counters: attacks 0, 1, 2, 4 refused as frames, 3 refused by plan_validate, 5 failed.
    refused = len(seen["0"]) + len(seen["1"]) + len(seen["2"]) + len(seen["3"]) + len(seen["4"])
    if st.get("loaderd_planners_refused", 0) < refused or \
            st.get("loaderd_planners_failed", 0) < len(seen["5"]) or \
            st.get("loaderd_analyzer_plans_refused") != 0:
        raise TestFailure(f"counters {st} for attacks {seen}")
    log = "\n".join(t.loaderd_err.lines)
    for why in ("its planner sent a plan that does not decode or is for another file",
                "its planner sent something other than a plan",
                "Refused the plan of ",
                "its planner ended without a plan",
                "its planner ran out of time"):
        if why not in log:
            raise TestFailure(f"loaderd did not log the refusal: {why!r}")

    # The rogue ran as the analyzer's user; loaderd kept none of the descriptors it pushed.
    uid = pwd.getpwnam("tlssniff").pw_uid
    uids = {int(m) for m in re.findall(r"ROGUE-PLANNER attack=\d file=\d+ uid=(\d+)", log)}
    if uids != {uid}:
        raise TestFailure(f"rogue planners ran as {uids}, expected {uid}")
    held = harness.fds_of(loaderd.pid)
    if any(h.startswith("/memfd:rogue-planner-fd") for h in held):
        raise TestFailure(f"loaderd kept descriptors a planner sent: {held}")

    # The kernel's view: uprobes in libssl and libcrypto only.
    files, n = probed_files(loaderd.pid)
    if n == 0 or any(not re.search(r"/lib(ssl|crypto)\.so", f) for f in files):
        raise TestFailure(f"{n} uprobes of loaderd in {sorted(files)}: only libssl and "
                          f"libcrypto were planned by the real planner")

    t.stop_server(server)
    cap = t.stop_loaderd()
    harness.check_framed_connection(cap, "client through the real planner's probes", client.pid,
                                    server.pid, res[0], payload, reply_len, "ipv4")
    harness.log(f"{sum(map(len, seen.values()))} rogue planners: each refused and counted; "
                f"{n} uprobe links, all in {sorted(files)}; the capture exact")


harness.run(main)
