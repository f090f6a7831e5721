/* Unit test: plan_validate() and elf_segments_read() on the test binary itself. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loaderd.h"
#include "plan.h"

static struct msg_plan good_plan(uint64_t off)
{
        struct msg_plan p = { .file_id = 1, .n_probes = 2 };

        p.probes[0].kind = TLSSNIFF_PROBE_ENTRY;
        p.probes[0].func = TLSSNIFF_FUNC_SSL_WRITE;
        p.probes[0].offset = off;
        for (int a = 0; a < 3; a++)
                p.probes[0].loc[a] = (struct tlssniff_loc){ TLSSNIFF_LOC_REG, (uint8_t)(5 - a), 0 };
        p.probes[1].kind = TLSSNIFF_PROBE_RETURN;
        p.probes[1].func = TLSSNIFF_FUNC_SSL_WRITE;
        p.probes[1].offset = off;
        p.probes[1].loc[TLSSNIFF_ARG_RESULT] = (struct tlssniff_loc){ TLSSNIFF_LOC_REG, 0, 0 };
        return p;
}

/* The frame handler refuses, counts and survives what it must not act on. */
static void test_dispatch(uint64_t inside)
{
        struct loaderd l = { .sock = -1, .epoll_fd = -1 };
        struct frame_header h = { .type = FRAME_A_PLAN };
        struct msg_plan p = good_plan(inside);
        msgpack_sbuffer sb;

        log_setup("test-plan", LOG_TARGET_STDERR, LOG_ERR);
        msgpack_sbuffer_init(&sb);
        assert(msg_encode_plan(&sb, &p) == 0);
        h.length = (uint32_t)sb.size;

        /* A plan before the analyzer's hello: wrong state. */
        assert(loaderd_dispatch_frame(&l, &h, (const uint8_t *)sb.data) == 0);
        assert(l.frames_refused == 1);
        /* After the hello: a plan for a file loaderd never sent. */
        l.analyzer_hello = true;
        assert(loaderd_dispatch_frame(&l, &h, (const uint8_t *)sb.data) == 0);
        assert(l.frames_refused == 2);
        /* A body that does not decode. */
        h.length = (uint32_t)sb.size - 1;
        assert(loaderd_dispatch_frame(&l, &h, (const uint8_t *)sb.data) == 0);
        assert(l.frames_refused == 3);
        /* An unknown type, and a request type sent the wrong way. */
        h.type = 0x0999;
        assert(loaderd_dispatch_frame(&l, &h, (const uint8_t *)sb.data) == 0);
        h.type = FRAME_L_FILE;
        assert(loaderd_dispatch_frame(&l, &h, (const uint8_t *)sb.data) == 0);
        assert(l.frames_refused == 5);
        msgpack_sbuffer_destroy(&sb);

        /* A file loaderd did offer: a well-formed plan for it from the data analyzer is
         * refused all the same (plans come from the file's planner); from the planner, a
         * plan whose offset is outside the file's code fails the file. */
        {
                struct traced_file tf = { .id = 1, .fd = open("/proc/self/exe", O_RDONLY),
                                          .state = FILE_SENT, .path = (char *)"self",
                                          .planner_sock = -1 };
                struct msg_plan *bad = malloc(sizeof(*bad));

                l.files = &tf;
                l.n_files = 1;
                p = good_plan(inside);
                msgpack_sbuffer_init(&sb);
                assert(msg_encode_plan(&sb, &p) == 0);
                h.type = FRAME_A_PLAN;
                h.length = (uint32_t)sb.size;
                assert(loaderd_dispatch_frame(&l, &h, (const uint8_t *)sb.data) == 0);
                assert(l.frames_refused == 6 && l.analyzer_plans_refused == 3 &&
                       tf.state == FILE_SENT && tf.set.n_links == 0);
                msgpack_sbuffer_destroy(&sb);
                assert(bad);
                *bad = good_plan(0);
                loaderd_plan_received(&l, &tf, bad);
                assert(tf.state == FILE_FAILED && l.planners_refused == 1 && tf.set.n_links == 0);
                frame_writer_done(&l.out);
                l.files = NULL;
                l.n_files = 0;
        }

        /* Changes from the analyzer (attach, detach, reload), whatever it says of its client:
         * refused and counted, never acted on (they come through the admin socket only). */
        for (uint8_t verb = MSG_CONTROL_ATTACH; verb <= MSG_CONTROL_RELOAD; verb++) {
                struct msg_control m = { .id = verb, .verb = verb };
                uint64_t refused = l.frames_refused;

                snprintf(m.arg, sizeof(m.arg), "%s", verb == MSG_CONTROL_RELOAD ? "" : "1");
                msgpack_sbuffer_init(&sb);
                msg_encode_control(&sb, &m);
                h.type = FRAME_A_CONTROL;
                h.length = (uint32_t)sb.size;
                assert(loaderd_dispatch_frame(&l, &h, (const uint8_t *)sb.data) == 0);
                assert(l.frames_refused == refused + 1);
                assert(l.analyzer_changes_refused == verb);
                assert(l.reloads == 0 && l.targets.n_force_pids == 0);
                msgpack_sbuffer_destroy(&sb);
        }
        frame_writer_done(&l.out);
}

/* tlssniffctl processes, asked in a loop: loaderd lists at most LOADERD_PROCESSES_PER_S a
 * second (all processes: one process's listing is cheap and never held back) and answers the
 * others "busy" (counted); whatever the machine's speed, what it let
 * through fits the time the loop took. */
static void test_processes_rate(void)
{
        struct loaderd l = { .sock = -1, .epoll_fd = -1, .analyzer_hello = true };
        struct frame_header h = { .type = FRAME_A_CONTROL };
        struct msg_control m = { .verb = MSG_CONTROL_PROCESSES };
        msgpack_sbuffer sb;
        uint64_t start = now_monotonic_ns(), took;
        const unsigned asked = 20;
        int sv[2];

        assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
        l.sock = sv[0];
        msgpack_sbuffer_init(&sb);
        assert(msg_encode_control(&sb, &m) == 0);
        h.length = (uint32_t)sb.size;
        for (unsigned i = 0; i < asked; i++)
                assert(loaderd_dispatch_frame(&l, &h, (const uint8_t *)sb.data) == 0);
        took = now_monotonic_ns() - start;
        assert(l.frames_refused == 0);
        assert(asked - l.processes_throttled <=
               LOADERD_PROCESSES_PER_S * (1 + took / 1000000000ull));
        if (took < 1000000000ull)
                assert(l.processes_throttled == asked - LOADERD_PROCESSES_PER_S);
        /* One process's listing reads one /proc entry: never throttled. */
        snprintf(m.arg, sizeof(m.arg), "%d", (int)getpid());
        msgpack_sbuffer_clear(&sb);
        assert(msg_encode_control(&sb, &m) == 0);
        h.length = (uint32_t)sb.size;
        {
                uint64_t throttled = l.processes_throttled;

                for (unsigned i = 0; i < asked; i++)
                        assert(loaderd_dispatch_frame(&l, &h, (const uint8_t *)sb.data) == 0);
                assert(l.processes_throttled == throttled);
        }
        msgpack_sbuffer_destroy(&sb);
        frame_writer_done(&l.out);
        close(sv[0]);
        close(sv[1]);
}

/* An analyzer that stops reading: loaderd's queue to it stops at LOADERD_QUEUE_MAX, each frame
 * beyond dropped and counted. */
static void test_queue_bound(void)
{
        struct loaderd l = { .sock = -1, .epoll_fd = -1 };
        msgpack_sbuffer sb;
        static char body[FRAME_BODY_MAX / 4];
        unsigned sent = 0;
        int sv[2];

        assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
        l.sock = sv[0];
        msgpack_sbuffer_init(&sb);
        msgpack_sbuffer_write(&sb, body, sizeof(body));
        while (l.frames_dropped < 3) {
                assert(sent < 4 * LOADERD_QUEUE_MAX / sizeof(body));
                if (loaderd_send_frame(&l, FRAME_L_STATS, &sb) == 0)
                        sent++;
                assert(frame_writer_pending(&l.out) <= LOADERD_QUEUE_MAX);
        }
        assert(sent >= LOADERD_QUEUE_MAX / (sizeof(body) + FRAME_HEADER_SIZE) - 1);
        msgpack_sbuffer_destroy(&sb);
        frame_writer_done(&l.out);
        close(sv[0]);
        close(sv[1]);
}

/* The registry's eviction: the oldest file without probes goes; attached files and files
 * waiting for their planner never do. */
static void test_eviction(void)
{
        static const enum file_state states[] = { FILE_ATTACHED, FILE_SENT, FILE_NO_TLS,
                                                  FILE_FAILED, FILE_NO_TLS, FILE_ATTACHED };
        struct loaderd l = { .sock = -1, .epoll_fd = -1 };
        struct traced_file files[ELEMENTSOF(states)];

        for (unsigned i = 0; i < ELEMENTSOF(states); i++)
                files[i] = (struct traced_file){ .id = i + 1, .fd = -1, .state = states[i],
                                                 .planner_sock = -1, .path = strdup("f") };
        l.files = files;
        l.n_files = l.cap_files = ELEMENTSOF(states);
        assert(loaderd_evict_file(&l) == 0 && l.n_files == 5 && l.files[2].id == 4);
        assert(loaderd_evict_file(&l) == 0 && l.n_files == 4 && l.files[2].id == 5);
        assert(loaderd_evict_file(&l) == 0 && l.n_files == 3 && l.files[2].id == 6);
        assert(loaderd_evict_file(&l) == -ENOSPC && l.n_files == 3 && l.files_evicted == 3);
        assert(l.files[0].id == 1 && l.files[1].id == 2);
        for (unsigned i = 0; i < l.n_files; i++)
                free(l.files[i].path);
}

int main(void)
{
        struct elf_segments segs;
        struct msg_plan p;
        char why[256];
        uint64_t inside;
        int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);

        assert(fd >= 0);
        assert(elf_segments_read(fd, &segs) == 0);
        assert(segs.n >= 1);
        inside = segs.seg[0].start + 16;
        close(fd);
        test_queue_bound();
        test_processes_rate();
        test_eviction();

        /* Not ELF: /dev/null and a text file are refused. */
        fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
        assert(elf_segments_read(fd, &segs) < 0 || true); /* procfs: size 0, not ELF */
        close(fd);

        fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        assert(elf_segments_read(fd, &segs) == 0);
        close(fd);

        p = good_plan(inside);
        assert(plan_validate(&p, &segs, why, sizeof(why)) == 0);

        /* Offset outside every executable segment. */
        p = good_plan(0);
        assert(plan_validate(&p, &segs, why, sizeof(why)) < 0);
        assert(strstr(why, "outside"));
        p = good_plan(segs.seg[segs.n - 1].end);
        assert(plan_validate(&p, &segs, why, sizeof(why)) < 0);

        /* Unknown probe kind and function. */
        p = good_plan(inside);
        p.probes[0].kind = 7;
        assert(plan_validate(&p, &segs, why, sizeof(why)) < 0);
        assert(strstr(why, "unknown kind"));
        p = good_plan(inside);
        p.probes[1].func = 0;
        assert(plan_validate(&p, &segs, why, sizeof(why)) < 0);
        assert(strstr(why, "unknown function"));

        /* Missing argument location on an entry probe, bad register, bad stack slot. */
        p = good_plan(inside);
        p.probes[0].loc[TLSSNIFF_ARG_BUF].kind = TLSSNIFF_LOC_NONE;
        assert(plan_validate(&p, &segs, why, sizeof(why)) < 0);
        p = good_plan(inside);
        p.probes[0].loc[0].reg = 200;
        assert(plan_validate(&p, &segs, why, sizeof(why)) < 0);
        p = good_plan(inside);
        p.probes[0].loc[0] = (struct tlssniff_loc){ TLSSNIFF_LOC_STACK, 0, 3 };
        assert(plan_validate(&p, &segs, why, sizeof(why)) < 0);
        /* A return probe must say where the result is. */
        p = good_plan(inside);
        p.probes[1].loc[TLSSNIFF_ARG_RESULT].kind = TLSSNIFF_LOC_NONE;
        assert(plan_validate(&p, &segs, why, sizeof(why)) < 0);
        /* Too many probes. */
        p = good_plan(inside);
        p.n_probes = MSG_PLAN_PROBES_MAX + 1;
        assert(plan_validate(&p, &segs, why, sizeof(why)) < 0);

        /*
         * OpenSSL reads on the copy: a copy probe in ssl_read_bytes needs s, source, count, type
         * and peek (an int in the high half of a word: a 4-aligned slot); a forget probe on
         * SSL_free/SSL_clear needs the TLS object. No other pairing of those kinds and functions.
         */
        p = good_plan(inside);
        p.probes[0].kind = TLSSNIFF_PROBE_COPY;
        p.probes[0].func = TLSSNIFF_FUNC_SSL_READ_BYTES;
        p.probes[0].loc[TLSSNIFF_ARG_SSL] = (struct tlssniff_loc){ TLSSNIFF_LOC_STACK, 0, 40 };
        p.probes[0].loc[TLSSNIFF_ARG_RTYPE] = (struct tlssniff_loc){ TLSSNIFF_LOC_STACK, 0, 4 };
        p.probes[0].loc[TLSSNIFF_ARG_PEEK] = (struct tlssniff_loc){ TLSSNIFF_LOC_STACK, 0, 0 };
        p.probes[1] = (struct msg_probe){ .kind = TLSSNIFF_PROBE_FORGET,
                                          .func = TLSSNIFF_FUNC_SSL_FREE, .offset = inside };
        p.probes[1].loc[TLSSNIFF_ARG_SSL] = (struct tlssniff_loc){ TLSSNIFF_LOC_REG, 5, 0 };
        assert(plan_validate(&p, &segs, why, sizeof(why)) == 0);
        {
                struct msg_plan q;
                msgpack_sbuffer sb;

                msgpack_sbuffer_init(&sb);
                assert(msg_encode_plan(&sb, &p) == 0);
                assert(msg_decode_plan((const uint8_t *)sb.data, sb.size, &q) == 0);
                assert(memcmp(q.probes, p.probes, 2 * sizeof(p.probes[0])) == 0);
                msgpack_sbuffer_destroy(&sb);
        }
        p.probes[0].loc[TLSSNIFF_ARG_PEEK].kind = TLSSNIFF_LOC_NONE;
        assert(plan_validate(&p, &segs, why, sizeof(why)) < 0);
        p.probes[0].loc[TLSSNIFF_ARG_PEEK] = (struct tlssniff_loc){ TLSSNIFF_LOC_STACK, 0, 2 };
        assert(plan_validate(&p, &segs, why, sizeof(why)) < 0); /* not 4-aligned */
        p.probes[0].loc[TLSSNIFF_ARG_PEEK] = (struct tlssniff_loc){ TLSSNIFF_LOC_STACK, 0, 0 };
        /* ssl_read_bytes at its entry needs the count pointer too (_ex form), and not placed
         * returns: only on its copy or at entry and return. */
        p.probes[0].kind = TLSSNIFF_PROBE_ENTRY;
        assert(plan_validate(&p, &segs, why, sizeof(why)) < 0);
        p.probes[0].loc[TLSSNIFF_ARG_OUTLEN] = (struct tlssniff_loc){ TLSSNIFF_LOC_STACK, 0, 8 };
        assert(plan_validate(&p, &segs, why, sizeof(why)) == 0);
        p.probes[0].kind = TLSSNIFF_PROBE_RETURN_AT;
        p.probes[0].loc[TLSSNIFF_ARG_RESULT] = (struct tlssniff_loc){ TLSSNIFF_LOC_REG, 0, 0 };
        assert(plan_validate(&p, &segs, why, sizeof(why)) < 0);
        assert(strstr(why, "other than on its copy or at its entry and return"));
        p.probes[0].loc[TLSSNIFF_ARG_OUTLEN] = (struct tlssniff_loc){};
        p.probes[0].loc[TLSSNIFF_ARG_RESULT] = (struct tlssniff_loc){};
        p.probes[0].kind = TLSSNIFF_PROBE_COPY;
        p.probes[0].func = TLSSNIFF_FUNC_SSL_READ; /* no copy probe on the API functions */
        assert(plan_validate(&p, &segs, why, sizeof(why)) < 0);
        assert(strstr(why, "copy probe on"));
        p.probes[0].func = TLSSNIFF_FUNC_SSL_READ_BYTES;
        p.probes[1].func = TLSSNIFF_FUNC_SSL_WRITE; /* forget only on SSL_free/SSL_clear */
        assert(plan_validate(&p, &segs, why, sizeof(why)) < 0);
        p.probes[1].func = TLSSNIFF_FUNC_SSL_FREE;
        p.probes[1].loc[TLSSNIFF_ARG_SSL].kind = TLSSNIFF_LOC_NONE;
        assert(plan_validate(&p, &segs, why, sizeof(why)) < 0);
        p.probes[1].loc[TLSSNIFF_ARG_SSL] = (struct tlssniff_loc){ TLSSNIFF_LOC_REG, 5, 0 };
        p.probes[1].kind = TLSSNIFF_PROBE_ENTRY;
        assert(plan_validate(&p, &segs, why, sizeof(why)) < 0);

        /*
         * OpenSSL writes on the copy: a copy probe in do_ssl3_write (ssl_write_bytes) needs s,
         * source, count and type, no peek; whole, at entry and return, the count pointer too.
         */
        p = good_plan(inside);
        p.probes[0].kind = TLSSNIFF_PROBE_COPY;
        p.probes[0].func = TLSSNIFF_FUNC_SSL_WRITE_BYTES;
        p.probes[0].loc[TLSSNIFF_ARG_SSL] = (struct tlssniff_loc){ TLSSNIFF_LOC_REG, 14, 0 };
        p.probes[0].loc[TLSSNIFF_ARG_RTYPE] = (struct tlssniff_loc){ TLSSNIFF_LOC_STACK, 0, 48 };
        p.n_probes = 1;
        assert(plan_validate(&p, &segs, why, sizeof(why)) == 0);
        p.probes[0].loc[TLSSNIFF_ARG_RTYPE].kind = TLSSNIFF_LOC_NONE;
        p.probes[0].loc[TLSSNIFF_ARG_RTYPE].off = 0;
        assert(plan_validate(&p, &segs, why, sizeof(why)) < 0); /* type: application data? */
        p.probes[0].loc[TLSSNIFF_ARG_RTYPE] = (struct tlssniff_loc){ TLSSNIFF_LOC_REG, 4, 0 };
        p.probes[0].kind = TLSSNIFF_PROBE_ENTRY;
        assert(plan_validate(&p, &segs, why, sizeof(why)) < 0); /* no count pointer */
        p.probes[0].loc[TLSSNIFF_ARG_OUTLEN] = (struct tlssniff_loc){ TLSSNIFF_LOC_REG, 8, 0 };
        assert(plan_validate(&p, &segs, why, sizeof(why)) == 0);
        p.probes[0].kind = TLSSNIFF_PROBE_FORGET;
        assert(plan_validate(&p, &segs, why, sizeof(why)) < 0);
        p.probes[0].kind = TLSSNIFF_PROBE_RETURN_AT;
        p.probes[0].loc[TLSSNIFF_ARG_RESULT] = (struct tlssniff_loc){ TLSSNIFF_LOC_REG, 0, 0 };
        assert(plan_validate(&p, &segs, why, sizeof(why)) < 0);
        assert(strstr(why, "ssl_write_bytes probed other than on its copy"));

        /* A handshake: entry (the TLS object only) and return, nothing else. */
        p = good_plan(inside);
        p.probes[0].func = p.probes[1].func = TLSSNIFF_FUNC_SSL_HANDSHAKE;
        p.probes[0].loc[TLSSNIFF_ARG_BUF].kind = TLSSNIFF_LOC_NONE;
        p.probes[0].loc[TLSSNIFF_ARG_BUF].reg = 0;
        p.probes[0].loc[TLSSNIFF_ARG_NUM].kind = TLSSNIFF_LOC_NONE;
        p.probes[0].loc[TLSSNIFF_ARG_NUM].reg = 0;
        assert(plan_validate(&p, &segs, why, sizeof(why)) == 0);
        p.probes[0].loc[TLSSNIFF_ARG_SSL].kind = TLSSNIFF_LOC_NONE;
        assert(plan_validate(&p, &segs, why, sizeof(why)) < 0);
        p.probes[0].loc[TLSSNIFF_ARG_SSL].kind = TLSSNIFF_LOC_REG;
        p.probes[0].kind = TLSSNIFF_PROBE_RETURN_AT;
        assert(plan_validate(&p, &segs, why, sizeof(why)) < 0);
        assert(strstr(why, "handshake"));

        /* Go plans: offsets required and sane, no uretprobes, no mixing with OpenSSL probes. */
        p = good_plan(inside);
        p.probes[0].func = p.probes[1].func = TLSSNIFF_FUNC_GO_WRITE;
        p.probes[1].kind = TLSSNIFF_PROBE_RETURN_AT;
        assert(plan_validate(&p, &segs, why, sizeof(why)) < 0); /* no offsets */
        p.has_go = true;
        p.go = (struct tlssniff_go_info){ .g_kind = TLSSNIFF_GO_G_REG, .g_reg = 14, .goid = 152,
                                          .sysfd = 16 };
        assert(plan_validate(&p, &segs, why, sizeof(why)) == 0);
        {
                struct msg_plan q;
                msgpack_sbuffer sb;

                msgpack_sbuffer_init(&sb);
                assert(msg_encode_plan(&sb, &p) == 0);
                assert(msg_decode_plan((const uint8_t *)sb.data, sb.size, &q) == 0);
                assert(q.has_go && memcmp(&q.go, &p.go, sizeof(q.go)) == 0);
                msgpack_sbuffer_destroy(&sb);
        }
        p.probes[1].kind = TLSSNIFF_PROBE_RETURN;
        assert(plan_validate(&p, &segs, why, sizeof(why)) < 0);
        assert(strstr(why, "uretprobe"));
        p.probes[1].kind = TLSSNIFF_PROBE_RETURN_AT;
        p.probes[1].func = TLSSNIFF_FUNC_SSL_WRITE;
        assert(plan_validate(&p, &segs, why, sizeof(why)) < 0);
        p.probes[1].func = TLSSNIFF_FUNC_GO_WRITE;
        p.go.goid = TLSSNIFF_GO_OFFSET_MAX;
        assert(plan_validate(&p, &segs, why, sizeof(why)) < 0);
        p.go.goid = 152;
        p.go.g_kind = TLSSNIFF_GO_G_FS; /* a thread-pointer slot must lie below it */
        assert(plan_validate(&p, &segs, why, sizeof(why)) < 0);
        p.go.g_reg = 0;
        p.go.g_off = -8;
        assert(plan_validate(&p, &segs, why, sizeof(why)) == 0);

        test_dispatch(inside);
        printf("plan validation: ok\n");
        return 0;
}
