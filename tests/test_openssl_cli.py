#!/usr/bin/python3
# Proves: openssl s_client <-> s_server payloads of 1 B..1 MiB each way are captured byte-exact on both sides with the right 4-tuple and role.

import os
import threading

import harness
from harness import TestFailure

SIZES = [1, 100, 16 * 1024, 1024 * 1024]
HOST = "127.0.0.1"


def feed(proc, data):
    """Writes data to proc's stdin from a thread (the other side's pipe is read meanwhile)."""
    def run():
        try:
            proc.stdin.write(data)
            proc.stdin.flush()
        except OSError as e:
            errors.append(f"{proc.name}: writing stdin: {e}")
    errors = []
    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th, errors


def send(src, dst, data, label):
    th, errors = feed(src, data)
    got = dst.out.wait_bytes(len(data), 30)
    th.join(30)
    if errors:
        raise TestFailure("; ".join(errors))
    if got != data:
        raise TestFailure(f"{label}: the peers themselves corrupted {len(data)} B "
                          f"(test setup problem, not tlssniff)")


def main(t):
    cert, key = t.make_cert()
    port = harness.free_port(HOST)
    t.start_loaderd()
    # Socket identity from the socket tracepoints (the default) wherever the kernel has them.
    if os.path.exists("/sys/kernel/tracing/events/sock/sock_recv_length") and not any(
            "Sockets seen through the socket tracepoints" in ln for ln in t.loaderd_err.lines):
        raise TestFailure("the kernel has sock_recv_length but loaderd did not use it")

    server = t.spawn(["openssl", "s_server", "-accept", f"{HOST}:{port}", "-cert", cert,
                      "-key", key, "-naccept", "1", "-quiet"], name="s_server")
    server.out = harness.ByteReader(server.stdout, "s_server stdout")
    harness.wait_until(lambda: harness._listening(port) or server.poll() is not None, 20,
                       f"s_server listening on {port}")
    if server.poll() is not None:
        raise TestFailure(f"s_server exited with {server.returncode}")
    client = t.spawn(["openssl", "s_client", "-connect", f"{HOST}:{port}", "-quiet",
                      "-no_ign_eof", "-nocommands"], name="s_client")
    client.out = harness.ByteReader(client.stdout, "s_client stdout")
    t.diag_pids = {client.pid, server.pid}

    c2s, s2c = bytearray(), bytearray()
    conns = []
    for size in SIZES:
        data = os.urandom(size)
        send(client, server, data, f"client->server {size} B")
        c2s += data
        if not conns:
            conns = harness.tcp_conns_of(client.pid)
        data = os.urandom(size)
        send(server, client, data, f"server->client {size} B")
        s2c += data
    if len(conns) != 1:
        raise TestFailure(f"s_client has {len(conns)} TCP connections: {conns}")
    client_local, client_remote = conns[0]
    if client_remote != (HOST, port):
        raise TestFailure(f"s_client is connected to {client_remote}, not {HOST}:{port}")
    harness.log(f"s_client pid {client.pid} {client_local} -> s_server pid {server.pid} "
                f"{client_remote}; {len(c2s)} B each way")

    client.stdin.close()  # -no_ign_eof: s_client closes the connection, s_server (-naccept 1) exits
    t.wait_proc(client, 20)
    t.wait_proc(server, 20)

    cap = t.stop_loaderd()
    c2s, s2c = bytes(c2s), bytes(s2c)
    cw = cap.find_stream(client.pid, "write", c2s, "s_client write stream")
    cr = cap.find_stream(client.pid, "read", s2c, "s_client read stream")
    sr = cap.find_stream(server.pid, "read", c2s, "s_server read stream")
    sw = cap.find_stream(server.pid, "write", s2c, "s_server write stream")
    if cw.conn_id != cr.conn_id or sw.conn_id != sr.conn_id:
        raise TestFailure(f"one connection has two conn_ids: client {cw.conn_id}/{cr.conn_id}, "
                          f"server {sw.conn_id}/{sr.conn_id}")
    for s, who in ((cw, "s_client write"), (cr, "s_client read")):
        harness.assert_addressing(s, who, "ipv4", client_local, client_remote, "client")
    for s, who in ((sw, "s_server write"), (sr, "s_server read")):
        harness.assert_addressing(s, who, "ipv4", client_remote, client_local, "server")
    for s in (cw, cr, sw, sr):
        if s.records[0]["source"] != "openssl":
            raise TestFailure(f"conn {s.conn_id}: source {s.records[0]['source']!r}")
    harness.log("all four streams exact: " + "; ".join(s.describe() for s in (cw, cr, sw, sr)))


if __name__ == "__main__":
    harness.run(main)
