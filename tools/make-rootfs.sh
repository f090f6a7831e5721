#!/bin/bash
# A minimal Debian bookworm root file system that boots systemd under systemd-nspawn, with the
# libraries tlssniff links and TLS peers (openssl, curl), for the end-to-end test
# (tests/test_nspawn.py).
#
# usage: tools/make-rootfs.sh DEST
#
# The first run makes it with debootstrap and keeps it as a tarball in CACHE_DIR
# (/var/cache/tlssniff-test/nspawn, or $TLSSNIFF_ROOTFS_CACHE), named by a hash of the suite,
# the package list and the recipe below; every run unpacks a fresh copy into DEST (which must
# not exist or be empty) and prints DEST. The mirror is the one the machine's own apt uses
# (the first URIs of the stanza of /etc/apt/sources.list.d/debian.sources whose Suites name
# bookworm), and the copy keeps no apt sources.
set -euo pipefail

if [ $# -ne 1 ]; then
        echo "usage: $0 DEST" >&2
        exit 2
fi
dest=$1
suite=bookworm
cache=${TLSSNIFF_ROOTFS_CACHE:-/var/cache/tlssniff-test/nspawn}
# systemd and its bus; the runtime libraries of tlssniff-loaderd, tlssniff-analyzer and
# tlssniffctl (libinih1: the configuration file); TLS peers for the test.
packages=(systemd systemd-sysv dbus
          libbpf1 libelf1 libcapstone4 libdwarf1 libmsgpackc2 libnghttp2-14 libsystemd0 zlib1g
          libinih1
          openssl curl ca-certificates)
# Bump when the steps after debootstrap change, so that old tarballs are not reused.
recipe=2

key=$({ printf '%s\n' "$suite" minbase "recipe=$recipe"; printf '%s\n' "${packages[@]}" | sort; } |
      sha256sum | cut -c1-16)
tarball=$cache/rootfs-$suite-$key.tar.gz

src=/etc/apt/sources.list.d/debian.sources
mirror_and_keyring() {
        if [ ! -r "$src" ]; then
                echo "$0: $src not found; cannot choose a mirror for $suite" >&2
                return 1
        fi
        # Stanzas are separated by blank lines; print "URI KEYRING" of the first stanza whose
        # Suites field has the word $suite.
        awk -v suite="$suite" '
                function flush() {
                        if (!done && has && uri != "") {
                                print uri, (key == "" ? "-" : key)
                                done = 1
                        }
                        uri = ""; key = ""; has = 0
                }
                /^[ \t]*$/ { flush(); next }
                /^URIs:/ { uri = $2 }
                /^Signed-By:/ { key = $2 }
                /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) has = 1 }
                END { flush() }
        ' "$src"
}

make_tarball() {
        local mm mirror keyring work
        mm=$(mirror_and_keyring)
        if [ -z "$mm" ]; then
                echo "$0: no stanza for $suite with URIs in $src" >&2
                return 1
        fi
        read -r mirror keyring <<< "$mm"
        local kopt=()
        if [ "$keyring" != "-" ] && [ -r "$keyring" ]; then
                kopt=(--keyring="$keyring")
        fi
        work=$(mktemp -d "$cache/build.XXXXXX")
        # shellcheck disable=SC2064
        trap "rm -rf '$work'" RETURN
        local include
        include=$(IFS=,; echo "${packages[*]}")
        echo "make-rootfs: debootstrap $suite (minbase + $include), cache key $key" >&2
        if ! debootstrap --variant=minbase --include="$include" "${kopt[@]}" \
                        "$suite" "$work/root" "$mirror" > "$work/debootstrap.log" 2>&1; then
                echo "$0: debootstrap failed; last lines of its log:" >&2
                tail -n 30 "$work/debootstrap.log" >&2
                tail -n 30 "$work/root/debootstrap/debootstrap.log" >&2 2>/dev/null || true
                return 1
        fi
        # No apt sources or debootstrap log (they name the mirror) and no downloaded packages
        # in the copy.
        rm -f "$work/root/etc/apt/sources.list" "$work/root/var/log/bootstrap.log"
        rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"*
        echo tlssniff-test > "$work/root/etc/hostname"
        # An empty machine-id: systemd makes one per boot (each test run boots a fresh copy).
        : > "$work/root/etc/machine-id"
        tar -C "$work/root" --numeric-owner --xattrs -czf "$work/rootfs.tar.gz" .
        mv "$work/rootfs.tar.gz" "$tarball"
        # Tarballs of other package lists or recipes are not used again.
        find "$cache" -maxdepth 1 -name 'rootfs-*.tar.gz' ! -name "${tarball##*/}" -delete
}

mkdir -p "$cache"
(
        # One maker at a time; the others wait for the tarball it leaves.
        flock 9
        if [ ! -s "$tarball" ]; then
                make_tarball
        fi
) 9> "$cache/.lock"

mkdir -p "$dest"
if [ -n "$(ls -A "$dest")" ]; then
        echo "$0: $dest is not empty" >&2
        exit 1
fi
tar -C "$dest" --numeric-owner --xattrs --xattrs-include='*' -xzf "$tarball"
echo "$dest"
