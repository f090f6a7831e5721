#!/usr/bin/python3
# Proves: a TLS connection established before tlssniff started is still captured byte-exact on both ends (the server's read already in progress at attach time included: reads are probed on OpenSSL's copy), with its 4-tuple and a role guessed from the listening port.
#
# What can be seen: the server sits inside SSL_read (reading the 8-byte header of the next
# exchange) when tlssniff attaches. With reads placed on OpenSSL's copy to the caller
# (docs/design.md, "Reads on the copy"; Debian's libssl3) that read is captured too: its memcpy
# runs after the attach. Its record and the next one (served from OpenSSL's buffer) may come
# before the socket is known and are held until it is; every later record must carry the
# 4-tuple. The client's calls all start after tlssniff is ready: its streams must be complete
# and fully identified.

import os

import harness
from harness import TestFailure

HOST = "127.0.0.1"


def main(t):
    cert, key = t.make_cert()
    server, port = t.start_server("framed", cert, key, HOST)
    p1, n1 = os.urandom(5000), 7000
    p2, n2 = os.urandom(3000), 2000
    # The client connects and finishes the handshake, then waits; only then tlssniff starts.
    client = harness.spawn_client(t, "old-conn", port, [(p1, n1, [(p2, n2)])], cert,
                                  flags=["--connect-before-go", "--wait-go", "--pause", "0.3"])
    t.expect_line(client, "CONNECTED")
    t.expect_line(client, "WAITING")

    t.start_loaderd()
    t.diag_pids = {client.pid, server.pid}
    client.stdin.write(b"go\n")
    client.stdin.flush()
    res = harness.client_results(t, client)[0]
    t.stop_server(server)
    cap = t.stop_loaderd()

    local, remote = tuple(res["local"]), tuple(res["remote"])
    req1, req2 = harness.framed_request(p1, n1), harness.framed_request(p2, n2)
    rep = harness.framed_reply(p1, n1) + harness.framed_reply(p2, n2)
    cw = cap.find_stream(client.pid, "write", req1 + req2, "client write stream")
    cr = cap.find_stream(client.pid, "read", rep, "client read stream")
    for s in (cw, cr):
        # docs/output.md: role_source "listen" is the guess for connections older than tlssniff
        harness.assert_addressing(s, f"client {s.direction}", "ipv4", local, remote, "client",
                                  ("listen",))
    # The read in progress at attach time delivers its 8 header bytes through the probed copy.
    sr = cap.find_stream(server.pid, "read", req1 + req2,
                         "server read stream (with the call in progress at attach time)")
    sw = cap.find_stream(server.pid, "write", rep, "server write stream")
    harness.assert_addressing(sr, "server read", "ipv4", remote, local, "server", ("listen",),
                              unknown_below=len(req1))
    harness.assert_addressing(sw, "server write", "ipv4", remote, local, "server", ("listen",))
    if sr.conn_id != sw.conn_id or cr.conn_id != cw.conn_id:
        raise TestFailure(f"one connection has two conn_ids: client {cw.conn_id}/{cr.conn_id},"
                          f" server {sw.conn_id}/{sr.conn_id}")
    harness.log("OK: " + "; ".join(s.describe() for s in (cw, cr, sr, sw)))


if __name__ == "__main__":
    harness.run(main)
