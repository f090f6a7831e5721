#!/usr/bin/python3
# Proves: a node https client (OpenSSL linked statically into the node executable) is captured byte-exact: the request it sent, the response it read.

import glob
import os
import shutil
import secrets

import harness
from harness import TestFailure

HOST = "127.0.0.1"
NODE = shutil.which("node") or "/usr/bin/node"

# argv: port, path, request body file, response body output file, "wait" to wait for a line
# on stdin before the request. Prints "WAITING" and, once the response is complete, "DONE".
CLIENT_JS = r"""
const https = require('https');
const fs = require('fs');
const [port, path, bodyFile, outFile, mode] = process.argv.slice(2);
const body = fs.readFileSync(bodyFile);
function request() {
  const req = https.request({
    host: '127.0.0.1', port: Number(port), path: path, method: 'POST',
    rejectUnauthorized: false, agent: false,
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length },
  }, (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => {
      fs.writeFileSync(outFile, Buffer.concat(chunks));
      console.log('DONE');
      process.exit(0);
    });
  });
  req.on('error', (e) => { console.error('request failed: ' + e); process.exit(1); });
  req.end(body);
}
if (mode === 'wait') {
  console.log('WAITING');
  process.stdin.once('data', () => { process.stdin.pause(); request(); });
} else {
  request();
}
"""


def run_node(t, name, port, wait):
    body = os.urandom(100 * 1024 + 3)
    bodyf = t.write_file(f"{name}-body.bin", body)
    path = f"/{name}/" + secrets.token_hex(6)
    outf = t.tmp / f"{name}-response.bin"
    p = t.spawn([NODE, t.tmp / "client.js", port, path, bodyf, outf, "wait" if wait else "go"],
                name=f"node-{name}")
    p.out = harness.ByteReader(p.stdout, p.name)
    p.body, p.path, p.outf = body, path, outf
    return p


def finish_node(t, p, response_body):
    t.expect_line(p, "DONE", 40)
    t.wait_proc(p, 10)
    if p.outf.read_bytes() != response_body:
        raise TestFailure(f"{p.name} did not receive the response body intact (setup problem)")


def main(t):
    if not os.path.exists(NODE):
        raise TestFailure("node is not installed")
    cert, key = t.make_cert()
    response_body = os.urandom(150 * 1024 + 11)
    t.write_file("body.bin", response_body)
    t.write_file("client.js", CLIENT_JS.encode())
    response = harness.http_response(response_body)

    server, port = t.start_server("http", cert, key, HOST)
    # One node started before tlssniff (found when tlssniff starts) ...
    pre = run_node(t, "pre", port, wait=True)
    t.expect_line(pre, "WAITING", 30)
    t.start_loaderd()
    pre.stdin.write(b"go\n")
    pre.stdin.flush()
    finish_node(t, pre, response_body)
    # ... and one started after it is ready.
    late = run_node(t, "late", port, wait=False)
    finish_node(t, late, response_body)
    t.diag_pids = {pre.pid, late.pid, server.pid}
    t.stop_server(server)
    cap = t.stop_loaderd()

    failures = []
    for p in (pre, late):
        reqs = [f for f in glob.glob(str(t.tmp / "req-*.bin"))
                if open(f, "rb").read().startswith(f"POST {p.path} ".encode())]
        if len(reqs) != 1:
            raise TestFailure(f"server saw {len(reqs)} requests for {p.path}")
        request = open(reqs[0], "rb").read()
        node_port = int(os.path.basename(reqs[0])[4:-4])
        if not request.endswith(p.body):
            raise TestFailure(f"{p.name}: the server did not get the body (setup problem)")
        # Bytes and addresses are checked separately so that both kinds of failure show.
        for direction, expected, what in (("write", request, "request"),
                                          ("read", response, "response")):
            label = f"{p.name} {direction} stream ({what})"
            try:
                s = cap.find_stream(p.pid, direction, expected, label)
                harness.log(f"OK bytes {label}: {s.describe()}")
            except TestFailure as e:
                failures.append(str(e))
            for s in cap.streams_of(p.pid, direction):
                try:
                    harness.assert_addressing(s, label, "ipv4", (HOST, node_port), (HOST, port),
                                              "client")
                    harness.log(f"OK addresses {label}")
                except TestFailure as e:
                    failures.append(str(e))
    if failures:
        raise TestFailure(f"{len(failures)} problem(s):\n" + "\n".join(failures))


if __name__ == "__main__":
    harness.run(main)
