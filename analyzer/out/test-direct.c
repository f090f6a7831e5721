/*
 * The direct output stream (out/direct.c, its writer thread): whatever the sizes of the writes
 * and where the flushes fall, the file holds exactly the bytes written, in order, after what it held before;
 * with O_APPEND and without; after the file is cut back under the writer; on a pipe. Where the
 * file system takes direct writes (the build directory's, normally), whole blocks go around
 * the page cache: few of the file's pages are cached afterwards (mincore), where writing the
 * same through stdio leaves all of them cached.
 *
 * Usage: test-direct [DIR]   (files are made in DIR, default: the current directory)
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "out/direct.h"

#define BUF_SIZE (1u << 20)

static char dir[4096] = ".";
static char stdio_buf[BUF_SIZE];

/* Deterministic bytes: line-like text of varying lengths. */
static void fill(char *p, size_t n, unsigned seed)
{
        for (size_t i = 0; i < n; i++) {
                seed = seed * 1103515245u + 12345u;
                p[i] = (seed >> 16) % 61 == 0 ? '\n' : (char)('a' + (seed >> 16) % 26);
        }
}

static int make_file(const char *name, int flags, char *path, size_t path_size)
{
        int fd;

        snprintf(path, path_size, "%s/%s", dir, name);
        (void)unlink(path);
        fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC | flags, 0600);
        assert(fd >= 0);
        return fd;
}

static char *slurp(const char *path, size_t *ret_n)
{
        struct stat st;
        char *p;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        assert(fd >= 0 && fstat(fd, &st) == 0);
        p = malloc((size_t)st.st_size + 1);
        assert(p);
        assert(pread(fd, p, (size_t)st.st_size, 0) == st.st_size);
        close(fd);
        *ret_n = (size_t)st.st_size;
        return p;
}

/* Pages of the file in the page cache. */
static size_t cached_pages(const char *path)
{
        struct stat st;
        size_t pages, n = 0;
        unsigned char *vec;
        void *m;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        assert(fd >= 0 && fstat(fd, &st) == 0);
        pages = ((size_t)st.st_size + 4095) / 4096;
        m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        assert(m != MAP_FAILED);
        vec = calloc(pages, 1);
        assert(vec && mincore(m, (size_t)st.st_size, vec) == 0);
        for (size_t i = 0; i < pages; i++)
                n += vec[i] & 1;
        free(vec);
        munmap(m, (size_t)st.st_size);
        close(fd);
        return n;
}

/* Whether this directory's file system takes O_DIRECT writes. */
static bool fs_takes_direct(void)
{
        char path[4200];
        void *b;
        bool ok;
        int fd;

        snprintf(path, sizeof(path), "%s/direct-probe", dir);
        fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC | O_DIRECT, 0600);
        if (fd < 0) {
                (void)unlink(path);
                return false;
        }
        assert(posix_memalign(&b, 4096, 4096) == 0);
        memset(b, 'x', 4096);
        ok = write(fd, b, 4096) == 4096;
        free(b);
        close(fd);
        unlink(path);
        return ok;
}

/*
 * Writes total bytes through a direct stream onto fd in pieces of random size (1 byte to
 * 300 KiB), flushing at random points, after `before` bytes already in the file; checks the
 * file. Returns the writer's counters in *ret_w and the file's pages in the page cache before
 * it is read back in *ret_cached.
 */
static void run(const char *name, int flags, size_t before, size_t total, unsigned seed,
                struct direct_writer *ret_w, size_t *ret_cached, char *ret_path, size_t path_size)
{
        char *want = malloc(before + total), *got;
        struct direct_writer w;
        size_t off = 0, n;
        FILE *f;
        int fd = make_file(name, flags, ret_path, path_size);

        assert(want);
        fill(want, before + total, seed);
        assert(write(fd, want, before) == (ssize_t)before);
        f = direct_stream_open(&w, fd, stdio_buf, sizeof(stdio_buf));
        assert(f);
        srand(seed);
        while (off < total) {
                size_t k = (size_t)rand() % (rand() % 4 == 0 ? 300000 : 5000) + 1;

                if (k > total - off)
                        k = total - off;
                assert(fwrite(want + before + off, 1, k, f) == k);
                off += k;
                if (rand() % 3 == 0)
                        assert(fflush(f) == 0);
        }
        assert(fflush(f) == 0 && !ferror(f));
        assert(fclose(f) == 0); /* everything written, the thread stopped */
        *ret_w = w;
        direct_writer_done(&w);
        /* The writer left the fd as it found it. */
        assert((fcntl(fd, F_GETFL) & O_DIRECT) == 0);
        close(fd);
        *ret_cached = cached_pages(ret_path);
        got = slurp(ret_path, &n);
        printf("  %s: %zu bytes (%zu before), direct %llu, cached %llu%s\n", name, n, before,
               (unsigned long long)ret_w->direct_bytes, (unsigned long long)ret_w->cached_bytes,
               ret_w->direct ? "" : " (page cache only)");
        assert(n == before + total && memcmp(got, want, n) == 0);
        assert(ret_w->direct_bytes + ret_w->cached_bytes == total);
        free(got);
        free(want);
}

static void test_exact(bool direct_fs)
{
        char path[4200];
        struct direct_writer w;
        size_t cached;

        printf("exact bytes:\n");
        run("direct-append", O_APPEND, 0, 9u << 20, 1, &w, &cached, path, sizeof(path));
        assert(w.direct == direct_fs && (w.direct_bytes > 0) == direct_fs);
        if (direct_fs) {
                /* One page or two per flush at most; buffered, all 2,304 would be cached. */
                printf("  pages cached after 9 MiB: %zu of %u\n", cached, (9u << 20) / 4096);
                assert(cached < 400);
                assert(w.direct_bytes > 8u << 20);
        }
        /* Not at a block boundary to begin with, and without O_APPEND: at the file offset. */
        run("direct-offset", 0, 12345, 3u << 20, 2, &w, &cached, path, sizeof(path));
        assert(w.direct == direct_fs && (w.direct_bytes > 0) == direct_fs);
        /* Less than a block in all. */
        run("direct-small", O_APPEND, 100, 1000, 3, &w, &cached, path, sizeof(path));
        assert(w.direct_bytes == 0);
        unlink(path);
}

/* The file cut back under the writer (an operator's truncate, loaderd cutting a half line). */
static void test_truncated(bool direct_fs)
{
        char path[4200], a[20000], b[70000], *got;
        struct direct_writer w;
        size_t n;
        FILE *f;
        int fd = make_file("direct-cut", O_APPEND, path, sizeof(path));

        printf("cut back:\n");
        fill(a, sizeof(a), 4);
        fill(b, sizeof(b), 5);
        f = direct_stream_open(&w, fd, stdio_buf, sizeof(stdio_buf));
        assert(f);
        assert(fwrite(a, 1, sizeof(a), f) == sizeof(a) && fflush(f) == 0);
        assert(direct_writer_drain(&w) == 0); /* in the file now */
        assert(ftruncate(fd, 777) == 0);
        assert(fwrite(b, 1, sizeof(b), f) == sizeof(b) && fflush(f) == 0);
        assert(fclose(f) == 0);
        printf("  direct %llu, cached %llu\n", (unsigned long long)w.direct_bytes,
               (unsigned long long)w.cached_bytes);
        assert((w.direct_bytes > 0) == direct_fs);
        direct_writer_done(&w);
        close(fd);
        got = slurp(path, &n);
        assert(n == 777 + sizeof(b) && memcmp(got, a, 777) == 0 &&
               memcmp(got + 777, b, sizeof(b)) == 0);
        free(got);
        unlink(path);
}

/* O_DIRECT left on the file by an analyzer killed in a direct write: the next one clears it. */
static void test_left_direct(bool direct_fs)
{
        char path[4200], a[10000], *got;
        struct direct_writer w;
        size_t n;
        FILE *f;
        int fd;

        if (!direct_fs)
                return;
        printf("O_DIRECT left on the file:\n");
        fd = make_file("direct-left", O_APPEND | O_DIRECT, path, sizeof(path));
        fill(a, sizeof(a), 6);
        f = direct_stream_open(&w, fd, stdio_buf, sizeof(stdio_buf));
        assert(f && w.direct);
        assert((fcntl(fd, F_GETFL) & O_DIRECT) == 0);
        assert(fwrite(a, 1, sizeof(a), f) == sizeof(a) && fclose(f) == 0);
        direct_writer_done(&w);
        close(fd);
        got = slurp(path, &n);
        assert(n == sizeof(a) && memcmp(got, a, n) == 0);
        printf("  ok\n");
        free(got);
        unlink(path);
}

/* Not a regular file: plain writes. */
static void test_pipe(void)
{
        char a[50000], got[50000];
        struct direct_writer w;
        size_t n = 0;
        int p[2];
        FILE *f;

        printf("pipe:\n");
        fill(a, sizeof(a), 7);
        assert(pipe2(p, O_CLOEXEC) == 0);
        assert(fcntl(p[0], F_SETPIPE_SZ, 1 << 20) > 0);
        f = direct_stream_open(&w, p[1], stdio_buf, sizeof(stdio_buf));
        assert(f && !w.direct);
        assert(fwrite(a, 1, sizeof(a), f) == sizeof(a) && fclose(f) == 0);
        assert(w.direct_bytes == 0 && w.cached_bytes == sizeof(a));
        direct_writer_done(&w);
        close(p[1]);
        for (ssize_t k; (k = read(p[0], got + n, sizeof(got) - n)) > 0;)
                n += (size_t)k;
        close(p[0]);
        assert(n == sizeof(a) && memcmp(got, a, n) == 0);
        printf("  %zu bytes\n", n);
}

/* Write errors reach stdio: a full pipe with no reader fails the flush. */
static void test_error(void)
{
        struct direct_writer w;
        char a[1000];
        int p[2];
        FILE *f;

        printf("write error:\n");
        fill(a, sizeof(a), 8);
        assert(pipe2(p, O_CLOEXEC) == 0);
        close(p[0]);
        signal(SIGPIPE, SIG_IGN);
        f = direct_stream_open(&w, p[1], stdio_buf, sizeof(stdio_buf));
        assert(f);
        assert(fwrite(a, 1, sizeof(a), f) == sizeof(a));
        /* Handed over; the thread's write fails, and the next write of the stream says so. */
        assert(fflush(f) == 0);
        assert(direct_writer_drain(&w) == -EPIPE);
        assert(fwrite(a, 1, sizeof(a), f) == sizeof(a));
        assert(fflush(f) != 0 && ferror(f));
        printf("  the next flush failed as it should: %m\n");
        (void)fclose(f);
        direct_writer_done(&w);
        close(p[1]);
}

int main(int argc, char **argv)
{
        bool direct_fs;

        if (argc > 1)
                snprintf(dir, sizeof(dir), "%s", argv[1]);
        setvbuf(stdout, NULL, _IOLBF, 0);
        direct_fs = fs_takes_direct();
        printf("%s: direct writes %s\n", dir, direct_fs ? "taken" : "refused");
        test_exact(direct_fs);
        test_truncated(direct_fs);
        test_left_direct(direct_fs);
        test_pipe();
        test_error();
        return 0;
}
