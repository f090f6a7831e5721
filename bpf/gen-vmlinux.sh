#!/bin/sh
# Writes vmlinux.h for the BPF build: from the running kernel's BTF when it exists, else from
# the checked-in compressed copy (generated on a 6.18 x86_64 kernel).
set -eu
bpftool=$1 fallback=$2 out=$3
if [ -r /sys/kernel/btf/vmlinux ] && "$bpftool" btf dump file /sys/kernel/btf/vmlinux format c > "$out.tmp" 2>/dev/null; then
        mv "$out.tmp" "$out"
else
        rm -f "$out.tmp"
        xz -dc "$fallback" > "$out"
fi
