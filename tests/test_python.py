#!/usr/bin/python3
# Proves: python3 ssl clients are captured byte-exact — started before tlssniff, loading libssl by dlopen after it, started after it, and over IPv6 (::1) — with the raw sys_enter/sys_exit hooks (--syscall-hooks raw; test_concurrent uses the per-call system call tracepoints, every other test the socket tracepoints), which socket identity and dlopen discovery depend on.

import os
import shutil
import subprocess

import harness
from harness import TestFailure


def system_libssl():
    """The libssl file /usr/bin/python3's ssl module maps."""
    r = subprocess.run([harness.PYTHON, "-c",
                        "import ssl; print([l.split()[5] for l in open('/proc/self/maps') "
                        "if 'libssl' in l and len(l.split()) == 6][0])"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    if r.returncode != 0:
        raise TestFailure("cannot find libssl of /usr/bin/python3: " + r.stderr.decode())
    return r.stdout.decode().strip()


def main(t):
    cert, key = t.make_cert()
    # The dlopen client loads a private copy of libssl (a file no process maps yet), so
    # tlssniff must discover it when it is loaded, not at start.
    libdir = t.tmp / "libcopy"
    libdir.mkdir()
    lib = system_libssl()
    copy = libdir / os.path.basename(lib)
    shutil.copy2(lib, copy)

    server4, port4 = t.start_server("framed", cert, key, "127.0.0.1")
    server6, port6 = t.start_server("framed", cert, key, "::1")

    cases = {
        # name: (payload, reply_len) — large single calls: sendall() moves each in one
        # SSL_write_ex, recv() of the reply reads in calls of up to 1 MiB.
        "pre": (os.urandom(1024 * 1024), 300 * 1024),
        "dlopen": (os.urandom(50000), 1024 * 1024 + 7),
        "late": (os.urandom(100), 1),
        "ipv6": (os.urandom(20000), 40000),
    }

    pre = harness.spawn_client(t, "pre", port4, [cases["pre"]], cert, flags=["--wait-go"])
    t.expect_line(pre, "WAITING")
    dl = harness.spawn_client(t, "dlopen", port4, [cases["dlopen"]], cert,
                              flags=["--wait-go", "--late-import", "--wait-after-import"],
                              env={"LD_LIBRARY_PATH": str(libdir)})
    t.expect_line(dl, "WAITING")
    if "libssl" in harness.maps_of(dl.pid):
        raise TestFailure("the dlopen client maps libssl before it imports ssl")

    t.start_loaderd("--syscall-hooks", "raw")
    if not any("raw sys_enter/sys_exit" in ln for ln in t.loaderd_err.lines):
        raise TestFailure("--syscall-hooks raw did not select the raw tracepoints")
    t.diag_pids = {pre.pid, dl.pid, server4.pid, server6.pid}

    pre.stdin.write(b"go\n")
    pre.stdin.flush()
    res_pre = harness.client_results(t, pre)

    dl.stdin.write(b"go\n")
    dl.stdin.flush()
    imported = t.expect_line(dl, "IMPORTED")
    if imported != str(copy):
        raise TestFailure(f"the dlopen client mapped {imported!r}, not the copy {copy}")
    # tlssniff learns of the new mapping asynchronously and must analyse a file it has never
    # seen (docs/design.md, "Finding files"): the first TLS call waits for the probes, whatever
    # the machine's speed, instead of a fixed time.
    t.wait_attached(copy, timeout=60)
    dl.stdin.write(b"go\n")
    dl.stdin.flush()
    res_dl = harness.client_results(t, dl)

    late = harness.spawn_client(t, "late", port4, [cases["late"]], cert)
    res_late = harness.client_results(t, late)
    v6 = harness.spawn_client(t, "ipv6", port6, [cases["ipv6"]], cert, host="::1")
    res_v6 = harness.client_results(t, v6)
    t.diag_pids |= {late.pid, v6.pid}

    t.stop_server(server4)
    t.stop_server(server6)
    cap = t.stop_loaderd()

    failures = []
    for name, proc, res, server, family in (
            ("client started before tlssniff", pre, res_pre, server4, "ipv4"),
            ("client that dlopens libssl after tlssniff started", dl, res_dl, server4, "ipv4"),
            ("client started after tlssniff", late, res_late, server4, "ipv4"),
            ("IPv6 client on ::1", v6, res_v6, server6, "ipv6")):
        payload, reply_len = cases[proc.name]
        try:
            streams = harness.check_framed_connection(cap, name, proc.pid, server.pid, res[0],
                                                      payload, reply_len, family)
            harness.log(f"OK {name}: " + "; ".join(s.describe() for s in streams[:2]))
        except TestFailure as e:
            harness.log(f"FAILED {name}")
            failures.append(str(e))
    # Each client process made one connection: nothing else may be attributed to it.
    for proc in (pre, dl, late, v6):
        n = len(cap.streams_of(proc.pid))
        if n != 2:
            failures.append(f"{proc.name} client pid {proc.pid} has {n} streams, expected 2")
    if res_v6[0]["local"][0] != "::1":
        failures.append(f"IPv6 client's local address is {res_v6[0]['local']}")
    if failures:
        raise TestFailure(f"{len(failures)} problem(s):\n" + "\n".join(failures))


if __name__ == "__main__":
    harness.run(main)
