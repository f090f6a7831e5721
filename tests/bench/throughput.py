#!/usr/bin/python3
"""Throughput benchmark: what tlssniff costs an HTTPS server under a request loop.

A local HTTPS server (nginx: one worker, TLS 1.3, a 1 KiB static file, keep-alive, pinned to
CPU 0) is driven by a request loop (wrk: one thread, 32 keep-alive connections, pinned to
CPU 1). Both link the system's libssl, so tlssniff's OpenSSL uprobes fire in both. The
configurations run interleaved in rounds (A B C A B C ...) and are compared with the untraced
runs of the same invocation:

  untraced           nothing attached
  tlssniff-all       tlssniff-loaderd --json --output FILE: everything captured and written
                     to a real file, whose content is checked against what the workload moved
  tlssniff-excluded  tlssniff-loaderd --pid PID of an idle process: the probes are put into
                     that process alone (the probe scope), the workload never hits them
  tlssniff-excluded-comm
                     tlssniff-loaderd --comm no-such-comm: probes in every process, the
                     workload's calls dropped by the programs' target check on each hit
                     (what --pid costs with --probe-scope=all, and every name, cgroup or unit
                     target)
  tlssniff-all-fallback, tlssniff-excluded-fallback
                     the same with --placement=fallback: entry uprobe + uretprobe on every
                     function, as every peer places them (the issue-7 comparison)
  bpftrace-empty     (optional) empty bpftrace uprobe+uretprobe on SSL_read/SSL_write entry:
                     the naive floor of any entry-probe tracer
  bpftrace-empty-placed
                     (optional) empty bpftrace probes on exactly the instructions tlssniff's
                     optimized placement probes (from tlssniff-analyzer --analyze): the floor
                     the tlssniff-excluded configuration is compared with
  bpftrace-sniffer   (optional) a bpftrace one-liner that prints the buffers SSL_write and
                     SSL_read moved (the simplest peer; bpftrace's buf() keeps at most
                     BPFTRACE_STRLEN = 200 bytes of each, so it does not capture everything)

--places NAME=KIND:ADDR,... runs empty bpftrace probes at exactly those places of the server's
libssl as configuration bpftrace-empty-placed+NAME: what a placement would cost before it is
built.

A variant of a tlssniff configuration (--variant CONFIG+NAME=ARGS, e.g.
--variant "tlssniff-all+scratch=--direct-read=no") runs interleaved with the others as its own
configuration, CONFIG+NAME, with ARGS added to loaderd's command line (a token loaderd=PATH
runs another build instead): an A/B comparison inside one run.

With --bpf-stats the kernel's BPF run-time statistics are on (kernel.bpf_stats_enabled, put
back afterwards) and every tlssniff run reports the time its BPF programs ran per request,
program by program: a figure the host's speed swings far less than requests per second (the
statistics themselves cost a clock read per program run, in every tlssniff configuration).

When nginx or wrk cannot be had, the script falls back to `openssl s_server -WWW` and/or a
small Python (system libssl) request loop, and says so.

Run as root: /usr/bin/python3 tests/bench/throughput.py [--quick] [--rounds N] [--seconds S]
The last line of standard output is one JSON object with every figure; progress goes to
standard error. Exit status: 0 when every run ran (whatever the figures), 1 when something
failed to run, 77 (skip) when not root and CI is not "true".
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEFAULT_LOADERD = os.path.join(ROOT, "build", "loaderd", "tlssniff-loaderd")
CLK_TCK = os.sysconf("SC_CLK_TCK")
ALL_CONFIGS = [
    "untraced",
    "tlssniff-all",
    "tlssniff-excluded",
    "tlssniff-excluded-comm",
    "tlssniff-all-fallback",
    "tlssniff-excluded-fallback",
    "bpftrace-empty",
    "bpftrace-empty-placed",
    "bpftrace-sniffer",
]
DEFAULT_CONFIGS = ["untraced", "tlssniff-all", "tlssniff-excluded"]
CLEAN_STEAL_PCT = 3  # runs with less steal than this count as clean (see clean_paired_...)
FILE_NAME = "1k.bin"
FILE_SIZE = 1024

# Every process this script starts, so cleanup ends exactly those (by process group id: each is
# started in a session of its own).
STARTED = []


def ci():
    """CI set to a true value (true, 1, yes): a benchmark that cannot run fails."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def progress(msg):
    print("[bench] " + msg, file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Processes


def spawn(argv, **kw):
    p = subprocess.Popen(argv, start_new_session=True, **kw)
    STARTED.append(p)
    return p


def end_process(p, sig=signal.SIGTERM, timeout=10.0):
    """Stops a process this script started: sig to its group, then SIGKILL to the group."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(5)
    else:
        # The leader is gone; a member of its group may not be (nginx's worker).
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if p in STARTED:
        STARTED.remove(p)


def cleanup_all():
    for p in list(STARTED):
        try:
            end_process(p, signal.SIGTERM, 5.0)
        except Exception as e:  # cleanup must go on
            progress("cleanup of pid %d: %s" % (p.pid, e))


def wait_rusage(p, timeout):
    """Waits for a child with wait4 so its rusage (children it reaped included) is known.
    Returns (returncode, cpu seconds) or raises TimeoutExpired."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            if p in STARTED:
                STARTED.remove(p)
            return p.returncode, ru.ru_utime + ru.ru_stime
        if time.monotonic() > deadline:
            raise subprocess.TimeoutExpired(p.args, timeout)
        time.sleep(0.02)


def proc_stat(pid):
    """(ppid, own cpu ticks, reaped children's cpu ticks) of a process, None if gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(b")") + 2 :].split()
    # fields[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
    return int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def process_tree(root):
    parents = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st:
                parents.setdefault(st[0], []).append(int(d))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(parents.get(pid, []))
    return tree


def tree_cpu_by_comm(root):
    """CPU seconds used so far by a process and its descendants (living or reaped), by comm."""
    out = {}
    for pid in process_tree(root):
        st = proc_stat(pid)
        if st:
            try:
                with open("/proc/%d/comm" % pid) as f:
                    comm = f.read().strip()
            except OSError:
                comm = "?"
            out[comm] = out.get(comm, 0.0) + (st[1] + st[2]) / CLK_TCK
    return out


def tree_cpu(root):
    return sum(tree_cpu_by_comm(root).values())


def machine_cpu():
    """(user+nice+system, steal) CPU seconds of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2]) / CLK_TCK, (v[7] if len(v) > 7 else 0) / CLK_TCK


def pids_cpu(pids):
    total = 0
    for pid in pids:
        st = proc_stat(pid)
        if st:
            total += st[1]
    return total / CLK_TCK


def running_comms(prefix):
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/comm" % d) as f:
                    if f.read().strip().startswith(prefix):
                        found.append(int(d))
            except OSError:
                pass
    return found


# ---------------------------------------------------------------------------------------------
# Tools


def apt_install(pkgs):
    if os.geteuid() != 0:
        return False
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends"] + pkgs
    progress("installing %s with apt-get" % " ".join(pkgs))
    for attempt in range(2):
        r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if r.returncode == 0:
            return True
        if attempt == 0:
            subprocess.run(
                ["apt-get", "update", "-q"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
    progress(
        "apt-get install %s failed: %s" % (" ".join(pkgs), r.stderr.decode(errors="replace")[-300:])
    )
    return False


def ensure_tool(exe, packages):
    path = shutil.which(exe) or (os.path.exists("/usr/sbin/" + exe) and "/usr/sbin/" + exe)
    if path:
        return path
    for pkg in packages:
        if apt_install([pkg]):
            path = shutil.which(exe) or (os.path.exists("/usr/sbin/" + exe) and "/usr/sbin/" + exe)
            if path:
                return path
    return None


def links_system_libssl(exe):
    r = subprocess.run(["ldd", exe], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return "libssl.so" in r.stdout


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_args(cpu, ncpu):
    return ["taskset", "-c", str(cpu)] if ncpu > cpu and shutil.which("taskset") else []


# ---------------------------------------------------------------------------------------------
# Server


class Server:
    def __init__(self, kind, workdir, ncpu):
        self.kind = kind
        self.workdir = workdir
        self.ncpu = ncpu
        self.port = None
        self.proc = None
        self.path = "/" + FILE_NAME
        self.html = os.path.join(workdir, "html")
        self.log = os.path.join(workdir, "server.log")

    def prepare(self):
        os.makedirs(self.html, exist_ok=True)
        os.chmod(self.workdir, 0o755)  # nginx's worker runs as nobody
        os.chmod(self.html, 0o755)
        with open(os.path.join(self.html, FILE_NAME), "wb") as f:
            f.write(bytes((ord("a") + i % 26) for i in range(FILE_SIZE)))
        os.chmod(os.path.join(self.html, FILE_NAME), 0o644)
        self.cert = os.path.join(self.workdir, "cert.pem")
        self.key = os.path.join(self.workdir, "key.pem")
        r = subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                self.key,
                "-out",
                self.cert,
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if r.returncode != 0:
            raise BenchError("openssl req failed: " + r.stderr.decode(errors="replace"))

    def start(self):
        self.port = free_port()
        logf = open(self.log, "ab")
        if self.kind == "nginx":
            prefix = os.path.join(self.workdir, "nginx")
            for sub in ("", "tmp", "logs"):
                os.makedirs(os.path.join(prefix, sub), exist_ok=True)
            conf = os.path.join(prefix, "nginx.conf")
            with open(conf, "w") as f:
                f.write(
                    NGINX_CONF.format(
                        prefix=prefix, port=self.port, cert=self.cert, key=self.key, html=self.html
                    )
                )
            argv = [
                self.exe,
                "-p",
                prefix + "/",
                "-c",
                conf,
                "-e",
                os.path.join(prefix, "logs", "error.log"),
                "-g",
                "daemon off;",
            ]
            self.proc = spawn(cpu_args(0, self.ncpu) + argv, stdout=logf, stderr=logf)
        else:
            argv = [
                self.exe,
                "s_server",
                "-accept",
                "127.0.0.1:%d" % self.port,
                "-cert",
                self.cert,
                "-key",
                self.key,
                "-tls1_3",
                "-WWW",
                "-quiet",
            ]
            self.proc = spawn(
                cpu_args(0, self.ncpu) + argv,
                cwd=self.html,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=logf,
            )
        logf.close()
        deadline = time.monotonic() + 15
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                self.req_len, self.resp_len = probe_request(self.port, self.path)
                return
            except (OSError, ValueError) as e:
                last = e
                time.sleep(0.1)
        with open(self.log, errors="replace") as f:
            tail = f.read()[-1000:]
        raise BenchError(
            "%s did not serve on 127.0.0.1:%d (%s): %s" % (self.kind, self.port, last, tail)
        )

    def pids(self):
        return process_tree(self.proc.pid) if self.proc else []

    def stop(self):
        if self.proc:
            end_process(self.proc, signal.SIGQUIT if self.kind == "nginx" else signal.SIGTERM, 10.0)
            self.proc = None


NGINX_CONF = """\
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    default_type application/octet-stream;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    keepalive_requests 1000000000;
    keepalive_timeout 600s;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.3;
        ssl_session_cache off;
        root {html};
        location / {{ }}
    }}
}}
"""


def request_bytes(port, path):
    # The request wrk sends by default (wrk.format with only a Host header).
    return ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (path, port)).encode()


def client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def read_response(conn, buf):
    """Reads one HTTP response. Returns (bytes it took, keep-alive?, leftover buffer)."""
    while b"\r\n\r\n" not in buf:
        d = conn.recv(65536)
        if not d:
            raise ValueError("connection closed before the response header")
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if not lines[0].startswith(b"HTTP/"):
        raise ValueError("not an HTTP response: %r" % lines[0][:80])
    status = int(lines[0].split()[1])
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(b":")
        hdrs[k.strip().lower()] = v.strip().lower()
    keep = lines[0].startswith(b"HTTP/1.1") and hdrs.get(b"connection") != b"close"
    if b"content-length" in hdrs:
        n = int(hdrs[b"content-length"])
        while len(rest) < n:
            d = conn.recv(65536)
            if not d:
                raise ValueError("connection closed inside the body")
            rest += d
        body_len, left = n, rest[n:]
    else:
        keep = False
        while True:
            try:
                d = conn.recv(65536)
            except ssl.SSLError:  # s_server may close without close_notify
                d = b""
            if not d:
                break
            rest += d
        body_len, left = len(rest), b""
    if status != 200:
        raise ValueError("HTTP status %d" % status)
    return len(head) + 4 + body_len, keep, left


def probe_request(port, path):
    """One request with the workload's exact request bytes: (request length, response length)."""
    req = request_bytes(port, path)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        with client_context().wrap_socket(s) as c:
            c.sendall(req)
            n, _, _ = read_response(c, b"")
    return len(req), n


# ---------------------------------------------------------------------------------------------
# Client (request loop)


WRK_LUA = """\
done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors":%d}\\n',
        summary.requests, summary.duration, summary.bytes,
        e.connect + e.read + e.write + e.status + e.timeout))
end
"""


class Client:
    def __init__(self, kind, exe, workdir, ncpu, connections):
        self.kind = kind
        self.exe = exe
        self.workdir = workdir
        self.ncpu = ncpu
        self.connections = connections
        self.lua = os.path.join(workdir, "done.lua")
        with open(self.lua, "w") as f:
            f.write(WRK_LUA)

    def run(self, server, seconds):
        """Runs the loop; returns dict(requests, bytes, seconds, errors, cpu, pids)."""
        url = "https://127.0.0.1:%d%s" % (server.port, server.path)
        if self.kind == "wrk":
            argv = cpu_args(1, self.ncpu) + [
                self.exe,
                "-t1",
                "-c%d" % self.connections,
                "-d%ds" % seconds,
                "--timeout",
                "10s",
                "-s",
                self.lua,
                url,
            ]
            procs = [spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)]
        else:
            argv = cpu_args(1, self.ncpu) + [
                sys.executable,
                os.path.abspath(__file__),
                "--client-worker",
                "%d:%s:%g" % (server.port, server.path, seconds),
            ]
            procs = [
                spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                for _ in range(self.connections)
            ]
        res = {
            "requests": 0,
            "bytes": 0,
            "errors": 0,
            "seconds": 0.0,
            "cpu": 0.0,
            "pids": [p.pid for p in procs],
        }
        for p in procs:
            out = p.stdout.read().decode(errors="replace")
            try:
                rc, cpu = wait_rusage(p, seconds + 60)
            except subprocess.TimeoutExpired:
                end_process(p)
                raise BenchError("the client did not end")
            m = re.search(r"(?:WRKJSON|CLIENTJSON) (\{.*\})", out)
            if rc != 0 or not m:
                raise BenchError("client exited %d: %s" % (rc, out[-800:]))
            r = json.loads(m.group(1))
            res["requests"] += r["requests"]
            res["bytes"] += r["bytes"]
            res["errors"] += r["errors"]
            res["seconds"] = max(res["seconds"], r["duration_us"] / 1e6)
            res["cpu"] += cpu
        if res["requests"] == 0:
            raise BenchError("the client completed no request: %s" % out[-800:])
        res["req_per_s"] = res["requests"] / res["seconds"]
        return res


def client_worker(spec):
    """The fallback request loop: one keep-alive connection (reconnecting when the server
    closes), through Python's ssl module, which links the system libssl."""
    port, path, seconds = spec.split(":")
    port, seconds = int(port), float(seconds)
    ctx = client_context()
    req = request_bytes(port, path)
    n = nbytes = errors = 0
    conn, buf = None, b""
    start = time.monotonic()
    end = start + seconds
    while time.monotonic() < end:
        try:
            if conn is None:
                conn = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10))
                buf = b""
            conn.sendall(req)
            got, keep, buf = read_response(conn, buf)
            n += 1
            nbytes += got
            if not keep:
                conn.close()
                conn = None
        except (OSError, ValueError):
            errors += 1
            if conn is not None:
                conn.close()
            conn = None
            if errors > 100:
                break
    dur = time.monotonic() - start
    print(
        "CLIENTJSON "
        + json.dumps(
            {"requests": n, "bytes": nbytes, "errors": errors, "duration_us": int(dur * 1e6)}
        ),
        flush=True,
    )
    return 0


# ---------------------------------------------------------------------------------------------
# Tracers


class Tracer:
    """A tracer for one run; start() returns once its probes are attached."""

    def __init__(self, config, opts, workdir, tag, server, idle_pid):
        self.config = config
        self.opts = opts
        self.workdir = workdir
        self.tag = tag
        self.server = server
        self.idle_pid = idle_pid
        self.proc = None
        self.log = os.path.join(workdir, "%s.log" % tag)
        self.output = os.path.join(workdir, "%s.jsonl" % tag)
        self.ready_s = None

    def start(self):
        logf = open(self.log, "wb")
        if self.config.startswith("tlssniff"):
            base, _, _ = self.config.partition("+")
            binary, extra = self.opts.variants.get(self.config, (self.opts.loaderd, []))
            argv = [
                binary,
                "--json",
                "--output",
                self.output,
                "--log-target",
                "stderr",
            ] + self.opts.loaderd_arg + extra
            if base.startswith("tlssniff-excluded-comm"):
                argv += ["--comm", "no-such-comm"]
            elif base.startswith("tlssniff-excluded"):
                argv += ["--pid", str(self.idle_pid)]
            if base.endswith("-fallback"):
                argv += ["--placement", "fallback"]
            pattern = "Ready:"
        else:
            lib = libssl_of(self.server.pids())
            probes = ", ".join(
                "%s:%s:%s" % (kind, lib, fn)
                for kind in ("uprobe", "uretprobe")
                for fn in ("SSL_read", "SSL_write")
            )
            if self.config == "bpftrace-empty-placed":
                probes = ", ".join(
                    "%s:%s:0x%x" % (kind, lib, addr) for kind, addr in placed_probes(self.opts, lib)
                )
            elif self.config.startswith("bpftrace-empty-placed+"):
                probes = ", ".join(
                    "%s:%s:0x%x" % (kind, lib, addr) for kind, addr in self.opts.places[self.config]
                )
            prog = 'BEGIN { printf("BENCH-READY\\n"); } ' + probes + " { }"
            if self.config == "bpftrace-sniffer":
                prog = (
                    'BEGIN { printf("BENCH-READY\\n"); } '
                    "uprobe:%(l)s:SSL_write { printf(\"%%d W %%r\\n\", pid, buf(arg1, arg2)); } "
                    "uprobe:%(l)s:SSL_read { @b[tid] = arg1; } "
                    "uretprobe:%(l)s:SSL_read /@b[tid] && (int32)retval > 0/ "
                    "{ printf(\"%%d R %%r\\n\", pid, buf(@b[tid], (int32)retval)); "
                    "delete(@b[tid]); }" % {"l": lib}
                )
            # Addresses in a stripped library: bpftrace cannot check the instruction boundary
            # itself (the analyzer placed them on boundaries it disassembled).
            unsafe = ["--unsafe"] if self.config.startswith("bpftrace-empty-placed") else []
            argv = [self.opts.bpftrace] + unsafe + ["-e", prog]
            pattern = "BENCH-READY"
        t0 = time.monotonic()
        env = dict(os.environ, BPFTRACE_STRLEN="200") if self.config == "bpftrace-sniffer" else None
        self.proc = spawn(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env)
        logf.close()
        deadline = t0 + self.opts.ready_timeout
        while time.monotonic() < deadline:
            with open(self.log, errors="replace") as f:
                text = f.read()
            if pattern in text:
                self.ready_s = time.monotonic() - t0
                m = re.search(r"Ready:[^\n]*", text)
                self.ready_line = m.group(0) if m else pattern
                self.attach_lines = [ln for ln in text.splitlines() if "ttached" in ln]
                time.sleep(0.3)
                return
            if self.proc.poll() is not None:
                raise BenchError(
                    "%s exited %s before it was ready:\n%s"
                    % (self.config, self.proc.returncode, text[-2000:])
                )
            time.sleep(0.05)
        end_process(self.proc)
        raise BenchError(
            "%s was not ready after %gs:\n%s" % (self.config, self.opts.ready_timeout, text[-2000:])
        )

    def cpu(self):
        return tree_cpu(self.proc.pid)

    def cpu_by_comm(self):
        return tree_cpu_by_comm(self.proc.pid)

    def drain(self, limit=120.0, quiet=1.0):
        """Waits until the output file stops growing (the analyzer caught up)."""
        if not self.config.startswith("tlssniff"):
            return 0.0
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
            time.sleep(0.1)
        return time.monotonic() - t0

    def stop(self):
        """SIGINT, wait; returns the tracer's total CPU seconds (its reaped tree)."""
        try:
            os.kill(self.proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        try:
            rc, cpu = wait_rusage(self.proc, 60)
        except subprocess.TimeoutExpired:
            end_process(self.proc, signal.SIGTERM, 10)
            raise BenchError("%s did not stop within 60s of SIGINT" % self.config)
        if rc not in (0, -signal.SIGINT):
            with open(self.log, errors="replace") as f:
                raise BenchError("%s exited %d:\n%s" % (self.config, rc, f.read()[-2000:]))
        return cpu


def placed_probes(opts, lib):
    """The (bpftrace probe kind, virtual address) of every probe tlssniff's optimized
    placement puts in lib, from `tlssniff-analyzer --analyze` (file offsets, converted with
    the library's program headers)."""
    analyzer = os.environ.get("TLSSNIFF_ANALYZER") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(opts.loaderd))),
        "analyzer",
        "tlssniff-analyzer",
    )
    out = subprocess.run(
        [analyzer, "--analyze", lib], capture_output=True, text=True, check=False
    ).stdout
    loads = elf_loads(lib)
    probes = []
    for m in re.finditer(r"^probe: func=\d+ kind=(\w+) offset=0x([0-9a-f]+)", out, re.M):
        if m.group(1) == "forget":
            # SSL_free/SSL_clear: once per TLS object, never during a keep-alive run (and
            # bpftrace refuses a probe inside an exported function it cannot disassemble).
            continue
        kind = "uretprobe" if m.group(1) == "uretprobe" else "uprobe"
        off = int(m.group(2), 16)
        vaddr = next((v + off - o for o, v, n in loads if o <= off < o + n), None)
        if vaddr is None:
            raise BenchError("probe offset 0x%x is in no segment of %s" % (off, lib))
        if (kind, vaddr) not in probes:
            probes.append((kind, vaddr))
    if not probes:
        raise BenchError("tlssniff-analyzer --analyze %s planned no probes:\n%s" % (lib, out))
    return probes


def elf_loads(path):
    """(file offset, virtual address, file size) of each PT_LOAD of a 64-bit ELF file."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:5] != b"\x7fELF\x02":
            raise BenchError("%s is not a 64-bit ELF file" % path)
        phoff, = struct.unpack_from("<Q", head, 32)
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    loads = []
    for i in range(phnum):
        ptype, _, off, vaddr, _, filesz = struct.unpack_from("<IIQQQQ", table, i * phentsize)
        if ptype == 1:
            loads.append((off, vaddr, filesz))
    return loads


def libssl_of(pids):
    for pid in pids:
        try:
            with open("/proc/%d/maps" % pid) as f:
                for line in f:
                    path = line.split()[-1]
                    if "/libssl.so" in path:
                        return path
        except OSError:
            pass
    raise BenchError("the server maps no libssl")


# ---------------------------------------------------------------------------------------------
# Checking the capture


def analyse_capture(path, server_pids, client_pids):
    """Sums captured bytes per side and direction, finds holes in the streams and returns
    the final stats object."""
    sides = {}
    streams = {}
    records = other = 0
    stats = None
    bad = 0
    with open(path, "rb") as f:
        for line in f:
            try:
                o = json.loads(line)
            except ValueError:
                bad += 1
                continue
            t = o.get("type")
            if t == "stats":
                stats = o
                continue
            if t != "data":
                continue
            records += 1
            pid = o["pid"]
            side = "server" if pid in server_pids else "client" if pid in client_pids else None
            if side is None:
                other += o["length"]
                continue
            key = side + "_" + o["direction"]
            d = sides.setdefault(key, {"bytes": 0, "messages": 0, "truncated": 0, "call_bytes": 0})
            d["bytes"] += o["length"]
            d["messages"] += 1
            d["truncated"] += o.get("truncated", 0)
            streams.setdefault((pid, o["conn_id"], o["direction"]), []).append(
                (o["offset"], o["length"])
            )
    holes = hole_bytes = overlaps = 0
    for segs in streams.values():
        segs.sort()
        pos = segs[0][0]
        if pos != 0:
            holes += 1
            hole_bytes += pos
        for off, n in segs:
            if off > pos:
                holes += 1
                hole_bytes += off - pos
            elif off < pos:
                overlaps += 1
            pos = max(pos, off + n)
    return {
        "records": records,
        "sides": sides,
        "streams": len(streams),
        "holes": holes,
        "hole_bytes": hole_bytes,
        "overlaps": overlaps,
        "other_process_bytes": other,
        "unparsable_lines": bad,
        "stats": stats,
    }


def expected_ranges(client_res, server, connections):
    """Bytes each side/direction should have moved, as [low, high]: wrk stops with up to one
    request per connection in flight (written, its response not (fully) read)."""
    req, resp = server.req_len, server.resp_len
    n, nbytes = client_res["requests"], client_res["bytes"]
    c = connections
    return {
        "client_write": [n * req, (n + c) * req],
        "server_read": [n * req, (n + c) * req],
        "client_read": [nbytes, nbytes],
        "server_write": [nbytes, nbytes + c * resp],
    }


# Counters of the stats object (docs/output.md) that count something lost or refused. Counters
# of calls that moved no bytes (SSL_read returning -1 for EAGAIN) or were filtered out on
# purpose are not losses.
# kernel_calls_without_socket is not among them: such a call is captured, and the analyzer binds
# it to its connection once the socket is known (analyzer_late_socket_messages); a message that
# never got one is counted in analyzer_socketless_messages, which is.
LOSS_RE = re.compile(
    r"drop|lost|loss|trunc|unmatched|socketless|refused|_bad|fail|split|errors$"
)
NOT_LOSS_RE = re.compile(r"error_or_empty|filtered")


def nonzero_losses(stats):
    """Loss counters in the stats object that are not zero."""
    out = {}
    for k, v in (stats or {}).items():
        if isinstance(v, (int, float)) and v and LOSS_RE.search(k) and not NOT_LOSS_RE.search(k):
            out[k] = v
    return out


# ---------------------------------------------------------------------------------------------
# The benchmark


BPF_STATS_SYSCTL = "/proc/sys/kernel/bpf_stats_enabled"


def bpf_stats_set(want):
    """Sets the kernel's BPF run-time statistics to want ("0" or "1"; on, they cost every
    program run two clock reads); returns the value to put back with bpf_stats_restore, or None
    when nothing changed."""
    try:
        with open(BPF_STATS_SYSCTL) as f:
            was = f.read().strip()
        if was == want:
            return None
        with open(BPF_STATS_SYSCTL, "w") as f:
            f.write(want)
    except OSError:
        return None
    return was


def bpf_stats_restore(was):
    if was is not None:
        with open(BPF_STATS_SYSCTL, "w") as f:
            f.write(was)


def bpf_prog_ids(pid):
    """Ids of the BPF programs pid holds through its fds (prog_id in their fdinfo)."""
    ids = set()
    try:
        for fd in os.listdir("/proc/%d/fdinfo" % pid):
            try:
                with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                    for line in f:
                        if line.startswith("prog_id:"):
                            ids.add(int(line.split()[1]))
            except OSError:
                pass
    except OSError:
        pass
    return ids


def bpf_run_stats(ids):
    """{id: (name, run_cnt, run_time_ns)} of the programs ids, from bpftool."""
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True)
    stats = {}
    for p in json.loads(out.stdout or "[]"):
        if p.get("id") in ids:
            stats[p["id"]] = (p.get("name", "?"), p.get("run_cnt", 0), p.get("run_time_ns", 0))
    return stats


def bpf_run_delta(before, after, requests):
    """Per program name: runs per request and ns per run over a run; and ns per request."""
    progs, total = {}, 0
    for pid_, (name, cnt1, ns1) in after.items():
        _, cnt0, ns0 = before.get(pid_, (name, 0, 0))
        runs, ns = cnt1 - cnt0, ns1 - ns0
        if runs <= 0:
            continue
        total += ns
        p = progs.setdefault(name, [0, 0])
        p[0] += runs
        p[1] += ns
    return {
        "bpf_ns_per_req": total / requests if requests else 0.0,
        "bpf_by_prog": {
            k: {"runs_per_req": round(r / requests, 3), "ns_per_run": round(ns / r)}
            for k, (r, ns) in progs.items()
        },
    }


def one_run(config, rnd, opts, workdir, server, client, idle_pid):
    tag = "r%d-%s" % (rnd, config)
    progress("round %d: %s" % (rnd, config))
    tracer = None
    if config != "untraced":
        tracer = Tracer(config, opts, workdir, tag, server, idle_pid)
        tracer.start()
    try:
        srv_pids = server.pids()
        srv_cpu0 = pids_cpu(srv_pids)
        tr_cpu0 = tracer.cpu() if tracer else 0.0
        if tracer:
            tracer.cpu_start_by_comm = tracer.cpu_by_comm()
        mine = set(process_tree(tracer.proc.pid)) if tracer else set()
        foreign = [
            p for p in running_comms("tlssniff-loader") + running_comms("bpftrace") if p not in mine
        ]
        bpf_ids = bpf_prog_ids(tracer.proc.pid) if opts.bpf_stats and config.startswith("tlssniff") else set()
        bpf0 = bpf_run_stats(bpf_ids) if bpf_ids else {}
        busy0, steal0 = machine_cpu()
        res = client.run(server, opts.seconds)
        busy1, steal1 = machine_cpu()
        bpf1 = bpf_run_stats(bpf_ids) if bpf_ids else {}
        srv_cpu1 = pids_cpu(srv_pids)
        tr_mid = tracer.cpu() if tracer else 0.0
        # CPU the machine spent on anything but this run's processes: a sign of noise.
        ours = (srv_cpu1 - srv_cpu0) + res["cpu"] + (tr_mid - tr_cpu0)
        span = res["seconds"] * len(os.sched_getaffinity(0))
        run = {
            "config": config,
            "round": rnd,
            "req_per_s": res["req_per_s"],
            "requests": res["requests"],
            "bytes_read": res["bytes"],
            "errors": res["errors"],
            "seconds": res["seconds"],
            "server_cpu_us_per_req": (srv_cpu1 - srv_cpu0) / res["requests"] * 1e6,
            "client_cpu_us_per_req": res["cpu"] / res["requests"] * 1e6,
            "other_cpu_pct": round(max(0.0, busy1 - busy0 - ours) / span * 100, 1),
            "steal_pct": round((steal1 - steal0) / span * 100, 1),
            "other_tracers": foreign,
        }
        if bpf_ids:
            run.update(bpf_run_delta(bpf0, bpf1, res["requests"]))
        if tracer:
            run["ready_s"] = round(tracer.ready_s, 3)
            if config.startswith("tlssniff"):
                run["probes"] = tracer.attach_lines
            run["drain_s"] = round(tracer.drain(), 3)
            by_comm1 = tracer.cpu_by_comm()
            tr_cpu1 = sum(by_comm1.values())
            run["tracer_cpu_s"] = tr_cpu1 - tr_cpu0
            run["tracer_drain_cpu_s"] = tr_cpu1 - tr_mid
            run["tracer_cpu_by_comm_s"] = {
                k: round(v - tracer.cpu_start_by_comm.get(k, 0.0), 3) for k, v in by_comm1.items()
            }
            run["tracer_cpu_us_per_req"] = run["tracer_cpu_s"] / res["requests"] * 1e6
            run["tracer_total_cpu_s"] = tracer.stop()
            tracer_proc, tracer = tracer, None
            if config.startswith("tlssniff"):
                run["output_file_bytes"] = os.stat(tracer_proc.output).st_size
                cap = analyse_capture(tracer_proc.output, set(srv_pids), set(res["pids"]))
                run["capture"] = cap
                run["expected"] = expected_ranges(res, server, opts.connections)
                if not opts.keep:
                    os.unlink(tracer_proc.output)
        progress("  %.0f req/s%s" % (run["req_per_s"], capture_summary(run)))
        return run
    finally:
        if tracer:
            end_process(tracer.proc, signal.SIGINT, 30)


def capture_summary(run):
    if "capture" not in run:
        return ""
    cap, exp = run["capture"], run["expected"]
    if run["config"].startswith("tlssniff-excluded"):
        workload = sum(v["messages"] for v in cap["sides"].values())
        return ", %d workload messages captured (0 expected), %s calls filtered in the kernel" % (
            workload,
            (cap["stats"] or {}).get("kernel_calls_filtered", "?"),
        )
    got = sum(cap["sides"].get(k, {}).get("bytes", 0) for k in exp)
    lo = sum(v[0] for v in exp.values())
    return ", captured %d of >= %d expected bytes (%.5f), %d holes, drain %.1fs" % (
        got,
        lo,
        got / lo if lo else 0,
        cap["holes"],
        run["drain_s"],
    )


def verdict_for(run):
    """Per side/direction: captured vs expected range, and what is wrong if anything: problems
    with the bytes themselves first, then loss counters (which may be set with all bytes there)."""
    cap, exp = run["capture"], run["expected"]
    out = {}
    problems, counted = [], []
    for k, (lo, hi) in exp.items():
        got = cap["sides"].get(k, {}).get("bytes", 0)
        out[k] = {"captured": got, "expected_min": lo, "expected_max": hi}
        if got < lo:
            problems.append("%s: %d bytes missing (captured %d of %d)" % (k, lo - got, got, lo))
        elif got > hi:
            problems.append("%s: %d bytes more than expected (%d > %d)" % (k, got - hi, got, hi))
    if cap["holes"]:
        problems.append("%d holes (%d bytes) in stream offsets" % (cap["holes"], cap["hole_bytes"]))
    if cap["overlaps"]:
        problems.append("%d overlapping messages" % cap["overlaps"])
    if cap["unparsable_lines"]:
        problems.append("%d unparsable lines" % cap["unparsable_lines"])
    if cap["stats"] is None:
        counted.append("no final stats object in the output")
    losses = nonzero_losses(cap["stats"])
    if losses:
        counted.append("loss counters: " + json.dumps(losses, sort_keys=True))
    return out, problems, counted


def med(xs):
    return statistics.median(xs) if xs else None


def summarise(runs, configs):
    by = {c: [r for r in runs if r["config"] == c] for c in configs}
    base = {r["round"]: r["req_per_s"] for r in by.get("untraced", [])}
    base_steal = {r["round"]: r.get("steal_pct") or 0 for r in by.get("untraced", [])}
    base_med = med(list(base.values()))
    summary = {}
    for c in configs:
        rs = by[c]
        if not rs:
            continue
        rps = [r["req_per_s"] for r in rs]
        s = {
            "rounds": [r["round"] for r in rs],
            "req_per_s": [round(x, 1) for x in rps],
            "median_req_per_s": round(med(rps), 1),
            "min_req_per_s": round(min(rps), 1),
            "max_req_per_s": round(max(rps), 1),
            "server_cpu_us_per_req": round(med([r["server_cpu_us_per_req"] for r in rs]), 2),
            # The fraction of its CPU the server used: near 1 when the server is the bottleneck.
            "server_cpu_busy": round(
                med([r["server_cpu_us_per_req"] * r["req_per_s"] / 1e6 for r in rs]), 3
            ),
            "client_cpu_us_per_req": round(med([r["client_cpu_us_per_req"] for r in rs]), 2),
            "other_cpu_pct": [r["other_cpu_pct"] for r in rs],
            "steal_pct": [r["steal_pct"] for r in rs],
            "runs_with_other_tracers": [r["round"] for r in rs if r["other_tracers"]],
        }
        if base_med:
            s["ratio"] = round(med(rps) / base_med, 4)
            paired = [r["req_per_s"] / base[r["round"]] for r in rs if r["round"] in base]
            s["paired_ratios"] = [round(x, 4) for x in paired]
            s["paired_ratio_median"] = round(med(paired), 4) if paired else None
            # Steal (another guest using this host's CPUs) moves req/s by more than the
            # differences measured here: the pairs where neither run had much of it.
            clean = [
                r["req_per_s"] / base[r["round"]]
                for r in rs
                if r["round"] in base
                and (r.get("steal_pct") or 0) < CLEAN_STEAL_PCT
                and base_steal[r["round"]] < CLEAN_STEAL_PCT
            ]
            s["clean_paired_ratios"] = [round(x, 4) for x in clean]
            s["clean_paired_ratio_median"] = round(med(clean), 4) if clean else None
        if c != "untraced":
            s["tracer_cpu_us_per_req"] = round(med([r["tracer_cpu_us_per_req"] for r in rs]), 2)
            s["tracer_cpu_s_per_run"] = round(med([r["tracer_cpu_s"] for r in rs]), 3)
            s["ready_s"] = round(med([r["ready_s"] for r in rs]), 3)
            comms = sorted({k for r in rs for k in r["tracer_cpu_by_comm_s"]})
            s["tracer_cpu_us_per_req_by_comm"] = {
                k: round(
                    med([r["tracer_cpu_by_comm_s"].get(k, 0.0) / r["requests"] * 1e6 for r in rs]),
                    2,
                )
                for k in comms
            }
        if any("bpf_ns_per_req" in r for r in rs):
            with_stats = [r for r in rs if "bpf_ns_per_req" in r]
            s["bpf_ns_per_req"] = round(med([r["bpf_ns_per_req"] for r in with_stats]))
            names = sorted({k for r in with_stats for k in r["bpf_by_prog"]})
            s["bpf_by_prog"] = {
                k: {
                    f: med([r["bpf_by_prog"][k][f] for r in with_stats if k in r["bpf_by_prog"]])
                    for f in ("runs_per_req", "ns_per_run")
                }
                for k in names
            }
        if c.startswith("tlssniff"):
            s["drain_s"] = round(med([r["drain_s"] for r in rs]), 3)
            s["records"] = [r["capture"]["records"] for r in rs]
        if c.startswith("tlssniff-all"):
            per_round, problems, counters = [], [], []
            for r in rs:
                sides, probs, counted = verdict_for(r)
                got = sum(v["captured"] for v in sides.values())
                lo = sum(v["expected_min"] for v in sides.values())
                hi = sum(v["expected_max"] for v in sides.values())
                per_round.append(
                    {
                        "round": r["round"],
                        "requests": r["requests"],
                        "captured_bytes": got,
                        "expected_min": lo,
                        "expected_max": hi,
                        "captured_ratio": round(got / lo, 5) if lo else None,
                        "records": r["capture"]["records"],
                        "holes": r["capture"]["holes"],
                        "hole_bytes": r["capture"]["hole_bytes"],
                        "output_file_bytes": r["output_file_bytes"],
                        "drain_s": r["drain_s"],
                        "by_direction": sides,
                        "other_process_bytes": r["capture"]["other_process_bytes"],
                        "stats": r["capture"]["stats"],
                        "problems": probs + counted,
                    }
                )
                problems += ["round %d: %s" % (r["round"], p) for p in probs]
                counters += ["round %d: %s" % (r["round"], p) for p in counted]
            s["capture"] = per_round
            s["bytes_complete"] = not problems
            s["capture_problems"] = problems
            s["no_loss_counted"] = not counters
            s["loss_counter_problems"] = counters
            s["capture_complete"] = not problems and not counters
        if c.startswith("tlssniff-excluded"):
            s["excluded_records_of_workload"] = sum(
                sum(v["messages"] for v in r["capture"]["sides"].values()) for r in rs
            )
            s["kernel_calls_filtered"] = [
                (r["capture"]["stats"] or {}).get("kernel_calls_filtered") for r in rs
            ]
        if c.startswith("tlssniff"):
            s["probes"] = rs[0].get("probes", [])
        summary[c] = s
    return summary


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def print_table(meta, summary, configs):
    print(
        "tlssniff throughput benchmark: %s server, %s client, %d rounds x %gs, "
        "%d connections, %d B file"
        % (
            meta["server"],
            meta["client"],
            meta["rounds"],
            meta["seconds"],
            meta["connections"],
            FILE_SIZE,
        )
    )
    if meta.get("notes"):
        for n in meta["notes"]:
            print("note: " + n)
    print()
    hdr = "%-24s %11s %7s %8s %10s %19s %10s %10s %10s %7s" % (
        "config",
        "median r/s",
        "ratio",
        "paired",
        "clean(n)",
        "min..max r/s",
        "srv us/rq",
        "cli us/rq",
        "trc us/rq",
        "other%",
    )
    print(hdr)
    print("-" * len(hdr))
    for c in configs:
        s = summary.get(c)
        if not s:
            continue
        print(
            "%-24s %11.0f %7s %8s %10s %19s %10.1f %10.1f %10s %7.1f"
            % (
                c,
                s["median_req_per_s"],
                fmt(s.get("ratio"), ".3f"),
                fmt(s.get("paired_ratio_median"), ".3f"),
                "%s(%d)"
                % (
                    fmt(s.get("clean_paired_ratio_median"), ".3f"),
                    len(s.get("clean_paired_ratios", [])),
                ),
                "%.0f..%.0f" % (s["min_req_per_s"], s["max_req_per_s"]),
                s["server_cpu_us_per_req"],
                s["client_cpu_us_per_req"],
                fmt(s.get("tracer_cpu_us_per_req"), ".1f"),
                max(s["other_cpu_pct"]),
            )
        )
    print()
    rounds = sorted({r for c in configs if c in summary for r in summary[c]["rounds"]})
    if rounds:
        shown = [c for c in configs if c in summary]
        print("req/s per round (other% of the run in brackets):")
        print("%5s" % "round" + "".join(" %20s" % c for c in shown))
        for rnd in rounds:
            cells = []
            for c in shown:
                s = summary[c]
                if rnd in s["rounds"]:
                    i = s["rounds"].index(rnd)
                    cells.append(
                        " %20s" % ("%.0f [%.0f%%]" % (s["req_per_s"][i], s["other_cpu_pct"][i]))
                    )
                else:
                    cells.append(" %20s" % "-")
            print("%5d" % rnd + "".join(cells))
    print()
    print(
        "ratio: median req/s over the untraced median; paired: median of per-round "
        "ratios to that round's untraced run; clean(n): the same over the n rounds where "
        "neither run had %d %% steal or more." % CLEAN_STEAL_PCT
    )
    print(
        "srv/cli us/rq: CPU microseconds per request of the server and the client "
        "(probe traps count there);"
    )
    print(
        "trc us/rq: CPU microseconds per request of the tracer (loaderd + analyzer, or "
        "bpftrace), load window plus drain."
    )
    print(
        "other%: the highest share, over the runs, of all CPUs spent on other processes during "
        "a run (noise)."
    )
    traced = sorted({c for c in configs if c in summary and summary[c]["runs_with_other_tracers"]})
    if traced:
        print(
            "WARNING: another tlssniff-loaderd or bpftrace ran during some runs of %s: those "
            "figures are not what they claim." % ", ".join(traced)
        )
    noisy = sorted({c for c in configs if c in summary and max(summary[c]["other_cpu_pct"]) > 10})
    if noisy:
        print(
            "WARNING: the machine was busy with other work during some runs (%s); the figures "
            "are noisy, prefer the paired ratios or run again." % ", ".join(noisy)
        )
    for c in configs:
        s = summary.get(c)
        if s and s.get("tracer_cpu_us_per_req_by_comm"):
            print(
                "%s tracer CPU us/request by process: %s"
                % (
                    c,
                    ", ".join(
                        "%s %.1f" % kv for kv in sorted(s["tracer_cpu_us_per_req_by_comm"].items())
                    ),
                )
            )
    for c in configs:
        s = summary.get(c)
        if s and "bpf_ns_per_req" in s:
            print(
                "%s BPF programs: %d ns/request (%s)"
                % (
                    c,
                    s["bpf_ns_per_req"],
                    ", ".join(
                        "%s %.2f runs x %d ns" % (k, v["runs_per_req"], v["ns_per_run"])
                        for k, v in sorted(s["bpf_by_prog"].items())
                        if v["runs_per_req"] >= 0.01
                    ),
                )
            )
    for c in [c for c in configs if c.startswith("tlssniff-all")]:
        print_capture_check(c, summary.get(c))
    for c in [c for c in configs if c.startswith("tlssniff-excluded")]:
        s = summary.get(c)
        if s:
            print()
            print(
                "%s: %d records of the workload captured (0 expected); calls filtered "
                "in the kernel per round: %s"
                % (c, s["excluded_records_of_workload"], s["kernel_calls_filtered"])
            )
    for c in configs:
        s = summary.get(c)
        if s and s.get("probes"):
            print("%s probes: %s" % (c, " | ".join(s["probes"])))


def print_capture_check(c, s):
    if s and "capture" in s:
        print()
        print("capture check (%s):" % c)
        print(
            "%5s %9s %14s %14s %9s %9s %6s %12s %8s"
            % (
                "round",
                "requests",
                "expected B",
                "captured B",
                "ratio",
                "records",
                "holes",
                "file B",
                "drain s",
            )
        )
        for pr in s["capture"]:
            print(
                "%5d %9d %14d %14d %9.5f %9d %6d %12d %8.1f"
                % (
                    pr["round"],
                    pr["requests"],
                    pr["expected_min"],
                    pr["captured_bytes"],
                    pr["captured_ratio"] or 0,
                    pr["records"],
                    pr["holes"],
                    pr["output_file_bytes"],
                    pr["drain_s"],
                )
            )
        last = s["capture"][-1]
        print(
            "by direction (last round): "
            + ", ".join(
                "%s %d/%d" % (k, v["captured"], v["expected_min"])
                for k, v in sorted(last["by_direction"].items())
            )
        )
        print(
            "every byte captured (none missing, no holes): %s"
            % ("yes" if s["bytes_complete"] else "NO")
        )
        for p in s["capture_problems"]:
            print("  - " + p)
        print(
            "no loss counted in tlssniff's final stats: %s"
            % ("yes" if s["no_loss_counted"] else "NO")
        )
        for p in s["loss_counter_problems"]:
            print("  - " + p)


def parse_args(argv):
    ap = argparse.ArgumentParser(description="tlssniff throughput benchmark (run as root)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    ap.add_argument("--seconds", type=int, default=5, help="seconds per run (default 5)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 rounds x 2 s")
    ap.add_argument(
        "--connections", type=int, default=32, help="client connections (default 32)"
    )
    ap.add_argument(
        "--configs",
        default=",".join(DEFAULT_CONFIGS),
        help="comma-separated, from: %s (default: %s)"
        % (", ".join(ALL_CONFIGS), ",".join(DEFAULT_CONFIGS)),
    )
    ap.add_argument("--server", choices=["auto", "nginx", "s_server"], default="auto")
    ap.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    ap.add_argument(
        "--loaderd",
        default=os.environ.get("TLSSNIFF_LOADERD", DEFAULT_LOADERD),
        help="tlssniff-loaderd binary (env TLSSNIFF_LOADERD)",
    )
    ap.add_argument(
        "--loaderd-arg",
        action="append",
        default=[],
        help="extra argument for tlssniff-loaderd (repeatable)",
    )
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="CONFIG+NAME=ARGS",
        help="also run CONFIG (a tlssniff configuration) with ARGS (whitespace-separated; "
        "loaderd=PATH for another binary) added, as configuration CONFIG+NAME (repeatable)",
    )
    ap.add_argument(
        "--places",
        dest="places_list",
        action="append",
        default=[],
        metavar="NAME=KIND:ADDR,...",
        help="also run empty bpftrace probes at these places of the server's libssl (KIND uprobe "
        "or uretprobe, ADDR a virtual address), as configuration bpftrace-empty-placed+NAME: "
        "what a placement would cost before it is built (repeatable)",
    )
    ap.add_argument(
        "--bpf-stats",
        action="store_true",
        help="turn on kernel.bpf_stats_enabled and report the run time of tlssniff's BPF "
        "programs per request",
    )
    ap.add_argument("--ready-timeout", type=float, default=60.0)
    ap.add_argument("--workdir", help="where temporary files go (default: a new temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the work dir and captures")
    ap.add_argument("--client-worker", help=argparse.SUPPRESS)
    o = ap.parse_args(argv)
    if o.quick:
        o.rounds, o.seconds = 2, 2
    o.configs = [c.strip() for c in o.configs.split(",") if c.strip()]
    for c in o.configs:
        if c not in ALL_CONFIGS:
            ap.error("unknown config '%s'" % c)
    o.variants = {}
    for v in o.variant:
        name, eq, args = v.partition("=")
        base, plus, tag = name.partition("+")
        if not eq or not plus or not tag or not base.startswith("tlssniff") or base not in ALL_CONFIGS:
            ap.error("--variant '%s': expected CONFIG+NAME=ARGS with a tlssniff configuration" % v)
        if name in o.variants:
            ap.error("--variant '%s' given twice" % name)
        binary, extra = o.loaderd, []
        for tok in args.split():
            if tok.startswith("loaderd="):
                binary = tok[len("loaderd="):]
                if not os.access(binary, os.X_OK):
                    ap.error("--variant '%s': %s is not executable" % (name, binary))
            else:
                extra.append(tok)
        o.variants[name] = (binary, extra)
        o.configs.append(name)
    o.places = {}
    for v in o.places_list:
        name, eq, spec = v.partition("=")
        probes = []
        for item in spec.split(","):
            kind, colon, addr = item.strip().partition(":")
            try:
                probes.append((kind, int(addr, 0)))
            except ValueError:
                probes = None
                break
            if kind not in ("uprobe", "uretprobe") or not colon:
                probes = None
                break
        if not eq or not name or not probes:
            ap.error("--places '%s': expected NAME=KIND:ADDR,... (KIND uprobe or uretprobe)" % v)
        config = "bpftrace-empty-placed+" + name
        if config in o.places:
            ap.error("--places '%s' given twice" % name)
        o.places[config] = probes
        o.configs.append(config)
    if "untraced" not in o.configs:
        o.configs.insert(0, "untraced")
    if o.rounds < 1 or o.seconds < 1 or o.connections < 1:
        ap.error("--rounds, --seconds and --connections must be positive")
    return o


def main(argv):
    opts = parse_args(argv)
    if opts.client_worker:
        return client_worker(opts.client_worker)
    if os.geteuid() != 0:
        msg = "needs root (BPF, and apt-get for nginx/wrk)"
        if ci():
            print("FAIL: " + msg)
            return 1
        print("SKIP: " + msg)
        return 77
    ncpu = len(os.sched_getaffinity(0))
    meta = {
        "rounds": opts.rounds,
        "seconds": opts.seconds,
        "connections": opts.connections,
        "configs": opts.configs,
        "cpus": ncpu,
        "notes": [],
        "kernel": os.uname().release,
    }
    if ncpu < 2:
        meta["notes"].append("fewer than 2 CPUs: server and client are not pinned apart")
    if any(c.startswith("tlssniff") for c in opts.configs) and not os.access(opts.loaderd, os.X_OK):
        print(
            "FAIL: tlssniff-loaderd not found at %s (build it, or set "
            "TLSSNIFF_LOADERD)" % opts.loaderd
        )
        return 1
    others = running_comms("tlssniff-loader")
    if others:
        meta["notes"].append(
            "another tlssniff-loaderd is running (pids %s): the untraced "
            "runs are not untraced" % others
        )
    if running_comms("bpftrace"):
        meta["notes"].append("a bpftrace is running: the untraced runs may be traced")

    for tool in ("openssl",):
        if not ensure_tool(tool, ["openssl"]):
            print("FAIL: openssl not available")
            return 1
    server_kind = None
    if opts.server in ("auto", "nginx"):
        exe = ensure_tool("nginx", ["nginx-light", "nginx"])
        if exe and links_system_libssl(exe):
            server_kind = "nginx"
        elif opts.server == "nginx":
            print("FAIL: nginx (linking the system libssl) not available")
            return 1
    if not server_kind:
        exe = shutil.which("openssl")
        server_kind = "s_server"
        meta["notes"].append(
            "nginx not used: server is openssl s_server -WWW (one "
            "connection at a time, a new handshake per request)"
        )
    client_kind = None
    if opts.client in ("auto", "wrk"):
        wexe = ensure_tool("wrk", ["wrk"])
        if wexe and links_system_libssl(wexe):
            client_kind = "wrk"
        elif opts.client == "wrk":
            print("FAIL: wrk (linking the system libssl) not available")
            return 1
    if not client_kind:
        wexe = sys.executable
        client_kind = "python"
        meta["notes"].append(
            "wrk not used: client is a Python ssl request loop, one " "process per connection"
        )
    if any(c.startswith("bpftrace") for c in opts.configs):
        opts.bpftrace = ensure_tool("bpftrace", ["bpftrace"])
        if not opts.bpftrace:
            for c in [c for c in opts.configs if c.startswith("bpftrace")]:
                meta["notes"].append("bpftrace unavailable: config %s skipped" % c)
                opts.configs.remove(c)
    meta["server"] = server_kind
    meta["client"] = client_kind
    meta["loaderd"] = opts.loaderd
    progress(
        "server %s, client %s, configs %s, %d rounds x %ds"
        % (server_kind, client_kind, ",".join(opts.configs), opts.rounds, opts.seconds)
    )

    # The statistics cost every BPF program run two clock reads (tens of ns each on a virtual
    # machine): on only when asked for, and off otherwise even if the machine had them on
    # (put back afterwards either way).
    if opts.bpf_stats and not shutil.which("bpftool"):
        print("FAIL: --bpf-stats needs bpftool")
        return 1
    stats_was = bpf_stats_set("1" if opts.bpf_stats else "0")
    if stats_was is not None and not opts.bpf_stats:
        meta["notes"].append(
            "kernel.bpf_stats_enabled was on: turned off for the run, put back after"
        )
    workdir = opts.workdir or tempfile.mkdtemp(prefix="tlssniff-bench-")
    os.makedirs(workdir, exist_ok=True)
    server = Server(server_kind, workdir, ncpu)
    server.exe = exe
    failed = None
    runs = []
    idle = None
    try:
        server.prepare()
        server.start()
        meta["request_bytes"] = server.req_len
        meta["response_bytes"] = server.resp_len
        meta["libssl"] = libssl_of(server.pids())
        progress(
            "server on 127.0.0.1:%d (request %d B, response %d B)"
            % (server.port, server.req_len, server.resp_len)
        )
        client = Client(client_kind, wexe, workdir, ncpu, opts.connections)
        # An idle process for --pid: unrelated to the workload, never does TLS.
        idle = spawn(["sleep", "1000000"], stdin=subprocess.DEVNULL)
        progress("warm-up")
        client.run(server, 1)
        for rnd in range(1, opts.rounds + 1):
            for config in opts.configs:
                runs.append(one_run(config, rnd, opts, workdir, server, client, idle.pid))
    except BenchError as e:
        failed = str(e)
    except KeyboardInterrupt:
        failed = "interrupted"
    finally:
        bpf_stats_restore(stats_was)
        server.stop()
        if idle:
            end_process(idle)
        cleanup_all()
        if not opts.keep and not opts.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        elif opts.keep:
            progress("work dir kept: %s" % workdir)

    summary = summarise(runs, opts.configs)
    busy = summary.get("untraced", {}).get("server_cpu_busy")
    if busy is not None and busy < 0.9:
        meta["notes"].append(
            "the untraced server used only %.0f%% of its CPU: it waited for the client, so "
            "the ratios understate what tracing costs; use more --connections" % (busy * 100)
        )
    print_table(meta, summary, opts.configs)
    result = {
        "benchmark": "throughput",
        "ok": failed is None,
        **meta,
        "summary": summary,
        "runs": [{k: v for k, v in r.items() if k not in ("capture", "expected")} for r in runs],
    }
    if failed:
        result["error"] = failed
        print()
        print("FAILED: " + failed)
    print(json.dumps(result, sort_keys=True))
    return 0 if failed is None else 1


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    finally:
        cleanup_all()
