#!/usr/bin/python3
# Proves: the Go plans of --analyze are exact (Go 1.15/1.19/1.23, amd64/arm64, plain/stripped: ABI, argument locations, entries and every RET as go tool objdump shows them, Read's copy probe on its one call to runtime.memmove with c above the frame objdump's prologue makes (amd64), struct offsets as the DWARF states them, the same plan when stripped), and bad input gives a reason, never a crash.

import os
import random
import re
import shutil
import subprocess

import gobuild
import harness
from harness import TestFailure, log

# The analyzer of the build under test: beside the loaderd the test suite runs (build/ or
# build-asan/, from TLSSNIFF_LOADERD), so that the sanitized run checks the sanitized analyzer.
ANALYZER = harness.LOADERD.parent.parent / "analyzer/tlssniff-analyzer"

TOOLCHAINS = ("go1.15", "go1.19", "go1.23")
ARCHES = ("amd64", "arm64")
FUNCS = ("Read", "Write")
# bpf/events.h: TLSSNIFF_FUNC_GO_READ, TLSSNIFF_FUNC_GO_WRITE
FUNC_IDS = {"Read": 5, "Write": 6}
OBJDUMP_RE = r"^crypto/tls\.\(\*Conn\)\.(Read|Write)$"

# Where (*Conn).Read/Write(b []byte) (n int, err error) has c, b.ptr, b.len at entry and n at a
# RET, in the plan's notation (registers by DWARF number, bpf/regs.h: amd64 0 rax, 2 rcx,
# 3 rbx; arm64 0..30 x0..x30). ABI0 (Go < 1.17 on amd64, < 1.18 on arm64): on the stack above
# the return address / the saved-LR slot. ABIInternal: amd64 RAX, RBX, RCX -> RAX; arm64 R0,
# R1, R2 -> R0 (Go's internal ABI spec, src/cmd/compile/abi-internal.md).
ENTRY_ARGS = {
    ("amd64", "ABI0"): "arg0=sp+8 arg1=sp+16 arg2=sp+24",
    ("arm64", "ABI0"): "arg0=sp+8 arg1=sp+16 arg2=sp+24",
    ("amd64", "ABIInternal"): "arg0=reg0 arg1=reg3 arg2=reg2",
    ("arm64", "ABIInternal"): "arg0=reg0 arg1=reg1 arg2=reg2",
}
RETURN_ARGS = {"ABI0": "arg4=sp+40", "ABIInternal": "arg4=reg0"}
# Read's copy probe (amd64): runtime.memmove(to, from, n)'s source and count, ABIInternal in
# RBX and RCX, ABI0 at 8(SP) and 16(SP) at the call.
COPY_ARGS = {"ABI0": "arg1=sp+8 arg2=sp+16", "ABIInternal": "arg1=reg3 arg2=reg2"}
# Where the plan finds g: amd64 ABI0 in thread-local storage at fs-8, amd64 ABIInternal in r14,
# arm64 (both ABIs) in x28.
G_LOC = {("amd64", "ABI0"): "fs-8", ("amd64", "ABIInternal"): "reg14",
         ("arm64", "ABI0"): "reg28", ("arm64", "ABIInternal"): "reg28"}
RET_BYTES = {"amd64": bytes([0xc3]), "arm64": bytes([0xc0, 0x03, 0x5f, 0xd6])}

# The struct members the plan's go-offsets line reports, as DWARF names them.
DWARF_MEMBERS = {
    ("runtime.g", "goid"): "goid",
    ("crypto/tls.Conn", "conn"): "conn",
    ("net.TCPConn", "conn"): "tcpconn_conn",
    ("net.conn", "fd"): "conn_fd",
    ("net.netFD", "pfd"): "pfd",
    ("internal/poll.FD", "Sysfd"): "sysfd",
}

SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                   "runtime error")

HELLO_GO = """package main

import "fmt"

func main() { fmt.Println("hello, no TLS here") }
"""


def abi_of(toolchain):
    return "ABI0" if toolchain == "go1.15" else "ABIInternal"


# ---------------------------------------------------------------- running the analyzer

class Analysis:
    """The parsed output of tlssniff-analyzer --analyze."""

    def __init__(self, path, rc, out, err):
        self.path, self.rc, self.out, self.err = path, rc, out, err
        self.go = None
        self.offsets = None
        self.offsets_line = None
        self.functions = {}
        self.summary = None
        self.probes = []
        for line in out.splitlines():
            if line.startswith("go: "):
                self.go = dict(kv.split("=", 1) for kv in line[4:].split())
            elif line.startswith("go-offsets: "):
                self.offsets_line = line
                self.offsets = dict(kv.split("=", 1) for kv in line[12:].split())
            elif line.startswith("go-function: "):
                name, *kvs = line[13:].split()
                f = dict(kv.split("=", 1) for kv in kvs)
                self.functions[name] = {
                    "entry": int(f["entry"], 16), "size": int(f["size"]),
                    "offset": int(f["offset"], 16),
                    "entry_probe": int(f["entry_probe"], 16),
                    "rets": [int(a, 16) for a in f["rets"].split(",") if a]}
            elif line.startswith("summary: "):
                self.summary = line[9:]
            elif line.startswith("probe: "):
                self.probes.append(line)

    def describe(self):
        return (f"tlssniff-analyzer --analyze {self.path}: exit status {self.rc}\n"
                f"--- stdout:\n{self.out}--- stderr:\n{self.err}")


def analyze(path):
    """Runs --analyze; fails on a signal, a sanitizer report or an error exit."""
    r = subprocess.run([str(ANALYZER), "--analyze", str(path)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    a = Analysis(path, r.returncode, r.stdout.decode(errors="replace"),
                 r.stderr.decode(errors="replace"))
    if a.rc < 0:
        raise TestFailure(f"killed by signal {-a.rc}: " + a.describe())
    for mark in SANITIZER_MARKS:
        if mark in a.err:
            raise TestFailure(f"sanitizer report ({mark}): " + a.describe())
    if a.rc != 0:
        raise TestFailure("exit status is not 0: " + a.describe())
    if a.summary is None:
        raise TestFailure("no summary: line: " + a.describe())
    return a


# ---------------------------------------------------------------- independent references

def readelf(*args):
    r = subprocess.run(["readelf", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120)
    if r.returncode != 0:
        raise TestFailure(f"readelf {' '.join(args)} failed: {r.stderr.decode(errors='replace')}")
    return r.stdout.decode(errors="replace")


def sections(path):
    """{name: (file offset, size, flags)} from readelf -SW."""
    out = {}
    for line in readelf("-SW", str(path)).splitlines():
        line = line.strip()
        if not line.startswith("[") or "]" not in line:
            continue
        f = line.split("]", 1)[1].split()
        # name type address offset size entsize [flags] link info align
        if len(f) < 6 or not re.fullmatch(r"[0-9a-f]+", f[3]):
            continue
        out[f[0]] = (int(f[3], 16), int(f[4], 16), f[6] if len(f) > 9 else "")
    return out


def exec_segments(path):
    """[(vaddr, offset, filesz)] of the executable PT_LOAD segments, from readelf -lW."""
    segs = []
    pat = re.compile(r"^\s*LOAD\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+"
                     r"0x[0-9a-f]+\s+([RWE ]+?)\s+0x[0-9a-f]+\s*$")
    for line in readelf("-lW", str(path)).splitlines():
        m = pat.match(line)
        if m and "E" in m.group(4):
            segs.append((int(m.group(2), 16), int(m.group(1), 16), int(m.group(3), 16)))
    if not segs:
        raise TestFailure(f"readelf -lW {path}: no executable LOAD segment")
    return segs


def file_offset(segs, va):
    for vaddr, off, filesz in segs:
        if vaddr <= va < vaddr + filesz:
            return va - vaddr + off
    raise TestFailure(f"0x{va:x} lies in no executable LOAD segment")


def objdump_functions(toolchain, path):
    """{"Read"|"Write": (entry, [RET addresses], [(address, text) of the first four
    instructions], [addresses of CALL runtime.memmove], bytes the prologue moves SP down)} from
    that toolchain's go tool objdump."""
    out = gobuild.go_tool(toolchain, "objdump", "-s", OBJDUMP_RE, str(path))
    funcs, cur = {}, None
    for line in out.splitlines():
        if line.startswith("TEXT "):
            m = re.match(r"TEXT crypto/tls\.\(\*Conn\)\.(Read|Write)\(SB\)", line)
            cur = m.group(1) if m else None
            if cur:
                funcs[cur] = [None, [], [], [], 0, False]
            continue
        if cur is None:
            continue
        # "  conn.go:1131\t\t0x5c0f54\t\tc3\t\t\t\tRET\t..." : position, address, bytes, insn
        f = [x.strip() for x in line.split("\t") if x.strip()]
        if len(f) < 4 or not f[1].startswith("0x"):
            continue
        addr = int(f[1], 16)
        if funcs[cur][0] is None:
            funcs[cur][0] = addr
        if len(funcs[cur][2]) < 4:
            funcs[cur][2].append((addr, f[3]))
        op = f[3].split()[0]
        if op == "RET":
            funcs[cur][1].append(addr)
        if op == "CALL" and "runtime.memmove(SB)" in f[3]:
            funcs[cur][3].append(addr)
        # The prologue: PUSHQ BP (newer Go) and SUBQ $frame, SP, before the body begins.
        if not funcs[cur][5] and op == "PUSHQ":
            funcs[cur][4] += 8
        m = re.match(r"SUBQ \$(0x[0-9a-f]+|\d+), SP$", f[3].strip())
        if not funcs[cur][5] and m:
            funcs[cur][4] += int(m.group(1), 0)
            funcs[cur][5] = True
    for name in FUNCS:
        if name not in funcs or funcs[name][0] is None or not funcs[name][1]:
            raise TestFailure(f"go tool objdump ({toolchain}) of {path} shows no {name} or no "
                              f"RET in it:\n{out[:3000]}")
    return {k: (v[0], v[1], v[2], v[3], v[4]) for k, v in funcs.items()}


def expected_entry_probe(arch, entry, first):
    """Where the entry probe belongs: on amd64, the prologue's stack-check branch (a JBE the
    kernel emulates) when only the compare, a load of g from FS (ABI0) and a LEAQ of the
    check's address come before it; otherwise the function's first instruction."""
    if arch != "amd64":
        return entry
    for addr, text in first:
        op = text.split()[0]
        if op.startswith("J") and op != "JMP":
            return addr
        if not (op.startswith("CMP") or op == "LEAQ" or (op == "MOVQ" and "FS:" in text)):
            return entry
    return entry


def dwarf_offsets(path):
    """{"goid": N, ...} from readelf --debug-dump=info (binutils inflates Go 1.15's .zdebug_*
    and the SHF_COMPRESSED .debug_* of later Go alike)."""
    want_types = {t for t, _ in DWARF_MEMBERS}
    found = {}
    die_re = re.compile(r"^\s*<(\d+)><[0-9a-f]+>: Abbrev Number: \d+ \((DW_TAG_\w+)\)")
    name_re = re.compile(r"^\s*<[0-9a-f]+>\s+DW_AT_name\s*:\s*"
                         r"(?:\(indirect string, offset: 0x[0-9a-f]+\):\s*)?(.*?)\s*$")
    loc_re = re.compile(r"^\s*<[0-9a-f]+>\s+DW_AT_data_member_location\s*:\s*(\d+)\s*$")
    struct = None  # (level, name) of the structure being read
    die = None     # [level, tag, name, location] of the current DIE
    r = subprocess.Popen(["readelf", "--debug-dump=info", str(path)], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, errors="replace")

    def finish(d):
        nonlocal struct
        if d is None:
            return
        level, tag, name, loc = d
        if struct and level == struct[0] + 1 and tag == "DW_TAG_member" and loc is not None:
            key = DWARF_MEMBERS.get((struct[1], name))
            if key and key not in found:
                found[key] = loc

    for line in r.stdout:
        m = die_re.match(line)
        if m:
            finish(die)
            level, tag = int(m.group(1)), m.group(2)
            if struct and level <= struct[0]:
                struct = None
            die = [level, tag, None, None]
            continue
        if die is None:
            continue
        m = name_re.match(line)
        if m:
            die[2] = m.group(1)
            if die[1] == "DW_TAG_structure_type" and die[2] in want_types and struct is None:
                struct = (die[0], die[2])
            continue
        m = loc_re.match(line)
        if m:
            die[3] = int(m.group(1))
    finish(die)
    r.wait(60)
    missing = [k for k in DWARF_MEMBERS.values() if k not in found]
    if missing:
        raise TestFailure(f"readelf --debug-dump=info {path}: no DWARF offset of {missing}")
    return found


# ---------------------------------------------------------------- checks

def check_plan(a, toolchain, arch, stripped, ref, segs, data):
    """One build's --analyze output against objdump (ref), the program headers and the bytes."""
    abi = abi_of(toolchain)
    label = f"{toolchain} {arch}{' stripped' if stripped else ''}"
    if a.go is None or a.offsets is None:
        raise TestFailure(f"{label}: no Go plan: " + a.describe())
    expect = {"machine": arch, "abi": abi, "functions": "pclntab" if stripped else "symtab",
              "offsets": "table" if stripped else "dwarf"}
    for k, v in expect.items():
        if a.go.get(k) != v:
            raise TestFailure(f"{label}: go: {k}={a.go.get(k)}, expected {v}\n" + a.describe())
    if not a.go.get("version", "").startswith(toolchain + "."):
        raise TestFailure(f"{label}: version {a.go.get('version')}, expected {toolchain}.x")
    if a.offsets["g"] != G_LOC[(arch, abi)]:
        raise TestFailure(f"{label}: g={a.offsets['g']}, expected {G_LOC[(arch, abi)]}")

    expected_probes = []
    for name in FUNCS:
        entry, rets, first, memmoves, frame = ref[name]
        f = a.functions.get(name)
        if f is None:
            raise TestFailure(f"{label}: no go-function line for {name}\n" + a.describe())
        if f["entry"] != entry:
            raise TestFailure(f"{label}: {name} entry 0x{f['entry']:x}, objdump says 0x{entry:x}")
        if f["rets"] != rets:
            raise TestFailure(
                f"{label}: {name} RETs differ from go tool objdump:\n"
                f"  analyzer: {' '.join(hex(x) for x in f['rets'])}\n"
                f"  objdump:  {' '.join(hex(x) for x in rets)}")
        if f["offset"] != file_offset(segs, entry):
            raise TestFailure(f"{label}: {name} file offset 0x{f['offset']:x}, the program "
                              f"headers say 0x{file_offset(segs, entry):x}")
        fid = FUNC_IDS[name]
        if name == "Read" and arch == "amd64" and len(memmoves) == 1:
            # Read as one probe on its call to runtime.memmove: the source and count are
            # memmove's arguments, c is in its argument slot above the prologue's frame.
            off = file_offset(segs, memmoves[0])
            if data[off] != 0xe8:
                raise TestFailure(f"{label}: Read's memmove call at 0x{memmoves[0]:x} is not a "
                                  f"call rel32: {data[off:off + 5].hex()}")
            expected_probes.append(f"probe: func={fid} kind=copy offset=0x{off:x} "
                                   f"arg0=sp+{frame + 8} " + COPY_ARGS[abi])
            continue
        want_probe = expected_entry_probe(arch, entry, first)
        if f["entry_probe"] != want_probe:
            raise TestFailure(f"{label}: {name} entry probe at 0x{f['entry_probe']:x}, the "
                              f"prologue {first} puts it at 0x{want_probe:x}")
        if arch == "amd64" and want_probe == entry:
            raise TestFailure(f"{label}: {name}: no stack-check branch in the prologue {first}")
        expected_probes.append(f"probe: func={fid} kind=entry "
                               f"offset=0x{file_offset(segs, want_probe):x} "
                               + ENTRY_ARGS[(arch, abi)])
        for ret in rets:
            off = file_offset(segs, ret)
            ins = RET_BYTES[arch]
            if data[off:off + len(ins)] != ins:
                raise TestFailure(f"{label}: {name} RET at 0x{ret:x} (file offset 0x{off:x}) "
                                  f"holds {data[off:off + 4].hex()}, not a RET")
            expected_probes.append(f"probe: func={fid} kind=return offset=0x{off:x} "
                                   + RETURN_ARGS[abi])
    if a.probes != expected_probes:
        raise TestFailure(f"{label}: probes differ from what objdump gives:\nexpected:\n  "
                          + "\n  ".join(expected_probes) + "\n" + a.describe())
    n = {name: len(ref[name][1]) for name in FUNCS}
    read = ("its copy to the caller (emulated call)"
            if arch == "amd64" and len(ref["Read"][3]) == 1 else f"entry + {n['Read']} RETs")
    if arch == "amd64" and len(ref["Read"][3]) != 1:
        raise TestFailure(f"{label}: Read has {len(ref['Read'][3])} calls to runtime.memmove; "
                          "the builds tested have one, the copy placement rests on it")
    want = f"Read: {read}, Write: entry + {n['Write']} RETs"
    if not a.summary.startswith(want):
        raise TestFailure(f"{label}: summary {a.summary!r} does not start with {want!r}")


def check_dwarf(a, label, path):
    dw = dwarf_offsets(path)
    got = {k: int(v) for k, v in a.offsets.items() if k != "g"}
    expected = {"goid": dw["goid"], "conn": dw["conn"], "conn_fd": dw["tcpconn_conn"] +
                dw["conn_fd"], "pfd": dw["pfd"], "sysfd": dw["sysfd"]}
    if got != expected:
        raise TestFailure(f"{label}: go-offsets {got}, the DWARF (readelf) says {expected}")
    log(f"{label}: DWARF runtime.g.goid = {dw['goid']}, the plan agrees ({a.offsets_line})")


def build_all(t):
    """{(toolchain, arch, stripped): path} of the tlspeer builds."""
    builds = {}
    for tc in TOOLCHAINS:
        for arch in ARCHES:
            for stripped in (False, True):
                out = t.tmp / f"tlspeer-{tc}-{arch}{'-stripped' if stripped else ''}"
                gobuild.build(tc, out, stripped=stripped,
                              goarch=arch if arch == "arm64" else "amd64")
                builds[(tc, arch, stripped)] = out
    return builds


def check_builds(builds):
    plans = {}
    for tc in TOOLCHAINS:
        for arch in ARCHES:
            plain = builds[(tc, arch, False)]
            ref = objdump_functions(tc, plain)
            segs = exec_segments(plain)
            for stripped in (False, True):
                path = builds[(tc, arch, stripped)]
                a = analyze(path)
                check_plan(a, tc, arch, stripped, ref, exec_segments(path), path.read_bytes())
                plans[(tc, arch, stripped)] = a
            label = f"{tc} {arch}"
            check_dwarf(plans[(tc, arch, False)], label, plain)
            # Stripping (-ldflags=-s -w) drops .symtab and the DWARF, which lie outside the
            # loaded segments: the text keeps its layout, so the plan must be the same, only
            # found another way (checked above: pclntab + version table).
            p, s = plans[(tc, arch, False)], plans[(tc, arch, True)]
            if s.probes != p.probes or s.offsets_line != p.offsets_line:
                raise TestFailure(f"{label}: the stripped build's plan differs:\n"
                                  + p.describe() + s.describe())
            if exec_segments(builds[(tc, arch, True)]) != segs:
                raise TestFailure(f"{label}: stripping moved the executable segment")
            log(f"{label}: {a_short(p)}; stripped: same plan from .gopclntab + version table")
    return plans


def a_short(a):
    return (f"{a.go['abi']}, {len(a.probes)} probes, Read RETs "
            f"{len(a.functions['Read']['rets'])}, Write RETs {len(a.functions['Write']['rets'])}")


# ---------------------------------------------------------------- bad input

def expect_reason(a, label, reasons, good=None):
    """No probes and a summary containing one of reasons; or, when good is given, exactly the
    plan of the intact file (a copy that still holds everything the plan needs)."""
    if good is not None and a.probes:
        if a.probes != good.probes or a.offsets_line != good.offsets_line:
            raise TestFailure(f"{label}: a plan that differs from the intact file's:\n"
                              + a.describe())
        log(f"{label}: same plan as the intact file ({a.summary})")
        return
    if a.probes:
        raise TestFailure(f"{label}: probes planned:\n" + a.describe())
    if not any(r in a.summary for r in reasons):
        raise TestFailure(f"{label}: summary {a.summary!r} has none of {reasons}\n"
                          + a.describe())
    log(f"{label}: {a.summary}")


def corrupt_section(src, dst, names, seed, keep=0):
    """A copy of src with the bytes of the first existing section of names (after the first
    keep bytes) replaced by random bytes; returns the section's name."""
    secs = sections(src)
    name = next((n for n in names if n in secs), None)
    if name is None:
        raise TestFailure(f"{src} has none of the sections {names}: {sorted(secs)}")
    off, size, _ = secs[name]
    data = bytearray(src.read_bytes())
    rnd = random.Random(seed)
    data[off + keep:off + size] = rnd.randbytes(size - keep)
    dst.write_bytes(bytes(data))
    return name


# The analyzer's reasons, as the summary states them (analyzer/binary/gotls.c, tlslib.c).
NOT_ELF = "not an ELF file"
NO_OPENSSL = "no SSL_read/SSL_write symbols"
NO_TLS = "Go executable without crypto/tls"
BAD_PCLNTAB = "cannot read the function table (.gopclntab)"
# A Go executable cut short: its section headers lie past the end (or, cut inside the ELF
# header, it is no ELF file at all).
TRUNCATED = ("truncated ELF file", NOT_ELF)


def check_bad_input(t, builds, plans):
    bad = t.tmp / "bad"
    bad.mkdir()

    # Truncated copies: a dynamically linked (cgo) amd64 build and a static arm64 one.
    for key in (("go1.19", "amd64", False), ("go1.23", "arm64", True)):
        src = builds[key]
        data = src.read_bytes()
        for cut in (64, 4096, len(data) // 2, len(data) - 1):
            p = bad / f"{src.name}-cut{cut}"
            p.write_bytes(data[:cut])
            a = analyze(p)
            expect_reason(a, f"{src.name} cut to {cut} B", TRUNCATED, good=plans[key])

    # DWARF overwritten with random bytes: Go 1.15 (.zdebug_info, zlib) and Go 1.19/1.23
    # (SHF_COMPRESSED .debug_info). The plan must come from the version table instead.
    for key in (("go1.15", "amd64", False), ("go1.19", "arm64", False),
                ("go1.23", "amd64", False)):
        src = builds[key]
        for seed, keep in ((1, 0), (2, 12), (3, 24)):
            p = bad / f"{src.name}-dwarf{seed}"
            sec = corrupt_section(src, p, (".zdebug_info", ".debug_info"), seed, keep)
            a = analyze(p)
            label = f"{src.name} with {sec} overwritten after {keep} B"
            if a.go is None or a.go.get("offsets") != "table" or \
                    "offsets from the version table" not in a.summary:
                raise TestFailure(f"{label}: expected offsets from the version table:\n"
                                  + a.describe())
            expect_reason(a, label, (), good=plans[key])

    # .gopclntab overwritten in stripped builds: no symbols to fall back to.
    for key in (("go1.19", "amd64", True), ("go1.15", "arm64", True)):
        src = builds[key]
        for seed, keep in ((1, 0), (2, 8), (3, 64)):
            p = bad / f"{src.name}-pclntab{seed}"
            corrupt_section(src, p, (".gopclntab",), seed, keep)
            expect_reason(analyze(p), f"{src.name} with .gopclntab overwritten after {keep} B",
                          (BAD_PCLNTAB,))

    # Not Go: a C program without OpenSSL.
    a = analyze("/bin/true")
    if a.go is not None:
        raise TestFailure("/bin/true analysed as Go:\n" + a.describe())
    expect_reason(a, "/bin/true", (NO_OPENSSL,))

    # Go without crypto/tls, plain and stripped.
    hello_dir = t.tmp / "hello"
    hello_dir.mkdir()
    (hello_dir / "main.go").write_text(HELLO_GO)
    for tc in ("go1.15", "go1.23"):
        for stripped in (False, True):
            p = gobuild.build(tc, t.tmp / f"hello-{tc}{'-stripped' if stripped else ''}",
                              source=hello_dir / "main.go", stripped=stripped)
            a = analyze(p)
            if a.go is None or not a.go.get("version", "").startswith(tc + "."):
                raise TestFailure(f"{p.name}: not recognised as {tc}:\n" + a.describe())
            expect_reason(a, p.name, (NO_TLS,))

    # Random bytes and an empty file.
    p = bad / "random"
    p.write_bytes(random.Random(4).randbytes(1 << 20))
    expect_reason(analyze(p), "1 MiB of random bytes", (NOT_ELF,))
    p = bad / "empty"
    p.write_bytes(b"")
    expect_reason(analyze(p), "an empty file", (NOT_ELF,))

    # The one error exit: a file that cannot be opened.
    r = subprocess.run([str(ANALYZER), "--analyze", str(bad / "does-not-exist")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if r.returncode != 1 or b"Failed to open" not in r.stderr:
        raise TestFailure(f"a missing file: exit status {r.returncode}, stderr "
                          f"{r.stderr.decode(errors='replace')!r} (expected 1, 'Failed to open')")


def main(t):
    if not ANALYZER.exists():
        raise TestFailure(f"{ANALYZER} does not exist (build it: ninja -C build)")
    if not shutil.which("readelf"):
        raise TestFailure("readelf (binutils) is missing")
    log(f"analyzer: {ANALYZER}")
    builds = build_all(t)
    plans = check_builds(builds)
    check_bad_input(t, builds, plans)


harness.run(main)
