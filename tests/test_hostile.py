#!/usr/bin/python3
# Proves: a process that maps files under names built to split its /proc/PID/maps line (about
# 4,100 characters, the rest of each forged to read as a maps line of its own, one naming a
# FIFO, one a symlink to a root-only secret) neither hangs nor fools loaderd: it reads whole
# lines, gets Ready, never opens the FIFO (no reader ever appears on it) or the secret (no
# open event on it), and captures a concurrent curl byte-exact.

import ctypes
import glob
import mmap
import os
import struct
import subprocess

import harness
from harness import TestFailure

HOST = "127.0.0.1"
IN_OPEN = 0x20

# The attacker, run as its own process: creates each long path with relative operations (it is
# longer than PATH_MAX), maps the file executable, then renames a padding folder until the
# forged text starts exactly where a 4,096-byte line buffer would cut the line.
ATTACKER_PY = r"""
import mmap, os, sys

base, cut = sys.argv[1], int(sys.argv[2])
targets = sys.argv[3:]
maps = []

def mkdirs_at(dfd, parts):
    for p in parts:
        try:
            os.mkdir(p, 0o755, dir_fd=dfd)
        except FileExistsError:
            pass
        nfd = os.open(p, os.O_RDONLY | os.O_DIRECTORY, dir_fd=dfd)
        os.close(dfd)
        dfd = nfd
    return dfd

def line_of(ino):
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split(None, 5)
            if len(fields) == 6 and int(fields[4]) == ino:
                return line.rstrip("\n")
    return None

for n, target in enumerate(targets):
    weird = "7f0000000000-7f0000001000 r-xp 00000000 08:01 4242 "
    top = f"pad{n}-"
    bfd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    dfd = mkdirs_at(os.dup(bfd), [top] + ["d" * 250] * 15 + [weird] + target.strip("/").split("/")[:-1])
    fd = os.open(target.rsplit("/", 1)[1], os.O_CREAT | os.O_RDWR, 0o755, dir_fd=dfd)
    os.write(fd, b"\0" * 4096)
    m = mmap.mmap(fd, 4096, prot=mmap.PROT_READ | mmap.PROT_EXEC, flags=mmap.MAP_SHARED)
    maps.append(m)
    ino = os.fstat(fd).st_ino
    for _ in range(3):
        line = line_of(ino)
        at = line.index(weird)
        if at == cut:
            break
        new = (f"pad{n}-" + "p" * 255)[:len(top) + cut - at]
        os.rename(top, new, src_dir_fd=bfd, dst_dir_fd=bfd)
        top = new
    line = line_of(ino)
    if line.index(weird) != cut or line[cut:] != weird + target:
        print("MISALIGNED", line.index(weird), len(line), flush=True)
        sys.exit(1)
    print("FORGED", len(line), line[cut:], flush=True)
    os.close(fd)
    os.close(dfd)
    os.close(bfd)
print("READY", flush=True)
sys.stdin.read()
"""


class Inotify:
    """IN_OPEN watches through libc (the standard library has no inotify)."""

    def __init__(self):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise TestFailure(f"inotify_init1: {os.strerror(ctypes.get_errno())}")

    def watch(self, path):
        if self.libc.inotify_add_watch(self.fd, path.encode(), IN_OPEN) < 0:
            raise TestFailure(f"inotify_add_watch {path}: {os.strerror(ctypes.get_errno())}")

    def opened(self):
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return 0
        n, i = 0, 0
        while i + 16 <= len(data):
            _, mask, _, length = struct.unpack_from("iIII", data, i)
            n += bool(mask & IN_OPEN)
            i += 16 + length
        return n


def main(t):
    cert, key = t.make_cert()
    fifo = str(t.tmp / "fifo")
    os.mkfifo(fifo, 0o666)
    secret = t.tmp / "secret"
    secret.write_text("not for the analyzer\n")
    os.chmod(secret, 0o600)
    link = str(t.tmp / "link")
    os.symlink(secret, link)
    base = t.tmp / "long"
    base.mkdir()
    watch = Inotify()
    watch.watch(str(secret))
    watch.watch(fifo)

    # The line is cut after 4,095 bytes by a 4,096-byte buffer (fgets), so the forged text
    # starts at byte 4,095 of the line.
    t.write_file("attacker.py", ATTACKER_PY.encode())
    attacker = t.spawn([harness.PYTHON, t.tmp / "attacker.py", base, "4095", fifo, link],
                       name="attacker")
    attacker.out = harness.ByteReader(attacker.stdout, "attacker stdout")
    forged = [t.expect_line(attacker, "FORGED", 30) for _ in range(2)]
    t.expect_line(attacker, "READY", 30)
    harness.log("forged maps lines: " + " | ".join(forged))

    # Started with the attacker mapped: the start-up scan reads its maps.
    t.start_loaderd()
    body = os.urandom(100 * 1024)
    t.write_file("body.bin", body)
    server, port = t.start_server("http", cert, key, HOST)
    curl = t.spawn(["curl", "-k", "--http1.1", "-sS", "--max-time", "30", "-o",
                    str(t.tmp / "got.bin"), f"https://{HOST}:{port}/hostile"], name="curl")
    t.wait_proc(curl, 40)
    if (t.tmp / "got.bin").read_bytes() != body:
        raise TestFailure("curl did not receive the body intact (test setup problem)")

    # Nobody opened the FIFO for reading (a writer's nonblocking open would succeed then),
    # and nothing opened the secret.
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        raise TestFailure("a reader has the FIFO open: loaderd opened the forged name")
    except OSError as e:
        if e.errno != 6:  # ENXIO: no reader
            raise
    opens = watch.opened()
    if opens:
        raise TestFailure(f"the FIFO or the secret was opened {opens} times since the watch")
    for fd in os.listdir(f"/proc/{t.loaderd.pid}/fd"):
        try:
            target = os.readlink(f"/proc/{t.loaderd.pid}/fd/{fd}")
        except OSError:
            continue
        if target in (str(secret), fifo):
            raise TestFailure(f"loaderd holds {target}")

    reqs = glob.glob(str(t.tmp / "req-*.bin"))
    if len(reqs) != 1:
        raise TestFailure(f"server saw {len(reqs)} requests, expected 1")
    request = open(reqs[0], "rb").read()
    t.stop_server(server)
    attacker.stdin.close()
    t.wait_proc(attacker, 10)
    cap = t.stop_loaderd()
    cap.find_stream(curl.pid, "write", request, "curl write stream (the request)")
    cap.find_stream(curl.pid, "read", harness.http_response(body), "curl read stream")
    if cap.stats.get("loaderd_odd_names", 0) != 0:
        raise TestFailure(f"loaderd saw odd names: {cap.stats.get('loaderd_odd_names')} (the "
                          "lines are read whole, so the forged ones never appear)")
    harness.log("split-line forgeries naming a FIFO and a symlink to a secret: loaderd ready, "
                "neither opened, curl captured exactly")


if __name__ == "__main__":
    harness.run(main)
