/* The plan cache; see plancache.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "plancache.h"
#include "macro.h"

static const uint8_t magic[4] = { 'T', 'S', 'P', '1' };

static uint32_t get32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static struct plancache_entry *find(struct plancache *c, const char *key, uint64_t size)
{
        for (size_t i = 0; i < c->n; i++)
                if (c->e[i].size == size && strcmp(c->e[i].key, key) == 0)
                        return &c->e[i];
        return NULL;
}

static int remember(struct plancache *c, const char *key, size_t key_len, uint64_t size,
                    const uint8_t *plan, size_t plan_len)
{
        struct plancache_entry *e;

        if (c->n == PLANCACHE_ENTRIES_MAX) {
                c->full++;
                return -ENOSPC;
        }
        if (c->n == c->cap) {
                size_t cap = c->cap ? c->cap * 2 : 16;
                struct plancache_entry *p = realloc(c->e, cap * sizeof(*p));

                if (!p)
                        return -ENOMEM;
                c->e = p;
                c->cap = cap;
        }
        e = &c->e[c->n];
        e->key = strndup(key, key_len);
        e->plan = malloc(plan_len);
        if (!e->key || !e->plan) {
                free(e->key);
                free(e->plan);
                return -ENOMEM;
        }
        memcpy(e->plan, plan, plan_len);
        e->plan_len = plan_len;
        e->size = size;
        c->n++;
        return 0;
}

/* Parses the records of buf; returns the length of the good prefix. */
static size_t load(struct plancache *c, const uint8_t *buf, size_t n)
{
        size_t pos = 0;

        while (n - pos >= 12) {
                const uint8_t *r = buf + pos;
                uint32_t len = get32(r + 4), key_len, plan_len;
                uint64_t size;
                struct msg_plan *plan;

                if (memcmp(r, magic, 4) != 0 || len > n - pos - 8 || len < 8 + 2 + 4 + 4)
                        break;
                if (crc32(0, r, 8 + len - 4) != get32(r + 8 + len - 4))
                        break;
                memcpy(&size, r + 8, 8);
                key_len = (uint32_t)r[16] | (uint32_t)r[17] << 8;
                if (key_len == 0 || 18 + (size_t)key_len + 4 > 8 + (size_t)len - 4)
                        break;
                plan_len = get32(r + 18 + key_len);
                if (22 + (size_t)key_len + plan_len != 8 + (size_t)len - 4)
                        break;
                if (memchr(r + 18, '\0', key_len))
                        break;
                /* A record must decode as a plan, or it is not one. */
                plan = malloc(sizeof(*plan));
                if (!plan)
                        break;
                if (msg_decode_plan(r + 22 + key_len, plan_len, plan) < 0) {
                        free(plan);
                        break;
                }
                free(plan);
                if (remember(c, (const char *)r + 18, key_len, size, r + 22 + key_len,
                             plan_len) < 0)
                        break;
                pos += 8 + (size_t)len;
        }
        return pos;
}

int plancache_open(struct plancache *c, const char *dir)
{
        _cleanup_free_ uint8_t *buf = NULL;
        _cleanup_close_ int fd = -1, dfd = -1;
        struct stat st;
        size_t good, done = 0;

        *c = (struct plancache){ .fd = -1 };
        if (!dir)
                return 0;
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        (void)unlinkat(dfd, PLANCACHE_OLD_FILE_NAME, 0);
        for (int attempt = 0;; attempt++) {
                fd = openat(dfd, PLANCACHE_FILE_NAME,
                            O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY,
                            0600);
                if (fd >= 0 && fstat(fd, &st) < 0)
                        return -errno;
                if (fd >= 0 && S_ISREG(st.st_mode) && st.st_uid == 0 && st.st_nlink == 1)
                        break;
                /* A link, a folder, another's file or a hard link (from when the folder was
                 * the analyzer's): not ours to read or write. Removed, and made anew. */
                fd = safe_close(fd);
                c->load_errors++;
                if (attempt > 0 || (unlinkat(dfd, PLANCACHE_FILE_NAME, 0) < 0 &&
                                    unlinkat(dfd, PLANCACHE_FILE_NAME, AT_REMOVEDIR) < 0))
                        return -EBADF;
        }
        if ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) < 0)
                return -errno;
        if ((uint64_t)st.st_size > PLANCACHE_FILE_MAX) {
                /* Too large to be ours: start over rather than read it. */
                c->load_errors++;
                if (ftruncate(fd, 0) < 0)
                        return -errno;
                st.st_size = 0;
        }
        buf = malloc((size_t)st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        while (done < (size_t)st.st_size) {
                ssize_t k = pread(fd, buf + done, (size_t)st.st_size - done, (off_t)done);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                done += (size_t)k;
        }
        good = load(c, buf, done);
        if (good < (size_t)st.st_size) {
                c->load_errors++;
                if (ftruncate(fd, (off_t)good) < 0)
                        return -errno;
        }
        if (lseek(fd, (off_t)good, SEEK_SET) < 0)
                return -errno;
        c->fd = TAKE_FD(fd);
        return 0;
}

bool plancache_has_size(const struct plancache *c, uint64_t size)
{
        for (size_t i = 0; i < c->n; i++)
                if (c->e[i].size == size)
                        return true;
        return false;
}

int plancache_get(struct plancache *c, const char *key, uint64_t size, struct msg_plan *ret)
{
        _cleanup_free_ struct msg_plan *plan = NULL;
        struct plancache_entry *e;

        if (!key[0] || !(e = find(c, key, size)) || !(plan = malloc(sizeof(*plan))) ||
            msg_decode_plan(e->plan, e->plan_len, plan) < 0) {
                c->misses++;
                return -ENOENT;
        }
        plan->file_id = ret->file_id;
        *ret = *plan;
        c->hits++;
        return 0;
}

int plancache_put(struct plancache *c, const char *key, uint64_t size, const struct msg_plan *plan)
{
        msgpack_sbuffer sb;
        size_t key_len = strlen(key), len;
        _cleanup_free_ uint8_t *rec = NULL;
        int r;

        if (key_len == 0 || key_len > UINT16_MAX || find(c, key, size))
                return 0;
        msgpack_sbuffer_init(&sb);
        r = msg_encode_plan(&sb, plan);
        if (r < 0)
                goto out;
        r = remember(c, key, key_len, size, (const uint8_t *)sb.data, sb.size);
        if (r < 0)
                goto out;
        c->stored++;
        if (c->fd < 0)
                goto out;
        len = 8 + 2 + key_len + 4 + sb.size + 4;
        rec = malloc(8 + len);
        if (!rec) {
                r = -ENOMEM;
                goto out;
        }
        memcpy(rec, magic, 4);
        put32(rec + 4, (uint32_t)len);
        memcpy(rec + 8, &size, 8);
        rec[16] = (uint8_t)key_len;
        rec[17] = (uint8_t)(key_len >> 8);
        memcpy(rec + 18, key, key_len);
        put32(rec + 18 + key_len, (uint32_t)sb.size);
        memcpy(rec + 22 + key_len, sb.data, sb.size);
        put32(rec + 8 + len - 4, (uint32_t)crc32(0, rec, (uInt)(8 + len - 4)));
        /* One write of a whole record: a crash leaves at most a torn tail, cut at the next load. */
        if (write(c->fd, rec, 8 + len) != (ssize_t)(8 + len)) {
                c->write_errors++;
                r = -EIO;
        }
out:
        msgpack_sbuffer_destroy(&sb);
        return r;
}

void plancache_done(struct plancache *c)
{
        for (size_t i = 0; i < c->n; i++) {
                free(c->e[i].key);
                free(c->e[i].plan);
        }
        free(c->e);
        c->fd = safe_close(c->fd);
        *c = (struct plancache){ .fd = -1 };
}
