/*
 * Unit test: OpenSSL function discovery on the real libssl of this machine (and node's static
 * OpenSSL when present), and clean refusals for files without TLS and for broken ELF.
 */
#undef NDEBUG
#include <assert.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "binary/tlslib.h"

static const char *find_libssl(void)
{
        static const char *const c[] = { "/usr/lib/x86_64-linux-gnu/libssl.so.3",
                                         "/usr/lib/aarch64-linux-gnu/libssl.so.3",
                                         "/usr/lib64/libssl.so.3" };

        for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
                if (access(c[i], R_OK) == 0)
                        return c[i];
        return NULL;
}

static int plan_file(const char *path, struct msg_plan *p)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC), r;

        assert(fd >= 0);
        /* Symbol discovery: one entry and one return probe per function (the placement
         * analysis, which may share probes between functions, is test-place's). */
        r = tlslib_plan(fd, PLACE_MODE_FALLBACK, p, NULL);
        close(fd);
        return r;
}

static void check_openssl_plan(const struct msg_plan *p, unsigned want_funcs)
{
        unsigned entries = 0, returns = 0;

        assert(p->n_probes == 2 * want_funcs);
        for (unsigned i = 0; i < p->n_probes; i++) {
                const struct msg_probe *q = &p->probes[i];

                assert(q->offset > 0);
                if (q->kind == TLSSNIFF_PROBE_ENTRY) {
                        entries++;
                        assert(q->loc[TLSSNIFF_ARG_SSL].kind == TLSSNIFF_LOC_REG);
                        assert(q->loc[TLSSNIFF_ARG_BUF].kind == TLSSNIFF_LOC_REG);
                } else {
                        returns++;
                        assert(q->loc[TLSSNIFF_ARG_RESULT].kind == TLSSNIFF_LOC_REG);
                }
        }
        assert(entries == want_funcs && returns == want_funcs);
}

int main(void)
{
        static struct msg_plan p;
        const char *libssl = find_libssl();
        static char junk[65536];
        struct stat st;

        assert(libssl); /* the test suite installs libssl3 */
        assert(plan_file(libssl, &p) == 0);
        check_openssl_plan(&p, 4);
        assert(strcmp(p.library, "libssl.so.3") == 0);

        if (access("/usr/bin/node", R_OK) == 0 && stat("/usr/bin/node", &st) == 0) {
                assert(plan_file("/usr/bin/node", &p) == 0);
                check_openssl_plan(&p, 4);
        }

        /* libcrypto and a program that only imports SSL_* have nothing to probe. */
        assert(plan_file("/bin/true", &p) == 0 && p.n_probes == 0);
        assert(strstr(p.reason, "no SSL_read"));

        /* Not ELF, random bytes, a truncated libssl: empty plan, no crash. */
        assert(tlslib_plan_mem("hello", 5, PLACE_MODE_AUTO, &p, NULL) == 0 && p.n_probes == 0);
        srand(1);
        for (size_t i = 0; i < sizeof(junk); i++)
                junk[i] = (char)rand();
        assert(tlslib_plan_mem(junk, sizeof(junk), PLACE_MODE_AUTO, &p, NULL) == 0 && p.n_probes == 0);
        {
                int fd = open(libssl, O_RDONLY | O_CLOEXEC);
                ssize_t n;

                assert(fd >= 0);
                n = read(fd, junk, sizeof(junk));
                assert(n == (ssize_t)sizeof(junk));
                close(fd);
                for (size_t cut = 0; cut <= sizeof(junk); cut += 4093)
                        assert(tlslib_plan_mem(junk, cut, PLACE_MODE_AUTO, &p, NULL) == 0 && p.n_probes == 0);
        }
        printf("tlslib: ok\n");
        return 0;
}
