/* Unit test: the Go offset cache file survives restarts, torn tails and corruption. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "binary/gocache.h"

static struct msg_plan plan_for(uint32_t seed)
{
        struct msg_plan p = { .file_id = 7, .n_probes = 2, .has_go = true };

        snprintf(p.library, sizeof(p.library), "Go go1.19.8 (amd64, ABIInternal)");
        snprintf(p.reason, sizeof(p.reason), "plan %u", seed);
        p.probes[0] = (struct msg_probe){ .kind = TLSSNIFF_PROBE_ENTRY,
                                          .func = TLSSNIFF_FUNC_GO_READ,
                                          .offset = 0x1000 + seed };
        p.probes[0].loc[TLSSNIFF_ARG_SSL] = (struct tlssniff_loc){ TLSSNIFF_LOC_REG, 0, 0 };
        p.probes[1] = (struct msg_probe){ .kind = TLSSNIFF_PROBE_RETURN_AT,
                                          .func = TLSSNIFF_FUNC_GO_READ,
                                          .offset = 0x1100 + seed };
        p.probes[1].loc[TLSSNIFF_ARG_RESULT] = (struct tlssniff_loc){ TLSSNIFF_LOC_REG, 0, 0 };
        p.go = (struct tlssniff_go_info){ .g_kind = TLSSNIFF_GO_G_REG, .g_reg = 14,
                                          .goid = 152, .sysfd = 16 };
        return p;
}

static bool refuse(const struct msg_plan *plan, void *userdata)
{
        (void)plan, (void)userdata;
        return false;
}

static off_t file_size(const char *dir)
{
        char path[512];
        struct stat st;

        snprintf(path, sizeof(path), "%s/%s", dir, GOCACHE_FILE_NAME);
        assert(stat(path, &st) == 0);
        return st.st_size;
}

static void corrupt(const char *dir, off_t at, uint8_t xor_with)
{
        char path[512];
        uint8_t b;
        int fd;

        snprintf(path, sizeof(path), "%s/%s", dir, GOCACHE_FILE_NAME);
        fd = open(path, O_RDWR);
        assert(fd >= 0);
        assert(pread(fd, &b, 1, at) == 1);
        b ^= xor_with;
        assert(pwrite(fd, &b, 1, at) == 1);
        close(fd);
}

int main(void)
{
        char dir[] = "/tmp/test-gocache-XXXXXX";
        struct gocache c;
        struct msg_plan got, want;
        off_t one, two;
        char path[512];

        assert(mkdtemp(dir));

        /* Store two plans, reopen: both come back, under their own keys and sizes only. */
        assert(gocache_open(&c, dir) == 0);
        assert(gocache_get(&c, "build-a", 100, NULL, NULL, &got) == -ENOENT);
        want = plan_for(1);
        assert(gocache_put(&c, "build-a", 100, &want) == 0);
        one = file_size(dir);
        want = plan_for(2);
        assert(gocache_put(&c, "build-b", 200, &want) == 0);
        assert(gocache_put(&c, "", 300, &want) == 0 && c.n == 2); /* no key: not cached */
        gocache_done(&c);
        two = file_size(dir);
        assert(one > 0 && two > one);

        assert(gocache_open(&c, dir) == 0);
        assert(c.n == 2 && c.load_errors == 0);
        /* A hit gives the stored plan, with the caller's file id (a plan belongs to no file). */
        memset(&got, 0, sizeof(got));
        got.file_id = 99;
        assert(gocache_get(&c, "build-a", 100, NULL, NULL, &got) == 0);
        want = plan_for(1);
        assert(got.file_id == 99);
        want.file_id = 99;
        assert(memcmp(&got, &want, sizeof(got)) == 0);
        assert(gocache_get(&c, "build-a", 101, NULL, NULL, &got) == -ENOENT); /* size is part of the key */
        assert(gocache_get(&c, "build-b", 200, NULL, NULL, &got) == 0 && strcmp(got.reason, "plan 2") == 0);
        assert(c.hits == 2 && c.misses == 1);
        /* A plan the caller's check refuses (it does not fit the file at hand) is a miss. */
        assert(gocache_get(&c, "build-b", 200, refuse, NULL, &got) == -ENOENT);
        assert(c.hits == 2 && c.misses == 2);
        gocache_done(&c);

        /* A flipped byte in the second record: the first survives, the file is cut after it. */
        corrupt(dir, two - 9, 0x40);
        assert(gocache_open(&c, dir) == 0);
        assert(c.n == 1 && c.load_errors == 1);
        assert(file_size(dir) == one);
        /* Appending after the cut works and survives a reload. */
        want = plan_for(3);
        assert(gocache_put(&c, "build-c", 300, &want) == 0);
        gocache_done(&c);
        assert(gocache_open(&c, dir) == 0);
        assert(c.n == 2 && c.load_errors == 0);
        assert(gocache_get(&c, "build-c", 300, NULL, NULL, &got) == 0 && strcmp(got.reason, "plan 3") == 0);
        gocache_done(&c);

        /* A torn tail (a crash in the middle of a write) is cut too. */
        snprintf(path, sizeof(path), "%s/%s", dir, GOCACHE_FILE_NAME);
        assert(truncate(path, file_size(dir) - 3) == 0);
        assert(gocache_open(&c, dir) == 0);
        assert(c.n == 1 && c.load_errors == 1 && file_size(dir) == one);
        gocache_done(&c);

        /* Garbage from the start: nothing loaded, nothing crashes, the file is emptied. */
        corrupt(dir, 0, 0xff);
        assert(gocache_open(&c, dir) == 0);
        assert(c.n == 0 && c.load_errors == 1 && file_size(dir) == 0);
        gocache_done(&c);

        /* A folder that does not exist is an error the caller reports; memory-only works. */
        assert(gocache_open(&c, "/nonexistent/tlssniff-cache") < 0);
        assert(gocache_open(&c, NULL) == 0 && c.fd < 0);
        want = plan_for(4);
        assert(gocache_put(&c, "build-d", 1, &want) == 0);
        assert(gocache_get(&c, "build-d", 1, NULL, NULL, &got) == 0);
        gocache_done(&c);

        assert(unlink(path) == 0 && rmdir(dir) == 0);
        printf("gocache: ok\n");
        return 0;
}
