#!/usr/bin/env bash
# The whole test suite: installs what is needed, builds, runs the unit and integration tests
# (normal build, then again with ASan/UBSan), the integration tests (real kernel, BPF and TLS programs; need root), a
# release build (compiled only), and short fuzz runs. Ends with a line "N passed, N failed" and fails when any test failed.
set -uo pipefail
cd "$(dirname "$0")/.."

tools/bootstrap.sh --tests || { echo "0 passed, 1 failed"; exit 1; }

results=()
run_meson() { # <build dir> <meson test args...>
        local dir=$1; shift
        meson test -C "$dir" --print-errorlogs "$@"
        results+=("$dir/meson-logs/testlog.json")
}

run_meson build --suite unit --suite integration

# Sanitizers: the unit tests again under ASan and UBSan.
if [ ! -f build-asan/build.ninja ]; then
        CC=clang meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
if ninja -C build-asan >/dev/null; then
        # Unit tests and the integration tests (real BPF, real peers) with sanitized daemons:
        # a sanitizer report makes loaderd or the analyzer exit non-zero, which fails a test.
        ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
                run_meson build-asan --suite unit --suite integration
else
        echo "FAIL: the ASan/UBSan build failed" >&2
        asan_build_failed=1
fi

extra_fail=${asan_build_failed:-0}

# A release build (-O3, as packagers build) compiles without warnings too: GCC's deeper
# inlining finds things -O2 does not (it once failed on a false -Wstringop-overflow).
if [ ! -f build-release/build.ninja ]; then
        meson setup build-release -Dbuildtype=release >/dev/null
fi
if ninja -C build-release >/dev/null; then
        release_ok=1
else
        echo "FAIL: the release build (-Dbuildtype=release) failed" >&2
        release_ok=0
        extra_fail=$((extra_fail + 1))
fi
if [ -x fuzz/run-all.sh ]; then
        if fuzz/run-all.sh "${FUZZ_SECONDS:-15}"; then fuzz_ok=1; else fuzz_ok=0; fi
        [ "$fuzz_ok" = 1 ] || extra_fail=$((extra_fail + 1))
        fuzz_ran=1
fi

/usr/bin/python3 - "$extra_fail" "${fuzz_ran:-0}" "${fuzz_ok:-0}" "$release_ok" "${results[@]}" <<'PY'
import json, sys
extra_fail, fuzz_ran, fuzz_ok, release_ok = map(int, sys.argv[1:5])
passed = failed = skipped = 0
for path in sys.argv[5:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        failed += 1
        continue
    for line in lines:
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
passed += (fuzz_ran and fuzz_ok) + release_ok
failed += extra_fail
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed else 0)
PY
