/*
 * Parsers of .gopclntab and .go.buildinfo over untrusted bytes (see gosym.h). The layouts are
 * those read by Go's debug/gosym and debug/buildinfo; the comments name the Go fields.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "gosym.h"

#define GO12_MAGIC 0xfffffffbu  /* Go 1.2 to 1.15 */
#define GO116_MAGIC 0xfffffffau /* Go 1.16, 1.17 */
#define GO118_MAGIC 0xfffffff0u /* Go 1.18, 1.19 */
#define GO120_MAGIC 0xfffffff1u /* Go 1.20 and later, same layout as 1.18 */

enum pcln_version {
        PCLN_GO12,
        PCLN_GO116,
        PCLN_GO118,
};

/* A validated pcHeader: every offset below lies inside tab, the functab fits entirely. */
struct pcln {
        const uint8_t *tab;
        size_t n;
        enum pcln_version version;
        unsigned ptrsize;
        size_t nfunc;
        uint64_t text_start; /* 1.18+: what the functab's entry offsets are relative to */
        size_t functab;      /* nfunc {entry, funcoff} pairs, then the end entry */
        size_t fieldsize;    /* of one functab field: ptrsize, 4 from 1.18 */
        size_t funcdata;     /* what funcoff is relative to */
        size_t funcnames;    /* what _func.nameoff is relative to */
};

/* One function of the table, checked. */
struct pcln_func {
        uint64_t entry;
        uint64_t size;
        size_t name; /* offset in tab of the name; at least one byte of tab follows */
};

static uint64_t read_uint(const uint8_t *p, unsigned size, bool big_endian)
{
        uint64_t v = 0;

        for (unsigned i = 0; i < size; i++)
                v |= (uint64_t)p[big_endian ? size - 1 - i : i] << (8 * i);
        return v;
}

static int pcln_open(const uint8_t *tab, size_t n, struct pcln *ret)
{
        struct pcln p = {.tab = tab, .n = n};
        uint64_t w[8], nfunc, functab = 0, funcdata = 0, funcnames = 0, slots;
        unsigned nwords;

        if (!tab || n < 8)
                return -EBADMSG;
        switch (read_uint(tab, 4, false)) {
        case GO12_MAGIC:
                p.version = PCLN_GO12;
                nwords = 1; /* nfunc */
                break;
        case GO116_MAGIC:
                p.version = PCLN_GO116;
                nwords = 7; /* nfunc nfiles funcnameOffset cuOffset filetabOffset pctabOffset
                             * pclnOffset */
                break;
        case GO118_MAGIC:
        case GO120_MAGIC:
                p.version = PCLN_GO118;
                nwords = 8; /* as 1.16, with textStart after nfiles */
                break;
        default:
                return -EPROTONOSUPPORT;
        }
        /* Two zero pad bytes, the pc quantum (minLC), the pointer size: as debug/gosym. */
        if (tab[4] != 0 || tab[5] != 0 || (tab[6] != 1 && tab[6] != 2 && tab[6] != 4) ||
            (tab[7] != 4 && tab[7] != 8))
                return -EBADMSG;
        p.ptrsize = tab[7];
        if ((n - 8) / p.ptrsize < nwords)
                return -EBADMSG;
        for (unsigned i = 0; i < nwords; i++)
                w[i] = read_uint(tab + 8 + i * p.ptrsize, p.ptrsize, false);

        nfunc = w[0];
        switch (p.version) {
        case PCLN_GO12:
                /* Everything is relative to the table's start; the functab follows nfunc. */
                functab = 8 + p.ptrsize;
                funcdata = 0;
                funcnames = 0;
                p.fieldsize = p.ptrsize;
                break;
        case PCLN_GO116:
                functab = funcdata = w[6];
                funcnames = w[2];
                p.fieldsize = p.ptrsize;
                break;
        case PCLN_GO118:
                p.text_start = w[2];
                functab = funcdata = w[7];
                funcnames = w[3];
                p.fieldsize = 4;
                break;
        }
        if (functab > n || funcnames > n)
                return -EBADMSG;
        /* 2 * nfunc + 1 fields must fit; dividing first keeps this free of overflow. */
        slots = (n - functab) / p.fieldsize;
        if (slots < 1 || nfunc > (slots - 1) / 2)
                return -EBADMSG;

        p.nfunc = (size_t)nfunc;
        p.functab = (size_t)functab;
        p.funcdata = (size_t)funcdata;
        p.funcnames = (size_t)funcnames;
        *ret = p;
        return 0;
}

/* Field k (k <= 2 * nfunc) of the functab, as stored. */
static uint64_t functab_field(const struct pcln *p, size_t k)
{
        return read_uint(p->tab + p->functab + k * p->fieldsize, (unsigned)p->fieldsize, false);
}

/* The virtual address of a functab or _func entry as stored. */
static int pcln_va(const struct pcln *p, uint64_t stored, uint64_t *ret)
{
        uint64_t va = stored;

        if (p->version == PCLN_GO118 && __builtin_add_overflow(p->text_start, stored, &va))
                return -EBADMSG;
        if (p->ptrsize == 4 && va > UINT32_MAX)
                return -EBADMSG;
        *ret = va;
        return 0;
}

static int pcln_func(const struct pcln *p, size_t i, struct pcln_func *ret)
{
        uint64_t entry_stored, end_stored, funcoff, entry, end;
        size_t off, entry_size;
        int32_t nameoff;
        int r;

        entry_stored = functab_field(p, 2 * i);
        funcoff = functab_field(p, 2 * i + 1);
        end_stored = functab_field(p, 2 * i + 2);
        r = pcln_va(p, entry_stored, &entry);
        if (r < 0)
                return r;
        r = pcln_va(p, end_stored, &end);
        if (r < 0)
                return r;
        /* The table is sorted by entry; equal entries (empty functions) are let through. */
        if (end < entry)
                return -EBADMSG;

        /* _func: entry (uintptr; from 1.18 a u32 offset like the functab's), nameoff int32. */
        entry_size = p->version == PCLN_GO118 ? 4 : p->ptrsize;
        if (funcoff > p->n - p->funcdata)
                return -EBADMSG;
        off = p->funcdata + (size_t)funcoff;
        if (entry_size + 4 > p->n - off)
                return -EBADMSG;
        /* Both copies of the entry agree in every table the linker writes; a funcoff that
         * points elsewhere would give a name that belongs to something else. */
        if (read_uint(p->tab + off, (unsigned)entry_size, false) != entry_stored)
                return -EBADMSG;
        nameoff = (int32_t)read_uint(p->tab + off + entry_size, 4, false);
        if (nameoff < 0 || (uint64_t)nameoff >= p->n - p->funcnames)
                return -EBADMSG;

        *ret = (struct pcln_func){
                .entry = entry,
                .size = end - entry,
                .name = p->funcnames + (size_t)nameoff,
        };
        return 0;
}

int gopclntab_find(const uint8_t *tab, size_t n, const char *name, uint64_t *ret_entry,
                   uint64_t *ret_size)
{
        struct pcln_func found = {};
        bool have = false;
        struct pcln p;
        size_t len;
        int r;

        if (!name)
                return -EINVAL;
        r = pcln_open(tab, n, &p);
        if (r < 0)
                return r;
        len = strlen(name);
        /* The whole table, not up to the first match: names repeat (ABI wrappers, generic
         * instantiations), and then the name alone does not say which function is meant. */
        for (size_t i = 0; i < p.nfunc; i++) {
                struct pcln_func f;

                r = pcln_func(&p, i, &f);
                if (r < 0)
                        return r;
                /* Compares at most len + 1 bytes: no scan for the NUL of every name. */
                if (len < n - f.name && memcmp(tab + f.name, name, len + 1) == 0) {
                        if (have)
                                return -ENOTUNIQ;
                        found = f;
                        have = true;
                }
        }
        if (!have)
                return -ENOENT;
        *ret_entry = found.entry;
        *ret_size = found.size;
        return 0;
}

int gopclntab_foreach(const uint8_t *tab, size_t n,
                      int (*cb)(const char *name, uint64_t entry, uint64_t size, void *userdata),
                      void *userdata)
{
        struct pcln p;
        int r;

        if (!cb)
                return -EINVAL;
        r = pcln_open(tab, n, &p);
        if (r < 0)
                return r;
        for (size_t i = 0; i < p.nfunc; i++) {
                struct pcln_func f;
                size_t max;

                r = pcln_func(&p, i, &f);
                if (r < 0)
                        return r;
                /* Bounds the work per function, which a table of many functions sharing one
                 * long name would otherwise make quadratic. */
                max = n - f.name;
                if (max > GOSYM_NAME_MAX + 1)
                        max = GOSYM_NAME_MAX + 1;
                if (!memchr(tab + f.name, '\0', max))
                        return -EBADMSG;
                r = cb((const char *)tab + f.name, f.entry, f.size, userdata);
                if (r != 0)
                        return r;
        }
        return 0;
}

/* encoding/binary.Uvarint: at most 10 bytes, no overflow of 64 bits. */
static int uvarint(const uint8_t *p, size_t n, uint64_t *ret_value, size_t *ret_len)
{
        uint64_t v = 0;

        for (size_t i = 0; i < n && i < 10; i++) {
                if (i == 9 && p[i] > 1)
                        return -EBADMSG;
                v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
                if (!(p[i] & 0x80)) {
                        *ret_value = v;
                        *ret_len = i + 1;
                        return 0;
                }
        }
        return -EBADMSG;
}

int gobuildinfo_version(const uint8_t *sec, size_t n, gosym_read_va_t read_va, void *userdata,
                        char *ret, size_t size)
{
        /*
         * The 32-byte header: 14 bytes of magic, the pointer size, flags (bit 0 big endian,
         * bit 1 strings inlined after the header), then (before 1.18) the addresses of the
         * Go strings runtime.buildVersion and runtime.modinfo. Other flag bits are ignored.
         */
        static const char magic[] = "\xff Go buildinf:";
        char buf[GOSYM_VERSION_MAX];
        unsigned ptrsize;
        uint64_t len;
        int r;

        if (!sec || n < 32 || memcmp(sec, magic, sizeof(magic) - 1) != 0)
                return -EBADMSG;
        ptrsize = sec[14];
        if (ptrsize != 4 && ptrsize != 8)
                return -EBADMSG;

        if (sec[15] & 2) {
                size_t varint_len;

                r = uvarint(sec + 32, n - 32, &len, &varint_len);
                if (r < 0)
                        return r;
                if (len > n - 32 - varint_len || len > sizeof(buf))
                        return -EBADMSG;
                memcpy(buf, sec + 32 + varint_len, (size_t)len);
        } else {
                bool big_endian = sec[15] & 1;
                uint8_t hdr[16]; /* string header {data, len} */
                uint64_t data;

                if (!read_va)
                        return -EOPNOTSUPP;
                r = read_va(userdata, read_uint(sec + 16, ptrsize, big_endian), hdr, 2 * ptrsize);
                if (r != 0)
                        return r < 0 ? r : -EIO;
                data = read_uint(hdr, ptrsize, big_endian);
                len = read_uint(hdr + ptrsize, ptrsize, big_endian);
                if (len > sizeof(buf))
                        return -EBADMSG;
                if (len > 0) {
                        r = read_va(userdata, data, buf, (size_t)len);
                        if (r != 0)
                                return r < 0 ? r : -EIO;
                }
        }

        if (len == 0)
                return -ENOENT;
        for (size_t i = 0; i < len; i++)
                if (buf[i] < 0x20 || buf[i] > 0x7e)
                        return -EBADMSG;
        if (len >= size)
                return -ENOBUFS;
        memcpy(ret, buf, (size_t)len);
        ret[len] = '\0';
        return 0;
}

/* A decimal number without leading zeros, at most 99999. */
static int parse_number(const char **p, unsigned *ret)
{
        const char *s = *p;
        unsigned v = 0;

        if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9'))
                return -EINVAL;
        for (; *s >= '0' && *s <= '9'; s++) {
                v = v * 10 + (unsigned)(*s - '0');
                if (v > 99999)
                        return -EINVAL;
        }
        *p = s;
        *ret = v;
        return 0;
}

static bool starts_with_then_digit(const char *s, const char *prefix)
{
        size_t l = strlen(prefix);

        return strncmp(s, prefix, l) == 0 && s[l] >= '0' && s[l] <= '9';
}

int goversion_parse(const char *s, unsigned *ret_major, unsigned *ret_minor)
{
        unsigned major, minor = 0;
        int r;

        if (!s || strncmp(s, "go", 2) != 0)
                return -EINVAL;
        s += 2;
        r = parse_number(&s, &major);
        if (r < 0)
                return r;
        if (major == 0)
                return -EINVAL;
        if (*s == '.') {
                s++;
                r = parse_number(&s, &minor);
                if (r < 0)
                        return r;
        }
        /*
         * What may follow: nothing, a patch release (".8"), a pre-release ("rc2", "beta1"),
         * a BoringCrypto release ("b7"), a vendor suffix ("-1"), or experiments after a space
         * (" X:boringcrypto").
         */
        if (!(*s == '\0' || *s == ' ' || *s == '-' || starts_with_then_digit(s, ".") ||
              starts_with_then_digit(s, "rc") || starts_with_then_digit(s, "beta") ||
              starts_with_then_digit(s, "b")))
                return -EINVAL;
        *ret_major = major;
        *ret_minor = minor;
        return 0;
}
