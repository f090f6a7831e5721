#!/usr/bin/python3
# Proves: --call-cap bounds the bytes captured per TLS call; the rest of the call is reported
# as truncated on the message and counted in the statistics, never silently lost, and the next
# calls of the stream keep their true offsets.

import os

import harness
from harness import TestFailure

HOST = "127.0.0.1"
CAP = 4096


def main(t):
    cert, key = t.make_cert()
    server, port = t.start_server("framed", cert, key, HOST)
    payload = os.urandom(50000)          # one sendall -> one SSL_write of 50008 bytes
    small = os.urandom(100)              # a second exchange below the cap
    t.start_loaderd("--call-cap", str(CAP))
    c = harness.spawn_client(t, "client", port, [(payload, 10)], cert)
    harness.client_results(t, c)
    c2 = harness.spawn_client(t, "client-small", port, [(small, 2000)], cert)
    res2 = harness.client_results(t, c2)
    t.stop_server(server)
    cap = t.stop_loaderd()

    request = harness.framed_request(payload, 10)
    writes = [r for r in cap.records if r["pid"] == c.pid and r["direction"] == "write"]
    if not writes:
        raise TestFailure("no write records for the client")
    big = [r for r in writes if r["call_length"] == len(request)]
    if len(big) != 1:
        raise TestFailure(f"expected one message of the {len(request)} B call, got "
                          f"{[(r['offset'], r['length'], r['call_length']) for r in writes]}")
    m = big[0]
    if m["length"] != CAP or m["_bytes"] != request[:CAP]:
        raise TestFailure(f"captured {m['length']} B of the call, expected its first {CAP} B")
    if m["truncated"] != len(request) - CAP:
        raise TestFailure(f"truncated={m['truncated']}, expected {len(request) - CAP}")
    stats = cap.stats or {}
    if stats.get("kernel_truncated_bytes", 0) < len(request) - CAP or \
            stats.get("kernel_truncated_calls", 0) < 1:
        raise TestFailure(f"truncation not counted: {stats}")
    # Calls under the cap are whole: the second client's exchange is exact in both directions.
    harness.check_framed_connection(cap, "small client", c2.pid, server.pid, res2[0], small,
                                    2000, "ipv4")
    harness.log(f"call of {len(request)} B: {CAP} B captured, {m['truncated']} B counted as "
                f"truncated (kernel_truncated_bytes={stats['kernel_truncated_bytes']})")


if __name__ == "__main__":
    harness.run(main)
