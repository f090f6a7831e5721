/* Reads placed on OpenSSL's copy to the caller; see sslcopy.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "place.h"
#include "sslcopy.h"

#define CODE_MAX 16384 /* bytes of ssl_read_bytes analysed (place.c's limit) */

/*
 * Offset of ssl_read_bytes in struct ssl_method_st in OpenSSL 1.1.0 to 3.1: int version,
 * unsigned flags, unsigned long mask, then ssl_new, ssl_clear, ssl_free, ssl_accept,
 * ssl_connect, ssl_read, ssl_peek, ssl_write, ssl_shutdown, ssl_renegotiate,
 * ssl_renegotiate_check, ssl_read_bytes. OpenSSL 3.2 added members before it (and QUIC): a
 * library that exports 3.2's functions is not placed this way.
 */
#define METHOD_READ_BYTES 0x68
#define METHOD_WRITE_BYTES 0x70 /* ssl_write_bytes, right after ssl_read_bytes */
#define METHOD_ACCEPT 0x28
#define METHOD_CONNECT 0x30

/* The function symbols looked up, by index (one pass over the symbol tables finds them all). */
enum {
        SYM_TLS_METHOD,
        SYM_DTLS_METHOD,
        SYM_HANDLE_EVENTS, /* OpenSSL 3.2 and later */
        SYM_NEW_STREAM,    /* OpenSSL 3.2 and later */
        SYM_MEMCPY,        /* memcpy's own code (a static executable) */
        SYM_MEMCPY_CHK,
        _SYM_MAX,
};

static const char *const sym_names[_SYM_MAX] = {
        [SYM_TLS_METHOD] = "TLS_method",   [SYM_DTLS_METHOD] = "DTLS_method",
        [SYM_HANDLE_EVENTS] = "SSL_handle_events", [SYM_NEW_STREAM] = "SSL_new_stream",
        [SYM_MEMCPY] = "memcpy",           [SYM_MEMCPY_CHK] = "__memcpy_chk",
};

static int note_sym(const char *name, const GElf_Sym *sym, void *userdata)
{
        uint64_t *addr = userdata;

        for (size_t i = 0; i < _SYM_MAX; i++)
                if (!addr[i] && strcmp(name, sym_names[i]) == 0)
                        addr[i] = sym->st_value;
        return 0;
}

/* n bytes at virtual address va of any loaded segment (exec_only: an executable one). */
static bool read_va(Elf *elf, const struct elf_source *src, uint64_t va, void *buf, size_t n,
                    bool exec_only)
{
        uint64_t off;

        return elf_file_offset(elf, va, n, exec_only, &off) == 0 &&
               elf_source_read(src, buf, n, off) == (ssize_t)n;
}

static uint32_t le32(const uint8_t *b)
{
        return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/*
 * The table a method function returns: [endbr64] then lea table(%rip),%rax (position-
 * independent code) or mov $table,%eax (an executable linked at a fixed address), then ret.
 */
static bool method_table(Elf *elf, const struct elf_source *src, uint64_t fn, uint64_t *ret)
{
        static const uint8_t endbr64[4] = { 0xf3, 0x0f, 0x1e, 0xfa };
        uint8_t b[16];
        size_t i = 0;

        if (!read_va(elf, src, fn, b, sizeof(b), true))
                return false;
        if (memcmp(b, endbr64, sizeof(endbr64)) == 0)
                i = 4;
        if (b[i] == 0x48 && b[i + 1] == 0x8d && b[i + 2] == 0x05 && b[i + 7] == 0xc3) {
                *ret = fn + i + 7 + (uint64_t)(int64_t)(int32_t)le32(b + i + 3);
                return true;
        }
        if (b[i] == 0xb8 && b[i + 5] == 0xc3) {
                *ret = le32(b + i + 1);
                return true;
        }
        return false;
}

/*
 * The pointer stored at virtual address va once the file is loaded: the addend of its
 * R_X86_64_RELATIVE relocation, else the word in the file (an executable linked at a fixed
 * address). false when another relocation sets it (a symbol's address, not this file's code).
 */
static bool pointer_at(Elf *elf, const struct elf_source *src, uint64_t va, uint64_t *ret)
{
        Elf_Scn *scn = NULL;
        uint8_t b[8];

        while ((scn = elf_nextscn(elf, scn))) {
                GElf_Shdr sh;
                Elf_Data *d;

                if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA || sh.sh_entsize == 0)
                        continue;
                d = elf_getdata(scn, NULL);
                for (size_t i = 0; d && i < sh.sh_size / sh.sh_entsize; i++) {
                        GElf_Rela r;

                        if (!gelf_getrela(d, (int)i, &r))
                                break;
                        if (r.r_offset != va)
                                continue;
                        if (GELF_R_TYPE(r.r_info) == R_X86_64_RELATIVE) {
                                *ret = (uint64_t)r.r_addend;
                                return true;
                        }
                        return false; /* a symbol's address: not a function of this file */
                }
        }
        if (!read_va(elf, src, va, b, sizeof(b), false))
                return false;
        memcpy(ret, b, sizeof(*ret));
        return *ret != 0;
}

/* The GOT slot of the R_X86_64_JUMP_SLOT relocation of one of names, per name (0: none). */
static void jump_slots(Elf *elf, const char *const *names, size_t n, uint64_t *ret)
{
        Elf_Scn *scn = NULL;

        while ((scn = elf_nextscn(elf, scn))) {
                GElf_Shdr sh, symsh;
                Elf_Data *d, *syms;
                Elf_Scn *symscn;

                if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA || sh.sh_entsize == 0)
                        continue;
                symscn = elf_getscn(elf, sh.sh_link);
                if (!symscn || !gelf_getshdr(symscn, &symsh))
                        continue;
                d = elf_getdata(scn, NULL);
                syms = elf_getdata(symscn, NULL);
                for (size_t i = 0; d && syms && i < sh.sh_size / sh.sh_entsize; i++) {
                        GElf_Rela r;
                        GElf_Sym sym;
                        const char *name;

                        if (!gelf_getrela(d, (int)i, &r))
                                break;
                        if (GELF_R_TYPE(r.r_info) != R_X86_64_JUMP_SLOT ||
                            !gelf_getsym(syms, (int)GELF_R_SYM(r.r_info), &sym))
                                continue;
                        name = elf_strptr(elf, symsh.sh_link, sym.st_name);
                        for (size_t k = 0; name && k < n; k++)
                                if (!ret[k] && strcmp(name, names[k]) == 0)
                                        ret[k] = r.r_offset;
                }
        }
}

/*
 * The entries of the PLT sections (.plt, .plt.sec: 16 bytes each) that jump through one of the
 * GOT slots: jmp *disp(%rip) (ff 25), possibly after endbr64 and with a bnd prefix.
 */
static size_t plt_entries(Elf *elf, const struct elf_source *src, const uint64_t *slots,
                          size_t n_slots, uint64_t *ret, size_t max)
{
        Elf_Scn *scn = NULL;
        size_t shstrndx, found = 0;

        if (elf_getshdrstrndx(elf, &shstrndx) != 0)
                return 0;
        while ((scn = elf_nextscn(elf, scn)) && found < max) {
                GElf_Shdr sh;
                const char *name;

                if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
                    !(sh.sh_flags & SHF_EXECINSTR))
                        continue;
                name = elf_strptr(elf, shstrndx, sh.sh_name);
                if (!name || (strcmp(name, ".plt") != 0 && strcmp(name, ".plt.sec") != 0))
                        continue;
                for (uint64_t e = 0; e + 16 <= sh.sh_size && found < max; e += 16) {
                        uint8_t b[16];

                        if (elf_source_read(src, b, sizeof(b), sh.sh_offset + e) != sizeof(b))
                                break;
                        for (size_t p = 0; p + 6 <= sizeof(b); p++) {
                                uint64_t target;

                                if (b[p] != 0xff || b[p + 1] != 0x25)
                                        continue;
                                target = sh.sh_addr + e + p + 6 +
                                         (uint64_t)(int64_t)(int32_t)le32(b + p + 2);
                                for (size_t k = 0; k < n_slots; k++)
                                        if (slots[k] && slots[k] == target && found < max)
                                                ret[found++] = sh.sh_addr + e;
                                break;
                        }
                }
        }
        return found;
}

/*
 * The .eh_frame_hdr search table (the usual encoding: pc-relative pointer, 4-byte count, table
 * of data-relative 4-byte pairs, sorted by function start): its entries and the section's
 * address; false when the file has none or it is malformed.
 */
static bool eh_frame_table(Elf *elf, const uint8_t **ret_table, uint32_t *ret_count,
                           uint64_t *ret_base)
{
        Elf_Scn *scn = NULL;
        size_t shstrndx;

        if (elf_getshdrstrndx(elf, &shstrndx) != 0)
                return false;
        while ((scn = elf_nextscn(elf, scn))) {
                GElf_Shdr sh;
                const char *name;
                const uint8_t *b;
                Elf_Data *d;
                uint32_t count;

                if (!gelf_getshdr(scn, &sh))
                        continue;
                name = elf_strptr(elf, shstrndx, sh.sh_name);
                if (!name || strcmp(name, ".eh_frame_hdr") != 0)
                        continue;
                d = elf_getdata(scn, NULL);
                if (!d || !d->d_buf || d->d_size < 12)
                        return false;
                b = d->d_buf;
                if (b[0] != 1 || b[1] != 0x1b || b[2] != 0x03 || b[3] != 0x3b)
                        return false;
                count = le32(b + 8);
                if (count > (d->d_size - 12) / 8)
                        return false;
                *ret_table = b + 12;
                *ret_count = count;
                *ret_base = sh.sh_addr;
                return true;
        }
        return false;
}

/* The function start in entry i of the search table. */
static uint64_t eh_frame_start(const uint8_t *table, uint64_t base, uint32_t i)
{
        return base + (uint64_t)(int64_t)(int32_t)le32(table + 8 * (size_t)i);
}

/*
 * An upper bound of the extent of the function at fn: up to the next function start in the
 * .eh_frame_hdr search table, at most CODE_MAX bytes.
 */
static uint64_t function_extent(Elf *elf, uint64_t fn)
{
        const uint8_t *table;
        uint64_t base, best = CODE_MAX;
        uint32_t count;

        if (!eh_frame_table(elf, &table, &count, &base))
                return best;
        for (uint32_t i = 0; i < count; i++) {
                uint64_t start = eh_frame_start(table, base, i);

                if (start > fn && start - fn < best)
                        best = start - fn;
        }
        return best;
}

/*
 * Whether fn starts a function in the .eh_frame_hdr search table (every compiled function of a
 * library has an entry there; PLT stubs and the middle of functions do not).
 */
static bool is_function_start(Elf *elf, uint64_t fn)
{
        const uint8_t *table;
        uint64_t base;
        uint32_t count, lo = 0, hi;

        if (!eh_frame_table(elf, &table, &count, &base))
                return false;
        /* Binary search; the file is untrusted, so a table out of order only makes this
         * answer no. */
        hi = count;
        while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2;
                uint64_t start = eh_frame_start(table, base, mid);

                if (start == fn)
                        return true;
                if (start < fn)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return false;
}

/* The code of the function at fn (up to its extent), malloc'ed; NULL when it cannot be read. */
static uint8_t *function_code(Elf *elf, const struct elf_source *src, uint64_t fn, size_t *ret_n)
{
        uint64_t size = function_extent(elf, fn), off;
        uint8_t *code;
        ssize_t got;

        if (elf_file_offset(elf, fn, 1, true, &off) < 0)
                return NULL;
        code = malloc(size);
        if (!code)
                return NULL;
        got = elf_source_read(src, code, size, off);
        if (got <= 0) {
                free(code);
                return NULL;
        }
        *ret_n = (size_t)got;
        return code;
}

/* The target of the call rel32 at code[i], if one starts there. */
static bool call_rel32_at(const uint8_t *code, size_t size, uint64_t vaddr, size_t i,
                          uint64_t *ret_to)
{
        if (i + 5 > size || code[i] != 0xe8)
                return false;
        *ret_to = vaddr + i + 5 + (uint64_t)(int64_t)(int32_t)le32(code + i + 1);
        return true;
}

/*
 * A function of this file in member `member` of a method table: its address, or false when the
 * member holds anything else (another file's symbol, not executable code).
 */
static bool table_function(Elf *elf, const struct elf_source *src, uint64_t table,
                           uint64_t member, uint64_t *ret)
{
        uint64_t off;

        return pointer_at(elf, src, table + member, ret) &&
               elf_file_offset(elf, *ret, 1, true, &off) == 0;
}

/*
 * Whether the code has a call rel32 to one of the n targets anywhere in it (a byte scan: a
 * cheap first look before the analysis, which alone decides).
 */
static bool may_call(const uint8_t *code, size_t size, uint64_t vaddr, const uint64_t *targets,
                     size_t n)
{
        for (size_t i = 0; i < size; i++) {
                uint64_t to;

                if (!call_rel32_at(code, size, vaddr, i, &to))
                        continue;
                for (size_t k = 0; k < n; k++)
                        if (to == targets[k])
                                return true;
        }
        return false;
}

/*
 * The probe on a copy call at addr: s (argument 0) and type (1) of the function where the
 * analysis found them, peek (5) too for a read; the copy's source and count as the call
 * receives them (memcpy(dst, src, n), WPACKET_memcpy(pkt, src, len): rsi, rdx).
 */
static void copy_probe(struct sslcopy_probe *p, uint64_t addr, const struct place_arg_loc arg[6],
                       bool peek)
{
        memset(p, 0, sizeof(*p));
        p->addr = addr;
        p->loc[TLSSNIFF_ARG_SSL] = arg[0].loc;
        p->loc[TLSSNIFF_ARG_RTYPE] = arg[1].loc;
        if (peek)
                p->loc[TLSSNIFF_ARG_PEEK] = arg[5].loc;
        p->loc[TLSSNIFF_ARG_BUF] = (struct tlssniff_loc){ .kind = TLSSNIFF_LOC_REG, .reg = 4 };
        p->loc[TLSSNIFF_ARG_NUM] = (struct tlssniff_loc){ .kind = TLSSNIFF_LOC_REG, .reg = 1 };
}

/* The handshake functions of a method table, added to ret's list once each. */
static bool note_handshakes(Elf *elf, const struct elf_source *src, uint64_t table,
                            struct sslcopy_result *ret)
{
        static const uint64_t members[] = { METHOD_ACCEPT, METHOD_CONNECT };

        for (size_t i = 0; i < ELEMENTSOF(members); i++) {
                uint64_t fn;
                bool known = false;

                if (!table_function(elf, src, table, members[i], &fn))
                        return false;
                for (unsigned k = 0; k < ret->n_handshake; k++)
                        known |= ret->handshake[k] == fn;
                if (known)
                        continue;
                if (ret->n_handshake == ELEMENTSOF(ret->handshake))
                        return false;
                ret->handshake[ret->n_handshake++] = fn;
        }
        return true;
}

/*
 * The copy calls in the ssl_read_bytes of one method family: up to max probes in ret, their
 * number in *ret_n; false with *why when there is none or one cannot be probed. *ret_fn is the
 * function once the table gave it; its handshake functions go into res.
 */
static bool place_family(Elf *elf, const struct elf_source *src, uint64_t method_fn,
                         const uint64_t *copiers, size_t n_copiers, struct sslcopy_probe *ret,
                         size_t max, size_t *ret_n, uint64_t *ret_fn, const char **why,
                         struct sslcopy_result *res)
{
        _cleanup_free_ uint8_t *code = NULL;
        uint64_t table, fn;
        struct place_copy pc[SSLCOPY_PER_FAMILY_MAX];
        size_t n = 0, size;

        if (!method_table(elf, src, method_fn, &table)) {
                *why = "the method function does not just return its table";
                return false;
        }
        if (!table_function(elf, src, table, METHOD_READ_BYTES, &fn)) {
                *why = "the method table holds no function of this file for ssl_read_bytes";
                return false;
        }
        *ret_fn = fn;
        if (!note_handshakes(elf, src, table, res)) {
                *why = "the method table holds no handshake functions of this file";
                return false;
        }
        code = function_code(elf, src, fn, &size);
        if (!code) {
                *why = "ssl_read_bytes cannot be read";
                return false;
        }
        if (place_copy_calls(code, size, fn, EM_X86_64, copiers, n_copiers, 3, pc,
                             ELEMENTSOF(pc), &n, why) < 0)
                return false;
        if (n == 0 || n > ELEMENTSOF(pc) || n > max) {
                *why = n == 0 ? "no memcpy into buf proven in ssl_read_bytes"
                              : "too many memcpy calls into buf in ssl_read_bytes";
                return false;
        }
        for (size_t i = 0; i < n; i++) {
                if (!pc[i].emulated) {
                        *why = "a memcpy call is not emulated";
                        return false;
                }
                /* s whole; type and peek are ints (their low 32 bits suffice). */
                if (pc[i].arg[0].loc.kind == TLSSNIFF_LOC_NONE || pc[i].arg[0].narrow ||
                    pc[i].arg[1].loc.kind == TLSSNIFF_LOC_NONE ||
                    pc[i].arg[5].loc.kind == TLSSNIFF_LOC_NONE) {
                        *why = "s, type or peek is not provably anywhere at a memcpy into buf";
                        return false;
                }
                copy_probe(&ret[i], pc[i].call_addr, pc[i].arg, true);
        }
        *ret_n = n;
        return true;
}

bool sslcopy_find(Elf *elf, const struct elf_source *src, struct sslcopy_result *ret)
{
        /* The method families (TLS, DTLS) and the copy routines, as runs of sym_names. */
        const char *const *method_names = sym_names + SYM_TLS_METHOD;
        const char *const *copier_names = sym_names + SYM_MEMCPY;
        enum { N_METHODS = 2, N_COPIERS = 2 };
        uint64_t addr[_SYM_MAX] = {};
        const uint64_t *methods = addr + SYM_TLS_METHOD, *copiers = addr + SYM_MEMCPY;
        uint64_t slots[N_COPIERS] = {}, targets[8];
        size_t n_targets, used = 0;
        GElf_Ehdr eh;

        memset(ret, 0, sizeof(*ret));
        if (!gelf_getehdr(elf, &eh) || eh.e_machine != EM_X86_64) {
                snprintf(ret->reason, sizeof(ret->reason), "x86-64 only");
                return false;
        }
        /* .dynsym first, then .symtab */
        (void)elf_func_symbols(elf, SHT_DYNSYM, note_sym, addr);
        (void)elf_func_symbols(elf, SHT_SYMTAB, note_sym, addr);
        if (!addr[SYM_TLS_METHOD]) {
                snprintf(ret->reason, sizeof(ret->reason), "no TLS_method (OpenSSL < 1.1)");
                return false;
        }
        if (addr[SYM_HANDLE_EVENTS] || addr[SYM_NEW_STREAM]) {
                snprintf(ret->reason, sizeof(ret->reason),
                         "OpenSSL 3.2 or later: method layout not known");
                return false;
        }
        /* memcpy: its PLT entries, or its own code in a static executable. */
        jump_slots(elf, copier_names, N_COPIERS, slots);
        n_targets = plt_entries(elf, src, slots, ELEMENTSOF(slots), targets, ELEMENTSOF(targets));
        for (size_t k = 0; k < N_COPIERS; k++)
                if (copiers[k] && n_targets < ELEMENTSOF(targets))
                        targets[n_targets++] = copiers[k];
        if (n_targets == 0) {
                snprintf(ret->reason, sizeof(ret->reason), "memcpy not found");
                return false;
        }
        memcpy(ret->method_fn, methods, sizeof(ret->method_fn));
        memcpy(ret->memcpy_at, targets, n_targets * sizeof(targets[0]));
        ret->n_memcpy = (unsigned)n_targets;
        for (size_t m = 0; m < N_METHODS; m++) {
                const char *why = NULL;
                uint64_t fn = 0;
                size_t n = 0;

                if (!methods[m])
                        continue; /* no DTLS in this build: nothing to cover */
                if (!place_family(elf, src, methods[m], targets, n_targets,
                                  ret->probe + ret->n, ELEMENTSOF(ret->probe) - ret->n, &n, &fn,
                                  &why, ret)) {
                        /*
                         * Not TLS's: that family's read_bytes itself gets an entry and a return
                         * probe (its reads are rare: DTLS), the others stay on the copy.
                         */
                        if (m > 0 && fn && ret->n_whole < ELEMENTSOF(ret->whole)) {
                                ret->whole[ret->n_whole++] = fn;
                                if (used < sizeof(ret->reason))
                                        used += (size_t)snprintf(
                                                ret->reason + used, sizeof(ret->reason) - used,
                                                "%s%s's read_bytes (0x%llx) at entry and return "
                                                "(%s)", used ? ", " : "", method_names[m],
                                                (unsigned long long)fn, why ? why : "no copy");
                                continue;
                        }
                        ret->n = 0;
                        ret->n_whole = 0;
                        ret->n_handshake = 0;
                        snprintf(ret->reason, sizeof(ret->reason), "%s: %s", method_names[m],
                                 why ? why : "not placed");
                        return false;
                }
                for (size_t i = 0; i < n && used < sizeof(ret->reason); i++)
                        used += (size_t)snprintf(ret->reason + used, sizeof(ret->reason) - used,
                                                 "%smemcpy at 0x%llx in %s's read_bytes (0x%llx)",
                                                 used ? ", " : "",
                                                 (unsigned long long)ret->probe[ret->n + i].addr,
                                                 method_names[m], (unsigned long long)fn);
                ret->n += (unsigned)n;
        }
        return ret->n > 0;
}

#define WRITE_CALLS_MAX 256  /* direct calls looked at in one function */
#define WRITE_CANDIDATES_MAX 32

/* What is known of the functions asked about: copy routines of (src, len) or not. */
struct copier_cache {
        size_t n;
        uint64_t fn[64];
        bool copies[64];
};

/*
 * A copy routine of its second and third arguments: memcpy itself, or a function that passes
 * its own rsi and rdx on to memcpy unchanged on every path to that call (WPACKET_memcpy(pkt,
 * src, len): allocate len bytes in the packet, memcpy(dest, src, len)).
 */
static bool is_copier(Elf *elf, const struct elf_source *src, uint64_t fn,
                      const struct sslcopy_result *res, struct copier_cache *cc)
{
        _cleanup_free_ struct place_call *calls = NULL;
        _cleanup_free_ uint8_t *code = NULL;
        const char *why;
        size_t size, n = 0;
        bool copies = false;

        for (unsigned k = 0; k < res->n_memcpy; k++)
                if (res->memcpy_at[k] == fn)
                        return true;
        for (size_t i = 0; i < cc->n; i++)
                if (cc->fn[i] == fn)
                        return cc->copies[i];
        /* Bounded work on untrusted code: at most this many functions are looked into, each a
         * function start with a call of memcpy in it. */
        if (cc->n == ELEMENTSOF(cc->fn) || !is_function_start(elf, fn))
                return false;
        code = function_code(elf, src, fn, &size);
        calls = calloc(WRITE_CALLS_MAX, sizeof(*calls));
        if (code && calls && may_call(code, size, fn, res->memcpy_at, res->n_memcpy) &&
            place_calls(code, size, fn, EM_X86_64, calls, WRITE_CALLS_MAX, &n, &why) == 0)
                for (size_t i = 0; i < n && i < WRITE_CALLS_MAX && !copies; i++)
                        for (unsigned k = 0; k < res->n_memcpy; k++)
                                copies |= calls[i].target == res->memcpy_at[k] &&
                                          calls[i].passes[1] == 1 && !calls[i].passes_narrow[1] &&
                                          calls[i].passes[2] == 2 && !calls[i].passes_narrow[2];
        cc->fn[cc->n] = fn;
        cc->copies[cc->n++] = copies;
        return copies;
}

/* Whether the code has a call rel32 to a copy routine (a byte scan; see may_call). */
static bool calls_a_copier(Elf *elf, const struct elf_source *src, const uint8_t *code,
                           size_t size, uint64_t vaddr, const struct sslcopy_result *res,
                           struct copier_cache *cc)
{
        for (size_t i = 0; i < size; i++) {
                uint64_t to;

                if (call_rel32_at(code, size, vaddr, i, &to) && to != vaddr &&
                    is_copier(elf, src, to, res, cc))
                        return true;
        }
        return false;
}

/*
 * The copy calls of TLS's do_ssl3_write: among the functions ssl_write_bytes (wb) calls with its
 * own s (OpenSSL 1.1.1 passes type on from a register the analysis does not prove), the one
 * that calls a copy routine; the probes on those calls in ret.
 */
static bool place_write(Elf *elf, const struct elf_source *src, uint64_t wb,
                        const struct sslcopy_result *res, struct sslcopy_probe *ret, size_t max,
                        size_t *ret_n, uint64_t *ret_fn, const char **why)
{
        _cleanup_free_ struct place_call *calls = NULL, *inner = NULL;
        _cleanup_free_ struct copier_cache *cc = calloc(1, sizeof(*cc));
        _cleanup_free_ uint8_t *code = NULL;
        uint64_t cand[WRITE_CANDIDATES_MAX], found_fn = 0;
        size_t size, n = 0, n_cand = 0, n_sites = 0;

        calls = calloc(WRITE_CALLS_MAX, sizeof(*calls));
        inner = calloc(WRITE_CALLS_MAX, sizeof(*inner));
        code = function_code(elf, src, wb, &size);
        if (!calls || !inner || !cc || !code) {
                *why = "ssl_write_bytes cannot be read";
                return false;
        }
        if (place_calls(code, size, wb, EM_X86_64, calls, WRITE_CALLS_MAX, &n, why) < 0)
                return false;
        for (size_t i = 0; i < n && i < WRITE_CALLS_MAX; i++) {
                bool known = false;

                if (calls[i].passes[0] != 0 || calls[i].passes_narrow[0] ||
                    calls[i].target == wb || !is_function_start(elf, calls[i].target))
                        continue;
                for (size_t k = 0; k < n_cand; k++)
                        known |= cand[k] == calls[i].target;
                if (known)
                        continue;
                if (n_cand == ELEMENTSOF(cand)) {
                        *why = "ssl_write_bytes passes s on to too many functions";
                        return false;
                }
                cand[n_cand++] = calls[i].target;
        }
        for (size_t c = 0; c < n_cand; c++) {
                _cleanup_free_ uint8_t *cc_code = function_code(elf, src, cand[c], &size);
                size_t m = 0, sites = 0;

                /* The analysis only for a function whose code calls a copy routine at all. */
                if (!cc_code || !calls_a_copier(elf, src, cc_code, size, cand[c], res, cc) ||
                    place_calls(cc_code, size, cand[c], EM_X86_64, inner, WRITE_CALLS_MAX, &m,
                                why) < 0)
                        continue; /* not a function we can follow: not the one */
                if (m > WRITE_CALLS_MAX) {
                        *why = "too many calls in a function ssl_write_bytes calls";
                        return false;
                }
                for (size_t i = 0; i < m; i++) {
                        if (inner[i].target == cand[c] ||
                            !is_copier(elf, src, inner[i].target, res, cc))
                                continue;
                        if (found_fn && found_fn != cand[c]) {
                                *why = "more than one function ssl_write_bytes calls copies";
                                return false;
                        }
                        found_fn = cand[c];
                        if (++sites > max) {
                                *why = "too many copy calls in do_ssl3_write";
                                return false;
                        }
                        /* s whole; type an int (its low 32 bits suffice). */
                        if (!inner[i].emulated || inner[i].arg[0].loc.kind == TLSSNIFF_LOC_NONE ||
                            inner[i].arg[0].narrow ||
                            inner[i].arg[1].loc.kind == TLSSNIFF_LOC_NONE) {
                                *why = !inner[i].emulated
                                               ? "a copy call in do_ssl3_write is not emulated"
                                               : "s or type is not provably anywhere at a copy "
                                                 "call in do_ssl3_write";
                                return false;
                        }
                        copy_probe(&ret[sites - 1], inner[i].call_addr, inner[i].arg, false);
                }
                n_sites = found_fn == cand[c] ? sites : n_sites;
        }
        if (!found_fn) {
                *why = "no function ssl_write_bytes passes s to copies";
                return false;
        }
        *ret_fn = found_fn;
        *ret_n = n_sites;
        return true;
}

bool sslcopy_find_write(Elf *elf, const struct elf_source *src, struct sslcopy_result *ret)
{
        static const char *const family[2] = { "TLS_method", "DTLS_method" };
        size_t used = 0;

        ret->n_write = ret->n_write_whole = 0;
        ret->write_reason[0] = '\0';
        if (!ret->method_fn[0]) {
                snprintf(ret->write_reason, sizeof(ret->write_reason), "%s",
                         ret->reason[0] ? ret->reason : "no TLS_method");
                return false;
        }
        for (size_t m = 0; m < ELEMENTSOF(family); m++) {
                uint64_t table, wb, fn = 0;
                const char *why = NULL;
                size_t n = 0;

                if (!ret->method_fn[m])
                        continue;
                if (!method_table(elf, src, ret->method_fn[m], &table) ||
                    !table_function(elf, src, table, METHOD_WRITE_BYTES, &wb)) {
                        why = "the method table holds no function of this file for "
                              "ssl_write_bytes";
                } else if (m > 0) {
                        /* DTLS: its write_bytes whole (application data only, rare). */
                        ret->write_whole[ret->n_write_whole++] = wb;
                        if (used < sizeof(ret->write_reason))
                                used += (size_t)snprintf(ret->write_reason + used,
                                                         sizeof(ret->write_reason) - used,
                                        ", %s's write_bytes (0x%llx) at entry and return",
                                        family[m], (unsigned long long)wb);
                        continue;
                } else if (place_write(elf, src, wb, ret, ret->write, ELEMENTSOF(ret->write), &n,
                                       &fn, &why)) {
                        ret->n_write = (unsigned)n;
                        for (size_t i = 0; i < n && used < sizeof(ret->write_reason); i++)
                                used += (size_t)snprintf(
                                        ret->write_reason + used, sizeof(ret->write_reason) - used,
                                        "%scopy at 0x%llx in %s's record writer (0x%llx, called by "
                                        "write_bytes 0x%llx)", i ? ", " : "",
                                        (unsigned long long)ret->write[i].addr, family[m],
                                        (unsigned long long)fn, (unsigned long long)wb);
                        continue;
                }
                ret->n_write = ret->n_write_whole = 0;
                snprintf(ret->write_reason, sizeof(ret->write_reason), "%s: %s", family[m],
                         why ? why : "not placed");
                return false;
        }
        return ret->n_write > 0;
}
