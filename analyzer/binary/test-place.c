/*
 * Unit tests of the probe placement analysis: hand-written instruction sequences (assembled
 * with GNU as; the source is beside each one) that must be accepted at the right places or
 * rejected for the right reason, and the real libraries the integration tests trace.
 */
#include <assert.h>
#include <errno.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "binary/place.h"
#include "binary/tlslib.h"
#include "macro.h"

#define VADDR 0x401000u

static struct place_result place(const uint8_t *code, size_t size, uint8_t func)
{
        struct place_result r;

        assert(place_function(code, size, VADDR, EM_X86_64, func, PLACE_MODE_AUTO, NULL, NULL,
                              &r) == 0);
        printf("  %-9s %s\n", place_strategy_name(r.strategy), r.reason);
        return r;
}

static void expect_fallback(const char *name, const uint8_t *code, size_t size, uint8_t func,
                            const char *why)
{
        struct place_result r;

        printf("%s:\n", name);
        r = place(code, size, func);
        assert(r.strategy == PLACE_FALLBACK);
        assert(strstr(r.reason, why));
        /* Fallback: entry + uretprobe at the first instruction, C calling convention. */
        assert(r.entry_addr == VADDR && r.return_addr == VADDR && r.return_uretprobe);
        assert(r.entry_loc[TLSSNIFF_ARG_SSL].kind == TLSSNIFF_LOC_REG &&
               r.entry_loc[TLSSNIFF_ARG_SSL].reg == 5);
        assert(r.return_loc[TLSSNIFF_ARG_RESULT].kind == TLSSNIFF_LOC_REG &&
               r.return_loc[TLSSNIFF_ARG_RESULT].reg == 0);
}

static void expect_call_site(const char *name, const uint8_t *code, size_t size, uint8_t func,
                             uint64_t entry_off, uint64_t return_off)
{
        struct place_result r;

        printf("%s:\n", name);
        r = place(code, size, func);
        assert(r.strategy == PLACE_CALL_SITE);
        assert(r.entry_addr == VADDR + entry_off && r.return_addr == VADDR + return_off);
        assert(!r.return_uretprobe && r.entry_emulated);
        assert(code[entry_off] == 0xe8);
        assert(code[return_off] >= 0x70 && code[return_off] <= 0x7f);
        /* ssl rdi, buf rsi, num rdx, count pointer rcx at the call; result rax after it. */
        assert(r.entry_loc[TLSSNIFF_ARG_SSL].reg == 5 && r.entry_loc[TLSSNIFF_ARG_BUF].reg == 4 &&
               r.entry_loc[TLSSNIFF_ARG_NUM].reg == 1 && r.entry_loc[TLSSNIFF_ARG_OUTLEN].reg == 2);
        for (int a = 0; a < 4; a++)
                assert(r.entry_loc[a].kind == TLSSNIFF_LOC_REG);
        assert(r.return_loc[TLSSNIFF_ARG_RESULT].kind == TLSSNIFF_LOC_REG &&
               r.return_loc[TLSSNIFF_ARG_RESULT].reg == 0);
}

static void test_sequences(void)
{
        /*
         * sub $0x18,%rsp; test %edx,%edx; js 1f; mov %rsp,%rcx; movslq %edx,%rdx;
         * call internal; test %eax,%eax; jle 2f; mov (%rsp),%eax; 2: add $0x18,%rsp; ret;
         * 1: call ERR; mov $-1,%eax; jmp 2b        (Debian's libssl3 SSL_read, simplified)
         */
        static const uint8_t ok_read[] = {
                0x48, 0x83, 0xec, 0x18, 0x85, 0xd2, 0x78, 0x17, 0x48, 0x89, 0xe1, 0x48,
                0x63, 0xd2, 0xe8, 0x00, 0x00, 0x00, 0x00, 0x85, 0xc0, 0x7e, 0x03, 0x8b,
                0x04, 0x24, 0x48, 0x83, 0xc4, 0x18, 0xc3, 0xe8, 0x00, 0x00, 0x00, 0x00,
                0xb8, 0xff, 0xff, 0xff, 0xff, 0xeb, 0xef,
        };
        /*
         * ssl spilled to the frame, rdi clobbered, a push moves the stack, ssl reloaded from
         * its slot at the moved offset: sub $0x18,%rsp; mov %rdi,0x8(%rsp); xor %edi,%edi;
         * push %rbx; mov 0x10(%rsp),%rdi; lea 0x8(%rsp),%rcx; call internal; test %eax,%eax;
         * jle 2f; mov 0x8(%rsp),%eax; 2: pop %rbx; add $0x18,%rsp; ret
         */
        static const uint8_t spill_push[] = {
                0x48, 0x83, 0xec, 0x18, 0x48, 0x89, 0x7c, 0x24, 0x08, 0x31, 0xff, 0x53,
                0x48, 0x8b, 0x7c, 0x24, 0x10, 0x48, 0x8d, 0x4c, 0x24, 0x08, 0xe8, 0x00,
                0x00, 0x00, 0x00, 0x85, 0xc0, 0x7e, 0x04, 0x8b, 0x44, 0x24, 0x08, 0x5b,
                0x48, 0x83, 0xc4, 0x18, 0xc3,
        };
        /* The same with a stack adjustment by an unknown amount (sub %rax,%rsp) before the
         * reload: the slot cannot be found any more. */
        static const uint8_t spill_unknown[] = {
                0x48, 0x83, 0xec, 0x18, 0x48, 0x89, 0x7c, 0x24, 0x08, 0x48, 0x29, 0xc4,
                0x48, 0x8b, 0x7c, 0x24, 0x08, 0x48, 0x89, 0xe1, 0xe8, 0x00, 0x00, 0x00,
                0x00, 0x85, 0xc0, 0x7e, 0x03, 0x8b, 0x04, 0x24, 0x48, 0x83, 0xc4, 0x18,
                0xc3,
        };
        /* buf's register clobbered before the call: xor %esi,%esi */
        static const uint8_t clobber[] = {
                0x48, 0x83, 0xec, 0x18, 0x48, 0x89, 0xe1, 0x31, 0xf6, 0xe8, 0x00, 0x00,
                0x00, 0x00, 0x85, 0xc0, 0x7e, 0x03, 0x8b, 0x04, 0x24, 0x48, 0x83, 0xc4,
                0x18, 0xc3,
        };
        /* A path that skips the candidate and returns another call's result:
         * js 1f ... 1: call other; jmp 2b */
        static const uint8_t skip[] = {
                0x48, 0x83, 0xec, 0x18, 0x85, 0xd2, 0x78, 0x14, 0x48, 0x89, 0xe1, 0xe8,
                0x00, 0x00, 0x00, 0x00, 0x85, 0xc0, 0x7e, 0x03, 0x8b, 0x04, 0x24, 0x48,
                0x83, 0xc4, 0x18, 0xc3, 0xe8, 0x00, 0x00, 0x00, 0x00, 0xeb, 0xf4,
        };
        /* The candidate inside a loop, the arguments kept in callee-saved registers:
         * mov %rdi,%rbx; mov %rsi,%rbp; mov %rdx,%r12;
         * 3: mov %rbx,%rdi; mov %rbp,%rsi; mov %r12,%rdx; mov %rsp,%rcx; call; test; jle 3b */
        static const uint8_t loop[] = {
                0x48, 0x83, 0xec, 0x18, 0x48, 0x89, 0xfb, 0x48, 0x89, 0xf5, 0x49, 0x89,
                0xd4, 0x48, 0x89, 0xdf, 0x48, 0x89, 0xee, 0x4c, 0x89, 0xe2, 0x48, 0x89,
                0xe1, 0xe8, 0x00, 0x00, 0x00, 0x00, 0x85, 0xc0, 0x7e, 0xeb, 0x8b, 0x04,
                0x24, 0x48, 0x83, 0xc4, 0x18, 0xc3,
        };
        /* The error path joins at the jle after the call (as OpenSSL 1.1.1 does) */
        static const uint8_t join[] = {
                0x48, 0x83, 0xec, 0x18, 0x85, 0xd2, 0x78, 0x14, 0x48, 0x89, 0xe1, 0xe8,
                0x00, 0x00, 0x00, 0x00, 0x85, 0xc0, 0x7e, 0x03, 0x8b, 0x04, 0x24, 0x48,
                0x83, 0xc4, 0x18, 0xc3, 0xb8, 0xff, 0xff, 0xff, 0xff, 0x85, 0xc0, 0xeb,
                0xed,
        };
        /* SSL_read_ex: sub $8,%rsp; call; xor %edx,%edx; test; cmovs %edx,%eax; add; ret */
        static const uint8_t ex[] = {
                0x48, 0x83, 0xec, 0x08, 0xe8, 0x00, 0x00, 0x00, 0x00, 0x31, 0xd2, 0x85,
                0xc0, 0x0f, 0x48, 0xc2, 0x48, 0x83, 0xc4, 0x08, 0xc3,
        };
        /* push %rbx first: the entry itself is emulated */
        static const uint8_t entry_push[] = { 0x53, 0x48, 0x89, 0xfb, 0xe8, 0x00, 0x00,
                                              0x00, 0x00, 0x5b, 0xc3 };
        /* A path that avoids the call leaves by a tail jump: 1: add $0x18,%rsp; jmp other */
        static const uint8_t tail[] = {
                0x48, 0x83, 0xec, 0x18, 0x85, 0xd2, 0x78, 0x14, 0x48, 0x89, 0xe1, 0xe8,
                0x00, 0x00, 0x00, 0x00, 0x85, 0xc0, 0x7e, 0x03, 0x8b, 0x04, 0x24, 0x48,
                0x83, 0xc4, 0x18, 0xc3, 0x48, 0x83, 0xc4, 0x18, 0xe9, 0x00, 0x00, 0x00,
                0x00,
        };
        /* An indirect jump (jmp *%rax) anywhere: paths cannot be enumerated */
        static const uint8_t indirect[] = { 0x48, 0x83, 0xec, 0x18, 0xff, 0xe0 };
        struct place_result r;

        expect_call_site("ok_read", ok_read, sizeof(ok_read), TLSSNIFF_FUNC_SSL_READ, 0xe, 0x15);
        expect_call_site("ok_write", ok_read, sizeof(ok_read), TLSSNIFF_FUNC_SSL_WRITE, 0xe, 0x15);
        expect_call_site("spill_push", spill_push, sizeof(spill_push), TLSSNIFF_FUNC_SSL_READ,
                         0x16, 0x1d);
        expect_fallback("spill_unknown", spill_unknown, sizeof(spill_unknown),
                        TLSSNIFF_FUNC_SSL_READ, "does not receive ssl, buf and num");
        expect_fallback("clobber", clobber, sizeof(clobber), TLSSNIFF_FUNC_SSL_READ,
                        "does not receive ssl, buf and num");
        expect_fallback("skip", skip, sizeof(skip), TLSSNIFF_FUNC_SSL_READ,
                        "avoids the call returns a value that is not an error");
        expect_fallback("loop", loop, sizeof(loop), TLSSNIFF_FUNC_SSL_READ, "inside a loop");
        expect_fallback("join", join, sizeof(join), TLSSNIFF_FUNC_SSL_READ, "another path joins");
        expect_fallback("ex", ex, sizeof(ex), TLSSNIFF_FUNC_SSL_READ_EX,
                        "result is overwritten");
        expect_fallback("tail", tail, sizeof(tail), TLSSNIFF_FUNC_SSL_READ, "leaves by a jump");
        expect_fallback("indirect", indirect, sizeof(indirect), TLSSNIFF_FUNC_SSL_READ,
                        "indirect jump");
        /* The _ex form needs the caller's own count pointer in rcx, not a frame slot. */
        expect_fallback("ok_read as _ex", ok_read, sizeof(ok_read), TLSSNIFF_FUNC_SSL_READ_EX,
                        "caller's count pointer");
        /* A truncated function: the jump targets fall outside, nothing is proven. */
        expect_fallback("truncated", ok_read, 20, TLSSNIFF_FUNC_SSL_READ, "not analysable");

        printf("entry_push:\n");
        r = place(entry_push, sizeof(entry_push), TLSSNIFF_FUNC_SSL_WRITE);
        assert(r.strategy == PLACE_ENTRY && r.entry_addr == VADDR && r.return_uretprobe &&
               r.entry_emulated);

        /* Fallback on request, and for another architecture. */
        assert(place_function(ok_read, sizeof(ok_read), VADDR, EM_X86_64, TLSSNIFF_FUNC_SSL_READ,
                              PLACE_MODE_FALLBACK, NULL, NULL, &r) == 0);
        assert(r.strategy == PLACE_FALLBACK && strstr(r.reason, "requested"));
        assert(place_function(ok_read, sizeof(ok_read), VADDR, EM_AARCH64, TLSSNIFF_FUNC_SSL_READ,
                              PLACE_MODE_AUTO, NULL, NULL, &r) == 0);
        assert(r.strategy == PLACE_FALLBACK && r.entry_loc[TLSSNIFF_ARG_SSL].reg == 0);
        assert(place_function(ok_read, 0, VADDR, EM_X86_64, TLSSNIFF_FUNC_SSL_READ,
                              PLACE_MODE_AUTO, NULL, NULL, &r) == 0);
        assert(r.strategy == PLACE_FALLBACK && strstr(r.reason, "size unknown"));
        assert(place_function(ok_read, sizeof(ok_read), VADDR, EM_X86_64, 0, PLACE_MODE_AUTO, NULL,
                              NULL, &r) == -EINVAL);
}

/* A fake file for the read callback: the function at VADDR and a callee at VADDR + 0x1000. */
struct fake_code {
        const uint8_t *callee;
        size_t callee_size;
};

static ssize_t fake_read(void *userdata, uint64_t vaddr, void *buf, size_t size)
{
        const struct fake_code *f = userdata;

        if (vaddr != VADDR + 0x1000)
                return -ENOENT;
        if (size > f->callee_size)
                size = f->callee_size;
        memcpy(buf, f->callee, size);
        return (ssize_t)size;
}

/*
 * The callee strategy: ok_read with its call aimed at VADDR + 0x1000. A callee that starts
 * with push %rbx gets the probes (entry + uretprobe, _ex form); one that starts with
 * sub $8,%rsp does not, and the call site is used instead. Still every other proof applies:
 * the "skip" sequence stays fallback even with an emulated callee.
 */
static void test_callee(void)
{
        static const uint8_t push_callee[] = { 0x53, 0x5b, 0xc3 };
        static const uint8_t sub_callee[] = { 0x48, 0x83, 0xec, 0x08, 0xc3 };
        uint8_t code[43] = {
                0x48, 0x83, 0xec, 0x18, 0x85, 0xd2, 0x78, 0x17, 0x48, 0x89, 0xe1, 0x48,
                0x63, 0xd2, 0xe8, 0xed, 0x0f, 0x00, 0x00, 0x85, 0xc0, 0x7e, 0x03, 0x8b,
                0x04, 0x24, 0x48, 0x83, 0xc4, 0x18, 0xc3, 0xe8, 0x00, 0x00, 0x00, 0x00,
                0xb8, 0xff, 0xff, 0xff, 0xff, 0xeb, 0xef,
        };
        uint8_t skip[35] = {
                0x48, 0x83, 0xec, 0x18, 0x85, 0xd2, 0x78, 0x14, 0x48, 0x89, 0xe1, 0xe8,
                0xeb, 0x0f, 0x00, 0x00, 0x85, 0xc0, 0x7e, 0x03, 0x8b, 0x04, 0x24, 0x48,
                0x83, 0xc4, 0x18, 0xc3, 0xe8, 0x00, 0x00, 0x00, 0x00, 0xeb, 0xf4,
        };
        /* sub $0x18,%rsp; mov %rsp,%rcx; call (+0x1000) */
        static const uint8_t last[12] = {
                0x48, 0x83, 0xec, 0x18, 0x48, 0x89, 0xe1, 0xe8, 0xf4, 0x0f, 0x00, 0x00,
        };
        struct fake_code fc = { push_callee, sizeof(push_callee) };
        struct place_result r;

        printf("callee (push):\n");
        assert(place_function(code, sizeof(code), VADDR, EM_X86_64, TLSSNIFF_FUNC_SSL_READ,
                              PLACE_MODE_AUTO, fake_read, &fc, &r) == 0);
        printf("  %s\n", r.reason);
        assert(r.strategy == PLACE_CALLEE && r.entry_addr == VADDR + 0x1000 &&
               r.return_addr == VADDR + 0x1000 && r.return_uretprobe);
        assert(r.entry_loc[TLSSNIFF_ARG_OUTLEN].kind == TLSSNIFF_LOC_REG &&
               r.entry_loc[TLSSNIFF_ARG_OUTLEN].reg == 2);

        printf("callee (sub):\n");
        fc = (struct fake_code){ sub_callee, sizeof(sub_callee) };
        assert(place_function(code, sizeof(code), VADDR, EM_X86_64, TLSSNIFF_FUNC_SSL_READ,
                              PLACE_MODE_AUTO, fake_read, &fc, &r) == 0);
        printf("  %s\n", r.reason);
        assert(r.strategy == PLACE_CALL_SITE && r.entry_addr == VADDR + 0xe);

        /* The call ends the code (found by fuzz-tlslib: the loop check read past the end). */
        printf("callee, call is the last instruction:\n");
        fc = (struct fake_code){ push_callee, sizeof(push_callee) };
        assert(place_function(last, sizeof(last), VADDR, EM_X86_64, TLSSNIFF_FUNC_SSL_READ,
                              PLACE_MODE_AUTO, fake_read, &fc, &r) == 0);
        printf("  %s\n", r.reason);
        assert(r.strategy == PLACE_CALLEE && r.entry_addr == VADDR + 0x1000);

        printf("callee, path that skips the call:\n");
        fc = (struct fake_code){ push_callee, sizeof(push_callee) };
        assert(place_function(skip, sizeof(skip), VADDR, EM_X86_64, TLSSNIFF_FUNC_SSL_READ,
                              PLACE_MODE_AUTO, fake_read, &fc, &r) == 0);
        printf("  %s\n", r.reason);
        assert(r.strategy == PLACE_FALLBACK && strstr(r.reason, "not an error"));
}

/* Garbage and every truncation of a real sequence: an answer, never a crash. */
static void expect_arg(const struct place_arg_loc *l, int a, uint8_t kind, int reg_or_off,
                       bool narrow)
{
        printf("  arg%d: kind %u reg %u off %d%s\n", a, l->loc.kind, l->loc.reg, l->loc.off,
               l->narrow ? " (low 32 bits)" : "");
        assert(l->loc.kind == kind);
        if (kind == TLSSNIFF_LOC_REG)
                assert(l->loc.reg == reg_or_off && l->narrow == narrow);
        else if (kind == TLSSNIFF_LOC_STACK)
                assert(l->loc.off == reg_or_off && l->narrow == narrow);
}

/*
 * place_args_at on the shape of OpenSSL 3.0's ssl3_read_bytes(s, type, recvd_type, buf, len,
 * peek, readbytes) as Debian builds it: s kept in r13, then spilled to the frame when r13 is
 * reused; type and peek stored with 32-bit moves into the two halves of one word; the copy
 * to the caller (a call) in a loop:
 *   push %r15; push %r14; push %r13; mov %rdi,%r13; push %r12; mov %rcx,%r12; push %rbp;
 *   push %rbx; sub $0x48,%rsp; mov %esi,0x4(%rsp); mov %r8,0x8(%rsp); mov %r9d,(%rsp);
 *   movl $0x0,0x18(%rsp); cmpl $0x17,0x4(%rsp); jne 2f; mov %r13,0x28(%rsp); mov %rbx,%r13;
 *   xor %r15d,%r15d; 1: mov 0x8(%r13),%rdx; mov 0x18(%r13),%rsi; mov %r12,%rdi;
 *   call (+0x46); mov (%rsp),%r9d; test %r9d,%r9d; jne 1b; 2: add $0x48,%rsp; pop ...; ret
 */
static void test_args_at(void)
{
        static const uint8_t spill[] = {
                0x41, 0x57, 0x41, 0x56, 0x41, 0x55, 0x49, 0x89, 0xfd, 0x41, 0x54, 0x49,
                0x89, 0xcc, 0x55, 0x53, 0x48, 0x83, 0xec, 0x48, 0x89, 0x74, 0x24, 0x04,
                0x4c, 0x89, 0x44, 0x24, 0x08, 0x44, 0x89, 0x0c, 0x24, 0xc7, 0x44, 0x24,
                0x18, 0x00, 0x00, 0x00, 0x00, 0x83, 0x7c, 0x24, 0x04, 0x17, 0x75, 0x24,
                0x4c, 0x89, 0x6c, 0x24, 0x28, 0x49, 0x89, 0xdd, 0x45, 0x31, 0xff, 0x49,
                0x8b, 0x55, 0x08, 0x49, 0x8b, 0x75, 0x18, 0x4c, 0x89, 0xe7, 0xe8, 0x00,
                0x00, 0x00, 0x00, 0x44, 0x8b, 0x0c, 0x24, 0x45, 0x85, 0xc9, 0x75, 0xe7,
                0x48, 0x83, 0xc4, 0x48, 0x5b, 0x5d, 0x41, 0x5c, 0x41, 0x5d, 0x41, 0x5e,
                0x41, 0x5f, 0xc3,
        };
        /* The same with a frame address handed to a call (lea 0x30(%rsp),%rdx; call) after
         * the stores: the callee (and every later one) may write the frame from there up. */
        static uint8_t escaped[] = {
                0x41, 0x57, 0x41, 0x56, 0x41, 0x55, 0x49, 0x89, 0xfd, 0x41, 0x54, 0x49,
                0x89, 0xcc, 0x55, 0x53, 0x48, 0x83, 0xec, 0x48, 0x89, 0x74, 0x24, 0x04,
                0x4c, 0x89, 0x44, 0x24, 0x08, 0x44, 0x89, 0x0c, 0x24, 0xc7, 0x44, 0x24,
                0x18, 0x00, 0x00, 0x00, 0x00, 0x48, 0x8d, 0x54, 0x24, 0x30, 0xe8, 0x00,
                0x00, 0x00, 0x00, 0x83, 0x7c, 0x24, 0x04, 0x17, 0x75, 0x24, 0x4c, 0x89,
                0x6c, 0x24, 0x28, 0x49, 0x89, 0xdd, 0x45, 0x31, 0xff, 0x49, 0x8b, 0x55,
                0x08, 0x49, 0x8b, 0x75, 0x18, 0x4c, 0x89, 0xe7, 0xe8, 0x00, 0x00, 0x00,
                0x00, 0x44, 0x8b, 0x0c, 0x24, 0x45, 0x85, 0xc9, 0x75, 0xe7, 0x48, 0x83,
                0xc4, 0x48, 0x5b, 0x5d, 0x41, 0x5c, 0x41, 0x5d, 0x41, 0x5e, 0x41, 0x5f,
                0xc3,
        };
        /* The first one with movb $0,0x5(%rsp) after the spill: one byte of type changed. */
        static const uint8_t clobbered_byte[] = {
                0x41, 0x57, 0x41, 0x56, 0x41, 0x55, 0x49, 0x89, 0xfd, 0x41, 0x54, 0x49,
                0x89, 0xcc, 0x55, 0x53, 0x48, 0x83, 0xec, 0x48, 0x89, 0x74, 0x24, 0x04,
                0x4c, 0x89, 0x44, 0x24, 0x08, 0x44, 0x89, 0x0c, 0x24, 0xc7, 0x44, 0x24,
                0x18, 0x00, 0x00, 0x00, 0x00, 0x83, 0x7c, 0x24, 0x04, 0x17, 0x75, 0x29,
                0x4c, 0x89, 0x6c, 0x24, 0x28, 0xc6, 0x44, 0x24, 0x05, 0x00, 0x49, 0x89,
                0xdd, 0x45, 0x31, 0xff, 0x49, 0x8b, 0x55, 0x08, 0x49, 0x8b, 0x75, 0x18,
                0x4c, 0x89, 0xe7, 0xe8, 0x00, 0x00, 0x00, 0x00, 0x44, 0x8b, 0x0c, 0x24,
                0x45, 0x85, 0xc9, 0x75, 0xe7, 0x48, 0x83, 0xc4, 0x48, 0x5b, 0x5d, 0x41,
                0x5c, 0x41, 0x5d, 0x41, 0x5e, 0x41, 0x5f, 0xc3,
        };
        struct place_arg_loc l[6];
        const char *why;

        printf("args at the copy call:\n");
        assert(spill[0x46] == 0xe8);
        assert(place_args_at(spill, sizeof(spill), VADDR, EM_X86_64, VADDR + 0x46, l, &why) == 0);
        expect_arg(&l[0], 0, TLSSNIFF_LOC_STACK, 0x28, false); /* s: spilled, r13 reused */
        expect_arg(&l[1], 1, TLSSNIFF_LOC_STACK, 0x4, true);   /* type: 32-bit store */
        expect_arg(&l[2], 2, TLSSNIFF_LOC_NONE, 0, false);     /* recvd_type: rdx reused */
        expect_arg(&l[3], 3, TLSSNIFF_LOC_REG, 5, false); /* buf: rdi (and r12), the copy's dest */
        expect_arg(&l[4], 4, TLSSNIFF_LOC_STACK, 0x8, false);  /* len */
        /* peek: r9 holds it whole on the first pass and its low half after the loop's reload,
         * so only the frame's half is the same on every path. */
        expect_arg(&l[5], 5, TLSSNIFF_LOC_STACK, 0x0, true);
        /* Not an instruction boundary, and past the end. */
        assert(place_args_at(spill, sizeof(spill), VADDR, EM_X86_64, VADDR + 0x47, l, &why) ==
               -ENOENT);
        assert(place_args_at(spill, sizeof(spill), VADDR, EM_X86_64, VADDR + 0x1000, l, &why) ==
               -ENOENT);
        assert(place_args_at(spill, sizeof(spill), VADDR, EM_AARCH64, VADDR, l, &why) == -EINVAL);

        printf("args at the copy call, frame address above them handed out:\n");
        assert(escaped[0x50] == 0xe8 && escaped[0x2d] == 0x30);
        assert(place_args_at(escaped, sizeof(escaped), VADDR, EM_X86_64, VADDR + 0x50, l, &why) ==
               0);
        expect_arg(&l[0], 0, TLSSNIFF_LOC_STACK, 0x28, false); /* below sp+0x30: kept */
        expect_arg(&l[1], 1, TLSSNIFF_LOC_STACK, 0x4, true);
        expect_arg(&l[3], 3, TLSSNIFF_LOC_REG, 5, false); /* registers are not in the frame */
        expect_arg(&l[5], 5, TLSSNIFF_LOC_STACK, 0x0, true);

        printf("args at the copy call, the address of type handed out:\n");
        escaped[0x2d] = 0x04; /* lea 0x4(%rsp),%rdx */
        assert(place_args_at(escaped, sizeof(escaped), VADDR, EM_X86_64, VADDR + 0x50, l, &why) ==
               0);
        expect_arg(&l[0], 0, TLSSNIFF_LOC_NONE, 0, false); /* stored above it, lost at a call */
        expect_arg(&l[1], 1, TLSSNIFF_LOC_NONE, 0, false);
        expect_arg(&l[3], 3, TLSSNIFF_LOC_REG, 5, false);
        expect_arg(&l[5], 5, TLSSNIFF_LOC_STACK, 0x0, true); /* below it */
        escaped[0x2d] = 0x30;

        /*
         * The copy's destination: rdi is r12, which holds buf (argument 3) from the entry on
         * every path; it is not derived from s (argument 0). The call (e8 00000000) calls the
         * next instruction, standing for memcpy here.
         */
        {
                const uint64_t memcpy_at = VADDR + 0x4b;
                struct place_copy pc[2];
                size_t n = 9;

                assert(place_copy_calls(spill, sizeof(spill), VADDR, EM_X86_64, &memcpy_at, 1, 3,
                                        pc, 2, &n, &why) == 0);
                assert(n == 1 && pc[0].call_addr == VADDR + 0x46 && pc[0].emulated);
                assert(pc[0].arg[1].loc.kind == TLSSNIFF_LOC_STACK && pc[0].arg[1].narrow);
                assert(place_copy_calls(spill, sizeof(spill), VADDR, EM_X86_64, &memcpy_at, 1, 0,
                                        pc, 2, &n, &why) == 0 && n == 0);
                /* Another callee: not a copy. */
                assert(place_copy_calls(spill, sizeof(spill), VADDR, EM_X86_64, &memcpy_at - 0, 0,
                                        3, pc, 2, &n, &why) == 0 && n == 0);
        }

        printf("args at the copy call, one byte of type overwritten:\n");
        assert(clobbered_byte[0x4b] == 0xe8);
        assert(place_args_at(clobbered_byte, sizeof(clobbered_byte), VADDR, EM_X86_64,
                             VADDR + 0x4b, l, &why) == 0);
        expect_arg(&l[0], 0, TLSSNIFF_LOC_STACK, 0x28, false);
        expect_arg(&l[1], 1, TLSSNIFF_LOC_NONE, 0, false);
        expect_arg(&l[5], 5, TLSSNIFF_LOC_STACK, 0x0, true);
}

/*
 * place_calls: what each argument register holds at a call (a copy routine passes its own
 * source and length on to memcpy), and the slots at the bottom of a large frame.
 */
static void test_calls(void)
{
        /* push rbp; push rbx; sub $0x18,%rsp; mov %rdx,%rbx; mov %rsi,%rbp; mov %rsp,%rdx;
         * mov %rbx,%rsi; call alloc; mov (%rsp),%rdi; mov %rbx,%rdx; mov %rbp,%rsi;
         * call memcpy; add $0x18,%rsp; pop rbx; pop rbp; ret (WPACKET_memcpy's shape) */
        static uint8_t copier[] = {
                0x55, 0x53, 0x48, 0x83, 0xec, 0x18, 0x48, 0x89, 0xd3, 0x48, 0x89, 0xf5,
                0x48, 0x89, 0xe2, 0x48, 0x89, 0xde, 0xe8, 0x00, 0x00, 0x00, 0x00, 0x48,
                0x8b, 0x3c, 0x24, 0x48, 0x89, 0xda, 0x48, 0x89, 0xee, 0xe8, 0x00, 0x00,
                0x00, 0x00, 0x48, 0x83, 0xc4, 0x18, 0x5b, 0x5d, 0xc3,
        };
        /* push r14; mov %rdi,%r14; sub $0x1000,%rsp; mov %esi,0x30(%rsp);
         * lea 0x200(%rsp),%rdi; mov $0x40,%ecx; xor %eax,%eax; rep stos; call f;
         * mov %r14,%rdi; call g; add $0x1000,%rsp; pop r14; ret */
        static uint8_t big[] = {
                0x41, 0x56, 0x49, 0x89, 0xfe, 0x48, 0x81, 0xec, 0x00, 0x10, 0x00, 0x00,
                0x89, 0x74, 0x24, 0x30, 0x48, 0x8d, 0xbc, 0x24, 0x00, 0x02, 0x00, 0x00,
                0xb9, 0x40, 0x00, 0x00, 0x00, 0x31, 0xc0, 0xf3, 0x48, 0xab, 0xe8, 0x00,
                0x00, 0x00, 0x00, 0x4c, 0x89, 0xf7, 0xe8, 0x00, 0x00, 0x00, 0x00, 0x48,
                0x81, 0xc4, 0x00, 0x10, 0x00, 0x00, 0x41, 0x5e, 0xc3,
        };
        struct place_call pc[4];
        const char *why;
        size_t n = 0;

        printf("calls of a copy routine:\n");
        assert(place_calls(copier, sizeof(copier), VADDR, EM_X86_64, pc, 4, &n, &why) == 0);
        assert(n == 2 && pc[1].call_addr == VADDR + 0x21 && pc[1].target == VADDR + 0x26);
        /* memcpy(dest, src, len): its rsi and rdx are the routine's own, whole */
        assert(pc[1].passes[1] == 1 && !pc[1].passes_narrow[1]);
        assert(pc[1].passes[2] == 2 && !pc[1].passes_narrow[2]);
        assert(pc[1].passes[0] == -1); /* the allocated destination */
        /* the first call gets (pkt, len, &dest) */
        assert(pc[0].passes[0] == 0 && pc[0].passes[1] == 2 && pc[0].passes[2] == -1);
        /* mov %rbx,%rsi instead of mov %rbp,%rsi: the length, not the source */
        copier[0x20] = 0xde;
        assert(place_calls(copier, sizeof(copier), VADDR, EM_X86_64, pc, 4, &n, &why) == 0);
        assert(n == 2 && pc[1].passes[1] == 2);
        copier[0x20] = 0xee;
        /* max 1: counted, not filled past it */
        assert(place_calls(copier, sizeof(copier), VADDR, EM_X86_64, pc, 1, &n, &why) == 0 &&
               n == 2);

        printf("calls in a 4 KiB frame:\n");
        assert(place_calls(big, sizeof(big), VADDR, EM_X86_64, pc, 4, &n, &why) == 0);
        assert(n == 2 && pc[1].call_addr == VADDR + 0x2a);
        /* s in rdi (and r14); type spilled 0x30 above the stack pointer, 4 KiB below the
         * entry's: seen with the slots at the bottom of the frame its prologue makes, past a
         * rep stos that clears a local array above it */
        expect_arg(&pc[1].arg[0], 0, TLSSNIFF_LOC_REG, 5, false);
        expect_arg(&pc[1].arg[1], 1, TLSSNIFF_LOC_STACK, 0x30, true);
        assert(pc[1].passes[0] == 0 && !pc[1].passes_narrow[0]);
        /* the array at sp+0x10 instead: cleared over type */
        big[0x14] = 0x10;
        big[0x15] = 0x00;
        assert(place_calls(big, sizeof(big), VADDR, EM_X86_64, pc, 4, &n, &why) == 0 && n == 2);
        expect_arg(&pc[1].arg[1], 1, TLSSNIFF_LOC_NONE, 0, false);
        expect_arg(&pc[1].arg[0], 0, TLSSNIFF_LOC_REG, 5, false);
        big[0x14] = 0x00;
        big[0x15] = 0x02;
        /* std; nop instead of xor %eax,%eax: the direction flag set, not analysed */
        big[0x1d] = 0xfd;
        big[0x1e] = 0x90;
        assert(place_calls(big, sizeof(big), VADDR, EM_X86_64, pc, 4, &n, &why) == -EOPNOTSUPP &&
               strstr(why, "direction flag"));
        big[0x1d] = 0x31;
        big[0x1e] = 0xc0;
        assert(place_calls(big, 0, VADDR, EM_X86_64, pc, 4, &n, &why) == -EINVAL);
        assert(place_calls(big, sizeof(big), VADDR, EM_X86_64, NULL, 4, &n, &why) == -EINVAL);
}

static void test_garbage(void)
{
        uint8_t buf[512];
        struct place_result r;

        srand(7);
        for (int round = 0; round < 2000; round++) {
                size_t n = (size_t)(rand() % (int)sizeof(buf)) + 1;

                for (size_t i = 0; i < n; i++)
                        buf[i] = (uint8_t)rand();
                assert(place_function(buf, n, VADDR, EM_X86_64, TLSSNIFF_FUNC_SSL_READ,
                                      PLACE_MODE_AUTO, NULL, NULL, &r) == 0);
                assert(r.strategy != PLACE_CALL_SITE || (r.entry_addr >= VADDR &&
                                                          r.return_addr < VADDR + n));
        }
}

static int plan_of(const char *path, struct msg_plan *plan, struct tlslib_details *d)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return -1;
        assert(tlslib_plan(fd, PLACE_MODE_AUTO, plan, d) == 0);
        close(fd);
        printf("%s: %s\n", path, plan->reason);
        for (int i = 0; i < 5; i++)
                if (d->function[i][0])
                        printf("  %s\n", d->function[i]);
        return 0;
}

static const struct msg_probe *probe_of(const struct msg_plan *p, uint8_t func, uint8_t kind)
{
        for (uint32_t i = 0; i < p->n_probes; i++)
                if (p->probes[i].func == func && p->probes[i].kind == kind)
                        return &p->probes[i];
        return NULL;
}

static uint8_t byte_at(const char *path, uint64_t off)
{
        uint8_t b = 0;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        assert(fd >= 0);
        assert(pread(fd, &b, 1, (off_t)off) == 1);
        close(fd);
        return b;
}

/* Address and size of an exported function, from .dynsym. */
static bool dynsym(const char *path, const char *name, uint64_t *ret_addr, uint64_t *ret_size)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        Elf_Scn *scn = NULL;
        bool found = false;
        Elf *elf;

        assert(fd >= 0);
        elf_version(EV_CURRENT);
        elf = elf_begin(fd, ELF_C_READ, NULL);
        assert(elf);
        while (!found && (scn = elf_nextscn(elf, scn))) {
                GElf_Shdr sh;
                Elf_Data *data;

                if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM)
                        continue;
                data = elf_getdata(scn, NULL);
                for (size_t i = 0; data && i < sh.sh_size / sh.sh_entsize; i++) {
                        GElf_Sym sym;
                        const char *n;

                        if (!gelf_getsym(data, (int)i, &sym))
                                break;
                        n = elf_strptr(elf, sh.sh_link, sym.st_name);
                        if (n && strcmp(n, name) == 0 && sym.st_value) {
                                *ret_addr = sym.st_value;
                                *ret_size = sym.st_size;
                                found = true;
                                break;
                        }
                }
        }
        elf_end(elf);
        close(fd);
        return found;
}

/*
 * The real libraries. Debian 12's libssl3 and bullseye's OpenSSL 1.1.1 (fetched by
 * tools/bootstrap.sh --tests): all four functions are served by probes on the two internal
 * functions (which start with push); the call-site analysis alone, without a look at the
 * callee, places libssl3's SSL_read/SSL_write on the call and the jle after it, keeps the
 * fallback for its _ex functions (their result is rewritten right after the call) and for
 * 1.1.1 (its error path joins after the call). node: every function starts with push %rbp.
 */
/*
 * The relocations of path: the addend of the R_X86_64_RELATIVE one at r_offset `at` (a pointer
 * in a table), or with jump_slot_of set, the r_offset (GOT slot) of the R_X86_64_JUMP_SLOT of
 * that symbol. Returns 0 when there is none.
 */
static uint64_t reloc_of(const char *path, uint64_t at, const char *jump_slot_of)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        Elf_Scn *scn = NULL;
        uint64_t found = 0;
        Elf *elf;

        assert(fd >= 0);
        elf_version(EV_CURRENT);
        elf = elf_begin(fd, ELF_C_READ, NULL);
        assert(elf);
        while (!found && (scn = elf_nextscn(elf, scn))) {
                GElf_Shdr sh, symsh;
                Elf_Data *data, *syms;
                Elf_Scn *symscn;

                if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA || sh.sh_entsize == 0)
                        continue;
                data = elf_getdata(scn, NULL);
                symscn = elf_getscn(elf, sh.sh_link);
                syms = symscn ? elf_getdata(symscn, NULL) : NULL;
                if (!symscn || !gelf_getshdr(symscn, &symsh))
                        continue;
                for (size_t i = 0; data && i < sh.sh_size / sh.sh_entsize; i++) {
                        GElf_Rela r;
                        GElf_Sym sym;
                        const char *n;

                        if (!gelf_getrela(data, (int)i, &r))
                                break;
                        if (!jump_slot_of) {
                                if (GELF_R_TYPE(r.r_info) == R_X86_64_RELATIVE && r.r_offset == at) {
                                        found = (uint64_t)r.r_addend;
                                        break;
                                }
                                continue;
                        }
                        if (GELF_R_TYPE(r.r_info) != R_X86_64_JUMP_SLOT || !syms ||
                            !gelf_getsym(syms, (int)GELF_R_SYM(r.r_info), &sym))
                                continue;
                        n = elf_strptr(elf, symsh.sh_link, sym.st_name);
                        if (n && strcmp(n, jump_slot_of) == 0) {
                                found = r.r_offset;
                                break;
                        }
                }
        }
        elf_end(elf);
        close(fd);
        return found;
}

/*
 * The argument analysis on OpenSSL 3.0's ssl3_read_bytes in Debian's libssl3, where a probe on
 * its copy to the caller would capture reads without the trap of the calls that find nothing
 * (docs/performance.md, 2026-12-02). Found as the ssl_read_bytes member (+0x68) of the table
 * TLS_method() returns (lea table(%rip),%rax; ret), whose relative relocation holds it; the
 * copy is the call of memcpy's PLT entry (jmp *GOT(%rip)) whose destination is buf. There,
 * s (argument 0), type (1) and peek (5) must be where a probe can read them.
 */
static void test_real_read_bytes(const char *lib)
{
        uint64_t tls_method, size, table, fn, got, stub = 0;
        uint8_t *code = malloc(16384), b[16];
        struct place_arg_loc l[6];
        int fd = open(lib, O_RDONLY | O_CLOEXEC), calls = 0, copies = 0;
        const char *why;

        assert(code && fd >= 0);
        assert(dynsym(lib, "TLS_method", &tls_method, &size));
        assert(pread(fd, b, 8, (off_t)tls_method) == 8);
        assert(b[0] == 0x48 && b[1] == 0x8d && b[2] == 0x05 && b[7] == 0xc3);
        table = tls_method + 7 + (uint64_t)(int64_t)(int32_t)(b[3] | b[4] << 8 | b[5] << 16 |
                                                               (uint32_t)b[6] << 24);
        fn = reloc_of(lib, table + 0x68, NULL);
        got = reloc_of(lib, 0, "memcpy");
        assert(fn && got);
        /* memcpy's PLT entry: ff 25 disp32, jumping through its GOT slot. */
        for (uint64_t a = 0x1f000; a < 0x22000 && !stub; a += 16) {
                assert(pread(fd, b, 6, (off_t)a) == 6);
                if (b[0] == 0xff && b[1] == 0x25 &&
                    a + 6 + (uint64_t)(int64_t)(int32_t)(b[2] | b[3] << 8 | b[4] << 16 |
                                                         (uint32_t)b[5] << 24) == got)
                        stub = a;
        }
        assert(stub);
        assert(pread(fd, code, 16384, (off_t)fn) == 16384);
        close(fd);
        printf("%s: ssl3_read_bytes at 0x%llx, memcpy@plt at 0x%llx\n", lib,
               (unsigned long long)fn, (unsigned long long)stub);
        /* The calls of memcpy in the function proper (up to its last ret before padding). */
        for (size_t i = 0; i + 5 <= 4096; i++) {
                int32_t rel;
                uint64_t at = fn + i;

                if (code[i] != 0xe8)
                        continue;
                memcpy(&rel, code + i + 1, 4);
                if (at + 5 + (uint64_t)(int64_t)rel != stub)
                        continue;
                if (place_args_at(code, 16384, fn, EM_X86_64, at, l, &why) != 0)
                        continue; /* an e8 byte inside another instruction */
                calls++;
                printf("  memcpy at 0x%llx: s %u/%d type %u/%d%s peek %u/%d%s buf %u/%u\n",
                       (unsigned long long)at, l[0].loc.kind, l[0].loc.off, l[1].loc.kind,
                       l[1].loc.off, l[1].narrow ? "(32)" : "", l[5].loc.kind, l[5].loc.off,
                       l[5].narrow ? "(32)" : "", l[3].loc.kind, l[3].loc.reg);
                /* s whole; type and peek, stored with 32-bit moves, in the two halves of one
                 * word of the frame (Debian's build). */
                assert(l[0].loc.kind != TLSSNIFF_LOC_NONE && !l[0].narrow);
                assert(l[1].loc.kind == TLSSNIFF_LOC_STACK && l[1].narrow);
                assert(l[5].loc.kind == TLSSNIFF_LOC_STACK && l[5].narrow);
                assert(l[1].loc.off == l[5].loc.off + 4);
                /* s in the frame where r13 was reused for the record: the copy to the caller. */
                copies += l[0].loc.kind == TLSSNIFF_LOC_STACK;
        }
        /*
         * Two calls: the copy to the caller's buffer, and that of a handshake fragment into s,
         * which the same type and peek do not tell apart (a post-handshake message arrives
         * while the caller asks for application data). Only the first writes through buf (+ the
         * bytes copied so far, merged over the loop over records into a derived pointer).
         */
        assert(calls == 2 && copies == 1);
        {
                struct place_copy pc[4];
                size_t n = 0;

                assert(place_copy_calls(code, 16384, fn, EM_X86_64, &stub, 1, 3, pc, 4, &n,
                                        &why) == 0);
                assert(n == 1 && pc[0].emulated);
                assert(pc[0].arg[0].loc.kind == TLSSNIFF_LOC_STACK && !pc[0].arg[0].narrow);
                assert(pc[0].arg[1].loc.kind == TLSSNIFF_LOC_STACK && pc[0].arg[1].narrow);
                assert(pc[0].arg[5].loc.kind == TLSSNIFF_LOC_STACK && pc[0].arg[5].narrow);
                /* s is the destination of the other: derived from argument 0. */
                assert(place_copy_calls(code, 16384, fn, EM_X86_64, &stub, 1, 0, pc, 4, &n,
                                        &why) == 0);
                assert(n == 1);
        }
        free(code);
}

static void test_real(void)
{
        static const char *const libssl3 = "/usr/lib/x86_64-linux-gnu/libssl.so.3";
        const char *libssl11 = getenv("TLSSNIFF_LIBSSL11");
        const char *ci = getenv("CI");
        struct tlslib_details d;
        struct msg_plan *p = calloc(1, sizeof(*p));
        char node[4096] = "";
        FILE *f;

        assert(p);
        test_real_read_bytes(libssl3);
        assert(plan_of(libssl3, p, &d) == 0);
        /*
         * Reads on the copy in ssl3_read_bytes and dtls1_read_bytes (one probe each, no probe
         * on SSL_read/SSL_read_ex), SSL_free and SSL_clear forget their object (emulated: the
         * je after SSL_free's test of its argument, SSL_clear's push), the handshake functions
         * (ossl_statem_accept/connect, from the same tables) get entry + return for the socket
         * their I/O is on, writes on the copy into the record in do_ssl3_write (one probe) and
         * dtls1_write_app_data_bytes whole (entry + return).
         */
        assert(p->n_probes == 11);
        {
                unsigned hs = 0;

                for (uint32_t i = 0; i < p->n_probes; i++)
                        if (p->probes[i].func == TLSSNIFF_FUNC_SSL_HANDSHAKE) {
                                const struct msg_probe *h = &p->probes[i];

                                assert(h->kind == (hs % 2 ? TLSSNIFF_PROBE_RETURN
                                                          : TLSSNIFF_PROBE_ENTRY));
                                assert(hs % 2 || (h->loc[TLSSNIFF_ARG_SSL].kind ==
                                                          TLSSNIFF_LOC_REG &&
                                                  h->loc[TLSSNIFF_ARG_SSL].reg == 5));
                                hs++;
                        }
                assert(hs == 4);
        }
        for (uint32_t i = 0; i < p->n_probes; i++) {
                const struct msg_probe *c = &p->probes[i];
                uint8_t b = byte_at(libssl3, c->offset);

                if (c->kind != TLSSNIFF_PROBE_FORGET)
                        continue;
                assert(c->func == TLSSNIFF_FUNC_SSL_FREE);
                assert(c->loc[TLSSNIFF_ARG_SSL].kind == TLSSNIFF_LOC_REG &&
                       c->loc[TLSSNIFF_ARG_SSL].reg == 5); /* rdi */
                assert(b == 0x0f || (b >= 0x70 && b <= 0x7f) || (b >= 0x50 && b <= 0x57));
        }
        {
                const struct msg_probe *e = probe_of(p, TLSSNIFF_FUNC_SSL_WRITE_BYTES,
                                                     TLSSNIFF_PROBE_ENTRY);
                const struct msg_probe *r = probe_of(p, TLSSNIFF_FUNC_SSL_WRITE_BYTES,
                                                     TLSSNIFF_PROBE_RETURN);
                const struct msg_probe *w = probe_of(p, TLSSNIFF_FUNC_SSL_WRITE_BYTES,
                                                     TLSSNIFF_PROBE_COPY);
                unsigned copies = 0;

                /* DTLS's write_bytes whole: s, type, buf, len, written in rdi, rsi, rdx, rcx, r8 */
                assert(e && r && e->offset == r->offset);
                assert(e->loc[TLSSNIFF_ARG_OUTLEN].kind == TLSSNIFF_LOC_REG &&
                       e->loc[TLSSNIFF_ARG_OUTLEN].reg == 8);
                assert(e->loc[TLSSNIFF_ARG_RTYPE].kind == TLSSNIFF_LOC_REG &&
                       e->loc[TLSSNIFF_ARG_RTYPE].reg == 4);
                /*
                 * TLS's: WPACKET_memcpy(pkt, src, len) in do_ssl3_write (a call rel32): src and
                 * len as passed, s in r14, type where the function spilled it, at the bottom of
                 * its 4.5 KiB frame (where place_calls puts the slots for it), past a rep stos that clears
                 * a local array above it.
                 */
                assert(w && byte_at(libssl3, w->offset) == 0xe8);
                assert(w->loc[TLSSNIFF_ARG_BUF].kind == TLSSNIFF_LOC_REG &&
                       w->loc[TLSSNIFF_ARG_BUF].reg == 4);
                assert(w->loc[TLSSNIFF_ARG_NUM].kind == TLSSNIFF_LOC_REG &&
                       w->loc[TLSSNIFF_ARG_NUM].reg == 1);
                assert(w->loc[TLSSNIFF_ARG_SSL].kind == TLSSNIFF_LOC_REG &&
                       w->loc[TLSSNIFF_ARG_SSL].reg == 14);
                assert(w->loc[TLSSNIFF_ARG_RTYPE].kind == TLSSNIFF_LOC_STACK &&
                       w->loc[TLSSNIFF_ARG_PEEK].kind == TLSSNIFF_LOC_NONE);
                for (uint8_t fn = TLSSNIFF_FUNC_SSL_READ; fn <= TLSSNIFF_FUNC_SSL_WRITE_EX; fn++)
                        assert(!probe_of(p, fn, TLSSNIFF_PROBE_ENTRY) &&
                               !probe_of(p, fn, TLSSNIFF_PROBE_RETURN));
                for (uint32_t i = 0; i < p->n_probes; i++) {
                        const struct msg_probe *c = &p->probes[i];

                        if (c->func != TLSSNIFF_FUNC_SSL_READ_BYTES)
                                continue;
                        assert(c->kind == TLSSNIFF_PROBE_COPY);
                        assert(byte_at(libssl3, c->offset) == 0xe8); /* call rel32 */
                        assert(c->loc[TLSSNIFF_ARG_BUF].kind == TLSSNIFF_LOC_REG &&
                               c->loc[TLSSNIFF_ARG_BUF].reg == 4); /* rsi */
                        assert(c->loc[TLSSNIFF_ARG_NUM].kind == TLSSNIFF_LOC_REG &&
                               c->loc[TLSSNIFF_ARG_NUM].reg == 1); /* rdx */
                        assert(c->loc[TLSSNIFF_ARG_SSL].kind != TLSSNIFF_LOC_NONE &&
                               c->loc[TLSSNIFF_ARG_RTYPE].kind != TLSSNIFF_LOC_NONE &&
                               c->loc[TLSSNIFF_ARG_PEEK].kind != TLSSNIFF_LOC_NONE);
                        copies++;
                }
                assert(copies == 2);
        }
        assert(strstr(d.function[0], "no probe of its own (reads on the copy)"));
        assert(strstr(d.function[2], "no probe of its own (reads on the copy)"));
        assert(strstr(d.function[1], "no probe of its own (writes on the copy)"));
        assert(strstr(d.function[3], "no probe of its own (writes on the copy)"));
        assert(strstr(d.function[4], "reads: on the copy: memcpy at 0x"));
        assert(strstr(d.function[5], "writes: on the copy: copy at 0x") &&
               strstr(d.function[5], "DTLS_method's write_bytes (0x"));
        {
                /* Without the copy (the fallback mode): all four on their internal functions. */
                struct msg_plan *fb = calloc(1, sizeof(*fb));
                int fd = open(libssl3, O_RDONLY | O_CLOEXEC);

                assert(fb && fd >= 0 && tlslib_plan(fd, PLACE_MODE_FALLBACK, fb, NULL) == 0);
                close(fd);
                assert(fb->n_probes == 8 && !probe_of(fb, TLSSNIFF_FUNC_SSL_READ_BYTES,
                                                      TLSSNIFF_PROBE_COPY));
                free(fb);
        }
        {
                /* The call-site analysis on the real code, without the callee. */
                static const uint8_t funcs[] = { TLSSNIFF_FUNC_SSL_READ, TLSSNIFF_FUNC_SSL_WRITE,
                                                 TLSSNIFF_FUNC_SSL_READ_EX };
                static const char *const names[] = { "SSL_read", "SSL_write", "SSL_read_ex" };

                for (int i = 0; i < 3; i++) {
                        uint64_t addr, size;
                        uint8_t code[512];
                        struct place_result r;
                        int fd = open(libssl3, O_RDONLY | O_CLOEXEC);

                        assert(dynsym(libssl3, names[i], &addr, &size) && size <= sizeof(code));
                        /* libssl3's code segment maps at file offset = address */
                        assert(fd >= 0 && pread(fd, code, size, (off_t)addr) == (ssize_t)size);
                        close(fd);
                        assert(place_function(code, size, addr, EM_X86_64, funcs[i],
                                              PLACE_MODE_AUTO, NULL, NULL, &r) == 0);
                        printf("  %s without the callee: %s\n", names[i], r.reason);
                        if (i < 2) {
                                assert(r.strategy == PLACE_CALL_SITE);
                                assert(code[r.entry_addr - addr] == 0xe8);
                                assert(code[r.return_addr - addr] >= 0x70 &&
                                       code[r.return_addr - addr] <= 0x7f);
                                assert(r.return_addr > r.entry_addr &&
                                       r.return_addr - r.entry_addr <= 16);
                        } else {
                                assert(r.strategy == PLACE_FALLBACK &&
                                       strstr(r.reason, "result is overwritten"));
                        }
                }
        }
        {
                /* Stable: the same file gives the same plan, byte for byte. */
                struct msg_plan *again = calloc(1, sizeof(*again));
                struct tlslib_details d2;

                assert(again && plan_of(libssl3, again, &d2) == 0);
                assert(memcmp(again->probes, p->probes, sizeof(p->probes)) == 0 &&
                       memcmp(&d, &d2, sizeof(d)) == 0);
                free(again);
        }

        /* node (static OpenSSL), when the machine has it */
        f = popen("command -v node", "r");
        if (f) {
                if (!fgets(node, sizeof(node), f))
                        node[0] = '\0';
                pclose(f);
                node[strcspn(node, "\n")] = '\0';
        }
        if (node[0] && plan_of(node, p, &d) == 0 && p->n_probes > 0) {
                /*
                 * The upstream build (static OpenSSL): writes on the copy in do_ssl3_write and
                 * its DTLS write_bytes whole; reads on the two copies of its ssl3_read_bytes (the
                 * compiler made a loop with peek and one without), its dtls1_read_bytes whole.
                 */
                assert(strstr(d.function[1], "writes on the copy"));
                assert(strstr(d.function[3], "writes on the copy"));
                assert(strstr(d.function[0], "reads on the copy"));
                assert(probe_of(p, TLSSNIFF_FUNC_SSL_WRITE_BYTES, TLSSNIFF_PROBE_COPY) &&
                       probe_of(p, TLSSNIFF_FUNC_SSL_WRITE_BYTES, TLSSNIFF_PROBE_ENTRY));
                assert(strstr(d.function[4], "reads: on the copy: memcpy at 0x") &&
                       strstr(d.function[4], "DTLS_method's read_bytes (0x"));
                assert(probe_of(p, TLSSNIFF_FUNC_SSL_READ_BYTES, TLSSNIFF_PROBE_ENTRY) &&
                       probe_of(p, TLSSNIFF_FUNC_SSL_READ_BYTES, TLSSNIFF_PROBE_RETURN));
        } else {
                assert(!ci || strcmp(ci, "true") != 0);
                printf("node without OpenSSL symbols, skipped\n");
        }

        if (!libssl11)
                libssl11 = "/var/cache/tlssniff-test/bullseye/root/usr/lib/x86_64-linux-gnu/"
                           "libssl.so.1.1";
        if (plan_of(libssl11, p, &d) == 0) {
                uint64_t addr, size;
                uint8_t code[512];
                struct place_result r;
                int fd;

                /*
                 * dtls1_read_bytes reuses type's register before its copy: it is probed at its
                 * entry (s, type, buf, len, peek in registers, readbytes at sp+8) and return;
                 * TLS reads on the copy, writes on the copy in do_ssl3_write (s in rbp, type in
                 * the frame; ssl3_write_bytes passes type on from a register that another path
                 * into its loop sets otherwise: do_ssl3_write is found by s alone).
                 */
                const struct msg_probe *e = probe_of(p, TLSSNIFF_FUNC_SSL_READ_BYTES,
                                                     TLSSNIFF_PROBE_ENTRY);

                assert(probe_of(p, TLSSNIFF_FUNC_SSL_READ_BYTES, TLSSNIFF_PROBE_COPY));
                assert(e && probe_of(p, TLSSNIFF_FUNC_SSL_READ_BYTES, TLSSNIFF_PROBE_RETURN));
                assert(e->loc[TLSSNIFF_ARG_OUTLEN].kind == TLSSNIFF_LOC_STACK &&
                       e->loc[TLSSNIFF_ARG_OUTLEN].off == 8);
                assert(e->loc[TLSSNIFF_ARG_RTYPE].reg == 4 && e->loc[TLSSNIFF_ARG_PEEK].reg == 9);
                assert(!probe_of(p, TLSSNIFF_FUNC_SSL_READ_EX, TLSSNIFF_PROBE_ENTRY));
                assert(strstr(d.function[1], "no probe of its own (writes on the copy)"));
                assert(strstr(d.function[3], "no probe of its own (writes on the copy)"));
                assert(strstr(d.function[5], "writes: on the copy: copy at 0x"));
                {
                        const struct msg_probe *w = probe_of(p, TLSSNIFF_FUNC_SSL_WRITE_BYTES,
                                                             TLSSNIFF_PROBE_COPY);

                        assert(w && w->loc[TLSSNIFF_ARG_RTYPE].kind == TLSSNIFF_LOC_STACK &&
                               w->loc[TLSSNIFF_ARG_SSL].kind == TLSSNIFF_LOC_REG);
                }
                assert(strstr(d.function[4], "DTLS_method's read_bytes (0x") &&
                       strstr(d.function[4], ") at entry and "
                                             "return (s, type or peek is not provably anywhere"));
                assert(dynsym(libssl11, "SSL_read", &addr, &size) && size <= sizeof(code));
                fd = open(libssl11, O_RDONLY | O_CLOEXEC);
                assert(fd >= 0 && pread(fd, code, size, (off_t)addr) == (ssize_t)size);
                close(fd);
                assert(place_function(code, size, addr, EM_X86_64, TLSSNIFF_FUNC_SSL_READ,
                                      PLACE_MODE_AUTO, NULL, NULL, &r) == 0);
                printf("  SSL_read without the callee: %s\n", r.reason);
                assert(r.strategy == PLACE_FALLBACK && strstr(r.reason, "another path joins"));
        } else {
                /* CI fetches it (tools/bootstrap.sh --tests); elsewhere it may be missing. */
                assert(!ci || strcmp(ci, "true") != 0);
                printf("%s not found, skipped\n", libssl11);
        }
        free(p);
}

/*
 * A library built by clang from fuzz/make-seeds.py's SSL_METHODS_C (the seed
 * fuzz/corpus/tlslib/libssl-so-methods): OpenSSL's method tables and record layer in
 * miniature, compiled by another compiler than Debian's libssl. Both copies are found: the
 * memcpy into buf in its read_bytes, the call of its WPACKET_memcpy-like routine in the record
 * writer its write_bytes calls with s; the API functions keep no probe.
 */
static void test_methods(const char *path)
{
        struct msg_plan *p = calloc(1, sizeof(*p));
        const struct msg_probe *r, *w;
        struct tlslib_details d;

        printf("the method-table seed %s:\n", path);
        assert(p && plan_of(path, p, &d) == 0);
        assert(strstr(p->reason, "reads copy, writes copy"));
        r = probe_of(p, TLSSNIFF_FUNC_SSL_READ_BYTES, TLSSNIFF_PROBE_COPY);
        w = probe_of(p, TLSSNIFF_FUNC_SSL_WRITE_BYTES, TLSSNIFF_PROBE_COPY);
        assert(r && w && r->offset != w->offset);
        assert(w->loc[TLSSNIFF_ARG_BUF].kind == TLSSNIFF_LOC_REG &&
               w->loc[TLSSNIFF_ARG_BUF].reg == 4 && w->loc[TLSSNIFF_ARG_NUM].reg == 1);
        assert(w->loc[TLSSNIFF_ARG_SSL].kind != TLSSNIFF_LOC_NONE &&
               w->loc[TLSSNIFF_ARG_RTYPE].kind != TLSSNIFF_LOC_NONE);
        for (uint8_t fn = TLSSNIFF_FUNC_SSL_READ; fn <= TLSSNIFF_FUNC_SSL_WRITE_EX; fn++)
                assert(!probe_of(p, fn, TLSSNIFF_PROBE_ENTRY));
        assert(strstr(d.function[5], "writes: on the copy: copy at 0x"));
        free(p);
}

int main(int argc, char **argv)
{
        setvbuf(stdout, NULL, _IONBF, 0);
        test_sequences();
        test_callee();
        test_args_at();
        test_calls();
        test_garbage();
        test_real();
        if (argc > 1)
                test_methods(argv[1]);
        printf("ok\n");
        return 0;
}
