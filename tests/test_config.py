#!/usr/bin/python3
# Proves: the configuration file (tlssniff.conf(5)) sets targets and output; a bad file is
# refused with its line number (exit 2, never Ready) and --check-config says so; command-line
# targets replace the file's; a reload (SIGHUP or `reload` on the control socket) with a bad
# file keeps the running configuration and says so, with a good one changes targets and the
# redaction live; a systemd unit given as target is found once its cgroup appears; `attach`
# and `detach` from root trace an otherwise filtered process and stop tracing another.

import json
import os
import signal
import subprocess
import time

import harness
from harness import TestFailure

HOST = "127.0.0.1"

BAD = [
    ("[targets]\ncomm = curl\n[output]\njson = maybe\n", 4, "json: 'maybe' is not yes or no"),
    ("[targets]\n\n# comment\nbogus = 1\n", 4, "unknown key 'bogus'"),
    ("[nonsense]\n", 1, "unknown section [nonsense]"),
    ("[output]\ncomm = curl\n", 2, "'comm' belongs in [targets], not [output]"),
    ("comm = curl\n", 1, "before any [section]"),
    ("[capture]\nringbuf-size = 3M\n", 2, "not a power of two"),
    ("[targets]\nunit = nginx\n", 2, "not a unit name"),
    ("[capture]\ncall-cap\n", 2, "expected key = value"),
    ("[targets]\ncomm = " + "x" * 20 + "\n", 2, "not 1..15 characters"),
    ("[redaction]\nredact-header = bad header\n", 2, "not a header name"),
]


def control(sock, line):
    """One request on the control socket; changes (attach, detach, reload) on loaderd's admin
    socket beside it, where tlssniffctl sends them."""
    if line.split(" ")[0].strip() in ("attach", "detach", "reload"):
        sock += ".admin"
    return json.loads(harness.unix_request(sock, line))


def bad_files(t):
    for i, (text, line, what) in enumerate(BAD):
        path = t.write_file(f"bad{i}.conf", text.encode())
        r = subprocess.run([str(harness.LOADERD), "--config", path, "--check-config"],
                           capture_output=True, text=True, timeout=30)
        want = f"{path}:{line}: "
        if r.returncode != 2 or want not in r.stderr or what not in r.stderr:
            raise TestFailure(f"--check-config on {text!r}: exit {r.returncode}, stderr "
                              f"{r.stderr!r}; wanted {want!r} and {what!r}")
        # Starting with it fails the same way, before loading anything.
        r = subprocess.run([str(harness.LOADERD), "--config", path, "--log-target", "stderr",
                            "--control-socket", ""], capture_output=True, text=True, timeout=30)
        if r.returncode != 2 or want not in r.stderr or "Ready" in r.stderr:
            raise TestFailure(f"starting with {text!r}: exit {r.returncode}, {r.stderr!r}")
    good = t.write_file("good.conf", b"[targets]\ncomm = curl\nunit = a.service\n[output]\n"
                        b"json = yes\nexchanges = yes\n[redaction]\nredact-header = X-Api-Key\n")
    r = subprocess.run([str(harness.LOADERD), "--config", good, "--check-config"],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0 or "is good" not in r.stdout:
        raise TestFailure(f"--check-config on a good file: {r.returncode} {r.stdout!r}")
    r = subprocess.run([str(harness.LOADERD), "--config", str(t.tmp / "missing.conf")],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 2 or "No such file" not in r.stderr:
        raise TestFailure(f"a missing --config file: {r.returncode} {r.stderr!r}")
    harness.log(f"{len(BAD)} bad files refused with their line numbers")


def python_client(t, name, port, cert, size=900):
    return harness.spawn_client(t, name, port, [(os.urandom(size), size + 100)], cert)


def reload_and_overrides(t, cert, key):
    conf = t.tmp / "tlssniff.conf"
    conf.write_text("[targets]\ncomm = nomatch\n")
    sock = str(t.tmp / "control")
    # The file's target (nomatch) is replaced by the command line's: python3 clients are traced.
    t.start_loaderd("--config", str(conf), "--exchanges", "--comm", "python3")
    server, port = t.start_server("framed", cert, key, HOST)
    a = python_client(t, "a", port, cert)
    harness.client_results(t, a)

    # A bad file on SIGHUP: refused with its line, the running targets stay.
    conf.write_text("[targets]\ncomm = curl\n\n[output]\nmax-print = lots\n")
    t.loaderd.send_signal(signal.SIGHUP)
    t.loaderd_err.wait_for(f"Reload failed, the running configuration is kept: {conf}:5: "
                           "max-print", 20, t.loaderd)
    b = python_client(t, "b", port, cert)
    harness.client_results(t, b)
    # The same through the control socket: the answer carries the reason.
    ans = control(sock, "reload\n")
    if ans.get("ok") or f"{conf}:5:" not in ans.get("error", ""):
        raise TestFailure(f"reload of a bad file through the control socket: {ans}")

    # A good file: the command line's --comm python3 still replaces the file's targets, so
    # curl stays untraced.
    conf.write_text("[targets]\ncomm = curl\n[redaction]\nredact-header = X-Api-Key\n")
    ans = control(sock, "reload\n")
    if not ans.get("ok") or "reloaded" not in ans.get("result", ""):
        raise TestFailure(f"reload of a good file: {ans}")
    t.stop_server(server)
    t.write_file("body.bin", os.urandom(300))
    http, hport = t.start_server("http", cert, key, HOST)
    curl = t.spawn(["curl", "-k", "--http1.1", "-sS", "--max-time", "30", "-o", os.devnull,
                    "-H", "X-Api-Key: topsecret-123", "-H", "X-Other: visible-456",
                    f"https://{HOST}:{hport}/redact"], name="curl")
    t.wait_proc(curl, 40)

    # attach/detach: a waiting python client is detached (not traced), then one attached
    # while the targets (python3) would take it anyway is traced; curl is not a target.
    server2, port2 = t.start_server("framed", cert, key, HOST)
    d = harness.spawn_client(t, "detached", port2, [(os.urandom(700), 800)], cert,
                             flags=["--wait-go"])
    t.expect_line(d, "WAITING")
    ans = control(sock, f"detach {d.pid}\n")
    if not ans.get("ok") or f"detached process {d.pid}" not in ans.get("result", ""):
        raise TestFailure(f"detach: {ans}")
    d.stdin.write(b"go\n")
    d.stdin.flush()
    harness.client_results(t, d)
    curl2 = t.spawn(["curl", "-k", "--http1.1", "-sS", "--max-time", "30", "-o", os.devnull,
                     f"https://{HOST}:{hport}/not-a-target"], name="curl2")
    t.wait_proc(curl2, 40)
    ans = control(sock, "attach 999999999\n")
    if ans.get("ok") or "no process" not in ans.get("error", ""):
        raise TestFailure(f"attach of a missing process: {ans}")
    ans = control(sock, "attach no-such-unit-xyz.service\n")
    if ans.get("ok") or "has no cgroup" not in ans.get("error", ""):
        raise TestFailure(f"attach of a unit that is not running: {ans}")
    t.stop_server(server2)
    t.stop_server(http)
    cap = t.stop_loaderd()

    cap.find_stream(a.pid, "write", harness.framed_request(a.items[0][0], a.items[0][1]),
                    "client a (before the reloads)")
    cap.find_stream(b.pid, "write", harness.framed_request(b.items[0][0], b.items[0][1]),
                    "client b (after the bad reload: targets kept)")
    if any(r["pid"] == d.pid for r in cap.records):
        raise TestFailure("the detached client was captured")
    if any(r["pid"] == curl2.pid for r in cap.records):
        raise TestFailure("curl was captured although the command line's targets are python3")
    # The python3 server is a target: its side of curl's request shows the new redaction.
    ex = [x for x in cap.other if x.get("type") == "exchange" and x.get("path") == "/redact"]
    if [x["pid"] for x in ex] != [http.pid]:
        raise TestFailure(f"exchanges of /redact: {ex} (server {http.pid}, curl {curl.pid})")
    hdrs = {k.lower(): v for k, v in ex[0]["request_headers"]}
    if hdrs.get("x-api-key") != "[redacted]" or hdrs.get("x-other") != "visible-456":
        raise TestFailure(f"redaction after the reload: {hdrs}")
    st = cap.stats
    if st.get("loaderd_reloads") != 1 or st.get("loaderd_reload_failures") != 2:
        raise TestFailure(f"reload counters: {st.get('loaderd_reloads')} "
                          f"{st.get('loaderd_reload_failures')}")
    harness.log("reloads: bad files kept the configuration, a good one applied; detach works")


def redaction_and_attach(t, cert, key):
    """A file without command-line targets: the reload changes what is traced, the new
    redaction applies to the next exchange, and attach traces a process the targets miss."""
    conf = t.tmp / "second.conf"
    conf.write_text("[targets]\ncomm = python3\n")
    sock = str(t.tmp / "control")
    t.start_loaderd("--config", str(conf), "--exchanges")
    t.write_file("body.bin", os.urandom(200))
    http, hport = t.start_server("http", cert, key, HOST)
    before = t.spawn(["curl", "-k", "--http1.1", "-sS", "--max-time", "30", "-o", os.devnull,
                      f"https://{HOST}:{hport}/before"], name="curl-before")
    t.wait_proc(before, 40)
    conf.write_text("[targets]\ncomm = curl\n[redaction]\nredact-header = X-Api-Key\n")
    ans = control(sock, "reload\n")
    if not ans.get("ok"):
        raise TestFailure(f"reload: {ans}")
    after = t.spawn(["curl", "-k", "--http1.1", "-sS", "--max-time", "30", "-o", os.devnull,
                     "-H", "X-Api-Key: topsecret-123", "-H", "X-Other: visible-456",
                     f"https://{HOST}:{hport}/after"], name="curl-after")
    t.wait_proc(after, 40)
    # python3 is no target any more; attach one of them by pid.
    server, port = t.start_server("framed", cert, key, HOST)
    w = harness.spawn_client(t, "attached", port, [(os.urandom(600), 650)], cert,
                             flags=["--wait-go"])
    t.expect_line(w, "WAITING")
    ans = control(sock, f"attach {w.pid}\n")
    if not ans.get("ok") or f"attached process {w.pid}" not in ans.get("result", ""):
        raise TestFailure(f"attach: {ans}")
    # processes says why each is traced or not.
    procs = control(sock, f"processes {w.pid}\n")["processes"]["list"]
    if len(procs) != 1 or procs[0]["state"] != "traced" or \
            "attached with tlssniffctl" not in procs[0]["reason"]:
        raise TestFailure(f"processes {w.pid} (attached): {procs}")
    procs = control(sock, f"processes {server.pid}\n")["processes"]["list"]
    if len(procs) != 1 or procs[0]["state"] != "not a target" or \
            "its name 'python3' is not one of the targets' names" not in procs[0]["reason"]:
        raise TestFailure(f"processes {server.pid} (python3, targets comm=curl): {procs}")
    w.stdin.write(b"go\n")
    w.stdin.flush()
    res = harness.client_results(t, w)
    other = python_client(t, "not-attached", port, cert)
    harness.client_results(t, other)
    t.stop_server(server)
    t.stop_server(http)
    cap = t.stop_loaderd()
    if any(r["pid"] == before.pid for r in cap.records):
        raise TestFailure("curl was captured before the reload made it a target")
    ex = [x for x in cap.other if x.get("type") == "exchange" and x.get("path") == "/after"]
    if len(ex) != 1:
        raise TestFailure(f"exchanges of /after: {ex}")
    hdrs = {k.lower(): v for k, v in ex[0]["request_headers"]}
    if hdrs.get("x-api-key") != "[redacted]" or hdrs.get("x-other") != "visible-456":
        raise TestFailure(f"redaction after the reload: {hdrs}")
    harness.check_framed_connection(cap, "attached client", w.pid, None, res[0], w.items[0][0],
                                    w.items[0][1], "ipv4")
    if any(r["pid"] == other.pid for r in cap.records):
        raise TestFailure("a python3 client was captured although python3 is no target now")
    harness.log("reload changed targets and redaction; attach traced a pid")


def output_switch(t, cert, key):
    """A reload that names another output file: what follows goes there, not to the old one
    (the analyzer takes the new file over its standard output, under its seccomp filter)."""
    first, second = t.tmp / "first.jsonl", t.tmp / "second.jsonl"
    conf = t.tmp / "output.conf"
    conf.write_text(f"[targets]\ncomm = python3\n[output]\njson = yes\noutput = {first}\n")
    sock = str(t.tmp / "control-out")
    p = t.spawn_loaderd("--config", conf, "--log-target", "stderr", "--control-socket", sock,
                        "--cache-dir", "", name="loaderd-output")
    err = p.err
    if err.wait_for("Ready:", harness.READY_TIMEOUT, p) is None:
        raise TestFailure("loaderd with an output file in its configuration did not start")
    server, port = t.start_server("framed", cert, key, HOST)
    a = python_client(t, "to-first", port, cert, 1200)
    harness.client_results(t, a)
    want = harness.framed_request(a.items[0][0], a.items[0][1])

    def written():
        # The analyzer may hold a message a moment for its socket identity: wait until the
        # first client is in the first file before switching.
        cap = harness.Capture(first)
        return any(st.data == want for st in cap.streams_of(a.pid, "write")) and \
            any(st.data for st in cap.streams_of(a.pid, "read"))
    harness.wait_until(written, 20, "the first client in the first file")
    before = harness.wait_until_stats(sock, lambda s: True, 30, "the counters")
    conf.write_text(f"[targets]\ncomm = python3\n[output]\njson = yes\noutput = {second}\n")
    ans = control(sock, "reload\n")
    if not ans.get("ok") or "output settings applied" not in ans.get("result", ""):
        raise TestFailure(f"reload with a new output: {ans}")
    # The analyzer has taken the new file once it counts the reconfiguration.
    harness.wait_until_stats(sock, lambda s: s.get("analyzer_reconfigurations", 0) >
                             before.get("analyzer_reconfigurations", 0), 30,
                             "the analyzer to take the new output")
    b = python_client(t, "to-second", port, cert, 1300)
    harness.client_results(t, b)
    t.stop_server(server)
    time.sleep(harness.SETTLE)
    p.send_signal(signal.SIGINT)
    if p.wait(harness.STOP_TIMEOUT) != 0:
        raise TestFailure(f"loaderd exited with {p.returncode}: {err.tail(10)}")
    if any("Failed to switch" in ln for ln in err.lines):
        raise TestFailure(f"the analyzer could not switch outputs: {err.tail(10)}")
    one, two = harness.Capture(first), harness.Capture(second)
    one.find_stream(a.pid, "write", harness.framed_request(a.items[0][0], a.items[0][1]),
                    "the first client, in the first file")
    two.find_stream(b.pid, "write", harness.framed_request(b.items[0][0], b.items[0][1]),
                    "the second client, in the second file")
    if any(r["pid"] == b.pid for r in one.records) or any(r["pid"] == a.pid
                                                          for r in two.records):
        raise TestFailure("records went to the wrong file after the reload")
    if two.stats is None:
        raise TestFailure("the final counters are not in the new output file")
    harness.log("a reload moved the output to another file; each client in its own file")


def unit_target(t, cert, key):
    """--unit for a unit that does not run yet: traced once its cgroup appears; a look-alike
    of the same name made by a user in a cgroup subtree delegated to them is never taken for
    it (its process's traffic is not captured)."""
    unit = f"tlssniff-test-{os.getpid()}.service"
    with harness.cgroup2_group(unit) as group:
        t.start_loaderd("--unit", unit)
        t.loaderd_err.wait_for(f"Unit {unit} has no cgroup", 10, t.loaderd)
        # A subtree delegated to nobody (as systemd does for user@UID.service), and in it a
        # cgroup that nobody names like the unit, with a client in it.
        deleg = os.path.join(os.path.dirname(group), f"tlssniff-deleg-{os.getpid()}")
        os.mkdir(deleg)
        os.chown(deleg, 65534, 65534)
        lookalike = os.path.join(deleg, unit)
        subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "mkdir",
                        lookalike], check=True)
        server, port = t.start_server("framed", cert, key, HOST)
        fake = harness.spawn_client(t, "lookalike", port, [(os.urandom(700), 800)], cert,
                                    flags=["--wait-go"])
        t.expect_line(fake, "WAITING")
        with open(os.path.join(lookalike, "cgroup.procs"), "w") as f:
            f.write(str(fake.pid))
        os.mkdir(group)

        def ready():
            line = t.loaderd_err.wait_for(f"Unit {unit} is at cgroup", 10, t.loaderd)
            if not line or "tlssniff-deleg" in line or not line.rstrip(".").endswith(unit):
                raise TestFailure(f"--unit {unit} resolved to {line!r}, not the real cgroup")
            # The look-alike's client makes its connection while the unit is traced.
            fake.stdin.write(b"go\n")
            fake.stdin.flush()
            harness.client_results(t, fake)

        try:
            cap = harness.capture_group_member(
                t, group, server, port, cert, [(os.urandom(2000), 2100)], ready,
                f"--unit {unit}")
        finally:
            for d in (lookalike, deleg):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
        if cap.stats.get("loaderd_unit_moves", 0) < 1:
            raise TestFailure(f"loaderd_unit_moves: {cap.stats.get('loaderd_unit_moves')}")
        harness.log("--unit: traced once the unit's cgroup appeared, nothing else; a user's "
                    "look-alike of the same name ignored")


def main(t):
    cert, key = t.make_cert()
    bad_files(t)
    reload_and_overrides(t, cert, key)
    redaction_and_attach(t, cert, key)
    output_switch(t, cert, key)
    unit_target(t, cert, key)


if __name__ == "__main__":
    harness.run(main)
