/*
 * libFuzzer target: the analyzer's frame handlers, as if loaderd (or whoever reached its socket)
 * sent arbitrary bytes. Nothing is sent back (sock is -1) and output goes to /dev/null, so what
 * is tested is the path of a byte from the socket through decoding, record validation and
 * message assembly to the text and JSON writers.
 *
 * Input layout:
 *   byte 0      flags: 0x01 start with a valid L_HELLO, so that the handlers that need one are
 *               reached without the fuzzer having to find it first; 0x02 JSON output;
 *               0x04 an fd is queued (see below); 0x08 time passes between frames (held
 *               socket-less messages expire, conn/identity.c); bits 4-7 choose --max-print
 *   [0x04 set]  u16 little-endian n, then n bytes: the contents of a memfd put in the reader's
 *               fd queue, as if it came with SCM_RIGHTS, for the first L_FILE frame to take
 *   the rest    the byte stream, cut into frames by the frame reader
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "analyzer.h"
#include "fuzz.h"

#define FLAG_HELLO 0x01u
#define FLAG_JSON 0x02u
#define FLAG_FD 0x04u
#define FLAG_EXPIRE 0x08u

static int queue_memfd(struct frame_reader *r, const uint8_t *p, size_t n)
{
        int fd = memfd_create("fuzz-analyzer", MFD_CLOEXEC);

        if (fd < 0)
                return -errno;
        while (n > 0) {
                ssize_t k = write(fd, p, n);

                if (k < 0) {
                        int e = errno;

                        close(fd);
                        return -e;
                }
                p += k;
                n -= (size_t)k;
        }
        CHECK(r->n_fds < FRAME_FDS_MAX);
        r->fds[r->n_fds++] = fd;
        return fd;
}

static void feed_hello(struct analyzer *a)
{
        struct msg_l_hello m = { .version = FRAME_PROTOCOL_VERSION,
                                 .realtime_offset_ns = 1700000000000000000LL,
                                 .call_cap = TLSSNIFF_CALL_CAP_DEFAULT };
        struct frame_header h;
        msgpack_sbuffer sb;

        msgpack_sbuffer_init(&sb);
        CHECK(msg_encode_l_hello(&sb, &m) == 0);
        h = (struct frame_header){ .length = (uint32_t)sb.size, .type = FRAME_L_HELLO };
        CHECK(analyzer_handle_frame(a, &h, (const uint8_t *)sb.data) == 0);
        CHECK(a->hello);
        msgpack_sbuffer_destroy(&sb);
}

/* What analyzer_run's write_final_stats does with loaderd's counters at the end. */
static void write_stats(struct analyzer *a)
{
        const char *names[MSG_STATS_MAX + 1];
        uint64_t values[MSG_STATS_MAX + 1];
        unsigned n = 0;

        CHECK(a->kernel_stats.n <= MSG_STATS_MAX);
        for (uint32_t i = 0; i < a->kernel_stats.n; i++) {
                CHECK(memchr(a->kernel_stats.s[i].name, '\0', MSG_STAT_NAME_MAX));
                names[n] = a->kernel_stats.s[i].name;
                values[n++] = a->kernel_stats.s[i].value;
        }
        names[n] = "analyzer_frames";
        values[n++] = a->frames;
        (void)output_stats(&a->out, names, values, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct analyzer_options opt = { .fd = -1, .control_fd = -1 };
        struct analyzer *a;
        struct frame_header h;
        const uint8_t *body;
        unsigned flags, mp;
        FILE *devnull;
        int memfd = -1, r;

        if (size < 1)
                return 0;
        flags = data[0];
        data++, size--;
        mp = flags >> 4;
        opt.json = flags & FLAG_JSON;
        /* Connection tracking and HTTP exchanges on every input: parsers of untrusted bytes. */
        opt.exchanges = true;
        opt.preview = 64;
        opt.max_print = mp == 15 ? UINT_MAX : mp == 14 ? 512 : mp * 4;

        devnull = fopen("/dev/null", "we");
        CHECK(devnull);
        a = malloc(sizeof(*a)); /* large (listen bitmap, stats): keep it off the stack */
        CHECK(a);
        CHECK(analyzer_init(a, &opt) == 0);
        a->sock = -1; /* nothing is sent */
        a->out.f = devnull;
        /*
         * An empty listening-port table, as if just read: reading /proc/net/tcp for each input
         * would take most of the time, and its contents are this machine's, not the input's.
         */
        a->listen.loaded = true;
        a->listen.loaded_at = time(NULL);

        if (flags & FLAG_FD) {
                size_t n;

                if (size < 2)
                        goto out;
                n = (size_t)data[0] | (size_t)data[1] << 8;
                data += 2, size -= 2;
                if (n > size)
                        n = size;
                memfd = queue_memfd(&a->in, data, n);
                CHECK(memfd >= 0);
                data += n, size -= n;
        }
        if (flags & FLAG_HELLO)
                feed_hello(a);

        /*
         * The frame loop of analyzer_run, on the rest of the input. Nothing is fed when nothing
         * is left: frame_reader_feed() of 0 bytes into an empty reader does arithmetic on its
         * NULL buffer (frame_reader_fill, the daemons' way in, never does that).
         */
        if (size > 0 && frame_reader_feed(&a->in, data, size) < 0)
                goto out;
        while ((r = frame_reader_next(&a->in, &h, &body)) > 0) {
                r = analyzer_handle_frame(a, &h, body);
                if (r < 0 && r != -EBADMSG)
                        break;
                if (flags & FLAG_EXPIRE)
                        identity_expire(&a->identity, UINT64_MAX, false);
        }
        /* End of input, as analyzer_run ends: everything pending is written. */
        assembler_flush(&a->asmb);
        identity_expire(&a->identity, UINT64_MAX, true);
        conn_table_expire(&a->conns, UINT64_MAX / 2);
        CHECK(a->asmb.n == 0 && !identity_pending(&a->identity));
        write_stats(a);
out:
        analyzer_done(a);
        free(a);
        /* Whether taken by an L_FILE frame or left in the queue, the fd must be closed. */
        if (memfd >= 0)
                CHECK(fcntl(memfd, F_GETFD) < 0 && errno == EBADF);
        fclose(devnull);
        return 0;
}
