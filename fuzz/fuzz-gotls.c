/*
 * libFuzzer target: the analysis of an untrusted Go executable, as the analyzer does for every
 * file loaderd offers, and the Go section parsers on their own. The input is a file's bytes:
 *
 *  - gotls_plan_mem on all of it: libelf, .go.buildinfo, .symtab or .gopclntab, the Capstone
 *    RET sweep, DWARF through libdwarf or the version table. A plan must survive the wire
 *    (msg_encode_plan, msg_decode_plan give it back equal), its probes must lie in the file,
 *    and every RET probe must sit on a RET instruction of the file's architecture;
 *  - gopclntab_foreach and gopclntab_find on the input from the first .gopclntab magic on (from
 *    its start if there is none): both must tell the same story about the two functions;
 *  - gobuildinfo_version on the input from the first build info magic on, with a read_va that
 *    reads the input itself at va = file offset, then goversion_parse on what it returns and on
 *    the strings that follow the first few "go" in the input.
 *
 * The input is copied to a buffer of its exact size, so that a read past the end is seen by
 * ASan, and because libelf may write to the image it is given. Invariant violations abort.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "binary/gosym.h"
#include "binary/gotls.h"
#include "gelf.h"
#include "fuzz.h"

/* Larger inputs only slow the fuzzer down: the parsers' work is linear in the section sizes. */
#define INPUT_MAX (4u << 20)
#define VERSION_SLICES_MAX 4
#define VERSION_SLICE_LEN 96

static const char *const go_funcs[2] = {"crypto/tls.(*Conn).Read", "crypto/tls.(*Conn).Write"};

/* --- the whole analysis ------------------------------------------------------------------- */

static bool text_ok(const char *s, size_t size)
{
        return memchr(s, '\0', size) != NULL;
}

static void check_func_info(const struct gotls_func *f, size_t size)
{
        CHECK(f->n_rets <= GOTLS_RETS_MAX);
        for (uint32_t i = 0; i < f->n_rets; i++)
                CHECK(f->rets[i] < size && f->rets[i] >= f->entry_offset &&
                      f->rets[i] - f->entry_offset < f->size);
}

static bool probes_equal(const struct msg_probe *a, const struct msg_probe *b)
{
        if (a->kind != b->kind || a->func != b->func || a->offset != b->offset)
                return false;
        for (unsigned j = 0; j < _TLSSNIFF_ARG_MAX; j++)
                if (a->loc[j].kind != b->loc[j].kind || a->loc[j].reg != b->loc[j].reg ||
                    a->loc[j].off != b->loc[j].off)
                        return false;
        return true;
}

static bool go_equal(const struct tlssniff_go_info *a, const struct tlssniff_go_info *b)
{
        return a->g_kind == b->g_kind && a->g_reg == b->g_reg && a->g_off == b->g_off &&
               a->goid == b->goid && a->conn == b->conn && a->conn_fd == b->conn_fd &&
               a->pfd == b->pfd && a->sysfd == b->sysfd;
}

/* The analyzer sends the plan to loaderd: it must come back as it left. */
static void check_round_trip(const struct msg_plan *plan)
{
        struct msg_plan *back = malloc(sizeof(*back));
        msgpack_sbuffer sb;

        CHECK(back);
        msgpack_sbuffer_init(&sb);
        CHECK(msg_encode_plan(&sb, plan) == 0);
        CHECK(msg_decode_plan((const uint8_t *)sb.data, sb.size, back) == 0);
        CHECK(back->file_id == plan->file_id);
        CHECK(strcmp(back->library, plan->library) == 0);
        CHECK(strcmp(back->reason, plan->reason) == 0);
        CHECK(back->n_probes == plan->n_probes);
        for (uint32_t i = 0; i < plan->n_probes; i++)
                CHECK(probes_equal(&back->probes[i], &plan->probes[i]));
        CHECK(back->has_go == plan->has_go);
        if (plan->has_go)
                CHECK(go_equal(&back->go, &plan->go));
        msgpack_sbuffer_destroy(&sb);
        free(back);
}

static void check_plan(const uint8_t *file, size_t size, const struct msg_plan *plan,
                       const struct gotls_info *info)
{
        static const uint8_t arm64_ret[4] = {0xc0, 0x03, 0x5f, 0xd6};
        const struct gotls_func *funcs[2] = {&info->read, &info->write};
        uint32_t k = 0;
        bool copy;

        CHECK(plan->file_id == 42); /* never touched */
        CHECK(text_ok(plan->library, sizeof(plan->library)));
        CHECK(text_ok(plan->reason, sizeof(plan->reason)));
        CHECK(plan->reason[0] != '\0'); /* there is always a why */
        CHECK(text_ok(info->version, sizeof(info->version)));
        CHECK(text_ok(info->build_id, sizeof(info->build_id)));
        CHECK(plan->n_probes <= MSG_PLAN_PROBES_MAX);
        if (plan->n_probes == 0) {
                CHECK(!plan->has_go);
                return;
        }

        CHECK(plan->has_go);
        CHECK(info->machine == EM_X86_64 || info->machine == EM_AARCH64);
        CHECK(plan->go.g_kind == TLSSNIFF_GO_G_REG || plan->go.g_kind == TLSSNIFF_GO_G_FS);
        CHECK(plan->go.goid < TLSSNIFF_GO_OFFSET_MAX && plan->go.conn < TLSSNIFF_GO_OFFSET_MAX &&
              plan->go.conn_fd < TLSSNIFF_GO_OFFSET_MAX && plan->go.pfd < TLSSNIFF_GO_OFFSET_MAX &&
              plan->go.sysfd < TLSSNIFF_GO_OFFSET_MAX);
        copy = info->read.copy_probe != 0;
        CHECK(plan->n_probes ==
              (copy ? 1 : 1 + info->read.n_rets) + 1 + info->write.n_rets);

        /* Per function: its entry probe, then one per RET, in the order info lists them; or,
         * for Read where proven, one probe on its call to runtime.memmove. */
        for (int i = 0; i < 2; i++) {
                uint8_t func = i == 0 ? TLSSNIFF_FUNC_GO_READ : TLSSNIFF_FUNC_GO_WRITE;
                const struct msg_probe *e = &plan->probes[k++];

                if (i == 0 && copy) {
                        /* amd64 only, on a call rel32 inside Read, c in a sane stack slot. */
                        CHECK(e->kind == TLSSNIFF_PROBE_COPY && e->func == func);
                        CHECK(info->machine == EM_X86_64);
                        CHECK(e->offset == info->read.copy_probe && e->offset < size &&
                              file[e->offset] == 0xe8);
                        CHECK(e->offset >= funcs[i]->entry_offset &&
                              e->offset - funcs[i]->entry_offset < funcs[i]->size);
                        CHECK(e->loc[TLSSNIFF_ARG_SSL].kind == TLSSNIFF_LOC_STACK &&
                              e->loc[TLSSNIFF_ARG_SSL].off > 0 &&
                              e->loc[TLSSNIFF_ARG_SSL].off % 8 == 0 &&
                              e->loc[TLSSNIFF_ARG_SSL].off <= 4096);
                        continue;
                }

                CHECK(e->kind == TLSSNIFF_PROBE_ENTRY && e->func == func);
                /* At the entry, or on the prologue's stack-check branch (gotls.c). */
                CHECK(e->offset == funcs[i]->entry_probe && e->offset < size);
                CHECK(e->offset >= funcs[i]->entry_offset &&
                      e->offset - funcs[i]->entry_offset < funcs[i]->size);

                for (uint32_t r = 0; r < funcs[i]->n_rets; r++) {
                        const struct msg_probe *p = &plan->probes[k++];

                        CHECK(p->kind == TLSSNIFF_PROBE_RETURN_AT && p->func == func);
                        CHECK(p->offset == funcs[i]->rets[r] && p->offset < size);
                        /* A probe anywhere else would corrupt the traced program. */
                        if (info->machine == EM_X86_64)
                                CHECK(file[p->offset] == 0xc3);
                        else
                                CHECK(p->offset % 4 == funcs[i]->entry_offset % 4 &&
                                      size - p->offset >= 4 &&
                                      memcmp(file + p->offset, arm64_ret, 4) == 0);
                }
        }
        CHECK(k == plan->n_probes);
        check_round_trip(plan);
}

static void fuzz_plan(const uint8_t *copy, size_t size)
{
        struct msg_plan *plan = calloc(1, sizeof(*plan));
        struct gotls_info *info = calloc(1, sizeof(*info));
        int r;

        CHECK(plan && info);
        plan->file_id = 42;
        r = gotls_plan_mem(copy, size, plan, info);
        CHECK(r == 0 || r == -ENOTSUP);
        if (r == 0) {
                /* Also when the analysis gave up half way: what info holds is in the file. */
                check_func_info(&info->read, size);
                check_func_info(&info->write, size);
                check_plan(copy, size, plan, info);
        } else {
                CHECK(plan->n_probes == 0 && plan->file_id == 42);
        }
        free(info);
        free(plan);
}

/* --- .gopclntab ---------------------------------------------------------------------------- */

struct walk {
        const uint8_t *tab;
        size_t n;
        size_t seen;
        unsigned count[2];
        uint64_t entry[2], size[2];
};

static int walk_cb(const char *name, uint64_t entry, uint64_t size, void *userdata)
{
        struct walk *w = userdata;
        size_t len;

        /* name points into the table and is terminated there, within the bound. */
        CHECK((const uint8_t *)name >= w->tab && (const uint8_t *)name < w->tab + w->n);
        len = strnlen(name, (size_t)(w->tab + w->n - (const uint8_t *)name));
        CHECK((const uint8_t *)name + len < w->tab + w->n);
        CHECK(len <= GOSYM_NAME_MAX);
        CHECK(size <= UINT64_MAX - entry);
        for (int i = 0; i < 2; i++)
                if (strcmp(name, go_funcs[i]) == 0) {
                        w->count[i]++;
                        w->entry[i] = entry;
                        w->size[i] = size;
                }
        w->seen++;
        return 0;
}

static int stop_cb(const char *name, uint64_t entry, uint64_t size, void *userdata)
{
        (void)name, (void)entry, (void)size;
        ++*(unsigned *)userdata;
        return 1;
}

static bool table_error(int r)
{
        return r == -EBADMSG || r == -EPROTONOSUPPORT;
}

/* Where a table starts: a known magic (Go 1.2, 1.16, 1.18, 1.20), two zero bytes; else 0. */
static size_t find_pclntab(const uint8_t *p, size_t n)
{
        for (size_t i = 0; n >= 6 && i <= n - 6; i++)
                if ((p[i] == 0xfb || p[i] == 0xfa || p[i] == 0xf0 || p[i] == 0xf1) &&
                    p[i + 1] == 0xff && p[i + 2] == 0xff && p[i + 3] == 0xff && p[i + 4] == 0 &&
                    p[i + 5] == 0)
                        return i;
        return 0;
}

static void fuzz_pclntab(const uint8_t *tab, size_t n)
{
        struct walk w = {.tab = tab, .n = n};
        unsigned calls = 0;
        int all;

        all = gopclntab_foreach(tab, n, walk_cb, &w);
        CHECK(all == 0 || table_error(all));
        if (all == 0 && w.seen > 0) {
                CHECK(gopclntab_foreach(tab, n, stop_cb, &calls) == 1);
                CHECK(calls == 1);
        }
        for (int i = 0; i < 2; i++) {
                uint64_t entry = 0x1111, size = 0x2222;
                int r = gopclntab_find(tab, n, go_funcs[i], &entry, &size);

                CHECK(r == 0 || r == -ENOENT || r == -ENOTUNIQ || table_error(r));
                if (r != 0)
                        CHECK(entry == 0x1111 && size == 0x2222); /* written only on success */
                else
                        CHECK(size <= UINT64_MAX - entry);
                /* find checks what foreach checks, except that names end within the bound. */
                if (table_error(r))
                        CHECK(all < 0);
                if (all == -EPROTONOSUPPORT)
                        CHECK(r == -EPROTONOSUPPORT);
                if (all != 0)
                        continue;
                CHECK(r == (w.count[i] == 0 ? -ENOENT : w.count[i] == 1 ? 0 : -ENOTUNIQ));
                if (r == 0)
                        CHECK(entry == w.entry[i] && size == w.size[i]);
        }
}

/* --- .go.buildinfo and version strings ---------------------------------------------------- */

struct file_view {
        const uint8_t *data;
        size_t size;
        unsigned calls;
};

/* The input as the address space: va = file offset. */
static int read_self(void *userdata, uint64_t va, void *buf, size_t n)
{
        struct file_view *v = userdata;

        v->calls++;
        CHECK(buf && n <= GOSYM_VERSION_MAX + 16);
        if (va > v->size || n > v->size - va)
                return -EFAULT;
        memcpy(buf, v->data + va, n);
        return 0;
}

static void check_version(const char *s)
{
        char again[32];
        unsigned major = 0x7777, minor = 0x7777, m2, n2;
        int r = goversion_parse(s, &major, &minor);

        CHECK(r == 0 || r == -EINVAL);
        if (r < 0) {
                CHECK(major == 0x7777 && minor == 0x7777); /* written only on success */
                return;
        }
        CHECK(strncmp(s, "go", 2) == 0);
        CHECK(major >= 1 && major <= 99999 && minor <= 99999);
        /* What it read, written back the plain way, reads the same. */
        snprintf(again, sizeof(again), "go%u.%u", major, minor);
        CHECK(goversion_parse(again, &m2, &n2) == 0 && m2 == major && n2 == minor);
}

static const char buildinfo_magic[] = "\xff Go buildinf:";

/* The header gobuildinfo_version accepts: then only the format decides how it goes on. */
static bool buildinfo_header_ok(const uint8_t *sec, size_t n)
{
        return n >= 32 && memcmp(sec, buildinfo_magic, sizeof(buildinfo_magic) - 1) == 0 &&
               (sec[14] == 4 || sec[14] == 8);
}

static void fuzz_buildinfo(const uint8_t *file, size_t size)
{
        const uint8_t *sec = memmem(file, size, buildinfo_magic, sizeof(buildinfo_magic) - 1);
        struct file_view v = {.data = file, .size = size};
        char version[GOSYM_VERSION_MAX + 8], small[8], bare[GOSYM_VERSION_MAX + 8];
        size_t n, len;
        int r, r_small, r_bare;

        if (!sec)
                sec = file;
        n = (size_t)(file + size - sec);
        memset(version, 'x', sizeof(version));
        r = gobuildinfo_version(sec, n, read_self, &v, version, sizeof(version));
        CHECK(r == 0 || r == -EBADMSG || r == -ENOENT || r == -EFAULT);
        CHECK(v.calls <= 2);
        if (r == 0) {
                len = strnlen(version, sizeof(version));
                CHECK(len > 0 && len < sizeof(version) && len <= GOSYM_VERSION_MAX);
                for (size_t i = 0; i < len; i++)
                        CHECK(version[i] >= 0x20 && version[i] <= 0x7e);
                check_version(version);
        }

        /* The same with less room: the whole version or -ENOBUFS. */
        v.calls = 0;
        r_small = gobuildinfo_version(sec, n, read_self, &v, small, sizeof(small));
        if (r == 0 && strlen(version) < sizeof(small))
                CHECK(r_small == 0 && strcmp(small, version) == 0);
        else if (r == 0)
                CHECK(r_small == -ENOBUFS);
        else
                CHECK(r_small == r);

        /* Without read_va: the inline format does not need it, the pointer format refuses. */
        r_bare = gobuildinfo_version(sec, n, NULL, NULL, bare, sizeof(bare));
        if (!buildinfo_header_ok(sec, n))
                CHECK(r == -EBADMSG && r_bare == -EBADMSG && v.calls == 0);
        else if (sec[15] & 2)
                CHECK(r_bare == r && (r != 0 || strcmp(bare, version) == 0));
        else
                CHECK(r_bare == -EOPNOTSUPP);
}

/* goversion_parse on the strings after the first few "go" in the input. */
static void fuzz_versions(const uint8_t *file, size_t size)
{
        const uint8_t *p = file;

        for (unsigned k = 0; k < VERSION_SLICES_MAX; k++) {
                const uint8_t *at = memmem(p, (size_t)(file + size - p), "go", 2);
                char s[VERSION_SLICE_LEN + 1];
                size_t len;

                if (!at)
                        break;
                len = (size_t)(file + size - at);
                if (len > VERSION_SLICE_LEN)
                        len = VERSION_SLICE_LEN;
                memcpy(s, at, len);
                s[len] = '\0';
                s[strcspn(s, "\n")] = '\0';
                check_version(s);
                p = at + 2;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint8_t *copy;
        size_t at;

        if (size > INPUT_MAX)
                return 0;
        copy = malloc(size ? size : 1);
        CHECK(copy);
        if (size > 0)
                memcpy(copy, data, size);

        /* The parsers first, on bytes libelf has not seen. */
        at = find_pclntab(copy, size);
        fuzz_pclntab(copy + at, size - at);
        fuzz_buildinfo(copy, size);
        fuzz_versions(copy, size);
        fuzz_plan(copy, size);

        free(copy);
        return 0;
}
