/*
 * Go executables that use crypto/tls: which Go, which architecture and ABI, where
 * crypto/tls.(*Conn).Read and .Write start and return, and the struct offsets the BPF side
 * needs (docs/design.md, "Go"). Input is untrusted: a malformed file gives an error, never a
 * crash. The plan puts an entry probe on each function and a plain uprobe on each of its RET
 * instructions (uretprobes rewrite the return address, which Go's stack copying and traceback
 * cannot tolerate), except that Read, where the analysis proves it (amd64), gets one probe on
 * the call that copies the plaintext to the caller (gotls.c, "copy placement").
 */
#pragma once

#include <libelf.h>
#include <stdbool.h>
#include <stdint.h>

#include "msg.h"

enum godwarf_offset {
        GODWARF_GOID,         /* runtime.g.goid */
        GODWARF_CONN,         /* crypto/tls.Conn.conn */
        GODWARF_TCPCONN_CONN, /* net.TCPConn.conn (the embedded net.conn) */
        GODWARF_CONN_FD,      /* net.conn.fd */
        GODWARF_PFD,          /* net.netFD.pfd */
        GODWARF_SYSFD,        /* internal/poll.FD.Sysfd */
        _GODWARF_MAX,
};

/*
 * The offsets from the DWARF of elf. -ENODATA: no DWARF (stripped); -ENOENT: some member is
 * missing; -EBADMSG: the DWARF is broken. ret is written only on success.
 */
int godwarf_offsets(Elf *elf, uint64_t ret[_GODWARF_MAX]);
/* "runtime.g", with *ret_member = "goid". */
const char *godwarf_describe(enum godwarf_offset o, const char **ret_member);

#define GOTLS_RETS_MAX 48
#define GOTLS_BUILD_ID_MAX 128

struct gotls_func {
        uint64_t entry;  /* virtual address */
        uint64_t size;
        uint64_t entry_offset; /* file offset */
        uint64_t entry_probe;  /* file offset of the entry probe: entry_offset or the prologue's
                                  stack-check branch (emulated by the kernel, see gotls.c) */
        uint32_t n_rets;
        uint64_t rets[GOTLS_RETS_MAX]; /* file offsets of the RET instructions */
        /* Read on amd64: the file offset of its one call to runtime.memmove, which copies the
         * plaintext into the caller's buffer, and where c (the *Conn) is at that call (sp +
         * conn_off); 0 when not proven (see gotls.c). */
        uint64_t copy_probe;
        int16_t copy_conn_off;
};

struct gotls_info {
        char version[256]; /* "go1.19.8", or "go1.23.5 X:boringcrypto" with experiments */
        unsigned major, minor;
        uint16_t machine;  /* EM_X86_64 or EM_AARCH64, from the ELF header */
        bool abi_internal; /* register ABI: Go >= 1.17 on amd64, >= 1.18 on arm64 */
        bool symtab;       /* functions found through .symtab (else .gopclntab) */
        bool dwarf;        /* offsets from DWARF (else the per-version table) */
        char build_id[GOTLS_BUILD_ID_MAX]; /* GNU build id in hex, else the Go build id */
        struct gotls_func read, write;
        struct tlssniff_go_info go;
};

/*
 * Cheap check first: not Go (no .go.buildinfo or .gopclntab section) is -ENOTSUP and costs a
 * walk over the section headers. For a Go executable without crypto/tls, or one that cannot be
 * analysed, returns 0 with plan->n_probes == 0 and the reason in plan->reason. info (may be
 * NULL) describes what was found. The plan's probes are for the ELF's own architecture.
 */
int gotls_plan(int fd, struct msg_plan *plan, struct gotls_info *info);
int gotls_plan_mem(const void *data, size_t size, struct msg_plan *plan, struct gotls_info *info);
/* Same, on an Elf the caller opened (read_fd: the file, for code; see gotls.c). */
int gotls_plan_elf(Elf *elf, int fd, const void *data, size_t size, struct msg_plan *plan,
                   struct gotls_info *info);

/*
 * --placement fallback: entry probes back on the functions' first instructions (info from the
 * analysis that made plan; not from the cache).
 */
void gotls_plan_fallback(struct msg_plan *plan, const struct gotls_info *info);

/* The offsets the per-version table gives for a Go version and architecture; -ENOENT if none. */
int gotls_table_offsets(unsigned major, unsigned minor, uint16_t machine,
                        struct tlssniff_go_info *ret);
/* The file's build id ("" when it has none). */
int gotls_build_id(Elf *elf, char *ret, size_t size);
