/* Small ELF helpers; see elfutil.h. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

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

ssize_t elf_source_read(const struct elf_source *s, void *buf, size_t n, uint64_t off)
{
        size_t done = 0;

        if (s->data) {
                if (off >= s->size)
                        return 0;
                if (n > s->size - off)
                        n = s->size - off;
                memcpy(buf, s->data + off, n);
                return (ssize_t)n;
        }
        while (done < n) {
                ssize_t k = pread(s->fd, (uint8_t *)buf + done, n - done, (off_t)(off + done));

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                done += (size_t)k;
        }
        return (ssize_t)done;
}

int elf_func_symbols(Elf *elf, Elf32_Word sh_type,
                     int (*cb)(const char *name, const GElf_Sym *sym, void *userdata),
                     void *userdata)
{
        Elf_Scn *scn = NULL;

        while ((scn = elf_nextscn(elf, scn))) {
                GElf_Shdr sh;
                Elf_Data *d;

                if (!gelf_getshdr(scn, &sh) || sh.sh_type != sh_type || sh.sh_entsize == 0)
                        continue;
                d = elf_getdata(scn, NULL);
                if (!d)
                        continue;
                for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
                        GElf_Sym sym;
                        const char *name;
                        int r;

                        if (!gelf_getsym(d, (int)i, &sym))
                                break;
                        if (GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_shndx == SHN_UNDEF ||
                            sym.st_value == 0)
                                continue;
                        name = elf_strptr(elf, sh.sh_link, sym.st_name);
                        if (!name)
                                continue;
                        r = cb(name, &sym, userdata);
                        if (r != 0)
                                return r;
                }
        }
        return 0;
}
