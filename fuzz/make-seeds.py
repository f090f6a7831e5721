#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets to fuzz/corpus/<target>/.

Seeds are small valid inputs that let the fuzzer start deep inside each parser: one frame of each
type (msgpack bodies as common/msg.c encodes them), records frames with valid data records
(struct tlssniff_data_record, bpf/events.h), small ELF files with the OpenSSL symbols, and
hand-laid Go executables (fuzz-gotls). msgpack and the Go files are encoded by hand below, so the
script needs only python3 and, for the OpenSSL ELF seeds, clang.

Usage: fuzz/make-seeds.py [--no-elf] [TARGET...]   (re-run after changing a frame or record
layout; with TARGETs, e.g. `gotls`, only their corpora are rewritten)
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
P_PLAN = 0x0301
PROTOCOL_VERSION = 1

# bpf/events.h
REC_DATA = 1
DIR_READ, DIR_WRITE = 0, 1
ROLE_UNKNOWN, ROLE_CLIENT, ROLE_SERVER = 0, 1, 2
DATA_TRUNCATED, DATA_NO_SOCKET, DATA_LAST = 1, 2, 4
AF_UNIX, AF_INET, AF_INET6 = 1, 2, 10
FUNC_SSL_READ, FUNC_SSL_WRITE, FUNC_SSL_READ_BYTES, FUNC_SSL_FREE = 1, 2, 7, 8
FUNC_SSL_WRITE_BYTES = 10
PROBE_ENTRY, PROBE_RETURN, PROBE_COPY, PROBE_FORGET = 1, 2, 4, 5
LOC_REG, LOC_STACK = 1, 2

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
        locs = [[LOC_REG, r, 0] for r in (5, 4, 1)] + [[0, 0, 0], [LOC_REG, 0, -8]] + \
            [[0, 0, 0]] * 2
        probes.append([kind, FUNC_SSL_READ + i // 2 % 2, 0x3A000 + 16 * i, locs])
    return frame(A_PLAN, mp([file_id, "libssl.so.3", "entry and return probes", probes]))


def copy_plan(file_id=1):
    """Reads and writes on the copies (memcpy in ssl3_read_bytes, WPACKET_memcpy in
    do_ssl3_write) and SSL_free's forget probe."""
    none = [0, 0, 0]
    copy_locs = [[LOC_STACK, 0, 40], [LOC_REG, 4, 0], [LOC_REG, 1, 0], none, none,
                 [LOC_STACK, 0, 4], [LOC_STACK, 0, 0]]
    write_locs = [[LOC_REG, 14, 0], [LOC_REG, 4, 0], [LOC_REG, 1, 0], none, none,
                  [LOC_STACK, 0, 48], none]
    forget_locs = [[LOC_REG, 5, 0]] + [none] * 6
    probes = [[PROBE_COPY, FUNC_SSL_READ_BYTES, 0x54FA2, copy_locs],
              [PROBE_COPY, FUNC_SSL_WRITE_BYTES, 0x53773, write_locs],
              [PROBE_FORGET, FUNC_SSL_FREE, 0x3B353, forget_locs]]
    return frame(A_PLAN, mp([file_id, "libssl.so.3", "reads copy, writes copy", probes]))


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

# OpenSSL's shape where sslcopy.c looks (analyzer/binary/sslcopy.h): TLS_method() returns a
# table whose ssl_accept/ssl_connect (+0x28/+0x30), ssl_read_bytes (+0x68) and ssl_write_bytes
# (+0x70) members are this file's functions; read_bytes copies into buf with memcpy, write_bytes
# calls the record writer, which copies through a WPACKET_memcpy-like routine. Internal
# functions hidden (direct calls, relative relocations), as in libssl.
SSL_METHODS_C = r"""
#define API __attribute__((visibility("default")))
void *memcpy(void *d, const void *s, unsigned long n);
struct pkt { unsigned char *p; unsigned long n; };
API int SSL_other(void) { return 0; }
__attribute__((noinline)) int wp_memcpy(struct pkt *k, const void *src, unsigned long len)
{ if (!len) return 1; memcpy(k->p + k->n, src, len); k->n += len; return 1; }
__attribute__((noinline)) int do_write(void *s, int type, const unsigned char *buf,
                                       unsigned long len)
{ struct pkt k = { (unsigned char *)s + 64, 0 }; if (!wp_memcpy(&k, buf, len)) return -1;
  *(int *)s = type; return (int)k.n; }
__attribute__((noinline)) int write_bytes(void *s, int type, const void *buf, unsigned long len,
                                          unsigned long *w)
{ int r = do_write(s, type, buf, len); *w = len; return r; }
__attribute__((noinline)) int read_bytes(void *s, int type, int *rt, unsigned char *buf,
                                         unsigned long len, int peek, unsigned long *rb)
{ memcpy(buf, (unsigned char *)s + 8, len); *rb = len; *(int *)s = type; return peek ? 0 : type; }
__attribute__((noinline)) int hs_accept(void *s) { return s != 0; }
__attribute__((noinline)) int hs_connect(void *s) { return s == 0; }
static const void *const table[20] = { [5] = hs_accept, [6] = hs_connect, [13] = read_bytes,
                                       [14] = write_bytes };
API const void *TLS_method(void) { return table; }
API int SSL_read(void *s, void *b, int n) { unsigned long r; return read_bytes(s, 23, 0, b, n, 0, &r); }
API int SSL_write(void *s, const void *b, int n) { unsigned long w; return write_bytes(s, 23, b, n, &w); }
API int SSL_read_ex(void *s, void *b, unsigned long n, unsigned long *r)
{ return read_bytes(s, 23, 0, b, n, 0, r); }
API int SSL_write_ex(void *s, const void *b, unsigned long n, unsigned long *w)
{ return write_bytes(s, 23, b, n, w) > 0; }
API void SSL_free(void *s) { if (s) hs_accept(s); }
API int SSL_clear(void *s) { return hs_connect(s); }
"""

NO_SSL_C = "int not_tls(int x) { return x * 2; }\n"


def build_elf(tmp, name, source, extra, unwind=False):
    src = os.path.join(tmp, name + ".c")
    out = os.path.join(tmp, name)
    with open(src, "w") as f:
        f.write(source)
    flags = [] if unwind else ["-fno-asynchronous-unwind-tables"]
    subprocess.run(["clang", "-O1"] + flags + ["-nostdlib", src, "-o", out] + extra,
                   check=True)
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
        # With the method tables and .eh_frame_hdr (function extents): reads and writes on
        # the copies (analyzer/binary/test-place.c plans it).
        lib = build_elf(tmp, "libssl-methods.so.3", SSL_METHODS_C,
                        ["-shared", "-fPIC", "-fvisibility=hidden", "-Wl,-soname,libssl.so.3",
                         "-Wl,--eh-frame-hdr"] + small, unwind=True)
        seeds["libssl-so-methods"] = strip(lib)
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


# --- Go executable seeds (fuzz-gotls) -------------------------------------------------------
#
# Hand-laid ELF64 files, no toolchain needed: what analyzer/binary/gotls.c reads of a Go
# executable and nothing more. Every allocated section sits at base + its file offset, and
# PT_LOAD segments cover them, so that virtual addresses map back to the file.

EM_X86_64, EM_AARCH64 = 62, 183
ET_EXEC, ET_DYN = 2, 3
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_NOTE = 1, 2, 3, 7
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 1, 2, 4
PT_LOAD, PF_X, PF_W, PF_R = 1, 1, 2, 4
STB_GLOBAL, STT_FUNC = 1, 2
GO_READ, GO_WRITE = "crypto/tls.(*Conn).Read", "crypto/tls.(*Conn).Write"

X86_RET, ARM64_RET = b"\xc3", b"\xc0\x03\x5f\xd6"
X86_MOV, X86_NOP, X86_TEST, X86_XOR = b"\x48\x89\xc8", b"\x90", b"\x48\x85\xc0", b"\x31\xc0"
X86_STACK_CHECK = b"\x49\x3b\x66\x10"                      # cmp rsp, [r14+0x10]
X86_G_FROM_FS = b"\x64\x48\x8b\x0c\x25\xf8\xff\xff\xff"    # mov rcx, fs:[-8] (ABI0 prologue)
A64_NOP, A64_MOV, A64_ADD = b"\x1f\x20\x03\xd5", b"\xe0\x03\x02\xaa", b"\x00\x04\x00\x91"


def go_funcs(machine, abi0=False):
    """Read with three RETs, Write with two, then main.main; each 32-byte aligned, padded as
    the Go linker pads (int3 on amd64, zero words on arm64). Returns (code, [(name, off, size)])."""
    if machine == EM_X86_64:
        pro = X86_G_FROM_FS if abi0 else X86_STACK_CHECK
        bodies = [
            (GO_READ, pro + X86_MOV + X86_NOP + X86_RET + X86_TEST + X86_RET + X86_XOR + X86_RET),
            (GO_WRITE, pro + X86_NOP + X86_MOV + X86_RET + X86_XOR + X86_NOP + X86_RET),
            ("main.main", X86_XOR + X86_RET),
        ]
        pad = b"\xcc"
    else:
        bodies = [
            (GO_READ, A64_NOP + A64_MOV + ARM64_RET + A64_ADD + ARM64_RET + A64_NOP + ARM64_RET),
            (GO_WRITE, A64_MOV + A64_NOP + ARM64_RET + A64_ADD + ARM64_RET),
            ("main.main", A64_NOP + ARM64_RET),
        ]
        pad = b"\x00"
    code, funcs = b"", []
    for name, body in bodies:
        funcs.append((name, len(code), len(body)))
        code += body + pad * (-len(body) % 32)
    return code, funcs


def uvarint(v):
    out = b""
    while v >= 0x80:
        out += bytes([v & 0x7F | 0x80])
        v >>= 7
    return out + bytes([v])


def buildinfo_inline(version, modinfo=b""):
    """Go 1.18+: the header (magic, ptrsize 8, flags 2 = strings inline), then at 32 the
    version and the module info as uvarint-prefixed strings."""
    hdr = b"\xff Go buildinf:" + bytes([8, 2]) + bytes(16)
    sec = hdr + uvarint(len(version)) + version.encode() + uvarint(len(modinfo)) + modinfo
    return sec + bytes(-len(sec) % 16)


def pclntab(funcs, text_start, end, magic=0xFFFFFFF1, quantum=1):
    """Go 1.18/1.20 (magic 0xfffffff0/1) or 1.2 (0xfffffffb) .gopclntab of (name, va) pairs,
    laid out as analyzer/binary/test-gosym.c's build_pcln does: _func records carry zeros after
    nameoff."""
    tail = bytes(7 * 4)  # nameoff's successors: args, deferreturn, pcsp, pcfile, pcln, ...
    nf = len(funcs)
    if magic == 0xFFFFFFFB:
        # Go 1.2-1.15: nfunc, functab {entry, funcoff} (ptrsize each), end, filetab offset,
        # then _func records {entry uintptr, nameoff int32, ...}, then names; all offsets from
        # the table's start.
        functab = 16
        funcs_at = functab + (2 * nf + 1) * 8 + 4
        names_at = funcs_at + nf * (8 + 4 + len(tail))
        names, name_off = b"", []
        for name, _ in funcs:
            name_off.append(names_at + len(names))
            names += name.encode() + b"\0"
        tab = struct.pack("<IBBBBQ", magic, 0, 0, quantum, 8, nf)
        for i, (_, va) in enumerate(funcs):
            tab += struct.pack("<QQ", va, funcs_at + i * (8 + 4 + len(tail)))
        tab += struct.pack("<QI", end, 0)
        for i, (_, va) in enumerate(funcs):
            tab += struct.pack("<Qi", va, name_off[i]) + tail
        return tab + names
    # Go 1.18+: header words nfunc nfiles textStart funcnameOffset cuOffset filetabOffset
    # pctabOffset pclnOffset; names, (dummy) cu/file/pc tables, then at pclnOffset the functab
    # of u32 {entryoff, funcoff} pairs and the end, then the _funcs {entryoff u32, nameoff}.
    header = 8 + 8 * 8
    names, name_off = b"", []
    for name, _ in funcs:
        name_off.append(len(names))
        names += name.encode() + b"\0"
    cu = header + len(names)
    functab = cu + 3 * 8
    funcs_at = (2 * nf + 1) * 4  # relative to functab
    tab = struct.pack("<IBBBB", magic, 0, 0, quantum, 8)
    tab += struct.pack("<8Q", nf, 1, text_start, header, cu, cu + 8, cu + 16, functab)
    tab += names + b"\xee" * 24
    for i, (_, va) in enumerate(funcs):
        tab += struct.pack("<II", va - text_start, funcs_at + i * (4 + 4 + len(tail)))
    tab += struct.pack("<I", end - text_start)
    for i, (_, va) in enumerate(funcs):
        tab += struct.pack("<Ii", va - text_start, name_off[i]) + tail
    return tab


def note(name, ntype, desc):
    """An ELF note; name with its NUL(s): b"GNU\\0", or b"Go\\0\\0" as the Go linker writes it."""
    return (struct.pack("<III", len(name), len(desc), ntype) + name + bytes(-len(name) % 4)
            + desc + bytes(-len(desc) % 4))


def dwarf_offsets(goid):
    """A DWARF 4 unit with the six structures godwarf.c looks for, as the Go linker emits
    them: top-level DW_TAG_structure_type DIEs with DW_TAG_member children whose
    DW_AT_data_member_location is a DW_FORM_udata constant."""
    abbrev = bytes([
        1, 0x11, 1, 0x03, 0x08, 0, 0,               # compile_unit, children: name string
        2, 0x13, 1, 0x03, 0x08, 0x0B, 0x0F, 0, 0,   # structure_type: name, byte_size udata
        3, 0x0D, 0, 0x03, 0x08, 0x38, 0x0F, 0, 0,   # member: name, data_member_location udata
        0])
    structs = [("runtime.g", [("stack", 0), ("goid", goid)]),
               ("crypto/tls.Conn", [("conn", 0), ("isClient", 16)]),
               ("net.TCPConn", [("conn", 0)]),
               ("net.conn", [("fd", 0)]),
               ("net.netFD", [("pfd", 0), ("family", 72)]),
               ("internal/poll.FD", [("fdmu", 0), ("Sysfd", 16)])]
    dies = bytes([1]) + b"crypto/tls\0"
    for name, members in structs:
        dies += bytes([2]) + name.encode() + b"\0" + uvarint(512)
        for m, off in members:
            dies += bytes([3]) + m.encode() + b"\0" + uvarint(off)
        dies += b"\0"
    dies += b"\0"
    unit = struct.pack("<HIB", 4, 0, 8) + dies  # version, abbrev offset, address size
    return struct.pack("<I", len(unit)) + unit, abbrev


def elf64(machine, etype, base, sections):
    """sections: dicts name, type, flags, data, align, [link (name), info, entsize, segment].
    Allocated sections get address base + file offset; segment ("rx", "r" or "rw") gathers
    them into PT_LOAD segments, the "rx" one from the file's start (headers included), as the
    Go linker lays out its text segment. Returns the file's bytes."""
    segs = [s for s in ("rx", "r", "rw") if any(x.get("segment") == s for x in sections)]
    shstr = b"\0"
    names = {}
    for s in sections + [{"name": ".shstrtab"}]:
        names[s["name"]] = len(shstr)
        shstr += s["name"].encode() + b"\0"
    off = 64 + 56 * len(segs)
    layout = []
    for s in sections:
        off += -off % s.get("align", 1)
        layout.append(off)
        off += len(s["data"])
    shstr_off = off
    off += len(shstr)
    off += -off % 8
    shoff = off
    index = {s["name"]: i + 1 for i, s in enumerate(sections)}

    phdrs = b""
    for seg in segs:
        members = [(layout[i], s) for i, s in enumerate(sections) if s.get("segment") == seg]
        start = 0 if seg == "rx" else members[0][0]
        end = max(o + len(s["data"]) for o, s in members)
        flags = {"rx": PF_R | PF_X, "r": PF_R, "rw": PF_R | PF_W}[seg]
        phdrs += struct.pack("<IIQQQQQQ", PT_LOAD, flags, start, base + start, base + start,
                             end - start, end - start, 0x1000)

    entry = 0
    shdrs = bytes(64)
    for i, s in enumerate(sections):
        alloc = s.get("flags", 0) & SHF_ALLOC
        addr = base + layout[i] if alloc else 0
        if s["name"] == ".text":
            entry = addr
        shdrs += struct.pack("<IIQQQQIIQQ", names[s["name"]], s["type"], s.get("flags", 0),
                             addr, layout[i], len(s["data"]), index.get(s.get("link"), 0),
                             s.get("info", 0), s.get("align", 1), s.get("entsize", 0))
    shdrs += struct.pack("<IIQQQQIIQQ", names[".shstrtab"], SHT_STRTAB, 0, 0, shstr_off,
                         len(shstr), 0, 0, 1, 0)

    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)  # ELFCLASS64, little endian, SysV
    ehdr = ident + struct.pack("<HHIQQQIHHHHHH", etype, machine, 1, entry, 64, shoff, 0, 64,
                               56, len(segs), 64, len(sections) + 2, len(sections) + 1)
    out = bytearray(ehdr + phdrs)
    for i, s in enumerate(sections):
        out += bytes(layout[i] - len(out)) + s["data"]
    out += bytes(shstr_off - len(out)) + shstr
    out += bytes(shoff - len(out)) + shdrs
    return bytes(out)


def go_exe(machine, version, symtab=True, pcln=None, buildinfo="inline", etype=ET_EXEC,
           base=0x400000, abi0=False, notes=(), dwarf_goid=None):
    """A Go executable: .text with Read, Write and main.main; .go.buildinfo with version
    (inline, or "pointer": the pre-1.18 header pointing at a string header in .noptrdata);
    .gopclntab of layout pcln (a magic) and/or .symtab; optional notes and DWARF."""
    code, funcs = go_funcs(machine, abi0)
    sections = []
    for name, ntype, desc in notes:
        sections.append({"name": name, "type": SHT_NOTE, "flags": SHF_ALLOC, "align": 4,
                         "data": note(ntype[0], ntype[1], desc),
                         "segment": "rx"})
    sections.append({"name": ".text", "type": SHT_PROGBITS, "flags": SHF_ALLOC | SHF_EXECINSTR,
                     "align": 32, "data": code, "segment": "rx"})
    rodata = {"name": ".rodata", "type": SHT_PROGBITS, "flags": SHF_ALLOC, "align": 32,
              "data": version.encode() + b"\0" * 8 + b"path\tcommand-line-arguments\n",
              "segment": "r"}
    sections.append(rodata)
    if pcln is not None:
        sections.append({"name": ".gopclntab", "type": SHT_PROGBITS, "flags": SHF_ALLOC,
                         "align": 32, "data": b"", "segment": "r"})
    sections.append({"name": ".go.buildinfo", "type": SHT_PROGBITS,
                     "flags": SHF_ALLOC | SHF_WRITE, "align": 16, "data": b"", "segment": "rw"})
    if buildinfo == "pointer":
        sections.append({"name": ".noptrdata", "type": SHT_PROGBITS,
                         "flags": SHF_ALLOC | SHF_WRITE, "align": 32, "data": bytes(32),
                         "segment": "rw"})
    if dwarf_goid is not None:
        info, abbrev = dwarf_offsets(dwarf_goid)
        sections.append({"name": ".debug_abbrev", "type": SHT_PROGBITS, "data": abbrev})
        sections.append({"name": ".debug_info", "type": SHT_PROGBITS, "data": info})
    if symtab:
        sections.append({"name": ".symtab", "type": SHT_SYMTAB, "align": 8, "entsize": 24,
                         "link": ".strtab", "info": 1, "data": b""})
        sections.append({"name": ".strtab", "type": SHT_STRTAB, "data": b""})

    # Addresses depend only on sizes: lay out once with placeholders of the final sizes.
    by_name = {s["name"]: s for s in sections}
    index = {s["name"]: i + 1 for i, s in enumerate(sections)}
    if symtab:
        by_name[".symtab"]["data"] = bytes(24 * (len(funcs) + 1))
        by_name[".strtab"]["data"] = b"\0" + b"".join(n.encode() + b"\0" for n, _, _ in funcs)
    if pcln is not None:
        by_name[".gopclntab"]["data"] = pclntab([(n, 0) for n, _, _ in funcs], 0, 0, pcln)
    by_name[".go.buildinfo"]["data"] = buildinfo_inline(version, b"") if buildinfo == "inline" \
        else bytes(32)
    probe = elf64(machine, etype, base, sections)
    shoff = struct.unpack_from("<Q", probe, 40)[0]
    sec_va = {n: struct.unpack_from("<Q", probe, shoff + 64 * i + 16)[0]
              for n, i in index.items()}
    text_va = sec_va[".text"]
    fva = [(n, text_va + o, sz) for n, o, sz in funcs]
    end = text_va + len(code)

    if symtab:
        syms, stroff = bytes(24), 1
        for n, va, sz in fva:
            syms += struct.pack("<IBBHQQ", stroff, STB_GLOBAL << 4 | STT_FUNC, 0,
                                index[".text"], va, sz)
            stroff += len(n) + 1
        by_name[".symtab"]["data"] = syms
    if pcln is not None:
        by_name[".gopclntab"]["data"] = pclntab([(n, va) for n, va, _ in fva], text_va, end,
                                                pcln, 4 if machine == EM_AARCH64 else 1)
    if buildinfo == "pointer":
        # runtime.buildVersion and runtime.modinfo: Go string headers {data, len} in
        # .noptrdata, their bytes in .rodata; the header points at the two string headers.
        ro = sec_va[".rodata"]
        mod_off = len(version) + 8
        by_name[".noptrdata"]["data"] = struct.pack("<QQQQ", ro, len(version), ro + mod_off,
                                                    len(rodata["data"]) - mod_off)
        nd = sec_va[".noptrdata"]
        by_name[".go.buildinfo"]["data"] = (b"\xff Go buildinf:" + bytes([8, 0])
                                            + struct.pack("<QQ", nd, nd + 16))
    out = elf64(machine, etype, base, sections)
    assert len(out) == len(probe)
    return out


def go_seeds():
    go_id = b"Ab1_cD2-eF3/gH4_iJ5-kL6/mN7_oP8-qR9/sT0_uV1-wX2"
    seeds = {
        # (1) amd64, Go 1.19, functions from .symtab, version inline.
        "amd64-go1.19-symtab": go_exe(EM_X86_64, "go1.19.8",
                                      notes=[(".note.go.buildid", (b"Go\0\0", 4), go_id)]),
        # (2) the same stripped: functions from a Go 1.20 .gopclntab.
        "amd64-go1.20-pclntab": go_exe(EM_X86_64, "go1.20.14", symtab=False, pcln=0xFFFFFFF1),
        # (3) arm64, Go 1.19 (ABIInternal), both tables (Go 1.18 layout), a GNU build id.
        "arm64-go1.19-pclntab": go_exe(EM_AARCH64, "go1.19.8", symtab=False, pcln=0xFFFFFFF0,
                                       notes=[(".note.gnu.build-id", (b"GNU\0", 3),
                                               bytes(range(20)))]),
        "arm64-go1.19-symtab": go_exe(EM_AARCH64, "go1.19.8", pcln=0xFFFFFFF1),
        # (4) Go 1.15: buildinfo pointers to string headers; ABI0 (g from fs:-8). As a PIE
        # (addresses = offsets, which the fuzz target's direct read_va also uses) and as an
        # executable at 0x400000; a Go 1.2 layout table beside the .symtab.
        "amd64-go1.15-pointer-pie": go_exe(EM_X86_64, "go1.15.15", buildinfo="pointer",
                                           etype=ET_DYN, base=0, abi0=True, pcln=0xFFFFFFFB),
        "amd64-go1.15-pointer": go_exe(EM_X86_64, "go1.15.15", buildinfo="pointer",
                                       abi0=True, symtab=False, pcln=0xFFFFFFFB),
        # arm64 Go 1.17: still ABI0 there; struct offsets from DWARF, not the table.
        "arm64-go1.17-dwarf": go_exe(EM_AARCH64, "go1.17.13", dwarf_goid=152),
        "amd64-go1.21-dwarf": go_exe(EM_X86_64, "go1.21.6", symtab=False, pcln=0xFFFFFFF1,
                                     dwarf_goid=152),
    }
    # A bare Go 1.20 table and build info, for the direct parsers (found by their magic).
    text = 0x401000
    seeds["pclntab-only"] = pclntab([("runtime.text", text), (GO_READ, text + 0x20),
                                     (GO_WRITE, text + 0x400)], text, text + 0x800)
    seeds["buildinfo-only"] = buildinfo_inline("go1.23.5 X:boringcrypto", b"mod\tx\n")
    return seeds


# --- fuzz-http2: HTTP/2 conversations (frames by hand, HPACK by the minimal encoder below) ---

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_DATA, H2_HEADERS, H2_PRIORITY, H2_RST, H2_SETTINGS, H2_PUSH, H2_PING, H2_GOAWAY, \
    H2_WINDOW, H2_CONT = range(10)
H2_ES, H2_EH, H2_PADDED, H2_PRIO = 0x01, 0x04, 0x08, 0x20

# RFC 7541 appendix A, the entries the seeds use.
HPACK_STATIC = {(":method", "GET"): 2, (":method", "POST"): 3, (":path", "/"): 4,
                (":scheme", "http"): 6, (":scheme", "https"): 7, (":status", "200"): 8,
                (":status", "204"): 9, (":status", "404"): 13}


def hp_int(value, prefix_bits, first):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 127) | 128)
        value >>= 7
    out.append(value)
    return bytes(out)


def hp_str(s):
    b = s.encode() if isinstance(s, str) else s
    return hp_int(len(b), 7, 0) + b


def hpack(headers, index=False):
    """Static-table hits indexed, the rest literal (added to the dynamic table with index)."""
    out = b""
    for name, value in headers:
        if (name, value) in HPACK_STATIC:
            out += hp_int(HPACK_STATIC[(name, value)], 7, 0x80)
        else:
            out += (b"\x40" if index else b"\x00") + hp_str(name) + hp_str(value)
    return out


def h2frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) \
        + payload


def h2rec(client, data, gap=False):
    """A record of fuzz-http2's input: [tag][len] then the bytes of one direction."""
    assert len(data) < 1 << 14
    return bytes([(0x80 if client else 0) | (0x40 if gap else 0) | len(data) >> 8,
                  len(data) & 255]) + data


def grpc_msg(body):
    return b"\x00" + struct.pack(">I", len(body)) + body


def h2_request(method, path, authority="example.test", scheme="https", extra=()):
    return [(":method", method), (":scheme", scheme), (":authority", authority),
            (":path", path)] + list(extra)


def http2_seeds():
    opening_c = H2_PREFACE + h2frame(H2_SETTINGS, 0, 0, struct.pack(">HI", 3, 100))
    opening_s = h2frame(H2_SETTINGS, 0, 0, struct.pack(">HI", 5, 16384))
    flags = bytes([4])  # preview 8 bytes
    seeds = {}

    def conv(name, records, f=flags):
        seeds[name] = f + h2rec(True, opening_c) + h2rec(False, opening_s) + b"".join(records)

    conv("get-200", [
        h2rec(True, h2frame(H2_HEADERS, H2_ES | H2_EH, 1,
                            hpack(h2_request("GET", "/index.html", extra=[("accept", "*/*")])))),
        h2rec(False, h2frame(H2_HEADERS, H2_EH, 1, hpack([(":status", "200"),
                                                          ("content-type", "text/plain")]))),
        h2rec(False, h2frame(H2_DATA, 0, 1, b"hello ")),
        h2rec(False, h2frame(H2_DATA, H2_ES, 1, b"world")),
    ])
    conv("concurrent", [
        h2rec(True, h2frame(H2_HEADERS, H2_ES | H2_EH, 1, hpack(h2_request("GET", "/a"), True))
              + h2frame(H2_HEADERS, H2_EH, 3, hpack(h2_request("POST", "/b"), True))
              + h2frame(H2_HEADERS, H2_ES | H2_EH, 5, hpack(h2_request("GET", "/c"), True))),
        h2rec(True, h2frame(H2_DATA, H2_ES, 3, b"abc")),
        h2rec(False, h2frame(H2_HEADERS, H2_EH, 5, hpack([(":status", "404")]))
              + h2frame(H2_HEADERS, H2_EH, 3, hpack([(":status", "200"), ("server", "s")], True))
              + h2frame(H2_DATA, H2_ES, 5, b"five")
              + h2frame(H2_HEADERS, H2_EH, 1, hpack([(":status", "200")]) + b"\xbe")
              + h2frame(H2_DATA, H2_ES, 1, b"one") + h2frame(H2_DATA, H2_ES, 3, b"xyz")),
    ])
    conv("post-trailers", [
        h2rec(True, h2frame(H2_HEADERS, H2_EH, 1, hpack(h2_request(
            "POST", "/v1/items", extra=[("content-type", "application/json")])))
              + h2frame(H2_DATA, 0, 1, b'{"k":') + h2frame(H2_DATA, H2_ES, 1, b'"v"}')),
        h2rec(False, h2frame(H2_HEADERS, H2_EH, 1, hpack([(":status", "200")]))
              + h2frame(H2_DATA, 0, 1, b"created")
              + h2frame(H2_HEADERS, H2_ES | H2_EH, 1, hpack([("x-checksum", "abc")]))),
    ])
    block = hpack(h2_request("GET", "/split", extra=[("x-long", "a fairly long value")]))
    conv("continuation-padding", [
        h2rec(True, h2frame(H2_HEADERS, H2_ES, 1, block[:5]) + h2frame(H2_CONT, 0, 1)
              + h2frame(H2_CONT, H2_EH, 1, block[5:])),
        h2rec(True, h2frame(H2_HEADERS, H2_EH | H2_PADDED | H2_PRIO, 3,
                            b"\x04" + b"\x80\x00\x00\x01\x10"
                            + hpack(h2_request("PUT", "/pad")) + b"\0" * 4)
              + h2frame(H2_DATA, H2_PADDED, 3, b"\x03body\0\0\0")
              + h2frame(H2_DATA, H2_PADDED | H2_ES, 3, b"\x00!")),
        h2rec(False, h2frame(H2_HEADERS, H2_ES, 3, hpack([(":status", "200")]))
              + h2frame(H2_CONT, H2_EH, 3, hpack([("x-one", "1")]))
              + h2frame(H2_HEADERS, H2_EH, 1, hpack([(":status", "200")]))
              + h2frame(H2_DATA, H2_PADDED | H2_ES, 1, b"\x0apadded!" + b"\0" * 10)),
    ])
    conv("reset-goaway", [
        h2rec(True, b"".join(h2frame(H2_HEADERS, H2_ES | H2_EH, sid,
                                     hpack(h2_request("GET", "/" + str(sid)))) for sid in (1, 3, 5))),
        h2rec(False, h2frame(H2_HEADERS, H2_EH, 3, hpack([(":status", "200")]))
              + h2frame(H2_RST, 0, 1, struct.pack(">I", 8)) + h2frame(H2_DATA, H2_ES, 3, b"ok")
              + h2frame(H2_GOAWAY, 0, 0, struct.pack(">II", 3, 0) + b"bye")),
        h2rec(True, h2frame(H2_HEADERS, H2_ES | H2_EH, 7, hpack(h2_request("GET", "/7"))
                            ) + h2frame(H2_RST, 0, 7, struct.pack(">I", 0))),
    ])
    grpc_req = [("content-type", "application/grpc"), ("te", "trailers")]
    grpc_resp = [(":status", "200"), ("content-type", "application/grpc")]
    unary = grpc_msg(b"\x0a\x05world")
    conv("grpc-unary", [
        h2rec(True, h2frame(H2_HEADERS, H2_EH, 1, hpack(h2_request(
            "POST", "/helloworld.Greeter/SayHello", "localhost:50051", "http", grpc_req), True))
              + h2frame(H2_DATA, 0, 1, unary[:3])),
        h2rec(True, h2frame(H2_DATA, H2_ES, 1, unary[3:])),
        h2rec(False, h2frame(H2_HEADERS, H2_EH, 1, hpack(grpc_resp, True))
              + h2frame(H2_DATA, 0, 1, grpc_msg(b"\x0a\x03hi!") + grpc_msg(b""))
              + h2frame(H2_HEADERS, H2_ES | H2_EH, 1, hpack([("grpc-status", "0")]))),
    ])
    conv("grpc-error", [
        h2rec(True, h2frame(H2_HEADERS, H2_EH, 1, hpack(h2_request(
            "POST", "/helloworld.Greeter/Lookup", "localhost:50051", "http", grpc_req)))
              + h2frame(H2_DATA, H2_ES, 1, grpc_msg(b"key"))),
        h2rec(False, h2frame(H2_HEADERS, H2_ES | H2_EH, 1, hpack(
            grpc_resp + [("grpc-status", "5"), ("grpc-message", "not%20found")]))),
    ])
    two_three = grpc_msg(b"two") + grpc_msg(b"three")
    conv("grpc-streaming", [
        h2rec(True, h2frame(H2_HEADERS, H2_EH, 1, hpack(h2_request(
            "POST", "/chat.Chat/Talk", "localhost:50051", "http", grpc_req)))
              + h2frame(H2_DATA, 0, 1, grpc_msg(b"one"))),
        h2rec(False, h2frame(H2_HEADERS, H2_EH, 1, hpack(grpc_resp))
              + h2frame(H2_DATA, 0, 1, grpc_msg(b"uno"))),
        h2rec(True, h2frame(H2_DATA, 0, 1, two_three[:10])
              + h2frame(H2_DATA, H2_ES, 1, two_three[10:])),
        h2rec(False, h2frame(H2_DATA, 0, 1, grpc_msg(b"dos") + grpc_msg(b"tres"))
              + h2frame(H2_HEADERS, H2_ES | H2_EH, 1, hpack([("grpc-status", "0")]))),
    ])
    conv("continue-100", [
        h2rec(True, h2frame(H2_HEADERS, H2_EH, 1, hpack(h2_request(
            "PUT", "/file", extra=[("expect", "100-continue")])))),
        h2rec(False, h2frame(H2_HEADERS, H2_EH, 1, hpack([(":status", "100")]))),
        h2rec(True, h2frame(H2_DATA, H2_ES, 1, b"data")),
        h2rec(False, h2frame(H2_HEADERS, H2_ES | H2_EH, 1, hpack([(":status", "204")]))),
    ])
    conv("push-promise", [
        h2rec(True, h2frame(H2_HEADERS, H2_ES | H2_EH, 1, hpack(h2_request("GET", "/page")))),
        h2rec(False, h2frame(H2_PUSH, H2_EH, 1, struct.pack(">I", 2) + hpack(
            h2_request("GET", "/style.css", extra=[("x-pushed", "yes")]), True))
              + h2frame(H2_HEADERS, H2_EH, 2, hpack([(":status", "200")]) + b"\xbe")
              + h2frame(H2_DATA, H2_ES, 2, b"body{}")
              + h2frame(H2_HEADERS, H2_EH, 1, hpack([(":status", "200")]) + b"\xbe")
              + h2frame(H2_DATA, H2_ES, 1, b"<html>")),
    ])
    conv("control-frames", [
        h2rec(True, h2frame(H2_SETTINGS, 1, 0) + h2frame(H2_WINDOW, 0, 0, struct.pack(">I", 65536))
              + h2frame(H2_PING, 0, 0, b"pingping") + h2frame(H2_PRIORITY, 0, 1, b"\0\0\0\0\x0f")
              + h2frame(0xfa, 0xff, 1, b"unknown")
              + h2frame(H2_HEADERS, H2_ES | H2_EH, 1, hpack(h2_request("GET", "/")))),
        h2rec(False, h2frame(H2_SETTINGS, 1, 0) + h2frame(H2_PING, 1, 0, b"pingping")
              + h2frame(H2_HEADERS, H2_ES | H2_EH, 1, hpack([(":status", "204")]))),
    ])
    conv("gap", [
        h2rec(True, h2frame(H2_HEADERS, H2_ES | H2_EH, 1, hpack(h2_request("GET", "/one")))),
        h2rec(False, h2frame(H2_HEADERS, H2_EH, 1, hpack([(":status", "200")]))
              + h2frame(H2_DATA, 0, 1, b"part")),
        h2rec(False, h2frame(H2_DATA, H2_ES, 1, b"rest"), gap=True),
    ])
    conv("bad-hpack", [
        h2rec(True, h2frame(H2_HEADERS, H2_ES | H2_EH, 1, b"\xff\xff\xff\xff")),
    ], bytes([0x24]))
    # Frames only: the opening comes from the flags byte (bit 4), closed before freeing.
    seeds["auto-opening"] = bytes([0x10 | 0x20 | 2]) + h2rec(True, h2frame(
        H2_HEADERS, H2_EH, 1, hpack(h2_request("POST", "/x")))) + h2rec(True, h2frame(
            H2_DATA, 0, 1, b"body"))
    seeds["http1-not-h2"] = flags + h2rec(True, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") \
        + h2rec(False, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    return seeds


# --- tail requests -------------------------------------------------------------------------

def tail_seeds():
    """fuzz-tail: [flags: bit 0 exchanges on] request line, then authority and target lines."""
    def t(flags, args, authority=b"example.com:443", target=b"/api/users"):
        return bytes([flags]) + args + b"\n" + authority + b"\n" + target
    return {
        "empty": t(1, b""),
        "all-keys": t(1, b"kind=exchanges pid=1,2 comm=curl cgroup=5 host=example.com "
                         b"path=/api status=404,5xx conn=7 format=json count=3"),
        "data-follow": t(0, b"kind=data conn=7 format=json count=10"),
        "lists-repeated": t(0, b"kind=data kind=connections pid=42 pid=43 comm=curl comm=nginx"),
        "kind-all-off": t(0, b"kind=all format=text"),
        "host-ipv6": t(1, b"host=::1 status=2xx", b"[::1]:8443", b"/"),
        "host-port": t(1, b"host=example.com:443 path=/", b"EXAMPLE.com:443", b"/x"),
        "exchanges-off": t(0, b"host=example.com"),
        "unknown-key": t(1, b"pid=1 frob=2"),
        "bad-number": t(1, b"pid=99999999999999999999999"),
        "control-char": t(1, b"comm=a\tb"),
        "too-many": t(1, b"pid=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"),
        "too-long": t(1, b"path=/" + b"a" * 260),
    }


# --- corpora -------------------------------------------------------------------------------

def write_corpus(target, seeds):
    if ONLY and target not in ONLY:
        return
    d = os.path.join(CORPUS, target)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    for name, data in sorted(seeds.items()):
        assert len(data) < 64 << 10, (target, name, len(data))
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    print("%s: %d seeds, %d bytes" % (target, len(seeds), sum(len(v) for v in seeds.values())))


# Targets named on the command line: only their corpora are rewritten.
ONLY = [a for a in sys.argv[1:] if not a.startswith("-")]


def main():
    with_elf = "--no-elf" not in sys.argv[1:] and (not ONLY or "analyzer" in ONLY
                                                   or "tlslib" in ONLY)
    frames = {
        "l-hello": hello(),
        "l-hello-bad-version": hello(version=2, offset_ns=-5, call_cap=0),
        "l-file": file_(),
        "a-hello": frame(A_HELLO, mp([PROTOCOL_VERSION])),
        "a-plan": plan(n_probes=8),
        "a-plan-copy": copy_plan(),
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
    write_corpus("gotls", go_seeds())
    write_corpus("http2", http2_seeds())
    write_corpus("tail", tail_seeds())

    # fuzz-loaderd: frames as [type index, flags, u16 little-endian length, body] (see
    # fuzz-loaderd.c: index 0 is A_HELLO, 1 A_PLAN, then loaderd's own types, then unknown).
    def lf(index, body, flags=0):
        return bytes([index, flags]) + struct.pack("<H", len(body)) + body

    a_hello = lf(0, mp([PROTOCOL_VERSION]))
    a_plan = lf(1, plan(n_probes=8)[8:])
    # fuzz-planner: what the planner of file 1 writes to its socket.
    def p_plan(file_id=1, n_probes=2, go=False):
        return frame(P_PLAN, mp([plan(file_id, n_probes)[8:], go, 1234]))

    write_corpus("planner", {
        "plan": p_plan(n_probes=8),
        "plan-go": p_plan(n_probes=4, go=True),
        "plan-empty": frame(P_PLAN, mp([mp([1, "", "not an ELF file", []]), False, 7])),
        "plan-other-file": p_plan(file_id=2),
        "plan-then-more": p_plan() + p_plan(file_id=2) + frame(A_HELLO, mp([1])),
        "plan-truncated": p_plan()[:-3],
        "not-a-plan": frame(A_PLAN, plan()[8:]),
        "oversized-header": struct.pack("<IHH", 0xFFFFFFFF, P_PLAN, 0),
        "nothing": b"",
    })

    write_corpus("loaderd", {
        "hello-plan": a_hello + a_plan,
        "hello-plan-copy": a_hello + lf(1, copy_plan()[8:]),
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
