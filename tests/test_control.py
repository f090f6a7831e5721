#!/usr/bin/python3
# Proves: the control socket is 0660 root:tlssniff; `tlssniffctl stats` shows the counters of a
# capture made after tlssniff started (calls, bytes, and every loss counter); `processes` lists
# a traced process with its library and explains one that is not traced; `tail --json --comm
# curl` shows a curl request made after it started, exactly; a user outside the
# tlssniff group is refused, a group member may read but not attach, root attaches a process.

import base64
import json
import mmap
import os
import socket
import stat
import subprocess
import time
import grp

import harness
from harness import TestFailure

HOST = "127.0.0.1"
CTL = harness.LOADERD.parent.parent / "analyzer" / "tlssniffctl"


def ctl(sock, *args, user=None, groups=None):
    argv = [str(CTL), "--socket", sock, *args]
    if user:
        argv = ["setpriv", f"--reuid={user}", "--regid=nogroup",
                "--clear-groups" if not groups else f"--groups={groups}"] + argv
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def raw(sock, request, user, groups):
    """Sends a raw request line as user (through setpriv + python) and returns the answer."""
    # A refusal may come, and the socket close, before the request is sent (loaderd's admin
    # socket refuses a non-root peer at once): the answer is read all the same.
    code = ("import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
            "try:\n s.sendall(sys.argv[2].encode())\nexcept OSError:\n pass\n"
            "print(s.recv(65536).decode(), end='')")
    argv = ["setpriv", f"--reuid={user}", "--regid=nogroup", f"--groups={groups}",
            "/usr/bin/python3", "-c", code, sock, request]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout


def first_answer(sock, request):
    """As root: the first answer to request (a subscription's echo line; the rest not read)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)
        s.connect(sock)
        s.sendall(request.encode())
        return s.recv(65536).decode()


def takes_direct(directory):
    """Whether files in directory take O_DIRECT writes (of one aligned 4 KiB block)."""
    path = os.path.join(str(directory), "direct-probe")
    buf = mmap.mmap(-1, 4096)  # page-aligned memory
    try:
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC | os.O_DIRECT, 0o600)
    except OSError:
        return False
    try:
        return os.write(fd, buf) == 4096
    except OSError:
        return False
    finally:
        os.close(fd)
        os.unlink(path)


def main(t):
    cert, key = t.make_cert()
    sock = str(t.tmp / "control")
    t.start_loaderd("--control-socket", sock, "--data-group", "users")
    st = os.stat(sock)
    if not stat.S_ISSOCK(st.st_mode) or stat.S_IMODE(st.st_mode) != 0o660 or st.st_uid != 0 \
            or st.st_gid != grp.getgrnam("tlssniff").gr_gid:
        raise TestFailure(f"control socket mode {oct(st.st_mode)} owner {st.st_uid}:{st.st_gid}")

    server, port = t.start_server("framed", cert, key, HOST)
    c = harness.spawn_client(t, "client", port, [(os.urandom(5000), 7000)], cert)
    harness.client_results(t, c)
    # Counters reach the analyzer once a second.
    stats = harness.wait_until_stats(
        sock, lambda s: s.get("kernel_calls", 0) >= 4 and
        s.get("kernel_bytes", 0) >= 2 * (5008 + 7000), 30, "stats that show the capture")
    for k in ("kernel_drop_ringbuf_bytes", "kernel_truncated_bytes",
              "kernel_drop_read_fail_bytes", "loaderd_backlog_bytes", "analyzer_records_bad",
              "loaderd_ringbuf_used_bytes", "loaderd_ringbuf_used_max_bytes", "loaderd_uptime_s",
              "analyzer_tail_drops", "loaderd_plan_cache_entries",
              "loaderd_detached_pids"):  # the last loaderd sends: all fit in one report
        if k not in stats:
            raise TestFailure(f"stats lack {k}")
    # The output file's whole blocks went around the page cache (docs/output.md): each
    # response's line is over 9 KiB, so every flush of one holds a whole block.
    direct = stats.get("analyzer_output_direct_bytes")
    if direct is None or (direct == 0) == takes_direct(t.output.parent):
        raise TestFailure(f"analyzer_output_direct_bytes {direct} (the file system "
                          f"{'takes' if takes_direct(t.output.parent) else 'refuses'} O_DIRECT)")
    # processes: the libssl the python peers use, with its placement, attached; the table
    # form for people names it too. A group member may read it.
    r = ctl(sock, "--json", "processes")
    if r.returncode != 0:
        raise TestFailure(f"tlssniffctl processes failed ({r.returncode}): {r.stderr}")
    files = json.loads(r.stdout)["files"]
    ssl = [p for p in files["list"] if p["library"].startswith("libssl.so")]
    if not ssl or ssl[0]["state"] != "attached" or ssl[0]["probes"] < 4 or \
            not ("SSL_write" in ssl[0]["reason"] or "writes copy" in ssl[0]["reason"]) or \
            files["files_analyzed"] < 1:
        raise TestFailure(f"tlssniffctl processes, files: {files}")
    # The server (still running) is listed as a process: traced, with its libssl attached.
    procs = json.loads(r.stdout)["processes"]
    mine = [p for p in procs["list"] if p["pid"] == server.pid]
    if not mine or mine[0]["state"] != "traced" or not mine[0]["traced"] or \
            "libssl.so" not in mine[0]["tls"] or "attached" not in mine[0]["tls"] or \
            "python3" not in mine[0]["exe"]:
        raise TestFailure(f"tlssniffctl processes: the server {server.pid}: {procs}")
    r = ctl(sock, "processes", user="nobody", groups="tlssniff")
    if r.returncode != 0 or "libssl.so" not in r.stdout or "attached" not in r.stdout:
        raise TestFailure(f"tlssniffctl processes as a group member: {r.returncode} "
                          f"{r.stdout} {r.stderr}")
    t.stop_server(server)
    # connections: a client whose connection stays open (a 3 s pause between two exchanges)
    # is listed from both sides, with its addresses, role and bytes so far.
    first, second = os.urandom(3000), os.urandom(100)
    server2, port2 = t.start_server("framed", cert, key, HOST)
    slow = harness.spawn_client(t, "slow", port2, [(first, 4000, [(second, 10)])], cert,
                                flags=["--pause", "3"])
    conns = []
    def listed():
        nonlocal conns
        r = ctl(sock, "--json", "connections")
        if r.returncode != 0:
            raise TestFailure(f"tlssniffctl connections failed: {r.stderr}")
        conns = json.loads(r.stdout)["connections"]["list"]
        mine = [c for c in conns if c["pid"] == slow.pid]
        return mine and mine[0]["bytes_sent"] == len(first) + 8 and \
            mine[0]["bytes_received"] == 4000
    harness.wait_until(listed, 10, "the slow client's connection in tlssniffctl connections")
    cl = [c for c in conns if c["pid"] == slow.pid][0]
    sv = [c for c in conns if c["pid"] == server2.pid]
    if cl["role"] != "client" or not cl["remote"].endswith(f":{port2}") or \
            not sv or sv[0]["role"] != "server" or sv[0]["bytes_received"] != len(first) + 8:
        raise TestFailure(f"connections: client {cl}, server {sv}")
    table = ctl(sock, "connections")
    if table.returncode != 0 or str(slow.pid) not in table.stdout or "tracked" not in table.stdout:
        raise TestFailure(f"connections table: {table.stdout!r} {table.stderr!r}")
    harness.client_results(t, slow)
    t.stop_server(server2)

    # tail --json --comm curl, started before the request: shows curl's request, exactly, and
    # nothing of other processes; stats count it.
    before = json.loads(ctl(sock, "--json", "stats").stdout)["stats"]["kernel_calls"]
    tail = subprocess.Popen([str(CTL), "--socket", sock, "--json", "tail", "--data", "--comm",
                             "curl", "-n", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    # tlssniffctl prints records only; the subscription is there once the analyzer counts it.
    harness.wait_until(lambda: json.loads(ctl(sock, "--json", "stats").stdout)["stats"]
                       .get("analyzer_tail_subscribers") == 1, 10, "the tail subscription")
    marker = os.urandom(6).hex()
    t.write_file("body.bin", os.urandom(100))
    http, hport = t.start_server("http", cert, key, HOST)
    curl = t.spawn(["curl", "-k", "--http1.1", "-sS", "--max-time", "30", "-o", os.devnull,
                    f"https://{HOST}:{hport}/tail-{marker}"], name="curl")
    t.wait_proc(curl, 40)
    out, err = tail.communicate(timeout=30)
    lines = [json.loads(x) for x in out.splitlines()]
    if tail.returncode != 0 or len(lines) != 2 or {x["comm"] for x in lines} != {"curl"}:
        raise TestFailure(f"tail --comm curl: exit {tail.returncode}, {out!r} {err!r}")
    sent = [base64.b64decode(x["data"]) for x in lines if x["direction"] == "write"]
    want = (f"GET /tail-{marker} HTTP/1.1\r\nHost: {HOST}:{hport}\r\n").encode()
    if len(sent) != 1 or not sent[0].startswith(want) or lines[0]["pid"] != curl.pid:
        raise TestFailure(f"tail did not show curl's request {want!r}: {lines}")
    t.stop_server(http)
    harness.wait_until_stats(sock, lambda s: s.get("kernel_calls", 0) >= before + 2, 30,
                             f"stats that count curl's calls (more than {before})")
    # processes explains a process that is not traced: one detached with tlssniffctl.
    idle = t.spawn(["/usr/bin/python3", "-c", "import ssl, sys; sys.stdin.read()"],
                   name="idle")
    harness.wait_until(lambda: str(idle.pid) in ctl(sock, "processes").stdout, 10,
                       "the idle python3 in tlssniffctl processes")
    r = ctl(sock, "detach", str(idle.pid))
    if r.returncode != 0:
        raise TestFailure(f"detach: {r.returncode} {r.stderr!r}")
    r = ctl(sock, "--json", "processes", str(idle.pid))
    p = json.loads(r.stdout)["processes"]["list"]
    if len(p) != 1 or p[0]["state"] != "detached" or p[0]["traced"] or \
            "detached with tlssniffctl" not in p[0]["reason"] or "libssl" not in p[0]["tls"]:
        raise TestFailure(f"processes {idle.pid} after detach: {p}")
    table = ctl(sock, "processes", str(idle.pid))
    if table.returncode != 0 or "detached with tlssniffctl" not in table.stdout:
        raise TestFailure(f"processes table: {table.stdout!r}")
    idle.stdin.close()
    t.wait_proc(idle, 10)

    table = ctl(sock, "stats")
    if table.returncode != 0 or "kernel_bytes" not in table.stdout:
        raise TestFailure(f"table output: {table.stdout!r} {table.stderr!r}")

    # Outside the group: the socket's mode already keeps the user out.
    r = ctl(sock, "status", user="nobody")
    if r.returncode != 1 or "Permission denied" not in r.stderr:
        raise TestFailure(f"a user outside the group was not refused: {r.returncode} {r.stderr}")
    # A group member reads, but may not change anything.
    r = ctl(sock, "--json", "status", user="nobody", groups="tlssniff")
    if r.returncode != 0 or not json.loads(r.stdout)["ok"]:
        raise TestFailure(f"a group member could not read: {r.returncode} {r.stderr}")
    # Changes are not taken through the analyzer's socket, not even from root: they go to the
    # admin socket loaderd serves itself (root only, by mode and by SO_PEERCRED).
    ans = raw(sock, f"attach {os.getpid()}\n", "nobody", "tlssniff")
    if "admin socket" not in ans or '"ok":false' not in ans:
        raise TestFailure(f"a group member's attach on the control socket: {ans!r}")
    ans = harness.unix_request(sock, "reload\n")
    if "admin socket" not in ans or '"ok":false' not in ans:
        raise TestFailure(f"root's reload on the control socket was not sent elsewhere: {ans!r}")
    admin = sock + ".admin"
    st = os.stat(admin)
    if not stat.S_ISSOCK(st.st_mode) or stat.S_IMODE(st.st_mode) != 0o600 or st.st_uid != 0 \
            or st.st_gid != 0:
        raise TestFailure(f"admin socket mode {oct(st.st_mode)} owner {st.st_uid}:{st.st_gid}")
    r = ctl(sock, "attach", str(os.getpid()), user="nobody", groups="tlssniff")
    if r.returncode != 1 or "Permission denied" not in r.stderr:
        raise TestFailure(f"tlssniffctl attach as a group member: {r.returncode} {r.stderr!r}")
    # A non-root peer that reaches the socket anyway (a descriptor passed on, a mode changed)
    # is refused by loaderd from the kernel's credentials.
    os.chmod(admin, 0o666)
    ans = raw(admin, f"attach {os.getpid()}\n", "nobody", "tlssniff")
    os.chmod(admin, 0o600)
    if "only root may change" not in ans or '"ok":false' not in ans:
        raise TestFailure(f"a non-root peer on the admin socket: {ans!r}")
    # Malformed and unknown requests are refused with a reason.
    for line, why in (("status\n", "unknown request"), ("attach\n", "is needed"),
                      ("reload now\n", "no argument"), ("attach 4\x01\n", "malformed")):
        ans = harness.unix_request(admin, line)
        if why not in ans or '"ok":false' not in ans:
            raise TestFailure(f"admin socket, {line!r}: {ans!r}")
    # Raw data is for root and the data group (--data-group users here): a member of group
    # tlssniff alone is refused kind=data and gets the other kinds by default; a member of
    # the data group gets data; root too.
    ans = raw(sock, "tail kind=data\n", "nobody", "tlssniff")
    if '"ok":false' not in ans or "tlssniff-data" not in ans:
        raise TestFailure(f"tail kind=data as a member of tlssniff only: {ans!r}")
    # (exchanges are off in this test).
    for who, groups, want in (("nobody", "tlssniff", ["connections"]),
                              ("nobody", "tlssniff,users", ["data", "connections"]),
                              (None, None, ["data", "connections"])):
        line = raw(sock, "tail\n", who, groups) if who else first_answer(sock, "tail\n")
        try:
            kinds = json.loads(line)["tail"]["kinds"]
        except (ValueError, KeyError):
            raise TestFailure(f"tail as {who or 'root'} ({groups}): {line!r}")
        if sorted(kinds) != sorted(want):
            raise TestFailure(f"tail as {who or 'root'} ({groups}) gets {kinds}, not {want}")
    # A client that sends its request a byte at a time, 0.6 s apart (each gap under the old
    # per-read second), gets 1 s for the whole line, then a refusal; the analyzer counts it.
    with socket.socket(socket.AF_UNIX) as slow:
        slow.settimeout(30)
        slow.connect(sock)
        answer = b""
        try:
            for piece in (b"s", b"t", b"ats\n"):
                slow.sendall(piece)
                time.sleep(0.6)
        except OSError:
            pass  # closed by the analyzer
        while True:
            d = slow.recv(65536)
            if not d:
                break
            answer += d
    if b'"ok":false' not in answer:
        raise TestFailure(f"a client taking 1.2 s for its line was answered {answer!r}")
    harness.wait_until_stats(sock, lambda s: s.get("analyzer_control_slow_clients") == 1, 10,
                             "the slow client counted")
    # Root may: loaderd carries it out and says what it did.
    r = ctl(sock, "attach", str(os.getpid()))
    if r.returncode != 0 or f"attached process {os.getpid()}" not in r.stdout:
        raise TestFailure(f"root's attach: {r.returncode} {r.stdout!r} {r.stderr!r}")
    r = ctl(sock, "detach", "no-such-unit-here.service")
    if r.returncode != 1 or "has no cgroup" not in r.stderr:
        raise TestFailure(f"detach of a unit that does not run: {r.returncode} {r.stderr!r}")
    cap = t.stop_loaderd()
    for path in (sock, admin):
        if os.path.exists(path):
            raise TestFailure(f"{path} was not removed at exit")
    # The analyzer refused the two changes sent to it, the one tail of data and the slow
    # client's cut line (the outsider never got in); loaderd answered three (detach of the
    # idle client, attach, detach of a unit) and refused five.
    if cap.stats.get("analyzer_control_refused") != 4:
        raise TestFailure(f"refusals not counted: {cap.stats.get('analyzer_control_refused')}")
    want = {"loaderd_admin_requests": 3, "loaderd_admin_refused": 5,
            "loaderd_analyzer_changes_refused": 0}
    got = {k: cap.stats.get(k) for k in want}
    if got != want:
        raise TestFailure(f"admin counters {got}, expected {want}")
    harness.log("control socket: stats shown, outsider refused, member read-only; changes "
                "only on loaderd's admin socket, from root")


if __name__ == "__main__":
    harness.run(main)
