#!/usr/bin/python3
"""Go analysis benchmark: what planning the probes of a Go executable costs the analyzer, with
and without the Go offset cache (bench-goplan, tests/bench/goplan.c).

Files measured:

  test builds   tests/go/tlspeer with Go 1.15, 1.19 and 1.23 (tests/gobuild.py), plain and
                stripped (-ldflags=-s -w), for this machine's architecture
  cmd/go        the go command built from each toolchain's own source, not stripped: large
                binaries (14-18 MB) with DWARF that link crypto/tls, the realistic worst case
                (--no-cmd-go skips them)
  found         every ELF file with a .go.buildinfo section in the toolchains' bin/ and
                pkg/tool/*/ directories, /usr/bin and /usr/local/bin (the Debian ones are
                stripped; only those that link crypto/tls, such as `go`, get a plan)

For each file bench-goplan prints the median of 5 cold analyses (gotls_plan: build info,
.symtab or .gopclntab, Capstone, DWARF or the version table) and of 50 cache hits
(gotls_plan_cached with the plan already in an in-memory cache). The file is in the page
cache for both: "cold" means without the offset cache, not from disk. Targets
(docs/performance.md): a cached plan in under 1 ms; a cold analysis in under 100 ms for a
20 MB binary.

Run (root: the Go build cache under /var/cache/tlssniff-test is root's; no BPF needed):

    ninja -C build tests/bench-goplan
    /usr/bin/python3 tests/bench/goanalysis.py [--no-cmd-go] [--bench PATH] [--keep]

Prints a table, a verdict per target, then one JSON object ("benchmark": "goanalysis") as the
last line of standard output; progress goes to standard error. Exit status 0 when it ran,
whatever the figures; 1 when something failed to run (bench-goplan missing or failing, no
Go toolchain).
"""

import argparse
import contextlib
import glob
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
REPO = os.path.dirname(TESTS)
sys.path.insert(0, TESTS)

import gobuild  # noqa: E402  (tests/gobuild.py: the toolchains and their build cache)
from harness import TestFailure  # noqa: E402

DEFAULT_BENCH = os.environ.get("TLSSNIFF_BENCH_GOPLAN",
                               os.path.join(REPO, "build/tests/bench-goplan"))
SEARCH = [
    "/usr/lib/go-1.19/bin",
    "/usr/lib/go-1.19/pkg/tool/*",
    "/var/cache/tlssniff-test/*/root/usr/lib/go-*/bin",
    "/var/cache/tlssniff-test/*/root/usr/lib/go-*/pkg/tool/*",
    "/usr/bin",
    "/usr/local/bin",
]
CACHED_TARGET_MS = 1.0
COLD_TARGET_MS = 100.0
COLD_TARGET_MB = 20.0


def progress(msg):
    print("[bench] " + msg, file=sys.stderr, flush=True)


def elf_sections(path):
    """The section names of an ELF file, or None when it is not one (read with struct: a
    readelf per file of /usr/bin would dominate the run)."""
    try:
        with open(path, "rb") as f:
            h = f.read(64)
            if len(h) < 52 or h[:4] != b"\x7fELF" or h[4] not in (1, 2) or h[5] not in (1, 2):
                return None
            e = "<" if h[5] == 1 else ">"
            if h[4] == 2:
                shoff, = struct.unpack_from(e + "Q", h, 0x28)
                shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", h, 0x3a)
                hdr_fmt, off_at = e + "IIQQQQ", 4
            else:
                shoff, = struct.unpack_from(e + "I", h, 0x20)
                shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", h, 0x2e)
                hdr_fmt, off_at = e + "IIIIII", 4
            if shnum == 0 or shnum > 4096 or shstrndx >= shnum or \
                    shentsize < struct.calcsize(hdr_fmt):
                return set()
            f.seek(shoff)
            table = f.read(shnum * shentsize)
            if len(table) < shnum * shentsize:
                return set()
            hdrs = [struct.unpack_from(hdr_fmt, table, i * shentsize) for i in range(shnum)]
            str_off, str_size = hdrs[shstrndx][off_at], hdrs[shstrndx][off_at + 1]
            if str_size > 1 << 20:
                return set()
            f.seek(str_off)
            strtab = f.read(str_size)
            names = set()
            for hd in hdrs:
                end = strtab.find(b"\0", hd[0])
                if hd[0] < len(strtab) and end >= 0:
                    names.add(strtab[hd[0]:end].decode(errors="replace"))
            return names
    except (OSError, struct.error):
        return None


def find_go_binaries():
    """{path: section names} of the Go executables in SEARCH, one path per file."""
    seen, found = set(), {}
    for pattern in SEARCH:
        for d in sorted(glob.glob(pattern)):
            if not os.path.isdir(d):
                continue
            for name in sorted(os.listdir(d)):
                path = os.path.join(d, name)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if not os.path.isfile(path) or (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
                secs = elf_sections(path)
                if secs and ".go.buildinfo" in secs:
                    found[os.path.realpath(path)] = secs
    return found


def debug_kind(secs):
    dwarf = ".debug_info" in secs or ".zdebug_info" in secs
    return ("symtab+dwarf" if dwarf else "symtab") if ".symtab" in secs else \
        ("dwarf" if dwarf else "stripped")


def build_binaries(workdir, cmd_go):
    """[(label, path)] of the test builds; skips (with a note) a toolchain that is missing."""
    out = []
    for tc in gobuild.TOOLCHAINS:
        try:
            gobuild.goroot(tc)
        except TestFailure as e:
            progress(f"skipping {tc}: {e}")
            continue
        for stripped in (False, True):
            label = f"tlspeer {tc}{' stripped' if stripped else ''}"
            p = os.path.join(workdir, f"tlspeer-{tc}{'-stripped' if stripped else ''}")
            gobuild.build(tc, p, stripped=stripped)
            out.append((label, p))
        if cmd_go:
            p = os.path.join(workdir, f"cmd-go-{tc}")
            gobuild.build(tc, p, source=gobuild.goroot(tc) / "src/cmd/go")
            out.append((f"cmd/go {tc}", p))
    if not out:
        raise TestFailure("no Go toolchain (run tools/bootstrap.sh --tests as root)")
    return out


def run_bench(bench, paths):
    """{path: (size_mb, cold_ms, cached_ms or None)} from one bench-goplan run."""
    r = subprocess.run([bench, *paths], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=1800)
    err = r.stderr.decode(errors="replace")
    for line in err.splitlines():
        progress("bench-goplan: " + line)
    if r.returncode != 0:
        raise TestFailure(f"bench-goplan exited with {r.returncode}")
    res = {}
    for line in r.stdout.decode(errors="replace").splitlines():
        path, size, cold, cached = line.rsplit(" ", 3)
        res[path] = (float(size), float(cold), None if cached == "-" else float(cached))
    missing = [p for p in paths if p not in res]
    if missing:
        raise TestFailure(f"bench-goplan printed nothing for {missing}")
    return res


def main(argv):
    ap = argparse.ArgumentParser(description="Go analysis benchmark (cold and cached plans)")
    ap.add_argument("--bench", default=DEFAULT_BENCH,
                    help="bench-goplan (default $TLSSNIFF_BENCH_GOPLAN, else "
                         "build/tests/bench-goplan)")
    ap.add_argument("--no-cmd-go", action="store_true",
                    help="do not build the unstripped go commands")
    ap.add_argument("--keep", action="store_true", help="keep the built binaries")
    opts = ap.parse_args(argv)
    if not os.access(opts.bench, os.X_OK):
        print(f"FAILED: {opts.bench} not found (ninja -C build tests/bench-goplan)")
        return 1

    workdir = tempfile.mkdtemp(prefix="tlssniff-goanalysis-")
    try:
        # gobuild logs each build on stdout; keep stdout for the table and the JSON line.
        with contextlib.redirect_stdout(sys.stderr):
            built = build_binaries(workdir, not opts.no_cmd_go)
        found = find_go_binaries()
        progress(f"{len(found)} Go executables found on the machine")
        rows = [(label, path, "built", elf_sections(path) or set()) for label, path in built]
        rows += [(path, path, "found", secs)
                 for path, secs in sorted(found.items(), key=lambda kv: -os.path.getsize(kv[0]))]
        res = run_bench(opts.bench, [r[1] for r in rows])
    except TestFailure as e:
        print(f"FAILED: {e}")
        print(json.dumps({"benchmark": "goanalysis", "ok": False, "error": str(e)}))
        return 1
    finally:
        if opts.keep:
            progress(f"binaries kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    width = max(len(r[0]) for r in rows)
    print(f"{'file':<{width}}  {'origin':<6} {'debug info':<12} {'MB':>6} {'plan':<4} "
          f"{'cold ms':>8} {'ms/MB':>6} {'cached ms':>10}")
    out_rows = []
    for label, path, origin, secs in rows:
        size, cold, cached = res[path]
        print(f"{label:<{width}}  {origin:<6} {debug_kind(secs):<12} {size:>6.1f} "
              f"{'yes' if cached is not None else 'no':<4} {cold:>8.2f} "
              f"{cold / size if size else 0:>6.2f} "
              f"{'-' if cached is None else format(cached, '.4f'):>10}")
        out_rows.append({"file": label, "path": path, "origin": origin,
                         "debug": debug_kind(secs), "size_mb": size, "plan": cached is not None,
                         "cold_ms": cold, "cached_ms": cached})

    planned = [r for r in out_rows if r["plan"]]
    worst_cached = max(planned, key=lambda r: r["cached_ms"]) if planned else None
    largest = max(out_rows, key=lambda r: r["size_mb"])
    largest_planned = max(planned, key=lambda r: r["size_mb"]) if planned else None
    worst_cold = max(out_rows, key=lambda r: r["cold_ms"])
    worst_rate = max(out_rows, key=lambda r: r["cold_ms"] / r["size_mb"] if r["size_mb"] else 0)
    extrapolated = worst_rate["cold_ms"] / worst_rate["size_mb"] * COLD_TARGET_MB
    print()
    if worst_cached:
        ok = worst_cached["cached_ms"] < CACHED_TARGET_MS
        print(f"cached plan: at most {worst_cached['cached_ms']:.4f} ms ({worst_cached['file']}); "
              f"target < {CACHED_TARGET_MS:g} ms: {'met' if ok else 'NOT met'}")
    print(f"cold analysis: at most {worst_cold['cold_ms']:.2f} ms ({worst_cold['file']}, "
          f"{worst_cold['size_mb']:.1f} MB)")
    print(f"largest Go executable: {largest['file']} ({largest['size_mb']:.1f} MB, "
          f"{largest['debug']}): cold {largest['cold_ms']:.2f} ms")
    if largest_planned:
        print(f"largest with a plan: {largest_planned['file']} "
              f"({largest_planned['size_mb']:.1f} MB, {largest_planned['debug']}): cold "
              f"{largest_planned['cold_ms']:.2f} ms, cached {largest_planned['cached_ms']:.4f} ms")
    big = [r for r in out_rows if r["size_mb"] >= COLD_TARGET_MB]
    if big:
        worst_big = max(big, key=lambda r: r["cold_ms"])
        ok = worst_big["cold_ms"] < COLD_TARGET_MS
        print(f"cold analysis of files >= {COLD_TARGET_MB:g} MB: at most "
              f"{worst_big['cold_ms']:.2f} ms; target < {COLD_TARGET_MS:g} ms: "
              f"{'met' if ok else 'NOT met'}")
    else:
        ok = extrapolated < COLD_TARGET_MS
        print(f"no file of {COLD_TARGET_MB:g} MB or more; at the worst rate measured "
              f"({worst_rate['cold_ms'] / worst_rate['size_mb']:.2f} ms/MB, "
              f"{worst_rate['file']}) {COLD_TARGET_MB:g} MB would take {extrapolated:.1f} ms; "
              f"target < {COLD_TARGET_MS:g} ms: {'met' if ok else 'NOT met'} (extrapolated)")
    print(json.dumps({"benchmark": "goanalysis", "ok": True, "files": out_rows,
                      "cached_target_ms": CACHED_TARGET_MS, "cold_target_ms": COLD_TARGET_MS,
                      "cold_target_mb": COLD_TARGET_MB,
                      "worst_cached_ms": worst_cached["cached_ms"] if worst_cached else None,
                      "worst_cold_ms": worst_cold["cold_ms"],
                      "cold_ms_at_target_mb_extrapolated": extrapolated}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
