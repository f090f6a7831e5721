/* OpenSSL symbol lookup with libelf and the plain entry/return probe plan; see tlslib.h. */
#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <string.h>

#include "regs.h"
#include "macro.h"
#include "tlslib.h"

static const struct {
        const char *name;
        uint8_t func;
} wanted[] = {
        { "SSL_read", TLSSNIFF_FUNC_SSL_READ },
        { "SSL_write", TLSSNIFF_FUNC_SSL_WRITE },
        { "SSL_read_ex", TLSSNIFF_FUNC_SSL_READ_EX },
        { "SSL_write_ex", TLSSNIFF_FUNC_SSL_WRITE_EX },
};

struct abi {
        uint8_t args[4]; /* ssl, buf, num, outlen */
        uint8_t result;
};

static const struct abi abi_x86_64 = { { 5 /* rdi */, 4 /* rsi */, 1 /* rdx */, 2 /* rcx */ }, 0 };
static const struct abi abi_arm64 = { { 0, 1, 2, 3 }, 0 };

/* File offset of a virtual address through the executable PT_LOAD segment holding it. */
static int vaddr_to_offset(Elf *elf, uint64_t vaddr, uint64_t *ret)
{
        size_t n;

        if (elf_getphdrnum(elf, &n) != 0)
                return -ENOEXEC;
        for (size_t i = 0; i < n; i++) {
                GElf_Phdr ph;

                if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD || !(ph.p_flags & PF_X))
                        continue;
                if (vaddr >= ph.p_vaddr && vaddr - ph.p_vaddr < ph.p_filesz) {
                        *ret = vaddr - ph.p_vaddr + ph.p_offset;
                        return 0;
                }
        }
        return -ENOENT;
}

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

static int plan_elf(Elf *elf, struct msg_plan *plan)
{
        uint64_t found[ELEMENTSOF(wanted)] = {};
        const struct abi *abi;
        Elf_Scn *scn = NULL;
        GElf_Ehdr eh;
        int n_found = 0;

        plan->n_probes = 0;
        plan->library[0] = plan->reason[0] = '\0';
        if (elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh)) {
                snprintf(plan->reason, sizeof(plan->reason), "not an ELF file");
                return 0;
        }
        if (eh.e_machine == EM_X86_64)
                abi = &abi_x86_64;
        else if (eh.e_machine == EM_AARCH64)
                abi = &abi_arm64;
        else {
                snprintf(plan->reason, sizeof(plan->reason), "unsupported machine %u",
                         eh.e_machine);
                return 0;
        }

        /* .dynsym first (what a shared libssl exports), .symtab for unstripped executables. */
        for (int pass = 0; pass < 2; pass++) {
                Elf32_Word type = pass == 0 ? SHT_DYNSYM : SHT_SYMTAB;

                scn = NULL;
                while ((scn = elf_nextscn(elf, scn))) {
                        GElf_Shdr sh;
                        Elf_Data *d;
                        size_t count;

                        if (!gelf_getshdr(scn, &sh) || sh.sh_type != type || sh.sh_entsize == 0)
                                continue;
                        d = elf_getdata(scn, NULL);
                        if (!d)
                                continue;
                        count = sh.sh_size / sh.sh_entsize;
                        for (size_t i = 0; i < count; i++) {
                                GElf_Sym sym;
                                const char *name;

                                if (!gelf_getsym(d, (int)i, &sym))
                                        break;
                                if (GELF_ST_TYPE(sym.st_info) != STT_FUNC ||
                                    sym.st_shndx == SHN_UNDEF || sym.st_value == 0)
                                        continue;
                                name = elf_strptr(elf, sh.sh_link, sym.st_name);
                                if (!name || strncmp(name, "SSL_", 4) != 0)
                                        continue;
                                for (size_t w = 0; w < ELEMENTSOF(wanted); w++) {
                                        if (found[w] || strcmp(name, wanted[w].name) != 0)
                                                continue;
                                        found[w] = sym.st_value;
                                        n_found++;
                                }
                        }
                }
                if (found[0] && found[1])
                        break;
        }
        if (!found[0] || !found[1]) {
                snprintf(plan->reason, sizeof(plan->reason), "no SSL_read/SSL_write symbols");
                return 0;
        }

        soname(elf, plan->library, sizeof(plan->library));
        if (!plan->library[0])
                snprintf(plan->library, sizeof(plan->library), "OpenSSL (static)");
        for (size_t w = 0; w < ELEMENTSOF(wanted); w++) {
                uint64_t off;

                if (!found[w])
                        continue;
                if (vaddr_to_offset(elf, found[w], &off) < 0)
                        continue;
                for (int k = 0; k < 2; k++) {
                        struct msg_probe *p = &plan->probes[plan->n_probes++];

                        memset(p, 0, sizeof(*p));
                        p->kind = k == 0 ? TLSSNIFF_PROBE_ENTRY : TLSSNIFF_PROBE_RETURN;
                        p->func = wanted[w].func;
                        p->offset = off;
                        if (k == 0) {
                                int nargs = (p->func == TLSSNIFF_FUNC_SSL_READ_EX ||
                                             p->func == TLSSNIFF_FUNC_SSL_WRITE_EX) ? 4 : 3;

                                for (int a = 0; a < nargs; a++) {
                                        p->loc[a].kind = TLSSNIFF_LOC_REG;
                                        p->loc[a].reg = abi->args[a];
                                }
                        } else {
                                p->loc[TLSSNIFF_ARG_RESULT].kind = TLSSNIFF_LOC_REG;
                                p->loc[TLSSNIFF_ARG_RESULT].reg = abi->result;
                        }
                }
        }
        if (plan->n_probes == 0) {
                snprintf(plan->reason, sizeof(plan->reason), "symbols outside executable code");
                return 0;
        }
        snprintf(plan->reason, sizeof(plan->reason),
                 "entry and return probes on %d functions (fallback placement)", n_found);
        return 0;
}

int tlslib_plan(int fd, struct msg_plan *plan)
{
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
        r = plan_elf(elf, plan);
        elf_end(elf);
        return r;
}

int tlslib_plan_mem(const void *data, size_t size, struct msg_plan *plan)
{
        Elf *elf;
        int r;

        elf_version(EV_CURRENT);
        elf = elf_memory((char *)data, size);
        if (!elf) {
                plan->n_probes = 0;
                snprintf(plan->reason, sizeof(plan->reason), "not an ELF file");
                return 0;
        }
        r = plan_elf(elf, plan);
        elf_end(elf);
        return r;
}
