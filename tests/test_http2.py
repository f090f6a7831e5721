#!/usr/bin/python3
# Proves: with --exchanges, HTTP/2 over TLS is turned into exchanges on both sides of a connection: nghttp fetching three files concurrently from nghttpd on one connection (each stream paired with its own response: path, status, body size, stream id), curl --http2 making two requests on one connection, a Go net/http client and server (ALPN h2); gRPC (Python grpcio, TLS) unary, server-streaming and an error status give service, method, grpc-status, grpc-message and message counts; every exchange has a positive latency.

import json
import shutil
import subprocess
import sys

import gobuild
import harness
from harness import TestFailure

HOST = "127.0.0.1"
PY = "/usr/bin/python3"

# A gRPC server and client without generated code: generic handlers with bytes in and out.
GRPC_PY = r"""
import sys, time, grpc
from concurrent import futures
mode, port, cert, key = sys.argv[1:5]
ident = lambda b: b
if mode == "server":
    def unary(req, ctx):
        if req == b"missing":
            ctx.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
        return b"echo:" + req
    def stream(req, ctx):
        for i in range(3):
            yield b"part-%d:" % i + req
    handler = grpc.method_handlers_generic_handler("demo.Echo", {
        "Unary": grpc.unary_unary_rpc_method_handler(unary, ident, ident),
        "Stream": grpc.unary_stream_rpc_method_handler(stream, ident, ident),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    creds = grpc.ssl_server_credentials([(open(key, "rb").read(), open(cert, "rb").read())])
    server.add_secure_port("127.0.0.1:" + port, creds)
    server.start()
    print("LISTENING", flush=True)
    sys.stdin.read()
    server.stop(0)
else:
    creds = grpc.ssl_channel_credentials(open(cert, "rb").read())
    opts = (("grpc.ssl_target_name_override", "localhost"),)
    with grpc.secure_channel("127.0.0.1:" + port, creds, opts) as ch:
        unary = ch.unary_unary("/demo.Echo/Unary", ident, ident)
        stream = ch.unary_stream("/demo.Echo/Stream", ident, ident)
        print("UNARY", unary(b"hello", timeout=10).decode(), flush=True)
        print("STREAM", [m.decode() for m in stream(b"x", timeout=10)], flush=True)
        try:
            unary(b"missing", timeout=10)
        except grpc.RpcError as e:
            print("ERROR", e.code().name, e.details(), flush=True)
"""


def exchanges(cap, pid):
    return sorted((x for x in cap.other if x.get("type") == "exchange" and x["pid"] == pid),
                  key=lambda x: x["timestamp_ns"])


def check_common(xs, what):
    for x in xs:
        if x["protocol"] != "http/2" or not isinstance(x["stream_id"], int) or \
                x["stream_id"] % 2 != 1:
            raise TestFailure(f"{what}: not an HTTP/2 exchange on a client stream: {x}")
        if x["error"] is not None:
            raise TestFailure(f"{what}: exchange with error {x['error']!r}: {x}")
        if x["latency_ms"] is None or not x["latency_ms"] > 0:
            raise TestFailure(f"{what}: latency {x['latency_ms']}: {x}")


def summary(xs):
    return [(x["method"], x["path"], x["status"], x["response_body_bytes"], x["stream_id"])
            for x in xs]


def main(t):
    for tool in ("nghttpd", "nghttp", "curl"):
        if not shutil.which(tool):
            raise TestFailure(f"{tool} not found (tools/bootstrap.sh --tests installs it)")
    cert, key = t.make_cert()
    docs = t.tmp / "htdocs"
    docs.mkdir()
    sizes = {"a.bin": 1000, "b.bin": 20000, "c.bin": 5}
    for name, n in sizes.items():
        (docs / name).write_bytes(bytes((i * 7 + len(name)) % 256 for i in range(n)))
    go = gobuild.build("go1.19", t.tmp / "tlspeer-go1.19")
    t.write_file("grpcpeer.py", GRPC_PY.encode())

    t.start_loaderd("--exchanges")
    port = harness.free_port(HOST)
    srv = t.spawn(["nghttpd", "-a", HOST, "-d", docs, str(port), key, cert], name="nghttpd")
    harness.wait_until(lambda: harness._listening(port), 10, "nghttpd listening")

    # nghttp: three files at once, one connection, concurrent streams.
    urls = [f"https://{HOST}:{port}/{n}" for n in sizes]
    ng = t.spawn(["nghttp", "-n", *urls], name="nghttp")
    t.wait_proc(ng, 30)
    # curl: two requests, one connection.
    cu = t.spawn(["curl", "-sk", "--http2", "-o", "/dev/null", "-o", "/dev/null", urls[0], urls[2]],
                 name="curl-h2")
    t.wait_proc(cu, 30)

    # Go net/http, ALPN h2.
    gs = t.spawn([go, "http-server", "-listen", f"{HOST}:0", "-h2"], name="go-http-server")
    gs.out = harness.ByteReader(gs.stdout, "go-http-server stdout")
    gport = json.loads("{" + t.expect_line(gs, "{"))["port"]
    t.wait_attached(go)
    gc = t.spawn([go, "http-client", "-url", f"https://{HOST}:{gport}", "-h2", "-n", "2"],
                 name="go-http-client")
    t.wait_proc(gc, 30)

    # gRPC over TLS.
    gp = harness.free_port(HOST)
    gsrv = t.spawn([PY, t.tmp / "grpcpeer.py", "server", str(gp), cert, key], name="grpc-server")
    gsrv.out = harness.ByteReader(gsrv.stdout, "grpc-server stdout")
    t.expect_line(gsrv, "LISTENING", 30)
    gcli = t.spawn([PY, t.tmp / "grpcpeer.py", "client", str(gp), cert, key], name="grpc-client")
    gcli.out = harness.ByteReader(gcli.stdout, "grpc-client stdout")
    t.wait_proc(gcli, 60)
    out = gcli.out.rest().decode()
    if "UNARY echo:hello" not in out or "ERROR NOT_FOUND no such thing" not in out:
        raise TestFailure(f"grpc client printed {out!r}")
    gsrv.stdin.close()
    t.wait_proc(gsrv, 20)

    cap = t.stop_loaderd()
    cap.assert_valid()

    want = sorted((("GET", "/" + n, 200, sz) for n, sz in sizes.items()))
    for pid, what in ((ng.pid, "nghttp"), (srv.pid, "nghttpd")):
        xs = [x for x in exchanges(cap, pid)
              if what == "nghttp" or x["conn_id"] in {y["conn_id"] for y in exchanges(cap, pid)}]
        if what == "nghttpd":
            # the server saw nghttp's and curl's connections: nghttp's is the one with 3 streams
            by_conn = {}
            for x in xs:
                by_conn.setdefault(x["conn_id"], []).append(x)
            xs = next((v for v in by_conn.values() if len(v) == 3), [])
        check_common(xs, what)
        got = sorted((x["method"], x["path"], x["status"], x["response_body_bytes"]) for x in xs)
        if got != want or len({x["stream_id"] for x in xs}) != 3 or \
                len({x["conn_id"] for x in xs}) != 1:
            raise TestFailure(f"{what}: exchanges {summary(xs)}, expected {want} on one "
                              "connection with three streams")
    harness.log("nghttp <-> nghttpd: three concurrent streams paired on both sides")

    xs = exchanges(cap, cu.pid)
    check_common(xs, "curl --http2")
    if [(x["path"], x["status"], x["response_body_bytes"]) for x in xs] != \
            [("/a.bin", 200, 1000), ("/c.bin", 200, 5)] or len({x["conn_id"] for x in xs}) != 1:
        raise TestFailure(f"curl --http2: {summary(xs)}")
    harness.log("curl --http2: two requests on one connection")

    for pid, what in ((gc.pid, "go client"), (gs.pid, "go server")):
        xs = exchanges(cap, pid)
        check_common(xs, what)
        got = [(x["method"], x["path"], x["status"]) for x in xs]
        if got != [("GET", "/hello", 200), ("POST", "/echo", 200)] * 2:
            raise TestFailure(f"{what}: {summary(xs)}")
        post = [x for x in xs if x["method"] == "POST"]
        if [x["request_body_bytes"] for x in post] != [6, 6] or \
                [x["response_body_preview"] for x in post] != ["ping-0", "ping-1"]:
            raise TestFailure(f"{what}: POST bodies {post}")
    harness.log("Go net/http over h2: both sides")

    for pid, what in ((gcli.pid, "grpc client"), (gsrv.pid, "grpc server")):
        xs = [x for x in exchanges(cap, pid) if x["grpc"]]
        got = [(x["grpc"]["service"], x["grpc"]["method"], x["grpc"]["status"],
                x["grpc"]["message"], x["grpc"]["request_messages"],
                x["grpc"]["response_messages"]) for x in xs]
        want_g = [("demo.Echo", "Unary", 0, "", 1, 1), ("demo.Echo", "Stream", 0, "", 1, 3),
                  ("demo.Echo", "Unary", 5, "no such thing", 1, 0)]
        if got != want_g:
            raise TestFailure(f"{what}: gRPC exchanges {got}, expected {want_g}")
        for x in xs:
            if x["method"] != "POST" or x["status"] != 200 or x["error"] is not None:
                raise TestFailure(f"{what}: {x}")
    harness.log("gRPC: unary, server streaming and an error status on both sides")

    if cap.stats.get("analyzer_http_errors", 0) != 0:
        raise TestFailure(f"analyzer_http_errors = {cap.stats.get('analyzer_http_errors')}")


harness.run(main)
