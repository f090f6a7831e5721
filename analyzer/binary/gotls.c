/* Go crypto/tls analysis and probe plan; see gotls.h. */
#include <capstone/capstone.h>
#include <errno.h>
#include <gelf.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../bpf/regs.h"
#include "elfutil.h"
#include "gosym.h"
#include "gotls.h"
#include "macro.h"

#define FUNC_CODE_MAX (256u << 10) /* (*Conn).Read and .Write are a few hundred bytes */

static const char *const func_names[2] = {
        "crypto/tls.(*Conn).Read",
        "crypto/tls.(*Conn).Write",
};

/* The file being analysed: its ELF handle and where its bytes come from. */
struct source {
        Elf *elf;
        struct elf_source bytes;
};

/* Exactly n bytes at file offset off, or -EBADMSG when the file is shorter. */
static int source_read(const struct source *s, uint64_t off, void *buf, size_t n)
{
        ssize_t k = elf_source_read(&s->bytes, buf, n, off);

        if (k < 0)
                return (int)k;
        return (size_t)k == n ? 0 : -EBADMSG;
}

static Elf_Scn *section_by_name(Elf *elf, const char *name, GElf_Shdr *ret_sh)
{
        Elf_Scn *scn = NULL;
        size_t shstrndx;

        if (elf_getshdrstrndx(elf, &shstrndx) != 0)
                return NULL;
        while ((scn = elf_nextscn(elf, scn))) {
                const char *n;

                if (!gelf_getshdr(scn, ret_sh))
                        continue;
                n = elf_strptr(elf, shstrndx, ret_sh->sh_name);
                if (n && strcmp(n, name) == 0)
                        return scn;
        }
        return NULL;
}

/* The bytes of a section (NOBITS and empty sections have none). */
static int section_data(Elf *elf, const char *name, const uint8_t **ret, size_t *ret_size)
{
        GElf_Shdr sh;
        Elf_Scn *scn = section_by_name(elf, name, &sh);
        Elf_Data *d;

        if (!scn)
                return -ENOENT;
        if (sh.sh_type == SHT_NOBITS)
                return -ENOENT;
        d = elf_rawdata(scn, NULL);
        if (!d || !d->d_buf || d->d_size == 0)
                return -ENOENT;
        *ret = d->d_buf;
        *ret_size = d->d_size;
        return 0;
}

static int read_va(void *userdata, uint64_t va, void *buf, size_t n)
{
        const struct source *s = userdata;
        uint64_t off;
        int r = elf_file_offset(s->elf, va, n, false, &off);

        return r < 0 ? r : source_read(s, off, buf, n);
}

static void hex(const uint8_t *p, size_t n, char *out, size_t size)
{
        size_t o = 0;

        for (size_t i = 0; i < n && o + 3 <= size; i++, o += 2)
                snprintf(out + o, size - o, "%02x", p[i]);
        if (size > 0)
                out[o < size ? o : size - 1] = '\0';
}

int gotls_build_id(Elf *elf, char *ret, size_t size)
{
        static const struct {
                const char *section, *owner;
                uint32_t type;
                bool text;
        } notes[] = {
                { ".note.gnu.build-id", "GNU", NT_GNU_BUILD_ID, false },
                { ".note.go.buildid", "Go", 4, true },
        };

        for (size_t i = 0; i < ELEMENTSOF(notes); i++) {
                const uint8_t *d;
                size_t n, pos = 0;

                if (section_data(elf, notes[i].section, &d, &n) < 0)
                        continue;
                /* One note: namesz, descsz, type, name (4-aligned), desc. */
                if (n < 12)
                        continue;
                uint32_t namesz, descsz, type;
                memcpy(&namesz, d, 4);
                memcpy(&descsz, d + 4, 4);
                memcpy(&type, d + 8, 4);
                pos = 12 + (((size_t)namesz + 3) & ~(size_t)3);
                /* Go writes its owner as "Go\0\0" (namesz 4), GNU as "GNU\0". */
                if (type != notes[i].type || namesz < strlen(notes[i].owner) + 1 || pos > n ||
                    memcmp(d + 12, notes[i].owner, strlen(notes[i].owner) + 1) != 0 ||
                    descsz > n - pos || descsz == 0)
                        continue;
                if (notes[i].text) {
                        if (descsz >= size)
                                continue;
                        for (size_t k = 0; k < descsz; k++)
                                if (d[pos + k] < 0x21 || d[pos + k] > 0x7e)
                                        goto next;
                        memcpy(ret, d + pos, descsz);
                        ret[descsz] = '\0';
                } else {
                        if (descsz * 2 + 1 > size)
                                continue;
                        hex(d + pos, descsz, ret, size);
                }
                return 0;
        next:;
        }
        if (size > 0)
                ret[0] = '\0';
        return -ENOENT;
}

/*
 * Offsets for stripped binaries, by Go version (amd64 and arm64 agree: both 64-bit). Every
 * row was read from the DWARF of a binary built with that toolchain (tests/test_go.py checks
 * the rows it can build against DWARF); a version between rows takes the row below it.
 * Only runtime.g.goid moves: the chain tls.Conn.conn (0) -> TCPConn.conn.fd (0) -> netFD.pfd
 * (0) -> poll.FD.Sysfd (16, after the 16-byte fdMutex) has been stable since Go 1.12.
 */
static const struct {
        unsigned minor;
        uint32_t goid;
} goid_table[] = {
        { 12, 152 }, /* 1.15, 1.19 read from DWARF */
        { 23, 160 }, /* 1.23: g gained syscallbp before goid */
};

int gotls_table_offsets(unsigned major, unsigned minor, uint16_t machine,
                        struct tlssniff_go_info *ret)
{
        size_t row = SIZE_MAX;

        if (major != 1 || (machine != EM_X86_64 && machine != EM_AARCH64))
                return -ENOENT;
        for (size_t i = 0; i < ELEMENTSOF(goid_table); i++)
                if (minor >= goid_table[i].minor)
                        row = i;
        if (row == SIZE_MAX)
                return -ENOENT;
        ret->goid = goid_table[row].goid;
        ret->conn = 0;
        ret->conn_fd = 0;
        ret->pfd = 0;
        ret->sysfd = 16;
        return 0;
}

struct func_lookup {
        const char *name;
        uint64_t entry, size;
};

static int match_func(const char *name, const GElf_Sym *sym, void *userdata)
{
        struct func_lookup *l = userdata;

        if (sym->st_size == 0 || strcmp(name, l->name) != 0)
                return 0;
        l->entry = sym->st_value;
        l->size = sym->st_size;
        return 1;
}

/* Finds a function through .symtab (unstripped) or .gopclntab. */
static int find_function(Elf *elf, const char *name, const uint8_t *pcln, size_t pcln_size,
                         bool *ret_symtab, uint64_t *ret_entry, uint64_t *ret_size)
{
        struct func_lookup l = { .name = name };

        if (elf_func_symbols(elf, SHT_SYMTAB, match_func, &l) > 0) {
                *ret_symtab = true;
                *ret_entry = l.entry;
                *ret_size = l.size;
                return 0;
        }
        if (!pcln)
                return -ENOENT;
        *ret_symtab = false;
        return gopclntab_find(pcln, pcln_size, name, ret_entry, ret_size);
}

static bool all_padding(const uint8_t *p, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (p[i] != 0xcc && p[i] != 0x00)
                        return false;
        return true;
}

/*
 * An instruction of an amd64 Go prologue that leaves everything the entry probe reads as it
 * was at entry: the stack check's compare, the load of g from the thread pointer (ABI0) and
 * the address computation of a large frame's check. The arguments (ABIInternal: rax, rbx,
 * rcx; ABI0: on the stack), rsp and r14 (g) must not be written.
 */
static bool prologue_keeps_args(const cs_insn *insn, bool abi_internal)
{
        const cs_x86 *x = &insn->detail->x86;
        x86_reg dst;

        if (insn->id == X86_INS_CMP)
                return true;
        if ((insn->id != X86_INS_MOV && insn->id != X86_INS_LEA) || x->op_count != 2 ||
            x->operands[0].type != X86_OP_REG || x->operands[1].type != X86_OP_MEM)
                return false;
        if (insn->id == X86_INS_MOV && x->operands[1].mem.segment != X86_REG_FS)
                return false;
        dst = x->operands[0].reg;
        if (dst == X86_REG_RSP || dst == X86_REG_R14 || dst == X86_REG_ESP)
                return false;
        if (abi_internal && (dst == X86_REG_RAX || dst == X86_REG_RBX || dst == X86_REG_RCX ||
                             dst == X86_REG_EAX || dst == X86_REG_EBX || dst == X86_REG_ECX))
                return false;
        return true;
}

static bool is_jcc(unsigned id)
{
        return id == X86_INS_JAE || id == X86_INS_JA || id == X86_INS_JBE || id == X86_INS_JB ||
               id == X86_INS_JE || id == X86_INS_JGE || id == X86_INS_JG || id == X86_INS_JLE ||
               id == X86_INS_JL || id == X86_INS_JNE || id == X86_INS_JNO ||
               id == X86_INS_JNP || id == X86_INS_JNS || id == X86_INS_JO || id == X86_INS_JP ||
               id == X86_INS_JS;
}

/*
 * The copy placement of Read (amd64): one uprobe on its call to runtime.memmove, which is how
 * the inlined bytes.(*Reader).Read of `n, _ := c.input.Read(b)` copies the plaintext into the
 * caller's buffer. It is reached only when Read delivers bytes, the kernel emulates a call
 * rel32, and everything the record needs is there: memmove's source and count (ABIInternal rbx
 * and rcx; ABI0 8(sp) and 16(sp)) and c in its argument slot, sp + frame + 8, which the
 * prologue fills from rax (ABIInternal) or the caller filled (ABI0). What the sweep proves:
 * exactly one call to runtime.memmove, after the prologue's stack adjustment and outside any
 * epilogue; sp moved only by the prologue (push, sub) and epilogues (add, pop before a ret);
 * c's slot written by nothing but, for ABIInternal, one `mov [rsp+slot], rax` in the
 * straight-line prologue before rax is written. Read returns exactly the count that call
 * copies (crypto/tls/conn.go); memmove is skipped only when source and destination coincide,
 * which a caller's buffer and the connection's own input buffer never do.
 */
struct copy_proof {
        uint64_t memmove_va; /* 0: do not look */
        uint64_t delta;      /* bytes the prologue moved sp down */
        uint64_t call_va;
        unsigned calls;
        bool body, epilogue, spilled, rax_written, flow, bad;
};

static bool writes_reg(csh cs, const cs_insn *insn, x86_reg r64, x86_reg r32)
{
        cs_regs rd, wr;
        uint8_t nrd = 0, nwr = 0;

        if (cs_regs_access(cs, insn, rd, &nrd, wr, &nwr) != CS_ERR_OK)
                return true; /* unknown: assume the worst */
        for (uint8_t i = 0; i < nwr; i++)
                if (wr[i] == r64 || wr[i] == r32)
                        return true;
        return false;
}

static void copy_proof_step(struct copy_proof *cp, csh cs, const cs_insn *insn, bool abi_internal,
                            uint64_t stack_check_va)
{
        const cs_x86 *x = &insn->detail->x86;
        unsigned id = insn->id;
        bool imm0 = x->op_count == 1 && x->operands[0].type == X86_OP_IMM;

        if (!cp->memmove_va || cp->bad)
                return;
        /* The stack pointer. */
        if (id == X86_INS_PUSH && !cp->body) {
                cp->delta += 8;
        } else if (id == X86_INS_SUB && x->op_count == 2 && x->operands[0].type == X86_OP_REG &&
                   x->operands[0].reg == X86_REG_RSP && x->operands[1].type == X86_OP_IMM &&
                   !cp->body) {
                if (x->operands[1].imm <= 0 || x->operands[1].imm > 4096)
                        cp->bad = true;
                cp->delta += (uint64_t)x->operands[1].imm;
                cp->body = true;
        } else if ((id == X86_INS_ADD && x->op_count == 2 && x->operands[0].type == X86_OP_REG &&
                    x->operands[0].reg == X86_REG_RSP && x->operands[1].type == X86_OP_IMM) ||
                   id == X86_INS_POP) {
                if (!cp->body)
                        cp->bad = true;
                cp->epilogue = true;
        } else if (id == X86_INS_RET) {
                cp->epilogue = false;
        } else if (id != X86_INS_CALL && id != X86_INS_PUSH &&
                   writes_reg(cs, insn, X86_REG_RSP, X86_REG_ESP)) {
                cp->bad = true;
        }
        /* c's slot. */
        for (uint8_t i = 0; i < x->op_count; i++) {
                const cs_x86_op *op = &x->operands[i];

                if (op->type != X86_OP_MEM || op->mem.base != X86_REG_RSP ||
                    !(op->access & CS_AC_WRITE))
                        continue;
                if (!cp->body) {
                        cp->bad = true; /* Go writes no memory before its frame exists */
                        continue;
                }
                if (op->mem.index != X86_REG_INVALID || op->mem.segment != X86_REG_INVALID)
                        continue;
                if (op->mem.disp != (int64_t)cp->delta + 8)
                        continue;
                if (abi_internal && !cp->spilled && !cp->rax_written && !cp->flow &&
                    id == X86_INS_MOV && x->op_count == 2 && x->operands[1].type == X86_OP_REG &&
                    x->operands[1].reg == X86_REG_RAX)
                        cp->spilled = true;
                else
                        cp->bad = true;
        }
        if (abi_internal && !cp->spilled) {
                if (writes_reg(cs, insn, X86_REG_RAX, X86_REG_EAX))
                        cp->rax_written = true;
                if ((is_jcc(id) && insn->address != stack_check_va) || id == X86_INS_JMP ||
                    id == X86_INS_CALL)
                        cp->flow = true;
        }
        if (id == X86_INS_CALL && imm0 && (uint64_t)x->operands[0].imm == cp->memmove_va) {
                if (!cp->body || cp->epilogue || (abi_internal && !cp->spilled))
                        cp->bad = true;
                cp->calls++;
                cp->call_va = insn->address;
        }
}

/*
 * Every RET of a function, by a linear sweep (Go puts no data in code). On amd64 an
 * undecodable byte is only accepted in the trailing padding: anywhere else the sweep could be
 * out of step, and a probe in the middle of an instruction would corrupt the program. On
 * amd64 ABI0 the first instruction loads g from the thread pointer; its displacement is
 * returned in *ret_g_off.
 */
static int find_rets(const struct source *s, uint16_t machine, bool abi_internal,
                     uint64_t memmove_va, struct gotls_func *f, int16_t *ret_g_off, char *why,
                     size_t why_size)
{
        struct copy_proof cp = { .memmove_va = machine == EM_X86_64 ? memmove_va : 0 };
        uint64_t branch_va = 0;   /* the prologue's stack-check branch, if proven */
        bool prologue_ok = machine == EM_X86_64;
        bool jumped_into = false; /* some jump lands inside the prologue */
        unsigned n_insn = 0;
        _cleanup_free_ uint8_t *code = NULL;
        const uint8_t *p;
        size_t left;
        uint64_t addr;
        cs_insn *insn;
        csh cs;
        bool first = true;
        int r = 0;

        if (f->size == 0 || f->size > FUNC_CODE_MAX) {
                snprintf(why, why_size, "function size %llu out of range",
                         (unsigned long long)f->size);
                return -EBADMSG;
        }
        code = malloc(f->size);
        if (!code)
                return -ENOMEM;
        r = source_read(s, f->entry_offset, code, f->size);
        if (r < 0) {
                snprintf(why, why_size, "function code outside the file");
                return r;
        }
        if (cs_open(machine == EM_X86_64 ? CS_ARCH_X86 : CS_ARCH_ARM64,
                    machine == EM_X86_64 ? CS_MODE_64 : CS_MODE_ARM, &cs) != CS_ERR_OK)
                return -ENOMEM;
        cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
        insn = cs_malloc(cs);
        if (!insn) {
                cs_close(&cs);
                return -ENOMEM;
        }
        f->n_rets = 0;
        p = code;
        left = f->size;
        addr = f->entry;
        while (left > 0) {
                const uint8_t *at = p;

                if (!cs_disasm_iter(cs, &p, &left, &addr, insn)) {
                        size_t skip = machine == EM_X86_64 ? left : 4;

                        /* arm64: fixed 4-byte words, resynchronised by construction. */
                        if (machine == EM_X86_64 && !all_padding(at, left)) {
                                snprintf(why, why_size, "cannot disassemble at +0x%llx",
                                         (unsigned long long)(at - code));
                                r = -EBADMSG;
                                break;
                        }
                        if (skip > left)
                                skip = left;
                        p = at + skip;
                        left -= skip;
                        addr += skip;
                        first = false;
                        continue;
                }
                if (first && machine == EM_X86_64 && insn->id == X86_INS_MOV &&
                    insn->detail->x86.op_count == 2 &&
                    insn->detail->x86.operands[1].type == X86_OP_MEM &&
                    insn->detail->x86.operands[1].mem.segment == X86_REG_FS &&
                    insn->detail->x86.operands[1].mem.base == X86_REG_INVALID &&
                    insn->detail->x86.operands[1].mem.disp >= INT16_MIN &&
                    insn->detail->x86.operands[1].mem.disp < 0)
                        *ret_g_off = (int16_t)insn->detail->x86.operands[1].mem.disp;
                first = false;
                if (machine == EM_X86_64) {
                        const cs_x86 *x = &insn->detail->x86;

                        /* The first conditional jump, reached through harmless instructions. */
                        if (prologue_ok && !branch_va && n_insn < 4) {
                                if (is_jcc(insn->id))
                                        branch_va = insn->address;
                                else if (!prologue_keeps_args(insn, abi_internal))
                                        prologue_ok = false;
                        }
                        if ((is_jcc(insn->id) || insn->id == X86_INS_JMP) && x->op_count == 1 &&
                            x->operands[0].type == X86_OP_IMM &&
                            (uint64_t)x->operands[0].imm > f->entry &&
                            (!branch_va || (uint64_t)x->operands[0].imm <= branch_va))
                                jumped_into = true;
                }
                if (machine == EM_X86_64)
                        copy_proof_step(&cp, cs, insn, abi_internal, branch_va);
                n_insn++;
                if ((machine == EM_X86_64 && insn->id == X86_INS_RET) ||
                    (machine == EM_AARCH64 && insn->id == ARM64_INS_RET)) {
                        static const uint8_t arm64_ret[4] = { 0xc0, 0x03, 0x5f, 0xd6 };

                        /* Go returns with a plain ret (x30 on arm64); anything else is not Go. */
                        if (machine == EM_X86_64 ? insn->size != 1 || insn->bytes[0] != 0xc3
                                                 : memcmp(insn->bytes, arm64_ret, 4) != 0) {
                                snprintf(why, why_size, "unusual return instruction at +0x%llx",
                                         (unsigned long long)(insn->address - f->entry));
                                r = -EBADMSG;
                                break;
                        }
                        if (f->n_rets == GOTLS_RETS_MAX) {
                                snprintf(why, why_size, "more than %u return instructions",
                                         GOTLS_RETS_MAX);
                                r = -E2BIG;
                                break;
                        }
                        f->rets[f->n_rets++] = f->entry_offset + (insn->address - f->entry);
                }
        }
        cs_free(insn, 1);
        cs_close(&cs);
        /*
         * Entry probe on the stack-check branch when nothing before it changes what the probe
         * reads and nothing jumps into the prologue (morestack returns to the entry, and the
         * branch fires again like the entry would): the kernel emulates a jcc, it single-steps
         * the compare.
         */
        f->entry_probe = f->entry_offset;
        if (prologue_ok && branch_va && !jumped_into)
                f->entry_probe = f->entry_offset + (branch_va - f->entry);
        f->copy_probe = 0;
        f->copy_conn_off = 0;
        if (r == 0 && cp.memmove_va && !cp.bad && cp.calls == 1 &&
            (!abi_internal || cp.spilled) && cp.delta % 8 == 0 && cp.delta + 8 <= 4096) {
                f->copy_probe = f->entry_offset + (cp.call_va - f->entry);
                f->copy_conn_off = (int16_t)(cp.delta + 8);
        }
        if (r == 0 && f->n_rets == 0) {
                snprintf(why, why_size, "no return instruction");
                r = -ENOENT;
        }
        return r;
}

/* Section headers, or the contents of a section, past the end of the file. */
static bool file_truncated(const struct source *s, const GElf_Ehdr *eh)
{
        uint64_t size = s->bytes.size, end;
        Elf_Scn *scn = NULL;
        struct stat st;

        if (!s->bytes.data) {
                if (fstat(s->bytes.fd, &st) < 0)
                        return false;
                size = (uint64_t)st.st_size;
        }
        end = eh->e_shoff + (uint64_t)eh->e_shnum * eh->e_shentsize;
        if (eh->e_shoff > 0 && (end < eh->e_shoff || end > size))
                return true;
        while ((scn = elf_nextscn(s->elf, scn))) {
                GElf_Shdr sh;

                if (!gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS)
                        continue;
                if (sh.sh_offset + sh.sh_size < sh.sh_offset || sh.sh_offset + sh.sh_size > size)
                        return true;
        }
        return false;
}

/*
 * Where (*Conn).Read/Write(b []byte) (n int, err error) find c, b's data and length at entry,
 * and n at a RET. ABIInternal passes them in registers (amd64: rax, rbx, rcx -> rax; arm64:
 * x0, x1, x2 -> x0). ABI0 passes them on the stack above the return address (amd64) or the
 * saved-LR slot (arm64): c at sp+8, b at sp+16 and sp+24, b's capacity at sp+32, n at sp+40;
 * at a RET the frame is gone and sp is back where it was at entry.
 */
static void go_locs(const struct gotls_info *info, struct tlssniff_loc entry[_TLSSNIFF_ARG_MAX],
                    struct tlssniff_loc ret[_TLSSNIFF_ARG_MAX])
{
        memset(entry, 0, sizeof(struct tlssniff_loc) * _TLSSNIFF_ARG_MAX);
        memset(ret, 0, sizeof(struct tlssniff_loc) * _TLSSNIFF_ARG_MAX);
        if (info->abi_internal && info->machine == EM_X86_64) {
                entry[TLSSNIFF_ARG_SSL] = (struct tlssniff_loc){ TLSSNIFF_LOC_REG, 0, 0 };
                entry[TLSSNIFF_ARG_BUF] = (struct tlssniff_loc){ TLSSNIFF_LOC_REG, 3, 0 };
                entry[TLSSNIFF_ARG_NUM] = (struct tlssniff_loc){ TLSSNIFF_LOC_REG, 2, 0 };
                ret[TLSSNIFF_ARG_RESULT] = (struct tlssniff_loc){ TLSSNIFF_LOC_REG, 0, 0 };
        } else if (info->abi_internal) {
                entry[TLSSNIFF_ARG_SSL] = (struct tlssniff_loc){ TLSSNIFF_LOC_REG, 0, 0 };
                entry[TLSSNIFF_ARG_BUF] = (struct tlssniff_loc){ TLSSNIFF_LOC_REG, 1, 0 };
                entry[TLSSNIFF_ARG_NUM] = (struct tlssniff_loc){ TLSSNIFF_LOC_REG, 2, 0 };
                ret[TLSSNIFF_ARG_RESULT] = (struct tlssniff_loc){ TLSSNIFF_LOC_REG, 0, 0 };
        } else {
                entry[TLSSNIFF_ARG_SSL] = (struct tlssniff_loc){ TLSSNIFF_LOC_STACK, 0, 8 };
                entry[TLSSNIFF_ARG_BUF] = (struct tlssniff_loc){ TLSSNIFF_LOC_STACK, 0, 16 };
                entry[TLSSNIFF_ARG_NUM] = (struct tlssniff_loc){ TLSSNIFF_LOC_STACK, 0, 24 };
                ret[TLSSNIFF_ARG_RESULT] = (struct tlssniff_loc){ TLSSNIFF_LOC_STACK, 0, 40 };
        }
}

static const char *machine_name(uint16_t m)
{
        return m == EM_X86_64 ? "amd64" : m == EM_AARCH64 ? "arm64" : "?";
}

/*
 * The probes and the reason of a Go plan. optimized: entry probes on the stack-check branch
 * where proven, Read as one probe on its copy where proven; else (--placement fallback) entry
 * probes on the first instruction and a probe on every RET of both functions.
 */
static void add_probes(struct msg_plan *plan, const struct gotls_info *info, bool optimized)
{
        const struct gotls_func *funcs[2] = { &info->read, &info->write };
        struct tlssniff_loc entry_loc[_TLSSNIFF_ARG_MAX], ret_loc[_TLSSNIFF_ARG_MAX];
        bool copy = optimized && info->read.copy_probe != 0;
        bool branch = optimized && info->read.entry_probe != info->read.entry_offset &&
                      info->write.entry_probe != info->write.entry_offset;
        char read_what[64];

        go_locs(info, entry_loc, ret_loc);
        plan->n_probes = 0;
        for (int i = 0; i < 2; i++) {
                uint8_t func = i == 0 ? TLSSNIFF_FUNC_GO_READ : TLSSNIFF_FUNC_GO_WRITE;

                if (i == 0 && copy) {
                        struct tlssniff_loc loc[_TLSSNIFF_ARG_MAX] = {};

                        loc[TLSSNIFF_ARG_SSL] = (struct tlssniff_loc){ TLSSNIFF_LOC_STACK, 0,
                                                                       info->read.copy_conn_off };
                        if (info->abi_internal) { /* memmove(to AX, from BX, n CX) */
                                loc[TLSSNIFF_ARG_BUF] = (struct tlssniff_loc){ TLSSNIFF_LOC_REG,
                                                                               3, 0 };
                                loc[TLSSNIFF_ARG_NUM] = (struct tlssniff_loc){ TLSSNIFF_LOC_REG,
                                                                               2, 0 };
                        } else { /* on the stack: to 0(sp), from 8(sp), n 16(sp) */
                                loc[TLSSNIFF_ARG_BUF] = (struct tlssniff_loc){ TLSSNIFF_LOC_STACK,
                                                                               0, 8 };
                                loc[TLSSNIFF_ARG_NUM] = (struct tlssniff_loc){ TLSSNIFF_LOC_STACK,
                                                                               0, 16 };
                        }
                        msg_plan_add_probe(plan, TLSSNIFF_PROBE_COPY, func, info->read.copy_probe,
                                           loc);
                        continue;
                }
                msg_plan_add_probe(plan, TLSSNIFF_PROBE_ENTRY, func,
                                   optimized ? funcs[i]->entry_probe : funcs[i]->entry_offset,
                                   entry_loc);
                for (uint32_t k = 0; k < funcs[i]->n_rets; k++)
                        msg_plan_add_probe(plan, TLSSNIFF_PROBE_RETURN_AT, func, funcs[i]->rets[k],
                                           ret_loc);
        }
        if (copy)
                snprintf(read_what, sizeof(read_what), "its copy to the caller (emulated call)");
        else
                snprintf(read_what, sizeof(read_what), "entry + %u RETs", info->read.n_rets);
        snprintf(plan->reason, sizeof(plan->reason),
                 "Read: %s, Write: entry + %u RETs; entry probes %s; functions from %s, offsets "
                 "from %s (goid +%u)",
                 read_what, info->write.n_rets,
                 branch ? "on the stack-check branch (emulated)"
                 : optimized ? "at function entry"
                             : "at function entry (fallback)",
                 info->symtab ? ".symtab" : ".gopclntab",
                 info->dwarf ? "DWARF" : "the version table", info->go.goid);
}

int gotls_plan_elf(Elf *elf, int fd, const void *data, size_t size, struct msg_plan *plan,
                   struct gotls_info *ret_info)
{
        struct source src = { .elf = elf, .bytes = { .fd = fd, .data = data, .size = size } };
        struct gotls_info info = {};
        struct gotls_func *funcs[2] = { &info.read, &info.write };
        const uint8_t *bi, *pcln = NULL;
        size_t bi_size, pcln_size = 0;
        uint64_t dw[_GODWARF_MAX], memmove_va = 0;
        int16_t g_off = -8;
        GElf_Ehdr eh;
        char why[160] = "";
        int r;

        plan->n_probes = 0;
        plan->has_go = false;
        plan->library[0] = plan->reason[0] = '\0';
        if (elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh))
                return -ENOTSUP;
        if (file_truncated(&src, &eh)) {
                /* Section headers past the end: say so, rather than "not Go". */
                snprintf(plan->reason, sizeof(plan->reason),
                         "truncated ELF file: sections or section headers lie past its end");
                goto out;
        }
        /* The cheap check every non-Go file gets: two section names. */
        if (section_data(elf, ".go.buildinfo", &bi, &bi_size) < 0)
                bi = NULL;
        /* Position-independent builds keep the table in a relocated data section. */
        if (section_data(elf, ".gopclntab", &pcln, &pcln_size) < 0 &&
            section_data(elf, ".data.rel.ro.gopclntab", &pcln, &pcln_size) < 0)
                pcln = NULL;
        if (!bi && !pcln)
                return -ENOTSUP;

        info.machine = eh.e_machine;
        if (!bi || gobuildinfo_version(bi, bi_size, read_va, &src, info.version,
                                       sizeof(info.version)) < 0 ||
            goversion_parse(info.version, &info.major, &info.minor) < 0) {
                snprintf(plan->reason, sizeof(plan->reason), "Go executable without a readable "
                                                             "Go version (.go.buildinfo)");
                goto out;
        }
        snprintf(plan->library, sizeof(plan->library), "Go %.80s (%s)", info.version,
                 machine_name(info.machine));
        if ((eh.e_machine != EM_X86_64 && eh.e_machine != EM_AARCH64) ||
            eh.e_ident[EI_CLASS] != ELFCLASS64) {
                snprintf(plan->reason, sizeof(plan->reason), "unsupported machine %u",
                         eh.e_machine);
                goto out;
        }
        info.abi_internal = info.major > 1 ||
                            info.minor >= (eh.e_machine == EM_X86_64 ? 17u : 18u);
        (void)gotls_build_id(elf, info.build_id, sizeof(info.build_id));

        /* runtime.memmove, for Read's copy placement: without it Read gets entry + RETs. */
        {
                bool symtab;
                uint64_t size_unused;

                if (find_function(elf, "runtime.memmove", pcln, pcln_size, &symtab, &memmove_va,
                                  &size_unused) < 0)
                        memmove_va = 0;
        }
        for (int i = 0; i < 2; i++) {
                struct gotls_func *f = funcs[i];

                r = find_function(elf, func_names[i], pcln, pcln_size, &info.symtab, &f->entry,
                                  &f->size);
                if (r == -ENOENT) {
                        snprintf(plan->reason, sizeof(plan->reason),
                                 "Go executable without crypto/tls (no %s)", func_names[i]);
                        goto out;
                }
                if (r < 0) {
                        snprintf(plan->reason, sizeof(plan->reason),
                                 "cannot read the function table (.gopclntab): %s",
                                 r == -EPROTONOSUPPORT ? "unknown format"
                                 : r == -ENOTUNIQ      ? "the name appears more than once"
                                                       : "malformed");
                        goto out;
                }
                if (elf_file_offset(elf, f->entry, f->size, true, &f->entry_offset) < 0) {
                        snprintf(plan->reason, sizeof(plan->reason),
                                 "%s lies outside executable code", func_names[i]);
                        goto out;
                }
                r = find_rets(&src, eh.e_machine, info.abi_internal, i == 0 ? memmove_va : 0, f,
                              &g_off, why, sizeof(why));
                if (r < 0) {
                        snprintf(plan->reason, sizeof(plan->reason), "%s: %s", func_names[i],
                                 why);
                        goto out;
                }
        }

        if (info.abi_internal || eh.e_machine == EM_AARCH64) {
                /* g lives in a register: r14 (amd64 ABIInternal), x28 (arm64, both ABIs). */
                info.go.g_kind = TLSSNIFF_GO_G_REG;
                info.go.g_reg = eh.e_machine == EM_X86_64 ? 14 : 28;
        } else {
                info.go.g_kind = TLSSNIFF_GO_G_FS;
                info.go.g_off = g_off;
        }
        r = godwarf_offsets(elf, dw);
        if (r == 0) {
                info.dwarf = true;
                info.go.goid = (uint32_t)dw[GODWARF_GOID];
                info.go.conn = (uint32_t)dw[GODWARF_CONN];
                info.go.conn_fd = (uint32_t)(dw[GODWARF_TCPCONN_CONN] + dw[GODWARF_CONN_FD]);
                info.go.pfd = (uint32_t)dw[GODWARF_PFD];
                info.go.sysfd = (uint32_t)dw[GODWARF_SYSFD];
        } else if (gotls_table_offsets(info.major, info.minor, eh.e_machine, &info.go) < 0) {
                snprintf(plan->reason, sizeof(plan->reason),
                         "no usable DWARF (%s) and no offset table for %.80s", strerror(-r),
                         info.version);
                goto out;
        }
        if (info.go.conn_fd >= TLSSNIFF_GO_OFFSET_MAX) {
                snprintf(plan->reason, sizeof(plan->reason), "struct offsets out of range");
                goto out;
        }

        if (2 + info.read.n_rets + info.write.n_rets > MSG_PLAN_PROBES_MAX) {
                snprintf(plan->reason, sizeof(plan->reason), "too many return instructions");
                goto out;
        }
        plan->has_go = true;
        plan->go = info.go;
        snprintf(plan->library, sizeof(plan->library), "Go %.80s (%s, %s)", info.version,
                 machine_name(info.machine), info.abi_internal ? "ABIInternal" : "ABI0");
        add_probes(plan, &info, true);
out:
        if (ret_info)
                *ret_info = info;
        return 0;
}

void gotls_plan_fallback(struct msg_plan *plan, const struct gotls_info *info)
{
        if (plan->has_go && plan->n_probes > 0)
                add_probes(plan, info, false);
}

int gotls_plan(int fd, struct msg_plan *plan, struct gotls_info *info)
{
        Elf *elf;
        int r;

        elf_version(EV_CURRENT);
        /* Not ELF_C_READ_MMAP: a file truncated while mapped would SIGBUS us. */
        elf = elf_begin(fd, ELF_C_READ, NULL);
        if (!elf)
                return -ENOTSUP;
        r = gotls_plan_elf(elf, fd, NULL, 0, plan, info);
        elf_end(elf);
        return r;
}

int gotls_plan_mem(const void *data, size_t size, struct msg_plan *plan, struct gotls_info *info)
{
        Elf *elf;
        int r;

        elf_version(EV_CURRENT);
        elf = elf_memory((char *)data, size);
        if (!elf)
                return -ENOTSUP;
        r = gotls_plan_elf(elf, -1, data, size, plan, info);
        elf_end(elf);
        return r;
}
