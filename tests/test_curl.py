#!/usr/bin/python3
# Proves: curl's HTTPS request (request line, headers) and the response body it reads are captured byte-exact.

import glob
import os
import secrets

import harness
from harness import TestFailure

HOST = "127.0.0.1"
BODY_SIZE = 200 * 1024


def main(t):
    cert, key = t.make_cert()
    body = os.urandom(BODY_SIZE)
    t.write_file("body.bin", body)
    path = "/files/" + secrets.token_hex(8) + ".bin"
    response = harness.http_response(body)

    t.start_loaderd()
    server, port = t.start_server("http", cert, key, HOST)
    url = f"https://{HOST}:{port}{path}"
    curl = t.spawn(["curl", "-k", "--http1.1", "-sS", "--max-time", "30", "-o",
                    str(t.tmp / "got.bin"), url], name="curl")
    t.diag_pids = {curl.pid, server.pid}
    t.wait_proc(curl, 40)
    if (t.tmp / "got.bin").read_bytes() != body:
        raise TestFailure("curl did not receive the body intact (test setup problem)")
    reqs = glob.glob(str(t.tmp / "req-*.bin"))
    if len(reqs) != 1:
        raise TestFailure(f"server saw {len(reqs)} requests, expected 1")
    request = open(reqs[0], "rb").read()
    curl_port = int(os.path.basename(reqs[0])[4:-4])
    t.stop_server(server)

    cap = t.stop_loaderd()
    w = cap.find_stream(curl.pid, "write", request, "curl write stream (the request)")
    r = cap.find_stream(curl.pid, "read", response, "curl read stream (the response)")
    head = w.data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    want = [f"GET {path} HTTP/1.1".encode(), f"Host: {HOST}:{port}".encode(), b"Accept: */*"]
    for line in want:
        if line not in head:
            raise TestFailure(f"curl write stream lacks {line!r}: {head}")
    if not any(h.startswith(b"User-Agent: curl/") for h in head) or head[0] != want[0]:
        raise TestFailure(f"curl write stream does not start with the request line: {head}")
    if not r.data.endswith(body):
        raise TestFailure("curl read stream does not end with the served body")
    for s in (w, r):
        harness.assert_addressing(s, f"curl {s.direction}", "ipv4", (HOST, curl_port),
                                  (HOST, port), "client")
    # The server's side of the same connection, seen from the python3 server process.
    sr = cap.find_stream(server.pid, "read", request, "server read stream")
    sw = cap.find_stream(server.pid, "write", response, "server write stream")
    for s in (sr, sw):
        harness.assert_addressing(s, f"server {s.direction}", "ipv4", (HOST, port),
                                  (HOST, curl_port), "server")
    harness.log(f"request {len(request)} B and response {len(response)} B exact: "
                f"{w.describe()}; {r.describe()}")


if __name__ == "__main__":
    harness.run(main)
