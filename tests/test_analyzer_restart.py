#!/usr/bin/python3
# Proves: when the analyzer is killed, loaderd logs it, starts a new one (same user, same
# output file), counts the restart, and capture goes on: a TLS exchange made afterwards is
# captured exactly.

import os
import signal
import time

import harness
from harness import TestFailure
from test_privsep import children_of, status_of

HOST = "127.0.0.1"


def main(t):
    cert, key = t.make_cert()
    server, port = t.start_server("framed", cert, key, HOST)
    t.expected_restarts = 1
    loaderd = t.start_loaderd()
    first = children_of(loaderd.pid)
    if len(first) != 1:
        raise TestFailure(f"loaderd has children {first}, expected one analyzer")
    os.kill(first[0], signal.SIGKILL)
    deadline = time.monotonic() + 20
    second = []
    while time.monotonic() < deadline:
        second = [p for p in children_of(loaderd.pid) if p != first[0]]
        if second and not status_of(second[0])["State"].startswith("Z"):
            break
        time.sleep(0.05)
    if not second:
        raise TestFailure("no new analyzer within 20 s of killing the first")
    if status_of(second[0])["Uid"].split()[0] == "0":
        raise TestFailure("the restarted analyzer runs as root")
    if t.loaderd_err.wait_for("Restarting it", 10, loaderd) is None:
        raise TestFailure("loaderd did not log the analyzer's restart")
    time.sleep(0.5)  # the new analyzer says hello; nothing to plan again
    items = [(os.urandom(40000), 70000)]
    c = harness.spawn_client(t, "client", port, items, cert)
    res = harness.client_results(t, c)
    t.stop_server(server)
    cap = t.stop_loaderd()
    harness.check_framed_connection(cap, "after restart", c.pid, server.pid, res[0],
                                    items[0][0], items[0][1], "ipv4")
    if (cap.stats or {}).get("loaderd_analyzer_restarts") != 1:
        raise TestFailure(f"loaderd_analyzer_restarts = "
                          f"{(cap.stats or {}).get('loaderd_analyzer_restarts')}, expected 1")
    harness.log(f"analyzer {first[0]} killed, {second[0]} took over; exchange captured exactly")


if __name__ == "__main__":
    harness.run(main)
