# Real TLS peers (Python ssl, i.e. the system libssl) for tlssniff's integration tests.
#
#   server --mode framed|http --cert C --key K [--host H] [--port P] [--dir D]
#       Threaded TLS server; prints "LISTENING <port>" once listening; exits when stdin
#       closes (status 1 if any connection failed).
#       framed: per connection, any number of exchanges: the client sends
#               u32 payload_len, u32 reply_len (big endian) and the payload; the server
#               answers reply_for(payload, reply_len). The reply is random-looking, distinct
#               per payload and computable by the test.
#       http:   reads one HTTP/1.1 request (headers and Content-Length body), stores its raw
#               bytes in D/req-<client port>.bin, answers http_response(D/body.bin), closes.
#
#   client --host H --port P --spec FILE [--parallel] [--wait-go] [--late-import]
#          [--connect-before-go] [--wait-after-import] [--cafile C] [--hop-cpus]
#       One TLS connection per entry of the JSON spec [{"payload": path, "reply_len": n,
#       "then": [[path, n], ...]}] ("then": further exchanges on that connection, --pause S
#       apart); verifies every reply, prints "RESULT {json}" per connection with its local and remote
#       address, then "DONE". --wait-go prints "WAITING" and waits for a line on stdin before
#       it starts (after connecting with --connect-before-go); --late-import does not import
#       ssl (so libssl is not mapped) until then, and prints "IMPORTED <libssl path>";
#       --wait-after-import then waits for another line on stdin before the first TLS call.
#       --hop-cpus moves the connection's thread to the next CPU it may run on before each
#       write, and writes each request in parts: its header, then its payload in eight.
#
# Only modules that do not load libssl are imported at the top; ssl is imported on demand.

import argparse
import importlib
import json
import os
import random
import socket
import struct
import sys
import threading
import time
import zlib


def reply_for(payload, reply_len):
    seed = (zlib.crc32(payload) << 40) ^ (zlib.adler32(payload) << 8) ^ len(payload)
    return random.Random(seed).randbytes(reply_len)


def http_response(body):
    head = ("HTTP/1.1 200 OK\r\n"
            "Content-Type: application/octet-stream\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n")
    return head.encode() + body


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def libssl_mappings():
    with open("/proc/self/maps") as f:
        return sorted({line.split(None, 5)[5].strip() for line in f
                       if len(line.split(None, 5)) == 6 and "libssl" in line})


# ------------------------------------------------------------------ server

class Server:
    def __init__(self, args):
        import ssl
        self.ssl = ssl
        self.args = args
        self.failed = False
        self.lock = threading.Lock()
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(args.cert, args.key)
        fam = socket.AF_INET6 if ":" in args.host else socket.AF_INET
        self.lsock = socket.socket(fam, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((args.host, args.port))
        self.lsock.listen(128)
        if args.mode == "http":
            with open(os.path.join(args.dir, "body.bin"), "rb") as f:
                self.response = http_response(f.read())

    def serve(self):
        threading.Thread(target=self._accept_loop, daemon=True).start()
        print(f"LISTENING {self.lsock.getsockname()[1]}", flush=True)
        sys.stdin.buffer.read()  # until EOF: the test is done with us
        return 1 if self.failed else 0

    def _accept_loop(self):
        while True:
            conn, peer = self.lsock.accept()
            threading.Thread(target=self._handle, args=(conn, peer), daemon=True).start()

    def _handle(self, conn, peer):
        try:
            with self.ctx.wrap_socket(conn, server_side=True) as tls:
                if self.args.mode == "framed":
                    self._framed(tls)
                else:
                    self._http(tls, peer)
        except Exception as e:  # noqa: BLE001 - reported, and the server exits with 1
            with self.lock:
                self.failed = True
            print(f"server: connection from {peer}: {type(e).__name__}: {e}", file=sys.stderr,
                  flush=True)

    def _framed(self, tls):
        while True:
            try:
                head = recv_exact(tls, 8)
            except (self.ssl.SSLEOFError, ConnectionResetError):
                head = b""
            if not head:
                return
            if len(head) != 8:
                raise RuntimeError(f"short header ({len(head)} B)")
            plen, rlen = struct.unpack(">II", head)
            payload = recv_exact(tls, plen)
            if len(payload) != plen:
                raise RuntimeError(f"short payload ({len(payload)} of {plen} B)")
            tls.sendall(reply_for(payload, rlen))

    def _http(self, tls, peer):
        req = bytearray()
        while b"\r\n\r\n" not in req:
            chunk = tls.recv(65536)
            if not chunk:
                raise RuntimeError(f"EOF inside request headers ({bytes(req[:200])!r})")
            req += chunk
        head_len = req.index(b"\r\n\r\n") + 4
        clen = 0
        for line in bytes(req[:head_len]).split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                clen = int(value.strip())
        while len(req) < head_len + clen:
            chunk = tls.recv(65536)
            if not chunk:
                raise RuntimeError("EOF inside request body")
            req += chunk
        with open(os.path.join(self.args.dir, f"req-{peer[1]}.bin"), "wb") as f:
            f.write(req)
        tls.sendall(self.response)


# ------------------------------------------------------------------ client

def client(args):
    if args.late_import:
        maps = libssl_mappings()
        if maps:
            print(f"client: libssl already mapped before import: {maps}", file=sys.stderr)
            return 1
    else:
        importlib.import_module("ssl")  # maps libssl now
    with open(args.spec) as f:
        spec = json.load(f)
    fam = socket.AF_INET6 if ":" in args.host else socket.AF_INET

    socks = []
    if args.connect_before_go:
        ctx = make_client_ctx(args)
        for _ in spec:
            socks.append(connect(ctx, fam, args))
        print("CONNECTED", flush=True)
    if args.wait_go:
        print("WAITING", flush=True)
        if not sys.stdin.readline():
            print("client: stdin closed before go", file=sys.stderr)
            return 1
    if args.late_import:
        importlib.import_module("ssl")  # the dlopen of libssl happens here
        print("IMPORTED " + " ".join(libssl_mappings()), flush=True)
        if args.wait_after_import and not sys.stdin.readline():
            print("client: stdin closed after the import", file=sys.stderr)
            return 1

    ctx = make_client_ctx(args)
    results = [None] * len(spec)
    errors = []
    barrier = threading.Barrier(len(spec)) if args.parallel else None

    def one(i):
        try:
            tls = socks[i] if socks else connect(ctx, fam, args)
            if barrier:
                barrier.wait(30)  # every connection is open before any data moves
            with open(spec[i]["payload"], "rb") as f:
                payload = f.read()
            rlen = spec[i]["reply_len"]
            exchanges = [(payload, rlen)]
            for path, n in spec[i].get("then", []):
                with open(path, "rb") as f:
                    exchanges.append((f.read(), n))
            cpus = sorted(os.sched_getaffinity(0))
            hops = 0
            if args.hop_cpus:  # two writes per request: no Nagle wait for the second
                tls.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def hop():
                nonlocal hops
                if args.hop_cpus:
                    os.sched_setaffinity(0, {cpus[hops % len(cpus)]})  # this thread
                    hops += 1

            for k, (data, n) in enumerate(exchanges):
                if k and args.pause:
                    time.sleep(args.pause)
                if args.hop_cpus:
                    hop()
                    tls.sendall(struct.pack(">II", len(data), n))
                    step = len(data) // 8 + 1
                    for at in range(0, len(data), step):
                        hop()
                        tls.sendall(data[at:at + step])
                else:
                    tls.sendall(struct.pack(">II", len(data), n) + data)
                reply = recv_exact(tls, n)
                if reply != reply_for(data, n):
                    raise RuntimeError(f"connection {i} exchange {k}: wrong reply "
                                       f"({len(reply)} of {n} B)")
            results[i] = {"i": i, "pid": os.getpid(), "local": list(tls.getsockname()[:2]),
                          "remote": list(tls.getpeername()[:2]), "fd": tls.fileno()}
            if barrier:
                barrier.wait(30)  # keep all open until all are done
            tls.close()
        except Exception as e:  # noqa: BLE001 - collected and reported, exit 1
            errors.append(f"connection {i}: {type(e).__name__}: {e}")
            if barrier:
                barrier.abort()

    if args.parallel:
        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(spec))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        for i in range(len(spec)):
            one(i)
    for e in errors:
        print("client: " + e, file=sys.stderr)
    for r in results:
        if r is not None:
            print("RESULT " + json.dumps(r), flush=True)
    print("DONE", flush=True)
    return 1 if errors else 0


def make_client_ctx(args):
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(args.cafile)
    return ctx


def connect(ctx, fam, args):
    raw = socket.socket(fam, socket.SOCK_STREAM)
    raw.settimeout(30)
    raw.connect((args.host, args.port))
    return ctx.wrap_socket(raw, server_hostname=args.host)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("server")
    s.add_argument("--mode", choices=["framed", "http"], required=True)
    s.add_argument("--cert", required=True)
    s.add_argument("--key", required=True)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--dir", default=".")
    c = sub.add_parser("client")
    c.add_argument("--host", default="127.0.0.1")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--spec", required=True)
    c.add_argument("--cafile", required=True)
    c.add_argument("--parallel", action="store_true")
    c.add_argument("--wait-go", action="store_true")
    c.add_argument("--late-import", action="store_true")
    c.add_argument("--connect-before-go", action="store_true")
    c.add_argument("--wait-after-import", action="store_true")
    c.add_argument("--pause", type=float, default=0.0)
    c.add_argument("--hop-cpus", action="store_true")
    args = ap.parse_args()
    if args.cmd == "server":
        return Server(args).serve()
    return client(args)


if __name__ == "__main__":
    sys.exit(main())
