#!/usr/bin/python3
# Proves: when the analyzer is killed, loaderd logs it, starts a new one (same user, same
# output file), counts the restart, and capture goes on: a TLS exchange made afterwards is
# captured exactly; killed again under load, capture resumes on the same connections (same
# connection ids, stream offsets going on), every captured byte is right, the output holds
# whole JSON lines only, and the loss is logged.

import os
import signal
import time

import harness
from harness import TestFailure
from test_privsep import analyzers_of, status_of

HOST = "127.0.0.1"


def main(t):
    cert, key = t.make_cert()
    server, port = t.start_server("framed", cert, key, HOST)
    t.expected_restarts = 2
    loaderd = t.start_loaderd()
    first = analyzers_of(loaderd.pid)
    if len(first) != 1:
        raise TestFailure(f"loaderd has analyzers {first}, expected one")
    # An analyzer killed in the middle of a line (its batches can take a few writes, analyzer/
    # out/direct.c): stopped, so it writes nothing more, then the start of a line appended as
    # if it had written it, then killed. loaderd must cut exactly that back before the next
    # analyzer writes (nothing was captured yet: the file held only whole lines).
    os.kill(first[0], signal.SIGSTOP)
    harness.wait_until(lambda: status_of(first[0])["State"].startswith("T"), 10,
                       "the analyzer to stop")
    half = b'{"type":"data","time":"2026'
    with open(t.output, "ab") as f:
        f.write(half)
    os.kill(first[0], signal.SIGKILL)
    deadline = time.monotonic() + 20
    second = []
    while time.monotonic() < deadline:
        # Past its exec (between fork and exec the child is still loaderd, root).
        second = [p for p in analyzers_of(loaderd.pid) if p != first[0]]
        if second and not status_of(second[0])["State"].startswith("Z"):
            break
        time.sleep(0.05)
    if not second:
        raise TestFailure("no new analyzer within 20 s of killing the first")
    if status_of(second[0])["Uid"].split()[0] == "0":
        raise TestFailure("the restarted analyzer runs as root")
    if t.loaderd_err.wait_for("Restarting it", 10, loaderd) is None:
        raise TestFailure("loaderd did not log the analyzer's restart")
    if t.loaderd_err.wait_for(f"Cut {len(half)} bytes of a line", 10, loaderd) is None:
        raise TestFailure(f"loaderd did not cut the {len(half)} bytes of a half line")
    # The new analyzer serves the control socket once it is up.
    harness.wait_until_stats(t.tmp / "control", lambda s: True, 30, "the new analyzer")
    items = [(os.urandom(40000), 70000)]
    c = harness.spawn_client(t, "client", port, items, cert)
    res = harness.client_results(t, c)

    # Under load: 3 connections, 60 exchanges each, 30 ms apart; kill the analyzer midway.
    exchanges = [[(os.urandom(3000 + 37 * k + i), 5000 + 11 * k) for k in range(60)]
                 for i in range(3)]
    load_items = [(e[0][0], e[0][1], e[1:]) for e in exchanges]
    load = harness.spawn_client(t, "load", port, load_items, cert, flags=["--parallel",
                                                                          "--pause", "0.03"])
    # Kill it midway: once the output holds the first exchanges of all three connections.
    marker = f'"pid":{load.pid},'.encode()
    harness.wait_until(lambda: t.output.read_bytes().count(marker) >= 6 or
                       load.poll() is not None, 60, "the load's first records in the output")
    if load.poll() is not None:
        raise TestFailure("the load ended before the analyzer could be killed in its middle")
    victim = [p for p in analyzers_of(loaderd.pid) if p != first[0]
              and not status_of(p)["State"].startswith("Z")]
    if len(victim) != 1:
        raise TestFailure(f"expected one live analyzer, found {victim}")
    os.kill(victim[0], signal.SIGKILL)
    load_res = harness.client_results(t, load, 60)
    t.stop_server(server)
    cap = t.stop_loaderd()
    harness.check_framed_connection(cap, "after restart", c.pid, server.pid, res[0],
                                    items[0][0], items[0][1], "ipv4")
    if (cap.stats or {}).get("loaderd_analyzer_restarts") != 2:
        raise TestFailure(f"loaderd_analyzer_restarts = "
                          f"{(cap.stats or {}).get('loaderd_analyzer_restarts')}, expected 2")
    if not any("Restarting it." in ln and "bytes of frames" in ln
               for ln in t.loaderd_err.lines):
        raise TestFailure("loaderd did not log how much was lost")

    # Each connection: records on one conn_id before and after the kill, each record's bytes
    # exactly the bytes at its stream offset, and the last exchange captured whole.
    kill_ns = None
    total_missing = 0
    for r in load_res:
        i = r["i"]
        sent = b"".join(harness.framed_request(p, n) for p, n in exchanges[i])
        local = tuple(r["local"])
        recs = [x for x in cap.records if x["pid"] == load.pid and x["direction"] == "write"
                and (x["local"] or {}).get("port") == local[1]]
        if not recs:
            raise TestFailure(f"connection {i}: nothing captured")
        conn_ids = {x["conn_id"] for x in recs}
        if len(conn_ids) != 1:
            raise TestFailure(f"connection {i}: records under conn_ids {conn_ids}")
        for x in recs:
            if x["_bytes"] != sent[x["offset"]:x["offset"] + x["length"]]:
                raise TestFailure(f"connection {i}: record at offset {x['offset']} differs")
        covered = set()
        for x in recs:
            covered.update(range(x["offset"], x["offset"] + x["length"]))
        last = len(harness.framed_request(*exchanges[i][-1]))
        if not all(o in covered for o in range(len(sent) - last, len(sent))):
            raise TestFailure(f"connection {i}: the last exchange (after the restart) is not "
                              "captured whole")
        missing = len(sent) - len(covered)
        total_missing += missing
        harness.log(f"connection {i}: conn_id {conn_ids.pop()}, {len(covered)} of {len(sent)} "
                    f"B captured, {missing} B lost while the analyzer was down")
    # Nothing lost silently: what the clients' streams miss is within what loaderd counted as
    # lost with the killed analyzers (plus what the kernel dropped, if anything).
    st = cap.stats
    counted = st.get("loaderd_analyzer_lost_record_bytes", 0) + \
        st.get("kernel_drop_ringbuf_bytes", 0)
    if total_missing > counted or (total_missing > 0 and
                                   st.get("loaderd_analyzer_lost_record_bytes", 0) == 0):
        raise TestFailure(f"{total_missing} B missing from the clients' streams, but only "
                          f"{counted} B counted as lost: {st}")
    if not any("up to" in ln and "bytes of records it had not handled" in ln
               for ln in t.loaderd_err.lines):
        raise TestFailure("loaderd did not log the records the killed analyzer had not handled")
    harness.log(f"{total_missing} B missing from the clients' streams, {counted} B counted as "
                f"lost (an upper bound)")
    harness.log(f"analyzer {first[0]} killed, {second[0]} took over; exchange captured exactly; "
                f"killed again under load, capture resumed on the same connections")


if __name__ == "__main__":
    harness.run(main)
