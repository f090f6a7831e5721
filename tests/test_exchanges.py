#!/usr/bin/python3
# Proves: with --exchanges, HTTP/1.1 traffic becomes request/response exchange records on both sides: curl's keep-alive requests on one connection, a chunked response, a POST with a body, two pipelined requests sent in one write; each with the right method, path, status, body sizes, redacted secrets (headers, query values, JSON fields; data records keep the plaintext), and a latency that is positive and not larger than the wall time the client measured.

import json
import os
import time

import harness
from harness import TestFailure

HOST = "127.0.0.1"


# Two pipelined requests in one write, then both responses read. Prints the elapsed ns.
PIPELINE_PY = r"""
import socket, ssl, sys, time
port = int(sys.argv[1])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
t0 = time.monotonic_ns()
s.sendall(b"GET /len/10 HTTP/1.1\r\nHost: pipe\r\n\r\nGET /len/20 HTTP/1.1\r\nHost: pipe\r\n\r\n")
got = b""
while got.count(b"HTTP/1.1 200") < 2 or not got.endswith(bytes((i * 7 + 3) % 251 for i in range(20))):
    got += s.recv(65536)
print("ELAPSED", time.monotonic_ns() - t0, flush=True)
"""


def exchanges_of(cap, pid):
    return [r for r in cap.other if r.get("type") == "exchange" and r["pid"] == pid]


def main(t):
    cert, key = t.make_cert()
    t.write_file("pipeline.py", PIPELINE_PY.encode())
    t.start_loaderd("--exchanges", "--body-preview", "64")
    server, port = harness.start_http_server(t, cert, key)
    base = f"https://{HOST}:{port}"

    # curl: three requests on one keep-alive connection, then a POST, with a secret header.
    t0 = time.monotonic_ns()
    curl = t.spawn(["curl", "-sS", "-k", "--http1.1", "-H", "Authorization: Bearer hunter2",
                    "-o", "/dev/null", f"{base}/len/1000", "-o", "/dev/null",
                    f"{base}/chunked/5000", "-o", "/dev/null", f"{base}/missing",
                    "--next", "-sS", "-k", "--http1.1", "-H", "Authorization: Bearer hunter2",
                    "-o", "/dev/null", "--data-binary",
                    "@" + t.write_file("post.bin", b"p" * 3000), f"{base}/post"], name="curl")
    t.wait_proc(curl, 30)
    curl_wall = time.monotonic_ns() - t0
    pipe = t.spawn([harness.PYTHON, t.tmp / "pipeline.py", port], name="pipeline")
    pipe.out = harness.ByteReader(pipe.stdout, pipe.name)
    pipe_wall = int(t.expect_line(pipe, "ELAPSED", 30))
    t.wait_proc(pipe, 10)
    # A login with a token in the query and a password in a JSON body: redacted in the
    # exchange, kept in the data records (the plaintext itself).
    login = t.spawn(["curl", "-sS", "-k", "--http1.1", "-o", "/dev/null", "-H",
                     "Content-Type: application/json", "--data-binary",
                     '{"user":"bob","password":"SECRET-B"}',
                     f"{base}/login?user=bob&token=SECRET-Q"], name="curl-login")
    t.wait_proc(login, 30)
    # A body delimited by the end of the connection: the exchange and the connection's end are
    # written when the socket closes, not when tlssniff stops.
    closer = t.spawn(["curl", "-sS", "-k", "--http1.1", "-o", "/dev/null", f"{base}/close/777"],
                     name="curl-close")
    t.wait_proc(closer, 30)

    def live_records():
        with open(t.output, "rb") as f:
            lines = f.read().split(b"\n")
        return [json.loads(ln) for ln in lines if ln.startswith(b"{")]

    def closed_seen():
        recs = live_records()
        return (any(r.get("type") == "exchange" and r["pid"] == closer.pid for r in recs) and
                any(r.get("type") == "connection" and r["pid"] == closer.pid and
                    r.get("reason") == "closed" for r in recs))
    harness.wait_until(closed_seen, 10, "the close-delimited exchange and its connection end, "
                       "while tlssniff runs")
    server.stdin.close()
    t.wait_proc(server, 10)
    cap = t.stop_loaderd()
    cx = exchanges_of(cap, closer.pid)
    if [(x["path"], x["status"], x["response_body_bytes"], x["error"]) for x in cx] != \
            [("/close/777", 200, 777, None)]:
        raise TestFailure(f"close-delimited exchange: {cx}")
    ends = [r for r in cap.other if r.get("type") == "connection" and r["pid"] == closer.pid
            and r["event"] == "end"]
    opens = [r for r in cap.other if r.get("type") == "connection" and r["pid"] == closer.pid
             and r["event"] == "open"]
    # The open record: made after tlssniff started, so its connect() time is known, and it
    # comes before the exchange; the same connection as the end record.
    if len(opens) != 1 or not ends or opens[0]["conn_id"] != ends[0]["conn_id"] or \
            opens[0]["open_timestamp_ns"] is None or opens[0]["role"] != "client" or \
            not opens[0]["open_timestamp_ns"] <= opens[0]["seen_timestamp_ns"] or \
            not opens[0]["open_timestamp_ns"] <= cx[0]["timestamp_ns"] or \
            opens[0]["remote"]["port"] != port:
        raise TestFailure(f"connection open record {opens}, end {ends}, exchange {cx}")
    sent = sum(s.data.__len__() for s in cap.streams_of(closer.pid, "write"))
    received = sum(len(s.data) for s in cap.streams_of(closer.pid, "read"))
    if len(ends) != 1 or ends[0]["bytes_sent"] != sent or ends[0]["bytes_received"] != received \
            or ends[0]["protocol"] != "http/1" or not ends[0]["duration_ms"] > 0:
        raise TestFailure(f"connection end record {ends}, expected bytes {sent}/{received}")

    got = exchanges_of(cap, curl.pid)
    want = [("GET", "/len/1000", 200, 0, 1000), ("GET", "/chunked/5000", 200, 0, 5000),
            ("GET", "/missing", 404, 0, 0), ("POST", "/post", 201, 3000, 8)]
    if len(got) != len(want):
        raise TestFailure(f"curl: {len(got)} exchanges, expected {len(want)}: "
                          f"{[(x['method'], x['path'], x['status']) for x in got]}")
    conns = {x["conn_id"] for x in got[:3]}
    if len(conns) != 1:
        raise TestFailure(f"curl's keep-alive exchanges are on conn_ids {conns}, expected one")
    for x, (method, path, status, req_b, resp_b) in zip(got, want):
        seen = (x["method"], x["path"], x["status"], x["request_body_bytes"],
                x["response_body_bytes"])
        if seen != (method, path, status, req_b, resp_b):
            raise TestFailure(f"curl exchange {seen}, expected {(method, path, status, req_b, resp_b)}")
        if x["error"] is not None or x["role"] != "client" or x["authority"] != f"{HOST}:{port}":
            raise TestFailure(f"curl exchange {path}: error {x['error']!r}, role {x['role']}, "
                              f"authority {x['authority']!r}")
        if not (0 < x["latency_ms"] * 1e6 <= curl_wall) or x["ttfb_ms"] < 0:
            raise TestFailure(f"curl exchange {path}: latency {x['latency_ms']} ms, wall "
                              f"{curl_wall / 1e6:.3f} ms, ttfb {x['ttfb_ms']}")
        auth = [v for k, v in x["request_headers"] if k.lower() == "authorization"]
        if auth != ["[redacted]"]:
            raise TestFailure(f"Authorization not redacted: {auth}")
    if got[1]["response_body_preview"] != "".join(chr((i * 7 + 3) % 251) for i in range(64)):
        raise TestFailure("the chunked response's preview is not its first 64 de-chunked bytes")
    if [v for k, v in got[1]["response_headers"] if k.lower() == "set-cookie"] != ["[redacted]"]:
        raise TestFailure("Set-Cookie not redacted")
    if got[3]["request_body_preview"] != "p" * 64:
        raise TestFailure("POST body preview wrong")

    # The server saw the same exchanges from its side.
    srv = [x for x in exchanges_of(cap, server.pid) if x["conn_id"] != 0]
    paths = sorted((x["method"], x["path"], x["status"], x["role"]) for x in srv)
    for method, path, status, _, _ in want:
        if (method, path, status, "server") not in paths:
            raise TestFailure(f"server side lacks {method} {path} {status}: {paths}")

    # Sensitive query values and JSON fields: redacted in exchanges, nowhere else changed.
    lx = exchanges_of(cap, login.pid)
    if [(x["path"], x["request_body_preview"]) for x in lx] != \
            [("/login?user=bob&token=[redacted]", '{"user":"bob","password":"[redacted]"}')]:
        raise TestFailure(f"login exchange not redacted as expected: "
                          f"{[(x['path'], x['request_body_preview']) for x in lx]}")
    if any("SECRET-" in json.dumps(r) for r in cap.other):
        raise TestFailure("a secret of the login is in an exchange or connection record")
    sent = b"".join(s.data for s in cap.streams_of(login.pid, "write"))
    if b"token=SECRET-Q" not in sent or b'"password":"SECRET-B"' not in sent:
        raise TestFailure("the login's data records lack its plaintext (data is never redacted)")

    # Pipelined: two requests in one write, paired in order.
    pl = exchanges_of(cap, pipe.pid)
    if [(x["path"], x["status"], x["response_body_bytes"]) for x in pl] != \
            [("/len/10", 200, 10), ("/len/20", 200, 20)]:
        raise TestFailure(f"pipelined exchanges: {[(x['path'], x['status']) for x in pl]}")
    for x in pl:
        if not (0 < x["latency_ms"] * 1e6 <= pipe_wall):
            raise TestFailure(f"pipelined {x['path']}: latency {x['latency_ms']} ms > wall "
                              f"{pipe_wall / 1e6:.3f} ms")
    stats = cap.stats or {}
    if stats.get("analyzer_exchanges", 0) < 2 * len(want) + 4:
        raise TestFailure(f"analyzer_exchanges = {stats.get('analyzer_exchanges')}")
    harness.log("exchanges: " + "; ".join(
        f"{x['method']} {x['path']} {x['status']} {x['latency_ms']:.3f} ms" for x in got + pl))


if __name__ == "__main__":
    harness.run(main)
