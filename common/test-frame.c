/* Unit test: frame codec and message bodies — round trips, truncated, oversized, garbage. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frame.h"
#include "msg.h"

static void test_header(void)
{
        uint8_t b[FRAME_HEADER_SIZE];
        struct frame_header h;

        frame_header_write(b, 1234, FRAME_A_PLAN);
        assert(frame_header_parse(b, &h) == 0);
        assert(h.length == 1234 && h.type == FRAME_A_PLAN && h.flags == 0);
        /* Oversized: refused on the header alone. */
        frame_header_write(b, FRAME_BODY_MAX + 1, FRAME_A_PLAN);
        assert(frame_header_parse(b, &h) == -EMSGSIZE);
        /* Flags must be zero. */
        frame_header_write(b, 1, FRAME_A_PLAN);
        b[6] = 1;
        assert(frame_header_parse(b, &h) == -EPROTO);
}

static void test_reader_split_and_garbage(void)
{
        struct frame_reader r;
        struct frame_header h;
        const uint8_t *body;
        msgpack_sbuffer sb;
        uint8_t hdr[FRAME_HEADER_SIZE];
        struct msg_ready m = { 8, 2 }, got;

        msgpack_sbuffer_init(&sb);
        msg_encode_ready(&sb, &m);
        frame_header_write(hdr, (uint32_t)sb.size, FRAME_L_READY);

        /* Fed one byte at a time, the frame appears only when complete. */
        frame_reader_init(&r, false);
        for (size_t i = 0; i < sizeof(hdr); i++) {
                assert(frame_reader_next(&r, &h, &body) == 0);
                assert(frame_reader_feed(&r, hdr + i, 1) == 0);
        }
        for (size_t i = 0; i < sb.size; i++) {
                assert(frame_reader_next(&r, &h, &body) == 0);
                assert(frame_reader_feed(&r, sb.data + i, 1) == 0);
        }
        assert(frame_reader_next(&r, &h, &body) == 1);
        assert(h.type == FRAME_L_READY && h.length == sb.size);
        assert(msg_decode_ready(body, h.length, &got) == 0);
        assert(got.probes == 8 && got.files == 2);
        /* Truncated body: never decodes; trailing garbage: refused. */
        for (size_t n = 0; n < sb.size; n++)
                assert(msg_decode_ready((const uint8_t *)sb.data, n, &got) == -EBADMSG);
        {
                uint8_t more[64];

                memcpy(more, sb.data, sb.size);
                more[sb.size] = 0xc0;
                assert(msg_decode_ready(more, sb.size + 1, &got) == -EBADMSG);
        }
        /* Wrong shape for the type. */
        assert(msg_decode_l_hello((const uint8_t *)sb.data, sb.size, &(struct msg_l_hello){}) ==
               -EBADMSG);
        /* A garbage header breaks the stream. */
        {
                uint8_t bad[FRAME_HEADER_SIZE] = { 0xff, 0xff, 0xff, 0xff, 1, 2, 0, 0 };

                assert(frame_reader_feed(&r, bad, sizeof(bad)) == 0);
                assert(frame_reader_next(&r, &h, &body) == -EMSGSIZE);
        }
        frame_reader_done(&r);
        msgpack_sbuffer_destroy(&sb);
}

static void test_plan_roundtrip(void)
{
        static struct msg_plan p, q;
        msgpack_sbuffer sb;

        memset(&p, 0, sizeof(p));
        p.file_id = 42;
        strcpy(p.library, "libssl.so.3");
        strcpy(p.reason, "test");
        p.n_probes = 2;
        p.probes[0] = (struct msg_probe){ .kind = 1, .func = 2, .offset = 0x1234 };
        p.probes[0].loc[0] = (struct tlssniff_loc){ TLSSNIFF_LOC_REG, 5, 0 };
        p.probes[0].loc[1] = (struct tlssniff_loc){ TLSSNIFF_LOC_STACK, 0, -16 };
        p.probes[1] = (struct msg_probe){ .kind = 2, .func = 2, .offset = 0xffffffffffull };
        msgpack_sbuffer_init(&sb);
        assert(msg_encode_plan(&sb, &p) == 0);
        assert(msg_decode_plan((const uint8_t *)sb.data, sb.size, &q) == 0);
        assert(q.file_id == 42 && q.n_probes == 2 && strcmp(q.library, "libssl.so.3") == 0);
        assert(q.probes[0].loc[1].kind == TLSSNIFF_LOC_STACK && q.probes[0].loc[1].off == -16);
        assert(q.probes[1].offset == 0xffffffffffull);
        /* Every truncation fails cleanly. */
        for (size_t n = 0; n < sb.size; n++)
                assert(msg_decode_plan((const uint8_t *)sb.data, n, &q) == -EBADMSG);
        msgpack_sbuffer_destroy(&sb);

        /* Too many probes is refused by the encoder. */
        p.n_probes = MSG_PLAN_PROBES_MAX + 1;
        msgpack_sbuffer_init(&sb);
        assert(msg_encode_plan(&sb, &p) == -E2BIG);
        msgpack_sbuffer_destroy(&sb);
}

static void test_file_roundtrip_and_strings(void)
{
        struct msg_file f = { .file_id = 7, .dev = 0x801, .ino = 99, .pid = 1, .kind = 2 }, g;
        msgpack_sbuffer sb;
        msgpack_packer pk;

        strcpy(f.path, "/usr/lib/libssl.so.3");
        msgpack_sbuffer_init(&sb);
        msg_encode_file(&sb, &f);
        assert(msg_decode_file((const uint8_t *)sb.data, sb.size, &g) == 0);
        assert(g.ino == 99 && strcmp(g.path, f.path) == 0 && g.kind == 2);
        msgpack_sbuffer_destroy(&sb);

        /* A path with an embedded NUL, and a kind out of range, are refused. */
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 6);
        msgpack_pack_uint32(&pk, 1);
        msgpack_pack_uint64(&pk, 1);
        msgpack_pack_uint64(&pk, 1);
        msgpack_pack_str(&pk, 3);
        msgpack_pack_str_body(&pk, "a\0b", 3);
        msgpack_pack_uint32(&pk, 1);
        msgpack_pack_uint8(&pk, 1);
        assert(msg_decode_file((const uint8_t *)sb.data, sb.size, &g) == -EBADMSG);
        msgpack_sbuffer_destroy(&sb);
        msgpack_sbuffer_init(&sb);
        f.kind = 9;
        msg_encode_file(&sb, &f);
        assert(msg_decode_file((const uint8_t *)sb.data, sb.size, &g) == -EBADMSG);
        msgpack_sbuffer_destroy(&sb);
}

static void test_planned_roundtrip(void)
{
        struct msg_planned m = { .file = { .file_id = 3, .dev = 0x801, .ino = 77, .pid = 9,
                                           .kind = MSG_FILE_LIBRARY },
                                 .probes = 12 },
                           got;
        msgpack_sbuffer sb;

        strcpy(m.file.path, "/usr/lib/x86_64-linux-gnu/libssl.so.3");
        strcpy(m.library, "libssl.so.3");
        strcpy(m.reason, "4 functions");
        msgpack_sbuffer_init(&sb);
        assert(msg_encode_planned(&sb, &m) == 0);
        assert(msg_decode_planned((const uint8_t *)sb.data, sb.size, &got) == 0);
        assert(got.file.file_id == 3 && got.file.ino == 77 && got.probes == 12 &&
               strcmp(got.library, "libssl.so.3") == 0 &&
               strcmp(got.file.path, m.file.path) == 0);
        /* Every truncation fails cleanly. */
        for (size_t n = 0; n < sb.size; n++)
                assert(msg_decode_planned((const uint8_t *)sb.data, n, &got) == -EBADMSG);
        msgpack_sbuffer_destroy(&sb);
}

static int count_cb(const uint8_t *rec, size_t len, void *ud)
{
        size_t *total = ud;

        *total += len;
        return rec[0] == 'x' ? -EINVAL : 0;
}

static void test_records(void)
{
        msgpack_sbuffer sb;
        size_t total = 0;

        msgpack_sbuffer_init(&sb);
        msg_records_begin(&sb);
        msg_records_add(&sb, "abc", 3);
        msg_records_add(&sb, "defgh", 5);
        msg_records_finish(&sb, 2);
        assert(msg_records_foreach((const uint8_t *)sb.data, sb.size, count_cb, &total) == 0);
        assert(total == 8);
        /* Count says 3 but only 2 present: does not decode. */
        msg_records_finish(&sb, 3);
        assert(msg_records_foreach((const uint8_t *)sb.data, sb.size, count_cb, &total) ==
               -EBADMSG);
        msgpack_sbuffer_destroy(&sb);
}

/* What msg_records_foreach accepted when it went through msgpack-c: one array of bin objects
 * spanning the whole body. The reference for the direct walker. msgpack-c decodes each item;
 * the array's header is read here and an item that does not start like a bin is refused
 * before msgpack-c sees it: msgpack-c allocates for an array's or map's count before it reads
 * the items, so a flipped bit that makes an item a 32-bit array header asked it for hundreds
 * of megabytes (seconds of page faults under meson's MALLOC_PERTURB_). Such an item is not a
 * bin, so the verdict is the same. */
static int reference_records(const uint8_t *body, size_t n, size_t *ret_count, size_t *ret_total)
{
        size_t off, count, total = 0;
        msgpack_unpacked u;
        int r = 0;

        if (n >= 1 && (body[0] & 0xf0) == 0x90) {
                count = body[0] & 0x0f;
                off = 1;
        } else if (n >= 3 && body[0] == 0xdc) {
                count = (size_t)body[1] << 8 | body[2];
                off = 3;
        } else if (n >= 5 && body[0] == 0xdd) {
                count = (size_t)body[1] << 24 | (size_t)body[2] << 16 | (size_t)body[3] << 8 |
                        body[4];
                off = 5;
        } else
                return -EBADMSG;
        msgpack_unpacked_init(&u);
        for (size_t i = 0; i < count && r == 0; i++) {
                if (off >= n || body[off] < 0xc4 || body[off] > 0xc6 ||
                    msgpack_unpack_next(&u, (const char *)body, n, &off) !=
                            MSGPACK_UNPACK_SUCCESS ||
                    u.data.type != MSGPACK_OBJECT_BIN)
                        r = -EBADMSG;
                else
                        total += u.data.via.bin.size;
        }
        msgpack_unpacked_destroy(&u);
        if (r < 0 || off != n)
                return -EBADMSG;
        *ret_count = count;
        *ret_total = total;
        return 0;
}

struct tally {
        size_t count, total;
};

static int tally_cb(const uint8_t *rec, size_t len, void *ud)
{
        struct tally *t = ud;

        (void)rec;
        t->count++;
        t->total += len;
        return 0;
}

/*
 * The records walker against msgpack-c on frames made by msg_records_add (bin 8, 16 and 32
 * items; fix, 16- and 32-bit array headers) and on one-byte changes and cuts of them: the same
 * verdict, the same records, and nothing handed over from a frame it refuses. The cuts are the
 * ones where the walker's decisions change (within a few bytes of the array header, of every
 * item's header and of every item's end, and of the body's end) plus a sample of the rest: all
 * cuts of the 140 KB frame would make the test quadratic (tens of seconds under load).
 */
static void test_records_walker(void)
{
        static uint8_t rec[70000], frame[140000];
        static const size_t sizes[] = { 0, 1, 31, 255, 256, 65535, 65536 };
        enum { NEAR = 3, SAMPLE = 2000, MARKS_MAX = 2 * 20 + 1 };
        static size_t cuts[64 + MARKS_MAX * (2 * NEAR + 1) + SAMPLE];
        msgpack_sbuffer sb;
        uint32_t x = 99;

        msgpack_sbuffer_init(&sb);
        for (int variant = 0; variant < 3; variant++) {
                size_t n, body_n, n_cuts = 0, marks[MARKS_MAX];
                unsigned items = 0, n_marks = 0;

                msgpack_sbuffer_clear(&sb);
                if (variant == 0) {
                        msg_records_begin(&sb); /* array 32, as loaderd sends */
                        marks[n_marks++] = sb.size;
                        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++, items++) {
                                msg_records_add(&sb, rec, sizes[i]);
                                /* The item's end and where its bytes begin (after a bin 8,
                                 * 16 or 32 header: 2, 3 or 5 bytes). */
                                marks[n_marks++] = sb.size - sizes[i];
                                marks[n_marks++] = sb.size;
                        }
                        msg_records_finish(&sb, items);
                } else {
                        msgpack_packer pk;

                        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
                        items = variant == 1 ? 3 : 20; /* fixarray, array 16 */
                        msgpack_pack_array(&pk, items);
                        marks[n_marks++] = sb.size;
                        for (unsigned i = 0; i < items; i++) {
                                msg_records_add(&sb, rec, i * 7);
                                marks[n_marks++] = sb.size - i * 7;
                                marks[n_marks++] = sb.size;
                        }
                }
                body_n = sb.size;
                assert(body_n <= sizeof(frame));
                assert(n_marks <= sizeof(marks) / sizeof(marks[0]));
                memcpy(frame, sb.data, body_n);
                /* The cuts: the first 64 bytes, a few bytes either side of every mark (each
                 * item's header, data and end), and a sample of the rest. */
                for (size_t c = 0; c < 64 && c < body_n; c++)
                        cuts[n_cuts++] = c;
                for (unsigned m = 0; m < n_marks; m++)
                        for (size_t c = marks[m] > NEAR ? marks[m] - NEAR : 0;
                             c <= marks[m] + NEAR && c < body_n; c++)
                                cuts[n_cuts++] = c;
                for (unsigned i = 0; i < SAMPLE; i++) {
                        x = x * 1103515245u + 12345u;
                        cuts[n_cuts++] = (x >> 4) % body_n;
                }
                assert(n_cuts <= sizeof(cuts) / sizeof(cuts[0]));
                /* Those cuts, and one-byte changes in the first 64 bytes and at random. */
                for (size_t trial = 0; trial < n_cuts + 64 * 8 + 2000; trial++) {
                        uint8_t save = 0;
                        size_t at = 0, want_count = 0, want_total = 0;
                        struct tally got = {};
                        int want, r;

                        n = body_n;
                        if (trial < n_cuts) {
                                n = cuts[trial];
                        } else if (trial < n_cuts + 64 * 8) {
                                at = (trial - n_cuts) / 8 % body_n;
                                save = frame[at];
                                frame[at] ^= (uint8_t)(1u << ((trial - n_cuts) % 8));
                        } else {
                                x = x * 1103515245u + 12345u;
                                at = (x >> 8) % body_n;
                                save = frame[at];
                                frame[at] = (uint8_t)(x >> 24);
                        }
                        want = reference_records(frame, n, &want_count, &want_total);
                        r = msg_records_foreach(frame, n, tally_cb, &got);
                        assert(r == want);
                        if (r == 0)
                                assert(got.count == want_count && got.total == want_total);
                        else
                                assert(got.count == 0);
                        if (trial >= n_cuts)
                                frame[at] = save;
                }
        }
        msgpack_sbuffer_destroy(&sb);
}

static void test_fd_passing(void)
{
        int sv[2], fd, got;
        struct frame_writer w = {};
        struct frame_reader r;
        struct frame_header h;
        const uint8_t *body;
        struct stat a, b;

        assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        assert(fd >= 0);
        assert(frame_writer_put(&w, FRAME_L_READY, "\x92\x01\x02", 3, -1) == 0);
        assert(frame_writer_put(&w, FRAME_L_FILE, "\xc0", 1, fd) == 0);
        assert(frame_writer_put(&w, FRAME_L_READY, "\x92\x03\x04", 3, -1) == 0);
        assert(frame_writer_flush(&w, sv[0]) == 0);
        frame_reader_init(&r, true);
        while (frame_reader_fill(&r, sv[1]) > 0 && r.len < 3 * FRAME_HEADER_SIZE + 7)
                ;
        assert(frame_reader_next(&r, &h, &body) == 1 && h.type == FRAME_L_READY);
        assert(frame_reader_next(&r, &h, &body) == 1 && h.type == FRAME_L_FILE);
        got = frame_reader_take_fd(&r);
        assert(got >= 0);
        assert(fstat(fd, &a) == 0 && fstat(got, &b) == 0);
        assert(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
        assert(frame_reader_take_fd(&r) == -ENOENT);
        assert(frame_reader_next(&r, &h, &body) == 1 && h.type == FRAME_L_READY);
        close(got);
        close(fd);

        /* A reader that expects no fds closes what it is sent. */
        frame_reader_done(&r);
        frame_reader_init(&r, false);
        fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        assert(frame_writer_put(&w, FRAME_L_FILE, "\xc0", 1, fd) == 0);
        assert(frame_writer_flush(&w, sv[0]) == 0);
        assert(frame_reader_fill(&r, sv[1]) > 0);
        assert(r.n_fds == 0);
        close(fd);
        frame_reader_done(&r);
        frame_writer_done(&w);
        close(sv[0]);
        close(sv[1]);
}

/* A socket pair whose sending side sv[0] holds only sndbuf bytes, a reader for sv[1], and an
 * fd to pass; returns the fd. */
static int small_pair(int sv[2], int sndbuf, struct frame_reader *r)
{
        int fd;

        assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        assert(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) == 0);
        fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        assert(fd >= 0);
        frame_reader_init(r, true);
        return fd;
}

/* The next frame from sv[1], sending what w still holds into sv[0] while none is complete. */
static void read_frame(struct frame_reader *r, struct frame_writer *w, const int sv[2],
                       struct frame_header *h, const uint8_t **b)
{
        for (;;) {
                int got = frame_reader_next(r, h, b);

                assert(got >= 0);
                if (got > 0)
                        return;
                if (frame_reader_fill(r, sv[1]) != 1)
                        (void)frame_writer_flush(w, sv[0]);
        }
}

/* A reader that always lags: the socket never takes everything, yet the writer's buffer stays
 * bounded by the backlog (not by everything ever sent) and every frame and fd arrives in order. */
static void test_writer_steady_backlog(void)
{
        enum { FRAMES = 20000, BODY = 1000 };
        uint8_t body[BODY];
        int sv[2], sndbuf = 16384, fd;
        unsigned sent = 0, received = 0, fds_sent = 0, fds_received = 0;
        struct frame_writer w = {};
        struct frame_reader r;
        size_t max_cap = 0;

        fd = small_pair(sv, sndbuf, &r);
        while (received < FRAMES) {
                /* Queue four frames (one with an fd now and then), send what fits. */
                for (int k = 0; k < 4 && sent < FRAMES; k++, sent++) {
                        bool with_fd = sent % 997 == 0;

                        memset(body, (int)(sent & 0xff), sizeof(body));
                        memcpy(body, &sent, sizeof(sent));
                        assert(frame_writer_put(&w, FRAME_L_RECORDS, body, sizeof(body),
                                                with_fd ? fd : -1) == 0);
                        fds_sent += with_fd;
                }
                (void)frame_writer_flush(&w, sv[0]);
                if (w.cap > max_cap)
                        max_cap = w.cap;
                /* The reader stays 200 frames behind until the end: a backlog that stays. */
                while (received + 200 < sent || (sent == FRAMES && received < FRAMES)) {
                        struct frame_header h;
                        const uint8_t *b;
                        unsigned seq;

                        read_frame(&r, &w, sv, &h, &b);
                        assert(h.type == FRAME_L_RECORDS && h.length == BODY);
                        memcpy(&seq, b, sizeof(seq));
                        assert(seq == received);
                        assert(b[BODY - 1] == (uint8_t)(received & 0xff));
                        if (received % 997 == 0) {
                                int g = frame_reader_take_fd(&r);

                                assert(g >= 0);
                                close(g);
                                fds_received++;
                        }
                        received++;
                }
        }
        assert(fds_received == fds_sent && frame_reader_take_fd(&r) == -ENOENT);
        /* 20 MB went through; the buffer held a backlog of at most a few hundred KB. */
        assert(max_cap <= (1u << 20));
        close(fd);
        frame_reader_done(&r);
        frame_writer_done(&w);
        close(sv[0]);
        close(sv[1]);
}

/* Frame seq's body length in test_writer_send: every fifth up to 65 KB, the others small. */
static size_t send_test_len(unsigned seq)
{
        return 4 + (seq * 7919u) % (seq % 5 == 0 ? 65000 : 300);
}

/*
 * frame_writer_send: straight from the caller's buffer while nothing is queued, the rest queued
 * when the socket takes part of a frame (cut inside the header and inside the body), frames
 * after a queued one queued behind it, frames with fds in between: every frame arrives whole
 * and in order.
 */
static void test_writer_send(void)
{
        enum { FRAMES = 3000 };
        static uint8_t body[70000];
        int sv[2], sndbuf = 4096, fd;
        unsigned sent = 0, received = 0, direct = 0, queued = 0;
        struct frame_writer w = {};
        struct frame_reader r;

        fd = small_pair(sv, sndbuf, &r);
        while (received < FRAMES) {
                for (int k = 0; k < 3 && sent < FRAMES; k++, sent++) {
                        size_t n = send_test_len(sent);
                        int got;

                        memset(body, (int)(sent & 0xff), n);
                        memcpy(body, &sent, sizeof(sent));
                        if (sent % 101 == 0) {
                                assert(frame_writer_put(&w, FRAME_L_FILE, body, n, fd) == 0);
                                continue;
                        }
                        got = frame_writer_send(&w, sv[0], FRAME_L_RECORDS, body, n);
                        assert(got == 0 || got == -EAGAIN);
                        if (got == 0)
                                direct++;
                        else
                                queued++;
                }
                /* Stay 20 frames behind: the socket stays full, so frames are cut anywhere. */
                while (received + 20 < sent || (sent == FRAMES && received < FRAMES)) {
                        struct frame_header h;
                        const uint8_t *b;
                        unsigned seq;

                        read_frame(&r, &w, sv, &h, &b);
                        memcpy(&seq, b, sizeof(seq));
                        assert(seq == received);
                        assert(h.length == send_test_len(seq));
                        assert(h.type == (seq % 101 == 0 ? FRAME_L_FILE : FRAME_L_RECORDS));
                        for (size_t i = sizeof(seq); i < h.length; i++)
                                assert(b[i] == (uint8_t)(seq & 0xff));
                        if (seq % 101 == 0) {
                                int g = frame_reader_take_fd(&r);

                                assert(g >= 0);
                                close(g);
                        }
                        received++;
                }
        }
        /* Both ways were taken. */
        assert(direct > 0 && queued > 0);
        assert(frame_writer_pending(&w) == 0 && frame_reader_take_fd(&r) == -ENOENT);
        /* A socket that is gone: the frame stays queued (counted as lost by the caller). */
        close(sv[1]);
        assert(frame_writer_send(&w, sv[0], FRAME_L_RECORDS, body, 100) == -EPIPE);
        assert(frame_writer_pending(&w) == FRAME_HEADER_SIZE + 100);
        close(fd);
        frame_reader_done(&r);
        frame_writer_done(&w);
        close(sv[0]);
}

int main(void)
{
        test_header();
        test_reader_split_and_garbage();
        test_plan_roundtrip();
        test_file_roundtrip_and_strings();
        test_planned_roundtrip();
        test_records();
        test_records_walker();
        test_fd_passing();
        test_writer_steady_backlog();
        test_writer_send();
        printf("frame and message codec: ok\n");
        return 0;
}
