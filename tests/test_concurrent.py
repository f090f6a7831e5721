#!/usr/bin/python3
# Proves: 50 concurrent TLS connections with distinct payloads are each reassembled byte-exact in both directions, on both ends, and attributed to the right connection and client fd, with socket identity from the per-call system call tracepoints (--syscall-hooks per-call).

import os
import random

import harness
from harness import TestFailure

N = 50
HOST = "127.0.0.1"


def main(t):
    cert, key = t.make_cert()
    rng = random.Random()
    # Distinct sizes (1 B .. 48 KiB) so a stream attributed to the wrong connection cannot
    # match by accident; random bytes so no two payloads share content either.
    sizes = rng.sample(range(1, 48 * 1024), 2 * N)
    items = [(os.urandom(sizes[2 * i]), sizes[2 * i + 1]) for i in range(N)]

    # Socket identity from the per-call system call tracepoints here (every other test but
    # test_python, which uses the raw ones, gets it from the socket tracepoints).
    t.start_loaderd("--syscall-hooks", "per-call")
    if not any("Sockets seen through per-call system call tracepoints" in ln
               for ln in t.loaderd_err.lines):
        raise TestFailure("--syscall-hooks per-call did not select the per-call tracepoints")
    server, port = t.start_server("framed", cert, key, HOST)
    # One process, 50 threads; each opens its connection, waits until all 50 are open,
    # exchanges, waits until all are done, closes.
    client = harness.spawn_client(t, "clients", port, items, cert, flags=["--parallel"])
    results = harness.client_results(t, client, 50)
    t.diag_pids = {client.pid, server.pid}
    t.stop_server(server)
    cap = t.stop_loaderd()

    if len({tuple(r["local"]) for r in results}) != N:
        raise TestFailure("client connections do not have distinct local ports (setup problem)")
    failures = []
    conn_ids = {}
    for r in results:
        payload, reply_len = items[r["i"]]
        try:
            streams = harness.check_framed_connection(
                cap, f"connection {r['i']} (local port {r['local'][1]})", client.pid,
                server.pid, r, payload, reply_len, "ipv4")
        except TestFailure as e:
            failures.append(str(e))
            continue
        for s in streams:
            conn_ids.setdefault((s.pid, s.conn_id), set()).add(r["i"])
    shared = {k: v for k, v in conn_ids.items() if len(v) > 1}
    if shared:
        failures.append(f"conn_ids shared by several connections: {shared}")
    for pid, who in ((client.pid, "client"), (server.pid, "server")):
        n = len(cap.streams_of(pid))
        if n != 2 * N:
            failures.append(f"{who} pid {pid} has {n} streams, expected {2 * N}")
    if failures:
        raise TestFailure(f"{len(failures)} problem(s); the first ones:\n" +
                          "\n".join(failures[:8]))
    harness.log(f"all {4 * N} streams ({N} connections, both ends, both directions) exact")


if __name__ == "__main__":
    harness.run(main)
