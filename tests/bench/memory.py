#!/usr/bin/python3
"""Memory benchmark: resident memory of tlssniff-loaderd and tlssniff-analyzer (VmRSS, VmHWM
from /proc/PID/status) in phases of one tlssniff run capturing everything:

  idle         a few seconds after "Ready:", no TLS traffic of ours
  load         during and right after throughput-like load: nginx (1 worker, TLS 1.3, 1 KiB
               file, keep-alive) under wrk (4 connections), the setup of throughput.py; a
               Python request loop when nginx/wrk are not available
  connections  with N (10,000) open TLS connections, each having made one exchange (a "ping"
               and a "pong"), held by two /usr/bin/python3 processes: a selectors server and a
               client holding every connection
  closed       a few seconds after the client closed them all

VmHWM is the peak since the process started, so it only grows from phase to phase.

Run as root: /usr/bin/python3 tests/bench/memory.py [--quick] [--connections 10000]
Last line of standard output: one JSON object ("benchmark": "memory"). Exit status 0 when
it ran (whatever the figures), 1 when something failed to run, 77 when not root (CI!=true).
"""

import argparse
import json
import os
import resource
import selectors
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


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard == resource.RLIM_INFINITY else min(hard, max(soft, need))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def holder_server(port_file, cert, key, n):
    raise_nofile(n + 100)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(4096)
    ls.setblocking(False)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(ls.getsockname()[1]))
    os.rename(port_file + ".tmp", port_file)
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ, None)
    conns = {}
    while True:
        for key_, _ in sel.select(1.0):
            if key_.data is None:
                try:
                    s, _ = ls.accept()
                except BlockingIOError:
                    continue
                s.setblocking(False)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                c = ctx.wrap_socket(s, server_side=True, do_handshake_on_connect=False)
                conns[c] = "hs"
                sel.register(c, selectors.EVENT_READ, "c")
                continue
            c = key_.fileobj
            try:
                if conns[c] == "hs":
                    c.do_handshake()
                    conns[c] = "open"
                d = c.recv(4096)
                if not d:
                    sel.unregister(c)
                    del conns[c]
                    c.close()
                elif d.startswith(b"ping"):
                    c.sendall(b"pong" + d[4:])
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                pass
            except (OSError, ssl.SSLError):
                sel.unregister(c)
                del conns[c]
                c.close()


def holder_client(port, n):
    raise_nofile(n + 100)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    held = []
    t0 = time.monotonic()
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c = ctx.wrap_socket(s)
        msg = b"ping %d\n" % i
        c.sendall(msg)
        got = b""
        while len(got) < len(msg):
            d = c.recv(64)
            if not d:
                raise SystemExit("connection %d closed" % i)
            got += d
        held.append(c)
    print("HOLDING %d %.2f" % (len(held), time.monotonic() - t0), flush=True)
    sys.stdin.readline()
    for c in held:
        c.close()
    print("CLOSED", flush=True)
    return 0


def sample(ld):
    a = ld.analyzer_pid()
    maps = bl.bpf_maps(ld.proc.pid)
    return {"loaderd": bl.mem_status(ld.proc.pid), "analyzer": bl.mem_status(a) if a else {},
            "bpf_maps_memlock_kb": sum(m.get("memlock", 0) for m in maps) // 1024,
            "bpf_maps": len(maps)}


def load_phase(opts, workdir, ld):
    """Throughput-like load, sampling memory every 0.2 s; returns the phase's figures."""
    ncpu = len(os.sched_getaffinity(0))
    nginx = bl.tp.ensure_tool("nginx", ["nginx-light", "nginx"])
    wrk = bl.tp.ensure_tool("wrk", ["wrk"])
    kind = "nginx" if nginx and bl.tp.links_system_libssl(nginx) else "s_server"
    ckind = "wrk" if wrk and bl.tp.links_system_libssl(wrk) else "python"
    server = bl.tp.Server(kind, workdir, ncpu)
    server.exe = nginx if kind == "nginx" else shutil.which("openssl")
    peak = {"loaderd": 0, "analyzer": 0}
    result = {}
    try:
        server.prepare()
        server.start()
        client = bl.tp.Client(ckind, wrk if ckind == "wrk" else sys.executable, workdir, ncpu, 4)
        box = {}

        def go():
            try:
                box["res"] = client.run(server, opts.load_seconds)
            except Exception as e:  # reported below
                box["err"] = e

        t = threading.Thread(target=go)
        t.start()
        while t.is_alive():
            s = sample(ld)
            for k in peak:
                peak[k] = max(peak[k], s[k].get("VmRSS", 0))
            time.sleep(0.2)
        t.join()
        if "err" in box:
            raise bl.BenchError("load failed: %s" % box["err"])
        res = box["res"]
        result = {"server": kind, "client": ckind, "requests": res["requests"],
                  "req_per_s": round(res["req_per_s"], 1),
                  "peak_vmrss_kb_during": peak}
    finally:
        server.stop()
    return result


def main(argv):
    ap = argparse.ArgumentParser(description="tlssniff memory benchmark (root)")
    ap.add_argument("--connections", type=int, default=10000, help="open TLS connections (10000)")
    ap.add_argument("--load-seconds", type=int, default=5, help="seconds of load (5)")
    ap.add_argument("--idle-seconds", type=float, default=3.0)
    ap.add_argument("--holder", help=argparse.SUPPRESS)
    bl.add_common_args(ap)
    opts = ap.parse_args(argv)
    if opts.holder:
        kind, *rest = opts.holder.split(":")
        if kind == "server":
            return holder_server(rest[0], rest[1], rest[2], int(rest[3]))
        return holder_client(int(rest[0]), int(rest[1]))
    if opts.quick:
        opts.connections = min(opts.connections, 1000)
        opts.load_seconds = 2
        opts.idle_seconds = 1.0
    pf = bl.preflight(opts)
    if pf:
        print(pf[1])
        return pf[0]
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < opts.connections + 100:
        print("FAIL: RLIMIT_NOFILE hard limit %d is below %d connections" % (hard,
                                                                               opts.connections))
        return 1
    workdir = tempfile.mkdtemp(prefix="tlssniff-memory-")
    failed = None
    phases = {}
    extra = {}
    ld = None
    me = os.path.abspath(__file__)
    try:
        cert, key = bl.make_cert(workdir)
        out = os.path.join(workdir, "capture.jsonl")
        ld = bl.Loaderd(opts.loaderd, out, os.path.join(workdir, "loaderd.log"),
                        opts.loaderd_arg, opts.ready_timeout).start()
        extra["other_tracers"] = [p for p in bl.other_tracers() if p not in ld.pids()]
        time.sleep(opts.idle_seconds)
        phases["idle"] = sample(ld)
        bl.progress("idle: %s" % json.dumps(phases["idle"]))

        bl.progress("load: %d s" % opts.load_seconds)
        extra["load"] = load_phase(opts, workdir, ld)
        ld.drain(limit=60, quiet=0.5)
        phases["load"] = sample(ld)
        phases["load"]["peak_vmrss_kb_during"] = extra["load"]["peak_vmrss_kb_during"]
        bl.progress("load: %s" % json.dumps(phases["load"]))

        bl.progress("%d connections" % opts.connections)
        port_file = os.path.join(workdir, "holder.port")
        srv = bl.spawn([bl.PY, me, "--holder", "server:%s:%s:%s:%d"
                        % (port_file, cert, key, opts.connections)],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while not os.path.exists(port_file):
            if time.monotonic() > deadline or srv.poll() is not None:
                raise bl.BenchError("holder server did not start")
            time.sleep(0.05)
        with open(port_file) as f:
            port = int(f.read())
        cli = bl.spawn([bl.PY, me, "--holder", "client:%d:%d" % (port, opts.connections)],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        t0 = time.monotonic()
        line = b""
        peak = {"loaderd": 0, "analyzer": 0}
        # The client prints one line once every connection made its exchange.
        import select
        while time.monotonic() - t0 < opts.connections * 0.02 + 120:
            r, _, _ = select.select([cli.stdout], [], [], 0.5)
            s = sample(ld)
            for k in peak:
                peak[k] = max(peak[k], s[k].get("VmRSS", 0))
            if r:
                line = cli.stdout.readline()
                break
            if cli.poll() is not None:
                break
        if not line.startswith(b"HOLDING"):
            raise bl.BenchError("holder client failed: %s %s"
                                % (line, cli.stderr.read().decode(errors="replace")[-500:]))
        extra["connections_setup_s"] = float(line.split()[2])
        ld.drain(limit=60, quiet=1.0)
        phases["connections"] = sample(ld)
        phases["connections"]["peak_vmrss_kb_during"] = peak
        phases["connections"]["holder_client_vmrss_kb"] = bl.mem_status(cli.pid).get("VmRSS")
        bl.progress("connections: %s" % json.dumps(phases["connections"]))
        cli.stdin.write(b"close\n")
        cli.stdin.flush()
        cli.stdout.readline()
        bl.wait_rusage(cli, 60)
        time.sleep(max(2.0, opts.idle_seconds))
        ld.drain(limit=60, quiet=1.0)
        phases["closed"] = sample(ld)
        bl.progress("closed: %s" % json.dumps(phases["closed"]))
        bl.end_process(srv)
        ld.stop()
        stats = bl.last_stats(out)
        extra["stats"] = stats
        extra["loss_counters"] = bl.nonzero_losses(stats)
        extra["output_file_bytes"] = os.stat(out).st_size
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

    if phases:
        print("tlssniff memory benchmark (KiB, from /proc/PID/status)")
        print("  %-34s %10s %10s %12s %12s" % ("phase", "loaderd RSS", "HWM", "analyzer RSS",
                                               "HWM"))
        labels = {"idle": "idle",
                  "load": "after load (%s)" % ("%s+%s, %s req" % (
                      extra["load"]["server"], extra["load"]["client"],
                      extra["load"]["requests"]) if extra.get("load") else "-"),
                  "connections": "%d open connections" % opts.connections,
                  "closed": "after closing them"}
        for ph in ("idle", "load", "connections", "closed"):
            p = phases.get(ph)
            if not p:
                continue
            print("  %-34s %10s %10s %12s %12s"
                  % (labels[ph], p["loaderd"].get("VmRSS", "-"), p["loaderd"].get("VmHWM", "-"),
                     p["analyzer"].get("VmRSS", "-"), p["analyzer"].get("VmHWM", "-")))
            print("  %-34s %10s   (%d maps held by loaderd, kernel memory, not in RSS)"
                  % ("  BPF maps memlock", p.get("bpf_maps_memlock_kb", "-"), p.get("bpf_maps", 0)))
            if "peak_vmrss_kb_during" in p:
                print("  %-34s %10s %10s %12s"
                      % ("  peak RSS sampled during", p["peak_vmrss_kb_during"]["loaderd"], "",
                         p["peak_vmrss_kb_during"]["analyzer"]))
        if "connections" in phases and "load" in phases:
            a0 = phases["load"]["analyzer"].get("VmRSS", 0)
            a1 = phases["connections"]["analyzer"].get("VmRSS", 0)
            print("  analyzer growth per open connection (VmRSS with them - after load, over the "
                  "connections): %.2f KiB"
                  % ((a1 - a0) / opts.connections))
            extra["analyzer_kib_per_connection"] = round((a1 - a0) / opts.connections, 3)
        if extra.get("load"):
            print("  load: %s" % json.dumps({k: v for k, v in extra["load"].items()
                                             if k != "peak_vmrss_kb_during"}))
        if "connections_setup_s" in extra:
            print("  %d connections set up in %.1f s" % (opts.connections,
                                                         extra["connections_setup_s"]))
        if "loss_counters" in extra:
            print("  losses counted: %s" % (extra["loss_counters"] or "none"))
        if extra.get("other_tracers"):
            print("  note: other tlssniff-loaderd/bpftrace processes were running: %s"
                  % extra["other_tracers"])
    result = {"benchmark": "memory", "ok": failed is None, "connections": opts.connections,
              "phases": phases, **extra}
    if failed:
        result["error"] = failed
        print("FAILED: " + failed)
    print(json.dumps(result, sort_keys=True))
    return 0 if failed is None else 1


if __name__ == "__main__":
    bl.run_main(main)
