#!/usr/bin/python3
"""Cost of capturing Go crypto/tls: small request/response round trips between a Go client and
a Go server (tests/go/tlspeer), untraced and with tlssniff, interleaved round by round.

Each round runs one client making REQUESTS round trips of 1 byte each way on one connection (a
request is two Write calls, a response one; the server does two Reads and a Write), so a round
trip is about 7 TLS calls. Configurations:
  untraced            no tracer
  tlssniff            default placement: Write's entry probe on the prologue's stack-check
                      branch (a jcc the kernel emulates) and a probe on its RETs
                      (single-stepped); Read one probe on its call to runtime.memmove (emulated)
  tlssniff-fallback   --placement fallback: entry probes on the first instruction (a compare,
                      single-stepped) and a probe on every RET of both functions
Reported: median round trips/s per configuration and the ratio to untraced; tlssniff must
capture every byte (kernel counters, no loss). Usage: gotls.py [--rounds N] [--requests N]
[--toolchain go1.19|go1.15|go1.23].
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import benchlib  # noqa: E402
import gobuild  # noqa: E402

CONFIGS = {
    "untraced": None,
    "tlssniff": [],
    "tlssniff-fallback": ["--placement", "fallback"],
}


def one_round(exe, requests, work, tag, ld):
    srv = benchlib.spawn([exe, "server", "-listen", "127.0.0.1:0", "-exit-after", "1"],
                         stdout=benchlib.subprocess.PIPE, stderr=benchlib.subprocess.DEVNULL)
    port = json.loads(srv.stdout.readline())["port"]
    # Probes follow a new executable a few ms after its exec: measure with them in place.
    deadline = time.monotonic() + 30
    while ld is not None and not any("Attached" in ln and exe in ln
                                     for ln in ld.log_text().splitlines()):
        if time.monotonic() > deadline:
            raise benchlib.BenchError("%s: probes never attached to %s" % (tag, exe))
        time.sleep(0.01)
    sizes = ",".join(["1"] * requests)
    t0 = time.monotonic()
    cli = benchlib.spawn([exe, "client", "-connect", "127.0.0.1:%d" % port, "-sizes", sizes],
                         stdout=benchlib.subprocess.PIPE, stderr=benchlib.subprocess.PIPE)
    out, err = cli.communicate(timeout=600)
    wall = time.monotonic() - t0
    srv.wait(30)
    if cli.returncode != 0:
        raise benchlib.BenchError("%s: client failed: %s" % (tag, err.decode(errors="replace")))
    return requests / wall


def main(opts):
    work = tempfile.mkdtemp(prefix="tlssniff-bench-gotls-")
    exe = str(gobuild.build(opts.toolchain, os.path.join(work, "tlspeer")))
    results = {c: [] for c in CONFIGS}
    checks = {}
    for rnd in range(opts.rounds):
        for name, args in CONFIGS.items():
            ld = None
            if args is not None:
                out = os.path.join(work, "%s-%d.jsonl" % (name, rnd))
                ld = benchlib.Loaderd(opts.loaderd, out, out + ".log",
                                      args + ["--cache-dir", os.path.join(work, "cache")]
                                      + opts.loaderd_arg).start()
            rate = one_round(exe, opts.requests, work, name, ld)
            if ld is not None:
                ld.drain()
                ld.stop()
                st = benchlib.last_stats(ld.output) or {}
                lost = {k: v for k, v in st.items() if v and (k.startswith("kernel_drop") or
                                                             k in ("kernel_go_no_goid",
                                                                   "kernel_unmatched_returns"))}
                # 13 B request + 1 B response per round trip, both processes, both directions.
                want = opts.requests * 14 * 2
                if lost or st.get("kernel_bytes", 0) < want:
                    raise benchlib.BenchError("%s round %d: captured %s B of at least %d, "
                                              "losses %s" % (name, rnd, st.get("kernel_bytes"),
                                                             want, lost))
                checks[name] = st.get("kernel_bytes")
            results[name].append(rate)
            benchlib.progress("round %d %-18s %8.0f round trips/s" % (rnd + 1, name, rate))
    base = statistics.median(results["untraced"])
    print("%-18s %14s %8s" % ("configuration", "round trips/s", "ratio"))
    summary = {}
    for name, rates in results.items():
        m = statistics.median(rates)
        summary[name] = {"median": m, "ratio": m / base, "rounds": rates}
        print("%-18s %14.0f %8.3f" % (name, m, m / base))
    print(json.dumps({"benchmark": "gotls", "toolchain": opts.toolchain,
                      "requests": opts.requests, "results": summary,
                      "captured_bytes": checks}))
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    benchlib.add_common_args(ap)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--toolchain", default="go1.19", choices=sorted(gobuild.TOOLCHAINS))
    opts = ap.parse_args()
    pre = benchlib.preflight(opts)
    if pre:
        print(pre[1])
        sys.exit(pre[0])
    try:
        sys.exit(main(opts))
    finally:
        benchlib.cleanup_all()
