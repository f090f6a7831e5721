/* Small ELF helpers shared by the OpenSSL and Go analyses (libelf; untrusted files). */
#pragma once

#include <gelf.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Where a file's bytes come from: the fd loaderd gave us, or memory (tests, fuzzing). */
struct elf_source {
        int fd;             /* used when data is NULL */
        const uint8_t *data;
        size_t size;
};

/*
 * Reads up to n bytes at file offset off; returns how many (fewer at the end of the file) or a
 * negative errno.
 */
ssize_t elf_source_read(const struct elf_source *s, void *buf, size_t n, uint64_t off);

/*
 * File offset of the n bytes at virtual address va, through the PT_LOAD segment holding all of
 * them (an executable one when exec_only). -ENOENT when no segment does, -EBADMSG when the
 * program headers cannot be read.
 */
int elf_file_offset(Elf *elf, uint64_t va, uint64_t n, bool exec_only, uint64_t *ret);

/*
 * Calls cb for every defined function symbol (STT_FUNC, not SHN_UNDEF, value != 0) in the
 * symbol tables of type sh_type (SHT_DYNSYM or SHT_SYMTAB); stops when cb returns non-zero and
 * returns that, else 0.
 */
int elf_func_symbols(Elf *elf, Elf32_Word sh_type,
                     int (*cb)(const char *name, const GElf_Sym *sym, void *userdata),
                     void *userdata);
