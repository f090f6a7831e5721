#!/usr/bin/python3
# Proves: a connection whose socket the kernel ends (TCP_CLOSE) before the program has read all
# it received stays one connection: a Go client that half-closes (close_notify, then a TCP FIN)
# and reads the server's reply only after the reply and the server's FIN have arrived (its socket
# then goes to TIME_WAIT, the kernel's TCP_CLOSE, while the reply is still unread) has its request
# and its reply on one conn_id, exact, and so has the server. Go learns the socket on every call:
# with the socket forgotten at TCP_CLOSE, the client's reads started a second connection.

import signal

import gobuild
import harness
from gobuild import run_client, start_server
from harness import TestFailure

CLIENTS = 4


def one(cap, pid, direction, lp, rp, expected, what):
    ss = cap.find_stream_by_ports(pid, direction, lp, rp)
    if len(ss) != 1 or ss[0].data != expected or ss[0].problems:
        raise TestFailure(f"{what} {direction}: {[s.describe() for s in ss]}, expected one "
                          f"stream of exactly {len(expected)} B; all the process's streams: "
                          f"{[s.describe() for s in cap.streams_of(pid)]}")
    return ss[0]


def main(t):
    exe = gobuild.build("go1.23", t.tmp / "tlspeer-go1.23", stripped=False)
    t.start_loaderd()
    srv, port = start_server(t, exe, "server", "server")
    t.wait_attached(exe)
    clients = []
    for i in range(CLIENTS):
        msg = f"half-close {i} ".encode() + bytes(range(32, 127)) * (i + 1)
        cli, lines = run_client(t, exe, f"once-{i}", "once", "-connect", f"127.0.0.1:{port}",
                                "-message", msg.decode(), "-tcp-half-close", "-read-after",
                                "300ms")
        ev = [ln for ln in lines if ln.get("event") == "once"]
        reply = b"echo:" + msg
        if len(ev) != 1 or ev[0]["received"].encode() != reply:
            raise TestFailure(f"client {i}: {lines}, expected the reply {reply!r}")
        clients.append((cli.pid, ev[0]["local_port"], msg, reply))
    srv.send_signal(signal.SIGTERM)
    t.wait_proc(srv)  # exits 0 if every connection was served without an error
    cap = t.stop_loaderd()
    for i, (pid, lp, msg, reply) in enumerate(clients):
        what = f"client {i} (port {lp})"
        w = one(cap, pid, "write", lp, port, msg, what)
        r = one(cap, pid, "read", lp, port, reply, what)
        if w.conn_id != r.conn_id:
            raise TestFailure(f"{what}: request on conn_id {w.conn_id}, reply on {r.conn_id}")
        sr = one(cap, srv.pid, "read", port, lp, msg, f"server of {what}")
        sw = one(cap, srv.pid, "write", port, lp, reply, f"server of {what}")
        if sr.conn_id != sw.conn_id:
            raise TestFailure(f"server of {what}: request on conn_id {sr.conn_id}, reply on "
                              f"{sw.conn_id}")
    harness.log(f"{CLIENTS} clients read their replies after their sockets closed in the "
                "kernel: each one connection, exact both ways, on both sides")


harness.run(main)
