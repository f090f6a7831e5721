#!/usr/bin/python3
# Proves: data records go into a ring buffer per CPU, and a connection whose thread moves
# between CPUs on every write (consecutive records in different rings) is captured byte-exact
# on both ends, with no gap, and its records are in the output in stream order (loaderd
# drains the rings as one, in time order; drained ring after ring, records come out of
# order in the output). Also the rings loaderd made:
# one per possible CPU plus the one for the other records, at the default per-CPU size.

import os

import harness
from harness import TestFailure

HOST = "127.0.0.1"
EXCHANGES = 300


def possible_cpus():
    """The kernel's possible CPUs (/sys/devices/system/cpu/possible: "0-3,8")."""
    with open("/sys/devices/system/cpu/possible") as f:
        n = 0
        for part in f.read().strip().split(","):
            lo, _, hi = part.partition("-")
            n += int(hi or lo) - int(lo) + 1
    return n


def main(t):
    if len(os.sched_getaffinity(0)) < 2:
        raise TestFailure("this test needs at least 2 CPUs to move a thread between")
    cert, key = t.make_cert()
    # One connection, many small exchanges; the client's thread goes to the next CPU before
    # each of its writes (a request's 8-byte header, then its payload in eight writes).
    first = (os.urandom(700), 300)
    more = [(os.urandom(100 + 37 * k % 3000), 50 + 13 * k % 900) for k in range(EXCHANGES - 1)]
    server, port = t.start_server("framed", cert, key, HOST)
    client = harness.spawn_client(t, "hopper", port, [(first[0], first[1], more)], cert,
                                  flags=["--hop-cpus", "--wait-go"])
    t.expect_line(client, "WAITING")
    # loaderd's own ring size: the test checks how it is computed.
    t.start_loaderd("--pid", server.pid, "--pid", client.pid, test_rings=False)
    client.stdin.write(b"go\n")
    client.stdin.flush()
    results = harness.client_results(t, client, 60)
    t.diag_pids = {client.pid, server.pid}
    t.stop_server(server)
    cap = t.stop_loaderd()

    st = cap.stats or {}
    ncpu = possible_cpus()
    if st.get("loaderd_ringbufs") != ncpu + 1:
        raise TestFailure(f"loaderd_ringbufs is {st.get('loaderd_ringbufs')}, expected "
                          f"{ncpu + 1} (one per possible CPU and one for the other records)")
    size = 4 << 20
    while size > (1 << 20) and size * ncpu > (16 << 20):
        size >>= 1
    if st.get("loaderd_ringbuf_size") != (4 << 20) + ncpu * size:
        raise TestFailure(f"loaderd_ringbuf_size is {st.get('loaderd_ringbuf_size')}, expected "
                          f"4 MiB + {ncpu} x {size >> 20} MiB")
    said = f"Data ring buffers: {ncpu} of {size >> 20} MiB, one per CPU."
    if not any(said in ln for ln in t.loaderd_err.lines):
        raise TestFailure(f"loaderd did not say {said!r}")
    check_streams(cap, results, client, server, first, more)
    if st.get("analyzer_stream_gaps", 0) or st.get("kernel_drop_ringbuf_bytes", 0):
        raise TestFailure(f"gaps or drops counted: {st}")
    harness.log(f"{EXCHANGES} exchanges with the client moving between CPUs on every write: "
                f"both ends exact and in order; {st.get('analyzer_stream_held')} records held "
                "by the analyzer for order")


def check_streams(cap, results, client, server, first, more):
    if len(results) != 1:
        raise TestFailure(f"expected one connection, got {results}")
    request = b"".join(harness.framed_request(p, n) for p, n in [first] + more)
    reply = b"".join(harness.framed_reply(p, n) for p, n in [first] + more)
    r = results[0]
    local, remote = tuple(r["local"]), tuple(r["remote"])
    for pid, direction, lport, rport, expected in (
            (client.pid, "write", local[1], remote[1], request),
            (client.pid, "read", local[1], remote[1], reply),
            (server.pid, "read", remote[1], local[1], request),
            (server.pid, "write", remote[1], local[1], reply)):
        ss = cap.find_stream_by_ports(pid, direction, lport, rport)
        if len(ss) != 1 or ss[0].problems or ss[0].data != expected:
            raise TestFailure(f"pid {pid} {direction}: expected one exact stream of "
                              f"{len(expected)} B, found " +
                              "; ".join(s.describe() for s in ss))
        # In the output in the order they were made: the rings are drained as one, by time.
        offsets = [rec["offset"] for rec in cap.records  # in file order
                   if rec["conn_id"] == ss[0].conn_id and rec["direction"] == direction]
        late = [i for i in range(1, len(offsets)) if offsets[i] < offsets[i - 1]]
        if late:
            raise TestFailure(f"pid {pid} {direction}: {len(late)} of {len(offsets)} records "
                              f"out of stream order in the output, the first at line "
                              f"{late[0]} of the stream (offset {offsets[late[0]]} after "
                              f"{offsets[late[0] - 1]})")


if __name__ == "__main__":
    harness.run(main)
