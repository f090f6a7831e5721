#!/usr/bin/python3
# Proves: a Go connection read and written by two goroutines from its first calls on (as an HTTP/2 server's reader and writer do) is one connection in tlssniff, also when its *tls.Conn sits where a closed one did (Go's allocator reuses addresses, so the connection replaces another in the kernel's table): on 1,000 connections whose two sides' first calls race (at once on the client; on the server a read of waiting data against a write, at offsets spread over 15 us), every direction of every connection, client and server side, is exactly one stream of exactly the bytes sent, both directions share one conn_id, no two connections share one, every record carries the socket, and no wait for another thread's connection timed out. Without the agreement rules of docs/design.md it failed about one run in three.

import gobuild
import harness
from gobuild import events, run_client, start_server
from harness import TestFailure

CONNS = 1000


def explain(stream, expected):
    """Where a stream's records depart from the bytes sent, to tell a duplicate record from
    another connection's (whose first message starts with its side's tag and id)."""
    lines = []
    for r in stream.records:
        want = expected[r["offset"]:r["offset"] + r["length"]]
        if r["_bytes"] != want:
            lines.append(f"\n  record offset={r['offset']} length={r['length']} tid={r.get('tid')} "
                         f"ts={r['timestamp_ns']} starts {r['_bytes'][:12]!r}, sent there "
                         f"{want[:12]!r}; found in the sent bytes at "
                         f"{expected.find(r['_bytes']) if r['_bytes'] else -1}")
    return "".join(lines[:6]) or f"\n  conn={stream.conn_id}: every record matches the bytes sent"


def check_side(cap, pid, conn, what):
    """One connection as one side saw it: one conn_id both ways, exact bytes, the socket.

    Its 4-tuple may have been used by an earlier connection of the test (the kernel reuses
    ports on the loopback), so it is told by its bytes, which no other connection has."""
    lp, rp = conn["local_port"], conn["remote_port"]
    ids = set()
    for direction, key in (("write", "sent"), ("read", "received")):
        expected = bytes.fromhex(conn[key])
        ss = cap.find_stream_by_ports(pid, direction, lp, rp)
        match = [s for s in ss if s.data == expected and not s.problems]
        if len(match) != 1:
            raise TestFailure(f"{what} {lp}->{rp} {direction}: {len(match)} streams of "
                              f"exactly the {len(expected)} B sent; on these ports: "
                              f"{[s.describe() for s in ss][:4]}"
                              + "".join(explain(s, expected) for s in ss[:4]))
        harness.assert_addressing(match[0], f"{what} {direction}", "ipv4", ("127.0.0.1", lp),
                                  ("127.0.0.1", rp), "client" if what == "client" else "server")
        ids.add(match[0].conn_id)
    if len(ids) != 1:
        raise TestFailure(f"{what} {lp}->{rp}: its two directions are connections {sorted(ids)}")
    return ids.pop()


def main(t):
    exe = gobuild.build("go1.23", t.tmp / "tlspeer-go1.23", stripped=False)
    t.start_loaderd()
    srv, port = start_server(t, exe, "duplex-server", "duplex-server")
    t.wait_attached(exe)
    cli, lines = run_client(t, exe, "duplex-client", "duplex-client", "-connect",
                            f"127.0.0.1:{port}", "-conns", str(CONNS), "-parallel", "4")
    if cli.returncode != 0:
        raise TestFailure(f"duplex-client exited {cli.returncode}")
    client_conns = [c for c in lines if c.get("event") == "duplex_conn"]
    server_conns = events(t, srv, "duplex_conn", CONNS)
    if len(client_conns) != CONNS:
        raise TestFailure(f"duplex-client reported {len(client_conns)} connections")
    t.stop_loaderd()
    cap = t.capture
    cap.assert_valid()

    seen = {}
    failures = []
    for pid, conns, what in ((cli.pid, client_conns, "client"), (srv.pid, server_conns, "server")):
        for conn in conns:
            try:
                cid = check_side(cap, pid, conn, what)
            except TestFailure as e:  # all of them: a misplaced record shows on two connections
                failures.append(str(e))
                continue
            if cid in seen:
                raise TestFailure(f"{what} {conn['local_port']}->{conn['remote_port']} shares "
                                  f"conn_id {cid} with {seen[cid]}")
            seen[cid] = f"{what} {conn['local_port']}->{conn['remote_port']}"
    if failures:
        raise TestFailure(f"{len(failures)} connection sides wrong:\n" + "\n".join(failures[:6]))
    extra = [s.describe() for p in (cli.pid, srv.pid) for s in cap.streams_of(p)
             if s.conn_id not in seen]
    if extra:
        raise TestFailure(f"{len(extra)} streams outside the connections: {extra[:4]}")
    stats = cap.stats
    for k in ("kernel_go_calls_without_fd", "kernel_calls_without_socket",
              "kernel_conn_wait_timeouts", "kernel_drop_conn_updates",
              "analyzer_late_socket_messages", "kernel_drop_ringbuf_bytes",
              "analyzer_stream_gaps"):
        if stats.get(k, 0) != 0:
            raise TestFailure(f"{k} = {stats.get(k)}")
    harness.log(f"{CONNS} connections read and written at once from their first calls: each "
                "side of each one connection, exact both ways")


harness.run(main)
