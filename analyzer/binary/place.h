/*
 * Probe placement: where in an OpenSSL read/write function to put the entry and return probes
 * so that a hit is cheap (the kernel emulates the probed instruction instead of single-stepping
 * it) while every value the BPF programs need is still recoverable. The machine code is
 * untrusted input; the analysis only proves facts by following register moves and stack
 * adjustments on every path, and answers "fallback" (entry uprobe + uretprobe at the first
 * instruction) whenever it cannot prove one. See docs/design.md, "Probe placement".
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "events.h"

enum place_strategy {
        PLACE_FALLBACK = 0,  /* entry uprobe + uretprobe at the first instruction */
        PLACE_ENTRY = 1,     /* the same probes, and the first instruction is emulated */
        PLACE_CALL_SITE = 2, /* uprobe on the internal call, uprobe after it: both emulated */
        PLACE_CALLEE = 3,    /* entry + uretprobe on the internal function, which starts with
                              * an emulated instruction; it serves every caller */
};

struct place_result {
        enum place_strategy strategy;
        uint64_t entry_addr;  /* virtual address of the entry-side probe */
        uint64_t return_addr; /* virtual address of the return-side probe */
        bool return_uretprobe; /* return side is a uretprobe (fallback/entry) */
        bool entry_emulated;   /* the kernel emulates the instruction at entry_addr */
        struct tlssniff_loc entry_loc[_TLSSNIFF_ARG_MAX];  /* ssl, buf, num, outlen */
        struct tlssniff_loc return_loc[_TLSSNIFF_ARG_MAX]; /* result */
        char reason[160]; /* why this placement, in words, for the log */
};

/* Options for tests and the differential mode. */
enum place_mode {
        PLACE_MODE_AUTO = 0,     /* the cheapest placement the analysis proves */
        PLACE_MODE_FALLBACK = 1, /* always entry + uretprobe (--placement=fallback) */
};

/* Reads up to size bytes of the file's code at a virtual address; returns how many, or < 0. */
typedef ssize_t (*place_read_fn)(void *userdata, uint64_t vaddr, void *buf, size_t size);

/*
 * Decides the placement for one function whose code (size bytes at virtual address vaddr) is
 * given. machine is the ELF e_machine; func an enum tlssniff_func; read (may be NULL) reads
 * other code of the same file (the first instruction of a callee). Always fills ret (a
 * fallback with its reason when nothing better is proven) and returns 0, or -EINVAL for bad
 * arguments. A PLACE_CALLEE result has the callee's address in entry_addr and return_addr and
 * the locations of the _ex form (count through the pointer in rcx).
 */
int place_function(const uint8_t *code, size_t size, uint64_t vaddr, uint16_t machine,
                   uint8_t func, enum place_mode mode, place_read_fn read, void *userdata,
                   struct place_result *ret);

const char *place_strategy_name(enum place_strategy s);

/* Where one of a function's arguments is at some instruction (see place_args_at). */
struct place_arg_loc {
        struct tlssniff_loc loc; /* TLSSNIFF_LOC_NONE: not provably anywhere */
        bool narrow;             /* only its low 32 bits (an int argument) are there */
};

/*
 * Where each of the function's six integer arguments, as they were at its entry, is when the
 * instruction at virtual address `at` is about to run, on every path from the entry: in a
 * register, or in the frame (TLSSNIFF_LOC_STACK, off from the stack pointer at `at`). A
 * register is preferred to the frame and a whole value to its low 32 bits. The function is
 * size bytes of x86-64 code at vaddr (machine EM_X86_64). Returns 0; -EINVAL for bad
 * arguments; -ENOENT when `at` is not an instruction reached from the entry; -EOPNOTSUPP when
 * the code is outside what the analysis models (*ret_why says why).
 */
int place_args_at(const uint8_t *code, size_t size, uint64_t vaddr, uint16_t machine, uint64_t at,
                  struct place_arg_loc ret[6], const char **ret_why);

/* A call that copies into what one of the function's arguments points at (place_copy_calls). */
struct place_copy {
        uint64_t call_addr;
        bool emulated;                /* the kernel emulates the call instruction */
        struct place_arg_loc arg[6];  /* the arguments' entry values at the call */
};

/*
 * The direct calls, in the function of size bytes at vaddr, of any of the n_callees addresses
 * in callees (a copy routine's PLT entries, say) whose first argument (rdi) is, on every path,
 * argument dst_arg of the function or derived from it by adding to it (buf + total). Fills up
 * to max of them in ret and sets *ret_n to how many there are. Returns 0; -EINVAL for bad
 * arguments; -EOPNOTSUPP when the code is outside what the analysis models (*ret_why).
 */
int place_copy_calls(const uint8_t *code, size_t size, uint64_t vaddr, uint16_t machine,
                     const uint64_t *callees, size_t n_callees, int dst_arg,
                     struct place_copy *ret, size_t max, size_t *ret_n, const char **ret_why);

/* A direct call in a function (place_calls). */
struct place_call {
        uint64_t call_addr;
        uint64_t target;
        bool emulated;               /* the kernel emulates the call instruction */
        struct place_arg_loc arg[6]; /* the function's entry arguments at the call */
        /*
         * For each of the callee's argument registers (rdi, rsi, rdx, rcx, r8, r9): the
         * function's own argument it holds on every path, or -1; passes_narrow[i] when only
         * its low 32 bits (an int passed on with a 32-bit move).
         */
        int8_t passes[6];
        bool passes_narrow[6];
};

/*
 * Every direct call the function of size bytes at vaddr makes on some path from its entry, in
 * address order: up to max of them in ret, how many there are in *ret_n. Returns 0; -EINVAL for
 * bad arguments; -EOPNOTSUPP when the code is outside what the analysis models (*ret_why).
 */
int place_calls(const uint8_t *code, size_t size, uint64_t vaddr, uint16_t machine,
                struct place_call *ret, size_t max, size_t *ret_n, const char **ret_why);

/*
 * An instruction that every call of the function runs (on the straight line from its entry up
 * to its first branch) which the kernel emulates and where argument arg is whole in a register
 * or frame slot: its address and that location, and 0. -ENOENT when there is none: then
 * *ret_addr is the entry and *ret_loc the argument's register there (a probe that is correct
 * but single-stepped); -EINVAL, -EOPNOTSUPP likewise with the entry.
 */
int place_every_call(const uint8_t *code, size_t size, uint64_t vaddr, uint16_t machine, int arg,
                     uint64_t *ret_addr, struct tlssniff_loc *ret_loc);
