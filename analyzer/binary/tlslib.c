/* OpenSSL symbol lookup with libelf and the plain entry/return probe plan; see tlslib.h. */
#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "elfutil.h"
#include "macro.h"
#include "place.h"
#include "sslcopy.h"
#include "tlslib.h"

static const struct {
        const char *name;
        uint8_t func;
} wanted[] = {
        { "SSL_read", TLSSNIFF_FUNC_SSL_READ },
        { "SSL_write", TLSSNIFF_FUNC_SSL_WRITE },
        { "SSL_read_ex", TLSSNIFF_FUNC_SSL_READ_EX },
        { "SSL_write_ex", TLSSNIFF_FUNC_SSL_WRITE_EX },
        /* Not probed for their bytes: where a TLS object ends (plan_copy) */
        { "SSL_free", TLSSNIFF_FUNC_SSL_FREE },
        { "SSL_clear", TLSSNIFF_FUNC_SSL_FREE },
};
#define FUNCS_N 4      /* wanted[0..4) are probed for their bytes */
#define FORGET_FIRST 4 /* wanted[4], wanted[5] */

static void soname(Elf *elf, char *out, size_t size)
{
        Elf_Scn *scn = NULL;

        while ((scn = elf_nextscn(elf, scn))) {
                GElf_Shdr sh;
                Elf_Data *d;

                if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNAMIC || sh.sh_entsize == 0)
                        continue;
                d = elf_getdata(scn, NULL);
                if (!d)
                        continue;
                for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
                        GElf_Dyn dyn;
                        const char *s;

                        if (!gelf_getdyn(d, (int)i, &dyn))
                                break;
                        if (dyn.d_tag != DT_SONAME)
                                continue;
                        s = elf_strptr(elf, sh.sh_link, dyn.d_un.d_val);
                        if (s)
                                snprintf(out, size, "%s", s);
                        return;
                }
        }
}

struct callee_reader {
        Elf *elf;
        const struct elf_source *src;
};

/* place_read_fn: code at a virtual address, through the executable segment that holds it. */
static ssize_t read_vaddr(void *userdata, uint64_t vaddr, void *buf, size_t size)
{
        const struct callee_reader *cr = userdata;
        uint64_t off;

        if (elf_file_offset(cr->elf, vaddr, 0, true, &off) < 0)
                return -ENOENT;
        return elf_source_read(cr->src, buf, size, off);
}

static bool has_probe_at(const struct msg_plan *plan, uint64_t off, uint8_t kind)
{
        for (uint32_t i = 0; i < plan->n_probes; i++)
                if (plan->probes[i].offset == off && plan->probes[i].kind == kind)
                        return true;
        return false;
}

/* Places the probes of one function and appends them; false when they cannot be placed. */
static bool plan_function(Elf *elf, const struct elf_source *src, uint16_t machine,
                          enum place_mode mode, size_t w, uint64_t vaddr, uint64_t size,
                          struct msg_plan *plan, struct tlslib_details *details, char *summary,
                          size_t summary_size)
{
        uint8_t code[16384];
        struct callee_reader cr = { .elf = elf, .src = src };
        struct place_result pr;
        uint8_t func = wanted[w].func;
        uint64_t off, entry_off, ret_off;
        size_t len = 0, used = strlen(summary);
        ssize_t n;

        if (elf_file_offset(elf, vaddr, 0, true, &off) < 0)
                return false;
        if (size > sizeof(code))
                size = sizeof(code);
        n = size > 0 ? elf_source_read(src, code, size, off) : 0;
        if (n > 0)
                len = (size_t)n;
        if (place_function(code, len, vaddr, machine, func, mode, read_vaddr, &cr, &pr) < 0)
                return false;
        if (elf_file_offset(elf, pr.entry_addr, 0, true, &entry_off) < 0 ||
            elf_file_offset(elf, pr.return_addr, 0, true, &ret_off) < 0)
                return false;
        if (pr.strategy == PLACE_CALLEE) {
                /* The internal function has the _ex form; SSL_read and SSL_read_ex share it. */
                func = func == TLSSNIFF_FUNC_SSL_READ || func == TLSSNIFF_FUNC_SSL_READ_EX
                               ? TLSSNIFF_FUNC_SSL_READ_EX
                               : TLSSNIFF_FUNC_SSL_WRITE_EX;
        }
        if (!has_probe_at(plan, entry_off, TLSSNIFF_PROBE_ENTRY)) {
                msg_plan_add_probe(plan, TLSSNIFF_PROBE_ENTRY, func, entry_off, pr.entry_loc);
                msg_plan_add_probe(plan,
                          pr.return_uretprobe ? TLSSNIFF_PROBE_RETURN : TLSSNIFF_PROBE_RETURN_AT,
                          func, ret_off, pr.return_loc);
        }
        if (details)
                snprintf(details->function[w], sizeof(details->function[w]), "%s: %s",
                         wanted[w].name, pr.reason);
        if (used < summary_size)
                snprintf(summary + used, summary_size - used, "%s%s %s", used ? ", " : "",
                         wanted[w].name, place_strategy_name(pr.strategy));
        return true;
}

/* The OpenSSL functions found so far, by index in wanted[]. */
struct wanted_found {
        uint64_t addr[ELEMENTSOF(wanted)], size[ELEMENTSOF(wanted)];
        int n;
};

static bool func_writes(uint8_t func)
{
        return func == TLSSNIFF_FUNC_SSL_WRITE || func == TLSSNIFF_FUNC_SSL_WRITE_EX;
}

/*
 * Reads on OpenSSL's copy to the caller (sslcopy.h): its probes, and true, when every method
 * family the file has got one. The decision goes into the details either way.
 */
/*
 * The forget probe of SSL_free or SSL_clear (vaddr, size from its symbol): on an instruction
 * every call runs, emulated where one is found. false when the function cannot be read.
 */
static bool plan_forget(Elf *elf, const struct elf_source *src, uint64_t vaddr, uint64_t size,
                        uint64_t *ret_off, struct tlssniff_loc loc[_TLSSNIFF_ARG_MAX])
{
        uint8_t code[256];
        uint64_t off, at;
        ssize_t n;

        if (elf_file_offset(elf, vaddr, 0, true, &off) < 0)
                return false;
        if (size == 0 || size > sizeof(code))
                size = sizeof(code);
        n = elf_source_read(src, code, size, off);
        if (n <= 0)
                return false;
        memset(loc, 0, sizeof(struct tlssniff_loc) * _TLSSNIFF_ARG_MAX);
        /* Not emulated (or not analysable): the entry, single-stepped, once per TLS object. */
        (void)place_every_call(code, (size_t)n, vaddr, EM_X86_64, 0, &at, &loc[TLSSNIFF_ARG_SSL]);
        return elf_file_offset(elf, at, 0, true, ret_off) == 0;
}

/* The file offset of code at va for a probe; false, with the reason in cr, when it has none. */
static bool code_offset(Elf *elf, uint64_t va, uint64_t *ret, struct sslcopy_result *cr,
                        const char *what)
{
        if (elf_file_offset(elf, va, 0, true, ret) == 0)
                return true;
        snprintf(cr->reason, sizeof(cr->reason), "%s outside the code", what);
        return false;
}

/* Which register (DWARF numbering) holds a value at a function's entry. */
struct arg_reg {
        uint8_t arg, reg;
};

/* Entry and return probes at the start of a whole function, the values in entry (the arguments
 * in regs, n of them, set there) and the result in rax. */
static void plan_whole(struct msg_plan *plan, uint8_t func, uint64_t off,
                       struct tlssniff_loc entry[_TLSSNIFF_ARG_MAX], const struct arg_reg *regs,
                       size_t n)
{
        struct tlssniff_loc ret[_TLSSNIFF_ARG_MAX] = {};

        for (size_t k = 0; k < n; k++)
                entry[regs[k].arg] = (struct tlssniff_loc){ .kind = TLSSNIFF_LOC_REG,
                                                            .reg = regs[k].reg };

        ret[TLSSNIFF_ARG_RESULT] = (struct tlssniff_loc){ .kind = TLSSNIFF_LOC_REG };
        msg_plan_add_probe(plan, TLSSNIFF_PROBE_ENTRY, func, off, entry);
        msg_plan_add_probe(plan, TLSSNIFF_PROBE_RETURN, func, off, ret);
}

/*
 * Writes on the copy into the record (sslcopy_find_write), once reads are on theirs (the
 * handshake probes give both their sockets): true when placed, the decision in the details.
 */
static bool plan_copy_writes(Elf *elf, const struct elf_source *src, struct sslcopy_result *cr,
                             struct msg_plan *plan, struct tlslib_details *details)
{
        uint64_t off[ELEMENTSOF(cr->write)], whole_off[ELEMENTSOF(cr->write_whole)];
        bool ok = sslcopy_find_write(elf, src, cr);

        for (unsigned i = 0; ok && i < cr->n_write; i++)
                ok = code_offset(elf, cr->write[i].addr, &off[i], cr, "copy call");
        for (unsigned w = 0; ok && w < cr->n_write_whole; w++)
                ok = code_offset(elf, cr->write_whole[w], &whole_off[w], cr, "write_bytes");
        if (details)
                snprintf(details->function[FUNCS_N + 1], sizeof(details->function[FUNCS_N + 1]),
                         "writes: %s%s", ok ? "on the copy: " : "not on the copy: ",
                         ok ? cr->write_reason : cr->write_reason[0] ? cr->write_reason
                                                                    : cr->reason);
        if (!ok)
                return false;
        for (unsigned i = 0; i < cr->n_write; i++)
                msg_plan_add_probe(plan, TLSSNIFF_PROBE_COPY, TLSSNIFF_FUNC_SSL_WRITE_BYTES,
                                   off[i], cr->write[i].loc);
        for (unsigned w = 0; w < cr->n_write_whole; w++) {
                struct tlssniff_loc entry[_TLSSNIFF_ARG_MAX] = {};
                static const struct arg_reg regs[] = {
                        /* dtls1_write_app_data_bytes(s, type, buf, len, written) */
                        { TLSSNIFF_ARG_SSL, 5 }, { TLSSNIFF_ARG_RTYPE, 4 },
                        { TLSSNIFF_ARG_BUF, 1 }, { TLSSNIFF_ARG_NUM, 2 },
                        { TLSSNIFF_ARG_OUTLEN, 8 },
                };

                plan_whole(plan, TLSSNIFF_FUNC_SSL_WRITE_BYTES, whole_off[w], entry, regs,
                           ELEMENTSOF(regs));
        }
        return true;
}

static bool plan_copy(Elf *elf, const struct elf_source *src, const struct wanted_found *found,
                      struct msg_plan *plan, struct tlslib_details *details, char *summary,
                      size_t summary_size, bool *ret_copy_writes)
{
        struct sslcopy_result cr;
        uint64_t off[ELEMENTSOF(cr.probe)], forget_off[2], handshake_off[ELEMENTSOF(cr.handshake)];
        uint64_t whole_off[ELEMENTSOF(cr.whole)];
        struct tlssniff_loc forget_loc[2][_TLSSNIFF_ARG_MAX];
        size_t used = strlen(summary);
        bool ok = sslcopy_find(elf, src, &cr);

        for (unsigned i = 0; ok && i < cr.n; i++)
                ok = code_offset(elf, cr.probe[i].addr, &off[i], &cr, "copy call");
        for (unsigned w = 0; ok && w < cr.n_whole; w++)
                ok = code_offset(elf, cr.whole[w], &whole_off[w], &cr, "read_bytes");
        for (unsigned h = 0; ok && h < cr.n_handshake; h++)
                ok = code_offset(elf, cr.handshake[h], &handshake_off[h], &cr, "handshake");
        /* A TLS object's end (SSL_free, SSL_clear for reuse) must be seen: see tls_forget. */
        for (unsigned f = 0; ok && f < 2; f++)
                if (!found->addr[FORGET_FIRST + f] ||
                    !plan_forget(elf, src, found->addr[FORGET_FIRST + f],
                                 found->size[FORGET_FIRST + f], &forget_off[f], forget_loc[f])) {
                        ok = false;
                        snprintf(cr.reason, sizeof(cr.reason), "%s not found",
                                 wanted[FORGET_FIRST + f].name);
                }
        if (details)
                snprintf(details->function[FUNCS_N], sizeof(details->function[FUNCS_N]),
                         "reads: %s%s",
                         ok ? "on the copy: " : "not on the copy: ", cr.reason);
        if (!ok)
                return false;
        for (unsigned i = 0; i < cr.n; i++)
                msg_plan_add_probe(plan, TLSSNIFF_PROBE_COPY, TLSSNIFF_FUNC_SSL_READ_BYTES, off[i],
                                   cr.probe[i].loc);
        for (unsigned f = 0; f < 2; f++)
                msg_plan_add_probe(plan, TLSSNIFF_PROBE_FORGET, TLSSNIFF_FUNC_SSL_FREE,
                                   forget_off[f], forget_loc[f]);
        /* A read_bytes function not placed on its copy: entry and uretprobe at its start. */
        for (unsigned w = 0; w < cr.n_whole; w++) {
                /* (s, type, recvd_type, buf, len, peek, readbytes on the stack) */
                struct tlssniff_loc entry[_TLSSNIFF_ARG_MAX] = {
                        [TLSSNIFF_ARG_OUTLEN] = { .kind = TLSSNIFF_LOC_STACK, .off = 8 },
                };
                static const struct arg_reg regs[] = {
                        { TLSSNIFF_ARG_SSL, 5 },   { TLSSNIFF_ARG_RTYPE, 4 },
                        { TLSSNIFF_ARG_BUF, 2 },   { TLSSNIFF_ARG_NUM, 8 },
                        { TLSSNIFF_ARG_PEEK, 9 },
                };

                plan_whole(plan, TLSSNIFF_FUNC_SSL_READ_BYTES, whole_off[w], entry, regs,
                           ELEMENTSOF(regs));
        }
        /* The handshake's frame: entry (the TLS object in rdi) and uretprobe at its start. */
        for (unsigned h = 0; h < cr.n_handshake; h++) {
                struct tlssniff_loc entry[_TLSSNIFF_ARG_MAX] = {};
                static const struct arg_reg regs[] = { { TLSSNIFF_ARG_SSL, 5 } };

                plan_whole(plan, TLSSNIFF_FUNC_SSL_HANDSHAKE, handshake_off[h], entry, regs,
                           ELEMENTSOF(regs));
        }
        *ret_copy_writes = plan_copy_writes(elf, src, &cr, plan, details);
        if (used < summary_size)
                snprintf(summary + used, summary_size - used, "%sreads copy%s", used ? ", " : "",
                         *ret_copy_writes ? ", writes copy" : "");
        return true;
}

static int note_wanted(const char *name, const GElf_Sym *sym, void *userdata)
{
        struct wanted_found *f = userdata;

        if (strncmp(name, "SSL_", 4) != 0)
                return 0;
        for (size_t w = 0; w < ELEMENTSOF(wanted); w++) {
                if (f->addr[w] || strcmp(name, wanted[w].name) != 0)
                        continue;
                f->addr[w] = sym->st_value;
                f->size[w] = sym->st_size;
                f->n += w < FUNCS_N;
        }
        return 0;
}

static int plan_elf(Elf *elf, const struct elf_source *src, enum place_mode mode,
                    struct msg_plan *plan, struct tlslib_details *details)
{
        struct wanted_found found = {};
        char summary[MSG_TEXT_MAX] = "";
        bool copy_reads = false, copy_writes = false;
        GElf_Ehdr eh;

        plan->n_probes = 0;
        plan->library[0] = plan->reason[0] = '\0';
        if (details)
                memset(details, 0, sizeof(*details));
        if (elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh)) {
                snprintf(plan->reason, sizeof(plan->reason), "not an ELF file");
                return 0;
        }
        if (eh.e_machine != EM_X86_64 && eh.e_machine != EM_AARCH64) {
                snprintf(plan->reason, sizeof(plan->reason), "unsupported machine %u",
                         eh.e_machine);
                return 0;
        }

        /* .dynsym first (what a shared libssl exports), .symtab for unstripped executables. */
        for (int pass = 0; pass < 2 && !(found.addr[0] && found.addr[1]); pass++)
                (void)elf_func_symbols(elf, pass == 0 ? SHT_DYNSYM : SHT_SYMTAB, note_wanted,
                                       &found);
        if (!found.addr[0] || !found.addr[1]) {
                snprintf(plan->reason, sizeof(plan->reason), "no SSL_read/SSL_write symbols");
                return 0;
        }

        soname(elf, plan->library, sizeof(plan->library));
        if (!plan->library[0])
                snprintf(plan->library, sizeof(plan->library), "OpenSSL (static)");
        if (mode == PLACE_MODE_AUTO)
                copy_reads = plan_copy(elf, src, &found, plan, details, summary,
                                       sizeof(summary), &copy_writes);
        for (size_t w = 0; w < FUNCS_N; w++) {
                if (!found.addr[w])
                        continue;
                if (func_writes(wanted[w].func) ? copy_writes : copy_reads) {
                        if (details)
                                snprintf(details->function[w], sizeof(details->function[w]),
                                         "%s: no probe of its own (%s on the copy)",
                                         wanted[w].name,
                                         func_writes(wanted[w].func) ? "writes" : "reads");
                        continue;
                }
                (void)plan_function(elf, src, eh.e_machine, mode, w, found.addr[w],
                                    found.size[w], plan, details, summary, sizeof(summary));
        }
        if (plan->n_probes == 0) {
                snprintf(plan->reason, sizeof(plan->reason), "symbols outside executable code");
                return 0;
        }
        snprintf(plan->reason, sizeof(plan->reason), "%d functions: %s", found.n, summary);
        return 0;
}

int tlslib_plan(int fd, enum place_mode mode, struct msg_plan *plan,
                struct tlslib_details *details)
{
        struct elf_source src = { .fd = fd };
        Elf *elf;
        int r;

        elf_version(EV_CURRENT);
        /* Not ELF_C_READ_MMAP: a file truncated while mapped would SIGBUS us. */
        elf = elf_begin(fd, ELF_C_READ, NULL);
        if (!elf) {
                plan->n_probes = 0;
                snprintf(plan->reason, sizeof(plan->reason), "not an ELF file: %s",
                         elf_errmsg(-1));
                return 0;
        }
        r = plan_elf(elf, &src, mode, plan, details);
        elf_end(elf);
        return r;
}

int tlslib_plan_mem(const void *data, size_t size, enum place_mode mode, struct msg_plan *plan,
                    struct tlslib_details *details)
{
        struct elf_source src = { .fd = -1, .data = data, .size = size };
        Elf *elf;
        int r;

        elf_version(EV_CURRENT);
        elf = elf_memory((char *)data, size);
        if (!elf) {
                plan->n_probes = 0;
                snprintf(plan->reason, sizeof(plan->reason), "not an ELF file");
                return 0;
        }
        r = plan_elf(elf, &src, mode, plan, details);
        elf_end(elf);
        return r;
}
