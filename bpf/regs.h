/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Register numbering shared by the probe plans and the BPF programs. Numbers follow the DWARF
 * register numbering of each architecture (x86-64: 0 rax, 1 rdx, 2 rcx, 3 rbx, 4 rsi, 5 rdi,
 * 6 rbp, 7 rsp, 8..15 r8..r15; arm64: 0..30 x0..x30, 31 sp) so that the analyzer can take
 * them straight from DWARF and Capstone. The inline reader is for BPF only.
 */
#pragma once

#define TLSSNIFF_REG_MAX 32

#ifdef __VMLINUX_H__
/*
 * Registers are read from a stack copy of pt_regs: the verifier refuses ctx accesses at a
 * computed offset, which is what a switch over register numbers compiles to.
 */
#if defined(__TARGET_ARCH_x86)
static __always_inline __u64 tlssniff_reg_read(const struct pt_regs *ctx, __u8 reg)
{
        switch (reg) {
        case 0: return ctx->ax;
        case 1: return ctx->dx;
        case 2: return ctx->cx;
        case 3: return ctx->bx;
        case 4: return ctx->si;
        case 5: return ctx->di;
        case 6: return ctx->bp;
        case 7: return ctx->sp;
        case 8: return ctx->r8;
        case 9: return ctx->r9;
        case 10: return ctx->r10;
        case 11: return ctx->r11;
        case 12: return ctx->r12;
        case 13: return ctx->r13;
        case 14: return ctx->r14;
        case 15: return ctx->r15;
        default: return 0;
        }
}

static __always_inline long tlssniff_syscall_nr(struct pt_regs *regs)
{
        return BPF_CORE_READ(regs, orig_ax);
}

/*
 * The registers a probe plan can name, copied from a uprobe's ctx by loads at constant offsets
 * (the verifier allows those): cheaper than bpf_probe_read_kernel of the whole pt_regs, which
 * every probe hit used to pay for.
 */
static __always_inline void tlssniff_regs_copy(struct pt_regs *dst, const struct pt_regs *ctx)
{
        dst->ax = ctx->ax;
        dst->dx = ctx->dx;
        dst->cx = ctx->cx;
        dst->bx = ctx->bx;
        dst->si = ctx->si;
        dst->di = ctx->di;
        dst->bp = ctx->bp;
        dst->sp = ctx->sp;
        dst->r8 = ctx->r8;
        dst->r9 = ctx->r9;
        dst->r10 = ctx->r10;
        dst->r11 = ctx->r11;
        dst->r12 = ctx->r12;
        dst->r13 = ctx->r13;
        dst->r14 = ctx->r14;
        dst->r15 = ctx->r15;
}
#elif defined(__TARGET_ARCH_arm64)
static __always_inline __u64 tlssniff_reg_read(const struct pt_regs *ctx, __u8 reg)
{
        const struct user_pt_regs *u = (const struct user_pt_regs *)ctx;

        if (reg < 31)
                return u->regs[reg & 31];
        if (reg == 31)
                return u->sp;
        return 0;
}

static __always_inline long tlssniff_syscall_nr(struct pt_regs *regs)
{
        return BPF_CORE_READ(regs, syscallno);
}

static __always_inline void tlssniff_regs_copy(struct pt_regs *dst, const struct pt_regs *ctx)
{
        struct user_pt_regs *d = (struct user_pt_regs *)dst;
        const struct user_pt_regs *u = (const struct user_pt_regs *)ctx;

        for (int i = 0; i < 31; i++)
                d->regs[i] = u->regs[i];
        d->sp = u->sp;
}
#endif
#endif
