/*
 * Unit tests of the Go section parsers: synthetic .gopclntab tables in each layout (Go 1.2,
 * 1.16, 1.18, 1.20; 64 and 32 bit) and both .go.buildinfo layouts, built here as the Go
 * linker lays them out, then every prefix of each and a few thousand random byte flips, each
 * in a buffer of exactly its size so that the ASan build catches any read outside it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "binary/gosym.h"
#include "macro.h"

#define CHECK(x)                                                                                   \
        do {                                                                                       \
                if (!(x)) {                                                                        \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x);      \
                        exit(1);                                                                   \
                }                                                                                  \
        } while (0)

enum layout {
        GO12,
        GO116,
        GO118,
        GO120,
};

static const char *const layout_name[] = {"go1.2", "go1.16", "go1.18", "go1.20"};

struct tfunc {
        const char *name;
        uint64_t entry;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return rng_state;
}

static void put(uint8_t *buf, size_t off, uint64_t v, unsigned size)
{
        for (unsigned i = 0; i < size; i++)
                buf[off + i] = (uint8_t)(v >> (8 * i));
}

/*
 * A copy in a buffer of exactly n bytes (n may be 0). Not inlined: at -O3 GCC follows the
 * n == 0 branch into callers that write into copies of non-empty tables and reports a write
 * into a region of size 0 (-Wstringop-overflow), failing release builds.
 */
__attribute__((noinline)) static uint8_t *exact_copy(const uint8_t *src, size_t n)
{
        uint8_t *p = malloc(n ? n : 1);

        CHECK(p);
        memcpy(p, src, n);
        return n ? p : p + 1; /* for n == 0 any read is past the end */
}

static void exact_free(uint8_t *p, size_t n)
{
        free(n ? p : p - 1);
}

/*
 * Lays out a pclntab as the linker of that Go version does; the _func records carry the
 * fields after nameoff (args, deferreturn, pcsp, pcfile, pcln, npcdata, cuOffset...) as
 * zeros. Returns the table's size.
 */
static size_t build_pcln(uint8_t *buf, size_t cap, enum layout l, unsigned ps,
                         const struct tfunc *f, size_t nf, uint64_t end, uint64_t text_start)
{
        const unsigned func_tail = 4 * 8; /* nameoff and 7 more 32-bit fields */
        size_t header, names, functab, funcs, o, name_base, func_base;
        unsigned fs = l >= GO118 ? 4 : ps;           /* functab field */
        unsigned es = l >= GO118 ? 4 : ps;           /* _func.entry */
        uint64_t bias = l >= GO118 ? text_start : 0; /* entries stored relative to this */
        static const uint32_t magic[] = {0xfffffffb, 0xfffffffa, 0xfffffff0, 0xfffffff1};
        size_t name_off[16];

        CHECK(nf <= ELEMENTSOF(name_off));
        memset(buf, 0, cap);
        put(buf, 0, magic[l], 4);
        buf[6] = 1;
        buf[7] = (uint8_t)ps;
        header = 8 + (l == GO12 ? 1 : l == GO116 ? 7 : 8) * ps;
        put(buf, 8, nf, ps);

        if (l == GO12) {
                /* functab right after nfunc, then the file table offset, _funcs, names;
                 * every offset is from the table's start. */
                functab = header;
                funcs = functab + (2 * nf + 1) * fs + 4;
                names = funcs + nf * (es + func_tail);
                name_base = 0;
                func_base = 0;
                put(buf, functab + (2 * nf + 1) * fs, 0, 4); /* filetab offset, unused */
        } else {
                /* names, cutab, filetab, pctab (a few dummy bytes each), then the functab
                 * and the _funcs; words: nfunc nfiles [textStart] funcname cu file pc pcln */
                unsigned w = l == GO116 ? 2 : 3;
                size_t total_names = 0;

                for (size_t i = 0; i < nf; i++)
                        total_names += strlen(f[i].name) + 1;
                names = header;
                functab = names + total_names + 3 * 8;
                funcs = functab + (2 * nf + 1) * fs;
                name_base = names;
                func_base = functab;
                put(buf, 8 + 1 * ps, 1, ps); /* nfiles */
                if (l >= GO118)
                        put(buf, 8 + 2 * ps, text_start, ps);
                put(buf, 8 + w * ps, names, ps);
                put(buf, 8 + (w + 1) * ps, names + total_names, ps);
                put(buf, 8 + (w + 2) * ps, names + total_names + 8, ps);
                put(buf, 8 + (w + 3) * ps, names + total_names + 16, ps);
                put(buf, 8 + (w + 4) * ps, functab, ps);
                memset(buf + names + total_names, 0xee, 3 * 8);
        }

        o = names;
        for (size_t i = 0; i < nf; i++) {
                size_t len = strlen(f[i].name) + 1;

                CHECK(o + len <= cap);
                memcpy(buf + o, f[i].name, len);
                name_off[i] = o - name_base;
                o += len;
        }
        if (l == GO12)
                CHECK(o <= cap);
        for (size_t i = 0; i < nf; i++) {
                size_t fo = funcs + i * (es + func_tail);

                CHECK(fo + es + func_tail <= cap);
                put(buf, functab + 2 * i * fs, f[i].entry - bias, fs);
                put(buf, functab + (2 * i + 1) * fs, fo - func_base, fs);
                put(buf, fo, f[i].entry - bias, es);
                put(buf, fo + es, name_off[i], 4);
        }
        put(buf, functab + 2 * nf * fs, end - bias, fs);
        return l == GO12 ? o : funcs + nf * (es + func_tail);
}

static const struct tfunc funcs64[] = {
        {"runtime.text", 0x401000},
        {"crypto/tls.(*Conn).Read", 0x401020},
        {"crypto/tls.(*Conn).Write", 0x401400},
        {"crypto/tls.(*Conn).Write.func1", 0x401a60},
        {"main.main", 0x401ac0},
};
#define END64 0x401b00

static const struct tfunc funcs32[] = {
        {"runtime.text", 0x8049000},
        {"crypto/tls.(*Conn).Read", 0x8049010},
        {"crypto/tls.(*Conn).Write", 0x8049390},
        {"main.main", 0x8049900},
};
#define END32 0x8049980

struct expect {
        const struct tfunc *f;
        size_t nf;
        uint64_t end;
        size_t seen;
        int stop_at; /* return 7 on this call, -1 never */
        bool strict; /* the table is valid: check every answer */
        unsigned ptrsize;
};

static uint64_t expected_size(const struct expect *e, size_t i)
{
        return (i + 1 < e->nf ? e->f[i + 1].entry : e->end) - e->f[i].entry;
}

static int check_cb(const char *name, uint64_t entry, uint64_t size, void *userdata)
{
        struct expect *e = userdata;

        CHECK(strlen(name) <= GOSYM_NAME_MAX);
        CHECK(size <= UINT64_MAX - entry);
        if (e->ptrsize == 4)
                CHECK(entry + size <= UINT32_MAX);
        if (e->strict) {
                CHECK(e->seen < e->nf);
                CHECK(strcmp(name, e->f[e->seen].name) == 0);
                CHECK(entry == e->f[e->seen].entry);
                CHECK(size == expected_size(e, e->seen));
        }
        if ((int)e->seen == e->stop_at) {
                e->seen++;
                return 7;
        }
        e->seen++;
        return 0;
}

static bool is_table_error(int r)
{
        return r == -EBADMSG || r == -EPROTONOSUPPORT;
}

static void check_valid_table(const uint8_t *tab, size_t n, const struct expect *proto)
{
        struct expect e = *proto;
        uint64_t entry = 1, size = 2;

        e.seen = 0;
        e.stop_at = -1;
        e.strict = true;
        CHECK(gopclntab_foreach(tab, n, check_cb, &e) == 0);
        CHECK(e.seen == e.nf);

        for (size_t i = 0; i < e.nf; i++) {
                CHECK(gopclntab_find(tab, n, e.f[i].name, &entry, &size) == 0);
                CHECK(entry == e.f[i].entry);
                CHECK(size == expected_size(&e, i));
        }
        entry = 1;
        size = 2;
        /* exact match only: neither a prefix nor an extension of a name matches */
        CHECK(gopclntab_find(tab, n, "crypto/tls.(*Conn).Wri", &entry, &size) == -ENOENT);
        CHECK(gopclntab_find(tab, n, "crypto/tls.(*Conn).Writer", &entry, &size) == -ENOENT);
        CHECK(gopclntab_find(tab, n, "crypto/tls.(*Conn).Read.func1", &entry, &size) == -ENOENT);
        CHECK(gopclntab_find(tab, n, "", &entry, &size) == -ENOENT);
        CHECK(gopclntab_find(tab, n, "nope", &entry, &size) == -ENOENT);
        CHECK(entry == 1 && size == 2); /* outputs untouched on failure */
        CHECK(gopclntab_find(tab, n, NULL, &entry, &size) == -EINVAL);
        CHECK(gopclntab_find(NULL, 0, "main.main", &entry, &size) == -EBADMSG);
        CHECK(gopclntab_foreach(tab, n, NULL, NULL) == -EINVAL);

        /* The callback's first non-zero return stops the walk and is returned. */
        e.seen = 0;
        e.stop_at = 1;
        CHECK(gopclntab_foreach(tab, n, check_cb, &e) == 7);
        CHECK(e.seen == 2);
}

/* Every prefix: an error or answers that agree with the whole table. */
static void check_truncations(const uint8_t *tab, size_t n, const struct expect *proto)
{
        for (size_t len = 0; len <= n; len++) {
                uint8_t *p = exact_copy(tab, len);
                struct expect e = *proto;
                int r;

                e.seen = 0;
                e.stop_at = -1;
                e.strict = true;
                r = gopclntab_foreach(p, len, check_cb, &e);
                CHECK(r == 0 || is_table_error(r));
                CHECK(r != 0 || e.seen == e.nf);
                if (len < 8)
                        CHECK(r == -EBADMSG);

                for (size_t i = 0; i < e.nf; i++) {
                        uint64_t entry, size;

                        r = gopclntab_find(p, len, e.f[i].name, &entry, &size);
                        CHECK(r == 0 || r == -ENOENT || is_table_error(r));
                        if (r == 0)
                                CHECK(entry == e.f[i].entry && size == expected_size(&e, i));
                }
                if (len == n)
                        CHECK(r == 0);
                exact_free(p, len);
        }
}

/* Random flips of 1 to 4 bytes, half of them in the header: no crash, a sane answer. */
static void check_flips(const uint8_t *tab, size_t n, const struct expect *proto, unsigned rounds)
{
        for (unsigned k = 0; k < rounds; k++) {
                uint8_t *p = exact_copy(tab, n);
                unsigned nflips = 1 + rng() % 4;
                struct expect e = *proto;
                uint64_t entry, size;
                int r;

                for (unsigned j = 0; j < nflips; j++) {
                        size_t at = rng() % 2 ? rng() % (n < 80 ? n : 80) : rng() % n;

                        p[at] = rng() % 3 ? (uint8_t)rng() : p[at] ^ (uint8_t)(1u << (rng() % 8));
                }
                e.seen = 0;
                e.stop_at = -1;
                e.strict = false;
                r = gopclntab_foreach(p, n, check_cb, &e);
                CHECK(r == 0 || is_table_error(r));
                for (size_t i = 0; i < e.nf; i++) {
                        r = gopclntab_find(p, n, e.f[i].name, &entry, &size);
                        CHECK(r == 0 || r == -ENOENT || r == -ENOTUNIQ || is_table_error(r));
                        if (r == 0) {
                                CHECK(size <= UINT64_MAX - entry);
                                if (e.ptrsize == 4)
                                        CHECK(entry + size <= UINT32_MAX);
                        }
                }
                exact_free(p, n);
        }
}

static void test_layout(enum layout l, unsigned ps)
{
        const struct tfunc *f = ps == 8 ? funcs64 : funcs32;
        size_t nf = ps == 8 ? ELEMENTSOF(funcs64) : ELEMENTSOF(funcs32);
        uint64_t end = ps == 8 ? END64 : END32;
        uint64_t text_start = f[0].entry;
        struct expect e = {.f = f, .nf = nf, .end = end, .ptrsize = ps};
        static uint8_t buf[4096];
        uint64_t entry, size;
        uint8_t *p;
        size_t n;

        printf("%s ptrsize %u\n", layout_name[l], ps);
        n = build_pcln(buf, sizeof(buf), l, ps, f, nf, end, text_start);
        p = exact_copy(buf, n);
        check_valid_table(p, n, &e);
        exact_free(p, n);
        check_truncations(buf, n, &e);
        check_flips(buf, n, &e, 3000);

        /* An unknown magic (here: the big-endian spelling of this one). */
        p = exact_copy(buf, n);
        for (int i = 0; i < 2; i++) {
                uint8_t t = p[i];
                p[i] = p[3 - i];
                p[3 - i] = t;
        }
        CHECK(gopclntab_find(p, n, "main.main", &entry, &size) == -EPROTONOSUPPORT);
        CHECK(gopclntab_foreach(p, n, check_cb, &e) == -EPROTONOSUPPORT);
        exact_free(p, n);

        /* Header fields that debug/gosym refuses. */
        const struct {
                size_t at;
                uint8_t value;
        } bad_header[] = {{4, 1}, {5, 1}, {6, 0}, {6, 3}, {6, 8}, {7, 0}, {7, 2}, {7, 16}};
        for (size_t i = 0; i < ELEMENTSOF(bad_header); i++) {
                p = exact_copy(buf, n);
                p[bad_header[i].at] = bad_header[i].value;
                CHECK(gopclntab_find(p, n, "main.main", &entry, &size) == -EBADMSG);
                exact_free(p, n);
        }

        /* nfunc larger than what fits, in every way it can overflow a size computation. */
        const uint64_t huge[] = {nf + 1000, UINT32_MAX, UINT64_MAX / 2 + 1, UINT64_MAX};
        for (size_t i = 0; i < ELEMENTSOF(huge); i++) {
                if (ps == 4 && huge[i] > UINT32_MAX)
                        continue;
                p = exact_copy(buf, n);
                put(p, 8, huge[i], ps);
                CHECK(gopclntab_foreach(p, n, check_cb, &e) == -EBADMSG);
                exact_free(p, n);
        }

        /* Offsets in the header past the end of the table. */
        if (l != GO12) {
                for (unsigned w = 2; w < (l == GO116 ? 7u : 8u); w++) {
                        const uint64_t offs[] = {n, n + 1, UINT32_MAX, UINT64_MAX};

                        for (size_t i = 0; i < ELEMENTSOF(offs); i++) {
                                p = exact_copy(buf, n);
                                put(p, 8 + w * ps, offs[i], ps);
                                /* textStart (1.18 word 2) is no offset; cu/file/pc unused */
                                if ((l >= GO118 && w == 2) || w == (l == GO116 ? 3u : 4u) ||
                                    w == (l == GO116 ? 4u : 5u) || w == (l == GO116 ? 5u : 6u)) {
                                        exact_free(p, n);
                                        continue;
                                }
                                CHECK(gopclntab_foreach(p, n, check_cb, &e) == -EBADMSG);
                                exact_free(p, n);
                        }
                }
        }

        /* No functions at all (the end entry alone). */
        n = build_pcln(buf, sizeof(buf), l, ps, f, 0, end, text_start);
        p = exact_copy(buf, n);
        e.nf = 0;
        e.seen = 0;
        e.strict = true;
        e.stop_at = -1;
        CHECK(gopclntab_foreach(p, n, check_cb, &e) == 0 && e.seen == 0);
        CHECK(gopclntab_find(p, n, "main.main", &entry, &size) == -ENOENT);
        exact_free(p, n);
}

/* Tables that are wrong in one field each, built from the valid one. */
static void test_malformed(void)
{
        static uint8_t buf[4096];
        struct tfunc f[ELEMENTSOF(funcs64)];
        struct expect e = {.f = f, .nf = ELEMENTSOF(f), .ptrsize = 8, .stop_at = -1};
        uint64_t entry = 1, size = 2;
        size_t n;
        uint8_t *p;

        printf("malformed tables\n");
        memcpy(f, funcs64, sizeof(f));

        /* Entries out of order: main.main before Write.func1. */
        f[4].entry = 0x401a00;
        for (enum layout l = GO12; l <= GO120; l++) {
                n = build_pcln(buf, sizeof(buf), l, 8, f, ELEMENTSOF(f), END64, f[0].entry);
                CHECK(gopclntab_foreach(buf, n, check_cb, &e) == -EBADMSG);
                CHECK(gopclntab_find(buf, n, "runtime.text", &entry, &size) == -EBADMSG);
        }
        /* The end entry before the last function. */
        memcpy(f, funcs64, sizeof(f));
        for (enum layout l = GO12; l <= GO120; l++) {
                n = build_pcln(buf, sizeof(buf), l, 8, f, ELEMENTSOF(f), 0x401a00, f[0].entry);
                CHECK(gopclntab_find(buf, n, "runtime.text", &entry, &size) == -EBADMSG);
        }
        /* Equal entries: an empty function, size 0. */
        f[2].entry = f[1].entry;
        n = build_pcln(buf, sizeof(buf), GO120, 8, f, ELEMENTSOF(f), END64, f[0].entry);
        CHECK(gopclntab_find(buf, n, "crypto/tls.(*Conn).Read", &entry, &size) == 0);
        CHECK(entry == 0x401020 && size == 0);

        /* The same name twice: which one is meant is unknown. */
        memcpy(f, funcs64, sizeof(f));
        f[4].name = "crypto/tls.(*Conn).Read";
        for (enum layout l = GO12; l <= GO120; l++) {
                n = build_pcln(buf, sizeof(buf), l, 8, f, ELEMENTSOF(f), END64, f[0].entry);
                entry = 1;
                CHECK(gopclntab_find(buf, n, "crypto/tls.(*Conn).Read", &entry, &size) ==
                      -ENOTUNIQ);
                CHECK(entry == 1);
                CHECK(gopclntab_find(buf, n, "main.main", &entry, &size) == -ENOENT);
        }

        for (enum layout l = GO12; l <= GO120; l++) {
                unsigned fs = l >= GO118 ? 4 : 8, es = fs;
                size_t functab, funcoff, func;

                memcpy(f, funcs64, sizeof(f));
                n = build_pcln(buf, sizeof(buf), l, 8, f, ELEMENTSOF(f), END64, f[0].entry);
                functab = l == GO12 ? 16 : (size_t)(buf[8 + (l == GO116 ? 6 : 7) * 8] |
                                                    buf[9 + (l == GO116 ? 6 : 7) * 8] << 8);
                funcoff = buf[functab + 3 * fs] | buf[functab + 3 * fs + 1] << 8;
                func = (l == GO12 ? 0 : functab) + funcoff; /* _func of function 1 */

                /* _func.entry disagrees with the functab. */
                p = exact_copy(buf, n);
                p[func] ^= 0x10;
                CHECK(gopclntab_find(p, n, "main.main", &entry, &size) == -EBADMSG);
                exact_free(p, n);

                /* Negative nameoff, nameoff at the end. */
                p = exact_copy(buf, n);
                put(p, func + es, 0x80000000u, 4);
                CHECK(gopclntab_foreach(p, n, check_cb, &e) == -EBADMSG);
                put(p, func + es, UINT32_MAX, 4);
                CHECK(gopclntab_foreach(p, n, check_cb, &e) == -EBADMSG);
                put(p, func + es, n - (l == GO12 ? 0 : 8 + 8 * (l == GO116 ? 7 : 8)), 4);
                CHECK(gopclntab_foreach(p, n, check_cb, &e) == -EBADMSG);
                exact_free(p, n);

                /* funcoff pointing at the last bytes, past the end, far past the end. */
                const uint64_t offs[] = {n - (l == GO12 ? 0 : functab) - es - 3, UINT32_MAX,
                                         UINT64_MAX};
                for (size_t i = 0; i < ELEMENTSOF(offs); i++) {
                        if (fs == 4 && offs[i] > UINT32_MAX)
                                continue;
                        p = exact_copy(buf, n);
                        put(p, functab + 3 * fs, offs[i], fs);
                        CHECK(gopclntab_find(p, n, "main.main", &entry, &size) == -EBADMSG);
                        exact_free(p, n);
                }

                /* A name that does not end inside the table, at the table's end. */
                if (l == GO12) {
                        p = exact_copy(buf, n);
                        p[n - 1] = 'x'; /* the NUL of the last name, main.main */
                        e.seen = 0;
                        e.strict = true;
                        CHECK(gopclntab_foreach(p, n, check_cb, &e) == -EBADMSG);
                        CHECK(e.seen == e.nf - 1); /* the ones before were reported */
                        CHECK(gopclntab_find(p, n, "main.main", &entry, &size) == -ENOENT);
                        exact_free(p, n);
                        e.strict = false;
                }
        }

        /* 1.18+: textStart + entryoff overflowing 64 bits, or 32 bits with ptrsize 4. */
        for (unsigned ps = 4; ps <= 8; ps += 4) {
                uint64_t base = ps == 8 ? UINT64_MAX - 0x800 : UINT32_MAX - 0x800;

                memcpy(f, funcs64, sizeof(f));
                for (size_t i = 0; i < ELEMENTSOF(f); i++)
                        f[i].entry = base + (funcs64[i].entry - funcs64[0].entry);
                /* The entries from 0x801 after the base on overflow. */
                n = build_pcln(buf, sizeof(buf), GO118, ps, f, ELEMENTSOF(f),
                               base + (END64 - funcs64[0].entry), base);
                CHECK(gopclntab_find(buf, n, "runtime.text", &entry, &size) == -EBADMSG);
        }
}

/* Names as long as allowed, and longer. */
static void test_long_names(void)
{
        static char long_name[GOSYM_NAME_MAX + 2];
        static uint8_t buf[2 * GOSYM_NAME_MAX + 1024];
        struct tfunc f[2] = {{"main.main", 0x401000}, {long_name, 0x401100}};
        struct expect e = {.f = f, .nf = 2, .end = 0x401200, .ptrsize = 8, .stop_at = -1};
        uint64_t entry, size;
        size_t n;

        printf("long names\n");
        memset(long_name, 'a', GOSYM_NAME_MAX);
        n = build_pcln(buf, sizeof(buf), GO120, 8, f, 2, 0x401200, 0x401000);
        e.strict = true;
        CHECK(gopclntab_foreach(buf, n, check_cb, &e) == 0 && e.seen == 2);

        long_name[GOSYM_NAME_MAX] = 'a';
        n = build_pcln(buf, sizeof(buf), GO120, 8, f, 2, 0x401200, 0x401000);
        e.seen = 0;
        CHECK(gopclntab_foreach(buf, n, check_cb, &e) == -EBADMSG && e.seen == 1);
        /* find compares, it does not scan: the exact long name is still found. */
        CHECK(gopclntab_find(buf, n, long_name, &entry, &size) == 0);
        CHECK(entry == 0x401100 && size == 0x100);
}

/* A fake address space for the pre-1.18 buildinfo: regions of bytes at virtual addresses. */
struct region {
        uint64_t va;
        const uint8_t *bytes;
        size_t n;
};

struct mem {
        struct region r[4];
        size_t nr;
        unsigned calls;
};

static int mem_read(void *userdata, uint64_t va, void *buf, size_t n)
{
        struct mem *m = userdata;

        m->calls++;
        for (size_t i = 0; i < m->nr; i++) {
                const struct region *r = &m->r[i];

                if (va >= r->va && va - r->va <= r->n && n <= r->n - (va - r->va)) {
                        memcpy(buf, r->bytes + (va - r->va), n);
                        return 0;
                }
        }
        return -EFAULT;
}

static int read_positive(_unused_ void *userdata, _unused_ uint64_t va, _unused_ void *buf,
                         _unused_ size_t n)
{
        return 1;
}

static size_t put_uvarint(uint8_t *p, uint64_t v)
{
        size_t i = 0;

        for (; v >= 0x80; v >>= 7)
                p[i++] = (uint8_t)(v | 0x80);
        p[i++] = (uint8_t)v;
        return i;
}

static void buildinfo_header(uint8_t *sec, unsigned ps, uint8_t flags)
{
        memset(sec, 0, 32);
        memcpy(sec, "\xff Go buildinf:", 14);
        sec[14] = (uint8_t)ps;
        sec[15] = flags;
}

/* Go 1.18+: the strings follow the header, each after its uvarint length. */
static size_t build_inline(uint8_t *sec, const char *vers, const char *mod)
{
        size_t o = 32;

        buildinfo_header(sec, 8, 2);
        o += put_uvarint(sec + o, strlen(vers));
        memcpy(sec + o, vers, strlen(vers));
        o += strlen(vers);
        o += put_uvarint(sec + o, strlen(mod));
        memcpy(sec + o, mod, strlen(mod));
        return o + strlen(mod);
}

static void put_endian(uint8_t *p, uint64_t v, unsigned size, bool big_endian)
{
        for (unsigned i = 0; i < size; i++)
                p[big_endian ? size - 1 - i : i] = (uint8_t)(v >> (8 * i));
}

static void test_buildinfo_inline(void)
{
        static const char mod[] = "0w\xaf\x0c\x92t\b\x02A\xe1\xc1\a\xe6\xd6\x18\xe6path\tcmd\n";
        uint8_t sec[GOSYM_VERSION_MAX + 128];
        char v[GOSYM_VERSION_MAX + 1];
        size_t n;
        int r;

        printf("buildinfo, inlined\n");
        n = build_inline(sec, "go1.23.5", mod);
        for (size_t len = 0; len <= n; len++) {
                uint8_t *p = exact_copy(sec, len);

                memset(v, 'z', sizeof(v));
                r = gobuildinfo_version(p, len, NULL, NULL, v, sizeof(v));
                if (len >= 32 + 1 + 8) {
                        CHECK(r == 0);
                        CHECK(strcmp(v, "go1.23.5") == 0);
                } else {
                        CHECK(r == -EBADMSG);
                        CHECK(v[0] == 'z');
                }
                exact_free(p, len);
        }

        /* The buffer: exactly enough, one byte short, none. */
        CHECK(gobuildinfo_version(sec, n, NULL, NULL, v, 9) == 0 && strcmp(v, "go1.23.5") == 0);
        memset(v, 'z', sizeof(v));
        CHECK(gobuildinfo_version(sec, n, NULL, NULL, v, 8) == -ENOBUFS && v[0] == 'z');
        CHECK(gobuildinfo_version(sec, n, NULL, NULL, NULL, 0) == -ENOBUFS);

        /* Experiments after a space are part of the version. */
        n = build_inline(sec, "go1.23.5 X:boringcrypto", "");
        CHECK(gobuildinfo_version(sec, n, NULL, NULL, v, sizeof(v)) == 0);
        CHECK(strcmp(v, "go1.23.5 X:boringcrypto") == 0);

        /* Lengths: the cap, over the cap, empty, past the section. */
        char longest[GOSYM_VERSION_MAX + 2];
        memset(longest, 'g', sizeof(longest));
        longest[GOSYM_VERSION_MAX] = '\0';
        n = build_inline(sec, longest, "");
        CHECK(gobuildinfo_version(sec, n, NULL, NULL, v, sizeof(v)) == 0);
        CHECK(strlen(v) == GOSYM_VERSION_MAX);
        longest[GOSYM_VERSION_MAX] = 'g';
        longest[GOSYM_VERSION_MAX + 1] = '\0';
        n = build_inline(sec, longest, "");
        CHECK(gobuildinfo_version(sec, n, NULL, NULL, v, sizeof(v)) == -EBADMSG);
        n = build_inline(sec, "", "");
        CHECK(gobuildinfo_version(sec, n, NULL, NULL, v, sizeof(v)) == -ENOENT);
        n = build_inline(sec, "go1.23.5", "");
        sec[32] = 9; /* takes in the modinfo's length byte, which is not printable */
        CHECK(gobuildinfo_version(sec, n, NULL, NULL, v, sizeof(v)) == -EBADMSG);
        sec[32] = 10; /* past the end */
        CHECK(gobuildinfo_version(sec, n, NULL, NULL, v, sizeof(v)) == -EBADMSG);

        /* uvarints: non-minimal accepted (as Go does), unterminated and 65-bit refused. */
        n = build_inline(sec, "go1.23.5", "");
        memmove(sec + 34, sec + 33, n - 33);
        sec[32] = 0x88;
        sec[33] = 0x00;
        CHECK(gobuildinfo_version(sec, n + 1, NULL, NULL, v, sizeof(v)) == 0);
        CHECK(strcmp(v, "go1.23.5") == 0);
        memset(sec + 32, 0xff, 10);
        sec[41] = 0x01; /* 2^64 - 1: overflows no 64 bits, but is far too long */
        CHECK(gobuildinfo_version(sec, 64, NULL, NULL, v, sizeof(v)) == -EBADMSG);
        sec[41] = 0x02;
        CHECK(gobuildinfo_version(sec, 64, NULL, NULL, v, sizeof(v)) == -EBADMSG);
        memset(sec + 32, 0x80, 32);
        CHECK(gobuildinfo_version(sec, 64, NULL, NULL, v, sizeof(v)) == -EBADMSG);

        /* Not printable, bad magic, bad pointer size. */
        n = build_inline(sec, "go1.2\n3", "");
        CHECK(gobuildinfo_version(sec, n, NULL, NULL, v, sizeof(v)) == -EBADMSG);
        n = build_inline(sec, "go1.2\xc3\xa9", "");
        CHECK(gobuildinfo_version(sec, n, NULL, NULL, v, sizeof(v)) == -EBADMSG);
        n = build_inline(sec, "go1.23.5", "");
        sec[1] = 'g';
        CHECK(gobuildinfo_version(sec, n, NULL, NULL, v, sizeof(v)) == -EBADMSG);
        n = build_inline(sec, "go1.23.5", "");
        sec[14] = 5;
        CHECK(gobuildinfo_version(sec, n, NULL, NULL, v, sizeof(v)) == -EBADMSG);
        CHECK(gobuildinfo_version(NULL, 0, NULL, NULL, v, sizeof(v)) == -EBADMSG);

        /* Random flips. */
        n = build_inline(sec, "go1.23.5", mod);
        for (unsigned k = 0; k < 3000; k++) {
                uint8_t *p = exact_copy(sec, n);

                for (unsigned j = 1 + rng() % 3; j > 0; j--)
                        p[rng() % n] = (uint8_t)rng();
                r = gobuildinfo_version(p, n, NULL, NULL, v, sizeof(v));
                CHECK(r == 0 || r == -EBADMSG || r == -ENOENT || r == -EOPNOTSUPP);
                if (r == 0) {
                        CHECK(strlen(v) <= GOSYM_VERSION_MAX);
                        for (const char *c = v; *c; c++)
                                CHECK(*c >= 0x20 && *c < 0x7f);
                }
                exact_free(p, n);
        }
}

/* Before 1.18: the header points at Go string headers {data, len} elsewhere in the file. */
static void test_buildinfo_pointers(unsigned ps, bool big_endian)
{
        const uint64_t hdr_va = 0x5a0000, str_va = 0x4c0000;
        uint8_t sec[32], hdr[4 * 8];
        const char *vers = "go1.15.15";
        char v[GOSYM_VERSION_MAX + 1];
        struct mem m = {};
        int r;

        printf("buildinfo, pointers, ptrsize %u%s\n", ps, big_endian ? ", big endian" : "");
        buildinfo_header(sec, ps, big_endian ? 1 : 0);
        put_endian(sec + 16, hdr_va, ps, big_endian);          /* runtime.buildVersion */
        put_endian(sec + 16 + ps, hdr_va + 2 * ps, ps, big_endian); /* runtime.modinfo */
        memset(hdr, 0, sizeof(hdr));
        put_endian(hdr, str_va, ps, big_endian);
        put_endian(hdr + ps, strlen(vers), ps, big_endian);
        m.r[0] = (struct region){hdr_va, hdr, 4 * ps};
        m.r[1] = (struct region){str_va, (const uint8_t *)vers, strlen(vers)};
        m.nr = 2;

        CHECK(gobuildinfo_version(sec, sizeof(sec), mem_read, &m, v, sizeof(v)) == 0);
        CHECK(strcmp(v, vers) == 0);
        CHECK(gobuildinfo_version(sec, sizeof(sec), mem_read, &m, v, 10) == 0);
        CHECK(gobuildinfo_version(sec, sizeof(sec), mem_read, &m, v, 9) == -ENOBUFS);
        CHECK(gobuildinfo_version(sec, sizeof(sec), NULL, NULL, v, sizeof(v)) == -EOPNOTSUPP);
        /* A read_va that breaks its contract (returns > 0) is an I/O error, not success. */
        CHECK(gobuildinfo_version(sec, sizeof(sec), read_positive, NULL, v, sizeof(v)) == -EIO);
        for (size_t len = 0; len < sizeof(sec); len++)
                CHECK(gobuildinfo_version(sec, len, mem_read, &m, v, sizeof(v)) == -EBADMSG);

        /* read_va's errors pass through: the version string cut short, the header cut. */
        m.r[1].n = strlen(vers) - 1;
        CHECK(gobuildinfo_version(sec, sizeof(sec), mem_read, &m, v, sizeof(v)) == -EFAULT);
        m.r[1].n = strlen(vers);
        m.r[0].n = 2 * ps - 1;
        CHECK(gobuildinfo_version(sec, sizeof(sec), mem_read, &m, v, sizeof(v)) == -EFAULT);
        m.r[0].n = 4 * ps;

        /* Length: 0, over the cap (read_va is not asked for it), absurd. */
        put_endian(hdr + ps, 0, ps, big_endian);
        CHECK(gobuildinfo_version(sec, sizeof(sec), mem_read, &m, v, sizeof(v)) == -ENOENT);
        put_endian(hdr + ps, GOSYM_VERSION_MAX + 1, ps, big_endian);
        m.calls = 0;
        CHECK(gobuildinfo_version(sec, sizeof(sec), mem_read, &m, v, sizeof(v)) == -EBADMSG);
        CHECK(m.calls == 1);
        put_endian(hdr + ps, ps == 8 ? UINT64_MAX : UINT32_MAX, ps, big_endian);
        CHECK(gobuildinfo_version(sec, sizeof(sec), mem_read, &m, v, sizeof(v)) == -EBADMSG);
        put_endian(hdr + ps, strlen(vers), ps, big_endian);

        /* Random flips of the section and of the string header. */
        for (unsigned k = 0; k < 2000; k++) {
                uint8_t saved_sec[sizeof(sec)], saved_hdr[sizeof(hdr)];

                memcpy(saved_sec, sec, sizeof(sec));
                memcpy(saved_hdr, hdr, sizeof(hdr));
                for (unsigned j = 1 + rng() % 3; j > 0; j--) {
                        if (rng() % 2)
                                sec[rng() % sizeof(sec)] = (uint8_t)rng();
                        else
                                hdr[rng() % (4 * ps)] = (uint8_t)rng();
                }
                r = gobuildinfo_version(sec, sizeof(sec), mem_read, &m, v, sizeof(v));
                CHECK(r == 0 || r == -EBADMSG || r == -ENOENT || r == -EFAULT);
                if (r == 0)
                        CHECK(strlen(v) <= GOSYM_VERSION_MAX);
                memcpy(sec, saved_sec, sizeof(sec));
                memcpy(hdr, saved_hdr, sizeof(hdr));
        }
}

static void test_goversion(void)
{
        static const struct {
                const char *s;
                unsigned major, minor;
        } good[] = {
                {"go1.19.8", 1, 19},     {"go1.15.15", 1, 15},       {"go1.23.5", 1, 23},
                {"go1.21rc2", 1, 21},    {"go1.20beta1", 1, 20},     {"go1.22", 1, 22},
                {"go1", 1, 0},           {"go1.19.8b7", 1, 19},      {"go1.21.0-1", 1, 21},
                {"go1.9.2", 1, 9},       {"go1.23.5 X:boringcrypto", 1, 23},
                {"go1.20 X:nocoverageredesign", 1, 20}, {"go2.0", 2, 0},
        };
        static const char *const bad[] = {
                "",        "go",       "go1.",     "go1.x",    "devel go1.22-1a2b3c4 Thu",
                "go0.1",   "go01.2",   "go1.019",  "go1.19x",  "go1.123456",
                "gox",     "Go1.19",   "go1.19rc", "go-1.2",   "go1.19.",
                "go1.19b", "go 1.19",  "go1..2",   "go1.19\n", "go99999999999999999999.1",
        };
        unsigned major = 77, minor = 77;

        printf("goversion_parse\n");
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                CHECK(goversion_parse(good[i].s, &major, &minor) == 0);
                CHECK(major == good[i].major && minor == good[i].minor);
        }
        major = minor = 77;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                CHECK(goversion_parse(bad[i], &major, &minor) == -EINVAL);
        CHECK(goversion_parse(NULL, &major, &minor) == -EINVAL);
        CHECK(major == 77 && minor == 77);
}

int main(void)
{
        for (enum layout l = GO12; l <= GO120; l++) {
                test_layout(l, 8);
                test_layout(l, 4);
        }
        test_malformed();
        test_long_names();
        test_buildinfo_inline();
        test_buildinfo_pointers(8, false);
        test_buildinfo_pointers(4, false);
        test_buildinfo_pointers(8, true);
        test_buildinfo_pointers(4, true);
        test_goversion();
        printf("ok\n");
        return 0;
}
