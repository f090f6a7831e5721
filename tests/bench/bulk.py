#!/usr/bin/python3
"""Bulk benchmark: one TLS transfer of at least 1 GiB as fast as the peers go, untraced and
captured by tlssniff, interleaved in rounds (untraced, traced, untraced, traced, ...).

The peers are two /usr/bin/python3 processes (Python's ssl links the system libssl, so
tlssniff's OpenSSL probes fire in both): the client writes --size bytes in 1 MiB SSL_write
calls, the server reads them (OpenSSL hands out at most one 16 KiB record per SSL_read) and
answers "OK" (2 bytes). Both peers exist before tlssniff starts, and the traced runs filter
with --pid to exactly these two processes, so the bytes offered to the probes are known:
client writes + server reads + 2 + 2. The check: kernel_bytes + kernel_drop_ringbuf_bytes +
kernel_drop_read_fail_bytes + kernel_truncated_bytes from the final stats line equals that
exactly, and the JSON output holds kernel_bytes of payload of these two processes with no hole.

Run as root: /usr/bin/python3 tests/bench/bulk.py [--quick] [--size 1G] [--rounds 3]
Last line of standard output: one JSON object ("benchmark": "bulk"). Exit status 0 when every
run ran (whatever the figures), 1 when something failed to run, 77 when not root (CI!=true).
"""

import argparse
import json
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

GIB = 1 << 30
CHUNK = 1 << 20
ACK = b"OK"


def parse_size(s):
    s = s.strip().upper()
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if s and s[-1] in mult:
        return int(float(s[:-1]) * mult[s[-1]])
    return int(s)


# ---------------------------------------------------------------------------------------------
# Peers (run as separate processes: this file with --peer)


def peer_server(port, total, cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(1)
    print("LISTENING", flush=True)
    s, _ = ls.accept()
    c = ctx.wrap_socket(s, server_side=True)
    buf = bytearray(CHUNK)
    got = 0
    while got < total:
        n = c.recv_into(buf)
        if n == 0:
            break
        got += n
    c.sendall(ACK)
    try:
        c.recv(1)  # the client closes after reading the ack
    except (OSError, ssl.SSLError):
        pass
    c.close()
    print("PEERJSON " + json.dumps({"read": got, "written": len(ACK)}), flush=True)
    return 0 if got == total else 1


def peer_client(port, total):
    sys.stdin.readline()  # "go"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
    data = memoryview(bytes((i * 7 + 13) & 0xFF for i in range(256)) * (CHUNK // 256))
    sent = 0
    t0 = time.monotonic()
    while sent < total:
        n = min(CHUNK, total - sent)
        c.sendall(data[:n])
        sent += n
    ack = b""
    while len(ack) < len(ACK):
        d = c.recv(len(ACK) - len(ack))
        if not d:
            break
        ack += d
    t1 = time.monotonic()
    c.close()
    print("PEERJSON " + json.dumps({"written": sent, "read": len(ack), "seconds": t1 - t0}),
          flush=True)
    return 0 if ack == ACK else 1


def peer_main(spec):
    parts = spec.split(":")
    if parts[0] == "server":
        return peer_server(int(parts[1]), int(parts[2]), parts[3], parts[4])
    return peer_client(int(parts[1]), int(parts[2]))


def peer_result(p, timeout):
    out = p.stdout.read().decode(errors="replace")
    try:
        rc, cpu = bl.wait_rusage(p, timeout)
    except subprocess.TimeoutExpired:
        bl.end_process(p)
        raise bl.BenchError("a peer did not end")
    line = [ln for ln in out.splitlines() if ln.startswith("PEERJSON ")]
    if rc != 0 or not line:
        raise bl.BenchError("peer exited %d: %s" % (rc, out[-500:]))
    r = json.loads(line[-1][9:])
    r["cpu"] = cpu
    return r


# ---------------------------------------------------------------------------------------------
# One run


def one_run(traced, rnd, opts, workdir, cert, key):
    tag = "r%d-%s" % (rnd, "traced" if traced else "untraced")
    bl.progress("round %d: %s, %d MiB" % (rnd, "traced" if traced else "untraced",
                                          opts.size >> 20))
    port = bl.free_port()
    me = os.path.abspath(__file__)
    srv = bl.spawn([bl.PY, me, "--peer", "server:%d:%d:%s:%s" % (port, opts.size, cert, key)],
                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if srv.stdout.readline().strip() != b"LISTENING":
        raise bl.BenchError("the server peer did not start")
    cli = bl.spawn([bl.PY, me, "--peer", "client:%d:%d" % (port, opts.size)],
                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    ld = None
    run = {"round": rnd, "traced": traced, "bytes": opts.size}
    timeout = opts.size / 5e6 + 120
    try:
        if traced:
            out = os.path.join(workdir, tag + ".jsonl")
            ld = bl.Loaderd(opts.loaderd, out, os.path.join(workdir, tag + ".log"),
                            ["--pid", str(srv.pid), "--pid", str(cli.pid)] + opts.loaderd_arg,
                            opts.ready_timeout).start()
            run["ready_s"] = round(ld.ready_s, 3)
            by_comm0 = ld.cpu_by_comm()
            cpu0 = sum(by_comm0.values())
        run["other_tracers"] = [p for p in bl.other_tracers()
                                if not ld or p not in ld.pids()]
        cli.stdin.write(b"go\n")
        cli.stdin.flush()
        c = peer_result(cli, timeout)
        s = peer_result(srv, timeout)
        run["seconds"] = c["seconds"]
        run["mb_per_s"] = opts.size / c["seconds"] / 1e6
        run["peer_cpu_s"] = c["cpu"] + s["cpu"]
        run["moved"] = {"client_write": c["written"], "client_read": c["read"],
                        "server_read": s["read"], "server_write": s["written"]}
        if traced:
            cpu_mid = ld.cpu()
            run["drain_s"] = round(ld.drain(limit=timeout), 3)
            by_comm = ld.cpu_by_comm()
            cpu1 = sum(by_comm.values())
            run["tlssniff_cpu_s"] = round(cpu1 - cpu0, 3)
            run["tlssniff_drain_cpu_s"] = round(cpu1 - cpu_mid, 3)
            run["tlssniff_cpu_by_comm_s"] = {k: round(v - by_comm0.get(k, 0.0), 3)
                                             for k, v in by_comm.items()}
            run["tlssniff_cpu_s_per_gib"] = round((cpu1 - cpu0) / (opts.size / GIB), 3)
            run["tlssniff_total_cpu_s"] = round(ld.stop(), 3)
            ld_done, ld = ld, None
            run["output_file_bytes"] = os.stat(out).st_size
            cap = bl.tp.analyse_capture(out, {srv.pid}, {cli.pid})
            if not opts.keep:
                os.unlink(out)
            run["capture"] = check_capture(cap, run, ld_done)
        bl.progress("  %.0f MB/s%s" % (run["mb_per_s"], capture_line(run)))
        return run
    finally:
        for p in (cli, srv):
            if p.poll() is None:
                bl.end_process(p)
        if ld:
            bl.end_process(ld.proc, signal.SIGINT, 30)


def check_capture(cap, run, ld):
    stats = cap["stats"] or {}
    moved = run["moved"]
    offered = sum(moved.values())
    counted = bl.offered_bytes(stats)
    captured = sum(v["bytes"] for v in cap["sides"].values())
    by_dir = {k: cap["sides"].get(k, {}).get("bytes", 0) for k in moved}
    drops = {k: stats.get(k, 0) for k in bl.OFFERED_COUNTERS if k != "kernel_bytes"}
    res = {
        "offered_bytes": offered,
        "stats_bytes_sum": counted,
        "accounted_exactly": counted == offered,
        "kernel_bytes": stats.get("kernel_bytes"),
        "captured_bytes_in_output": captured,
        "output_matches_kernel_bytes": captured == stats.get("kernel_bytes"),
        "by_direction": {k: [by_dir[k], moved[k]] for k in moved},
        "drops": drops,
        "dropped_bytes": sum(drops.values()),
        "drop_records": stats.get("kernel_drop_ringbuf_records", 0),
        "holes": cap["holes"],
        "hole_bytes": cap["hole_bytes"],
        "records": cap["records"],
        "other_process_bytes": cap["other_process_bytes"],
        "loss_counters": bl.nonzero_losses(stats),
        "stats_present": cap["stats"] is not None,
        "loss_log_lines": [ln for ln in ld.log_text().splitlines()
                           if "loss" in ln.lower() or "drop" in ln.lower()][-5:],
    }
    res["captured_mb_per_s"] = captured / run["seconds"] / 1e6
    res["tlssniff_cpu_s_per_captured_gib"] = (round(run["tlssniff_cpu_s"] / (captured / GIB), 3)
                                              if captured else None)
    res["captured_mb_per_s_incl_drain"] = captured / (run["seconds"] + run["drain_s"]) / 1e6
    return res


def capture_line(run):
    c = run.get("capture")
    if not c:
        return ""
    return (", offered %d, stats account for %d (%s), captured %d, dropped %d, holes %d, "
            "drain %.1fs, tlssniff %.1f CPU s/GiB"
            % (c["offered_bytes"], c["stats_bytes_sum"],
               "exact" if c["accounted_exactly"] else "MISMATCH", c["captured_bytes_in_output"],
               c["dropped_bytes"], c["holes"], run["drain_s"], run["tlssniff_cpu_s_per_gib"]))


def ringbuf_size(args):
    """loaderd's --ringbuf-size as given (each CPU's data ring), else the default's name."""
    for i, a in enumerate(args):
        if a.startswith("--ringbuf-size="):
            return a.split("=", 1)[1]
        if a == "--ringbuf-size" and i + 1 < len(args):
            return args[i + 1]
    return "default (16M shared out among the CPUs, at most 4M each)"


def main(argv):
    ap = argparse.ArgumentParser(description="tlssniff bulk-transfer benchmark (root)")
    ap.add_argument("--size", default="1G", help="bytes per transfer, K/M/G suffixes (1G)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (3)")
    ap.add_argument("--peer", help=argparse.SUPPRESS)
    bl.add_common_args(ap)
    opts = ap.parse_args(argv)
    if opts.peer:
        return peer_main(opts.peer)
    if opts.quick:
        opts.size, opts.rounds = "256M", 2
    opts.size = parse_size(opts.size)
    pf = bl.preflight(opts)
    if pf:
        print(pf[1])
        return pf[0]
    workdir = tempfile.mkdtemp(prefix="tlssniff-bulk-")
    runs, failed = [], None
    try:
        cert, key = bl.make_cert(workdir)
        for rnd in range(1, opts.rounds + 1):
            for traced in (False, True):
                runs.append(one_run(traced, rnd, opts, workdir, cert, key))
    except bl.BenchError as e:
        failed = str(e)
    except KeyboardInterrupt:
        failed = "interrupted"
    finally:
        bl.cleanup_all()
        if opts.keep:
            bl.progress("work dir kept: %s" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    un = [r for r in runs if not r["traced"]]
    tr = [r for r in runs if r["traced"]]
    med = statistics.median
    summary = {"size_bytes": opts.size, "rounds": opts.rounds,
               "ringbuf_size": ringbuf_size(opts.loaderd_arg),
               "loaderd_args": opts.loaderd_arg}
    print("tlssniff bulk benchmark: %d MiB per transfer, %d rounds, python3 ssl peers "
          "(1 MiB SSL_write, 16 KiB SSL_read), data ring per CPU %s"
          % (opts.size >> 20, opts.rounds, summary["ringbuf_size"]))
    print()
    print("%5s %14s %12s %8s %14s %10s %12s %10s %8s"
          % ("round", "untraced MB/s", "traced MB/s", "ratio", "captured MB/s", "drain s",
             "CPU s/GiB", "dropped B", "exact"))
    for rnd in range(1, opts.rounds + 1):
        u = [r for r in un if r["round"] == rnd]
        t = [r for r in tr if r["round"] == rnd]
        if not u:
            continue
        c = t[0]["capture"] if t else None
        print("%5d %14.0f %12s %8s %14s %10s %12s %10s %8s"
              % (rnd, u[0]["mb_per_s"],
                 "%.0f" % t[0]["mb_per_s"] if t else "-",
                 "%.3f" % (t[0]["mb_per_s"] / u[0]["mb_per_s"]) if t else "-",
                 "%.0f" % c["captured_mb_per_s"] if c else "-",
                 "%.1f" % t[0]["drain_s"] if t else "-",
                 "%.2f" % t[0]["tlssniff_cpu_s_per_gib"] if t else "-",
                 c["dropped_bytes"] if c else "-",
                 ("yes" if c["accounted_exactly"] else "NO") if c else "-"))
    if un and tr:
        pairs = [t["mb_per_s"] / u["mb_per_s"] for u in un for t in tr if u["round"] == t["round"]]
        summary.update({
            "untraced_mb_per_s": round(med([r["mb_per_s"] for r in un]), 1),
            "traced_mb_per_s": round(med([r["mb_per_s"] for r in tr]), 1),
            "paired_ratios": [round(x, 4) for x in pairs],
            "captured_mb_per_s": round(med([r["capture"]["captured_mb_per_s"] for r in tr]), 1),
            "captured_mb_per_s_incl_drain": round(
                med([r["capture"]["captured_mb_per_s_incl_drain"] for r in tr]), 1),
            "tlssniff_cpu_s_per_gib": round(med([r["tlssniff_cpu_s_per_gib"] for r in tr]), 3),
            "drain_s": round(med([r["drain_s"] for r in tr]), 2),
            "tlssniff_cpu_s_per_captured_gib": round(
                med([r["capture"]["tlssniff_cpu_s_per_captured_gib"] or 0 for r in tr]), 3),
            "accounted_exactly": all(r["capture"]["accounted_exactly"] for r in tr),
            "output_matches_kernel_bytes": all(r["capture"]["output_matches_kernel_bytes"]
                                               for r in tr),
            "dropped_bytes": [r["capture"]["dropped_bytes"] for r in tr],
            "holes": [r["capture"]["holes"] for r in tr],
            "zero_drops": all(r["capture"]["dropped_bytes"] == 0 for r in tr),
            "runs_with_other_tracers": [(r["round"], r["traced"]) for r in runs
                                        if r["other_tracers"]],
        })
        summary["ratio"] = round(summary["traced_mb_per_s"] / summary["untraced_mb_per_s"], 4)
        summary["paired_ratio_median"] = round(med(pairs), 4)
        print()
        print("median: untraced %.0f MB/s, traced %.0f MB/s, ratio %.3f (paired %.3f)"
              % (summary["untraced_mb_per_s"], summary["traced_mb_per_s"], summary["ratio"],
                 summary["paired_ratio_median"]))
        print("captured (both peers' payload in the output, over the transfer time): %.0f MB/s;"
              " including the drain: %.0f MB/s"
              % (summary["captured_mb_per_s"], summary["captured_mb_per_s_incl_drain"]))
        print("tlssniff CPU (loaderd + analyzer, load + drain) per GiB transferred "
              "(= 2 GiB offered to the probes, both peers): %.2f s; per GiB actually captured: "
              "%.2f s" % (summary["tlssniff_cpu_s_per_gib"],
                          summary["tlssniff_cpu_s_per_captured_gib"]))
        comms = sorted({k for r in tr for k in r["tlssniff_cpu_by_comm_s"]})
        summary["tlssniff_cpu_s_by_comm"] = {
            k: round(med([r["tlssniff_cpu_by_comm_s"].get(k, 0.0) for r in tr]), 3) for k in comms}
        print("  by process (median CPU s per run): %s"
              % ", ".join("%s %.2f" % kv for kv in summary["tlssniff_cpu_s_by_comm"].items()))
        print("bytes offered = captured + counted drops, exactly: %s"
              % ("yes" if summary["accounted_exactly"] else "NO"))
        print("output holds exactly kernel_bytes of the peers' payload: %s"
              % ("yes" if summary["output_matches_kernel_bytes"] else "NO"))
        print("zero drops: %s (dropped bytes per round %s, data ring per CPU %s)"
              % ("yes" if summary["zero_drops"] else "NO", summary["dropped_bytes"],
                 summary["ringbuf_size"]))
        for r in tr:
            c = r["capture"]
            if not c["accounted_exactly"] or c["dropped_bytes"] or c["holes"] \
                    or not c["output_matches_kernel_bytes"]:
                print("  round %d: offered %d, stats sum %d (diff %+d), kernel_bytes %s, output "
                      "%d, drops %s, holes %d (%d B), by direction [captured, moved] %s, "
                      "loss counters %s"
                      % (r["round"], c["offered_bytes"], c["stats_bytes_sum"],
                         c["stats_bytes_sum"] - c["offered_bytes"], c["kernel_bytes"],
                         c["captured_bytes_in_output"], c["drops"], c["holes"], c["hole_bytes"],
                         c["by_direction"], c["loss_counters"]))
        if summary["runs_with_other_tracers"]:
            print("WARNING: another tlssniff-loaderd or bpftrace ran during runs %s"
                  % summary["runs_with_other_tracers"])
    result = {"benchmark": "bulk", "ok": failed is None, "summary": summary, "runs": runs}
    if failed:
        result["error"] = failed
        print()
        print("FAILED: " + failed)
    print(json.dumps(result, sort_keys=True))
    return 0 if failed is None else 1


if __name__ == "__main__":
    bl.run_main(main)
