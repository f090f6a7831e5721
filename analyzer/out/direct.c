/* The output file written around the page cache, by a thread of its own; see direct.h. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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

/* All of [p, p + n) through the page cache. */
static int write_cached(struct direct_writer *w, const uint8_t *p, size_t n, uint64_t *cached)
{
        int r = set_direct(w, false);

        if (r < 0)
                return r;
        while (n > 0) {
                ssize_t k = write(w->fd, p, n);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t)k;
                *cached += (uint64_t)k;
        }
        return 0;
}

/*
 * One batch (the thread's): whole blocks around the page cache when the file is where the batch
 * expected it (its memory is then aligned as the file is), the rest through it. *direct goes
 * false for good when the file refuses direct writes. Returns 0 or a negative errno.
 */
static int write_slot(struct direct_writer *w, const struct direct_slot *s, bool *direct,
                      uint64_t *ret_direct, uint64_t *ret_cached)
{
        const uint8_t *p = s->buf + s->off;
        size_t left = s->len;
        int64_t pos = *direct && s->pos >= 0 ? next_position(w) : -1;
        int r = 0;

        /* Cut back or moved since (a truncate, loaderd's cut): the page cache for this one. */
        if (pos < 0 || (uint64_t)pos % DIRECT_ALIGN != s->off)
                return write_cached(w, p, left, ret_cached);
        while (left > 0 && r >= 0) {
                size_t head = (DIRECT_ALIGN - (uint64_t)pos % DIRECT_ALIGN) % DIRECT_ALIGN;
                size_t k = left & ~(size_t)(DIRECT_ALIGN - 1);
                ssize_t m;

                if (!*direct || head > 0 || k == 0) {
                        /* The rest of a block begun before, or less than a block. */
                        k = *direct && head > 0 && head < left ? head : left;
                        r = write_cached(w, p, k, ret_cached);
                        p += k;
                        left -= k;
                        pos += (int64_t)k;
                        continue;
                }
                r = set_direct(w, true);
                if (r < 0)
                        break;
                do
                        m = write(w->fd, p, k);
                while (m < 0 && errno == EINTR);
                if (m < 0 && (errno == EINVAL || errno == EOPNOTSUPP)) {
                        /* Not for this file after all: the page cache from now on. */
                        w->direct_error = -errno;
                        *direct = false;
                        continue;
                }
                if (m < 0) {
                        r = -errno;
                        break;
                }
                *ret_direct += (uint64_t)m;
                p += m;
                left -= (size_t)m;
                pos += m;
        }
        /* Leave the fd as it was given (loaderd, or a later analyzer, reads and writes it). */
        {
                int q = set_direct(w, false);

                if (q < 0 && r == 0)
                        r = q;
        }
        return r;
}

static void *writer_main(void *userdata)
{
        struct direct_writer *w = userdata;

        pthread_mutex_lock(&w->lock);
        w->started = true;
        pthread_cond_broadcast(&w->cond);
        for (;;) {
                const struct direct_slot *s;
                uint64_t d = 0, c = 0;
                bool direct;
                int r;

                while (w->count == 0 && !w->stop)
                        pthread_cond_wait(&w->cond, &w->lock);
                if (w->count == 0)
                        break;
                s = &w->slots[w->first];
                direct = w->direct;
                pthread_mutex_unlock(&w->lock);
                r = write_slot(w, s, &direct, &d, &c);
                pthread_mutex_lock(&w->lock);
                w->direct = direct;
                __atomic_fetch_add(&w->direct_bytes, d, __ATOMIC_RELAXED);
                __atomic_fetch_add(&w->cached_bytes, c, __ATOMIC_RELAXED);
                if (r < 0 && w->error == 0)
                        w->error = r;
                w->first = (w->first + 1) % DIRECT_SLOTS;
                w->count--;
                pthread_cond_broadcast(&w->cond);
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

/* stdio's write: hands the bytes over in slots, waiting only for a free one. */
static ssize_t stream_write(void *cookie, const char *data, size_t n)
{
        struct direct_writer *w = cookie;
        size_t done = 0;

        pthread_mutex_lock(&w->lock);
        if (w->error < 0) {
                errno = -w->error;
                w->error = 0;
                pthread_mutex_unlock(&w->lock);
                return -1;
        }
        while (done < n) {
                size_t k = n - done < DIRECT_SLOT_DATA ? n - done : DIRECT_SLOT_DATA;
                struct direct_slot *s;

                while (w->count == DIRECT_SLOTS)
                        pthread_cond_wait(&w->cond, &w->lock);
                /* Nothing waiting: the file is where it is now (another may have moved it). */
                if (w->count == 0)
                        w->next_pos = w->direct ? next_position(w) : -1;
                s = &w->slots[(w->first + w->count) % DIRECT_SLOTS];
                s->pos = w->next_pos;
                s->off = s->pos >= 0 ? (size_t)((uint64_t)s->pos % DIRECT_ALIGN) : 0;
                s->len = k;
                /* The thread does not look at a slot before it is counted. */
                pthread_mutex_unlock(&w->lock);
                memcpy(s->buf + s->off, data + done, k);
                pthread_mutex_lock(&w->lock);
                w->count++;
                if (w->next_pos >= 0)
                        w->next_pos += (int64_t)k;
                done += k;
                pthread_cond_signal(&w->cond);
        }
        pthread_mutex_unlock(&w->lock);
        return (ssize_t)n;
}

static void stop_thread(struct direct_writer *w)
{
        if (!w->thread_on)
                return;
        pthread_mutex_lock(&w->lock);
        w->stop = true;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->lock);
        (void)pthread_join(w->thread, NULL);
        w->thread_on = false;
}

/* stdio's close (fclose, after its last write): everything out, the thread gone. */
static int stream_close(void *cookie)
{
        struct direct_writer *w = cookie;
        int r;

        stop_thread(w);
        r = w->error;
        w->error = 0;
        if (r < 0) {
                errno = -r;
                return -1;
        }
        return 0;
}

int direct_writer_drain(struct direct_writer *w)
{
        int r;

        pthread_mutex_lock(&w->lock);
        while (w->count > 0)
                pthread_cond_wait(&w->cond, &w->lock);
        r = w->error;
        pthread_mutex_unlock(&w->lock);
        return r;
}

void direct_writer_reset(struct direct_writer *w)
{
        struct stat st;
        int fl;

        (void)direct_writer_drain(w);
        pthread_mutex_lock(&w->lock);
        w->direct = false;
        w->fd_direct = false;
        w->direct_error = 0;
        w->next_pos = -1;
        fl = fcntl(w->fd, F_GETFL);
        if (fl >= 0 && fstat(w->fd, &st) == 0 && S_ISREG(st.st_mode) &&
            /* An analyzer killed in a direct write leaves O_DIRECT on the file: cleared. */
            (!(fl & O_DIRECT) || fcntl(w->fd, F_SETFL, fl & ~O_DIRECT) == 0)) {
                /* A file system without direct I/O refuses the flag. */
                if (fcntl(w->fd, F_SETFL, (fl & ~O_DIRECT) | O_DIRECT) == 0) {
                        (void)fcntl(w->fd, F_SETFL, fl & ~O_DIRECT);
                        w->direct = true;
                } else {
                        w->direct_error = -errno;
                }
        }
        pthread_mutex_unlock(&w->lock);
}

uint64_t direct_writer_direct_bytes(const struct direct_writer *w)
{
        return __atomic_load_n(&w->direct_bytes, __ATOMIC_RELAXED);
}

FILE *direct_stream_open(struct direct_writer *w, int fd, char *buf, size_t size)
{
        cookie_io_functions_t io = { .write = stream_write, .close = stream_close };
        sigset_t all, old;
        FILE *f;
        int r;

        *w = (struct direct_writer){ .fd = fd, .next_pos = -1 };
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->cond, NULL);
        for (unsigned i = 0; i < DIRECT_SLOTS; i++) {
                void *p = NULL;

                r = posix_memalign(&p, DIRECT_ALIGN, DIRECT_SLOT_DATA + DIRECT_ALIGN);
                if (r != 0) {
                        direct_writer_done(w);
                        errno = r;
                        return NULL;
                }
                w->slots[i].buf = p;
        }
        direct_writer_reset(w);
        /* Signals are the main thread's (its loop wakes for them): none for the writer. */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        r = pthread_create(&w->thread, NULL, writer_main, w);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r != 0) {
                direct_writer_done(w);
                errno = r;
                return NULL;
        }
        w->thread_on = true;
        /* Running: its start (glibc registers the thread with the kernel) is over before a
         * seccomp filter that refuses those calls can reach it. */
        pthread_mutex_lock(&w->lock);
        while (!w->started)
                pthread_cond_wait(&w->cond, &w->lock);
        pthread_mutex_unlock(&w->lock);
        f = fopencookie(w, "w", io);
        if (!f) {
                r = errno;
                direct_writer_done(w);
                errno = r;
                return NULL;
        }
        (void)setvbuf(f, buf, _IOFBF, size);
        return f;
}

void direct_writer_done(struct direct_writer *w)
{
        stop_thread(w);
        for (unsigned i = 0; i < DIRECT_SLOTS; i++) {
                free(w->slots[i].buf);
                w->slots[i].buf = NULL;
        }
        w->direct = false;
}
