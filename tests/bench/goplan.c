/*
 * Go plan benchmark: what planning the probes of one Go executable costs the analyzer. For each
 * file, (a) cold: gotls_plan on the file, the full analysis (build info, .symtab or
 * .gopclntab, Capstone over Read and Write, DWARF or the version table), median of 5 runs;
 * (b) cached: what loaderd does instead when its plan cache holds the file's plan: the
 * SHA-256 of the file's bytes (sha256_fd) and the lookup and decoding of the plan
 * (plancache_get), median of 50 runs, each of which must be a cache hit. The file's pages are in the page cache
 * after the first run: "cold" means without the offset cache, not from disk.
 *
 * Usage: bench-goplan FILE...   Prints one line per file: FILE size_MB cold_ms cached_ms
 * (cached_ms is "-" when the file gets no probes, so that there is nothing to cache; the
 * reason goes to stderr). Exit status 1 when a file cannot be read or a cached run misses.
 * Build: ninja -C build tests/bench-goplan. Driver: tests/bench/goanalysis.py.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "binary/gotls.h"
#include "plancache.h"
#include "sha256.h"

#define COLD_RUNS 5
#define CACHED_RUNS 50

static double now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
        qsort(v, n, sizeof(*v), cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Benchmarks one file and prints its line; returns 0 or a negative errno. */
static int bench_file(const char *path, struct msg_plan *plan, struct gotls_info *info)
{
        double cold[COLD_RUNS], cached[CACHED_RUNS];
        struct plancache c;
        char key[SHA256_HEX_SIZE];
        struct stat st;
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                fprintf(stderr, "%s: cannot open: %s\n", path, strerror(-r));
                return r;
        }
        if (fstat(fd, &st) < 0) {
                r = -errno;
                fprintf(stderr, "%s: cannot stat: %s\n", path, strerror(-r));
                close(fd);
                return r;
        }

        for (int i = 0; i < COLD_RUNS; i++) {
                double t0 = now_ms();

                r = gotls_plan(fd, plan, info);
                cold[i] = now_ms() - t0;
                if (r == -ENOTSUP) {
                        /* Not Go: the cheap check is what every other file costs. */
                        snprintf(plan->reason, sizeof(plan->reason), "not a Go executable");
                        plan->n_probes = 0;
                } else if (r < 0) {
                        fprintf(stderr, "%s: gotls_plan failed: %s\n", path, strerror(-r));
                        close(fd);
                        return r;
                }
        }
        if (plan->n_probes == 0) {
                fprintf(stderr, "%s: no probes (%s), nothing to cache\n", path, plan->reason);
                printf("%s %.1f %.3f -\n", path, (double)st.st_size / 1e6, median(cold, COLD_RUNS));
                close(fd);
                return 0;
        }

        r = plancache_open(&c, NULL);
        if (r < 0) {
                fprintf(stderr, "plancache_open failed: %s\n", strerror(-r));
                close(fd);
                return r;
        }
        /* The plan of the last cold run, stored as loaderd stores a planner's. */
        r = sha256_fd(fd, (uint64_t)st.st_size, key);
        if (r >= 0)
                r = plancache_put(&c, key, (uint64_t)st.st_size, plan);
        if (r < 0 || c.stored != 1) {
                fprintf(stderr, "%s: filling the cache failed (r=%d, stored=%llu)\n", path, r,
                        (unsigned long long)c.stored);
                r = r < 0 ? r : -EIO;
                goto out;
        }
        for (int i = 0; i < CACHED_RUNS; i++) {
                double t0 = now_ms();

                r = sha256_fd(fd, (uint64_t)st.st_size, key);
                if (r >= 0)
                        r = plancache_get(&c, key, (uint64_t)st.st_size, plan);
                cached[i] = now_ms() - t0;
                if (r < 0 || plan->n_probes == 0) {
                        fprintf(stderr, "%s: cached run %d did not hit the cache (r=%d)\n", path,
                                i, r);
                        r = r < 0 ? r : -EIO;
                        goto out;
                }
        }
        printf("%s %.1f %.3f %.4f\n", path, (double)st.st_size / 1e6, median(cold, COLD_RUNS),
               median(cached, CACHED_RUNS));
        r = 0;
out:
        plancache_done(&c);
        close(fd);
        return r;
}

int main(int argc, char **argv)
{
        struct msg_plan *plan;
        struct gotls_info *info;
        int ret = 0;

        if (argc < 2) {
                fprintf(stderr, "Usage: %s FILE...\n", argv[0]);
                return 2;
        }
        plan = calloc(1, sizeof(*plan));
        info = calloc(1, sizeof(*info));
        if (!plan || !info) {
                free(plan);
                free(info);
                return 1;
        }
        for (int i = 1; i < argc; i++) {
                if (bench_file(argv[i], plan, info) < 0)
                        ret = 1;
                fflush(stdout);
        }
        free(plan);
        free(info);
        return ret;
}
