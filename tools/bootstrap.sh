#!/usr/bin/env bash
# Installs what tlssniff needs on Debian 12 (when missing), then configures and builds it in
# ./build. Safe to run again. Usage: tools/bootstrap.sh [--tests]
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(meson ninja-build pkg-config clang llvm bpftool xz-utils
      libbpf-dev libelf-dev zlib1g-dev libmsgpack-dev libsystemd-dev libcapstone-dev libdwarf-dev
      libnghttp2-dev)
if [ "${1:-}" = "--tests" ]; then
        # Real TLS peers and tools for the integration tests and benchmarks.
        pkgs+=(openssl curl python3 ca-certificates iproute2 procps libclang-rt-14-dev nodejs golang-go
              nghttp2-client nghttp2-server python3-grpcio
              debootstrap systemd-container)
fi

missing=()
for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ]; then
                echo "bootstrap: missing packages: ${missing[*]} (run as root to install them)" >&2
                exit 1
        fi
        echo "bootstrap: installing ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "${1:-}" = "--tests" ] && [ "$(id -u)" -eq 0 ]; then
        # OpenSSL 1.1.1 (library and openssl binary) from Debian's bullseye suite, unpacked in a
        # cache folder, never installed: the placement and differential tests trace it.
        # Go 1.15 (ABI0) from bullseye and a current Go from bookworm-backports, next to
        # bookworm's Go 1.19 (golang-go): the Go tests build their programs with all three.
        tools/fetch-suite.sh bullseye /var/cache/tlssniff-test/bullseye libssl1.1 openssl \
                golang-1.15-go golang-1.15-src >/dev/null
        tools/fetch-suite.sh bookworm-backports /var/cache/tlssniff-test/bookworm-backports \
                golang-1.23-go golang-1.23-src >/dev/null
fi

if [ ! -f build/build.ninja ]; then
        meson setup build
fi
ninja -C build
