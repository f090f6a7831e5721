#!/usr/bin/python3
# Proves: --comm and --cgroup select processes in the kernel: with --comm curl only curl's
# traffic is captured (not the python3 server's, not a python3 client's); with --cgroup only
# the process placed in that cgroup v2 group is captured, exactly. A filtered-out call costs no
# return probe where the kernel has uprobe sessions (kernel_returns_filtered stays 0), and one
# with --uprobe-sessions=no.

import os

import harness
from harness import TestFailure

HOST = "127.0.0.1"


def comm_filter(t, cert, key):
    body = os.urandom(5000)
    t.write_file("body.bin", body)
    t.start_loaderd("--comm", "curl")
    server, port = t.start_server("http", cert, key, HOST)
    curl = t.spawn(["curl", "-k", "--http1.1", "-sS", "--max-time", "30", "-o", os.devnull,
                    f"https://{HOST}:{port}/x"], name="curl")
    t.wait_proc(curl, 40)
    t.stop_server(server)
    server2, port2 = t.start_server("framed", cert, key, HOST)
    py = harness.spawn_client(t, "py-client", port2, [(os.urandom(700), 900)], cert)
    harness.client_results(t, py)
    t.stop_server(server2)
    cap = t.stop_loaderd()
    cap.find_stream(curl.pid, "read", harness.http_response(body), "curl read stream")
    others = sorted({(r["pid"], r["comm"]) for r in cap.records if r["pid"] != curl.pid})
    if others:
        raise TestFailure(f"--comm curl but other processes were captured: {others}")
    harness.log("--comm: only curl captured")


def cgroup_filter(t, cert, key):
    with harness.cgroup2_group(f"tlssniff-test-{os.getpid()}") as group:
        os.mkdir(group)
        server, port = t.start_server("framed", cert, key, HOST)
        harness.capture_group_member(t, group, server, port, cert,
                                     [(os.urandom(3000), 4000)],
                                     lambda: t.start_loaderd("--cgroup", group),
                                     f"--cgroup {group}")
        harness.log("--cgroup: only the process in the group captured")


def filtered_returns(t, cert, key):
    for sessions in ("yes", "no"):
        t.start_loaderd("--comm", "no-such-comm", f"--uprobe-sessions={sessions}")
        server, port = t.start_server("framed", cert, key, HOST)
        py = harness.spawn_client(t, "py-client", port, [(os.urandom(700), 900)] * 3, cert)
        harness.client_results(t, py)
        t.stop_server(server)
        log = "\n".join(t.loaderd_err.lines)
        cap = t.stop_loaderd()
        st = cap.stats or {}
        calls, rets = st.get("kernel_calls_filtered", 0), st.get("kernel_returns_filtered", -1)
        if cap.records:
            raise TestFailure(f"--comm no-such-comm captured {len(cap.records)} records")
        if calls < 6:
            raise TestFailure(f"sessions={sessions}: {calls} calls filtered, 6 or more expected")
        if sessions == "no" or "The kernel has no uprobe sessions" in log:
            # Every filtered call still ran its return probe (a call the server was inside
            # when it was stopped has none).
            if not 0 < rets <= calls:
                raise TestFailure(f"sessions={sessions}: {rets} filtered returns for {calls} "
                                  "filtered calls")
        else:
            if "as uprobe sessions" not in log:
                raise TestFailure("the kernel has uprobe sessions but they were not used")
            if rets != 0:
                raise TestFailure(f"uprobe sessions: {rets} return probes ran for filtered calls")
        harness.log(f"uprobe sessions {sessions}: {calls} calls filtered, {rets} returns ran")


def main(t):
    cert, key = t.make_cert()
    comm_filter(t, cert, key)
    cgroup_filter(t, cert, key)
    filtered_returns(t, cert, key)


if __name__ == "__main__":
    harness.run(main)
