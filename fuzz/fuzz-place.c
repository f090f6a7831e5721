/*
 * libFuzzer target: the probe placement analysis on arbitrary machine code. The first byte
 * picks the function kind, the rest is the function's code. Checks that every answer is one
 * of the strategies, that placed probes lie inside the code given, and that a call-site
 * placement sits on a call rel32 followed by an emulated instruction. The same code also goes
 * through the copy-call search (the first byte's low bits pick which argument is the
 * destination; calls of vaddr + 0x40 stand for memcpy) and the every-call search, whose answers
 * must lie on instructions inside the code. When the first byte's top bit is set, every callee
 * begins with an emulated push, so the callee placement is explored as well.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "binary/place.h"
#include "gelf.h"
#include "fuzz.h"

/* Any callee's code: push %rbx; pop %rbx; ret. */
static ssize_t read_callee(void *userdata, uint64_t vaddr, void *buf, size_t size)
{
        static const uint8_t callee[] = { 0x53, 0x5b, 0xc3 };
        size_t n = size < sizeof(callee) ? size : sizeof(callee);

        (void)userdata;
        (void)vaddr;
        memcpy(buf, callee, n);
        return (ssize_t)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const uint64_t vaddr = 0x10000;
        struct place_result r;
        uint8_t func;
        uint8_t *code;

        if (size < 1)
                return 0;
        func = (uint8_t)(data[0] % (_TLSSNIFF_FUNC_MAX - 1) + 1);
        size--;
        /* A copy of exactly the code's size, so reading past it is caught. */
        code = malloc(size ? size : 1);
        if (!code)
                return 0;
        memcpy(code, data + 1, size);
        CHECK(place_function(code, size, vaddr, EM_X86_64, func, PLACE_MODE_AUTO,
                             data[0] & 0x80 ? read_callee : NULL, NULL, &r) == 0);
        CHECK(r.strategy == PLACE_FALLBACK || r.strategy == PLACE_ENTRY ||
              r.strategy == PLACE_CALL_SITE || r.strategy == PLACE_CALLEE);
        CHECK(r.strategy != PLACE_CALLEE || (data[0] & 0x80));
        CHECK(memchr(r.reason, '\0', sizeof(r.reason)) != NULL);
        if (r.strategy == PLACE_CALL_SITE) {
                CHECK(r.entry_addr >= vaddr && r.entry_addr + 5 <= vaddr + size);
                CHECK(r.return_addr > r.entry_addr && r.return_addr < vaddr + size);
                CHECK(code[r.entry_addr - vaddr] == 0xe8);
                CHECK(!r.return_uretprobe);
        } else if (r.strategy == PLACE_CALLEE) {
                CHECK(r.entry_addr == r.return_addr && r.return_uretprobe);
        } else {
                CHECK(r.entry_addr == vaddr && r.return_addr == vaddr && r.return_uretprobe);
        }
        if (size > 0) {
                const uint64_t copier = vaddr + 0x40;
                struct place_copy pc[4];
                size_t n = 0;
                const char *why = NULL;
                uint64_t at;
                struct tlssniff_loc loc;
                int rc = place_copy_calls(code, size, vaddr, EM_X86_64, &copier, 1, data[0] % 6,
                                          pc, 4, &n, &why);

                CHECK(rc == 0 || rc == -EOPNOTSUPP || rc == -ENOMEM);
                for (size_t i = 0; rc == 0 && i < n && i < 4; i++) {
                        CHECK(pc[i].call_addr >= vaddr && pc[i].call_addr + 5 <= vaddr + size);
                        CHECK(code[pc[i].call_addr - vaddr] == 0xe8 || !pc[i].emulated);
                }
                {
                        struct place_call calls[8];

                        rc = place_calls(code, size, vaddr, EM_X86_64, calls, 8, &n, &why);
                        CHECK(rc == 0 || rc == -EOPNOTSUPP || rc == -ENOMEM);
                        for (size_t i = 0; rc == 0 && i < n && i < 8; i++) {
                                CHECK(calls[i].call_addr >= vaddr &&
                                      calls[i].call_addr < vaddr + size);
                                for (int a = 0; a < 6; a++)
                                        CHECK(calls[i].passes[a] >= -1 && calls[i].passes[a] < 6);
                        }
                }
                rc = place_every_call(code, size, vaddr, EM_X86_64, data[0] % 6, &at, &loc);
                CHECK(rc == 0 || rc == -ENOENT || rc == -EOPNOTSUPP);
                CHECK(at >= vaddr && at < vaddr + size);
                CHECK(loc.kind == TLSSNIFF_LOC_REG || loc.kind == TLSSNIFF_LOC_STACK);
        }
        free(code);
        return 0;
}
