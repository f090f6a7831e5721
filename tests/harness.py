# Shared helpers for tlssniff's integration tests: preconditions, peers, loaderd, capture parsing.
#
# A test script does:
#
#     import harness
#
#     def main(t):
#         cert, key = t.make_cert()
#         t.start_loaderd()
#         ... run real TLS peers with t.spawn(...) ...
#         cap = t.stop_loaderd()
#         cap.find_stream(pid, "write", expected_bytes, "client->server")
#
#     harness.run(main)
#
# harness.run() checks root and BPF first (SKIP = exit 77, or FAIL when CI=true), turns a
# TestFailure into "FAIL: ..." plus diagnostics (loaderd's stderr tail, what was captured per
# connection and direction) and exit 1, and kills the processes the test started, and only
# those.

import base64
import binascii
import contextlib
import ctypes
import errno
import json
import os
import platform
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent
REPO = TESTS_DIR.parent
LOADERD = Path(os.environ.get("TLSSNIFF_LOADERD", str(REPO / "build/loaderd/tlssniff-loaderd")))
# The system interpreter: it links Debian's libssl3 (the `python3` on PATH may be a pyenv
# build with its own OpenSSL).
PYTHON = "/usr/bin/python3"
CTL = LOADERD.parent.parent / "analyzer" / "tlssniffctl"
TLSPEER = str(TESTS_DIR / "tlspeer.py")
HTTPSERVER = str(TESTS_DIR / "httpserver.py")

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
# Time between the last traced call and SIGINT. loaderd must drain what is already in the
# ring buffer when it stops; this only lets the kernel finish the uretprobe of the last call.
SETTLE = 0.5

EXIT_SKIP = 77

# Each CPU's data ring in the tests (loaderd's default is 16 MiB over all CPUs): room for the
# largest burst a test makes (test_go's 100 connections at once, about 14 MB of records)
# while the slowest build in the suite (ASan) on a busy machine drains it. A test that wants
# losses (test_ringbuf_loss) sets its own size.
TEST_RINGBUF_SIZE = "64M"

# What a sanitizer prints (ASan, LSan, UBSan) when it reports a defect.
SANITIZER_REPORT = re.compile(r"(ERROR|WARNING|SUMMARY): \w*Sanitizer|runtime error:")

# loaderd's log line when the analyzer died or misbehaved and is started again.
RESTART_LINE = "Restarting it."


def ci():
    """CI set to a true value (true, 1, yes): a test that cannot run fails instead of
    skipping."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def counted_losses(stats):
    """The non-zero counters of the final statistics that count data tlssniff lost (dropped,
    truncated, cut off or never completed), by name."""
    return {k: v for k, v in (stats or {}).items()
            if isinstance(v, int) and v and k != "type"
            and any(w in k for w in ("drop", "lost", "truncated", "stream_gaps",
                                     "hold_timeouts", "interrupted"))}

DATA_KEYS = {
    "type": str, "time": str, "timestamp_ns": int, "pid": int, "tid": int, "comm": str,
    "fd": int, "direction": str, "role": str, "role_source": str, "family": str,
    "conn_id": int, "source": str, "offset": int, "length": int, "call_length": int,
    "truncated": int, "data_encoding": str, "data": str,
}


EXCHANGE_KEYS = ("time", "timestamp_ns", "pid", "comm", "role", "local", "remote", "conn_id",
                 "protocol", "scheme", "method", "authority", "path", "status",
                 "request_headers", "response_headers", "request_body_bytes",
                 "response_body_bytes", "request_body_preview", "response_body_preview",
                 "latency_ms", "ttfb_ms", "upgraded", "error")


CONNECTION_KEYS = ("event", "reason", "time", "timestamp_ns", "pid", "comm", "role", "local",
                   "remote", "conn_id", "protocol", "first_timestamp_ns", "duration_ms",
                   "bytes_sent", "bytes_received")
CONNECTION_OPEN_KEYS = ("event", "time", "timestamp_ns", "pid", "comm", "role", "family", "local",
                        "remote", "conn_id", "fd", "open_timestamp_ns", "seen_timestamp_ns")


class TestFailure(Exception):
    pass


class TestSkip(Exception):
    pass


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- preconditions

def _bpf_usable():
    """Loads a two-instruction socket filter with bpf(2); returns None or the reason it failed."""
    nr = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}.get(
        platform.machine())
    if nr is None:
        return f"unknown bpf syscall number on {platform.machine()}"
    # r0 = 0; exit
    insns = struct.pack("<BBhi", 0xb7, 0, 0, 0) + struct.pack("<BBhi", 0x95, 0, 0, 0)
    insns_buf = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(b"GPL")
    # union bpf_attr for BPF_PROG_LOAD: prog_type, insn_cnt, insns, license, log_level,
    # log_size, log_buf, kern_version ... (zero the rest)
    attr = bytearray(128)
    struct.pack_into("<IIQQ", attr, 0, 1, 2, ctypes.addressof(insns_buf), ctypes.addressof(lic))
    attr_buf = ctypes.create_string_buffer(bytes(attr), len(attr))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    fd = libc.syscall(ctypes.c_long(nr), ctypes.c_long(5), attr_buf, ctypes.c_uint(len(attr)))
    if fd < 0:
        e = ctypes.get_errno()
        return f"bpf(BPF_PROG_LOAD) failed: {os.strerror(e)} ({errno.errorcode.get(e, e)})"
    os.close(fd)
    if not os.path.exists("/sys/bus/event_source/devices/uprobe/type"):
        return "the kernel has no uprobe PMU (/sys/bus/event_source/devices/uprobe missing)"
    return None


def check_preconditions():
    if os.geteuid() != 0:
        raise TestSkip("integration tests need root (uid is %d)" % os.geteuid())
    reason = _bpf_usable()
    if reason:
        raise TestSkip("BPF is not usable: " + reason)


# ---------------------------------------------------------------- small helpers

def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago (bind to 0, close)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _listening(port):
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    lport = int(parts[1].rsplit(":", 1)[1], 16)
                    if lport == port and parts[3] == "0A":
                        return True
        except FileNotFoundError:
            pass
    return False


def _hex_addr(h):
    ip_hex, port_hex = h.split(":")
    raw = bytes.fromhex(ip_hex)
    if len(raw) == 4:
        ip = socket.inet_ntop(socket.AF_INET, raw[::-1])
    else:
        # four host-endian 32-bit words
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
        ip = socket.inet_ntop(socket.AF_INET6, raw)
    return ip, int(port_hex, 16)


def tcp_conns_of(pid):
    """[(local (ip, port), remote (ip, port))] of the established TCP sockets of pid."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return []
    out = []
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(path) as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[9] in inodes and parts[3] == "01":
                    out.append((_hex_addr(parts[1]), _hex_addr(parts[2])))
    return out


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise TestFailure(f"timed out after {timeout:.0f} s waiting for {what}")


# System calls a thread blocks in when it waits inside SSL_read/SSL_write for its socket:
# read, write, poll, select, sendto, recvfrom, sendmsg, recvmsg, ppoll, pselect6, epoll_wait,
# epoll_pwait, epoll_pwait2 (x86_64 numbers).
SOCKET_WAIT_SYSCALLS = {0, 1, 7, 23, 44, 45, 46, 47, 270, 271, 232, 281, 441}


def blocked_in_io(pid):
    """True when pid's main thread sleeps in a system call that waits for a socket: a
    peer that printed a line and then called SSL_read or SSL_write is inside it now."""
    try:
        with open(f"/proc/{pid}/syscall") as f:
            nr = f.read().split()[0]
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state == "S" and nr.lstrip("-").isdigit() and int(nr) in SOCKET_WAIT_SYSCALLS


def unix_request(path, line, timeout=30):
    """Sends one request line on the UNIX stream socket at path and returns the whole answer
    (until the daemon closes), as text."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(line.encode())
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                return out.decode()
            out += d


def wait_until_stats(sock, pred, timeout, what):
    """Polls `tlssniffctl --json stats` on sock until pred(stats) holds (loaderd sends its
    counters to the analyzer once a second); returns those stats."""
    last = {}

    def check():
        nonlocal last
        r = subprocess.run([str(CTL), "--socket", str(sock), "--json", "stats"],
                           capture_output=True, text=True, timeout=30)
        if r.returncode == 0:
            last = json.loads(r.stdout)["stats"]
            return pred(last)
        return False
    try:
        wait_until(check, timeout, what)
    except TestFailure as e:
        raise TestFailure(f"{e}; last stats: {last}")
    return last


def fds_of(pid):
    """What each open descriptor of pid leads to (readlink of /proc/PID/fd/N)."""
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return out


def maps_of(pid):
    try:
        with open(f"/proc/{pid}/maps") as f:
            return f.read()
    except OSError:
        return ""


def framed_request(payload, reply_len):
    """Bytes a tlspeer client sends for one exchange (see tlspeer.py)."""
    return struct.pack(">II", len(payload), reply_len) + payload


def http_response(body):
    """Bytes a tlspeer http server answers (see tlspeer.py)."""
    sys.path.insert(0, str(TESTS_DIR))
    import tlspeer
    return tlspeer.http_response(body)


def framed_reply(payload, reply_len):
    """Bytes a tlspeer server answers to that exchange (see tlspeer.py)."""
    sys.path.insert(0, str(TESTS_DIR))
    import tlspeer
    return tlspeer.reply_for(payload, reply_len)


class ByteReader:
    """Drains a pipe in a thread so a peer never blocks on a full pipe; wait for N bytes."""

    def __init__(self, pipe, name):
        self.name = name
        self.buf = bytearray()
        self.eof = False
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, args=(pipe,), daemon=True)
        self.thread.start()

    def _run(self, pipe):
        fd = pipe.fileno()
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError:
                chunk = b""
            with self.cond:
                if not chunk:
                    self.eof = True
                    self.cond.notify_all()
                    return
                self.buf += chunk
                self.cond.notify_all()

    def wait_bytes(self, n, timeout):
        """Waits until at least n bytes arrived; returns the first n and drops them."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.buf) < n:
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    have = len(self.buf)
                    why = "end of stream" if self.eof else f"timeout ({timeout:.0f} s)"
                    raise TestFailure(f"{self.name}: {why} after {have} of {n} bytes")
                self.cond.wait(min(left, 0.2))
            out = bytes(self.buf[:n])
            del self.buf[:n]
            return out

    def wait_line(self, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while b"\n" not in self.buf:
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    why = "end of stream" if self.eof else f"timeout ({timeout:.0f} s)"
                    raise TestFailure(f"{self.name}: {why} waiting for a line "
                                      f"(have {bytes(self.buf[:200])!r})")
                self.cond.wait(min(left, 0.2))
            i = self.buf.index(b"\n")
            line = bytes(self.buf[:i])
            del self.buf[:i + 1]
            return line.decode(errors="replace")

    def rest(self, timeout=5.0):
        self.thread.join(timeout)
        with self.cond:
            return bytes(self.buf)


class LineCollector:
    """Keeps every stderr line of a process (for diagnostics) and signals on a marker."""

    def __init__(self, pipe, name):
        self.name = name
        self.lines = []
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.eof = False
        self.thread = threading.Thread(target=self._run, args=(pipe,), daemon=True)
        self.thread.start()

    def _run(self, pipe):
        for raw in iter(pipe.readline, b""):
            with self.cond:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait_for(self, marker, timeout, proc=None):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines:
                    if marker in line:
                        return line
                if self.eof or (proc is not None and proc.poll() is not None):
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 0.2))

    def tail(self, n=40):
        with self.lock:
            return list(self.lines[-n:])


# ---------------------------------------------------------------- capture parsing

class Stream:
    """The bytes of one direction of one connection, reassembled from offsets."""

    def __init__(self, conn_id, direction, records):
        self.conn_id = conn_id
        self.direction = direction
        self.records = sorted(records, key=lambda r: (r["offset"], r["timestamp_ns"]))
        self.problems = []
        out = bytearray()
        for r in self.records:
            chunk = r["_bytes"]
            if r["offset"] > len(out):
                self.problems.append(f"hole of {r['offset'] - len(out)} B at offset {len(out)}")
                out += b"\0" * (r["offset"] - len(out))  # keep positions; the data is wrong anyway
                out += chunk
            elif r["offset"] < len(out):
                self.problems.append(f"overlap: record at offset {r['offset']} "
                                     f"({r['length']} B) but stream already has {len(out)} B")
                out[r["offset"]:r["offset"] + len(chunk)] = chunk
            else:
                out += chunk
            if r["truncated"]:
                self.problems.append(f"call at offset {r['offset']} truncated by {r['truncated']} B")
        self.data = bytes(out)
        first = self.records[0]
        self.pids = sorted({r["pid"] for r in self.records})
        self.pid = first["pid"]
        self.comm = first["comm"]
        if len(self.pids) > 1:
            self.problems.append(f"records from several pids {self.pids}")

    def attrs(self, key):
        return {json.dumps(r[key], sort_keys=True) for r in self.records}

    def describe(self):
        r = self.records[0]
        loc = _fmt_addr(r["local"])
        rem = _fmt_addr(r["remote"])
        prob = ("; PROBLEMS: " + ", ".join(self.problems[:5])) if self.problems else ""
        return (f"conn={self.conn_id} {self.direction:5s} pid={self.pid} comm={self.comm} "
                f"fd={r['fd']} {r['role']}/{r['role_source']} {r['family']} {loc} -> {rem} "
                f"{len(self.data)} B in {len(self.records)} records{prob}")


def _fmt_addr(a):
    if not a:
        return "null"
    ip = a.get("ip")
    return f"[{ip}]:{a.get('port')}" if ip and ":" in ip else f"{ip}:{a.get('port')}"


def _first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


class Capture:
    def __init__(self, path):
        self.path = path
        self.records = []
        self.other = []  # exchange records (--exchanges)
        self.stats = None
        self.errors = []
        self.lines = 0
        with open(path, "rb") as f:
            raw_lines = f.read().split(b"\n")
        if raw_lines and raw_lines[-1] == b"":
            raw_lines.pop()
        else:
            self.errors.append("output does not end with a newline")
        self.lines = len(raw_lines)
        for n, raw in enumerate(raw_lines, 1):
            try:
                obj = json.loads(raw)
            except ValueError as e:
                self.errors.append(f"line {n} is not JSON ({e}): {raw[:120]!r}")
                continue
            if obj.get("type") == "stats":
                if n != len(raw_lines):
                    self.errors.append(f"stats object on line {n} is not the last line")
                self.stats = obj
                continue
            if obj.get("type") == "connection":
                keys = CONNECTION_OPEN_KEYS if obj.get("event") == "open" else CONNECTION_KEYS
                bad = [k for k in keys if k not in obj]
                if bad:
                    self.errors.append(f"line {n}: connection without {bad}")
                else:
                    self.other.append(obj)
                continue
            if obj.get("type") == "exchange":
                bad = [k for k in EXCHANGE_KEYS if k not in obj]
                if bad:
                    self.errors.append(f"line {n}: exchange without {bad}")
                else:
                    self.other.append(obj)
                continue
            if obj.get("type") != "data":
                self.errors.append(f"line {n}: unknown type {obj.get('type')!r}")
                continue
            bad = self._validate(obj)
            if bad:
                self.errors.append(f"line {n}: {bad}")
                continue
            self.records.append(obj)
        if self.stats is None:
            self.errors.append("no {\"type\":\"stats\"} object as last line")
        groups = {}
        for r in self.records:
            groups.setdefault((r["conn_id"], r["direction"]), []).append(r)
        self.streams = {k: Stream(k[0], k[1], v) for k, v in groups.items()}

    @staticmethod
    def _validate(r):
        for k, typ in DATA_KEYS.items():
            if k not in r:
                return f"key {k!r} missing"
            if not isinstance(r[k], typ) or (typ is int and isinstance(r[k], bool)):
                return f"key {k!r} has type {type(r[k]).__name__}"
        for k in ("local", "remote"):
            if k not in r:
                return f"key {k!r} missing"
        if r["data_encoding"] != "base64":
            return f"data_encoding {r['data_encoding']!r}"
        if r["direction"] not in ("read", "write"):
            return f"direction {r['direction']!r}"
        try:
            r["_bytes"] = base64.b64decode(r["data"], validate=True)
        except (binascii.Error, ValueError) as e:
            return f"data is not base64: {e}"
        if len(r["_bytes"]) != r["length"]:
            return f"length {r['length']} but data decodes to {len(r['_bytes'])} B"
        if r["length"] > r["call_length"]:
            return f"length {r['length']} > call_length {r['call_length']}"
        return None

    # -- queries

    def streams_of(self, pid, direction=None):
        return [s for s in self.streams.values()
                if pid in s.pids and (direction is None or s.direction == direction)]

    def pids(self):
        return sorted({r["pid"] for r in self.records})

    def summary(self, pids=None, limit=60):
        lines = [f"capture {self.path}: {self.lines} lines, {len(self.records)} data records, "
                 f"{len(self.streams)} streams, pids {self.pids()[:20]}"]
        for e in self.errors[:10]:
            lines.append("  OUTPUT ERROR: " + e)
        ss = sorted(self.streams.values(), key=lambda s: (s.pid, s.conn_id, s.direction))
        if pids is not None:
            ss = [s for s in ss if s.pid in pids]
        for s in ss[:limit]:
            lines.append("  " + s.describe())
        if len(ss) > limit:
            lines.append(f"  ... {len(ss) - limit} more streams")
        if self.stats:
            nz = {k: v for k, v in self.stats.items() if v and k != "type"}
            lines.append("  stats (non-zero): " + json.dumps(nz))
        return "\n".join(lines)

    def assert_valid(self):
        if self.errors:
            raise TestFailure("tlssniff's JSON output is malformed:\n  " +
                              "\n  ".join(self.errors[:20]))

    def find_stream(self, pid, direction, expected, label, exclusive=True):
        """The stream of pid/direction whose bytes equal expected, exactly, without holes.

        With exclusive, no other stream of that pid and direction may carry bytes (a process
        in these tests has exactly the connections the test made, so extra bytes mean
        duplicated or misattributed capture)."""
        cands = self.streams_of(pid, direction)
        match = [s for s in cands if s.data == expected and not s.problems]
        if len(match) == 1 and (not exclusive or len(cands) == 1):
            return match[0]
        lines = [f"{label}: expected one {direction} stream of pid {pid} with exactly "
                 f"{len(expected)} B; {len(match)} match, {len(cands)} candidates:"]
        for s in cands:
            d = _first_diff(s.data, expected)
            same = "EQUAL" if s.data == expected else (
                f"differs at byte {d} (captured {s.data[d:d + 8].hex() or '-'} "
                f"expected {expected[d:d + 8].hex() or '-'})")
            lines.append(f"  {s.describe()}: {same}")
        if not cands:
            lines.append("  (none; pids with records: %s)" % self.pids()[:30])
        raise TestFailure("\n".join(lines))

    def find_stream_by_ports(self, pid, direction, local_port, remote_port):
        """Streams of pid/direction whose records name this local and remote port."""
        out = []
        for s in self.streams_of(pid, direction):
            r = s.records[0]
            if (r["local"] and r["remote"] and r["local"].get("port") == local_port
                    and r["remote"].get("port") == remote_port):
                out.append(s)
        return out


def assert_addressing(stream, label, family, local, remote, role, role_sources=("kernel",),
                      unknown_below=0, fd=None):
    """Every record of the stream carries this family, (ip, port) pairs and role, and a socket
    fd (exactly fd, when given).

    Records that end at or before stream offset unknown_below may instead say "not known yet"
    (fd -1, family unknown, null addresses): docs/output.md allows it for calls made before
    tlssniff could see the socket."""
    want_local = {"ip": local[0], "port": local[1]}
    want_remote = {"ip": remote[0], "port": remote[1]}
    bad = []
    for r in stream.records:
        if (r["offset"] + r["length"] <= unknown_below and r["fd"] == -1
                and r["family"] == "unknown" and r["local"] is None and r["remote"] is None):
            continue
        got = (r["family"], r["local"], r["remote"], r["role"])
        if got != (family, want_local, want_remote, role) or r["role_source"] not in role_sources:
            bad.append(f"offset {r['offset']}: family={r['family']} local={r['local']} "
                       f"remote={r['remote']} role={r['role']}/{r['role_source']} fd={r['fd']}")
    if bad:
        raise TestFailure(
            f"{label}: records of conn {stream.conn_id} (pid {stream.pid}) do not carry "
            f"family={family} local={want_local} remote={want_remote} role={role} "
            f"role_source in {list(role_sources)}; {len(bad)} of {len(stream.records)} "
            f"records differ:\n  " + "\n  ".join(bad[:10]))
    fds = {r["fd"] for r in stream.records if r["offset"] + r["length"] > unknown_below}
    if any(f < 0 for f in fds):
        raise TestFailure(f"{label}: conn {stream.conn_id} has records without a socket fd {fds}")
    if fd is not None and fds != {fd}:
        raise TestFailure(f"{label}: records name fd {sorted(fds)}; the socket is fd {fd}")


# ---------------------------------------------------------------- the test context

class TestContext:
    def __init__(self, name):
        self.name = name
        self.tmp = Path(tempfile.mkdtemp(prefix=f"tlssniff-{name}-"))
        os.chmod(self.tmp, 0o755)
        self.procs = []
        self.loaderd = None
        self.loaderd_err = None
        self.output = None
        self.capture = None
        self.diag_pids = None
        self.expected_restarts = 0  # loaderd_analyzer_restarts the test expects
        self.daemons = []  # every loaderd the test started: (proc, stderr lines, name)

    # -- files

    def make_cert(self):
        cert, key = self.tmp / "cert.pem", self.tmp / "key.pem"
        r = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
             "-keyout", str(key), "-out", str(cert)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        if r.returncode != 0:
            raise TestFailure("openssl req failed:\n" + r.stdout.decode(errors="replace"))
        return str(cert), str(key)

    def write_file(self, name, data):
        p = self.tmp / name
        p.write_bytes(data)
        return str(p)

    # -- processes

    def spawn(self, argv, name=None, env=None, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
              stderr=subprocess.PIPE):
        """Starts a peer; it is killed at the end of the test if still running."""
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        p = subprocess.Popen([str(a) for a in argv], stdin=stdin, stdout=stdout, stderr=stderr,
                             env=full_env, cwd=str(self.tmp))
        p.name = name or os.path.basename(str(argv[0]))
        p.err = LineCollector(p.stderr, p.name) if stderr == subprocess.PIPE else None
        self.procs.append(p)
        return p

    def spawn_peer(self, args, name, env=None):
        """A tlspeer.py server or client under the system python3."""
        p = self.spawn([PYTHON, TLSPEER] + list(args), name=name, env=env)
        p.out = ByteReader(p.stdout, name + " stdout")
        return p

    def expect_line(self, proc, prefix, timeout=20.0):
        """Reads proc's stdout lines until one starts with prefix; returns the rest of it."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TestFailure(f"{proc.name}: no line starting with {prefix!r}")
            try:
                line = proc.out.wait_line(left)
            except TestFailure as e:
                raise TestFailure(f"{e}; {proc.name} exit={proc.poll()} stderr:\n  " +
                                  "\n  ".join(proc.err.tail(20) if proc.err else []))
            if line.startswith(prefix):
                return line[len(prefix):].strip()

    def wait_proc(self, proc, timeout=30.0, ok_codes=(0,)):
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TestFailure(f"{proc.name} (pid {proc.pid}) did not exit in {timeout:.0f} s")
        if rc not in ok_codes:
            tail = "\n  ".join(proc.err.tail(30)) if proc.err else ""
            raise TestFailure(f"{proc.name} (pid {proc.pid}) exited with {rc}; stderr:\n  {tail}")
        return rc

    def start_server(self, mode, cert, key, host="127.0.0.1", extra=()):
        """A tlspeer.py server (threaded, concurrent); returns (proc, port)."""
        p = self.spawn_peer(["server", "--mode", mode, "--cert", cert, "--key", key,
                             "--host", host, "--dir", str(self.tmp)] + list(extra),
                            name=f"tlspeer-server-{mode}")
        port = int(self.expect_line(p, "LISTENING "))
        return p, port

    def stop_server(self, proc):
        """Closes the server's stdin (it exits on EOF) and checks it had no error."""
        try:
            proc.stdin.close()
        except OSError:
            pass
        self.wait_proc(proc, 15)

    # -- loaderd

    def loaderd_argv(self, *args, test_rings=True):
        """loaderd's command line with args, kept off the machine's own tlssniff: unless args
        name them, no configuration file (not /etc/tlssniff/tlssniff.conf), a control socket
        in the test's folder (not /run/tlssniff/control: tests must not disturb each other or
        a tlssniff running on the machine), an empty Go offset cache of the test's own (not
        /var/cache/tlssniff), and (with test_rings) rings large enough for the test's
        bursts."""
        if not LOADERD.exists():
            raise TestFailure(f"{LOADERD} does not exist (build it: ninja -C build)")
        argv = [str(LOADERD)] + [str(a) for a in args]

        def given(opt):
            return any(a == opt or a.startswith(opt + "=") for a in argv)
        if not given("--control-socket"):
            argv += ["--control-socket", str(self.tmp / "control")]
        if not given("--config"):
            argv += ["--config", ""]
        if not given("--cache-dir"):
            argv += ["--cache-dir", str(self.tmp / "cache")]
        if test_rings and not given("--ringbuf-size"):
            argv += ["--ringbuf-size", TEST_RINGBUF_SIZE]
        return argv

    def spawn_loaderd(self, *args, name="loaderd", env=None, stdout=subprocess.DEVNULL):
        """A loaderd the test drives itself (loaderd_argv's defaults), its stderr collected;
        at the end of the test its log is checked like start_loaderd's: no sanitizer report,
        no analyzer restart."""
        p = self.spawn(self.loaderd_argv(*args), name=name, env=env, stdin=subprocess.DEVNULL,
                       stdout=stdout)
        self.daemons.append((p, p.err, name))
        return p

    def start_loaderd(self, *extra, test_rings=True):
        """loaderd writing JSON to capture.jsonl, with loaderd_argv's defaults; test_rings
        False keeps loaderd's own ring size (a test of that default)."""
        self.output = self.tmp / "capture.jsonl"
        argv = self.loaderd_argv("--json", "--output", self.output, "--log-target", "stderr",
                                 *extra, test_rings=test_rings)
        log("starting " + " ".join(argv))
        self.loaderd = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, cwd=str(self.tmp))
        self.loaderd_out = ByteReader(self.loaderd.stdout, "loaderd stdout")
        self.loaderd_err = LineCollector(self.loaderd.stderr, "loaderd")
        self.daemons.append((self.loaderd, self.loaderd_err, "loaderd"))
        t0 = time.monotonic()
        line = self.loaderd_err.wait_for("Ready:", READY_TIMEOUT, self.loaderd)
        if line is None:
            rc = self.loaderd.poll()
            raise TestFailure(
                f"loaderd did not log 'Ready:' within {READY_TIMEOUT:.0f} s "
                f"(exit status {rc})")
        log(f"loaderd ready in {time.monotonic() - t0:.1f} s: {line.strip()}")
        return self.loaderd

    def wait_attached(self, path, times=1, timeout=20.0):
        """Waits until loaderd has logged attaching probes to path (times files under it)."""
        path = str(path)
        wait_until(lambda: sum("Attached" in ln and path in ln
                               for ln in self.loaderd_err.lines) >= times, timeout,
                   f"probes attached to {path}" + (f" ({times} files)" if times > 1 else ""))

    def stop_loaderd(self):
        """SIGINT, wait, parse the output; checks a clean exit and a final stats line."""
        time.sleep(SETTLE)
        p = self.loaderd
        if p.poll() is not None:
            raise TestFailure(f"loaderd exited early with status {p.returncode}")
        p.send_signal(signal.SIGINT)
        try:
            rc = p.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
            raise TestFailure(f"loaderd did not stop within {STOP_TIMEOUT:.0f} s of SIGINT")
        self.loaderd_err.thread.join(5)
        if rc != 0:
            raise TestFailure(f"loaderd exited with status {rc} after SIGINT")
        self.capture = Capture(self.output)
        self.capture.assert_valid()
        restarts = (self.capture.stats or {}).get("loaderd_analyzer_restarts", 0)
        if restarts != self.expected_restarts:
            raise TestFailure(f"the analyzer was restarted {restarts} times (expected "
                              f"{self.expected_restarts}): it crashed or misbehaved")
        log(f"capture: {len(self.capture.records)} records, {len(self.capture.streams)} streams")
        return self.capture

    # -- end of test

    def check_daemons(self):
        """Stops every loaderd the test left running, then fails the test if any loaderd
        (or its analyzer, which shares its stderr) printed a sanitizer report or restarted the
        analyzer more often than the test expects."""
        problems = []
        for p, err, name in self.daemons:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
                try:
                    p.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    problems.append(f"{name} (pid {p.pid}) did not stop within "
                                    f"{STOP_TIMEOUT:.0f} s of SIGINT")
                    p.kill()
                    p.wait(10)
            err.thread.join(10)
            reports = [ln for ln in err.lines if SANITIZER_REPORT.search(ln)]
            if reports:
                first = err.lines.index(reports[0])
                problems.append(f"{name} (pid {p.pid}) or its analyzer reported a defect:\n  " +
                                "\n  ".join(err.lines[first:first + 30]))
            restarts = sum(RESTART_LINE in ln for ln in err.lines)
            if restarts > self.expected_restarts:
                problems.append(f"{name} (pid {p.pid}) restarted the analyzer {restarts} times "
                                f"(expected {self.expected_restarts}): it crashed or "
                                f"misbehaved:\n  " + "\n  ".join(
                                    ln for ln in err.lines if RESTART_LINE in ln))
        if problems:
            raise TestFailure("\n".join(problems))

    def loss_verdict(self):
        """One line for a failure: whether the capture counted losses (the bytes that are
        missing were dropped and counted) or not (what was captured is wrong)."""
        stats = self.capture.stats if self.capture is not None else None
        if stats is None:
            return None
        losses = counted_losses(stats)
        if losses:
            return ("COUNTED LOSS: tlssniff counted lost data in this run " +
                    json.dumps(losses) + ": a miss below may be a counted drop (rings too "
                    "small or a pipeline too slow for the workload), not a wrong capture")
        return "No loss was counted in this run: a miss below is a wrong capture"

    def diagnostics(self):
        out = []
        if self.loaderd_err is not None:
            out.append("--- loaderd stderr (last 40 lines):")
            out += ["  " + l for l in self.loaderd_err.tail(40)]
        if self.capture is None and self.output is not None and self.output.exists():
            try:
                self.capture = Capture(self.output)
            except Exception as e:  # noqa: BLE001 - diagnostics must not hide the failure
                out.append(f"--- could not parse {self.output}: {e}")
        if self.capture is not None:
            out.append("--- captured:")
            out.append(self.capture.summary(self.diag_pids))
            verdict = self.loss_verdict()
            if verdict:
                out.insert(0, verdict)
        for p in self.procs:
            if p.err is not None and p.err.lines:
                out.append(f"--- {p.name} (pid {p.pid}, exit {p.poll()}) stderr tail:")
                out += ["  " + l for l in p.err.tail(8)]
        return "\n".join(out)

    def cleanup(self, keep):
        for p in self.procs + ([self.loaderd] if self.loaderd else []):
            if p.poll() is None:
                sig = signal.SIGINT if p is self.loaderd else signal.SIGKILL
                try:
                    p.send_signal(sig)
                    p.wait(STOP_TIMEOUT if p is self.loaderd else 5)
                except (subprocess.TimeoutExpired, OSError):
                    try:
                        p.kill()
                        p.wait(5)
                    except (subprocess.TimeoutExpired, OSError):
                        pass
        if keep:
            print(f"(test files kept in {self.tmp})")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def run(main):
    name = Path(sys.argv[0]).stem
    try:
        check_preconditions()
    except TestSkip as e:
        if ci():
            print(f"FAIL: {e} (CI is set: integration tests must run)")
            sys.exit(1)
        print(f"SKIP: {e}")
        sys.exit(EXIT_SKIP)
    t = TestContext(name)
    ok = False
    try:
        main(t)
        t.check_daemons()
        ok = True
    except TestFailure as e:
        print(f"FAIL: {e}")
        print(t.diagnostics())
    except Exception:  # noqa: BLE001 - any other error is a failure of the test, shown in full
        print("FAIL: unexpected error in the test:")
        traceback.print_exc(file=sys.stdout)
        print(t.diagnostics())
    finally:
        # TLSSNIFF_KEEP=1 keeps a failed test's files, =always every test's.
        keep = os.environ.get("TLSSNIFF_KEEP")
        t.cleanup(keep=keep == "always" or (not ok and keep == "1"))
    if ok:
        print("PASS")
        sys.exit(0)
    sys.exit(1)


def start_http_server(t, cert, key):
    """tests/httpserver.py (HTTP/1.1 keep-alive: /len/N, /chunked/N, /close/N, POST, 404) under
    the system python3; returns it (it stops when its stdin closes) and its port."""
    server = t.spawn([PYTHON, HTTPSERVER, cert, key], name="http-server")
    server.out = ByteReader(server.stdout, server.name)
    return server, int(t.expect_line(server, "LISTENING"))


@contextlib.contextmanager
def cgroup2_group(name):
    """A new cgroup v2 group called name, in a mount of the hierarchy of our own; yields its
    path. Removed (once its processes have exited) and unmounted afterwards."""
    mnt = tempfile.mkdtemp(prefix="tlssniff-cg2-")
    subprocess.run(["mount", "-t", "cgroup2", "none", mnt], check=True)
    group = os.path.join(mnt, name)
    try:
        yield group
    finally:
        try:
            os.rmdir(group)
        except OSError:
            pass
        subprocess.run(["umount", mnt], check=False)
        os.rmdir(mnt)


# ---------------------------------------------------------------- framed tlspeer clients

def spawn_client(t, name, port, items, cafile, host="127.0.0.1", flags=(), env=None):
    """A tlspeer.py client making one connection per (payload, reply_len[, more]) in items."""
    entries = []
    for i, item in enumerate(items):
        payload, reply_len = item[0], item[1]
        entry = {"payload": t.write_file(f"{name}-{i}.bin", payload), "reply_len": reply_len}
        # optional third element: further (payload, reply_len) exchanges on the connection
        entry["then"] = [[t.write_file(f"{name}-{i}-{k}.bin", p), n]
                         for k, (p, n) in enumerate(item[2] if len(item) > 2 else [], 1)]
        entries.append(entry)
    spec = t.write_file(f"{name}.json", json.dumps(entries).encode())
    p = t.spawn_peer(["client", "--host", host, "--port", port, "--spec", spec,
                      "--cafile", cafile] + list(flags), name=name, env=env)
    p.items = items
    return p


def client_results(t, proc, timeout=40.0):
    """The RESULT objects of a tlspeer client (one per connection); checks it exited 0."""
    results = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = proc.out.wait_line(max(0.1, deadline - time.monotonic()))
        except TestFailure as e:
            raise TestFailure(f"{e}; {proc.name} exit={proc.poll()} stderr:\n  " +
                              "\n  ".join(proc.err.tail(20)))
        if line.startswith("RESULT "):
            results.append(json.loads(line[7:]))
        elif line == "DONE":
            break
    t.wait_proc(proc, max(1.0, deadline - time.monotonic()))
    if len(results) != len(proc.items):
        raise TestFailure(f"{proc.name}: {len(results)} of {len(proc.items)} connections done")
    return sorted(results, key=lambda r: r["i"])


def capture_group_member(t, group, server, port, cert, items, ready, label):
    """Two clients of server wait; "inside" is moved into the cgroup v2 group, "outside" stays
    where it is; ready() then starts tlssniff or waits until it follows the group. Both make
    their connections, the server and tlssniff stop, and the capture must hold the inside
    client's connection exactly (items: its one (payload, reply_len)) and nothing of any other
    process. Returns the capture."""
    inside = spawn_client(t, "inside", port, items, cert, flags=["--wait-go"])
    outside = spawn_client(t, "outside", port, [(os.urandom(500), 600)], cert,
                           flags=["--wait-go"])
    t.expect_line(inside, "WAITING")
    t.expect_line(outside, "WAITING")
    with open(os.path.join(group, "cgroup.procs"), "w") as f:
        f.write(str(inside.pid))
    ready()
    for p in (inside, outside):
        p.stdin.write(b"go\n")
        p.stdin.flush()
    res = client_results(t, inside)
    client_results(t, outside)
    t.stop_server(server)
    cap = t.stop_loaderd()
    check_framed_connection(cap, f"client in the group ({label})", inside.pid, None, res[0],
                            items[0][0], items[0][1], "ipv4")
    others = sorted({(r["pid"], r["comm"]) for r in cap.records if r["pid"] != inside.pid})
    if others:
        raise TestFailure(f"{label} but other processes were captured: {others} "
                          f"(outside client {outside.pid}, server {server.pid})")
    return cap


def check_framed_connection(cap, label, client_pid, server_pid, result, payload, reply_len,
                            family, client_role_sources=("kernel",),
                            server_role_sources=("kernel",)):
    """Checks the four streams of one tlspeer framed connection (client and server side):
    exact bytes, found by the connection's ports, with the right addresses and roles.
    server_pid None checks only the client side."""
    request = framed_request(payload, reply_len)
    reply = framed_reply(payload, reply_len)
    local, remote = tuple(result["local"]), tuple(result["remote"])
    checks = [(client_pid, "write", local, remote, request, "client", client_role_sources),
              (client_pid, "read", local, remote, reply, "client", client_role_sources)]
    if server_pid is not None:
        checks += [(server_pid, "read", remote, local, request, "server", server_role_sources),
                   (server_pid, "write", remote, local, reply, "server", server_role_sources)]
    found = []
    for pid, direction, loc, rem, expected, role, sources in checks:
        who = f"{label}: {role} pid {pid} {direction} {_fmt_addr({'ip': loc[0], 'port': loc[1]})}"
        ss = cap.find_stream_by_ports(pid, direction, loc[1], rem[1])
        if len(ss) != 1 or ss[0].data != expected or ss[0].problems:
            lines = [f"{who}: expected one stream with local port {loc[1]}, remote port "
                     f"{rem[1]} and exactly {len(expected)} B; found {len(ss)}:"]
            for s in ss:
                d = _first_diff(s.data, expected)
                lines.append("  " + s.describe() + (
                    ": EQUAL" if s.data == expected else f": differs at byte {d}"))
            others = [s for s in cap.streams_of(pid, direction) if s not in ss]
            lines.append(f"  other {direction} streams of pid {pid}: {len(others)}")
            for s in others[:4]:
                lines.append("    " + s.describe() + (
                    " (bytes EQUAL expected)" if s.data == expected else ""))
            raise TestFailure("\n".join(lines))
        assert_addressing(ss[0], who, family, loc, rem, role, sources,
                          fd=result.get("fd") if pid == client_pid else None)
        found.append(ss[0])
    return found
