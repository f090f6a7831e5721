/*
 * Probe placement analysis for x86-64 (see place.h and docs/design.md, "Probe placement").
 *
 * The function is disassembled with Capstone by a linear sweep over its symbol's extent, then a
 * forward data-flow analysis over its control-flow graph computes, for every instruction, what
 * each register and each stack slot of the frame holds on every path from the entry: one of the
 * function's arguments, a constant, an address in the frame (entry stack pointer + delta), the
 * result of a given call, or unknown. States are merged where paths join (a value that differs
 * becomes unknown), so every fact used below holds on all paths.
 *
 * A call-site placement is accepted only when all of these are proven:
 *  - the entry-side probe E is a `call rel32` (emulated) that receives the function's own
 *    ssl, buf and num in rdi, rsi, rdx and, in rcx, the caller's size_t *out (the _ex
 *    functions) or the address of a slot in the frame (SSL_read/SSL_write, whose count the
 *    callee writes there);
 *  - E is not inside a loop, so each call of the function passes it at most once;
 *  - every path from the entry to a return that does not pass E returns a constant <= 0 (an
 *    error, so the function moved no bytes on it), and no such path leaves by a tail jump;
 *  - the return-side probe R is the first emulated instruction on the straight line after E:
 *    nothing between E and R branches, is a jump target, writes memory or changes rax or rsp,
 *    so R runs exactly once after every E with the callee's result in rax and the count
 *    still where the pointer taken at E points.
 * The callee's contract (it moves the bytes and returns > 0 with the count in *out on success)
 * is OpenSSL's ssl_read_internal/ssl_write_internal; the argument pattern is what identifies it.
 */
#include <capstone/capstone.h>
#include <errno.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "place.h"

#define PLACE_CODE_MAX 16384 /* bytes of one function we analyse */
#define PLACE_INSNS_MAX 4096
#define PLACE_SLOTS 64        /* 8-byte slots below the entry stack pointer */
#define PLACE_WALK_MAX 16     /* instructions between E and R */
#define PLACE_STEPS_MAX 200000

/* DWARF numbering (bpf/regs.h) */
enum { R_AX = 0, R_DX = 1, R_CX = 2, R_BX = 3, R_SI = 4, R_DI = 5, R_BP = 6, R_SP = 7, NREGS = 16 };

/*
 * V_DERIVED: a whole pointer argument plus something (buf + total): where a copy into the
 * caller's buffer writes. It is what an argument becomes by arithmetic or by merging paths where
 * it was advanced and where it was not; it is never taken for the argument itself.
 */
enum vkind { V_UNKNOWN = 0, V_ARG, V_CONST, V_STACK, V_RESULT, V_DERIVED };

struct value {
        uint8_t kind;
        uint8_t narrow; /* V_ARG: only the low 32 bits are the argument's */
        int64_t v; /* V_ARG, V_DERIVED: argument number; V_CONST; V_STACK: delta; V_RESULT: insn */
};

struct state {
        struct value reg[NREGS];
        /*
         * slot[i] is the word at entry sp + base - 8 * (i + 1): base is 0 (the top of the
         * frame), or lower for the bottom of a frame larger than the slots
         * cover (place_calls). The same in every state of one analysis.
         */
        int64_t base;
        struct value slot[PLACE_SLOTS];
        /*
         * half[j] is the 32-bit value at entry sp + base - 4 * (j + 1): what a 4-byte load reads
         * (an int argument spilled with a 32-bit store, or the low half of a word). Kept beside
         * the words: a store of either size updates both views of the bytes it covers.
         */
        struct value half[2 * PLACE_SLOTS];
        /*
         * The lowest frame address (entry sp + delta, delta < 0) handed out, 0 when none was.
         * Whoever holds it may write the frame from there up, never below: C lets a pointer
         * reach only the object it points into, and the address of a frame object is its start
         * (docs/design.md, "Probe placement", states this assumption).
         */
        int64_t escape_floor;
};

enum flow {
        FLOW_NEXT = 0,
        FLOW_JMP,      /* direct, target in target_addr */
        FLOW_JCC,      /* direct conditional */
        FLOW_CALL,     /* direct call */
        FLOW_CALL_IND, /* indirect call */
        FLOW_RET,
        FLOW_JMP_IND,
        FLOW_STOP, /* hlt, ud2, int3: the path ends */
};

struct insn {
        uint64_t addr;
        uint64_t target_addr;
        int32_t target; /* index; -1 outside the function; -2 not on an instruction boundary */
        uint16_t size;
        uint8_t flow;
        bool emulated;
        bool jump_target;  /* some jump lands here */
        bool writes_mem;   /* an explicit or implicit memory store */
};

struct ctx {
        csh cs;
        cs_insn *ci; /* Capstone's array, for details */
        size_t n_decoded;
        size_t n;
        struct insn *in;
        struct state *st; /* in-state per instruction */
        bool *live;
        int32_t *work;
        bool *queued;
        const char *fail; /* why the analysis of this run gave up */
        /* Functions that return their first argument, like memcpy (place_copy_calls). */
        const uint64_t *copiers;
        size_t n_copiers;
        int64_t slot_base; /* struct state's base for this analysis */
};

static const struct {
        x86_reg r[5];
} reg_names[NREGS] = {
        [R_AX] = { { X86_REG_RAX, X86_REG_EAX, X86_REG_AX, X86_REG_AL, X86_REG_AH } },
        [R_DX] = { { X86_REG_RDX, X86_REG_EDX, X86_REG_DX, X86_REG_DL, X86_REG_DH } },
        [R_CX] = { { X86_REG_RCX, X86_REG_ECX, X86_REG_CX, X86_REG_CL, X86_REG_CH } },
        [R_BX] = { { X86_REG_RBX, X86_REG_EBX, X86_REG_BX, X86_REG_BL, X86_REG_BH } },
        [R_SI] = { { X86_REG_RSI, X86_REG_ESI, X86_REG_SI, X86_REG_SIL } },
        [R_DI] = { { X86_REG_RDI, X86_REG_EDI, X86_REG_DI, X86_REG_DIL } },
        [R_BP] = { { X86_REG_RBP, X86_REG_EBP, X86_REG_BP, X86_REG_BPL } },
        [R_SP] = { { X86_REG_RSP, X86_REG_ESP, X86_REG_SP, X86_REG_SPL } },
        [8] = { { X86_REG_R8, X86_REG_R8D, X86_REG_R8W, X86_REG_R8B } },
        [9] = { { X86_REG_R9, X86_REG_R9D, X86_REG_R9W, X86_REG_R9B } },
        [10] = { { X86_REG_R10, X86_REG_R10D, X86_REG_R10W, X86_REG_R10B } },
        [11] = { { X86_REG_R11, X86_REG_R11D, X86_REG_R11W, X86_REG_R11B } },
        [12] = { { X86_REG_R12, X86_REG_R12D, X86_REG_R12W, X86_REG_R12B } },
        [13] = { { X86_REG_R13, X86_REG_R13D, X86_REG_R13W, X86_REG_R13B } },
        [14] = { { X86_REG_R14, X86_REG_R14D, X86_REG_R14W, X86_REG_R14B } },
        [15] = { { X86_REG_R15, X86_REG_R15D, X86_REG_R15W, X86_REG_R15B } },
};

/* Register number and width in bytes (8, 4, 2 or 1), or -1 for anything else. */
static int reg_index(unsigned r, int *ret_width)
{
        static const int widths[5] = { 8, 4, 2, 1, 1 };

        if (r == X86_REG_INVALID)
                return -1;
        for (int i = 0; i < NREGS; i++)
                for (int w = 0; w < 5; w++)
                        if (reg_names[i].r[w] == r) {
                                *ret_width = widths[w];
                                return i;
                        }
        return -1;
}

/* The System V argument registers, in order. */
static const int arg_regs[6] = { R_DI, R_SI, R_DX, R_CX, 8, 9 };
/* Registers a call may change (caller-saved). */
static const int clobbered[9] = { R_AX, R_CX, R_DX, R_SI, R_DI, 8, 9, 10, 11 };

/*
 * Instructions the x86 uprobe code emulates instead of single-stepping (the kernel's
 * branch_setup_xol_ops and push_setup_xol_ops): nop, jmp rel8/rel32, call rel32, jcc rel8/rel32
 * and push of a general register, without operand-size prefixes. Saying "no" here only costs
 * speed, so the list is exact forms only.
 */
static bool x86_emulated(const uint8_t *b, size_t n)
{
        static const uint8_t nops[][8] = {
                { 0x90 },
                { 0x66, 0x90 },
                { 0x0f, 0x1f, 0x00 },
                { 0x0f, 0x1f, 0x40, 0x00 },
                { 0x0f, 0x1f, 0x44, 0x00, 0x00 },
                { 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00 },
                { 0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00 },
                { 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00 },
        };

        if (n >= 1 && n <= 8 && memcmp(b, nops[n - 1], n) == 0)
                return true;
        switch (n) {
        case 1:
                return b[0] >= 0x50 && b[0] <= 0x57;
        case 2:
                return (b[0] == 0x41 && b[1] >= 0x50 && b[1] <= 0x57) ||
                       (b[0] >= 0x70 && b[0] <= 0x7f) || b[0] == 0xeb;
        case 5:
                return b[0] == 0xe8 || b[0] == 0xe9;
        case 6:
                return b[0] == 0x0f && b[1] >= 0x80 && b[1] <= 0x8f;
        default:
                return false;
        }
}

static bool value_eq(const struct value *a, const struct value *b)
{
        return a->kind == b->kind && a->narrow == b->narrow && a->v == b->v;
}

static struct value unknown(void)
{
        return (struct value){ .kind = V_UNKNOWN };
}

static struct value konst(int64_t v)
{
        return (struct value){ .kind = V_CONST, .v = v };
}

static struct value stack_at(int64_t delta)
{
        return (struct value){ .kind = V_STACK, .v = delta };
}

/* A whole argument or something derived from it: a pointer into what the argument points at. */
static bool is_pointer_arg(const struct value *v)
{
        return (v->kind == V_ARG && !v->narrow) || v->kind == V_DERIVED;
}

static struct value derived(int64_t arg)
{
        return (struct value){ .kind = V_DERIVED, .v = arg };
}

/*
 * The sum of a and b, as far as derivation goes: a pointer argument (or what derives from it)
 * plus a value that is not itself a pointer we know of.
 */
static struct value sum_derived(const struct value *a, const struct value *b)
{
        bool pa = is_pointer_arg(a), pb = is_pointer_arg(b);

        if (pa && !pb && b->kind != V_STACK)
                return derived(a->v);
        if (pb && !pa && a->kind != V_STACK)
                return derived(b->v);
        return unknown();
}

/* Entry sp + delta of slot i (word) or half j. */
static int64_t slot_delta(const struct state *s, int i)
{
        return s->base - 8 * (int64_t)(i + 1);
}

static int64_t half_delta(const struct state *s, int j)
{
        return s->base - 4 * (int64_t)(j + 1);
}

/* Slot index of the word at entry sp + delta, or -1 when it is not one we track. */
static int slot_index(const struct state *s, int64_t delta)
{
        int64_t d = delta - s->base;

        if (d >= 0 || d < -8 * PLACE_SLOTS || d % 8 != 0)
                return -1;
        return (int)(-d / 8 - 1);
}

/* Index in half[] of the 32-bit value at entry sp + delta, or -1 when it is not one we track. */
static int half_index(const struct state *s, int64_t delta)
{
        int64_t d = delta - s->base;

        if (d >= 0 || d < -8 * PLACE_SLOTS || d % 4 != 0)
                return -1;
        return (int)(-d / 4 - 1);
}

/* The low 32 bits of a value, as a 32-bit load or register read sees them. */
static struct value narrowed(struct value v)
{
        if (v.kind == V_ARG)
                return (struct value){ .kind = V_ARG, .narrow = 1, .v = v.v };
        if (v.kind == V_CONST)
                return konst((int64_t)(uint32_t)v.v);
        return unknown();
}

static void slots_forget_all(struct state *s)
{
        for (int i = 0; i < PLACE_SLOTS; i++)
                s->slot[i] = unknown();
        for (int j = 0; j < 2 * PLACE_SLOTS; j++)
                s->half[j] = unknown();
}

/* Forget the words and halves overlapping [delta, delta + size). */
static void slots_forget(struct state *s, int64_t delta, int64_t size)
{
        for (int i = 0; i < PLACE_SLOTS; i++) {
                int64_t lo = slot_delta(s, i);

                if (lo < delta + size && delta < lo + 8)
                        s->slot[i] = unknown();
        }
        for (int j = 0; j < 2 * PLACE_SLOTS; j++) {
                int64_t lo = half_delta(s, j);

                if (lo < delta + size && delta < lo + 4)
                        s->half[j] = unknown();
        }
}

/* Slots below sp are free: a callee or a signal frame may overwrite them. */
static void slots_forget_below(struct state *s, int64_t sp)
{
        for (int i = 0; i < PLACE_SLOTS; i++)
                if (slot_delta(s, i) < sp)
                        s->slot[i] = unknown();
        for (int j = 0; j < 2 * PLACE_SLOTS; j++)
                if (half_delta(s, j) < sp)
                        s->half[j] = unknown();
}

/* Forget what an escaped frame address can reach: the words and halves from the floor up. */
static void slots_forget_escaped(struct state *s)
{
        if (s->escape_floor < 0)
                slots_forget(s, s->escape_floor, -s->escape_floor);
}

/* The frame address v (V_STACK) is handed out. */
static void escape(struct state *s, const struct value *v)
{
        if (v->kind == V_STACK && v->v < s->escape_floor)
                s->escape_floor = v->v;
}

/* A word stored at slot i: its low half reads as the value's low 32 bits, the high unknown. */
static void slot_store(struct state *s, int i, struct value v)
{
        s->slot[i] = v;
        s->half[2 * i + 1] = narrowed(v); /* the lower address: slot_delta(s, i) */
        s->half[2 * i] = unknown();
}

static void set_sp(struct state *s, struct value v)
{
        if (v.kind != V_STACK) {
                s->reg[R_SP] = unknown();
                slots_forget_all(s);
                return;
        }
        s->reg[R_SP] = v;
        slots_forget_below(s, v.v - 128); /* keep the red zone */
}

static struct value reg_get(const struct state *s, int r, int width)
{
        struct value v = s->reg[r];

        if (width == 8)
                return v;
        if (width == 4) {
                if (v.kind == V_ARG)
                        return (struct value){ .kind = V_ARG, .narrow = 1, .v = v.v };
                if (v.kind == V_CONST)
                        return konst((int64_t)(uint32_t)v.v);
        }
        return unknown();
}

/* A write of width bytes to register r: 32-bit writes zero-extend, narrower ones merge. */
static void reg_set(struct state *s, int r, int width, struct value v)
{
        if (width == 4) {
                if (v.kind == V_CONST)
                        v = konst((int64_t)(uint32_t)v.v);
                else if (v.kind == V_ARG)
                        v.narrow = 1;
                else
                        v = unknown();
        } else if (width != 8) {
                v = unknown();
        }
        if (r == R_SP)
                set_sp(s, width == 8 ? v : unknown());
        else
                s->reg[r] = v;
}

/* The frame delta a memory operand addresses, or false when it is not a known frame address. */
static bool mem_delta(const struct state *s, const x86_op_mem *m, bool *ret_in_frame,
                      int64_t *ret_delta)
{
        int w, b = reg_index(m->base, &w);

        *ret_in_frame = false;
        if (m->segment != X86_REG_INVALID || b < 0 || w != 8)
                return false;
        if (s->reg[b].kind != V_STACK)
                return false;
        *ret_in_frame = true; /* based on a frame address, even if the index makes it unknown */
        if (m->index != X86_REG_INVALID)
                return false;
        *ret_delta = s->reg[b].v + m->disp;
        return true;
}

static struct value mem_load(const struct state *s, const x86_op_mem *m, int size)
{
        bool in_frame;
        int64_t d;
        int i;

        if ((size != 8 && size != 4) || !mem_delta(s, m, &in_frame, &d))
                return unknown();
        if (size == 4) {
                i = half_index(s, d);
                return i < 0 ? unknown() : s->half[i];
        }
        i = slot_index(s, d);
        return i < 0 ? unknown() : s->slot[i];
}

static void mem_store(struct state *s, const x86_op_mem *m, int size, struct value v)
{
        bool in_frame;
        int64_t d;

        escape(s, &v);
        if (mem_delta(s, m, &in_frame, &d)) {
                int i = slot_index(s, d), j = half_index(s, d);

                if (size == 8 && i >= 0) {
                        slot_store(s, i, v);
                } else if (size == 4 && j >= 0) {
                        slots_forget(s, d, 4);
                        s->half[j] = narrowed(v);
                } else {
                        slots_forget(s, d, size > 0 ? size : 64);
                }
                return;
        }
        /* An unknown place in the frame, or through a pointer that may point into it. */
        if (in_frame)
                slots_forget_all(s);
        else
                slots_forget_escaped(s);
}

/* Effect of an instruction Capstone decoded that the transfer function does not model. */
static void generic(struct ctx *c, const cs_insn *ci, struct state *s)
{
        const cs_x86 *x = &ci->detail->x86;
        cs_regs rd, wr;
        uint8_t nrd = 0, nwr = 0;

        if (cs_regs_access(c->cs, ci, rd, &nrd, wr, &nwr) != CS_ERR_OK) {
                /* Cannot tell what it writes: forget everything but the stack pointer. */
                for (int r = 0; r < NREGS; r++)
                        if (r != R_SP)
                                s->reg[r] = unknown();
                slots_forget_all(s);
                return;
        }
        for (int i = 0; i < nwr; i++) {
                int w, r = reg_index(wr[i], &w);

                if (r >= 0)
                        reg_set(s, r, r == R_SP ? 0 : w, unknown());
        }
        for (int i = 0; i < x->op_count; i++)
                if (x->operands[i].type == X86_OP_MEM && (x->operands[i].access & CS_AC_WRITE))
                        mem_store(s, &x->operands[i].mem, x->operands[i].size, unknown());
}

/* lea of base + index * scale + disp: derived from a pointer argument in base or index. */
static struct value lea_derived(const struct state *s, const x86_op_mem *m)
{
        int wb = 0, wi = 0, b = reg_index(m->base, &wb), i = reg_index(m->index, &wi);
        struct value vb = unknown(), vi = unknown();

        if (m->segment != X86_REG_INVALID || (b >= 0 && wb != 8) || (i >= 0 && wi != 8))
                return unknown();
        if (b >= 0)
                vb = s->reg[b];
        if (i >= 0)
                vi = m->scale == 1 ? s->reg[i] : unknown(); /* a scaled pointer is not one */
        if (b < 0 && i < 0)
                return unknown();
        if (i < 0)
                return is_pointer_arg(&vb) ? derived(vb.v) : unknown();
        return sum_derived(&vb, &vi);
}

static bool is_string_op(unsigned id)
{
        switch (id) {
        case X86_INS_STOSB: case X86_INS_STOSW: case X86_INS_STOSD: case X86_INS_STOSQ:
        case X86_INS_MOVSB: case X86_INS_MOVSW: case X86_INS_MOVSD: case X86_INS_MOVSQ:
                return true;
        default:
                return false;
        }
}

/* pop into register r: the word at sp (when the frame slot is known), then sp += 8. */
static void pop_into(struct state *s, int r)
{
        struct value sp = s->reg[R_SP];
        int i8;

        if (sp.kind != V_STACK) {
                s->reg[r] = unknown();
                return;
        }
        i8 = slot_index(s, sp.v);
        s->reg[r] = i8 >= 0 ? s->slot[i8] : unknown();
        set_sp(s, stack_at(sp.v + 8));
}

/* The state after instruction i (for every successor: no value depends on the flags). */
static void transfer(struct ctx *c, size_t i, struct state *s)
{
        const cs_insn *ci = &c->ci[i];
        const cs_x86 *x = &ci->detail->x86;
        const cs_x86_op *o0 = &x->operands[0], *o1 = &x->operands[1];
        int w0 = 0, w1 = 0;
        int r0 = x->op_count > 0 && o0->type == X86_OP_REG ? reg_index(o0->reg, &w0) : -1;
        int r1 = x->op_count > 1 && o1->type == X86_OP_REG ? reg_index(o1->reg, &w1) : -1;
        struct value sp = s->reg[R_SP];

        switch (c->in[i].flow) {
        case FLOW_CALL:
        case FLOW_CALL_IND: {
                struct value di = s->reg[R_DI];
                bool copier = false;

                for (size_t k = 0; k < c->n_copiers && c->in[i].flow == FLOW_CALL; k++)
                        copier |= c->in[i].target_addr == c->copiers[k];
                for (size_t a = 0; a < ELEMENTSOF(arg_regs); a++)
                        escape(s, &s->reg[arg_regs[a]]);
                slots_forget_escaped(s);
                if (sp.kind == V_STACK)
                        slots_forget_below(s, sp.v);
                else
                        slots_forget_all(s);
                for (size_t a = 0; a < ELEMENTSOF(clobbered); a++)
                        s->reg[clobbered[a]] = unknown();
                s->reg[R_AX] = (struct value){ .kind = V_RESULT, .v = (int64_t)i };
                if (copier && is_pointer_arg(&di))
                        s->reg[R_AX] = di; /* memcpy returns its destination */
                return;
        }
        case FLOW_NEXT:
                break;
        default:
                return; /* jumps and returns change no register we track */
        }

        if (is_string_op(ci->id)) {
                struct value di = s->reg[R_DI];

                /*
                 * stos/movs write upward from rdi (the direction flag is clear: the ABI's rule
                 * at every call and return, and a function that sets it is not analysed): from
                 * a frame address up to the entry sp; elsewhere, what escaped frame addresses
                 * reach, as any store through a pointer.
                 */
                generic(c, ci, s);
                if (di.kind == V_STACK && di.v < 0)
                        slots_forget(s, di.v, -di.v);
                else if (di.kind == V_STACK)
                        ;
                else
                        slots_forget_escaped(s);
                return;
        }
        switch (ci->id) {
        case X86_INS_NOP:
        case X86_INS_ENDBR64:
        case X86_INS_TEST:
        case X86_INS_CMP:
        case X86_INS_BT:
                return;
        case X86_INS_PUSH:
                if (sp.kind == V_STACK) {
                        struct value v = unknown();
                        int i8 = slot_index(s, sp.v - 8);

                        if (r0 >= 0 && w0 == 8)
                                v = s->reg[r0];
                        else if (o0->type == X86_OP_IMM)
                                v = konst(o0->imm);
                        escape(s, &v);
                        if (i8 >= 0)
                                slot_store(s, i8, v);
                        set_sp(s, stack_at(sp.v - 8));
                } else {
                        set_sp(s, unknown());
                }
                return;
        case X86_INS_POP:
                if (r0 < 0 || w0 != 8 || r0 == R_SP) {
                        generic(c, ci, s);
                        return;
                }
                pop_into(s, r0);
                return;
        case X86_INS_LEAVE:
                set_sp(s, s->reg[R_BP]);
                pop_into(s, R_BP);
                return;
        case X86_INS_MOV:
                if (x->op_count != 2)
                        break;
                if (r0 >= 0 && r1 >= 0 && w0 == w1) {
                        reg_set(s, r0, w0, reg_get(s, r1, w1));
                        return;
                }
                if (r0 >= 0 && o1->type == X86_OP_IMM) {
                        reg_set(s, r0, w0, konst(o1->imm));
                        return;
                }
                if (r0 >= 0 && o1->type == X86_OP_MEM) {
                        reg_set(s, r0, w0,
                                w0 == 8 || w0 == 4 ? mem_load(s, &o1->mem, o1->size) : unknown());
                        return;
                }
                if (o0->type == X86_OP_MEM && r1 >= 0) {
                        mem_store(s, &o0->mem, o0->size, reg_get(s, r1, w1));
                        return;
                }
                if (o0->type == X86_OP_MEM && o1->type == X86_OP_IMM) {
                        mem_store(s, &o0->mem, o0->size,
                                  o0->size == 8 || o0->size == 4 ? konst(o1->imm) : unknown());
                        return;
                }
                break;
        case X86_INS_MOVSXD:
                if (r0 >= 0 && r1 >= 0 && w0 == 8 && w1 == 4) {
                        struct value v = reg_get(s, r1, 4);

                        reg_set(s, r0, 8, v.kind == V_ARG ? v : unknown());
                        return;
                }
                break;
        case X86_INS_LEA:
                if (r0 >= 0 && w0 == 8 && o1->type == X86_OP_MEM) {
                        bool in_frame;
                        int64_t d;

                        if (mem_delta(s, &o1->mem, &in_frame, &d)) {
                                reg_set(s, r0, 8, stack_at(d));
                                return;
                        }
                        reg_set(s, r0, 8, lea_derived(s, &o1->mem));
                        return;
                }
                break;
        case X86_INS_XOR:
        case X86_INS_SUB:
                if (r0 >= 0 && r1 == r0 && w0 == w1 && (w0 == 8 || w0 == 4)) {
                        reg_set(s, r0, w0, konst(0));
                        return;
                }
                /* fall through */
        case X86_INS_ADD:
                if (ci->id != X86_INS_XOR && r0 >= 0 && w0 == 8 && o1->type == X86_OP_IMM) {
                        struct value v = s->reg[r0];
                        int64_t d = ci->id == X86_INS_ADD ? o1->imm : -o1->imm;

                        if (v.kind == V_STACK || v.kind == V_CONST)
                                v.v += d;
                        else if (is_pointer_arg(&v))
                                v = derived(v.v);
                        else
                                v = unknown();
                        reg_set(s, r0, 8, v);
                        return;
                }
                if (ci->id == X86_INS_ADD && r0 >= 0 && r1 >= 0 && w0 == 8 && w1 == 8 &&
                    r0 != R_SP) {
                        reg_set(s, r0, 8, sum_derived(&s->reg[r0], &s->reg[r1]));
                        return;
                }
                break;
        default:
                break;
        }
        generic(c, ci, s);
}

/*
 * Merges value b into a (unknown where they differ, except that a pointer argument and what
 * derives from it merge into the derived form); true when a changed.
 */
static bool merge_value(struct value *a, const struct value *b)
{
        if (a->kind == V_UNKNOWN || value_eq(a, b))
                return false;
        if (is_pointer_arg(a) && is_pointer_arg(b) && a->v == b->v) {
                if (a->kind == V_DERIVED)
                        return false;
                *a = derived(a->v);
                return true;
        }
        *a = unknown();
        return true;
}

/* Merges b into a; true when a changed. */
static bool merge(struct state *a, const struct state *b)
{
        bool changed = false;

        for (int r = 0; r < NREGS; r++)
                changed |= merge_value(&a->reg[r], &b->reg[r]);
        for (int i = 0; i < PLACE_SLOTS; i++)
                changed |= merge_value(&a->slot[i], &b->slot[i]);
        for (int j = 0; j < 2 * PLACE_SLOTS; j++)
                changed |= merge_value(&a->half[j], &b->half[j]);
        if (b->escape_floor < a->escape_floor) {
                a->escape_floor = b->escape_floor;
                slots_forget_escaped(a);
                changed = true;
        }
        return changed;
}

static int32_t find_insn(const struct ctx *c, uint64_t addr)
{
        size_t lo = 0, hi = c->n;

        if (c->n == 0 || addr < c->in[0].addr || addr >= c->in[c->n - 1].addr + c->in[c->n - 1].size)
                return -1;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (c->in[mid].addr < addr)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo < c->n && c->in[lo].addr == addr ? (int32_t)lo : -2;
}

static void push_work(struct ctx *c, size_t *top, int32_t i)
{
        if (!c->queued[i]) {
                c->queued[i] = true;
                c->work[(*top)++] = i;
        }
}

static void flow_to(struct ctx *c, size_t *top, int32_t to, const struct state *s)
{
        if (!c->live[to]) {
                c->st[to] = *s;
                c->live[to] = true;
                push_work(c, top, to);
        } else if (merge(&c->st[to], s)) {
                push_work(c, top, to);
        }
}

/*
 * Runs the analysis from the entry. Instruction `blocked` (or -1) has no successors: paths
 * through it are cut, which gives the states of the paths that avoid it. Returns 0, or -1 with
 * c->fail set when the code is outside what the analysis models.
 */
static int analyse(struct ctx *c, int32_t blocked)
{
        size_t top = 0, steps = 0;
        struct state s;

        memset(c->live, 0, c->n * sizeof(*c->live));
        memset(c->queued, 0, c->n * sizeof(*c->queued));
        memset(&c->st[0], 0, sizeof(c->st[0]));
        c->st[0].base = c->slot_base;
        for (size_t a = 0; a < ELEMENTSOF(arg_regs); a++)
                c->st[0].reg[arg_regs[a]] = (struct value){ .kind = V_ARG, .v = (int64_t)a };
        c->st[0].reg[R_SP] = stack_at(0);
        c->live[0] = true;
        push_work(c, &top, 0);

        while (top > 0) {
                int32_t i = c->work[--top];
                const struct insn *in = &c->in[i];

                c->queued[i] = false;
                if (++steps > PLACE_STEPS_MAX) {
                        c->fail = "analysis did not settle";
                        return -1;
                }
                if (i == blocked)
                        continue;
                if (c->ci[i].id == X86_INS_STD) {
                        c->fail = "sets the direction flag";
                        return -1;
                }
                s = c->st[i];
                transfer(c, (size_t)i, &s);
                switch (in->flow) {
                case FLOW_JMP_IND:
                        c->fail = "indirect jump (jump table or tail call)";
                        return -1;
                case FLOW_RET:
                case FLOW_STOP:
                        continue;
                case FLOW_JMP:
                case FLOW_JCC:
                        if (in->target == -2) {
                                c->fail = "jump into the middle of an instruction";
                                return -1;
                        }
                        if (in->target >= 0)
                                flow_to(c, &top, in->target, &s);
                        if (in->flow == FLOW_JMP)
                                continue;
                        break;
                default:
                        break;
                }
                /* Falls through; running past the function's end only follows noreturn calls. */
                if ((size_t)i + 1 < c->n && c->in[i + 1].addr == in->addr + in->size)
                        flow_to(c, &top, i + 1, &s);
        }
        return 0;
}

/*
 * Is instruction `to` reachable from `from` (by control flow alone)? `from` may be one past the
 * last instruction (the one after a call that ends the decoded code): nothing is reachable.
 */
static bool reachable(struct ctx *c, int32_t from, int32_t to)
{
        size_t top = 0;

        if (from < 0 || (size_t)from >= c->n)
                return false;
        memset(c->queued, 0, c->n * sizeof(*c->queued));
        push_work(c, &top, from);
        while (top > 0) {
                int32_t i = c->work[--top];
                const struct insn *in = &c->in[i];

                if (i == to)
                        return true;
                if ((in->flow == FLOW_JMP || in->flow == FLOW_JCC) && in->target >= 0)
                        push_work(c, &top, in->target);
                if (in->flow != FLOW_JMP && in->flow != FLOW_RET && in->flow != FLOW_STOP &&
                    in->flow != FLOW_JMP_IND && (size_t)i + 1 < c->n &&
                    c->in[i + 1].addr == in->addr + in->size)
                        push_work(c, &top, i + 1);
        }
        return false;
}

static bool is_arg(const struct value *v, int64_t n, bool allow_narrow)
{
        return v->kind == V_ARG && v->v == n && (allow_narrow || !v->narrow);
}

static void loc_reg(struct tlssniff_loc *l, int reg)
{
        l->kind = TLSSNIFF_LOC_REG;
        l->reg = (uint8_t)reg;
        l->off = 0;
}

/* Why the call at instruction i is not the internal read/write call, or NULL when it is. */
static const char *check_callee_args(struct ctx *c, int32_t i, bool ex)
{
        const struct state *e;

        if (!c->live[i] || c->in[i].flow != FLOW_CALL)
                return "not a direct call";
        e = &c->st[i];
        if (!is_arg(&e->reg[R_DI], 0, false) || !is_arg(&e->reg[R_SI], 1, false) ||
            !is_arg(&e->reg[R_DX], 2, true))
                return "the call does not receive ssl, buf and num";
        if (ex ? !is_arg(&e->reg[R_CX], 3, false) : e->reg[R_CX].kind != V_STACK)
                return ex ? "the call does not receive the caller's count pointer"
                          : "the call does not receive a count slot in the frame";
        if (e->reg[R_SP].kind != V_STACK)
                return "stack pointer unknown at the call";
        return NULL;
}

/* R: the first emulated instruction on the straight line after the call at i (full analysis). */
static const char *find_return_point(struct ctx *c, int32_t i, int32_t *ret_r)
{
        const struct state *e = &c->st[i];

        if (!c->in[i].emulated)
                return "the call instruction is not emulated";
        for (int32_t j = i + 1, k = 0; k < PLACE_WALK_MAX; j++, k++) {
                const struct insn *in;

                if ((size_t)j >= c->n || c->in[j].addr != c->in[j - 1].addr + c->in[j - 1].size)
                        return "code after the call is not analysable";
                in = &c->in[j];
                if (in->jump_target)
                        return "another path joins between the call and an emulated instruction";
                if (!c->live[j])
                        return "the call does not return to the function";
                if (c->st[j].reg[R_AX].kind != V_RESULT || c->st[j].reg[R_AX].v != i)
                        return "the result is overwritten before an emulated instruction";
                if (!value_eq(&c->st[j].reg[R_SP], &e->reg[R_SP]))
                        return "the stack pointer moves before an emulated instruction";
                if (in->emulated) {
                        *ret_r = j;
                        return NULL;
                }
                if (in->flow != FLOW_NEXT || in->writes_mem)
                        return "a branch or a store before an emulated instruction";
        }
        return "no emulated instruction soon after the call";
}

/*
 * The call at i is the only way bytes move: it is not in a loop, and every path that avoids it
 * returns an error constant by `ret`. Runs the cut analysis: the full one must be redone after.
 */
static const char *check_only_mover(struct ctx *c, int32_t i)
{
        if (reachable(c, i + 1, i))
                return "the call is inside a loop";
        if (analyse(c, i) < 0)
                return c->fail;
        for (size_t j = 0; j < c->n; j++) {
                const struct value *ax = &c->st[j].reg[R_AX];

                if (!c->live[j] || (int32_t)j == i)
                        continue;
                if ((c->in[j].flow == FLOW_JMP || c->in[j].flow == FLOW_JCC) && c->in[j].target == -1)
                        return "a path that avoids the call leaves by a jump";
                if (c->in[j].flow == FLOW_RET && !(ax->kind == V_CONST && (int32_t)ax->v <= 0))
                        return "a path that avoids the call returns a value that is not an error";
        }
        return NULL;
}

/* Is the first instruction at vaddr (read through the callback) one the kernel emulates? */
static bool first_insn_emulated(csh cs, place_read_fn read, void *userdata, uint64_t vaddr,
                                char *mnemonic, size_t mnemonic_size)
{
        uint8_t buf[16];
        cs_insn *ci = NULL;
        ssize_t n;
        bool ok = false;

        if (!read)
                return false;
        n = read(userdata, vaddr, buf, sizeof(buf));
        if (n <= 0)
                return false;
        if (cs_disasm(cs, buf, (size_t)n, vaddr, 1, &ci) == 1) {
                ok = x86_emulated(ci->bytes, ci->size);
                snprintf(mnemonic, mnemonic_size, "%s", ci->mnemonic);
        }
        if (ci)
                cs_free(ci, 1);
        return ok;
}

static void fill_fallback(struct place_result *res, uint64_t vaddr, bool ex, bool emulated)
{
        res->strategy = emulated ? PLACE_ENTRY : PLACE_FALLBACK;
        res->entry_addr = res->return_addr = vaddr;
        res->return_uretprobe = true;
        res->entry_emulated = emulated;
        memset(res->entry_loc, 0, sizeof(res->entry_loc));
        memset(res->return_loc, 0, sizeof(res->return_loc));
}

static int decode(struct ctx *c, const uint8_t *code, size_t size, uint64_t vaddr)
{
        size_t n;

        n = c->n_decoded = cs_disasm(c->cs, code, size, vaddr, 0, &c->ci);
        if (n == 0)
                return -1;
        if (n > PLACE_INSNS_MAX)
                n = PLACE_INSNS_MAX;
        c->n = n;
        c->in = calloc(n, sizeof(*c->in));
        c->st = calloc(n, sizeof(*c->st));
        c->live = calloc(n, sizeof(*c->live));
        c->queued = calloc(n, sizeof(*c->queued));
        c->work = calloc(n, sizeof(*c->work));
        if (!c->in || !c->st || !c->live || !c->queued || !c->work)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const cs_insn *ci = &c->ci[i];
                const cs_x86 *x = &ci->detail->x86;
                struct insn *in = &c->in[i];
                bool direct = x->op_count == 1 && x->operands[0].type == X86_OP_IMM;

                in->addr = ci->address;
                in->size = ci->size;
                in->emulated = x86_emulated(ci->bytes, ci->size);
                in->flow = FLOW_NEXT;
                if (cs_insn_group(c->cs, ci, X86_GRP_CALL))
                        in->flow = direct ? FLOW_CALL : FLOW_CALL_IND;
                else if (cs_insn_group(c->cs, ci, X86_GRP_RET) || cs_insn_group(c->cs, ci, X86_GRP_IRET))
                        in->flow = FLOW_RET;
                else if (cs_insn_group(c->cs, ci, X86_GRP_JUMP))
                        in->flow = !direct ? FLOW_JMP_IND : ci->id == X86_INS_JMP ? FLOW_JMP : FLOW_JCC;
                else if (ci->id == X86_INS_HLT || ci->id == X86_INS_UD2 || ci->id == X86_INS_INT3)
                        in->flow = FLOW_STOP;
                else if (cs_insn_group(c->cs, ci, X86_GRP_INT))
                        in->flow = FLOW_NEXT;
                if (direct && (in->flow == FLOW_JMP || in->flow == FLOW_JCC || in->flow == FLOW_CALL))
                        in->target_addr = (uint64_t)x->operands[0].imm;
                for (int k = 0; k < x->op_count; k++)
                        if (x->operands[k].type == X86_OP_MEM &&
                            (x->operands[k].access & CS_AC_WRITE))
                                in->writes_mem = true;
                if (is_string_op(ci->id) || ci->id == X86_INS_PUSH || in->flow == FLOW_CALL ||
                    in->flow == FLOW_CALL_IND)
                        in->writes_mem = true;
        }
        for (size_t i = 0; i < n; i++) {
                struct insn *in = &c->in[i];

                if (in->flow != FLOW_JMP && in->flow != FLOW_JCC)
                        continue;
                in->target = find_insn(c, in->target_addr);
                if (in->target >= 0)
                        c->in[in->target].jump_target = true;
        }
        return 0;
}

static void ctx_done(struct ctx *c)
{
        if (c->ci)
                cs_free(c->ci, c->n_decoded);
        free(c->in);
        free(c->st);
        free(c->live);
        free(c->queued);
        free(c->work);
        if (c->cs)
                cs_close(&c->cs);
}

static void place_x86_64(const uint8_t *code, size_t size, uint64_t vaddr, bool ex,
                         place_read_fn read, void *userdata, struct place_result *res)
{
        struct ctx c = {};
        const char *why = NULL;
        char callee_insn[32] = "";
        int32_t best_r = -1, best_e = -1;
        bool callee = false;

        if (cs_open(CS_ARCH_X86, CS_MODE_64, &c.cs) != CS_ERR_OK) {
                snprintf(res->reason, sizeof(res->reason), "fallback: disassembler unavailable");
                return;
        }
        cs_option(c.cs, CS_OPT_DETAIL, CS_OPT_ON);
        if (decode(&c, code, size, vaddr) != 0 || c.n == 0) {
                snprintf(res->reason, sizeof(res->reason),
                         "fallback: first instruction does not decode");
                goto out;
        }
        fill_fallback(res, vaddr, ex, c.in[0].emulated);
        if (c.in[0].emulated) {
                snprintf(res->reason, sizeof(res->reason),
                         "entry: first instruction (%s) is emulated", c.ci[0].mnemonic);
                goto out;
        }
        if (analyse(&c, -1) < 0) {
                snprintf(res->reason, sizeof(res->reason), "fallback: %s", c.fail);
                goto out;
        }
        for (int32_t i = 0; i < (int32_t)c.n && best_e < 0; i++) {
                const char *w;
                int32_t r = -1;

                if (c.in[i].flow != FLOW_CALL || !c.live[i])
                        continue;
                w = check_callee_args(&c, i, ex);
                if (!w) {
                        /* The callee's entry first (it serves every caller), then R here. */
                        callee = first_insn_emulated(c.cs, read, userdata, c.in[i].target_addr,
                                                     callee_insn, sizeof(callee_insn));
                        if (!callee)
                                w = find_return_point(&c, i, &r);
                }
                if (!w)
                        w = check_only_mover(&c, i);
                if (!w) {
                        best_e = i;
                        best_r = r;
                        break;
                }
                callee = false;
                if (!why)
                        why = w;
                /* check_only_mover may have run the cut analysis: restore the full one. */
                if (analyse(&c, -1) < 0) {
                        why = c.fail;
                        break;
                }
        }
        if (best_e < 0) {
                snprintf(res->reason, sizeof(res->reason), "fallback: %s (first instruction %s "
                         "is single-stepped)", why ? why : "no direct call", c.ci[0].mnemonic);
                goto out;
        }
        if (callee) {
                res->strategy = PLACE_CALLEE;
                res->entry_addr = res->return_addr = c.in[best_e].target_addr;
                res->return_uretprobe = true;
                res->entry_emulated = true;
                snprintf(res->reason, sizeof(res->reason),
                         "callee: the internal function called at +0x%llx (0x%llx, first "
                         "instruction %s is emulated)",
                         (unsigned long long)(c.in[best_e].addr - vaddr),
                         (unsigned long long)res->entry_addr, callee_insn);
        } else {
                res->strategy = PLACE_CALL_SITE;
                res->entry_addr = c.in[best_e].addr;
                res->return_addr = c.in[best_r].addr;
                res->return_uretprobe = false;
                res->entry_emulated = true;
                snprintf(res->reason, sizeof(res->reason),
                         "call-site: %s at +0x%llx, %s at +0x%llx", c.ci[best_e].mnemonic,
                         (unsigned long long)(res->entry_addr - vaddr), c.ci[best_r].mnemonic,
                         (unsigned long long)(res->return_addr - vaddr));
        }
        /* At the call (and at the callee's entry): rdi, rsi, rdx, rcx; the result in rax. */
        loc_reg(&res->entry_loc[TLSSNIFF_ARG_SSL], R_DI);
        loc_reg(&res->entry_loc[TLSSNIFF_ARG_BUF], R_SI);
        loc_reg(&res->entry_loc[TLSSNIFF_ARG_NUM], R_DX);
        loc_reg(&res->entry_loc[TLSSNIFF_ARG_OUTLEN], R_CX);
        loc_reg(&res->return_loc[TLSSNIFF_ARG_RESULT], R_AX);
out:
        ctx_done(&c);
}

const char *place_strategy_name(enum place_strategy s)
{
        switch (s) {
        case PLACE_ENTRY:
                return "entry";
        case PLACE_CALL_SITE:
                return "call-site";
        case PLACE_CALLEE:
                return "callee";
        default:
                return "fallback";
        }
}

int place_function(const uint8_t *code, size_t size, uint64_t vaddr, uint16_t machine,
                   uint8_t func, enum place_mode mode, place_read_fn read, void *userdata,
                   struct place_result *ret)
{
        bool ex = func == TLSSNIFF_FUNC_SSL_READ_EX || func == TLSSNIFF_FUNC_SSL_WRITE_EX;
        struct place_result res = {};
        int nargs = ex ? 4 : 3;

        if (!ret || (!code && size > 0) || func == 0 || func >= _TLSSNIFF_FUNC_MAX)
                return -EINVAL;
        fill_fallback(&res, vaddr, ex, false);
        snprintf(res.reason, sizeof(res.reason), "fallback");
        if (mode == PLACE_MODE_FALLBACK)
                snprintf(res.reason, sizeof(res.reason), "fallback: requested");
        else if (machine != EM_X86_64)
                snprintf(res.reason, sizeof(res.reason),
                         "fallback: placement analysis covers x86-64 only");
        else if (size == 0)
                snprintf(res.reason, sizeof(res.reason), "fallback: function size unknown");
        else
                place_x86_64(code, size < PLACE_CODE_MAX ? size : PLACE_CODE_MAX, vaddr, ex, read,
                             userdata, &res);

        if (res.strategy != PLACE_CALL_SITE && res.strategy != PLACE_CALLEE) {
                /* Entry and uretprobe at the first instruction, C calling convention. */
                static const int x86_args[4] = { R_DI, R_SI, R_DX, R_CX };

                for (int a = 0; a < nargs; a++) {
                        if (machine == EM_X86_64)
                                loc_reg(&res.entry_loc[a], x86_args[a]);
                        else
                                loc_reg(&res.entry_loc[a], a); /* arm64: x0..x3 */
                }
                loc_reg(&res.return_loc[TLSSNIFF_ARG_RESULT], 0);
        }
        *ret = res;
        return 0;
}

/* The best location of argument a in state e (its stack pointer known for frame slots). */
static struct place_arg_loc arg_loc_in(const struct state *e, int64_t a)
{
        struct place_arg_loc best = { .loc = { .kind = TLSSNIFF_LOC_NONE } };
        bool sp_known = e->reg[R_SP].kind == V_STACK;

        for (int pass = 0; pass < 2; pass++) { /* whole values first, then low halves */
                bool narrow = pass == 1;

                for (int r = 0; r < NREGS; r++)
                        if (r != R_SP && e->reg[r].kind == V_ARG && e->reg[r].v == a &&
                            e->reg[r].narrow == narrow) {
                                loc_reg(&best.loc, r);
                                best.narrow = narrow;
                                return best;
                        }
                if (!sp_known)
                        continue;
                for (int i = 0; i < (narrow ? 2 * PLACE_SLOTS : PLACE_SLOTS); i++) {
                        const struct value *v = narrow ? &e->half[i] : &e->slot[i];
                        int64_t delta = narrow ? half_delta(e, i) : slot_delta(e, i);
                        int64_t off = delta - e->reg[R_SP].v;

                        if (v->kind != V_ARG || v->v != a || (!narrow && v->narrow) ||
                            off < 0 || off > INT16_MAX)
                                continue;
                        best.loc = (struct tlssniff_loc){ .kind = TLSSNIFF_LOC_STACK,
                                                          .off = (int16_t)off };
                        best.narrow = narrow;
                        return best;
                }
        }
        return best;
}

/*
 * Disassembles and analyses size bytes of x86-64 code at vaddr into c (c->copiers set before,
 * if any). Returns 0; -EOPNOTSUPP or -ENOMEM with *ret_why. ctx_done() either way.
 */
static int ctx_analyse(struct ctx *c, const uint8_t *code, size_t size, uint64_t vaddr,
                       const char **ret_why)
{
        int r;

        if (size > PLACE_CODE_MAX)
                size = PLACE_CODE_MAX;
        if (cs_open(CS_ARCH_X86, CS_MODE_64, &c->cs) != CS_ERR_OK) {
                *ret_why = "disassembler unavailable";
                return -EOPNOTSUPP;
        }
        cs_option(c->cs, CS_OPT_DETAIL, CS_OPT_ON);
        r = decode(c, code, size, vaddr);
        if (r < 0 || c->n == 0) {
                *ret_why = "the code does not decode";
                return r == -ENOMEM ? r : -EOPNOTSUPP;
        }
        if (analyse(c, -1) < 0) {
                *ret_why = c->fail;
                return -EOPNOTSUPP;
        }
        return 0;
}

int place_args_at(const uint8_t *code, size_t size, uint64_t vaddr, uint16_t machine, uint64_t at,
                  struct place_arg_loc ret[6], const char **ret_why)
{
        struct ctx c = {};
        int32_t i;
        int r = 0;

        *ret_why = NULL;
        if (!code || size == 0 || machine != EM_X86_64)
                return -EINVAL;
        r = ctx_analyse(&c, code, size, vaddr, ret_why);
        if (r < 0)
                goto out;
        i = find_insn(&c, at);
        if (i < 0 || !c.live[i]) {
                *ret_why = "not an instruction reached from the entry";
                r = -ENOENT;
                goto out;
        }
        for (int a = 0; a < 6; a++)
                ret[a] = arg_loc_in(&c.st[i], a);
out:
        ctx_done(&c);
        return r;
}

int place_copy_calls(const uint8_t *code, size_t size, uint64_t vaddr, uint16_t machine,
                     const uint64_t *callees, size_t n_callees, int dst_arg,
                     struct place_copy *ret, size_t max, size_t *ret_n, const char **ret_why)
{
        struct ctx c = {};
        int r = 0;

        *ret_why = NULL;
        *ret_n = 0;
        if (!code || size == 0 || machine != EM_X86_64 || dst_arg < 0 || dst_arg >= 6 ||
            (!callees && n_callees > 0) || (!ret && max > 0))
                return -EINVAL;
        c.copiers = callees;
        c.n_copiers = n_callees;
        r = ctx_analyse(&c, code, size, vaddr, ret_why);
        if (r < 0)
                goto out;
        for (size_t i = 0; i < c.n; i++) {
                const struct state *e = &c.st[i];
                bool hit = false;

                if (!c.live[i] || c.in[i].flow != FLOW_CALL)
                        continue;
                for (size_t k = 0; k < n_callees && !hit; k++)
                        hit = c.in[i].target_addr == callees[k];
                if (!hit || !is_pointer_arg(&e->reg[R_DI]) || e->reg[R_DI].v != dst_arg)
                        continue;
                if (*ret_n < max) {
                        struct place_copy *pc = &ret[*ret_n];

                        pc->call_addr = c.in[i].addr;
                        pc->emulated = c.in[i].emulated;
                        for (int a = 0; a < 6; a++)
                                pc->arg[a] = arg_loc_in(e, a);
                }
                (*ret_n)++;
        }
out:
        ctx_done(&c);
        return r;
}

/*
 * The stack pointer (entry sp + delta) after the function's prologue: its pushes and its
 * sub $N,%rsp on the straight line from the entry, up to the first branch or call.
 */
static int64_t prologue_sp(const uint8_t *code, size_t size, uint64_t vaddr)
{
        cs_insn *insn = NULL;
        int64_t sp = 0;
        size_t n;
        csh cs;

        if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK)
                return 0;
        cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
        n = cs_disasm(cs, code, size < 128 ? size : 128, vaddr, 24, &insn);
        for (size_t i = 0; i < n; i++) {
                const cs_x86 *x = &insn[i].detail->x86;

                if (cs_insn_group(cs, &insn[i], X86_GRP_JUMP) ||
                    cs_insn_group(cs, &insn[i], X86_GRP_CALL) ||
                    cs_insn_group(cs, &insn[i], X86_GRP_RET))
                        break;
                if (insn[i].id == X86_INS_PUSH)
                        sp -= 8;
                else if (insn[i].id == X86_INS_SUB && x->op_count == 2 &&
                         x->operands[0].type == X86_OP_REG &&
                         x->operands[0].reg == X86_REG_RSP && x->operands[1].type == X86_OP_IMM &&
                         x->operands[1].imm > 0 && x->operands[1].imm < (1 << 20))
                        sp -= x->operands[1].imm;
        }
        if (insn)
                cs_free(insn, n);
        cs_close(&cs);
        return sp;
}

int place_calls(const uint8_t *code, size_t size, uint64_t vaddr, uint16_t machine,
                struct place_call *ret, size_t max, size_t *ret_n, const char **ret_why)
{
        struct ctx c = {};
        int64_t low;
        size_t n = 0;
        int r;

        *ret_why = NULL;
        *ret_n = 0;
        if (!code || size == 0 || machine != EM_X86_64 || (!ret && max > 0))
                return -EINVAL;
        /*
         * The slots cover the top of the frame. A function whose prologue makes a frame larger
         * than that (local arrays) keeps its spills near its stack pointer, at the bottom: the
         * slots go there instead (either way the analysis is sound; it proves less elsewhere).
         */
        low = prologue_sp(code, size, vaddr);
        if (low < -8 * PLACE_SLOTS)
                c.slot_base = (low + 8 * PLACE_SLOTS) & ~7;
        r = ctx_analyse(&c, code, size, vaddr, ret_why);
        if (r == 0) {
                for (size_t i = 0; i < c.n; i++) {
                        const struct state *e = &c.st[i];
                        struct place_call *pc;

                        if (!c.live[i] || c.in[i].flow != FLOW_CALL)
                                continue;
                        if (n < max) {
                                pc = &ret[n];
                                pc->call_addr = c.in[i].addr;
                                pc->target = c.in[i].target_addr;
                                pc->emulated = c.in[i].emulated;
                                for (int a = 0; a < 6; a++) {
                                        const struct value *v = &e->reg[arg_regs[a]];

                                        pc->arg[a] = arg_loc_in(e, a);
                                        pc->passes[a] = v->kind == V_ARG ? (int8_t)v->v : -1;
                                        pc->passes_narrow[a] = v->kind == V_ARG && v->narrow;
                                }
                        }
                        n++;
                }
                *ret_n = n;
        }
        ctx_done(&c);
        return r;
}

int place_every_call(const uint8_t *code, size_t size, uint64_t vaddr, uint16_t machine, int arg,
                     uint64_t *ret_addr, struct tlssniff_loc *ret_loc)
{
        struct ctx c = {};
        const char *why = NULL;
        int r;

        *ret_addr = vaddr;
        *ret_loc = (struct tlssniff_loc){ .kind = TLSSNIFF_LOC_REG, .reg = (uint8_t)arg_regs[0] };
        if (!code || size == 0 || machine != EM_X86_64 || arg < 0 || arg >= 6)
                return -EINVAL;
        loc_reg(ret_loc, arg_regs[arg]);
        r = ctx_analyse(&c, code, size, vaddr, &why);
        if (r < 0)
                goto out;
        r = -ENOENT;
        /* Every call runs the straight line from the entry up to its first branch. */
        for (size_t i = 0; i < c.n && i < PLACE_WALK_MAX; i++) {
                const struct insn *in = &c.in[i];

                if ((i > 0 && (in->jump_target || in->addr != c.in[i - 1].addr + c.in[i - 1].size)) ||
                    !c.live[i])
                        break;
                if (in->emulated) {
                        struct place_arg_loc l = arg_loc_in(&c.st[i], arg);

                        if (l.loc.kind != TLSSNIFF_LOC_NONE && !l.narrow) {
                                *ret_addr = in->addr;
                                *ret_loc = l.loc;
                                r = 0;
                                break;
                        }
                }
                if (in->flow != FLOW_NEXT)
                        break;
        }
out:
        ctx_done(&c);
        return r;
}
