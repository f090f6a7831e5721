#!/usr/bin/python3
"""Latency benchmark: at low load, the time from SSL_write returning in a client to tlssniff
writing the record to its output.

A /usr/bin/python3 client (system libssl) sends --rate requests per second for --seconds
seconds on one keep-alive TLS connection to a local server (a thread of this script, not
traced: tlssniff-loaderd runs with --pid <client>). Each request carries a unique id; right
after sendall() returns the client takes time.clock_gettime_ns(CLOCK_BOOTTIME). This script
tails tlssniff's output file (polling every --poll-ms) and notes the BOOTTIME at which each
id's record appears. Reported, in ms:

  write->output   output time - the client's post-send timestamp (what a user waits)
  call->output    output time - the record's timestamp_ns (BOOTTIME of the call's return,
                  taken in the kernel)
  call->client    client's timestamp - timestamp_ns (the uretprobe's own delay; sanity)

loaderd drains the ring buffer every 10 ms and when 256 KiB are pending; the poll interval
of this script adds up to --poll-ms to the figures.

Run as root: /usr/bin/python3 tests/bench/latency.py [--quick] [--rate 20] [--seconds 10]
Last line of standard output: one JSON object ("benchmark": "latency"). Exit status 0 when
it ran (whatever the figures), 1 when something failed to run, 77 when not root (CI!=true).
"""

import argparse
import base64
import json
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK"
ID_RE = re.compile(rb"/lat/(L\d{6}x[0-9a-f]{8})")


def client_main(spec):
    port, rate, seconds = spec.split(":")
    port, rate, seconds = int(port), float(rate), float(seconds)
    tag = os.urandom(4).hex()
    sys.stdin.readline()  # "go"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
    sent = []
    n = int(rate * seconds)
    start = time.monotonic()
    for i in range(n):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        rid = "L%06dx%s" % (i, tag)
        req = ("GET /lat/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % rid).encode()
        c.sendall(req)
        t = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        sent.append([rid, t])
        buf = b""
        while not buf.endswith(b"OK"):
            d = c.recv(4096)
            if not d:
                break
            buf += d
    c.close()
    print("CLIENTJSON " + json.dumps(sent), flush=True)
    return 0


class Server:
    def __init__(self, cert, key):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                s, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(s,), daemon=True).start()

    def handle(self, s):
        try:
            c = self.ctx.wrap_socket(s, server_side=True)
            buf = b""
            while True:
                d = c.recv(65536)
                if not d:
                    break
                buf += d
                while b"\r\n\r\n" in buf:
                    _, _, buf = buf.partition(b"\r\n\r\n")
                    c.sendall(RESPONSE)
            c.close()
        except (OSError, ssl.SSLError):
            pass


class Tailer(threading.Thread):
    """Follows the output file; for each id seen in a write record of `pid`, the BOOTTIME when
    this script read it and the record's timestamp_ns."""

    def __init__(self, path, pid, poll):
        super().__init__(daemon=True)
        self.path, self.pid, self.poll = path, pid, poll
        self.seen = {}
        self.stop_flag = False
        self.records = 0

    def run(self):
        while not os.path.exists(self.path) and not self.stop_flag:
            time.sleep(self.poll)
        with open(self.path, "rb") as f:
            part = b""
            while True:
                chunk = f.read()
                now = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
                if chunk:
                    part += chunk
                    *lines, part = part.split(b"\n")
                    for line in lines:
                        self.line(line, now)
                elif self.stop_flag:
                    return
                else:
                    time.sleep(self.poll)

    def line(self, line, now):
        try:
            o = json.loads(line)
        except ValueError:
            return
        if o.get("type") != "data" or o.get("pid") != self.pid or o.get("direction") != "write":
            return
        self.records += 1
        for m in ID_RE.finditer(base64.b64decode(o["data"])):
            self.seen.setdefault(m.group(1).decode(), (now, o["timestamp_ns"]))


def stats_ms(xs):
    if not xs:
        return None
    return {"median": round(statistics.median(xs), 3), "p99": round(bl.pct(xs, 0.99), 3),
            "min": round(min(xs), 3), "max": round(max(xs), 3), "n": len(xs)}


def main(argv):
    ap = argparse.ArgumentParser(description="tlssniff capture latency benchmark (root)")
    ap.add_argument("--rate", type=float, default=20.0, help="requests per second (20)")
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds (10)")
    ap.add_argument("--poll-ms", type=float, default=0.5, help="output polling interval (0.5)")
    ap.add_argument("--client", help=argparse.SUPPRESS)
    bl.add_common_args(ap)
    opts = ap.parse_args(argv)
    if opts.client:
        return client_main(opts.client)
    if opts.quick:
        opts.seconds = min(opts.seconds, 3.0)
    pf = bl.preflight(opts)
    if pf:
        print(pf[1])
        return pf[0]
    workdir = tempfile.mkdtemp(prefix="tlssniff-latency-")
    failed, res = None, {}
    ld = None
    try:
        cert, key = bl.make_cert(workdir)
        srv = Server(cert, key)
        cli = bl.spawn([bl.PY, os.path.abspath(__file__), "--client",
                        "%d:%g:%g" % (srv.port, opts.rate, opts.seconds)],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = os.path.join(workdir, "capture.jsonl")
        ld = bl.Loaderd(opts.loaderd, out, os.path.join(workdir, "loaderd.log"),
                        ["--pid", str(cli.pid)] + opts.loaderd_arg, opts.ready_timeout).start()
        others = [p for p in bl.other_tracers() if p not in ld.pids()]
        tail = Tailer(out, cli.pid, opts.poll_ms / 1000.0)
        tail.start()
        bl.progress("client pid %d: %g requests/s for %g s" % (cli.pid, opts.rate, opts.seconds))
        cli.stdin.write(b"go\n")
        cli.stdin.flush()
        text = cli.stdout.read().decode(errors="replace")
        rc, _ = bl.wait_rusage(cli, 60)
        m = re.search(r"CLIENTJSON (\[.*\])", text)
        if rc != 0 or not m:
            raise bl.BenchError("client exited %d: %s" % (rc, text[-500:]))
        sent = json.loads(m.group(1))
        deadline = time.monotonic() + 5
        while len(tail.seen) < len(sent) and time.monotonic() < deadline:
            time.sleep(0.05)
        ld.stop()
        tail.stop_flag = True
        tail.join(10)
        stats = bl.last_stats(out)
        w2o, c2o, c2c = [], [], []
        missing = []
        for rid, t in sent:
            if rid not in tail.seen:
                missing.append(rid)
                continue
            seen, ts = tail.seen[rid]
            w2o.append((seen - t) / 1e6)
            c2o.append((seen - ts) / 1e6)
            c2c.append((t - ts) / 1e6)
        res = {
            "rate": opts.rate,
            "seconds": opts.seconds,
            "poll_ms": opts.poll_ms,
            "requests": len(sent),
            "found": len(w2o),
            "missing": len(missing),
            "missing_samples": missing[:5],
            "write_to_output_ms": stats_ms(w2o),
            "call_to_output_ms": stats_ms(c2o),
            "call_to_client_ms": stats_ms(c2c),
            "loss_counters": bl.nonzero_losses(stats),
            "stats": stats,
            "other_tracers": others,
        }
        if not opts.keep:
            os.unlink(out)
    except bl.BenchError as e:
        failed = str(e)
    except KeyboardInterrupt:
        failed = "interrupted"
    finally:
        if ld and ld.proc.poll() is None:
            bl.end_process(ld.proc, __import__("signal").SIGINT, 30)
        bl.cleanup_all()
        if opts.keep:
            bl.progress("work dir kept: %s" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if res:
        print("tlssniff latency benchmark: %g requests/s for %g s on one keep-alive connection, "
              "output polled every %g ms" % (opts.rate, opts.seconds, opts.poll_ms))
        print("  %d requests, %d found in the output, %d missing"
              % (res["requests"], res["found"], res["missing"]))
        print("  %-44s %9s %9s %9s %9s" % ("", "median ms", "p99 ms", "min ms", "max ms"))
        for k, label in (("write_to_output_ms", "SSL_write returned (client) -> in output"),
                         ("call_to_output_ms", "timestamp_ns (kernel) -> in output"),
                         ("call_to_client_ms", "timestamp_ns -> client's timestamp")):
            s = res[k]
            if s:
                print("  %-44s %9.3f %9.3f %9.3f %9.3f"
                      % (label, s["median"], s["p99"], s["min"], s["max"]))
        print("  losses counted: %s" % (res["loss_counters"] or "none"))
        if res["other_tracers"]:
            print("  note: other tlssniff-loaderd/bpftrace processes were running: %s"
                  % res["other_tracers"])
    result = {"benchmark": "latency", "ok": failed is None, **res}
    if failed:
        result["error"] = failed
        print("FAILED: " + failed)
    print(json.dumps(result, sort_keys=True))
    return 0 if failed is None else 1


if __name__ == "__main__":
    bl.run_main(main)
