#!/usr/bin/python3
"""Cost of capturing a Go HTTPS server: net/http (tests/go/tlspeer http-server, HTTP/1.1,
GOMAXPROCS=1, pinned to CPU 0) under wrk (one thread, 32 keep-alive connections, pinned to
CPU 1), untraced and with tlssniff tracing the server (--pid), interleaved round by round.

Each request is one (*tls.Conn).Read of the request and one .Write of the response in the
server. Configurations:
  untraced            no tracer
  tlssniff            default placement: Read one probe on its call to runtime.memmove
                      (emulated), Write an entry probe on the stack-check branch and a probe on
                      its RETs (single-stepped)
  tlssniff-fallback   --placement fallback: entry probes on the first instruction and a probe on
                      every RET of both functions
Reported: median requests/s, the ratio to untraced and the server's CPU per request; tlssniff
must capture a read and a write per request wrk counted, with no loss counted.
Usage: gohttp.py [--rounds N] [--seconds S] [--toolchain go1.19|go1.15|go1.23].
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import benchlib  # noqa: E402
import gobuild  # noqa: E402
from gotls import CONFIGS  # noqa: E402  (the same three configurations as the round trips)
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def wrk_path():
    wrk = shutil.which("wrk")
    if wrk is None and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "wrk"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        wrk = shutil.which("wrk")
    if wrk is None:
        raise benchlib.BenchError("wrk not found (apt-get install wrk)")
    return wrk


def one_round(exe, wrk, seconds, work, name, rnd, opts):
    env = dict(os.environ, GOMAXPROCS="1")
    srv = benchlib.spawn(["taskset", "-c", "0", exe, "http-server", "-listen", "127.0.0.1:0"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    port = json.loads(srv.stdout.readline())["port"]
    ld = None
    if CONFIGS[name] is not None:
        out = os.path.join(work, "%s-%d.jsonl" % (name, rnd))
        ld = benchlib.Loaderd(opts.loaderd, out, out + ".log",
                              CONFIGS[name] + ["--pid", str(srv.pid), "--json", "--cache-dir",
                                               os.path.join(work, "cache")]
                              + opts.loaderd_arg).start()
    c0 = cpu_s(srv.pid)
    r = subprocess.run(["taskset", "-c", "1", wrk, "-t1", "-c32", "-d%ds" % seconds,
                        "https://127.0.0.1:%d/hello" % port],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=seconds + 60)
    c1 = cpu_s(srv.pid)
    text = r.stdout.decode(errors="replace")
    m = re.search(r"(\d+) requests in", text)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if r.returncode != 0 or not m or not rate:
        raise benchlib.BenchError("%s: wrk failed: %s" % (name, text[-500:]))
    requests = int(m.group(1))
    res = {"req_per_s": float(rate.group(1)), "requests": requests,
           "server_cpu_us_per_req": (c1 - c0) / requests * 1e6}
    if ld is not None:
        ld.drain()
        ld.stop()
        st = benchlib.last_stats(ld.output) or {}
        lost = {k: v for k, v in st.items() if v and (k.startswith("kernel_drop") or k in (
            "kernel_go_no_goid", "kernel_unmatched_returns", "analyzer_socketless_messages"))}
        reads = writes = 0
        with open(ld.output) as f:
            for line in f:
                if '"type":"data"' in line:
                    if '"direction":"read"' in line:
                        reads += 1
                    else:
                        writes += 1
        # wrk counts the responses it read; the server may have answered a few more.
        if lost or reads < requests or writes < requests:
            raise benchlib.BenchError("%s round %d: %d requests, captured %d reads and %d "
                                      "writes, losses %s" % (name, rnd, requests, reads, writes,
                                                             lost))
        res.update(reads=reads, writes=writes)
    srv.terminate()
    srv.wait(30)
    return res


def main(opts):
    work = tempfile.mkdtemp(prefix="tlssniff-bench-gohttp-")
    exe = str(gobuild.build(opts.toolchain, os.path.join(work, "tlspeer")))
    wrk = wrk_path()
    results = {c: [] for c in CONFIGS}
    for rnd in range(opts.rounds):
        for name in CONFIGS:
            res = one_round(exe, wrk, opts.seconds, work, name, rnd, opts)
            results[name].append(res)
            benchlib.progress("round %d %-18s %8.0f req/s, server %.1f us/request"
                              % (rnd + 1, name, res["req_per_s"], res["server_cpu_us_per_req"]))
    base = statistics.median(r["req_per_s"] for r in results["untraced"])
    print("%-18s %10s %8s %16s" % ("configuration", "req/s", "ratio", "server us/req"))
    summary = {}
    for name, rs in results.items():
        m = statistics.median(r["req_per_s"] for r in rs)
        cpu = statistics.median(r["server_cpu_us_per_req"] for r in rs)
        summary[name] = {"median_req_per_s": m, "ratio": m / base,
                         "server_cpu_us_per_req": cpu, "rounds": rs}
        print("%-18s %10.0f %8.3f %16.1f" % (name, m, m / base, cpu))
    print(json.dumps({"benchmark": "gohttp", "toolchain": opts.toolchain,
                      "seconds": opts.seconds, "results": summary}))
    if not opts.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    benchlib.add_common_args(ap)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--toolchain", default="go1.19", choices=sorted(gobuild.TOOLCHAINS))
    opts = ap.parse_args()
    if opts.quick:
        opts.rounds, opts.seconds = 2, 2
    pre = benchlib.preflight(opts)
    if pre:
        print(pre[1])
        sys.exit(pre[0])
    try:
        sys.exit(main(opts))
    except benchlib.BenchError as e:
        print("FAILED: %s" % e)
        sys.exit(1)
    finally:
        benchlib.cleanup_all()
