#!/usr/bin/env bash
# The whole test suite: installs what is needed, builds, runs the unit and integration tests
# (normal build, then again with ASan/UBSan; the integration tests use the real kernel, BPF and
# TLS programs and need root), a release build (compiled only), and short fuzz runs.
# Ends with a line "N passed, N failed", preceded by the name of each failed test, and fails
# when any test or build failed. Only what this run produced is counted: each meson run's
# testlog.json is removed first and its exit status is checked against it.
set -uo pipefail
cd "$(dirname "$0")/.."

failures=()   # "what: why", one per failure that is not a meson test of this run
logs=()       # "<build dir>:<meson's exit status>" per meson test run

summary() {
        /usr/bin/python3 - "${#failures[@]}" "${failures[@]}" "${logs[@]}" "$@" <<'PY'
import json, os, sys
n_extra = int(sys.argv[1])
extra = sys.argv[2:2 + n_extra]
runs, passed_extra = [], 0
for arg in sys.argv[2 + n_extra:]:
    if arg.startswith("+"):
        passed_extra += int(arg[1:])
    else:
        runs.append(arg)
passed = skipped = 0
failed = list(extra)
for run in runs:
    d, rc = run.rsplit(":", 1)
    path = os.path.join(d, "meson-logs", "testlog.json")
    n_failed = 0
    try:
        lines = open(path).read().splitlines()
    except OSError as e:
        failed.append(f"{d}: meson test wrote no log ({e.strerror}); exit status {rc}")
        continue
    for line in lines:
        t = json.loads(line)
        r = t.get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            n_failed += 1
            failed.append(f"{d}: {t.get('name')} {r} ({t.get('duration', 0):.0f} s)")
    if rc != "0" and n_failed == 0:
        failed.append(f"{d}: meson test exited {rc} with no failed test in its log "
                      "(a build step or meson itself failed)")
passed += passed_extra
for f in failed:
    print(f"FAILED: {f}")
print(f"{passed} passed, {len(failed)} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed else 0)
PY
}

run_meson() { # <build dir> <meson test args...>
        local dir=$1 rc=0
        shift
        rm -f "$dir/meson-logs/testlog.json"
        meson test -C "$dir" --print-errorlogs "$@" || rc=$?
        logs+=("$dir:$rc")
}

if ! tools/bootstrap.sh --tests; then
        failures+=("tools/bootstrap.sh --tests: installing or building failed")
        summary
        exit 1
fi

run_meson build --suite unit --suite integration

# Sanitizers: the unit and integration tests again with ASan and UBSan (real BPF, real peers,
# sanitized daemons): a report makes loaderd or the analyzer exit non-zero or restart, and the
# tests fail on either (tests/harness.py, check_daemons).
if [ ! -f build-asan/build.ninja ]; then
        CC=clang meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
if ninja -C build-asan >/dev/null; then
        ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
                run_meson build-asan --suite unit --suite integration
else
        failures+=("build-asan: the ASan/UBSan build failed")
fi

# A release build (-O3, as packagers build) compiles without warnings too: GCC's deeper
# inlining finds things -O2 does not (it once failed on a false -Wstringop-overflow).
passed_extra=0
if [ ! -f build-release/build.ninja ]; then
        meson setup build-release -Dbuildtype=release >/dev/null
fi
if ninja -C build-release >/dev/null; then
        passed_extra=$((passed_extra + 1))
else
        failures+=("build-release: the release build (-Dbuildtype=release) failed")
fi

if fuzz/run-all.sh "${FUZZ_SECONDS:-15}"; then
        passed_extra=$((passed_extra + 1))
else
        failures+=("fuzz/run-all.sh: a fuzz target failed (artifacts in build-fuzz/fuzz-artifacts)")
fi

summary "+$passed_extra"
