#!/bin/bash
# Fetch packages from another Debian suite (for example libssl1.1 from bullseye) into a cache
# folder, without touching the system's apt configuration: the sources file is derived from the
# machine's own /etc/apt/sources.list.d/debian.sources with the Suites line changed, and apt
# keeps its lists and downloads under the cache folder.
#
# usage: tools/fetch-suite.sh SUITE CACHE_DIR PACKAGE...
# Each PACKAGE is extracted into CACHE_DIR/root (dpkg-deb -x); prints CACHE_DIR/root.
set -euo pipefail

if [ $# -lt 3 ]; then
        echo "usage: $0 SUITE CACHE_DIR PACKAGE..." >&2
        exit 2
fi
suite=$1
cache=$2
shift 2
src=/etc/apt/sources.list.d/debian.sources
if [ ! -r "$src" ]; then
        echo "$0: $src not found; cannot derive a sources entry for $suite" >&2
        exit 1
fi

mkdir -p "$cache/etc/sources.list.d" "$cache/lists/partial" "$cache/archives/partial" "$cache/root"
# The first stanza is the main archive; keep its URIs and keyring, change the suite.
awk -v suite="$suite" '
        /^$/ { exit }
        /^Suites:/ { print "Suites: " suite; next }
        { print }
' "$src" > "$cache/etc/sources.list.d/suite.sources"

opts=(-o "Dir::Etc::SourceList=/dev/null"
      -o "Dir::Etc::SourceParts=$cache/etc/sources.list.d"
      -o "Dir::State::Lists=$cache/lists"
      -o "Dir::Cache::Archives=$cache/archives"
      -o "Dir::State::status=/dev/null" -o "APT::Sandbox::User=root"
      -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=")

stamp="$cache/lists/.updated"
if [ ! -e "$stamp" ] || [ -n "$(find "$stamp" -mmin +1440 2>/dev/null)" ]; then
        apt-get "${opts[@]}" -qq update >&2
        touch "$stamp"
fi
cd "$cache/archives"
for pkg in "$@"; do
        if ! ls "${pkg}"_*.deb > /dev/null 2>&1; then
                apt-get "${opts[@]}" -qq download "$pkg" >&2
        fi
        deb=$(ls -t "${pkg}"_*.deb | head -n 1)
        dpkg-deb -x "$deb" "$cache/root"
done
echo "$cache/root"
