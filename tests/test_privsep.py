#!/usr/bin/python3
# Proves: the analyzer runs as the unprivileged tlssniff user with no capabilities and
# no_new_privs and a seccomp filter (Seccomp 2), and is the one writing the output file that
# loaderd opened for it; and that
# after loaderd is SIGKILLed no uprobe of tlssniff stays behind and the analyzer exits.
# Also that loaderd and the analyzer keep the policy they were started with by default
# (SCHED_OTHER), run with SCHED_BATCH under --batch-scheduling, and keep a policy other than
# SCHED_OTHER that whoever started them chose even then.

import json
import os
import pwd
import subprocess
import signal
import time

import harness
from harness import TestFailure


def status_of(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return fields


def children_of(ppid):
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == ppid:
            kids.append(int(d))
    return kids


def analyzers_of(ppid):
    """loaderd's children that are the analyzer, past its exec: not the planners it starts
    (tlssniff-analyzer --plan=ID), nor a child between fork and exec."""
    out = []
    for pid in children_of(ppid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv[0] == b"tlssniff-analyzer" and not any(a.startswith(b"--plan=") for a in argv):
            out.append(pid)
    return out


def our_uprobes(pid):
    """Perf events of pid that are uprobes (their fds link to anon_inode:[perf_event])."""
    n = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:[perf_event]":
                    n += 1
            except OSError:
                pass
    except OSError:
        return 0
    return n


def uprobe_session_links(pid):
    """BPF links of pid that are uprobe_multi links (uprobe sessions), from their fdinfo."""
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                n += "link_type:\tuprobe_multi" in f.read()
        except OSError:
            pass
    return n


def prog_ids_of(pid):
    """Ids of the BPF programs pid holds through its fds (prog_id in their fdinfo)."""
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith("prog_id:"):
                        ids.add(int(line.split()[1]))
        except OSError:
            pass
    return ids


POLICY_NAMES = {os.SCHED_OTHER: "SCHED_OTHER", os.SCHED_BATCH: "SCHED_BATCH",
                os.SCHED_IDLE: "SCHED_IDLE"}


def check_policy(t, loaderd, want, how):
    kids = analyzers_of(loaderd.pid)
    if len(kids) != 1:
        raise TestFailure(f"loaderd has {len(kids)} analyzers, expected one")
    for name, pid in (("loaderd", loaderd.pid), ("analyzer", kids[0])):
        got = os.sched_getscheduler(pid)
        if got != want:
            raise TestFailure(f"{how}: {name} runs with {POLICY_NAMES.get(got, got)}, expected "
                              f"{POLICY_NAMES[want]}")
    return kids[0]


def scheduling(t):
    loaderd = t.start_loaderd("--batch-scheduling")
    check_policy(t, loaderd, os.SCHED_BATCH, "--batch-scheduling")
    t.stop_loaderd()
    # Started with SCHED_IDLE (as a unit's CPUSchedulingPolicy=idle would): kept, and said so.
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    try:
        loaderd = t.start_loaderd("--batch-scheduling")
    finally:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    check_policy(t, loaderd, os.SCHED_IDLE, "started with SCHED_IDLE")
    if not any("Scheduling policy 5 kept" in ln for ln in t.loaderd_err.lines):
        raise TestFailure("loaderd did not say it kept the policy it was started with")
    t.stop_loaderd()
    harness.log("SCHED_OTHER by default, SCHED_BATCH with --batch-scheduling; a chosen policy "
                "is kept")


def main(t):
    loaderd = t.start_loaderd()
    analyzer = check_policy(t, loaderd, os.SCHED_OTHER, "by default")
    st = status_of(analyzer)
    uid = pwd.getpwnam("tlssniff").pw_uid
    if st["Uid"].split() != [str(uid)] * 4 or uid == 0:
        raise TestFailure(f"analyzer Uid {st['Uid']}, expected tlssniff ({uid}) everywhere")
    if st["Gid"].split()[0] == "0" or st.get("Groups", "") not in ("",):
        raise TestFailure(f"analyzer Gid {st['Gid']} Groups '{st.get('Groups')}'")
    for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        if int(st[cap], 16) != 0:
            raise TestFailure(f"analyzer {cap} = {st[cap]}, expected 0")
    if st["NoNewPrivs"] != "1":
        raise TestFailure(f"analyzer NoNewPrivs = {st['NoNewPrivs']}")
    # A seccomp filter (mode 2), except in the sanitizer build, which says why in its log.
    harness.wait_until(lambda: any("seccomp" in ln for ln in t.loaderd_err.lines) or
                       status_of(analyzer).get("Seccomp") == "2", 10, "the seccomp filter")
    st = status_of(analyzer)
    if any("No seccomp filter in this build" in ln for ln in t.loaderd_err.lines):
        if "build-asan" not in str(harness.LOADERD):
            raise TestFailure("the analyzer of a normal build runs without a seccomp filter")
        harness.log("sanitizer build: no seccomp filter (ASan's leak checker needs ptrace)")
    elif st.get("Seccomp") != "2" or int(st.get("Seccomp_filters", "0")) < 1:
        raise TestFailure(f"analyzer Seccomp {st.get('Seccomp')} filters "
                          f"{st.get('Seccomp_filters')}, expected a filter (2)")
    if any("Failed to install the seccomp filter" in ln for ln in t.loaderd_err.lines):
        raise TestFailure("the analyzer could not install its seccomp filter")
    # Every thread (the output's writer thread, analyzer/out/direct.h, starts before the
    # filter): the same filter, no privileges.
    threads = sorted(os.listdir(f"/proc/{analyzer}/task"))
    if len(threads) < 2:
        raise TestFailure(f"analyzer threads {threads}: expected the output's writer thread too")
    for tid in threads:
        ts = status_of(tid)  # /proc/TID/status is the thread's own
        if ts["NoNewPrivs"] != "1" or int(ts["CapEff"], 16) != 0 or \
                ts.get("Seccomp") != st.get("Seccomp") or \
                ts.get("Seccomp_filters") != st.get("Seccomp_filters"):
            raise TestFailure(f"analyzer thread {tid}: NoNewPrivs {ts['NoNewPrivs']} CapEff "
                              f"{ts['CapEff']} Seccomp {ts.get('Seccomp')} filters "
                              f"{ts.get('Seccomp_filters')}, unlike the main thread's")
    out_target = os.readlink(f"/proc/{analyzer}/fd/1")
    if out_target != str(t.output):
        raise TestFailure(f"analyzer stdout is {out_target}, expected {t.output}")
    # The output as the analyzer holds it: write-only and appending, a description of its
    # own (loaderd's is read-write), so that it can neither read the file nor rewrite it.
    with open(f"/proc/{analyzer}/fdinfo/1") as f:
        flags = int([ln.split()[1] for ln in f if ln.startswith("flags:")][0], 8)
    if flags & os.O_ACCMODE != os.O_WRONLY or not flags & os.O_APPEND:
        raise TestFailure(f"analyzer stdout flags {oct(flags)}: expected write-only, appending")
    # Standard input is /dev/null and the analyzer leads a session of its own, without a
    # controlling terminal (nothing to push input into with TIOCSTI).
    if os.readlink(f"/proc/{analyzer}/fd/0") != "/dev/null":
        raise TestFailure(f"analyzer stdin is {os.readlink(f'/proc/{analyzer}/fd/0')}")
    with open(f"/proc/{analyzer}/stat") as f:
        stat_fields = f.read().rsplit(")", 1)[1].split()
    session, tty = int(stat_fields[3]), int(stat_fields[4])
    if session != analyzer or tty != 0:
        raise TestFailure(f"analyzer session {session} tty {tty}: expected a session of its "
                          f"own ({analyzer}) and no terminal")
    probes = our_uprobes(loaderd.pid)
    sessions = uprobe_session_links(loaderd.pid)
    if probes == 0:
        raise TestFailure("loaderd holds no perf events: no uprobes attached?")
    if any("as uprobe sessions" in ln for ln in t.loaderd_err.lines) and sessions == 0:
        raise TestFailure("loaderd says it attached uprobe sessions but holds no uprobe_multi link")
    harness.log(f"analyzer pid {analyzer}: uid {uid}, no capabilities, NoNewPrivs 1, "
                f"Seccomp {st.get('Seccomp')}; "
                f"loaderd holds {probes} perf events and {sessions} uprobe session links")

    held = prog_ids_of(loaderd.pid)
    if len(held) < 6:
        raise TestFailure(f"loaderd holds BPF programs {sorted(held)}, expected at least 6")

    # SIGKILL: the probes die with loaderd's fds; the analyzer sees EOF and exits.
    loaderd.send_signal(signal.SIGKILL)
    loaderd.wait(60)
    deadline = time.monotonic() + 30
    while os.path.exists(f"/proc/{analyzer}") and time.monotonic() < deadline:
        try:
            if status_of(analyzer)["State"].startswith("Z"):
                break
        except OSError:
            break
        time.sleep(0.1)
    if os.path.exists(f"/proc/{analyzer}") and \
            not status_of(analyzer)["State"].startswith("Z"):
        raise TestFailure("the analyzer did not exit after loaderd was killed")
    # None of the programs loaderd held may stay loaded (they carry the uprobes, the uprobe
    # sessions and the tracepoints; a link left behind would keep its program loaded). Other tlssniff instances on the machine have programs of the same names,
    # so the check is by the ids loaderd held.
    left = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True,
                             text=True, check=True).stdout
        left = [p for p in json.loads(out or "[]") if p.get("id") in held]
        if not left:
            break
        time.sleep(0.2)
    if left:
        raise TestFailure(f"BPF programs left loaded after loaderd was killed: "
                          f"{[(p['id'], p['name']) for p in left]}")
    t.loaderd = None
    harness.log("after SIGKILL of loaderd the analyzer exited and no BPF program of ours is left")
    scheduling(t)


if __name__ == "__main__":
    harness.run(main)
