"""Go toolchains and builds of the Go test programs (tests/go/) for the Go tests.

Three toolchains, all from Debian (tools/bootstrap.sh --tests installs or unpacks them): bookworm's
Go 1.19 (ABIInternal), Go 1.15 from bullseye (ABI0) and Go 1.23 from bookworm-backports. A build
cache under /var/cache/tlssniff-test keeps repeated runs fast; the standard library needs no
module download. Below the builds: starting tlspeer's servers and clients and reading the JSON
lines they print.
"""

import json
import os
import pathlib
import subprocess

import harness
from harness import TestFailure, log

ROOT = pathlib.Path(__file__).resolve().parent.parent
CACHE = pathlib.Path("/var/cache/tlssniff-test")
TOOLCHAINS = {
    "go1.15": CACHE / "bullseye/root/usr/lib/go-1.15",
    "go1.19": pathlib.Path("/usr/lib/go-1.19"),
    "go1.23": CACHE / "bookworm-backports/root/usr/lib/go-1.23",
}
PEER = ROOT / "tests/go/tlspeer/main.go"


def goroot(name):
    root = TOOLCHAINS[name]
    if not (root / "bin/go").exists():
        raise TestFailure(f"Go toolchain {name} missing at {root} "
                          "(run tools/bootstrap.sh --tests as root)")
    return root


def go_env(name, goarch=None):
    root = goroot(name)
    env = {
        "PATH": f"{root}/bin:/usr/bin:/bin",
        "HOME": str(CACHE),
        "GOROOT": str(root),
        "GOCACHE": str(CACHE / f"gocache-{name}"),
        "GOPATH": str(CACHE / "gopath"),
        "GO111MODULE": "off",
        "GOFLAGS": "",
        "GOTOOLCHAIN": "local",
    }
    if goarch:
        env["GOARCH"] = goarch
    return env


def build(name, out, source=PEER, stripped=False, goarch=None):
    """Builds source with toolchain name into out; returns out."""
    out = pathlib.Path(out)
    argv = [str(goroot(name) / "bin/go"), "build", "-o", str(out)]
    if stripped:
        argv.append("-ldflags=-s -w")
    argv.append(str(source))
    r = subprocess.run(argv, env=go_env(name, goarch), cwd=str(pathlib.Path(source).parent),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    if r.returncode != 0:
        raise TestFailure(f"go build with {name} failed:\n{r.stdout.decode(errors='replace')}")
    log(f"built {out.name} with {name}" + (" (stripped)" if stripped else "")
        + (f" for {goarch}" if goarch else ""))
    return out


def go_tool(name, *args):
    """Runs `go tool ARGS` of toolchain name; returns stdout as text."""
    r = subprocess.run([str(goroot(name) / "bin/go"), "tool", *args], env=go_env(name),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    if r.returncode != 0:
        raise TestFailure(f"go tool {' '.join(args)} failed: {r.stderr.decode(errors='replace')}")
    return r.stdout.decode(errors="replace")


def analyze(path):
    """tlssniff-analyzer --analyze PATH: (exit status, stdout, stderr)."""
    exe = ROOT / "build/analyzer/tlssniff-analyzer"
    r = subprocess.run([str(exe), "--analyze", str(path)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


# ---------------------------------------------------------------- running tlspeer

def events(t, proc, event, n=1, timeout=60.0):
    """The next n JSON lines of proc's stdout with this event."""
    out = []
    while len(out) < n:
        line = t.expect_line(proc, "{", timeout)
        obj = json.loads("{" + line)
        if obj.get("event") == event:
            out.append(obj)
    return out


def start_server(t, exe, name, *args):
    p = t.spawn([exe, *args, "-listen", "127.0.0.1:0"], name=name)
    p.out = harness.ByteReader(p.stdout, name + " stdout")
    return p, events(t, p, "listening")[0]["port"]


def run_client(t, exe, name, *args, timeout=120.0):
    p = t.spawn([exe, *args], name=name)
    p.out = harness.ByteReader(p.stdout, name + " stdout")
    t.wait_proc(p, timeout)
    lines = [json.loads(ln) for ln in p.out.rest().decode().splitlines() if ln.startswith("{")]
    return p, lines
