/*
 * The two Go-specific ELF sections that let the analyzer find crypto/tls in a Go binary even
 * when it is stripped: .gopclntab (the runtime's function table: name, entry and extent of
 * every function) and .go.buildinfo (the toolchain version, which decides the calling
 * convention). Callers pass the section bytes; nothing here touches the file or allocates.
 * The bytes are untrusted: every offset is checked against the buffer it indexes, every loop
 * is bounded by the buffer's size, and malformed input gives -EBADMSG.
 *
 * Layouts follow the Go sources (debug/gosym/pclntab.go, runtime/symtab.go,
 * debug/buildinfo/buildinfo.go) for Go 1.2 to 1.23, little-endian tables only. Entries are
 * the addresses the linker wrote: link-time addresses, also in PIE builds (Go 1.15, 1.19 and
 * 1.23 store them in the section data besides the R_*_RELATIVE relocations). In PIE builds
 * the table is the section .data.rel.ro.gopclntab, not .gopclntab.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * .gopclntab: the function called `name` (exact match, e.g. "crypto/tls.(*Conn).Write").
 * Returns its entry virtual address and its size (next function's entry - entry, so the
 * alignment padding after the function is included). -ENOENT when no function has that name,
 * -ENOTUNIQ when several do (from Go 1.17 an assembly function and its ABI wrapper share a
 * name, from 1.18 so do generic instantiations: "pkg.(*T[...]).M"), -EPROTONOSUPPORT for an
 * unknown magic (Go 1.1 and older, big-endian tables), -EBADMSG for a malformed table. The
 * functab and _func fields of every function are checked, not only those of the one found.
 * Work is linear: nfunc * strlen(name) byte compares at most.
 */
int gopclntab_find(const uint8_t *tab, size_t n, const char *name, uint64_t *ret_entry,
                   uint64_t *ret_size);

/*
 * Calls cb for every function in the table, in table order (for the fuzz target and tests);
 * stops at the first non-zero return of cb and returns it; returns a negative errno on
 * malformed input, possibly after cb has seen the functions before the bad one. name points
 * into tab and is NUL-terminated there; names longer than GOSYM_NAME_MAX are malformed.
 */
#define GOSYM_NAME_MAX 4096 /* real tables: 85 bytes in Go 1.19, 174 in 1.23 (crypto/tls) */
int gopclntab_foreach(const uint8_t *tab, size_t n,
                      int (*cb)(const char *name, uint64_t entry, uint64_t size, void *userdata),
                      void *userdata);

/* Reads n bytes at a virtual address of the same file; returns 0 or negative errno. */
typedef int (*gosym_read_va_t)(void *userdata, uint64_t va, void *buf, size_t n);

/*
 * .go.buildinfo: the Go version string ("go1.19.8", "go1.15.15", "go1.23.5"), NUL-terminated,
 * at most size-1 chars; -ENOBUFS if it does not fit. read_va is used by the pre-1.18 format,
 * whose header holds pointers to Go string headers {ptr, len} elsewhere in the file; its
 * errors are passed on, and a NULL read_va gives -EOPNOTSUPP for that format. The version is
 * at most GOSYM_VERSION_MAX printable ASCII characters (-EBADMSG otherwise); an empty one
 * gives -ENOENT.
 */
#define GOSYM_VERSION_MAX 255
int gobuildinfo_version(const uint8_t *sec, size_t n, gosym_read_va_t read_va, void *userdata,
                        char *ret, size_t size);

/*
 * Parses "go1.19.8" / "go1.21rc2" / "go1.20beta1" / "go1.23.5 X:..." / "go1" into
 * major.minor (1, 19). -EINVAL otherwise (including "devel ..." toolchains).
 */
int goversion_parse(const char *s, unsigned *ret_major, unsigned *ret_minor);
