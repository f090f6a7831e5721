#!/usr/bin/python3
# Proves: --call-cap bounds the bytes captured per TLS call (per SSL_write with the fallback
# placement's entry and return probes; per record built where writes are captured on OpenSSL's
# copy into the record); the rest is reported as truncated on the message and counted in the
# statistics, never silently lost, and the next calls of the stream keep their true offsets.

import os

import harness
from harness import TestFailure

HOST = "127.0.0.1"
CAP = 4096


def run(t, cert, key, placement):
    server, port = t.start_server("framed", cert, key, HOST)
    payload = os.urandom(50000)          # one sendall -> one SSL_write of 50008 bytes
    small = os.urandom(100)              # a second exchange below the cap
    t.start_loaderd("--call-cap", str(CAP), "--placement", placement)
    c = harness.spawn_client(t, "client", port, [(payload, 10)], cert)
    harness.client_results(t, c)
    c2 = harness.spawn_client(t, "client-small", port, [(small, 2000)], cert)
    res2 = harness.client_results(t, c2)
    t.stop_server(server)
    copy_writes = any("Attached" in ln and 'says "libssl.so.3;' in ln and "writes copy" in ln
                      for ln in t.loaderd_err.lines)
    cap = t.stop_loaderd()
    if (placement == "auto") != copy_writes:
        raise TestFailure(f"{placement}: writes on the copy: {copy_writes}")

    request = harness.framed_request(payload, 10)
    writes = [r for r in cap.records if r["pid"] == c.pid and r["direction"] == "write"]
    if not writes:
        raise TestFailure("no write records for the client")
    # The calls the probes see: the one SSL_write, or the records it built (16 KiB at most).
    if copy_writes:
        calls, off = [], 0
        while off < len(request):
            calls.append((off, min(16384, len(request) - off)))
            off += calls[-1][1]
    else:
        calls = [(0, len(request))]
    truncated = 0
    for off, n in calls:
        big = [r for r in writes if r["call_length"] == n and r["offset"] == off]
        if len(big) != 1:
            raise TestFailure(f"{placement}: expected one message of the {n} B call at {off}, "
                              f"got {[(r['offset'], r['length'], r['call_length']) for r in writes]}")
        m = big[0]
        want = min(n, CAP)
        if m["length"] != want or m["_bytes"] != request[off:off + want]:
            raise TestFailure(f"{placement}: captured {m['length']} B of the call at {off}, "
                              f"expected its first {want} B")
        if m["truncated"] != n - want:
            raise TestFailure(f"{placement}: truncated={m['truncated']}, expected {n - want}")
        truncated += n - want
    stats = cap.stats or {}
    if stats.get("kernel_truncated_bytes", 0) < truncated or \
            stats.get("kernel_truncated_calls", 0) < len([c for c in calls if c[1] > CAP]):
        raise TestFailure(f"{placement}: truncation not counted: {stats}")
    # Calls under the cap are whole: the second client's exchange is exact in both directions.
    harness.check_framed_connection(cap, "small client", c2.pid, server.pid, res2[0], small,
                                    2000, "ipv4")
    harness.log(f"{placement}: write of {len(request)} B in {len(calls)} calls: "
                f"{truncated} B counted as truncated "
                f"(kernel_truncated_bytes={stats['kernel_truncated_bytes']})")


def main(t):
    cert, key = t.make_cert()
    for placement in ("auto", "fallback"):
        run(t, cert, key, placement)


if __name__ == "__main__":
    harness.run(main)
