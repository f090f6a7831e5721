#!/usr/bin/env bash
# Builds the fuzz targets (when needed) and runs each for SECONDS seconds on a scratch copy of
# its seed corpus, so fuzz/corpus/ is never modified. Exits non-zero if any target crashed,
# leaked, hung or failed its own checks; the inputs that did it are kept (see fuzz/README.md).
#
# Usage: fuzz/run-all.sh [SECONDS] [TARGET...]      (default 20 s, all targets)
# Environment: FUZZ_BUILD_DIR (default build-fuzz), FUZZ_ARTIFACTS (default
# $FUZZ_BUILD_DIR/fuzz-artifacts), FUZZ_ARGS (more libFuzzer flags, e.g. "-jobs=2 -workers=2").
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
seconds="${1:-20}"
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(frames analyzer tlslib place loaderd http1 gotls http2 tail config control admin redact planner)
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
artifacts="${FUZZ_ARTIFACTS:-$build/fuzz-artifacts}"

if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [[ "$seconds" -lt 1 ]]; then
        echo "usage: $0 [SECONDS] [TARGET...]" >&2
        exit 2
fi

if [[ ! -f "$build/build.ninja" ]]; then
        CC=clang meson setup "$build" "$root" \
                -Db_sanitize=address,undefined -Db_lundef=false \
                -Dc_args=-fsanitize=fuzzer-no-link -Dfuzz=true
fi
ninja -C "$build" $(printf 'fuzz/fuzz-%s ' "${targets[@]}")

# UBSan findings stop the run like ASan's do; leaks are checked after every input.
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

failed=()
for t in "${targets[@]}"; do
        exe="$build/fuzz/fuzz-$t"
        corpus="$scratch/$t"
        dict="$here/$t.dict"
        [[ -f "$dict" ]] || dict="$here/frames.dict"
        mkdir -p "$corpus" "$artifacts/$t"
        cp "$here/corpus/$t/"* "$corpus/"
        echo "=== fuzz-$t for ${seconds}s (artifacts: $artifacts/$t/)"
        rc=0
        # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
        "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
                -dict="$dict" -artifact_prefix="$artifacts/$t/" ${FUZZ_ARGS:-} "$corpus" \
                >"$scratch/$t.log" 2>&1 || rc=$?
        grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' \
                "$scratch/$t.log" || true
        if [[ $rc -ne 0 ]]; then
                echo "--- fuzz-$t FAILED (exit $rc); log tail:"
                tail -n 60 "$scratch/$t.log"
                cp "$scratch/$t.log" "$artifacts/$t/last-run.log"
                failed+=("$t")
        fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
        echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}; inputs in $artifacts/"
        exit 1
fi
echo "fuzz: ${#targets[@]} target(s) ran ${seconds}s each without a finding"
