/* Small ELF helpers shared by the OpenSSL and Go analyses (libelf; untrusted files). */
#pragma once

#include <gelf.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * File offset of the n bytes at virtual address va, through the PT_LOAD segment holding all of
 * them (an executable one when exec_only). -ENOENT when no segment does, -EBADMSG when the
 * program headers cannot be read.
 */
int elf_file_offset(Elf *elf, uint64_t va, uint64_t n, bool exec_only, uint64_t *ret);
