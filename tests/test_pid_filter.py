#!/usr/bin/python3
# Proves: with --pid A only process A's TLS traffic is captured (exactly); another client B and the server produce no records.

import os

import harness
from harness import TestFailure

HOST = "127.0.0.1"


def main(t):
    cert, key = t.make_cert()
    server, port = t.start_server("framed", cert, key, HOST)
    a_items = [(os.urandom(12000), 10000), (os.urandom(300), 5000)]
    b_items = [(os.urandom(9000), 7000), (os.urandom(400), 600), (os.urandom(1), 1)]
    a = harness.spawn_client(t, "client-A", port, a_items, cert, flags=["--wait-go"])
    t.expect_line(a, "WAITING")

    t.start_loaderd("--pid", a.pid)
    t.diag_pids = None  # show everything that was captured: only A may appear
    a.stdin.write(b"go\n")
    a.stdin.flush()
    res_a = harness.client_results(t, a)
    b = harness.spawn_client(t, "client-B", port, b_items, cert)
    res_b = harness.client_results(t, b)
    t.stop_server(server)
    cap = t.stop_loaderd()

    for r, (payload, reply_len) in zip(res_a, a_items):
        harness.check_framed_connection(cap, f"client A connection {r['i']}", a.pid, None, r,
                                        payload, reply_len, "ipv4")
    if len(cap.streams_of(a.pid)) != 2 * len(a_items):
        raise TestFailure(f"client A has {len(cap.streams_of(a.pid))} streams, expected "
                          f"{2 * len(a_items)}")
    others = sorted({(r["pid"], r["comm"]) for r in cap.records if r["pid"] != a.pid})
    if others:
        raise TestFailure(f"--pid {a.pid} but records of other processes were written: "
                          f"{others} (client B is pid {b.pid}, the server pid {server.pid})")
    harness.log(f"only pid {a.pid} captured ({len(cap.records)} records); client B made "
                f"{len(res_b)} connections, none captured")


if __name__ == "__main__":
    harness.run(main)
