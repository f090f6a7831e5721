#!/usr/bin/python3
# Proves: Go crypto/tls traffic is captured byte-exact with the right 4-tuple and role for programs built with Go 1.15 (ABI0), 1.19 and 1.23 (ABIInternal), stripped (-s -w) or not: payloads of 1 B, 100 B, 64 KiB and 1 MiB each way; 100 goroutines on 100 connections at once, each stream exact and on its own connection; net/http over HTTP/1.1 and HTTP/2 (ALPN h2); a Go server running before tlssniff starts and Go programs started after it; a copy of a binary and a restarted tlssniff planned from loaderd's plan cache without a planner's analysis; 200 traced runs behave exactly like an untraced one.

import hashlib
import json
import shutil
import subprocess

import gobuild
import harness
from gobuild import events, run_client, start_server
from harness import TestFailure

SIZES = "1,100,65536,1048576"
BUILDS = [(tc, s) for tc in ("go1.15", "go1.19", "go1.23") for s in (False, True)]


def label(build):
    return build[0] + ("-stripped" if build[1] else "")


def one_stream(cap, pid, direction, local_port, remote_port, what):
    ss = cap.find_stream_by_ports(pid, direction, local_port, remote_port)
    if len(ss) != 1:
        raise TestFailure(f"{what}: {len(ss)} {direction} streams of pid {pid} for "
                          f"127.0.0.1:{local_port} -> :{remote_port}")
    return ss[0]


def check_exact(stream, expected, what):
    if stream.problems or stream.data != expected:
        d = next((i for i, (a, b) in enumerate(zip(stream.data, expected)) if a != b),
                 min(len(stream.data), len(expected)))
        raise TestFailure(f"{what}: captured {len(stream.data)} B, expected {len(expected)} B, "
                          f"first difference at byte {d}; {stream.describe()}")


def check_conn(cap, client_pid, server_pid, conn, dump, server_port, what):
    """Both sides of one tlspeer connection: exact bytes, 4-tuple and role."""
    lp, rp = conn["local_port"], conn["remote_port"]
    if rp != server_port:
        raise TestFailure(f"{what}: client reports remote port {rp}, server is on {server_port}")
    sent = (dump / f"client-{conn['index']}-sent.bin").read_bytes()
    received = (dump / f"client-{conn['index']}-received.bin").read_bytes()
    local, remote = ("127.0.0.1", lp), ("127.0.0.1", rp)
    for direction, data in (("write", sent), ("read", received)):
        s = one_stream(cap, client_pid, direction, lp, rp, f"{what} client {direction}")
        check_exact(s, data, f"{what}: client {direction}")
        harness.assert_addressing(s, f"{what} client {direction}", "ipv4", local, remote,
                                  "client")
        if {r["source"] for r in s.records} != {"go"}:
            raise TestFailure(f"{what}: records not marked source go: {s.attrs('source')}")
    for direction, data in (("read", sent), ("write", received)):
        s = one_stream(cap, server_pid, direction, rp, lp, f"{what} server {direction}")
        check_exact(s, data, f"{what}: server {direction}")
        harness.assert_addressing(s, f"{what} server {direction}", "ipv4", remote, local,
                                  "server")


def main(t):
    bins = {b: gobuild.build(b[0], t.tmp / f"tlspeer-{label(b)}", stripped=b[1]) for b in BUILDS}
    dumps = {b: t.tmp / f"dump-{label(b)}" for b in BUILDS}
    for d in dumps.values():
        d.mkdir()

    # The untraced reference for the 200 traced runs below: same seed, same bytes.
    ref_srv, ref_port = start_server(t, bins[("go1.19", False)], "reference-server", "server")
    _, ref = run_client(t, bins[("go1.19", False)], "reference-client", "client", "-connect",
                        f"127.0.0.1:{ref_port}", "-sizes", "1,100,5000", "-seed", "7")
    ref_srv.kill()
    ref_srv.wait()
    reference = {(c["sent_sha256"], c["received_sha256"]) for c in ref if "sent_sha256" in c}
    if len(reference) != 1:
        raise TestFailure(f"reference run printed {ref}")

    # A Go server running before tlssniff starts: found by the initial discovery.
    early = ("go1.15", False)
    servers = {early: start_server(t, bins[early], f"server-{label(early)}", "server", "-dump",
                                   dumps[early])}
    t.start_loaderd()
    if not any("Attached" in ln and str(bins[early]) in ln for ln in t.loaderd_err.lines):
        raise TestFailure("the Go server running before tlssniff started was not probed")

    # Every other program starts after tlssniff; each is probed before it makes connections.
    for b in BUILDS:
        if b not in servers:
            servers[b] = start_server(t, bins[b], f"server-{label(b)}", "server", "-dump",
                                      dumps[b])
            t.wait_attached(bins[b])
    clients = {}
    for b in BUILDS:
        flag = t.tmp / f"go-{label(b)}"
        c = t.spawn([bins[b], "client", "-connect", f"127.0.0.1:{servers[b][1]}", "-sizes",
                     SIZES, "-dump", dumps[b], "-wait-file", flag], name=f"client-{label(b)}")
        c.out = harness.ByteReader(c.stdout, c.name + " stdout")
        harness.wait_until(lambda: sum(str(bins[b]) in ln and "Attached" in ln
                                       for ln in t.loaderd_err.lines) >= 1, 20, "probes")
        flag.write_text("go")
        t.wait_proc(c, 120)
        clients[b] = (c, events(t, c, "client_conn")[0])

    # 100 goroutines, 100 connections at once: Go 1.19 server, stripped Go 1.23 clients.
    many_dump = t.tmp / "dump-many"
    many_dump.mkdir()
    many_srv, many_port = start_server(t, bins[("go1.19", False)], "server-many", "server",
                                       "-dump", many_dump)
    many_cli, many = run_client(t, bins[("go1.23", True)], "client-many", "client", "-connect",
                                f"127.0.0.1:{many_port}", "-sizes", "1,100,4096,1,30000",
                                "-conns", "100", "-parallel", "100", "-dump", many_dump)
    many = [c for c in many if c.get("event") == "client_conn"]
    if len(many) != 100:
        raise TestFailure(f"client-many reported {len(many)} connections, not 100")

    # net/http: HTTP/1.1 and HTTP/2 (ALPN h2).
    http = []
    for tc, h2 in (("go1.15", False), ("go1.19", False), ("go1.19", True), ("go1.23", True)):
        exe = bins[(tc, False)]
        extra = ["-h2"] if h2 else []
        srv, port = start_server(t, exe, f"http-server-{tc}{'-h2' if h2 else ''}",
                                 "http-server", *extra)
        cli, lines = run_client(t, exe, f"http-client-{tc}{'-h2' if h2 else ''}", "http-client",
                                "-url", f"https://127.0.0.1:{port}", "-n", "2", *extra)
        http.append((tc, h2, srv, cli, lines))

    # The plan cache: a copy of a binary (same bytes, another file) gets no planner.
    copy = t.tmp / "tlspeer-copy"
    shutil.copy(bins[("go1.19", False)], copy)
    _, copied = run_client(t, copy, "client-copy", "client", "-connect",
                           f"127.0.0.1:{servers[('go1.19', False)][1]}", "-sizes", "1")
    harness.wait_until(lambda: any(f"Plan for {copy} from the plan cache" in ln
                                   for ln in t.loaderd_err.lines), 10,
                       "the copy planned from the plan cache")

    # 200 traced runs, across all six builds: the same results as the untraced reference.
    traced = []
    for i in range(200):
        b = BUILDS[i % len(BUILDS)]
        p, lines = run_client(t, bins[b], f"traced-{i}", "client", "-connect",
                              f"127.0.0.1:{servers[b][1]}", "-sizes", "1,100,5000", "-seed", "7",
                              timeout=30)
        got = [c for c in lines if c.get("event") == "client_conn"]
        if len(got) != 1 or {(got[0]["sent_sha256"], got[0]["received_sha256"])} != reference:
            raise TestFailure(f"traced run {i} ({label(b)}) differs from the untraced run: {got}")
        traced.append((b, dict(got[0], pid=p.pid)))

    # tlssniffctl processes: each Go executable, its version and ABI, probed.
    ctl = harness.LOADERD.parent.parent / "analyzer" / "tlssniffctl"
    r = subprocess.run([str(ctl), "--socket", str(t.tmp / "control"), "--json", "processes"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    if r.returncode != 0:
        raise TestFailure(f"tlssniffctl processes: {r.stderr.decode()}")
    listed = {p["path"]: p for p in json.loads(r.stdout)["files"]["list"]}
    for b in BUILDS:
        p = listed.get(str(bins[b]))
        abi = "ABI0" if b[0] == "go1.15" else "ABIInternal"
        # Read: one probe on its copy to the caller; Write: entry + its 8 RETs.
        if not p or p["state"] != "attached" or p["probes"] != 10 or \
                "Read: its copy to the caller" not in p["reason"] or \
                not p["library"].startswith(f"Go {b[0]}.") or abi not in p["library"]:
            raise TestFailure(f"tlssniffctl processes for {label(b)}: {p}")
    harness.log("tlssniffctl processes names each Go executable's version and ABI, attached")

    t.stop_loaderd()
    cap = t.capture
    cap.assert_valid()
    for b in BUILDS:
        check_conn(cap, clients[b][0].pid, servers[b][0].pid, clients[b][1], dumps[b],
                   servers[b][1], label(b))
    harness.log("six builds: 1 B .. 1 MiB each way captured exactly on both sides")

    seen_ids = set()
    for conn in many:
        check_conn(cap, many_cli.pid, many_srv.pid, conn, many_dump, many_port,
                   f"goroutine connection {conn['index']}")
        s = one_stream(cap, many_cli.pid, "write", conn["local_port"], many_port, "id")
        if s.conn_id in seen_ids:
            raise TestFailure(f"two goroutine connections share conn_id {s.conn_id}")
        seen_ids.add(s.conn_id)
    harness.log("100 concurrent goroutine connections: every stream exact and on its own "
                "connection")

    for tc, h2, srv, cli, lines in http:
        what = f"net/http {tc} {'HTTP/2' if h2 else 'HTTP/1.1'}"
        protos = {ln.get("proto") for ln in lines if ln.get("event") == "http"}
        if protos != {"HTTP/2.0" if h2 else "HTTP/1.1"}:
            raise TestFailure(f"{what}: client saw protocols {protos}")
        cw = cap.streams_of(cli.pid, "write")
        cr = cap.streams_of(cli.pid, "read")
        if len(cw) != 1 or len(cr) != 1:
            raise TestFailure(f"{what}: expected one connection, got {len(cw)} write / "
                              f"{len(cr)} read streams of the client")
        cw, cr = cw[0], cr[0]
        r0 = cw.records[0]
        sw = one_stream(cap, srv.pid, "write", r0["remote"]["port"], r0["local"]["port"], what)
        sr = one_stream(cap, srv.pid, "read", r0["remote"]["port"], r0["local"]["port"], what)
        check_exact(sr, cw.data, f"{what}: server read vs client write")
        check_exact(cr, sw.data, f"{what}: client read vs server write")
        if h2:
            if not cw.data.startswith(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"):
                raise TestFailure(f"{what}: client stream does not start with the h2 preface")
        elif not cw.data.startswith(b"GET /hello HTTP/1.1\r\n") or b"POST /echo " not in cw.data:
            raise TestFailure(f"{what}: requests not captured: {cw.data[:80]!r}")
        if b"hello from go\n" not in cr.data or b"ping-1" not in cr.data:
            raise TestFailure(f"{what}: responses not captured")
    harness.log("net/http over HTTP/1.1 and HTTP/2 captured on both sides")

    # Each traced run's client stream hashes to what that client says it sent and received
    # (found by its pid and ports: another run may have had the same local port).
    by_port = {}
    for s in cap.streams.values():
        r = s.records[0]
        if r["role"] == "client" and r["local"]:
            by_port.setdefault((r["local"]["port"], s.direction), []).append(s)
    for i, (b, conn) in enumerate(traced):
        for direction, key in (("write", "sent_sha256"), ("read", "received_sha256")):
            ss = [s for s in by_port.get((conn["local_port"], direction), [])
                  if s.records[0]["remote"]["port"] == conn["remote_port"] and
                  s.records[0]["pid"] == conn["pid"]]
            if len(ss) != 1 or hashlib.sha256(ss[0].data).hexdigest() != conn[key]:
                raise TestFailure(f"traced run {i} ({label(b)}): captured {direction} stream "
                                  f"does not hash to the client's {key} ({len(ss)} streams)")
    harness.log("200 traced runs: identical results, every stream captured exactly")

    holes = [s.describe() for s in cap.streams.values() if s.problems]
    if holes:
        raise TestFailure("streams with holes or overlaps:\n  " + "\n  ".join(holes[:10]))
    stats = cap.stats
    for k in ("kernel_go_no_goid", "kernel_go_calls_without_fd", "kernel_unmatched_returns",
              "kernel_drop_ringbuf_bytes", "kernel_drop_read_fail_bytes",
              "analyzer_stream_gaps"):
        if stats.get(k, 0) != 0:
            raise TestFailure(f"{k} = {stats.get(k)}")
    if stats.get("loaderd_go_cache_hits", 0) < 1:
        raise TestFailure(f"loaderd_go_cache_hits = {stats.get('loaderd_go_cache_hits')}")

    # A restart is served from the cache on disk: no analysis at all.
    t.start_loaderd()
    srv, port = start_server(t, bins[("go1.23", True)], "server-after-restart", "server")
    t.wait_attached(bins[("go1.23", True)])
    _, lines = run_client(t, bins[("go1.23", True)], "client-after-restart", "client",
                          "-connect", f"127.0.0.1:{port}", "-sizes", "100")
    t.stop_loaderd()
    st = t.capture.stats
    # (the same files, unchanged: known by their identity, not hashed again)
    if st.get("loaderd_go_analyses", -1) != 0 or st.get("loaderd_go_cache_hits", 0) < 1 or \
            st.get("loaderd_plan_cache_hashed_bytes", -1) != 0:
        raise TestFailure(f"after a restart: loaderd_go_analyses = "
                          f"{st.get('loaderd_go_analyses')}, loaderd_go_cache_hits = "
                          f"{st.get('loaderd_go_cache_hits')}, loaderd_plan_cache_hashed_bytes "
                          f"= {st.get('loaderd_plan_cache_hashed_bytes')} (wanted 0, >= 1, 0)")
    if not any(f"Plan for {bins[('go1.23', True)]} from the plan cache (the same file" in ln
               for ln in t.loaderd_err.lines):
        raise TestFailure("after a restart the binary was not known by its identity")
    conn = [c for c in lines if c.get("event") == "client_conn"][0]
    s = [x for x in t.capture.streams.values() if x.direction == "write"
         and x.records[0]["local"] and x.records[0]["local"]["port"] == conn["local_port"]]
    if len(s) != 1 or hashlib.sha256(s[0].data).hexdigest() != conn["sent_sha256"]:
        raise TestFailure("after a restart: the client's stream was not captured exactly")
    harness.log("restart: plan from the plan cache on disk, capture exact")


harness.run(main)
