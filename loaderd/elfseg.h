/*
 * The executable segments of an ELF file, read by loaderd from a file it opened itself. This is
 * the only look loaderd takes inside a traced file: the ELF header and program headers, with
 * every count and range bounded, to check that a probe offset proposed by the analyzer lies in
 * code. Everything else about binaries is the analyzer's business.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define ELFSEG_MAX 16

struct elf_segments {
        unsigned n;
        struct {
                uint64_t start; /* file offset */
                uint64_t end;
        } seg[ELFSEG_MAX];
};

/* 0, or -ENOEXEC for something that is not an ELF file we can probe. */
int elf_segments_read(int fd, struct elf_segments *ret);
bool elf_segments_contain(const struct elf_segments *s, uint64_t offset);
