#!/usr/bin/python3
# Proves: processes killed inside SSL_write and SSL_read are counted (kernel_calls_interrupted, with the fallback placement's entry and return probes; on OpenSSL's copies nothing is in progress, and a killed writer's stream is a prefix of what it wrote) and disturb nothing after them; processes that map a library and exit while tlssniff starts and attaches do not stop the library from being probed; a library replaced on disk (a new file renamed over it) while a process still maps the old one is captured exactly in both the old and the new process.

import glob
import json
import os
import shutil
import signal
import subprocess

import harness
from harness import TestFailure

HOST = "127.0.0.1"

# A TLS server that accepts connections and neither reads nor writes until stdin closes.
SILENT_SERVER_PY = r"""
import socket, ssl, sys, threading
cert, key = sys.argv[1:3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(8)
print("LISTENING", ls.getsockname()[1], flush=True)
conns = []
def serve():
    while True:
        c, _ = ls.accept()
        conns.append(ctx.wrap_socket(c, server_side=True))
threading.Thread(target=serve, daemon=True).start()
sys.stdin.read()
"""

# A client stuck inside SSL_write (mode write: the server never reads) or SSL_read (mode read).
STUCK_CLIENT_PY = r"""
import socket, ssl, sys
port, mode = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
print("CONNECTED", flush=True)
if mode == "write":
    s.sendall(b"x" * (64 << 20))
else:
    s.recv(1)
"""

# Maps a library with dlopen and exits at once.
MAP_AND_EXIT_PY = r"""
import ctypes, sys
ctypes.CDLL(sys.argv[1])
"""


def stats_now(t):
    """The kernel counters as the analyzer last had them, through tlssniffctl --json."""
    ctl = harness.LOADERD.parent.parent / "analyzer" / "tlssniffctl"
    r = subprocess.run([str(ctl), "--socket", str(t.tmp / "control"), "--json", "stats"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    if r.returncode != 0:
        raise TestFailure(f"tlssniffctl stats failed: {r.stderr.decode(errors='replace')}")
    return json.loads(r.stdout)["stats"]


def exchange(t, name, port, cert, env=None, size=20000):
    payload = os.urandom(size)
    client = harness.spawn_client(t, name, port, [(payload, size + 17)], cert, env=env)
    results = harness.client_results(t, client)
    return client, results[0], payload, size + 17


def killed_mid_call(t, cert, key, want):
    t.write_file("silent.py", SILENT_SERVER_PY.encode())
    t.write_file("stuck.py", STUCK_CLIENT_PY.encode())
    server = t.spawn([harness.PYTHON, t.tmp / "silent.py", cert, key], name="silent-server")
    server.out = harness.ByteReader(server.stdout, server.name)
    port = int(t.expect_line(server, "LISTENING"))
    stuck = []
    for mode in ("write", "read"):
        p = t.spawn([harness.PYTHON, t.tmp / "stuck.py", port, mode], name=f"stuck-{mode}")
        p.out = harness.ByteReader(p.stdout, p.name)
        t.expect_line(p, "CONNECTED", 20)
        stuck.append(p)
    # Both are inside SSL_write_ex / SSL_read_ex once they sleep in the socket's write or read.
    for p in stuck:
        harness.wait_until(lambda: harness.blocked_in_io(p.pid) or p.poll() is not None, 30,
                           f"{p.name} to block in its TLS call")
    for p in stuck:
        if p.poll() is not None:
            raise TestFailure(f"{p.name} exited ({p.returncode}) instead of blocking")
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
    server.stdin.close()
    t.wait_proc(server, 10)
    harness.wait_until(lambda: stats_now(t).get("kernel_calls_interrupted", 0) >= want, 10,
                       f"kernel_calls_interrupted >= {want} after killing the stuck clients")
    return stuck


def exit_while_attaching(t, libdir, copy):
    """Starts 40 processes that map a private libssl copy and exit at once; returns them."""
    t.write_file("mapexit.py", MAP_AND_EXIT_PY.encode())
    churn = [t.spawn([harness.PYTHON, t.tmp / "mapexit.py", copy], name=f"mapexit-{i}",
                     env={"LD_LIBRARY_PATH": str(libdir)}) for i in range(40)]
    return churn


def main(t):
    cert, key = t.make_cert()
    lib = sorted(glob.glob("/usr/lib/x86_64-linux-gnu/libssl.so.3") +
                 glob.glob("/usr/lib/*/libssl.so.3"))[0]
    libdir = t.tmp / "libcopy"
    libdir.mkdir()
    copy = libdir / "libssl.so.3"
    shutil.copy2(lib, copy)

    # Processes that map the copy and exit while loaderd starts, discovers and attaches.
    churn = exit_while_attaching(t, libdir, copy)
    t.start_loaderd()
    churn += exit_while_attaching(t, libdir, copy)
    for p in churn:
        t.wait_proc(p, 30)

    server, port = t.start_server("framed", cert, key, HOST)

    # A process using the copy: captured although every earlier mapper exited around attach.
    old_inode = os.stat(copy).st_ino
    old = harness.spawn_client(t, "old-lib", port, [(os.urandom(30000), 40000)], cert,
                               flags=["--wait-go", "--connect-before-go"],
                               env={"LD_LIBRARY_PATH": str(libdir)})
    t.expect_line(old, "WAITING", 20)
    maps = harness.maps_of(old.pid)
    if str(copy) not in maps:
        raise TestFailure(f"the client does not map the copy {copy}")

    # Replace the library on disk the way a package upgrade does: new file, renamed over it.
    shutil.copy2(lib, libdir / "libssl.so.3.new")
    os.rename(libdir / "libssl.so.3.new", copy)
    if os.stat(copy).st_ino == old_inode:
        raise TestFailure("the replacement has the same inode (setup problem)")
    new = harness.spawn_client(t, "new-lib", port, [(os.urandom(25000), 35000)], cert,
                               flags=["--wait-go", "--connect-before-go"],
                               env={"LD_LIBRARY_PATH": str(libdir)})
    t.expect_line(new, "WAITING", 20)
    # A library no process mapped before is probed a few ms after the first process maps it
    # (docs/design.md): let that happen before the new process starts its exchange.
    t.wait_attached(copy, times=2)
    for p in (old, new):
        p.stdin.write(b"go\n")
        p.stdin.flush()
    old_res = harness.client_results(t, old)
    new_res = harness.client_results(t, new)

    # With reads on OpenSSL's copy to the caller and writes on its copy into the record
    # (docs/design.md; the system libssl3 here) no call is in progress to lose: a probe fires
    # only when bytes are delivered or a record is built. The entry and return probes of the
    # fallback placement count both (checked at the end, with a loaderd of its own).
    attached3 = [ln for ln in t.loaderd_err.lines if "Attached" in ln and 'says "libssl.so.3;' in ln]
    copy_reads = any("reads copy" in ln for ln in attached3)
    copy_writes = any("writes copy" in ln for ln in attached3)
    want = 0 if copy_writes else 1 if copy_reads else 2
    stuck = killed_mid_call(t, cert, key, want)

    # After all that, a normal exchange through the system libssl.
    after = harness.spawn_client(t, "after", port, [(os.urandom(12345), 23456)], cert)
    after_res = harness.client_results(t, after)
    t.stop_server(server)
    cap = t.stop_loaderd()

    for proc, res in ((old, old_res), (new, new_res), (after, after_res)):
        payload, reply_len = proc.items[0][0], proc.items[0][1]
        harness.check_framed_connection(cap, proc.name, proc.pid, server.pid, res[0], payload,
                                        reply_len, "ipv4")
    stats = cap.stats or {}
    if stats.get("kernel_calls_interrupted", 0) < want:
        raise TestFailure(f"kernel_calls_interrupted = {stats.get('kernel_calls_interrupted')}, "
                          f"expected >= {want}")
    for p in stuck:
        if cap.streams_of(p.pid, "read"):
            raise TestFailure(f"{p.name}: a read stream was captured, but the silent server "
                              "never sent anything")
    for k in ("kernel_unmatched_returns", "kernel_drop_entries", "loaderd_files_failed"):
        if stats.get(k, 0) != 0:
            raise TestFailure(f"{k} = {stats[k]}, expected 0")
    for p in stuck:
        streams = cap.streams_of(p.pid, "write")
        if not copy_writes and streams:
            raise TestFailure(f"{p.name}: a write stream was captured for a call that never "
                              "returned")
        # On the copy: the records built before the kill, from the start of the stream, and
        # nothing but what the client wrote.
        for st in streams:
            data = st.data
            if st.problems or not data or data != b"x" * len(data) or len(data) > 64 << 20:
                raise TestFailure(f"{p.name}: the write stream of the killed writer is not a "
                                  f"prefix of what it wrote ({len(data)} B)")
    if copy_writes and not any(cap.streams_of(p.pid, "write") for p in stuck):
        raise TestFailure("the records the killed writer built were not captured")
    attached = [ln for ln in t.loaderd_err.lines if "Attached" in ln and str(copy) in ln]
    if len(attached) < 2:
        raise TestFailure(f"expected the old and the new file under {copy} to be probed: "
                          f"{attached}")
    harness.log(f"old and new library captured; {stats['kernel_calls_interrupted']} calls "
                f"interrupted by SIGKILL counted; {len(churn)} short-lived mappers came and went")

    # The entry and return probes of the fallback placement: both killed calls are in progress
    # when their processes die, and are counted; neither leaves a stream.
    t.start_loaderd("--placement", "fallback")
    stuck = killed_mid_call(t, cert, key, 2)
    cap = t.stop_loaderd()
    stats = cap.stats or {}
    if stats.get("kernel_calls_interrupted", 0) < 2:
        raise TestFailure(f"fallback: kernel_calls_interrupted = "
                          f"{stats.get('kernel_calls_interrupted')}, expected >= 2 (one killed "
                          "in SSL_write, one in SSL_read)")
    for p in stuck:
        if cap.streams_of(p.pid, "write") or cap.streams_of(p.pid, "read"):
            raise TestFailure(f"fallback: {p.name}: a stream was captured for a call that "
                              "never returned")


if __name__ == "__main__":
    harness.run(main)
