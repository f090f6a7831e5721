/* Unit test: the plan cache file survives restarts, torn tails and corruption, and is root's
 * alone: a link, a hard link or a folder in its place is replaced, never followed. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plancache.h"

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

static off_t file_size(const char *dir)
{
        char path[512];
        struct stat st;

        snprintf(path, sizeof(path), "%s/%s", dir, PLANCACHE_FILE_NAME);
        assert(stat(path, &st) == 0);
        return st.st_size;
}

static void corrupt(const char *dir, off_t at, uint8_t xor_with)
{
        char path[512];
        uint8_t b;
        int fd;

        snprintf(path, sizeof(path), "%s/%s", dir, PLANCACHE_FILE_NAME);
        fd = open(path, O_RDWR);
        assert(fd >= 0);
        assert(pread(fd, &b, 1, at) == 1);
        b ^= xor_with;
        assert(pwrite(fd, &b, 1, at) == 1);
        close(fd);
}

int main(void)
{
        char dir[] = "/tmp/test-plancache-XXXXXX";
        struct plancache c;
        struct msg_plan got, want;
        off_t one, two;
        char path[512];

        assert(mkdtemp(dir));

        /* Store two plans, reopen: both come back, under their own keys and sizes only. */
        assert(plancache_open(&c, dir) == 0);
        assert(plancache_get(&c, "build-a", 100, &got) == -ENOENT);
        want = plan_for(1);
        assert(plancache_put(&c, "build-a", 100, &want) == 0);
        one = file_size(dir);
        want = plan_for(2);
        assert(plancache_put(&c, "build-b", 200, &want) == 0);
        assert(plancache_put(&c, "", 300, &want) == 0 && c.n == 2); /* no key: not cached */
        plancache_done(&c);
        two = file_size(dir);
        assert(one > 0 && two > one);

        assert(plancache_open(&c, dir) == 0);
        assert(c.n == 2 && c.load_errors == 0);
        /* A hit gives the stored plan, with the caller's file id (a plan belongs to no file). */
        memset(&got, 0, sizeof(got));
        got.file_id = 99;
        assert(plancache_get(&c, "build-a", 100, &got) == 0);
        want = plan_for(1);
        assert(got.file_id == 99);
        want.file_id = 99;
        assert(memcmp(&got, &want, sizeof(got)) == 0);
        assert(plancache_get(&c, "build-a", 101, &got) == -ENOENT); /* size is part of the key */
        assert(plancache_get(&c, "build-b", 200, &got) == 0 && strcmp(got.reason, "plan 2") == 0);
        assert(c.hits == 2 && c.misses == 1);
        /* A size with no plan needs no hash to be a miss. */
        assert(plancache_has_size(&c, 100) && plancache_has_size(&c, 200) &&
               !plancache_has_size(&c, 101));
        plancache_done(&c);

        /* A flipped byte in the second record: the first survives, the file is cut after it. */
        corrupt(dir, two - 9, 0x40);
        assert(plancache_open(&c, dir) == 0);
        assert(c.n == 1 && c.load_errors == 1);
        assert(file_size(dir) == one);
        /* Appending after the cut works and survives a reload. */
        want = plan_for(3);
        assert(plancache_put(&c, "build-c", 300, &want) == 0);
        plancache_done(&c);
        assert(plancache_open(&c, dir) == 0);
        assert(c.n == 2 && c.load_errors == 0);
        assert(plancache_get(&c, "build-c", 300, &got) == 0 && strcmp(got.reason, "plan 3") == 0);
        plancache_done(&c);

        /* A torn tail (a crash in the middle of a write) is cut too. */
        snprintf(path, sizeof(path), "%s/%s", dir, PLANCACHE_FILE_NAME);
        assert(truncate(path, file_size(dir) - 3) == 0);
        assert(plancache_open(&c, dir) == 0);
        assert(c.n == 1 && c.load_errors == 1 && file_size(dir) == one);
        plancache_done(&c);

        /* Garbage from the start: nothing loaded, nothing crashes, the file is emptied. */
        corrupt(dir, 0, 0xff);
        assert(plancache_open(&c, dir) == 0);
        assert(c.n == 0 && c.load_errors == 1 && file_size(dir) == 0);
        plancache_done(&c);

        /* A folder that does not exist is an error the caller reports; memory-only works. */
        assert(plancache_open(&c, "/nonexistent/tlssniff-cache") < 0);
        assert(plancache_open(&c, NULL) == 0 && c.fd < 0);
        want = plan_for(4);
        assert(plancache_put(&c, "build-d", 1, &want) == 0);
        assert(plancache_get(&c, "build-d", 1, &got) == 0);
        plancache_done(&c);

        /* Whatever is in the file's place but a file of root's with one link is removed, not
         * followed or read: a symlink (its target untouched), a hard link, a folder. */
        {
                char target[600], other[600];
                struct stat st;
                int fd;

                snprintf(target, sizeof(target), "%s/target", dir);
                fd = open(target, O_WRONLY | O_CREAT | O_EXCL, 0644);
                assert(fd >= 0 && write(fd, "keep", 4) == 4);
                close(fd);
                assert(unlink(path) == 0 || errno == ENOENT);
                assert(symlink(target, path) == 0);
                assert(plancache_open(&c, dir) == 0 && c.n == 0 && c.load_errors == 1);
                plancache_done(&c);
                assert(lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
                       (st.st_mode & 07777) == 0600);
                assert(stat(target, &st) == 0 && st.st_size == 4);

                assert(unlink(path) == 0 && link(target, path) == 0);
                assert(plancache_open(&c, dir) == 0 && c.load_errors == 1);
                want = plan_for(5);
                assert(plancache_put(&c, "build-e", 5, &want) == 0);
                plancache_done(&c);
                assert(stat(target, &st) == 0 && st.st_size == 4 && st.st_nlink == 1);

                assert(unlink(path) == 0 && mkdir(path, 0700) == 0);
                assert(plancache_open(&c, dir) == 0 && c.load_errors == 1);
                plancache_done(&c);
                assert(lstat(path, &st) == 0 && S_ISREG(st.st_mode));
                snprintf(other, sizeof(other), "%s", target);
                assert(unlink(other) == 0);
        }

        /* Bounded: past PLANCACHE_ENTRIES_MAX a plan is refused and counted. */
        assert(plancache_open(&c, NULL) == 0);
        want = plan_for(6);
        for (unsigned i = 0; i < PLANCACHE_ENTRIES_MAX; i++) {
                char key[32];

                snprintf(key, sizeof(key), "k%u", i);
                assert(plancache_put(&c, key, i, &want) == 0);
        }
        assert(plancache_put(&c, "one-more", 1, &want) == -ENOSPC && c.full == 1);
        plancache_done(&c);

        assert(unlink(path) == 0 && rmdir(dir) == 0);
        printf("plancache: ok\n");
        return 0;
}
