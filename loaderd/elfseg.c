/* Bounded reading of ELF program headers; see elfseg.h. */
#include <elf.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elfseg.h"

#define PHNUM_MAX 512

static int read_exact(int fd, void *buf, size_t n, uint64_t off)
{
        ssize_t k = pread(fd, buf, n, (off_t)off);

        if (k < 0)
                return -errno;
        return (size_t)k == n ? 0 : -ENOEXEC;
}

static void add_segment(struct elf_segments *s, uint64_t off, uint64_t filesz, uint64_t size)
{
        if (filesz == 0 || off > size || filesz > size - off || s->n >= ELFSEG_MAX)
                return;
        s->seg[s->n].start = off;
        s->seg[s->n].end = off + filesz;
        s->n++;
}

int elf_segments_read(int fd, struct elf_segments *ret)
{
        unsigned char ident[EI_NIDENT];
        struct elf_segments s = {};
        Elf64_Ehdr eh;
        struct stat st;
        int r;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -ENOEXEC;
        r = read_exact(fd, ident, sizeof(ident), 0);
        if (r < 0)
                return r;
        if (memcmp(ident, ELFMAG, SELFMAG) != 0 || ident[EI_DATA] != ELFDATA2LSB)
                return -ENOEXEC;

        /* The analyzer plans probes for 64-bit x86 and arm64 only. */
        if (ident[EI_CLASS] != ELFCLASS64)
                return -ENOEXEC;
        r = read_exact(fd, &eh, sizeof(eh), 0);
        if (r < 0)
                return r;
        if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > PHNUM_MAX)
                return -ENOEXEC;
        for (unsigned i = 0; i < eh.e_phnum; i++) {
                Elf64_Phdr ph;

                r = read_exact(fd, &ph, sizeof(ph), eh.e_phoff + (uint64_t)i * sizeof(ph));
                if (r < 0)
                        return r;
                if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X))
                        add_segment(&s, ph.p_offset, ph.p_filesz, (uint64_t)st.st_size);
        }
        if (s.n == 0)
                return -ENOEXEC;
        *ret = s;
        return 0;
}

bool elf_segments_contain(const struct elf_segments *s, uint64_t offset)
{
        for (unsigned i = 0; i < s->n; i++)
                if (offset >= s->seg[i].start && offset < s->seg[i].end)
                        return true;
        return false;
}
