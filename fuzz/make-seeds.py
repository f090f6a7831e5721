#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets to fuzz/corpus/<target>/.

Seeds are small valid inputs that let the fuzzer start deep inside each parser: one frame of each
type (msgpack bodies as common/msg.c encodes them), records frames with valid data records
(struct tlssniff_data_record, bpf/events.h), and small ELF files with the OpenSSL symbols.
msgpack is encoded by hand below, so the script needs only python3 and, for the ELF seeds, clang.

Usage: fuzz/make-seeds.py [--no-elf]   (re-run after changing a frame or record layout)
"""

import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

# common/frame.h
L_HELLO, L_FILE, L_RECORDS, L_STATS, L_ATTACHED, L_READY = range(0x0101, 0x0107)
A_HELLO, A_PLAN = 0x0201, 0x0202
PROTOCOL_VERSION = 1

# bpf/events.h
REC_DATA = 1
DIR_READ, DIR_WRITE = 0, 1
ROLE_UNKNOWN, ROLE_CLIENT, ROLE_SERVER = 0, 1, 2
DATA_TRUNCATED, DATA_NO_SOCKET, DATA_LAST = 1, 2, 4
AF_UNIX, AF_INET, AF_INET6 = 1, 2, 10
FUNC_SSL_READ, FUNC_SSL_WRITE = 1, 2
PROBE_ENTRY, PROBE_RETURN = 1, 2
LOC_REG = 1

# struct tlssniff_data_record, little-endian (x86_64 and arm64), no padding holes.
DATA_RECORD = struct.Struct("<IIIiQQQQIIIHHHBBBBH16s16s16s")
assert DATA_RECORD.size == 120


# --- msgpack, the subset common/msg.c emits ------------------------------------------------

def mp(o):
    if o is None:
        return b"\xc0"
    if isinstance(o, bool):
        return b"\xc3" if o else b"\xc2"
    if isinstance(o, int):
        if 0 <= o < 0x80:
            return bytes([o])
        if -32 <= o < 0:
            return struct.pack("b", o)
        if o >= 0:
            for fmt, tag in (("B", 0xCC), (">H", 0xCD), (">I", 0xCE), (">Q", 0xCF)):
                if o < 1 << (8 * struct.calcsize(fmt)):
                    return bytes([tag]) + struct.pack(fmt, o)
        for fmt, tag in (("b", 0xD0), (">h", 0xD1), (">i", 0xD2), (">q", 0xD3)):
            bits = 8 * struct.calcsize(fmt)
            if -(1 << (bits - 1)) <= o:
                return bytes([tag]) + struct.pack(fmt, o)
        raise ValueError(o)
    if isinstance(o, str):
        b = o.encode()
        if len(b) < 32:
            return bytes([0xA0 | len(b)]) + b
        if len(b) < 256:
            return b"\xd9" + bytes([len(b)]) + b
        return b"\xda" + struct.pack(">H", len(b)) + b
    if isinstance(o, (bytes, bytearray)):
        if len(o) < 256:
            return b"\xc4" + bytes([len(o)]) + bytes(o)
        if len(o) < 65536:
            return b"\xc5" + struct.pack(">H", len(o)) + bytes(o)
        return b"\xc6" + struct.pack(">I", len(o)) + bytes(o)
    if isinstance(o, (list, tuple)):
        head = (bytes([0x90 | len(o)]) if len(o) < 16
                else b"\xdc" + struct.pack(">H", len(o)))
        return head + b"".join(mp(x) for x in o)
    raise TypeError(o)


def records_body(recs):
    """As msg_records_begin/add/finish build it: an array32 header, then bin objects."""
    return b"\xdd" + struct.pack(">I", len(recs)) + b"".join(mp(r) for r in recs)


def frame(ftype, body):
    return struct.pack("<IHH", len(body), ftype, 0) + body


# --- frame bodies --------------------------------------------------------------------------

def hello(version=PROTOCOL_VERSION, offset_ns=1_700_000_000_000_000_000, call_cap=4 << 20):
    return frame(L_HELLO, mp([version, offset_ns, call_cap]))


def file_(file_id=1, path="/usr/lib/x86_64-linux-gnu/libssl.so.3", kind=2):
    return frame(L_FILE, mp([file_id, 0x800003, 1234567, path, 4242, kind]))


def plan(file_id=1, n_probes=2):
    probes = []
    for i in range(n_probes):
        kind = PROBE_ENTRY if i % 2 == 0 else PROBE_RETURN
        locs = [[LOC_REG, r, 0] for r in (5, 4, 1)] + [[0, 0, 0], [LOC_REG, 0, -8]]
        probes.append([kind, FUNC_SSL_READ + i // 2 % 2, 0x3A000 + 16 * i, locs])
    return frame(A_PLAN, mp([file_id, "libssl.so.3", "entry and return probes", probes]))


def stats():
    return frame(L_STATS, mp([["calls", 12], ["records", 30], ["drop_ringbuf_records", 0],
                              ["trunc_bytes", 1 << 40]]))


def attached(error=None):
    return frame(L_ATTACHED, mp([1, 8, error]))


def ready():
    return frame(L_READY, mp([8, 2]))


def data_record(payload, conn_id=7, direction=DIR_WRITE, role=ROLE_CLIENT, family=AF_INET,
                call_len=None, call_offset=0, call_start=0, flags=DATA_LAST, comm=b"curl"):
    """call_start: stream offset of the call's first byte; the record's is call_offset on."""
    if call_len is None:
        call_len = call_offset + len(payload)
    if family == AF_INET:
        laddr, raddr = bytes([10, 0, 0, 2]) + bytes(12), bytes([93, 184, 216, 34]) + bytes(12)
    elif family == AF_INET6:
        laddr, raddr = bytes(15) + b"\x01", bytes([0x20, 0x01, 0x0D, 0xB8]) + bytes(11) + b"\x02"
    else:
        laddr = raddr = bytes(16)
    hdr = DATA_RECORD.pack(REC_DATA, 4242, 4243, 5, 123_456_789_000, conn_id, 0x5555_0000_1000,
                           call_start + call_offset, call_len, call_offset, len(payload), family,
                           54321, 443, direction, role, flags, 1, 0, laddr, raddr, comm)
    return hdr + payload


REQUEST = b"GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/7.88\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


def records_simple():
    return frame(L_RECORDS, records_body([
        data_record(REQUEST),
        data_record(RESPONSE, direction=DIR_READ),
        data_record(b"second call", call_start=len(REQUEST)),
    ]))


def records_split():
    """One call in three records, one call that lost its middle record, a truncated call."""
    body = bytes(range(256)) * 8
    a, b, c = body[:700], body[700:1400], body[1400:]
    return frame(L_RECORDS, records_body([
        data_record(a, conn_id=9, call_len=len(body), call_offset=0, flags=0),
        data_record(b, conn_id=9, call_len=len(body), call_offset=700, flags=0),
        data_record(c, conn_id=9, call_len=len(body), call_offset=1400, flags=DATA_LAST),
        data_record(a, conn_id=10, call_len=len(body), call_offset=0, flags=0,
                    call_start=4096),
        data_record(c, conn_id=10, call_len=len(body), call_offset=1400, flags=DATA_LAST,
                    call_start=4096),
        data_record(b"x" * 100, conn_id=11, call_len=1 << 20, call_offset=0,
                    flags=DATA_LAST | DATA_TRUNCATED),
        data_record(b"pending", conn_id=12, call_len=100, flags=0),
    ]))


def records_families():
    """Unknown role (the analyzer looks at listening ports), IPv6, unix, no socket yet (held
    until a later message of the same connection brings it: conn/identity.c)."""
    return frame(L_RECORDS, records_body([
        data_record(b"ClientHello-ish", conn_id=24, family=0, flags=DATA_LAST | DATA_NO_SOCKET),
        data_record(b"\x00\x01binary\xff\r\n\t\\", conn_id=20, role=ROLE_UNKNOWN, family=AF_INET),
        data_record(REQUEST, conn_id=21, role=ROLE_SERVER, family=AF_INET6, direction=DIR_READ),
        data_record(b"{\"q\":1}", conn_id=22, family=AF_UNIX, comm=b"py\"th\\on\x01\xc3\xa9"),
        data_record(b"?", conn_id=23, family=0, flags=DATA_LAST | DATA_NO_SOCKET),
        data_record(b"late", conn_id=24, call_start=15, family=AF_INET6),
    ]))


def records_http():
    """A client's HTTP/1.1 request and response on one connection, then its close."""
    req = b"GET /x HTTP/1.1\r\nHost: h\r\nCookie: a=b\r\n\r\n"
    resp = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"4\r\nbody\r\n0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
    close = struct.pack("<IIQQ", 4, 0, 7, 2_000_000_000)
    return frame(L_RECORDS, records_body([
        data_record(req, direction=DIR_WRITE),
        data_record(resp, direction=DIR_READ),
        close,
    ]))


def records_bad():
    """A record that fails validation next to a good one."""
    good = data_record(b"ok")
    bad = bytearray(data_record(b"bad"))
    bad[56:60] = struct.pack("<I", 4)  # len says 4, the sample holds 3
    return frame(L_RECORDS, records_body([bytes(bad), good, b"short"]))


# --- ELF seeds -----------------------------------------------------------------------------

SSL_C = r"""
int SSL_other(void) { return 0; } /* first, so that no wanted symbol has the value 0 */
int SSL_read(void *s, void *b, int n) { return n + (s != b); }
int SSL_write(void *s, const void *b, int n) { return n - (s != b); }
int SSL_read_ex(void *s, void *b, unsigned long n, unsigned long *r) { *r = n; return s != b; }
int SSL_write_ex(void *s, const void *b, unsigned long n, unsigned long *w) { *w = n; return 1; }
"""

NO_SSL_C = "int not_tls(int x) { return x * 2; }\n"


def build_elf(tmp, name, source, extra):
    src = os.path.join(tmp, name + ".c")
    out = os.path.join(tmp, name)
    with open(src, "w") as f:
        f.write(source)
    subprocess.run(["clang", "-O1", "-fno-asynchronous-unwind-tables", "-nostdlib", src, "-o",
                    out] + extra, check=True)
    return out


def strip(path, keep_symtab=False):
    args = ["llvm-strip" if shutil.which("llvm-strip") else "strip"]
    args += ["--strip-debug"] if keep_symtab else ["--strip-all"]
    args += ["-R", ".comment", "-R", ".note.gnu.build-id", path]
    subprocess.run(args, check=True)
    with open(path, "rb") as f:
        return f.read()


def elf_seeds():
    # Small pages keep the files a few KiB; the layout is what matters to the parser.
    small = ["-fuse-ld=lld", "-Wl,-z,max-page-size=64", "-Wl,-z,norelro",
             "-Wl,--hash-style=gnu", "-Wl,--build-id=none"]
    seeds = {}
    with tempfile.TemporaryDirectory() as tmp:
        lib = build_elf(tmp, "libssl.so.3", SSL_C,
                        ["-shared", "-fPIC", "-Wl,-soname,libssl.so.3"] + small)
        seeds["libssl-so"] = strip(lib)
        exe = build_elf(tmp, "static-exe", SSL_C + "void _start(void) { for (;;); }\n",
                        ["-static", "-fno-pic"] + small)
        seeds["static-exe-symtab"] = strip(exe, keep_symtab=True)
        nossl = build_elf(tmp, "libfoo.so", NO_SSL_C, ["-shared", "-fPIC"] + small)
        seeds["no-ssl-so"] = strip(nossl)
        # arm64: a shared object (the other supported machine) and a relocatable object
        # (symbols but no program headers).
        arm = ["-target", "aarch64-linux-gnu"]
        armlib = build_elf(tmp, "libssl-arm64.so", SSL_C,
                           arm + ["-shared", "-fPIC", "-Wl,-soname,libssl.so.1.1"] + small)
        seeds["arm64-so"] = strip(armlib)
        src = os.path.join(tmp, "arm64.c")
        obj = os.path.join(tmp, "arm64.o")
        with open(src, "w") as f:
            f.write(SSL_C)
        subprocess.run(["clang"] + arm + ["-O1", "-fno-asynchronous-unwind-tables", "-c", src,
                                          "-o", obj], check=True)
        seeds["arm64-relocatable"] = strip(obj, keep_symtab=True)
    lib = seeds["libssl-so"]
    seeds["libssl-so-truncated"] = lib[: len(lib) // 2]
    seeds["elf-header-only"] = lib[:64]
    seeds["not-elf"] = b"#!/bin/sh\necho not an ELF file\n"
    return seeds


# --- corpora -------------------------------------------------------------------------------

def write_corpus(target, seeds):
    d = os.path.join(CORPUS, target)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    for name, data in sorted(seeds.items()):
        assert len(data) < 64 << 10, (target, name, len(data))
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    print("%s: %d seeds, %d bytes" % (target, len(seeds), sum(len(v) for v in seeds.values())))


def main():
    with_elf = "--no-elf" not in sys.argv[1:]
    frames = {
        "l-hello": hello(),
        "l-hello-bad-version": hello(version=2, offset_ns=-5, call_cap=0),
        "l-file": file_(),
        "a-hello": frame(A_HELLO, mp([PROTOCOL_VERSION])),
        "a-plan": plan(n_probes=8),
        "a-plan-empty": frame(A_PLAN, mp([3, "", "no SSL_read/SSL_write symbols", []])),
        "l-stats": stats(),
        "l-attached": attached(),
        "l-attached-error": attached("Failed to attach uprobe: No such process"),
        "l-ready": ready(),
        "l-records": records_simple(),
        "l-records-split": records_split(),
        "stream-all": hello() + file_() + records_simple() + stats() + attached() + ready(),
        "stream-partial": hello() + records_simple()[:-5],
    }
    write_corpus("frames", frames)

    # fuzz-analyzer: a flags byte first (see fuzz-analyzer.c), then the stream.
    FLAG_HELLO, FLAG_JSON, FLAG_FD, FLAG_EXPIRE = 1, 2, 4, 8
    analyzer = {
        "text-session": bytes([0x00]) + hello() + file_() + records_simple() + stats()
        + attached("Permission denied") + ready(),
        "json-records": bytes([FLAG_HELLO | FLAG_JSON | 0xE0]) + records_simple()
        + records_split() + records_families() + records_bad(),
        "text-records-short-print": bytes([FLAG_HELLO | 0x10]) + records_split()
        + records_families(),
        "text-records-full-print": bytes([FLAG_HELLO | 0xF0]) + records_simple() + records_bad(),
        "no-hello-first": bytes([0x00]) + records_simple() + hello() + hello(),
        "stats-then-records": bytes([FLAG_HELLO | FLAG_JSON]) + stats() + records_families(),
        "held-then-expired": bytes([FLAG_HELLO | FLAG_EXPIRE]) + records_families()
        + records_simple(),
        "http-exchange": bytes([FLAG_HELLO | FLAG_JSON]) + records_http(),
        "http-exchange-text": bytes([FLAG_HELLO | 0x30]) + records_http(),
    }
    if with_elf:
        lib = elf_seeds()["libssl-so"]
        analyzer["file-with-fd"] = (bytes([FLAG_HELLO | FLAG_FD]) + struct.pack("<H", len(lib))
                                    + lib + file_() + file_(file_id=2, kind=1))
    write_corpus("analyzer", analyzer)

    if with_elf:
        write_corpus("tlslib", elf_seeds())

    # fuzz-loaderd: frames as [type index, flags, u16 little-endian length, body] (see
    # fuzz-loaderd.c: index 0 is A_HELLO, 1 A_PLAN, then loaderd's own types, then unknown).
    def lf(index, body, flags=0):
        return bytes([index, flags]) + struct.pack("<H", len(body)) + body

    a_hello = lf(0, mp([PROTOCOL_VERSION]))
    a_plan = lf(1, plan(n_probes=8)[8:])
    write_corpus("loaderd", {
        "hello-plan": a_hello + a_plan,
        "plan-before-hello": a_plan + a_hello + a_plan,
        "hello-twice": a_hello + a_hello,
        "wrong-direction": a_hello + lf(2, hello()[8:]) + lf(4, records_simple()[8:]),
        "unknown-type": a_hello + lf(8, b"\x90") + lf(9, b""),
        "plan-truncated": a_hello + lf(1, plan(n_probes=2)[8:-3]),
        "plan-other-file": a_hello + lf(1, plan(file_id=9)[8:]),
        "plan-empty": a_hello + lf(1, mp([1, "", "no SSL_read/SSL_write symbols", []])),
    })


if __name__ == "__main__":
    main()
