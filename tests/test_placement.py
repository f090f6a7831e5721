#!/usr/bin/python3
# Proves: optimized probe placement (OpenSSL's reads on its memcpy to the caller, its writes on its copy into the record) captures exactly what plain entry/return probes capture (same bytes, directions, connection attribution) for OpenSSL 3.0 and 1.1.1 (bullseye), TLS and DTLS, node's static OpenSSL, curl and Go (1.15 ABI0 and 1.19 ABIInternal: entry probes on the stack-check branch and Read probed on its copy to the caller vs entry probes on the function entry and a probe on every RET); error returns (WANT_READ, a rejected argument, EOF) produce no data in either mode and SSL_peek's bytes are captured once; an SSL BIO user (s_server -WWW) is captured with optimized placement; a server that only reads gets its connection's addresses (from the handshake) in both modes; the placement decision is logged.

import os
import shutil
import threading
from pathlib import Path

import gobuild
import harness
from harness import TestFailure

HOST = "127.0.0.1"
NODE = shutil.which("node") or "/usr/bin/node"
BULLSEYE = Path(os.environ.get("TLSSNIFF_BULLSEYE_ROOT",
                               "/var/cache/tlssniff-test/bullseye/root"))
LIBSSL3 = "/usr/lib/x86_64-linux-gnu/libssl.so.3"
LIBSSL11 = BULLSEYE / "usr/lib/x86_64-linux-gnu/libssl.so.1.1"
OPENSSL11 = BULLSEYE / "usr/bin/openssl"
TLS_ERRORS = Path(os.environ.get("TLSSNIFF_TLS_ERRORS",
                                 str(harness.REPO / "build/tests/tls-errors")))
SIZES = [1, 100, 16 * 1024, 300 * 1024]

# argv: port, payload file, reply length. Sends the payload, reads the reply, exits.
NODE_JS = r"""
const tls = require('tls');
const fs = require('fs');
const [port, payloadFile, replyLen] = process.argv.slice(2);
const payload = fs.readFileSync(payloadFile);
let got = 0;
function go() {
  const s = tls.connect({ host: '127.0.0.1', port: Number(port), rejectUnauthorized: false },
                        () => { s.write(payload); });
  s.on('data', (d) => {
    got += d.length;
    if (got >= Number(replyLen)) { console.log('DONE ' + got); s.end(); }
  });
  s.on('close', () => process.exit(got >= Number(replyLen) ? 0 : 1));
  s.on('error', (e) => { console.error('tls error: ' + e); process.exit(1); });
}
console.log('WAITING');
process.stdin.once('data', () => { process.stdin.pause(); go(); });
"""

# A TLS server for tls-errors: reads len(message) bytes, sends the reply, closes cleanly. Without
# a reply file it only reads (a log receiver, say) and closes without writing: with reads on the
# copy that server's socket comes from the handshake's frame (docs/design.md).
SERVER_PY = r"""
import socket, ssl, sys
port, cert, key, msg_len = sys.argv[1:5]
reply_file = sys.argv[5] if len(sys.argv) > 5 else None
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(port)))
ls.listen(1)
print("LISTENING", flush=True)
c, _ = ls.accept()
s = ctx.wrap_socket(c, server_side=True)
got = b""
while len(got) < int(msg_len):
    d = s.recv(int(msg_len) - len(got))
    if not d:
        sys.exit("eof before the message")
    got += d
if reply_file:
    s.sendall(open(reply_file, "rb").read())
    s.unwrap()
s.close()
print("DONE", flush=True)
"""

# The client of the server that only reads: sends the payload file, waits for the close.
READONLY_CLIENT_PY = r"""
import socket, ssl, sys
port, payload_file = sys.argv[1:3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(port))))
s.sendall(open(payload_file, "rb").read())
try:
    while s.recv(4096):
        pass
except (ssl.SSLError, OSError):
    pass
print("DONE", flush=True)
"""


def run_readonly(t, port, cert, key, payload):
    server = t.spawn([harness.PYTHON, t.tmp / "server.py", port, cert, key, len(payload)],
                     name="readonly-server")
    server.out = harness.ByteReader(server.stdout, server.name)
    t.expect_line(server, "LISTENING", 20)
    client = t.spawn([harness.PYTHON, t.tmp / "roclient.py", port, t.tmp / "ro-payload.bin"],
                     name="readonly-client")
    client.out = harness.ByteReader(client.stdout, client.name)
    t.expect_line(server, "DONE", 30)
    t.expect_line(client, "DONE", 30)
    t.wait_proc(client, 20)
    t.wait_proc(server, 20)
    return client, server


# An HTTP/1.1 server for curl with a response that is the same in every run (no Date header).
HTTP_SERVER_PY = r"""
import socket, ssl, sys
port, cert, key, body_file = sys.argv[1:5]
body = open(body_file, "rb").read()
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(port)))
ls.listen(1)
print("LISTENING", flush=True)
c, _ = ls.accept()
s = ctx.wrap_socket(c, server_side=True)
req = b""
while b"\r\n\r\n" not in req:
    d = s.recv(4096)
    if not d:
        sys.exit("eof in the request")
    req += d
s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
          + body)
s.unwrap()
s.close()
print("DONE", flush=True)
"""


def ossl_env(lib_dir):
    return {"LD_LIBRARY_PATH": str(lib_dir)} if lib_dir else None


def start_s_server(t, name, openssl, port, cert, key, mode="-quiet", env=None, extra=()):
    """`openssl s_server` for one connection on port, once it listens (DTLS: once it runs)."""
    server = t.spawn([openssl, "s_server", "-accept", f"{HOST}:{port}", "-cert", cert, "-key",
                      key, "-naccept", "1", mode, *extra], name=name, env=env)
    server.out = harness.ByteReader(server.stdout, server.name)
    if "-dtls" in extra:
        harness.wait_until(lambda: udp_bound(port) or server.poll() is not None, 20,
                           f"{name} bound")
    else:
        harness.wait_until(lambda: harness._listening(port) or server.poll() is not None, 20,
                           f"{name} listening")
    return server


def udp_bound(port):
    """Whether a UDP socket is bound to port on 127.0.0.1 (/proc/net/udp)."""
    want = "0100007F:%04X" % port
    with open("/proc/net/udp") as f:
        return any(line.split()[1] == want for line in list(f)[1:])


def run_openssl_pair(t, tag, openssl, lib_dir, cert, key, port, payloads, dtls=False):
    """s_client <-> s_server exchanging payloads both ways (over DTLS on UDP with dtls);
    returns (client, server)."""
    env = ossl_env(lib_dir)
    proto = ["-dtls"] if dtls else []
    server = start_s_server(t, f"{tag}-s_server", openssl, port, cert, key, env=env,
                            extra=proto)
    if lib_dir:
        # A library no process mapped before is probed a few ms after the first process maps
        # it (docs/design.md): start the exchange once its probes are attached.
        t.wait_attached(Path(lib_dir) / "libssl.so.1.1")
    client = t.spawn([openssl, "s_client", "-connect", f"{HOST}:{port}", "-quiet",
                      "-no_ign_eof", "-nocommands"] + proto, name=f"{tag}-s_client", env=env)
    client.out = harness.ByteReader(client.stdout, client.name)
    for c2s, s2c in payloads:
        for src, dst, data in ((client, server, c2s), (server, client, s2c)):
            th = threading.Thread(target=lambda: (src.stdin.write(data), src.stdin.flush()),
                                  daemon=True)
            th.start()
            if dst.out.wait_bytes(len(data), 30) != data:
                raise TestFailure(f"{tag}: the peers corrupted their own data (setup problem)")
            th.join(30)
    client.stdin.close()
    t.wait_proc(client, 20)
    t.wait_proc(server, 20)
    return client, server


def run_node(t, port, cert, key, payload, reply):
    server = start_s_server(t, "node-s_server", "openssl", port, cert, key)
    client = t.spawn([NODE, t.tmp / "client.js", port, t.tmp / "node-payload.bin", len(reply)],
                     name="node")
    client.out = harness.ByteReader(client.stdout, "node")
    t.expect_line(client, "WAITING", 30)
    # node links OpenSSL statically: its probes are attached once its exec is seen. Calls
    # before that are not captured (docs/design.md), so start only once they are.
    t.wait_attached(os.path.realpath(NODE))
    client.stdin.write(b"go\n")
    client.stdin.flush()
    if server.out.wait_bytes(len(payload), 30) != payload:
        raise TestFailure("node: s_server did not receive the payload (setup problem)")
    server.stdin.write(reply)
    server.stdin.flush()
    t.expect_line(client, "DONE", 30)
    t.wait_proc(client, 20)
    server.stdin.close()
    t.wait_proc(server, 20)
    return client, server


def run_curl(t, port, cert, key):
    # Not `openssl s_server -WWW`: it reads and writes through an SSL BIO, which calls
    # OpenSSL's internal functions, not SSL_read/SSL_write (docs/design.md).
    server = t.spawn([harness.PYTHON, t.tmp / "httpserver.py", port, cert, key,
                      t.tmp / "www.bin"], name="curl-server")
    server.out = harness.ByteReader(server.stdout, server.name)
    t.expect_line(server, "LISTENING", 20)
    client = t.spawn(["curl", "-sS", "-k", "--http1.1", "-o", t.tmp / "curl-out.bin",
                      f"https://{HOST}:{port}/www.bin"], name="curl")
    t.wait_proc(client, 30)
    t.expect_line(server, "DONE", 20)
    t.wait_proc(server, 20)
    return client, server


def run_curl_bio(t, port, cert, key):
    """curl against `openssl s_server -WWW`, which uses OpenSSL through an SSL BIO."""
    server = start_s_server(t, "bio-s_server", "openssl", port, cert, key, mode="-WWW")
    client = t.spawn(["curl", "-sS", "-k", "--http1.1", "-o", t.tmp / "bio-out.bin",
                      f"https://{HOST}:{port}/www.bin"], name="bio-curl")
    t.wait_proc(client, 30)
    t.wait_proc(server, 20)
    return client, server


def run_errors(t, tag, libssl, port, cert, key, message, reply):
    server = t.spawn([harness.PYTHON, t.tmp / "server.py", port, cert, key, len(message),
                      t.tmp / "err-reply.bin"], name=f"{tag}-errserver")
    server.out = harness.ByteReader(server.stdout, server.name)
    t.expect_line(server, "LISTENING", 20)
    env = ossl_env(Path(libssl).parent)
    # In the ASan build the helper is instrumented but OpenSSL's global state is not freed
    # at exit: leak reports there are about OpenSSL, not about what this test checks.
    env["ASAN_OPTIONS"] = "detect_leaks=0"
    client = t.spawn([TLS_ERRORS, libssl, port, message.decode(), len(reply)],
                     name=f"{tag}-tls-errors", env=env)
    client.out = harness.ByteReader(client.stdout, client.name)
    if client.out.wait_bytes(len(reply), 30) != reply:
        raise TestFailure(f"{tag}: tls-errors did not get the reply (setup problem)")
    t.wait_proc(client, 20)
    t.expect_line(server, "DONE", 20)
    t.wait_proc(server, 20)
    steps = {}
    for line in client.err.lines:
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "step":
            steps[parts[1]] = parts[2:]
    want = {"read-want": ["ret", "-1", "err", "2"], "read-negative": ["ret", "-1"],
            "read-ex-want": ["ret", "0", "err", "2"]}
    for k, v in want.items():
        if steps.get(k) != v:
            raise TestFailure(f"{tag}: step {k} gave {steps.get(k)}, expected {v}: the error "
                              f"path was not exercised")
    if steps.get("peeks", ["count", "0"])[1] == "0":
        raise TestFailure(f"{tag}: no SSL_peek returned bytes: the peek path was not exercised")
    if steps.get("read-closed", ["ret", "1"])[1] not in ("0", "-1"):
        raise TestFailure(f"{tag}: read after close gave {steps.get('read-closed')}")
    return client, server


def side_view(cap, pid, port, expected, label):
    """Both directions of one process: the bytes and how they were attributed."""
    view = {}
    for direction in ("write", "read"):
        streams = cap.streams_of(pid, direction)
        data = b"".join(s.data for s in sorted(streams, key=lambda s: s.records[0]["timestamp_ns"]))
        if expected is not None and expected.get(direction) is not None and \
                data != expected[direction]:
            raise TestFailure(f"{label} {direction}: captured {len(data)} B, expected "
                              f"{len(expected[direction])} B exactly")
        attrs = set()
        for s in streams:
            for r in s.records:
                loc, rem = r["local"] or {}, r["remote"] or {}
                attrs.add((r["role"], r["role_source"], r["family"], loc.get("ip"),
                           loc.get("port") == port, rem.get("ip"), rem.get("port") == port,
                           r["fd"] >= 0, r["source"]))
        view[direction] = (data, sorted(attrs), len(streams))
    return view


def run_go(t, mode, tc, exe, port):
    """A Go tlspeer client and server (deterministic payloads); (client, server, dump dir)."""
    import json
    dump = t.tmp / f"go-{tc}-{mode}"
    dump.mkdir()
    srv = t.spawn([exe, "server", "-listen", f"{HOST}:{port}", "-dump", dump, "-exit-after", "1"],
                  name=f"go-server-{tc}-{mode}")
    srv.out = harness.ByteReader(srv.stdout, srv.name + " stdout")
    t.expect_line(srv, '{"event":"listening"')
    t.wait_attached(exe)
    cli = t.spawn([exe, "client", "-connect", f"{HOST}:{port}", "-sizes", "1,100,16384,307200",
                   "-seed", "3", "-dump", dump], name=f"go-client-{tc}-{mode}")
    t.wait_proc(cli, 60)
    t.wait_proc(srv, 30)
    return cli, srv, dump


def run_mode(t, mode, cert, key, port, data):
    # fallback: plain entry uprobes and uretprobes, as separate probes (no uprobe sessions).
    extra = ["--placement", "fallback", "--uprobe-sessions=no"] if mode == "fallback" else []
    t.start_loaderd(*extra)
    runs = {}
    payloads = data["payloads"]
    c2s = b"".join(p[0] for p in payloads)
    s2c = b"".join(p[1] for p in payloads)
    pair_expect = ({"write": c2s, "read": s2c}, {"write": s2c, "read": c2s})

    runs["openssl-3.0"] = (run_openssl_pair(t, "ossl3", "openssl", None, cert, key, port,
                                            payloads), pair_expect)
    runs["openssl-1.1.1"] = (run_openssl_pair(t, "ossl11", OPENSSL11, LIBSSL11.parent, cert, key,
                                              port, payloads), pair_expect)
    # DTLS (UDP): reads on the copy in dtls1_read_bytes. Small messages: DTLS does not
    # retransmit application data, and one datagram must hold each.
    dtls = data["dtls_payloads"]
    dtls_expect = ({"write": b"".join(p[0] for p in dtls), "read": b"".join(p[1] for p in dtls)},
                   {"write": b"".join(p[1] for p in dtls), "read": b"".join(p[0] for p in dtls)})
    runs["openssl-3.0-dtls"] = (run_openssl_pair(t, "dtls3", "openssl", None, cert, key, port,
                                                 dtls, dtls=True), dtls_expect)
    # 1.1.1's dtls1_read_bytes is probed whole (its copy cannot be placed), TLS on the copy.
    runs["openssl-1.1.1-dtls"] = (run_openssl_pair(t, "dtls11", OPENSSL11, LIBSSL11.parent, cert,
                                                   key, port, dtls, dtls=True), dtls_expect)
    runs["node"] = (run_node(t, port, cert, key, data["node_payload"], data["node_reply"]),
                    ({"write": data["node_payload"], "read": data["node_reply"]},
                     {"write": data["node_reply"], "read": data["node_payload"]}))
    runs["curl"] = (run_curl(t, port, cert, key), (None, None))
    ro = data["ro_payload"]
    runs["read-only-server"] = (run_readonly(t, port, cert, key, ro),
                                ({"write": ro, "read": None}, {"write": None, "read": ro}))
    for tag, lib in (("errors-3.0", LIBSSL3), ("errors-1.1.1", str(LIBSSL11))):
        runs[tag] = (run_errors(t, tag, lib, port, cert, key, data["err_message"],
                                data["err_reply"]),
                     ({"write": data["err_message"], "read": data["err_reply"]},
                      {"write": data["err_reply"], "read": data["err_message"]}))
    for tc, exe in data["go"].items():
        cli, srv, dump = run_go(t, mode, tc, exe, data["go_port"])
        sent = (dump / "client-0-sent.bin").read_bytes()
        received = (dump / "client-0-received.bin").read_bytes()
        runs[f"go-{tc}"] = ((cli, srv), ({"write": sent, "read": received},
                                          {"write": received, "read": sent}))
    bio = run_curl_bio(t, port, cert, key)
    log = "\n".join(t.loaderd_err.lines)
    cap = t.stop_loaderd()

    # An SSL BIO calls OpenSSL's internal functions, not SSL_read/SSL_write: probes on the
    # internal functions (auto) capture it, entry probes on the public ones cannot.
    bc = side_view(cap, bio[0].pid, port, None, f"{mode} bio curl")
    bs = side_view(cap, bio[1].pid, port, None, f"{mode} bio s_server")
    if not bc["write"][0] or not bc["read"][0].endswith(data["www"]):
        raise TestFailure(f"{mode}: curl's side of the s_server -WWW exchange not captured")
    if mode == "auto" and (bs["read"][0] != bc["write"][0] or bs["write"][0] != bc["read"][0]):
        raise TestFailure("auto: s_server -WWW (SSL BIO) not captured exactly: read "
                          f"{len(bs['read'][0])} B, wrote {len(bs['write'][0])} B")
    if mode == "fallback" and (bs["read"][0] or bs["write"][0]):
        raise TestFailure("fallback: s_server -WWW captured; docs/design.md says it is not")

    views = {}
    for tag, ((client, server), (cexp, sexp)) in runs.items():
        views[tag] = (side_view(cap, client.pid, port, cexp, f"{mode} {tag} client"),
                      side_view(cap, server.pid, port, sexp, f"{mode} {tag} server"))
    # curl: what one side sent is what the other read, and the file arrived.
    cv, sv = views["curl"]
    if cv["write"][0] != sv["read"][0] or cv["read"][0] != sv["write"][0]:
        raise TestFailure(f"{mode} curl: the two sides' captures disagree")
    if not cv["read"][0].endswith(data["www"]) or not cv["write"][0].startswith(b"GET /www.bin"):
        raise TestFailure(f"{mode} curl: request or file missing from the capture")
    stats = cap.stats or {}
    for k in ("kernel_unmatched_returns", "kernel_drop_entries", "kernel_drop_ringbuf_records",
              "kernel_lost_returns"):
        if stats.get(k, -1) != 0:
            raise TestFailure(f"{mode}: stats {k} = {stats.get(k)}, 0 expected")
    return views, log


def main(t):
    for path, what in ((TLS_ERRORS, "tls-errors helper (ninja -C build)"),
                       (LIBSSL11, "OpenSSL 1.1.1 (tools/bootstrap.sh --tests fetches it)"),
                       (OPENSSL11, "openssl 1.1.1 binary"), (Path(NODE), "node")):
        if not Path(path).exists():
            raise TestFailure(f"{what} not found at {path}")
    cert, key = t.make_cert()
    port = harness.free_port(HOST)
    rng = __import__("random").Random(7)
    data = {
        "payloads": [(rng.randbytes(n), rng.randbytes(n)) for n in SIZES],
        "dtls_payloads": [(rng.randbytes(n), rng.randbytes(n)) for n in (1, 100, 1000)],
        "node_payload": rng.randbytes(70 * 1024 + 5),
        "node_reply": rng.randbytes(90 * 1024 + 1),
        "www": rng.randbytes(200 * 1024),
        "ro_payload": rng.randbytes(50 * 1024 + 3),
        "err_message": b"hello-from-tls-errors",
        "err_reply": rng.randbytes(40 * 1024),
    }
    t.write_file("client.js", NODE_JS.encode())
    t.write_file("node-payload.bin", data["node_payload"])
    t.write_file("www.bin", data["www"])
    t.write_file("server.py", SERVER_PY.encode())
    t.write_file("roclient.py", READONLY_CLIENT_PY.encode())
    t.write_file("ro-payload.bin", data["ro_payload"])
    t.write_file("httpserver.py", HTTP_SERVER_PY.encode())
    t.write_file("err-reply.bin", data["err_reply"])
    data["go"] = {tc: gobuild.build(tc, t.tmp / f"tlspeer-{tc}") for tc in ("go1.15", "go1.19")}
    data["go_port"] = harness.free_port(HOST)

    auto, auto_log = run_mode(t, "auto", cert, key, port, data)
    fallback, fb_log = run_mode(t, "fallback", cert, key, port, data)

    # The modes really differ where it matters, and the decision is logged.
    # libssl3 and 1.1.1: reads on the memcpy in ssl3_read_bytes (one probe per record
    # delivered; 1.1.1's dtls1_read_bytes at its entry and return, libssl3's on its copy too).
    # Writes on the copy into the record in do_ssl3_write (DTLS's write_bytes at entry and
    # return).
    for lib, placed in (("libssl.so.3", "reads copy, writes copy"),
                        ("libssl.so.1.1", "reads copy, writes copy")):
        line = [ln for ln in auto_log.splitlines() if "Attached" in ln and f'says "{lib};' in ln]
        if not line or placed not in line[0]:
            raise TestFailure(f"auto mode did not place the probes of {lib} as expected "
                              f"({placed}); the comparison would prove nothing: {line}")
    if "reads: on the copy: memcpy at" not in auto_log or \
            "DTLS_method's read_bytes (0x" not in auto_log:
        raise TestFailure("the decision to capture reads on the copy was not logged")
    if "writes: on the copy: copy at" not in auto_log or \
            "DTLS_method's write_bytes (0x" not in auto_log:
        raise TestFailure("the decision to capture writes on the copy was not logged")
    # Where the kernel has uprobe sessions, auto mode uses them for its entry + return pairs, so
    # the comparison below is also sessions against separate uprobes and uretprobes.
    if "The kernel has no uprobe sessions" not in auto_log:
        for lib in ("libssl.so.3", "libssl.so.1.1"):
            line = [ln for ln in auto_log.splitlines() if "Attached" in ln and f'says "{lib};' in ln]
            if "as uprobe sessions" not in line[0]:
                raise TestFailure(f"auto mode did not attach {lib}'s probes as sessions: {line}")
    if "as uprobe sessions" in fb_log or "attached separately (--uprobe-sessions=no)" not in fb_log:
        raise TestFailure("--uprobe-sessions=no still attached uprobe sessions")
    if "per-call tracepoints" not in auto_log:
        raise TestFailure("loaderd did not use the per-call system call tracepoints")
    if "Probe placement in" not in auto_log or \
            "no probe of its own (writes on the copy)" not in auto_log:
        raise TestFailure("the per-function placement decision was not logged")
    if "callee" in fb_log or "call-site" in fb_log:
        raise TestFailure("--placement fallback still placed optimized probes")
    for tc in data["go"]:
        a = [ln for ln in auto_log.splitlines() if "Attached" in ln and f"tlspeer-{tc}" in ln]
        f = [ln for ln in fb_log.splitlines() if "Attached" in ln and f"tlspeer-{tc}" in ln]
        if not a or "entry probes on the stack-check branch" not in a[0]:
            raise TestFailure(f"auto: {tc}'s entry probes not on the stack-check branch: {a}")
        if "Read: its copy to the caller" not in a[0]:
            raise TestFailure(f"auto: {tc}'s Read not probed on its copy to the caller: {a}")
        if not f or "entry probes at function entry (fallback)" not in f[0]:
            raise TestFailure(f"fallback: {tc}'s entry probes not on the function entry: {f}")
        if "Read: entry + " not in f[0]:
            raise TestFailure(f"fallback: {tc}'s Read not probed at entry and RETs: {f}")

    for tag in auto:
        for side, a, f in (("client", auto[tag][0], fallback[tag][0]),
                           ("server", auto[tag][1], fallback[tag][1])):
            for direction in ("write", "read"):
                if a[direction] != f[direction]:
                    ad, aa, an = a[direction]
                    fd, fa, fn = f[direction]
                    raise TestFailure(
                        f"{tag} {side} {direction}: optimized and fallback differ: "
                        f"{len(ad)} B / {aa} / {an} streams vs {len(fd)} B / {fa} / {fn} streams")
                silent = (tag, side, direction) in (("read-only-server", "client", "read"),
                                                     ("read-only-server", "server", "write"))
                if bool(a[direction][0]) == silent:
                    raise TestFailure(f"{tag} {side} {direction}: "
                                      + ("bytes captured where none were sent" if silent
                                         else "nothing captured"))
        harness.log(f"{tag}: identical in both modes ("
                    + ", ".join(f"{s} {d} {len(v[d][0])} B" for s, v in
                                (("client", auto[tag][0]), ("server", auto[tag][1]))
                                for d in ("write", "read")) + ")")


if __name__ == "__main__":
    harness.run(main)
