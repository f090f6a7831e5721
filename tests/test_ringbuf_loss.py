#!/usr/bin/python3
# Proves: a burst larger than the ring buffer loses records, and every lost byte is counted:
# bytes moved by the TLS calls = bytes captured + bytes counted as dropped, exactly; what was
# captured is still exact where it was kept. Both ways a payload reaches the ring buffer are
# run: read straight into it (--direct-read, the default where the kernel can), with the default
# placement (OpenSSL probed on its copies: a record per call), and copied through the per-CPU
# scratch (--direct-read=no) with the fallback placement's entry and return probes, whose calls
# span many records: a drop inside one splits its message, and the analyzer says so.

import os

import harness
from harness import TestFailure

HOST = "127.0.0.1"
BURST = 32 << 20          # one SSL_write of 32 MiB into a 1 MiB ring buffer


def main(t):
    cert, key = t.make_cert()
    for direct, said, placement in (
            ("yes", "Plaintext read straight into the ring buffer.", "auto"),
            ("no", "through a scratch buffer (--direct-read=no)", "fallback")):
        burst(t, cert, key, direct, said, placement)


def burst(t, cert, key, direct, said, placement):
    server, port = t.start_server("framed", cert, key, HOST)
    payload = os.urandom(BURST)
    reply_len = 1000
    c = harness.spawn_client(t, "client", port, [(payload, reply_len)], cert,
                             flags=["--wait-go"])
    t.expect_line(c, "WAITING")
    t.start_loaderd("--ringbuf-size", "1M", "--call-cap", "64M", f"--direct-read={direct}",
                    "--placement", placement, "--pid", server.pid, "--pid", c.pid)
    if not any(said in ln for ln in t.loaderd_err.lines):
        raise TestFailure(f"--direct-read={direct}: loaderd did not say {said!r}")
    c.stdin.write(b"go\n")
    c.stdin.flush()
    harness.client_results(t, c, timeout=120)
    t.stop_server(server)
    cap = t.stop_loaderd()

    request = harness.framed_request(payload, reply_len)
    reply = harness.framed_reply(payload, reply_len)
    moved = 2 * len(request) + 2 * len(reply)  # each side's writes and reads
    st = cap.stats or {}
    captured = sum(r["length"] for r in cap.records)
    counted = (st.get("kernel_bytes", 0) + st.get("kernel_drop_ringbuf_bytes", 0) +
               st.get("kernel_drop_read_fail_bytes", 0) + st.get("kernel_truncated_bytes", 0))
    harness.log(f"--direct-read={direct}, --placement {placement}: moved {moved} B; kernel captured {st.get('kernel_bytes')} B, dropped "
                f"{st.get('kernel_drop_ringbuf_bytes')} B in "
                f"{st.get('kernel_drop_ringbuf_records')} records; output {captured} B")
    if st.get("kernel_drop_ringbuf_bytes", 0) == 0:
        raise TestFailure("the burst did not overflow the ring buffer; the test proves nothing")
    if counted != moved:
        raise TestFailure(f"captured + counted losses = {counted} B, but the calls moved "
                          f"{moved} B")
    if captured != st.get("kernel_bytes"):
        raise TestFailure(f"the output holds {captured} B but the kernel captured "
                          f"{st.get('kernel_bytes')} B")
    # What was kept sits at its true offsets: every record's bytes match what was sent there.
    for r in cap.records:
        sent = {("write", c.pid): request, ("read", server.pid): request,
                ("write", server.pid): reply, ("read", c.pid): reply}[(r["direction"], r["pid"])]
        if r["_bytes"] != sent[r["offset"]:r["offset"] + r["length"]]:
            raise TestFailure(f"record at offset {r['offset']} ({r['direction']}, pid "
                              f"{r['pid']}) does not match the bytes sent there")
    if placement == "fallback" and st.get("analyzer_split_messages", 0) == 0:
        raise TestFailure("records were dropped inside a call but no message was split")


if __name__ == "__main__":
    harness.run(main)
