#!/usr/bin/python3
# Proves: with --log-target journal, loaderd's events reach a real systemd-journald as
# structured entries: MESSAGE_IDs for started, probe attached and ready (docs/catalog.md),
# with PRIORITY, CODE_FILE and SYSLOG_IDENTIFIER fields, readable with journalctl -o json; with
# --journal-exchanges an HTTP exchange becomes an entry journalctl can filter by its TLSSNIFF_*
# fields (method, path, status, process, addresses, latency); a reload with a bad file and one
# with a good file are entries with their MESSAGE_IDs, the failure naming the file's line.

import json
import os
import shutil
import signal
import subprocess
import time

import harness
from harness import TestFailure

JOURNALD = "/lib/systemd/systemd-journald"
SOCKET = "/run/systemd/journal/socket"
IDS = {"6d0c3e1a2b7f4c59a1e8f0d2c4b6a801": "started",
       "6d0c3e1a2b7f4c59a1e8f0d2c4b6a803": "probe attached",
       "6d0c3e1a2b7f4c59a1e8f0d2c4b6a802": "ready"}


EXCHANGE_ID = "6d0c3e1a2b7f4c59a1e8f0d2c4b6a809"
RELOADED_ID = "6d0c3e1a2b7f4c59a1e8f0d2c4b6a80a"
RELOAD_FAILED_ID = "6d0c3e1a2b7f4c59a1e8f0d2c4b6a80b"


def check_no_restart(pid, since):
    """A loaderd that logs to the journal says there, not on stderr, that it restarted the
    analyzer: none of these tests expects a restart."""
    out = subprocess.run(["journalctl", "--no-pager", "-o", "json", "--since", since,
                          f"_PID={pid}"], capture_output=True, text=True).stdout
    restarts = [e.get("MESSAGE") for e in map(json.loads, out.splitlines())
                if harness.RESTART_LINE in str(e.get("MESSAGE"))]
    if restarts:
        raise TestFailure(f"loaderd {pid} restarted the analyzer: {restarts}")


def check_reload(t):
    """A reload with a bad file and one with a good file, as journal entries an operator can
    find by MESSAGE_ID: the failure names the file's line and says the old one is kept."""
    conf = t.tmp / "journal.conf"
    conf.write_text("[output]\njson = yes\n")
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() - 1))
    p = t.spawn_loaderd("--log-target", "journal", "--config", conf, "--output",
                        t.tmp / "reload.txt", "--control-socket", "", name="loaderd-reload")

    def entry(mid):
        out = subprocess.run(["journalctl", "--no-pager", "-o", "json", "--since", since,
                              f"_PID={p.pid}", f"MESSAGE_ID={mid}"], capture_output=True,
                             text=True).stdout
        return [json.loads(x) for x in out.splitlines()]

    try:
        harness.wait_until(lambda: entry("6d0c3e1a2b7f4c59a1e8f0d2c4b6a802"), 60,
                           "the ready entry")
        conf.write_text("[output]\njson = yes\n\n[capture]\ncall-cap = huge\n")
        p.send_signal(signal.SIGHUP)
        failed = harness.wait_until(lambda: entry(RELOAD_FAILED_ID), 20,
                                    "the reload-failed entry")[0]
        if f"{conf}:5: call-cap" not in failed["MESSAGE"] or \
                "running configuration is kept" not in failed["MESSAGE"] or \
                failed.get("PRIORITY") != "3":
            raise TestFailure(f"reload-failed entry: {failed}")
        conf.write_text("[output]\njson = no\n")
        p.send_signal(signal.SIGHUP)
        ok = harness.wait_until(lambda: entry(RELOADED_ID), 20, "the reloaded entry")[0]
        if str(conf) not in ok["MESSAGE"]:
            raise TestFailure(f"reloaded entry: {ok}")
        harness.log(f"journal: {failed['MESSAGE']} / {ok['MESSAGE']}")
    finally:
        p.send_signal(signal.SIGINT)
        if p.wait(60) != 0:
            raise TestFailure("loaderd did not exit cleanly after the reloads")
    check_no_restart(p.pid, since)


def check_exchanges(t):
    """--journal-exchanges: each exchange is a structured entry journalctl can filter on."""
    cert, key = t.make_cert()
    t.write_file("body.bin", b"journal body " * 10)
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() - 1))
    t.start_loaderd("--journal-exchanges")
    server, port = t.start_server("http", cert, key)
    curl = t.spawn(["curl", "-sS", "-k", "--http1.1", "-o", "/dev/null",
                    f"https://127.0.0.1:{port}/journal/path?q=1&token=SECRETJ"], name="curl")
    t.wait_proc(curl, 30)
    entries = []

    def found():
        nonlocal entries
        out = subprocess.run(["journalctl", "--no-pager", "-o", "json", "--since", since,
                              f"MESSAGE_ID={EXCHANGE_ID}", f"TLSSNIFF_PID={curl.pid}"],
                             capture_output=True, text=True).stdout
        entries = [json.loads(line) for line in out.splitlines()]
        return entries
    harness.wait_until(found, 20, "the exchange's journal entry")
    t.stop_server(server)
    t.stop_loaderd()
    e = entries[0]
    want = {"TLSSNIFF_METHOD": "GET", "TLSSNIFF_PATH": "/journal/path?q=1&token=[redacted]",
            "TLSSNIFF_STATUS": "200", "TLSSNIFF_COMM": "curl", "TLSSNIFF_ROLE": "client",
            "TLSSNIFF_PROTOCOL": "http/1.1", "TLSSNIFF_RESPONSE_BODY_BYTES": "130",
            "TLSSNIFF_REMOTE": f"127.0.0.1:{port}", "SYSLOG_IDENTIFIER": "tlssniff-analyzer"}
    bad = {k: e.get(k) for k, v in want.items() if e.get(k) != v}
    if len(entries) != 1 or bad or not float(e.get("TLSSNIFF_LATENCY_MS", "0")) > 0:
        raise TestFailure(f"exchange journal entry differs in {bad}: {entries}")
    if any("SECRETJ" in json.dumps(x) for x in entries):
        raise TestFailure(f"the query's token reached the journal: {entries}")
    if t.capture.stats.get("analyzer_journal_errors", -1) != 0:
        raise TestFailure(f"analyzer_journal_errors = {t.capture.stats.get('analyzer_journal_errors')}")
    harness.log("journal: exchange entry " + e["MESSAGE"])


def main(t):
    started = None
    created_dir = not os.path.exists("/run/systemd/journal")
    if not os.path.exists(SOCKET) or subprocess.run(
            ["journalctl", "--no-pager", "-n", "0"], capture_output=True).returncode != 0:
        if not os.path.exists(JOURNALD):
            raise TestFailure(f"{JOURNALD} is missing (package systemd)")
        started = subprocess.Popen([JOURNALD], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        harness.wait_until(lambda: os.path.exists(SOCKET), 20, "journald's socket")
    try:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() - 1))
        p = t.spawn_loaderd("--log-target", "journal", "--output", t.tmp / "out.txt",
                            "--control-socket", "", name="loaderd-journal")
        seen = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(seen) < len(IDS):
            out = subprocess.run(["journalctl", "--no-pager", "-o", "json", "--since", since,
                                  f"_PID={p.pid}"], capture_output=True, text=True).stdout
            for line in out.splitlines():
                e = json.loads(line)
                if e.get("MESSAGE_ID") in IDS:
                    seen[e["MESSAGE_ID"]] = e
            time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        if p.wait(60) != 0:
            raise TestFailure("loaderd did not exit cleanly")
        check_no_restart(p.pid, since)
        missing = [IDS[i] for i in IDS if i not in seen]
        if missing:
            raise TestFailure(f"journal entries missing for: {missing}")
        for mid, e in seen.items():
            for field in ("PRIORITY", "CODE_FILE", "CODE_LINE", "MESSAGE"):
                if field not in e:
                    raise TestFailure(f"{IDS[mid]} entry lacks {field}: {e}")
            if e.get("SYSLOG_IDENTIFIER") != "tlssniff-loaderd":
                raise TestFailure(f"{IDS[mid]} entry has identifier {e.get('SYSLOG_IDENTIFIER')}")
        if not seen["6d0c3e1a2b7f4c59a1e8f0d2c4b6a802"]["MESSAGE"].startswith("Ready: "):
            raise TestFailure("the ready entry does not say Ready:")
        harness.log("journal: " + "; ".join(f"{IDS[m]}: {e['MESSAGE']}" for m, e in seen.items()))
        check_exchanges(t)
        check_reload(t)
    finally:
        if started:
            started.send_signal(signal.SIGTERM)
            try:
                started.wait(20)
            except subprocess.TimeoutExpired:
                started.kill()
            if created_dir:
                shutil.rmtree("/run/systemd/journal", ignore_errors=True)


if __name__ == "__main__":
    harness.run(main)
