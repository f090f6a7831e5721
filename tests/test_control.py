#!/usr/bin/python3
# Proves: the control socket is 0660 root:tlssniff; `tlssniffctl stats` shows the counters of a
# capture made after tlssniff started (calls, bytes, and every loss counter); a user outside the
# tlssniff group is refused, a group member may read but not attach, root attaches a process.

import json
import os
import socket
import stat
import subprocess
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
    code = ("import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
            "s.sendall(sys.argv[2].encode()); print(s.recv(65536).decode(), end='')")
    argv = ["setpriv", f"--reuid={user}", "--regid=nogroup", f"--groups={groups}",
            "/usr/bin/python3", "-c", code, sock, request]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout


def main(t):
    cert, key = t.make_cert()
    sock = str(t.tmp / "control")
    t.start_loaderd("--control-socket", sock)
    st = os.stat(sock)
    if not stat.S_ISSOCK(st.st_mode) or stat.S_IMODE(st.st_mode) != 0o660 or st.st_uid != 0 \
            or st.st_gid != grp.getgrnam("tlssniff").gr_gid:
        raise TestFailure(f"control socket mode {oct(st.st_mode)} owner {st.st_uid}:{st.st_gid}")

    server, port = t.start_server("framed", cert, key, HOST)
    c = harness.spawn_client(t, "client", port, [(os.urandom(5000), 7000)], cert)
    harness.client_results(t, c)
    t.stop_server(server)
    import time
    time.sleep(1.5)  # counters reach the analyzer once a second

    r = ctl(sock, "--json", "stats")
    if r.returncode != 0:
        raise TestFailure(f"tlssniffctl stats failed ({r.returncode}): {r.stderr}")
    stats = json.loads(r.stdout)["stats"]
    if stats.get("kernel_calls", 0) < 4 or stats.get("kernel_bytes", 0) < 2 * (5008 + 7000):
        raise TestFailure(f"stats do not show the capture: {stats}")
    for k in ("kernel_drop_ringbuf_bytes", "kernel_truncated_bytes",
              "kernel_drop_read_fail_bytes", "loaderd_backlog_bytes", "analyzer_records_bad"):
        if k not in stats:
            raise TestFailure(f"stats lack {k}")
    # processes: the libssl the python peers use, with its placement, attached; the table
    # form for people names it too. A group member may read it.
    r = ctl(sock, "--json", "processes")
    if r.returncode != 0:
        raise TestFailure(f"tlssniffctl processes failed ({r.returncode}): {r.stderr}")
    procs = json.loads(r.stdout)["processes"]
    ssl = [p for p in procs["list"] if p["library"].startswith("libssl.so")]
    if not ssl or ssl[0]["state"] != "attached" or ssl[0]["probes"] < 4 or \
            "SSL_read" not in ssl[0]["reason"] or procs["files_analyzed"] < 1:
        raise TestFailure(f"tlssniffctl processes: {procs}")
    r = ctl(sock, "processes", user="nobody", groups="tlssniff")
    if r.returncode != 0 or "libssl.so" not in r.stdout or "attached" not in r.stdout:
        raise TestFailure(f"tlssniffctl processes as a group member: {r.returncode} "
                          f"{r.stdout} {r.stderr}")
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
    ans = raw(sock, f"attach {os.getpid()}\n", "nobody", "tlssniff")
    if "only root may change" not in ans:
        raise TestFailure(f"a group member's attach was not refused: {ans!r}")
    r = ctl(sock, "attach", str(os.getpid()), user="nobody", groups="tlssniff")
    if r.returncode != 1 or "only root" not in r.stderr:
        raise TestFailure(f"tlssniffctl attach as a group member: {r.returncode} {r.stderr!r}")
    # Root may: loaderd carries it out and says what it did.
    r = ctl(sock, "attach", str(os.getpid()))
    if r.returncode != 0 or f"attached process {os.getpid()}" not in r.stdout:
        raise TestFailure(f"root's attach: {r.returncode} {r.stdout!r} {r.stderr!r}")
    r = ctl(sock, "detach", "no-such-unit-here.service")
    if r.returncode != 1 or "has no cgroup" not in r.stderr:
        raise TestFailure(f"detach of a unit that does not run: {r.returncode} {r.stderr!r}")
    cap = t.stop_loaderd()
    if os.path.exists(sock):
        raise TestFailure("the control socket was not removed at exit")
    if cap.stats.get("analyzer_control_refused", 0) < 2:
        raise TestFailure(f"refusals not counted: {cap.stats.get('analyzer_control_refused')}")
    harness.log("control socket: stats shown, outsider refused, member read-only, root admin")


if __name__ == "__main__":
    harness.run(main)
