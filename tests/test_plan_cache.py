#!/usr/bin/python3
# Proves: loaderd's plan cache is bound to the bytes of a file, not to what the file claims. A
# Go program built with another Go binary's build id and padded to its size (the old cache key:
# build id and size) runs first and has its plan cached; the real binary, run after, is not
# served that plan: it gets a planner of its own (loaderd_go_analyses counts both, no cache
# hit), is captured byte-exact, and 200 traced runs give the same results as an untraced one.
# A copy of the real binary (same bytes) then gets the real binary's plan from the cache, with
# no planner, and is captured byte-exact too. The cache file is root's, mode 0600, in a folder
# of root's, mode 0700, that the analyzer's user cannot enter.

import hashlib
import os
import pwd
import shutil
import subprocess

import gobuild
import harness
from gobuild import run_client, start_server
from harness import TestFailure

FAKE_SOURCE = """package main

import (
	"crypto/tls"
	"os"
	"time"
)

// Another program that uses crypto/tls: its Read and Write sit elsewhere than tlspeer's.
func main() {
	c, err := tls.Dial("tcp", os.Args[1], &tls.Config{InsecureSkipVerify: true})
	if err == nil {
		c.Write([]byte("fake"))
		b := make([]byte, 16)
		c.Read(b)
		c.Close()
	}
	time.Sleep(time.Duration(len(os.Args)) * time.Second)
}
"""


def build_fake(t, real):
    """A Go program that is not real, with real's Go build id, padded with zeros to its size."""
    build_id = gobuild.go_tool("go1.19", "buildid", str(real)).strip()
    src = t.tmp / "fake" / "main.go"
    src.parent.mkdir()
    src.write_text(FAKE_SOURCE)
    fake = t.tmp / "fake-go"
    r = subprocess.run([str(gobuild.goroot("go1.19") / "bin/go"), "build", "-o", str(fake),
                        f"-ldflags=-s -w -buildid={build_id}", str(src)],
                       env=gobuild.go_env("go1.19"), cwd=str(src.parent),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    if r.returncode != 0:
        raise TestFailure(f"building the fake failed:\n{r.stdout.decode(errors='replace')}")
    if gobuild.go_tool("go1.19", "buildid", str(fake)).strip() != build_id:
        raise TestFailure("the fake did not get the real binary's build id")
    size, real_size = fake.stat().st_size, real.stat().st_size
    if size >= real_size:
        raise TestFailure(f"the fake ({size} B) is not smaller than the real binary "
                          f"({real_size} B): it cannot be padded to its size")
    with open(fake, "ab") as f:
        f.write(b"\0" * (real_size - size))
    if fake.read_bytes() == real.read_bytes():
        raise TestFailure("the fake is the real binary")
    harness.log(f"fake: build id {build_id}, padded to {real_size} B")
    return fake


def stats(t, pred, what, timeout=30):
    return harness.wait_until_stats(t.tmp / "control", pred, timeout, what)


def exact_client_stream(t, cap, conn, what):
    ss = [s for s in cap.streams.values() if s.direction == "write" and s.records[0]["local"]
          and s.records[0]["local"]["port"] == conn["local_port"]]
    if len(ss) != 1 or ss[0].problems or \
            hashlib.sha256(ss[0].data).hexdigest() != conn["sent_sha256"]:
        raise TestFailure(f"{what}: the client's stream was not captured exactly "
                          f"({[s.describe() for s in ss]})")


def main(t):
    real = gobuild.build("go1.19", t.tmp / "tlspeer-real")
    fake = build_fake(t, real)

    # The untraced reference.
    srv, port = start_server(t, real, "reference-server", "server")
    _, ref = run_client(t, real, "reference-client", "client", "-connect",
                        f"127.0.0.1:{port}", "-sizes", "1,100,5000", "-seed", "7")
    srv.kill()
    srv.wait()
    reference = {(c["sent_sha256"], c["received_sha256"]) for c in ref if "sent_sha256" in c}
    if len(reference) != 1:
        raise TestFailure(f"reference run printed {ref}")

    t.start_loaderd()
    # The fake first: planned, and its plan cached under its bytes' hash.
    f = t.spawn([fake, "127.0.0.1:1", "x", "x"], name="fake")
    t.wait_attached(fake)
    # Each plan is kept under two keys: its bytes' hash and the file's identity.
    st = stats(t, lambda s: s.get("loaderd_plan_cache_stored", 0) >= 2, "the fake's plan cached")
    if st.get("loaderd_go_cache_hits") != 0 or st.get("loaderd_go_analyses") != 1:
        raise TestFailure(f"after the fake: {st}")
    t.wait_proc(f, 30)

    # The real binary: a planner of its own, not the fake's plan.
    srv, port = start_server(t, real, "server", "server")
    t.wait_attached(real)
    st = stats(t, lambda s: s.get("loaderd_go_analyses", 0) >= 2, "the real binary planned")
    if st.get("loaderd_go_cache_hits") != 0 or st.get("loaderd_plan_cache_stored") != 4:
        raise TestFailure(f"the real binary was served from the cache: {st}")
    if any(f"Plan for {real} from the plan cache" in ln for ln in t.loaderd_err.lines):
        raise TestFailure("loaderd logged the real binary's plan as from the cache")
    conns = []
    for i in range(200):
        _, lines = run_client(t, real, f"traced-{i}", "client", "-connect", f"127.0.0.1:{port}",
                              "-sizes", "1,100,5000", "-seed", "7", timeout=30)
        got = [c for c in lines if c.get("event") == "client_conn"]
        if len(got) != 1 or {(got[0]["sent_sha256"], got[0]["received_sha256"])} != reference:
            raise TestFailure(f"traced run {i} differs from the untraced run: {got}")
        conns.append(got[0])

    # A copy of the real binary: same bytes, its plan from the cache, no planner.
    copy = t.tmp / "tlspeer-copy"
    shutil.copy(real, copy)
    flag = t.tmp / "go-copy"
    c = t.spawn([copy, "client", "-connect", f"127.0.0.1:{port}", "-sizes", "1,100,5000",
                 "-seed", "7", "-wait-file", flag], name="client-copy")
    c.out = harness.ByteReader(c.stdout, c.name + " stdout")
    harness.wait_until(lambda: any(f"Plan for {copy} from the plan cache" in ln
                                   for ln in t.loaderd_err.lines), 10,
                       "the copy planned from the plan cache")
    t.wait_attached(copy)
    flag.write_text("go")
    t.wait_proc(c, 60)
    copy_conn = gobuild.events(t, c, "client_conn")
    st = stats(t, lambda s: s.get("loaderd_go_cache_hits", 0) >= 1, "a cache hit for the copy")
    if st.get("loaderd_go_analyses") != 2 or st.get("loaderd_planners_refused") != 0:
        raise TestFailure(f"after the copy: {st}")

    # The cache is root's alone.
    cache = t.tmp / "cache"
    plans = cache / "plans.v3"
    ds, fs = os.stat(cache), os.stat(plans)
    if (ds.st_uid, ds.st_mode & 0o7777, fs.st_uid, fs.st_mode & 0o7777) != (0, 0o700, 0, 0o600):
        raise TestFailure(f"cache folder {ds.st_uid} {oct(ds.st_mode)}, file {fs.st_uid} "
                          f"{oct(fs.st_mode)}: wanted root's, 0700 and 0600")
    uid = pwd.getpwnam("tlssniff").pw_uid
    r = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                        "/bin/sh", "-c", 'test -r "$1" || test -w "$1"', "sh", str(plans)])
    if r.returncode == 0:
        raise TestFailure("the analyzer's user can read or write the plan cache")

    srv.kill()
    srv.wait()
    t.stop_loaderd()
    cap = t.capture
    for i in (0, 99, 199):
        exact_client_stream(t, cap, conns[i], f"traced run {i}")
    exact_client_stream(t, cap, copy_conn[0], "the copy")
    for k in ("kernel_go_no_goid", "kernel_unmatched_returns", "analyzer_stream_gaps"):
        if cap.stats.get(k, 0) != 0:
            raise TestFailure(f"{k} = {cap.stats.get(k)}")
    harness.log("the fake's plan stayed the fake's; the real binary and its copy captured exactly")


harness.run(main)
