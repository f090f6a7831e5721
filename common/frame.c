/* Frame codec and buffered frame I/O with fd passing; see frame.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "frame.h"
#include "macro.h"

#define READ_CHUNK (256u << 10)

void frame_header_write(uint8_t out[FRAME_HEADER_SIZE], uint32_t length, uint16_t type)
{
        out[0] = length & 0xff;
        out[1] = (length >> 8) & 0xff;
        out[2] = (length >> 16) & 0xff;
        out[3] = (length >> 24) & 0xff;
        out[4] = type & 0xff;
        out[5] = type >> 8;
        out[6] = 0;
        out[7] = 0;
}

int frame_header_parse(const uint8_t in[FRAME_HEADER_SIZE], struct frame_header *ret)
{
        uint32_t length = (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 |
                          (uint32_t)in[3] << 24;
        uint16_t flags = (uint16_t)(in[6] | in[7] << 8);

        if (length > FRAME_BODY_MAX)
                return -EMSGSIZE;
        if (flags != 0)
                return -EPROTO;
        ret->length = length;
        ret->type = (uint16_t)(in[4] | in[5] << 8);
        ret->flags = flags;
        return 0;
}

const char *frame_type_name(uint16_t type)
{
        switch (type) {
        case FRAME_L_HELLO: return "L_HELLO";
        case FRAME_L_FILE: return "L_FILE";
        case FRAME_L_RECORDS: return "L_RECORDS";
        case FRAME_L_STATS: return "L_STATS";
        case FRAME_L_ATTACHED: return "L_ATTACHED";
        case FRAME_L_READY: return "L_READY";
        case FRAME_L_CONFIG: return "L_CONFIG";
        case FRAME_L_CONTROL_RESULT: return "L_CONTROL_RESULT";
        case FRAME_L_PROCESSES: return "L_PROCESSES";
        case FRAME_L_PLANNED: return "L_PLANNED";
        case FRAME_P_PLAN: return "P_PLAN";
        case FRAME_A_HELLO: return "A_HELLO";
        case FRAME_A_PLAN: return "A_PLAN";
        case FRAME_A_CONTROL: return "A_CONTROL";
        case FRAME_A_STATUS: return "A_STATUS";
        default: return "unknown";
        }
}

int frame_reader_init(struct frame_reader *r, bool accept_fds)
{
        *r = (struct frame_reader){ .accept_fds = accept_fds };
        return 0;
}

void frame_reader_done(struct frame_reader *r)
{
        for (unsigned i = 0; i < r->n_fds; i++)
                close(r->fds[i]);
        free(r->buf);
        *r = (struct frame_reader){};
}

/* Makes room for n more bytes, compacting consumed frames away first. */
static int reader_reserve(struct frame_reader *r, size_t n)
{
        if (r->pos > 0) {
                memmove(r->buf, r->buf + r->pos, r->len - r->pos);
                r->len -= r->pos;
                r->pos = 0;
        }
        if (r->len + n > FRAME_HEADER_SIZE + FRAME_BODY_MAX + READ_CHUNK)
                return -ENOBUFS;
        return buffer_reserve(&r->buf, &r->cap, r->len, n);
}

int frame_reader_feed(struct frame_reader *r, const void *p, size_t n)
{
        int k;

        if (n == 0)
                return 0; /* nothing to copy, and r->buf may still be NULL */
        k = reader_reserve(r, n);
        if (k < 0)
                return k;
        memcpy(r->buf + r->len, p, n);
        r->len += n;
        return 0;
}

static void reader_take_cmsg_fds(struct frame_reader *r, struct msghdr *mh)
{
        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                size_t n;
                int *fds;

                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                fds = (int *)CMSG_DATA(c);
                for (size_t i = 0; i < n; i++) {
                        if (!r->accept_fds || r->n_fds >= FRAME_FDS_MAX)
                                close(fds[i]); /* unexpected or too many: never leak */
                        else
                                r->fds[r->n_fds++] = fds[i];
                }
        }
}

int frame_reader_fill(struct frame_reader *r, int fd)
{
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * FRAME_FDS_MAX)];
        } control;
        struct iovec iov;
        struct msghdr mh = {};
        ssize_t n;
        int k;

        k = reader_reserve(r, READ_CHUNK);
        if (k < 0)
                return k;
        iov.iov_base = r->buf + r->len;
        iov.iov_len = r->cap - r->len;
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = &control;
        mh.msg_controllen = sizeof(control);
        n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n < 0)
                return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
        reader_take_cmsg_fds(r, &mh);
        if (mh.msg_flags & MSG_CTRUNC)
                return -EPROTO;
        r->len += (size_t)n;
        return (int)(n > 0 ? 1 : 0);
}

int frame_reader_next(struct frame_reader *r, struct frame_header *ret_hdr,
                      const uint8_t **ret_body)
{
        struct frame_header h;
        size_t avail = r->len - r->pos;
        int k;

        if (avail < FRAME_HEADER_SIZE)
                return 0;
        k = frame_header_parse(r->buf + r->pos, &h);
        if (k < 0)
                return k;
        if (avail - FRAME_HEADER_SIZE < h.length)
                return 0;
        *ret_body = r->buf + r->pos + FRAME_HEADER_SIZE;
        *ret_hdr = h;
        r->pos += FRAME_HEADER_SIZE + h.length;
        return 1;
}

int frame_reader_take_fd(struct frame_reader *r)
{
        int fd;

        if (r->n_fds == 0)
                return -ENOENT;
        fd = r->fds[0];
        memmove(r->fds, r->fds + 1, (r->n_fds - 1) * sizeof(int));
        r->n_fds--;
        return fd;
}

void frame_writer_done(struct frame_writer *w)
{
        for (unsigned i = 0; i < w->n_fds; i++)
                close(w->fds[i].fd);
        free(w->buf);
        *w = (struct frame_writer){};
}

size_t frame_writer_pending(const struct frame_writer *w)
{
        return w->len - w->pos;
}

/* Moves what is still unsent to the front once the sent part is at least as large. Under a
 * steady backlog the socket never takes everything, pos never meets len, and without this
 * the buffer would grow by everything ever sent (fresh pages for every frame: the analyzer
 * falling slightly behind made loaderd spend most of its time faulting them in). */
static void writer_compact(struct frame_writer *w)
{
        size_t pending = w->len - w->pos;

        if (w->pos == 0 || w->pos < pending)
                return;
        memmove(w->buf, w->buf + w->pos, pending);
        for (unsigned i = 0; i < w->n_fds; i++)
                w->fds[i].at -= w->pos;
        w->len = pending;
        w->pos = 0;
}

int frame_writer_put(struct frame_writer *w, uint16_t type, const void *body, size_t n, int fd)
{
        size_t need = FRAME_HEADER_SIZE + n;
        int dup_fd = -1;

        if (n > FRAME_BODY_MAX)
                return -EMSGSIZE;
        if (fd >= 0 && w->n_fds >= FRAME_FDS_MAX)
                return -ENOBUFS;
        writer_compact(w);
        if (buffer_reserve(&w->buf, &w->cap, w->len, need) < 0)
                return -ENOMEM;
        if (fd >= 0) {
                dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
                if (dup_fd < 0)
                        return -errno;
                w->fds[w->n_fds].at = w->len;
                w->fds[w->n_fds].fd = dup_fd;
                w->n_fds++;
        }
        frame_header_write(w->buf + w->len, (uint32_t)n, type);
        if (n > 0)
                memcpy(w->buf + w->len + FRAME_HEADER_SIZE, body, n);
        w->len += need;
        return 0;
}

int frame_writer_send(struct frame_writer *w, int sock, uint16_t type, const void *body,
                      size_t n)
{
        uint8_t hdr[FRAME_HEADER_SIZE];
        struct iovec iov[2] = {
                { .iov_base = hdr, .iov_len = sizeof(hdr) },
                { .iov_base = (void *)body, .iov_len = n },
        };
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = n > 0 ? 2 : 1 };
        size_t sent = 0;
        int err = -EAGAIN, r;
        ssize_t k;

        if (n > FRAME_BODY_MAX)
                return -EMSGSIZE;
        if (w->pos < w->len) { /* frames before it wait: keep the order */
                r = frame_writer_put(w, type, body, n, -1);
                return r < 0 ? r : frame_writer_flush(w, sock);
        }
        frame_header_write(hdr, (uint32_t)n, type);
        for (;;) {
                k = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k >= 0 || errno != EINTR)
                        break;
        }
        if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                err = -errno; /* queued all the same: the caller counts what is pending as lost */
        if (k > 0)
                sent = (size_t)k;
        if (sent == sizeof(hdr) + n)
                return 0;
        /* Nothing was queued: queue the whole frame, the only one, past what the socket took. */
        r = frame_writer_put(w, type, body, n, -1);
        if (r < 0)
                return r;
        w->pos = w->len - (sizeof(hdr) + n) + sent;
        return err;
}

int frame_writer_flush(struct frame_writer *w, int sock)
{
        while (w->pos < w->len) {
                union {
                        struct cmsghdr align;
                        char buf[CMSG_SPACE(sizeof(int))];
                } control;
                struct iovec iov;
                struct msghdr mh = {};
                size_t end = w->len;
                bool with_fd = false;
                ssize_t n;

                /* Send up to the next frame that owns an fd; that frame goes with its fd. */
                if (w->n_fds > 0) {
                        if (w->fds[0].at == w->pos)
                                with_fd = true;
                        else if (w->fds[0].at > w->pos)
                                end = w->fds[0].at;
                }
                iov.iov_base = w->buf + w->pos;
                iov.iov_len = end - w->pos;
                mh.msg_iov = &iov;
                mh.msg_iovlen = 1;
                if (with_fd) {
                        struct cmsghdr *c;

                        memset(&control, 0, sizeof(control));
                        mh.msg_control = &control;
                        mh.msg_controllen = sizeof(control);
                        c = CMSG_FIRSTHDR(&mh);
                        c->cmsg_level = SOL_SOCKET;
                        c->cmsg_type = SCM_RIGHTS;
                        c->cmsg_len = CMSG_LEN(sizeof(int));
                        memcpy(CMSG_DATA(c), &w->fds[0].fd, sizeof(int));
                        /* Only the frame's first bytes carry the fd; the rest follows. */
                        iov.iov_len = FRAME_HEADER_SIZE;
                }
                n = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
                }
                if (with_fd) {
                        close(w->fds[0].fd);
                        memmove(w->fds, w->fds + 1, (w->n_fds - 1) * sizeof(w->fds[0]));
                        w->n_fds--;
                }
                w->pos += (size_t)n;
        }
        w->pos = w->len = 0;
        return 0;
}
