/* The output file written around the page cache; see direct.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "direct.h"

/* Sets or clears O_DIRECT on the fd (its open file description) when it is not so already. */
static int set_direct(struct direct_writer *w, bool on)
{
        int fl;

        if (w->fd_direct == on)
                return 0;
        fl = fcntl(w->fd, F_GETFL);
        if (fl < 0)
                return -errno;
        if (fcntl(w->fd, F_SETFL, on ? fl | O_DIRECT : fl & ~O_DIRECT) < 0)
                return -errno;
        w->fd_direct = on;
        return 0;
}

/* Where write(2) puts the next byte: the end with O_APPEND, else the file offset. */
static int64_t next_position(const struct direct_writer *w)
{
        struct stat st;
        off_t off;
        int fl = fcntl(w->fd, F_GETFL);

        if (fl < 0)
                return -errno;
        if (fl & O_APPEND)
                return fstat(w->fd, &st) < 0 ? -errno : (int64_t)st.st_size;
        off = lseek(w->fd, 0, SEEK_CUR);
        return off < 0 ? -errno : (int64_t)off;
}

/* All of [data, data + n) through the page cache. */
static int write_cached(struct direct_writer *w, const char *data, size_t n)
{
        int r = set_direct(w, false);

        if (r < 0)
                return r;
        while (n > 0) {
                ssize_t k = write(w->fd, data, n);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                data += k;
                n -= (size_t)k;
                w->cached_bytes += (uint64_t)k;
        }
        return 0;
}

/*
 * Whole blocks from data (n >= DIRECT_ALIGN) around the page cache, through the bounce buffer;
 * returns the bytes written (a multiple of the block, unless the device ran out of space) or a
 * negative errno. -EINVAL and -EOPNOTSUPP: the file refuses direct writes here.
 */
static ssize_t write_direct(struct direct_writer *w, const char *data, size_t n)
{
        size_t k = n & ~(size_t)(DIRECT_ALIGN - 1);
        ssize_t m;
        int r;

        if (k > DIRECT_BOUNCE_SIZE)
                k = DIRECT_BOUNCE_SIZE;
        memcpy(w->bounce, data, k);
        r = set_direct(w, true);
        if (r < 0)
                return r;
        do
                m = write(w->fd, w->bounce, k);
        while (m < 0 && errno == EINTR);
        if (m < 0)
                return -errno;
        w->direct_bytes += (uint64_t)m;
        return m;
}

static ssize_t stream_write(void *cookie, const char *data, size_t n)
{
        struct direct_writer *w = cookie;
        int64_t pos = w->direct ? next_position(w) : -1;
        size_t done = 0;
        int r = 0;

        while (done < n && r >= 0) {
                size_t left = n - done, head;
                ssize_t m;

                if (!w->direct || pos < 0) {
                        r = write_cached(w, data + done, left);
                        if (r >= 0)
                                done = n;
                        break;
                }
                /* The rest of a block begun before, or less than a block: the page cache. */
                head = (DIRECT_ALIGN - (uint64_t)pos % DIRECT_ALIGN) % DIRECT_ALIGN;
                if (head > 0 || left < DIRECT_ALIGN) {
                        size_t k = head > 0 && head < left ? head : left;

                        r = write_cached(w, data + done, k);
                        if (r >= 0) {
                                done += k;
                                pos += (int64_t)k;
                        }
                        continue;
                }
                m = write_direct(w, data + done, left);
                if (m == -EINVAL || m == -EOPNOTSUPP) {
                        /* Not for this file after all: the page cache from now on. */
                        w->direct = false;
                        w->direct_error = (int)m;
                        continue;
                }
                if (m < 0) {
                        r = (int)m;
                        break;
                }
                done += (size_t)m;
                pos += m;
                if ((size_t)m < DIRECT_ALIGN) /* out of space, most likely: ask again */
                        pos = next_position(w);
        }
        /* Leave the fd as it was given (a later user of it, or a new analyzer, expects that). */
        (void)set_direct(w, false);
        if (r < 0 && done == 0) {
                errno = -r;
                return -1;
        }
        return (ssize_t)done;
}

void direct_writer_reset(struct direct_writer *w)
{
        struct stat st;
        int fl = fcntl(w->fd, F_GETFL);

        w->direct = false;
        w->fd_direct = false;
        w->direct_error = 0;
        if (fl < 0 || fstat(w->fd, &st) < 0 || !S_ISREG(st.st_mode) || !w->bounce)
                return;
        /* An analyzer killed in the middle of a direct write leaves O_DIRECT on the file. */
        if ((fl & O_DIRECT) && fcntl(w->fd, F_SETFL, fl & ~O_DIRECT) < 0)
                return;
        /* A file system without direct I/O refuses the flag. */
        if (fcntl(w->fd, F_SETFL, (fl & ~O_DIRECT) | O_DIRECT) < 0) {
                w->direct_error = -errno;
                return;
        }
        (void)fcntl(w->fd, F_SETFL, fl & ~O_DIRECT);
        w->direct = true;
}

FILE *direct_stream_open(struct direct_writer *w, int fd, char *buf, size_t size)
{
        cookie_io_functions_t io = { .write = stream_write };
        void *bounce = NULL;
        FILE *f;
        int r;

        *w = (struct direct_writer){ .fd = fd };
        r = posix_memalign(&bounce, DIRECT_ALIGN, DIRECT_BOUNCE_SIZE);
        if (r != 0) {
                errno = r;
                return NULL;
        }
        w->bounce = bounce;
        f = fopencookie(w, "w", io);
        if (!f) {
                direct_writer_done(w);
                return NULL;
        }
        (void)setvbuf(f, buf, _IOFBF, size);
        direct_writer_reset(w);
        return f;
}

void direct_writer_done(struct direct_writer *w)
{
        free(w->bounce);
        w->bounce = NULL;
        w->direct = false;
}
