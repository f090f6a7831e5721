/* Small ELF helpers; see elfutil.h. */
#include <errno.h>

#include "elfutil.h"

int elf_file_offset(Elf *elf, uint64_t va, uint64_t n, bool exec_only, uint64_t *ret)
{
        size_t count;

        if (elf_getphdrnum(elf, &count) != 0)
                return -EBADMSG;
        for (size_t i = 0; i < count; i++) {
                GElf_Phdr ph;

                if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
                        continue;
                if (exec_only && !(ph.p_flags & PF_X))
                        continue;
                if (va >= ph.p_vaddr && va - ph.p_vaddr < ph.p_filesz &&
                    n <= ph.p_filesz - (va - ph.p_vaddr)) {
                        *ret = va - ph.p_vaddr + ph.p_offset;
                        return 0;
                }
        }
        return -ENOENT;
}
