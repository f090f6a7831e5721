"""Shared helpers of the benchmarks in tests/bench (bulk.py, shortlived.py, latency.py,
memory.py). The process helpers (spawn, end_process, cleanup_all, CPU accounting, apt) come from
throughput.py, which stays runnable on its own; this module adds what the newer benchmarks
share: a tlssniff-loaderd run with arbitrary arguments, a self-signed certificate, reading
the final stats object, /proc/PID/status memory figures, and the common command-line frame.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import throughput as tp  # noqa: E402  (the shared process helpers live there)

from throughput import (  # noqa: E402,F401  (re-exported)
    BenchError,
    CLK_TCK,
    bpf_stats_restore,
    bpf_stats_set,
    DEFAULT_LOADERD,
    STARTED,
    cleanup_all,
    end_process,
    free_port,
    nonzero_losses,
    proc_stat,
    process_tree,
    progress,
    running_comms,
    spawn,
    tree_cpu,
    tree_cpu_by_comm,
    wait_rusage,
)

PY = "/usr/bin/python3"

# The byte counters whose sum is what the probes were offered (docs/design.md, "Losses").
OFFERED_COUNTERS = (
    "kernel_bytes",
    "kernel_drop_ringbuf_bytes",
    "kernel_drop_read_fail_bytes",
    "kernel_truncated_bytes",
)


def make_cert(workdir):
    """A throw-away EC certificate and key in workdir; returns (cert, key)."""
    cert = os.path.join(workdir, "cert.pem")
    key = os.path.join(workdir, "key.pem")
    r = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    if r.returncode != 0:
        raise BenchError("openssl req failed: " + r.stderr.decode(errors="replace"))
    os.chmod(workdir, 0o755)
    return cert, key


def boottime_ns():
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME)


def mem_status(pid):
    """{"VmRSS": kB, "VmHWM": kB, ...} of a process from /proc/PID/status, {} if gone."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "VmSize", "RssAnon", "RssFile", "Threads"):
                    out[k] = int(v.split()[0])
    except OSError:
        return {}
    return out


def bpf_maps(pid):
    """The BPF maps a process holds open, from /proc/PID/fdinfo: [{map_type, max_entries,
    memlock (bytes, the kernel's estimate of the map's memory), map_id}] without duplicates."""
    maps = {}
    try:
        fds = os.listdir("/proc/%d/fdinfo" % pid)
    except OSError:
        return []
    for fd in fds:
        try:
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                info = dict(ln.split(":", 1) for ln in f.read().splitlines() if ":" in ln)
        except OSError:
            continue
        if "map_type" not in info:
            continue
        m = {k: int(info[k].strip()) for k in ("map_type", "max_entries", "memlock", "map_id")
             if k in info and info[k].strip().lstrip("-").isdigit()}
        maps[m.get("map_id", fd)] = m
    return list(maps.values())


def comm_of(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return "?"


class Loaderd:
    """One tlssniff-loaderd run: --json --output FILE plus the given arguments; start() returns
    once it logged "Ready:"."""

    def __init__(self, binary, output, log, args=(), ready_timeout=60.0):
        self.binary = binary
        self.output = output
        self.log = log
        self.args = list(args)
        self.ready_timeout = ready_timeout
        self.proc = None
        self.ready_s = None
        self.returncode = None

    def start(self):
        argv = [self.binary, "--json", "--output", self.output, "--log-target", "stderr",
                "--control-socket", ""] + self.args
        logf = open(self.log, "wb")
        t0 = time.monotonic()
        self.proc = spawn(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
        logf.close()
        text = ""
        while time.monotonic() - t0 < self.ready_timeout:
            text = self.log_text()
            if "Ready:" in text:
                self.ready_s = time.monotonic() - t0
                time.sleep(0.3)
                return self
            if self.proc.poll() is not None:
                raise BenchError("tlssniff-loaderd exited %s before it was ready:\n%s"
                                 % (self.proc.returncode, text[-2000:]))
            time.sleep(0.05)
        end_process(self.proc, signal.SIGINT, 10)
        raise BenchError("tlssniff-loaderd not ready after %gs:\n%s"
                         % (self.ready_timeout, text[-2000:]))

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def pids(self):
        """loaderd and its descendants (the analyzer)."""
        return process_tree(self.proc.pid)

    def analyzer_pid(self):
        for pid in self.pids():
            if pid != self.proc.pid and comm_of(pid).startswith("tlssniff-analy"):
                return pid
        return None

    def cpu(self):
        """CPU seconds of loaderd + analyzer so far (utime+stime from /proc/PID/stat)."""
        return tree_cpu(self.proc.pid)

    def cpu_by_comm(self):
        return tree_cpu_by_comm(self.proc.pid)

    def drain(self, limit=300.0, quiet=1.0):
        """Waits until the output file stops growing for `quiet` seconds; returns the seconds
        until its last growth."""
        t0 = time.monotonic()
        last, since = -1, t0
        while time.monotonic() - t0 < limit:
            try:
                size = os.stat(self.output).st_size
            except OSError:
                size = 0
            now = time.monotonic()
            if size != last:
                last, since = size, now
            elif now - since >= quiet:
                return since - t0
            time.sleep(0.05)
        return time.monotonic() - t0

    def stop(self, timeout=120):
        """SIGINT, waits; returns the CPU seconds of its whole reaped tree."""
        try:
            os.kill(self.proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        try:
            rc, cpu = wait_rusage(self.proc, timeout)
        except subprocess.TimeoutExpired:
            end_process(self.proc, signal.SIGTERM, 10)
            raise BenchError("tlssniff-loaderd did not stop within %ds of SIGINT" % timeout)
        self.returncode = rc
        if rc not in (0, -signal.SIGINT):
            raise BenchError("tlssniff-loaderd exited %d:\n%s" % (rc, self.log_text()[-2000:]))
        return cpu


def last_stats(path):
    """The final {"type":"stats"} object of an output file (read from its end), or None."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 65536))
            tail = f.read()
    except OSError:
        return None
    for line in reversed(tail.splitlines()):
        if b'"type":"stats"' in line.replace(b" ", b""):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def offered_bytes(stats):
    return sum(int((stats or {}).get(k, 0)) for k in OFFERED_COUNTERS)


def add_common_args(ap):
    ap.add_argument("--loaderd", default=os.environ.get("TLSSNIFF_LOADERD", DEFAULT_LOADERD),
                    help="tlssniff-loaderd binary (env TLSSNIFF_LOADERD)")
    ap.add_argument("--loaderd-arg", action="append", default=[],
                    help="extra argument for tlssniff-loaderd (repeatable)")
    ap.add_argument("--ready-timeout", type=float, default=60.0)
    ap.add_argument("--quick", action="store_true", help="a smaller, faster smoke run")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (logs, captures)")


def preflight(opts):
    """None when the benchmark can run, else (exit status, message)."""
    if os.geteuid() != 0:
        msg = "needs root (BPF)"
        if tp.ci():
            return 1, "FAIL: " + msg
        return 77, "SKIP: " + msg
    if not os.access(opts.loaderd, os.X_OK):
        return 1, ("FAIL: tlssniff-loaderd not found at %s (build it, or set TLSSNIFF_LOADERD)"
                   % opts.loaderd)
    return None


def other_tracers():
    return running_comms("tlssniff-loader") + running_comms("bpftrace")


def pct(xs, q):
    """The q-quantile (0..1) of xs, nearest-rank."""
    if not xs:
        return None
    s = sorted(xs)
    i = min(len(s) - 1, max(0, int(round(q * len(s) + 0.5)) - 1))
    return s[i]


def run_main(main):
    """Runs main(argv) with the BPF statistics off and always ends the processes it started."""
    was = bpf_stats_set("0")
    if was is not None:
        print("note: kernel.bpf_stats_enabled was on: off for the run, put back after",
              file=sys.stderr)
    try:
        rc = main(sys.argv[1:])
    finally:
        cleanup_all()
        bpf_stats_restore(was)
    sys.exit(rc)


__all__ = [n for n in dir() if not n.startswith("_")] + ["tp", "re"]
