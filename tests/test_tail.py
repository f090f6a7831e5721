#!/usr/bin/python3
# Proves: tlssniffctl tail and follow get records live from a running tlssniff (its analyzer
# under its seccomp filter), filtered, and as the very lines tlssniff writes to its own output:
# exchanges by pid, path and status class (JSON) and by status (text), data and connection
# records of one process; follow gets one connection's data both ways; a count ends each stream
# with exit 0 and the daemon forgets the subscriber; a request the daemon refuses exits 1.

import base64
import json
import subprocess

import harness
from harness import TestFailure

HOST = "127.0.0.1"
CTL = harness.LOADERD.parent.parent / "analyzer" / "tlssniffctl"

# One keep-alive connection, driven from stdin: a line "go" for the first two requests, another
# for the third; then it closes.
CLIENT_PY = r"""
import socket, ssl, sys
port = int(sys.argv[1])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

def get(s, path):
    s.sendall(b"GET %s HTTP/1.1\r\nHost: tail.test\r\n\r\n" % path.encode())
    got = b""
    while b"\r\n\r\n" not in got:
        got += s.recv(65536)
    head, body = got.split(b"\r\n\r\n", 1)
    n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(body) < n:
        body += s.recv(65536)

sys.stdin.readline()
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
get(s, "/len/100")
get(s, "/missing")
print("FIRST", flush=True)
sys.stdin.readline()
get(s, "/len/5")
s.unwrap()
s.close()
print("DONE", flush=True)
"""


def ctl(sock, *args):
    return subprocess.run([str(CTL), "--socket", sock, *args], capture_output=True, text=True,
                          timeout=30)


def stats(sock):
    r = ctl(sock, "--json", "stats")
    if r.returncode != 0:
        raise TestFailure(f"tlssniffctl stats: {r.returncode} {r.stderr!r}")
    return json.loads(r.stdout)["stats"]


def main(t):
    cert, key = t.make_cert()
    t.write_file("client.py", CLIENT_PY.encode())
    sock = str(t.tmp / "control")
    t.start_loaderd("--exchanges", "--control-socket", sock)
    server, port = harness.start_http_server(t, cert, key)
    client = t.spawn([harness.PYTHON, t.tmp / "client.py", port], name="client")
    client.out = harness.ByteReader(client.stdout, client.name)
    pid = str(client.pid)

    def tail(name, *args):
        p = t.spawn([CTL, "--socket", sock, *args], name=name)
        p.out = harness.ByteReader(p.stdout, name)
        return p

    subs = {
        "ok-json": tail("tail-2xx", "--json", "tail", "--pid", pid, "--path", "/len/",
                        "--status", "2xx", "-n", "2"),
        "404-text": tail("tail-404", "tail", "--pid", pid, "--status", "404", "-n", "1"),
        "conns": tail("tail-conns", "--json", "tail", "--connections", "--pid", pid, "-n", "2"),
        "data": tail("tail-data", "--json", "tail", "--data", "--pid", pid, "-n", "2"),
    }
    harness.wait_until(lambda: stats(sock).get("analyzer_tail_subscribers") == len(subs), 10,
                       f"{len(subs)} tail subscribers")
    client.stdin.write(b"go\n")
    client.stdin.flush()
    t.expect_line(client, "FIRST", 20)

    # The first exchange names the connection: follow it, then make it carry one more. The
    # 404 and data subscriptions have all they asked for: they end on their own (exit 0), and
    # the daemon closed them, so it now has the two others, then the follower.
    first_line = subs["ok-json"].out.wait_line(20)
    first = json.loads(first_line)
    if (first["type"], first["path"], first["status"], first["pid"]) != \
            ("exchange", "/len/100", 200, client.pid):
        raise TestFailure(f"first exchange through tail: {first}")
    out = {"ok-json": first_line + "\n"}
    for k in ("404-text", "data"):
        t.wait_proc(subs[k], 20)
    conn = str(first["conn_id"])
    subs["follow"] = tail("follow", "--json", "follow", conn, "-n", "2")
    harness.wait_until(lambda: stats(sock).get("analyzer_tail_subscribers") == 3, 10,
                       "the follow subscriber")
    client.stdin.write(b"go\n")
    client.stdin.close()
    t.expect_line(client, "DONE", 20)
    t.wait_proc(client, 10)

    # Every count reached: each tlssniffctl exits 0 on its own, the daemon keeps no subscriber.
    for k, p in subs.items():
        t.wait_proc(p, 20)
        out[k] = out.get(k, "") + p.out.rest().decode(errors="replace")
    harness.wait_until(lambda: stats(sock).get("analyzer_tail_subscribers") == 0, 10,
                       "no subscriber left")
    st = stats(sock)
    if st.get("analyzer_tail_drops") != 0:
        raise TestFailure(f"records dropped for subscribers: {st.get('analyzer_tail_drops')}")

    # A request the daemon refuses: exit 1 with its reason.
    r = ctl(sock, "tail", "--data", "--host", "tail.test")
    if r.returncode != 1 or "kind=exchanges" not in r.stderr:
        raise TestFailure(f"refused tail: {r.returncode} {r.stderr!r}")

    server.stdin.close()
    t.wait_proc(server, 10)
    t.stop_loaderd()
    with open(t.output, "rb") as f:
        written = set(f.read().decode(errors="replace").split("\n"))

    def lines(k, n):
        got = [ln for ln in out[k].split("\n") if ln]
        if len(got) != n:
            raise TestFailure(f"{k}: {len(got)} lines, expected {n}: {out[k]!r}")
        for ln in got:
            if ln not in written:
                raise TestFailure(f"{k}: a line tlssniff did not write itself: {ln}")
        return [json.loads(ln) for ln in got]

    ok = lines("ok-json", 2)
    if [(x["path"], x["status"]) for x in ok] != [("/len/100", 200), ("/len/5", 200)]:
        raise TestFailure(f"2xx exchanges: {[(x['path'], x['status']) for x in ok]}")
    text = [ln for ln in out["404-text"].split("\n") if ln]
    if len(text) != 1 or "GET tail.test/missing -> 404" not in text[0] or f"[{pid}]" not in text[0]:
        raise TestFailure(f"404 exchange in text: {text}")
    cr = lines("conns", 2)
    if [(r["type"], r["event"], r["conn_id"]) for r in cr] != \
            [("connection", "open", first["conn_id"]), ("connection", "end", first["conn_id"])]:
        raise TestFailure(f"connection records: {cr}")
    dr = lines("data", 2)
    if [(r["type"], r["direction"], r["pid"]) for r in dr] != \
            [("data", "write", client.pid), ("data", "read", client.pid)] or \
            base64.b64decode(dr[0]["data"])[:14] != b"GET /len/100 H":
        raise TestFailure(f"data records: {[(r['direction'], r['pid']) for r in dr]}")
    fr = lines("follow", 2)
    if [(r["direction"], r["conn_id"]) for r in fr] != \
            [("write", first["conn_id"]), ("read", first["conn_id"])] or \
            not base64.b64decode(fr[0]["data"]).startswith(b"GET /len/5 "):
        raise TestFailure(f"follow: {fr}")
    harness.log("tail: exchanges by path/status (JSON, text), connections, data, follow of one "
                "connection, counts, refusal; every line as tlssniff wrote it")


if __name__ == "__main__":
    harness.run(main)
