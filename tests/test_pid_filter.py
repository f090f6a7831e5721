#!/usr/bin/python3
# Proves: with --pid A only process A's TLS traffic is captured (exactly); another client B and
# the server produce no records. With process ids as the only targets the probes are put into
# A's memory alone (the probe scope): the server, which maps the same libssl, has no breakpoint
# in it (its libssl text has no private copy of a page), B and the server never hit a probe
# (kernel_calls_filtered 0), and `tlssniffctl attach C` gives a third process probes of its own
# and captures it exactly. A reload to a name target moves the probes into every process (the
# server's text then has the breakpoints too) and what the name selects is captured; with
# --probe-scope=all the same --pid run puts probes in every process and the target check drops
# B's and the server's calls (kernel_calls_filtered > 0).

import json
import os
import re
import signal
import subprocess
import time

import harness
from harness import TestFailure

HOST = "127.0.0.1"
CTL = harness.LOADERD.parent.parent / "analyzer" / "tlssniffctl"


def libssl_text_private_kb(pid):
    """KiB of private (copied-on-write) pages in the process's libssl text: where uprobes wrote
    their breakpoints. None if it maps no libssl text."""
    total, cur = None, False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                parts = line.split()
                cur = len(parts) >= 6 and "x" in parts[1] and "libssl.so" in parts[5]
                if cur and total is None:
                    total = 0
            elif cur and line.startswith("Anonymous:"):
                total += int(line.split()[1])
    return total


def expect_breakpoints(label, pid, present):
    kb = libssl_text_private_kb(pid)
    if kb is None:
        raise TestFailure(f"{label} (pid {pid}) maps no libssl text")
    if present and kb == 0:
        raise TestFailure(f"{label} (pid {pid}) should have probes in its libssl, but its text "
                          "has no private page")
    if not present and kb != 0:
        raise TestFailure(f"{label} (pid {pid}) should have no probe in its libssl, but {kb} KiB "
                          "of its text are private copies (breakpoints)")
    harness.log(f"{label}: {kb} KiB of its libssl text privately copied")


def check_only(cap, label, expected):
    others = sorted({(r["pid"], r["comm"]) for r in cap.records if r["pid"] not in expected})
    if others:
        raise TestFailure(f"{label}: records of processes that are not targets: {others} "
                          f"(targets {sorted(expected)})")


def check_client(cap, name, proc, results):
    for r, (payload, reply_len) in zip(results, proc.items):
        harness.check_framed_connection(cap, f"{name} connection {r['i']}", proc.pid, None, r,
                                        payload, reply_len, "ipv4")
    if len(cap.streams_of(proc.pid)) != 2 * len(proc.items):
        raise TestFailure(f"{name} has {len(cap.streams_of(proc.pid))} streams, expected "
                          f"{2 * len(proc.items)}")


def check_scope_counters(st, pids, changes, label):
    got = (st.get("loaderd_scope_pids"), st.get("loaderd_scope_changes"))
    if got != (pids, changes):
        raise TestFailure(f"{label}: loaderd_scope_pids and loaderd_scope_changes are {got}, "
                          f"expected {(pids, changes)}")


def go(proc):
    proc.stdin.write(b"go\n")
    proc.stdin.flush()


def scoped(t, cert, key):
    server, port = t.start_server("framed", cert, key, HOST)
    a = harness.spawn_client(t, "client-A", port, [(os.urandom(12000), 10000),
                                                   (os.urandom(300), 5000)], cert,
                             flags=["--wait-go"])
    c = harness.spawn_client(t, "client-C", port, [(os.urandom(2000), 3000)], cert,
                             flags=["--wait-go"])
    t.expect_line(a, "WAITING")
    t.expect_line(c, "WAITING")
    sock = str(t.tmp / "control")
    t.start_loaderd("--pid", a.pid, "--control-socket", sock)
    t.diag_pids = None  # show everything that was captured
    if not any(f"Probes in process {a.pid} only" in ln for ln in t.loaderd_err.lines):
        raise TestFailure("loaderd did not say the probes are in the target process only")
    expect_breakpoints("client A (the target)", a.pid, True)
    expect_breakpoints("the server (not a target)", server.pid, False)
    expect_breakpoints("client C (not a target yet)", c.pid, False)
    r = subprocess.run([str(CTL), "--socket", sock, "--json", "processes", str(server.pid)],
                       capture_output=True, text=True, timeout=30)
    p = json.loads(r.stdout)["processes"]["list"] if r.returncode == 0 else None
    if not p or p[0]["traced"] or "no probe is in its memory" not in p[0]["reason"]:
        raise TestFailure(f"tlssniffctl processes {server.pid}: {r.returncode} {p} "
                          f"{r.stderr!r}")
    go(a)
    res_a = harness.client_results(t, a)
    b = harness.spawn_client(t, "client-B", port, [(os.urandom(9000), 7000),
                                                   (os.urandom(400), 600)], cert)
    harness.client_results(t, b)

    r = subprocess.run([str(CTL), "--socket", sock, "attach", str(c.pid)], capture_output=True,
                       text=True, timeout=30)
    if r.returncode != 0 or f"attached process {c.pid}" not in r.stdout:
        raise TestFailure(f"tlssniffctl attach {c.pid}: {r.returncode} {r.stdout!r} "
                          f"{r.stderr!r}")
    expect_breakpoints("client C (attached)", c.pid, True)
    expect_breakpoints("the server (still not a target)", server.pid, False)
    go(c)
    res_c = harness.client_results(t, c)
    t.stop_server(server)
    cap = t.stop_loaderd()

    check_client(cap, "client A", a, res_a)
    check_client(cap, "client C", c, res_c)
    check_only(cap, f"--pid {a.pid} and attach {c.pid}", {a.pid, c.pid})
    st = cap.stats or {}
    if st.get("kernel_calls_filtered") != 0 or st.get("kernel_returns_filtered", 0) != 0:
        raise TestFailure(f"processes that are not targets hit probes: "
                          f"kernel_calls_filtered {st.get('kernel_calls_filtered')}, "
                          f"kernel_returns_filtered {st.get('kernel_returns_filtered')}")
    check_scope_counters(st, 2, 0, "C attached (an addition, not a change)")
    harness.log(f"probes in A then C only: both captured exactly, B ({b.pid}) and the server "
                f"never hit a probe")


def reload_to_names(t, cert, key):
    """Reloads that move the probes between A's memory alone and every process while A is in
    the middle of a stream of exchanges: each move attaches the new probes before the old ones
    go (one spec epoch to the next) and switches the filters from one generation to the next at
    one instant (changing them key by key lost calls of A in between), and A's bytes are
    captured exactly, none lost or doubled."""
    server, port = t.start_server("framed", cert, key, HOST)
    exchanges = [(os.urandom(20000), 15000) for _ in range(400)]
    a = harness.spawn_client(t, "client-A2", port, [(*exchanges[0], exchanges[1:])], cert,
                             flags=["--wait-go", "--pause", "0.01"])
    t.expect_line(a, "WAITING")
    conf = t.tmp / "scope.conf"
    by_pid, by_name = f"[targets]\npid = {a.pid}\n", "[targets]\ncomm = python3\n"
    conf.write_text(by_pid)
    t.start_loaderd("--config", str(conf))
    expect_breakpoints("the server (not a target)", server.pid, False)
    go(a)
    reloads = 12
    for i in range(reloads):
        conf.write_text(by_name if i % 2 == 0 else by_pid)
        t.loaderd.send_signal(signal.SIGHUP)
        harness.wait_until(lambda: sum("Reloaded the configuration" in ln
                                       for ln in t.loaderd_err.lines) == i + 1, 20,
                           f"reload {i + 1}")
        time.sleep(0.02)
    if a.poll() is not None:
        raise TestFailure("client A2 ended before the reloads did: the moves were not made "
                          "under traffic")
    if not any("Probes in every process" in ln for ln in t.loaderd_err.lines):
        raise TestFailure("after a reload to a name target loaderd did not say the probes are "
                          "in every process")
    res_a = harness.client_results(t, a)
    # The last reload was to a name: the server (python3) is a target again.
    conf.write_text(by_name)
    t.loaderd.send_signal(signal.SIGHUP)
    harness.wait_until(lambda: sum("Reloaded the configuration" in ln
                                   for ln in t.loaderd_err.lines) == reloads + 1, 20,
                       "the last reload")
    expect_breakpoints("the server (a target by name)", server.pid, True)
    t.stop_server(server)
    cap = t.stop_loaderd()
    r = res_a[0]
    local, remote = r["local"][1], r["remote"][1]
    for direction, expected in (
            ("write", b"".join(harness.framed_request(p, n) for p, n in exchanges)),
            ("read", b"".join(harness.framed_reply(p, n) for p, n in exchanges))):
        ss = cap.find_stream_by_ports(a.pid, direction, local, remote)
        if len(ss) != 1 or ss[0].data != expected or ss[0].problems:
            raise TestFailure(f"client A2 {direction} across {reloads} moves of the probes: "
                              f"{[x.describe() for x in ss]}, expected one stream of exactly "
                              f"{len(expected)} B")
    st = cap.stats or {}
    check_scope_counters(st, 0, reloads + 1, "after the reloads")
    harness.log(f"{reloads} moves of the probes under traffic: client A2's "
                f"{len(exchanges)} exchanges captured exactly")


# One connection whose client is blocked in SSL_read while the probes move. Client: connect,
# "READY", wait for "go" on stdin, send a request, read the reply (blocked until the server
# sends it), then write once more ("after": its entry finds the read's frame gone) and read the
# "ok". Server: the request, "REQ", wait for "reply" on stdin, the reply, "after", "ok".
MID_READ = r"""
import os, socket, ssl, sys
role, arg, cert = sys.argv[1], sys.argv[2], sys.argv[3]
def line(s):
    print(s, flush=True)
def recv_exact(c, n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d:
            raise SystemExit("short read")
        b += d
    return b
if role == "server":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, sys.argv[4])
    ls = socket.create_server(("127.0.0.1", 0))
    line(f"LISTENING {ls.getsockname()[1]}")
    c = ctx.wrap_socket(ls.accept()[0], server_side=True)
    recv_exact(c, 7)
    line("REQ")
    sys.stdin.readline()
    c.sendall(open(arg, "rb").read())
    recv_exact(c, 5)
    c.sendall(b"ok")
    c.close()
else:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cert)
    ctx.check_hostname = False
    line("WAITING")
    sys.stdin.readline()
    c = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(arg))))
    c.sendall(b"request")
    reply = recv_exact(c, int(sys.argv[4]))
    c.sendall(b"after")
    recv_exact(c, 2)
    line(f"GOT {len(reply)}")
    c.close()
"""


def moved_mid_read(t, cert, key):
    """A read in progress while the probes move, with entry and return probes (the fallback
    placement) as uprobe sessions: the kernel reports a session's return only to the set whose
    entry saw the call, and that set is detached by then, so the read's bytes cannot be captured;
    the loss is counted (kernel_lost_returns, or kernel_calls_interrupted if the thread ended
    first), never silent."""
    reply = os.urandom(3000)
    script = t.write_file("midread.py", MID_READ.encode())
    srv = t.spawn([harness.PYTHON, script, "server", t.write_file("reply.bin", reply), cert, key],
                  name="midread-server")
    srv.out = harness.ByteReader(srv.stdout, "midread-server stdout")
    port = t.expect_line(srv, "LISTENING ")
    cli = t.spawn([harness.PYTHON, script, "client", port, cert, str(len(reply))],
                  name="midread-client")
    cli.out = harness.ByteReader(cli.stdout, "midread-client stdout")
    t.expect_line(cli, "WAITING")
    conf = t.tmp / "midread.conf"
    conf.write_text(f"[targets]\npid = {cli.pid}\n")
    t.start_loaderd("--config", str(conf), "--placement", "fallback")
    expect_breakpoints("the mid-read client", cli.pid, True)
    go(cli)
    t.expect_line(srv, "REQ")
    harness.wait_until(lambda: harness.blocked_in_io(cli.pid), 30,
                       "the client to wait in SSL_read")
    conf.write_text("[targets]\ncomm = python3\n")
    t.loaderd.send_signal(signal.SIGHUP)
    harness.wait_until(lambda: any("Probes in every process" in ln
                                   for ln in t.loaderd_err.lines), 20,
                       "the move of the probes into every process")
    srv.stdin.write(b"reply\n")
    srv.stdin.flush()
    if int(t.expect_line(cli, "GOT ")) != len(reply):
        raise TestFailure("the mid-read client did not get the whole reply")
    t.wait_proc(cli)
    t.wait_proc(srv)
    cap = t.stop_loaderd()
    st = cap.stats or {}
    got = b"".join(s.data for s in cap.streams_of(cli.pid, "read"))
    counted = st.get("kernel_lost_returns", 0) + st.get("kernel_calls_interrupted", 0)
    if reply in got:
        harness.log("the read in progress during the move was captured")
    elif counted < 1:
        raise TestFailure(f"the reply read while the probes moved is not in the capture "
                          f"({len(got)} B read captured) and no loss is counted: {st}")
    else:
        harness.log(f"the read in progress during the move was lost and counted "
                    f"(kernel_lost_returns {st.get('kernel_lost_returns', 0)}, "
                    f"kernel_calls_interrupted {st.get('kernel_calls_interrupted', 0)})")


def scope_all(t, cert, key):
    server, port = t.start_server("framed", cert, key, HOST)
    a = harness.spawn_client(t, "client-A3", port, [(os.urandom(3000), 2000)], cert,
                             flags=["--wait-go"])
    t.expect_line(a, "WAITING")
    t.start_loaderd("--pid", a.pid, "--probe-scope=all")
    expect_breakpoints("the server (not a target, probes everywhere)", server.pid, True)
    go(a)
    res_a = harness.client_results(t, a)
    b = harness.spawn_client(t, "client-B3", port, [(os.urandom(900), 700)], cert)
    harness.client_results(t, b)
    t.stop_server(server)
    cap = t.stop_loaderd()
    check_client(cap, "client A3", a, res_a)
    check_only(cap, f"--pid {a.pid} --probe-scope=all", {a.pid})
    st = cap.stats or {}
    if not st.get("kernel_calls_filtered", 0) > 0:
        raise TestFailure(f"--probe-scope=all: B's and the server's calls should hit the "
                          f"probes and be filtered, kernel_calls_filtered "
                          f"{st.get('kernel_calls_filtered')}")
    harness.log(f"--probe-scope=all: {st['kernel_calls_filtered']} calls of other processes "
                "filtered by the programs")


def missing_process(t):
    """A pid that is not running: said at start, not silently ignored."""
    gone = t.spawn(["/bin/true"], name="true")
    t.wait_proc(gone, 10)
    t.start_loaderd("--pid", gone.pid)
    want = f"Target process {gone.pid} does not exist"
    if not any(want in ln for ln in t.loaderd_err.lines):
        raise TestFailure(f"--pid of a process that exited: no warning '{want}'")
    t.stop_loaderd()
    harness.log(f"--pid {gone.pid} (exited): warned")


def main(t):
    cert, key = t.make_cert()
    missing_process(t)
    scoped(t, cert, key)
    reload_to_names(t, cert, key)
    moved_mid_read(t, cert, key)
    scope_all(t, cert, key)


if __name__ == "__main__":
    harness.run(main)
