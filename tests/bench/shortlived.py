#!/usr/bin/python3
"""Short-lived processes: N (1,000) curl processes, each started after tlssniff, each making one
HTTPS request (a unique path) to a local server, while tlssniff-loaderd --comm curl captures.

A request counts as captured when tlssniff's output holds, for that curl's pid, write messages
whose bytes (concatenated in offset order) equal exactly the bytes the server received for that
request; the response likewise (read messages == the bytes the server sent). The final stats
line says what tlssniff knows it lost.

The server is a thread of this script (Python's ssl); it is not traced (the filter is --comm curl).

Run as root: /usr/bin/python3 tests/bench/shortlived.py [--quick] [--count 1000] [--parallel 4]
Last line of standard output: one JSON object ("benchmark": "shortlived"). Exit status 0 when
it ran (whatever the figures), 1 when something failed to run, 77 when not root (CI!=true).
"""

import argparse
import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK"


class Server:
    """A threaded one-request-per-connection HTTPS server that records each request's bytes."""

    def __init__(self, cert, key):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(1024)
        self.port = self.ls.getsockname()[1]
        self.requests = {}  # path -> request bytes
        self.errors = 0
        self.lock = threading.Lock()
        self.stopping = False
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while not self.stopping:
            try:
                s, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(s,), daemon=True).start()

    def handle(self, s):
        try:
            s.settimeout(10)
            c = self.ctx.wrap_socket(s, server_side=True)
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    break
                buf += d
            path = buf.split(b" ", 2)[1].decode() if buf.count(b" ") >= 2 else None
            c.sendall(RESPONSE)
            with self.lock:
                if path:
                    self.requests[path] = buf
            c.close()
        except (OSError, ssl.SSLError, ValueError):
            with self.lock:
                self.errors += 1

    def stop(self):
        self.stopping = True
        self.ls.close()


def run_clients(opts, port, workdir):
    """Starts opts.count curls, opts.parallel at a time; returns {path: pid} of those that
    succeeded, the failures and the seconds it took."""
    todo = list(range(opts.count))
    running = {}
    done, failed = {}, []
    t0 = time.monotonic()
    deadline = t0 + opts.timeout
    while (todo or running) and time.monotonic() < deadline:
        while todo and len(running) < opts.parallel:
            i = todo.pop(0)
            path = "/sl/%06d" % i
            argv = ["curl", "-k", "-s", "-S", "--http1.1", "--max-time", "10", "-o", "/dev/null",
                    "-H", "User-Agent: tlssniff-bench", "https://127.0.0.1:%d%s" % (port, path)]
            p = bl.spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
            running[p] = path
        for p in list(running):
            if p.poll() is not None:
                path = running.pop(p)
                err = p.stderr.read().decode(errors="replace").strip()
                p.stderr.close()
                if p in bl.STARTED:
                    bl.STARTED.remove(p)
                if p.returncode == 0:
                    done[path] = p.pid
                else:
                    failed.append({"path": path, "rc": p.returncode, "stderr": err[-200:]})
        time.sleep(0.001)
    for p, path in running.items():
        bl.end_process(p)
        failed.append({"path": path, "rc": "timeout"})
    return done, failed, time.monotonic() - t0


def read_capture(path):
    """{pid: {"write": [(offset, bytes)], "read": [...]}} and the stats object."""
    by_pid = {}
    stats = None
    bad = 0
    with open(path, "rb") as f:
        for line in f:
            try:
                o = json.loads(line)
            except ValueError:
                bad += 1
                continue
            if o.get("type") == "stats":
                stats = o
                continue
            if o.get("type") != "data":
                continue
            d = by_pid.setdefault(o["pid"], {"write": [], "read": [], "fds": set()})
            d[o["direction"]].append((o["conn_id"], o["offset"], base64.b64decode(o["data"])))
            d["fds"].add(o["fd"])
    return by_pid, stats, bad


def stream_bytes(segs):
    return b"".join(s[2] for s in sorted(segs, key=lambda s: (s[0], s[1])))


def main(argv):
    ap = argparse.ArgumentParser(description="tlssniff short-lived processes benchmark (root)")
    ap.add_argument("--count", type=int, default=1000, help="curl processes (1000)")
    ap.add_argument("--parallel", type=int, default=4, help="curls running at once (4)")
    ap.add_argument("--timeout", type=float, default=600.0, help="limit for all requests (600 s)")
    bl.add_common_args(ap)
    opts = ap.parse_args(argv)
    if opts.quick:
        opts.count = min(opts.count, 100)
    pf = bl.preflight(opts)
    if pf:
        print(pf[1])
        return pf[0]
    if not shutil.which("curl"):
        print("FAIL: curl not found")
        return 1
    workdir = tempfile.mkdtemp(prefix="tlssniff-shortlived-")
    failed = None
    res = {}
    ld = srv = None
    try:
        cert, key = bl.make_cert(workdir)
        srv = Server(cert, key)
        out = os.path.join(workdir, "capture.jsonl")
        ld = bl.Loaderd(opts.loaderd, out, os.path.join(workdir, "loaderd.log"),
                        ["--comm", "curl"] + opts.loaderd_arg, opts.ready_timeout).start()
        others = [p for p in bl.other_tracers() if p not in ld.pids()]
        cpu0 = ld.cpu()
        bl.progress("%d curl processes, %d at a time, to 127.0.0.1:%d"
                    % (opts.count, opts.parallel, srv.port))
        ok, fails, secs = run_clients(opts, srv.port, workdir)
        drain = ld.drain(limit=60)
        cpu = ld.cpu() - cpu0
        ld.stop()
        by_pid, stats, bad = read_capture(out)
        out_size = os.stat(out).st_size
        srv.stop()
        req_ok = resp_ok = partial = nothing = 0
        missing = []
        for path, pid in sorted(ok.items()):
            want = srv.requests.get(path)
            d = by_pid.get(pid)
            if d is None:
                nothing += 1
                missing.append({"path": path, "pid": pid, "captured": "nothing"})
                continue
            got_w = stream_bytes(d["write"])
            got_r = stream_bytes(d["read"])
            if want is not None and got_w == want:
                req_ok += 1
            else:
                partial += 1
                missing.append({"path": path, "pid": pid, "captured_write": len(got_w),
                                "expected_write": len(want or b""), "fds": sorted(d["fds"])})
            if got_r == RESPONSE:
                resp_ok += 1
        n = len(ok)
        losses = bl.nonzero_losses(stats)
        res = {
            "processes": opts.count,
            "succeeded": n,
            "client_failures": len(fails),
            "client_failure_samples": fails[:5],
            "server_errors": srv.errors,
            "seconds": round(secs, 2),
            "processes_per_s": round(n / secs, 1) if secs else None,
            "requests_captured": req_ok,
            "requests_captured_fraction": round(req_ok / n, 5) if n else None,
            "responses_captured": resp_ok,
            "responses_captured_fraction": round(resp_ok / n, 5) if n else None,
            "processes_with_nothing_captured": nothing,
            "processes_with_wrong_or_partial_request": partial,
            "missing_samples": missing[:10],
            "pids_in_output_not_ours": len(set(by_pid) - set(ok.values())),
            "unparsable_lines": bad,
            "drain_s": round(drain, 2),
            "tlssniff_cpu_s": round(cpu, 3),
            "tlssniff_cpu_ms_per_process": round(cpu / n * 1e3, 3) if n else None,
            "output_file_bytes": out_size,
            "stats": stats,
            "loss_counters": losses,
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
        if srv:
            srv.stop()
        bl.cleanup_all()
        if opts.keep:
            bl.progress("work dir kept: %s" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if res:
        print("tlssniff short-lived processes benchmark: %d curl processes (%d at a time), "
              "filter --comm curl" % (opts.count, opts.parallel))
        print("  ran %d OK in %.1f s (%.0f processes/s), %d curl failures, %d server errors"
              % (res["succeeded"], res["seconds"], res["processes_per_s"] or 0,
                 res["client_failures"], res["server_errors"]))
        print("  requests captured exactly (by pid, byte-for-byte): %d of %d = %.2f %%"
              % (res["requests_captured"], res["succeeded"],
                 100 * (res["requests_captured_fraction"] or 0)))
        print("  responses captured exactly: %d of %d = %.2f %%"
              % (res["responses_captured"], res["succeeded"],
                 100 * (res["responses_captured_fraction"] or 0)))
        print("  processes with nothing captured: %d; with a wrong or partial request: %d"
              % (res["processes_with_nothing_captured"],
                 res["processes_with_wrong_or_partial_request"]))
        for m in res["missing_samples"][:5]:
            print("    e.g. %s" % json.dumps(m))
        print("  losses counted in tlssniff's final stats: %s"
              % (json.dumps(res["loss_counters"], sort_keys=True) if res["loss_counters"]
                 else "none"))
        st = res["stats"] or {}
        print("  kernel_calls %s, kernel_calls_without_socket %s, kernel_unmatched_returns %s, "
              "kernel_drop_file_events %s, analyzer_messages %s"
              % tuple(st.get(k, "-") for k in ("kernel_calls", "kernel_calls_without_socket",
                                               "kernel_unmatched_returns",
                                               "kernel_drop_file_events", "analyzer_messages")))
        print("  tlssniff CPU: %.2f s (%.2f ms per process), drain %.1f s"
              % (res["tlssniff_cpu_s"], res["tlssniff_cpu_ms_per_process"] or 0, res["drain_s"]))
        uncounted = res["succeeded"] - res["requests_captured"]
        if uncounted and not res["loss_counters"]:
            print("  WARNING: %d requests missing with no loss counter set: a silent loss"
                  % uncounted)
        if res["other_tracers"]:
            print("  note: other tlssniff-loaderd/bpftrace processes were running: %s"
                  % res["other_tracers"])
    result = {"benchmark": "shortlived", "ok": failed is None, **res}
    if failed:
        result["error"] = failed
        print("FAILED: " + failed)
    print(json.dumps(result, sort_keys=True))
    return 0 if failed is None else 1


if __name__ == "__main__":
    bl.run_main(main)
