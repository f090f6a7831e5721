/*
 * A rogue analyzer for test_rogue.py: started by loaderd through --analyzer in place of
 * tlssniff-analyzer (same user, same socket on fd 3), it speaks the frame protocol and tries
 * what a compromised analyzer would: changes (attach, detach, reload) in A_CONTROL frames, a
 * plan (plans come from planners only: loaderd starts its own, not this program, unless
 * --planner says so), a planner's answer (P_PLAN), a frame of an unknown type, descriptors
 * passed to loaderd, a plan that is not msgpack, and finally a frame header over the size cap.
 * What it saw goes to stderr (loaderd's), one "ROGUE ..." line each, for the test to read.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "frame.h"
#include "msg.h"
#include "rogue-send.h"

#define FD 3

static int send_raw(uint16_t type, const void *body, uint32_t n, const int *fds, unsigned n_fds)
{
        return rogue_send(FD, type, body, n, fds, n_fds);
}

static int send_sb(uint16_t type, msgpack_sbuffer *sb, const int *fds, unsigned n_fds)
{
        int r = send_raw(type, sb->data, (uint32_t)sb->size, fds, n_fds);

        msgpack_sbuffer_clear(sb);
        return r;
}

static void attacks(msgpack_sbuffer *sb)
{
        struct msg_control c = {};
        struct msg_plan *p = calloc(1, sizeof(*p));
        struct msg_status st = {};
        int fds[3];
        uint8_t bad = 0xc1; /* never valid msgpack */

        /* Changes on the analyzer's word: loaderd must refuse them all. */
        for (uint8_t verb = MSG_CONTROL_ATTACH; verb <= MSG_CONTROL_RELOAD; verb++) {
                c.id = 100 + verb;
                c.verb = verb;
                snprintf(c.arg, sizeof(c.arg), "%s", verb == MSG_CONTROL_RELOAD ? "" : "1");
                msg_encode_control(sb, &c);
                send_sb(FRAME_A_CONTROL, sb, NULL, 0);
        }
        /* A plan for a file loaderd never offered. */
        if (p) {
                p->file_id = 999999;
                snprintf(p->library, sizeof(p->library), "libssl.so.3");
                snprintf(p->reason, sizeof(p->reason), "rogue");
                if (msg_encode_plan(sb, p) == 0)
                        send_sb(FRAME_A_PLAN, sb, NULL, 0);
                free(p);
        }
        /* A planner's answer, a type nobody knows, and a plan that is not msgpack. */
        send_raw(FRAME_P_PLAN, &bad, 1, NULL, 0);
        send_raw(0x02ff, &bad, 1, NULL, 0);
        send_raw(FRAME_A_PLAN, &bad, 1, NULL, 0);
        /* Descriptors pushed at loaderd with a well-formed status: it must close them. */
        for (int i = 0; i < 3; i++)
                fds[i] = memfd_create("rogue-fd", MFD_CLOEXEC);
        msg_encode_status(sb, &st);
        send_sb(FRAME_A_STATUS, sb, fds, 3);
        for (int i = 0; i < 3; i++)
                close(fds[i]);
        fprintf(stderr, "ROGUE attacks sent\n");
}

int main(void)
{
        struct frame_reader r;
        msgpack_sbuffer sb;
        unsigned stats_seen = 0;

        setvbuf(stderr, NULL, _IONBF, 0);
        fprintf(stderr, "ROGUE started pid %d uid %d\n", (int)getpid(), (int)getuid());
        msgpack_sbuffer_init(&sb);
        frame_reader_init(&r, true);
        for (;;) {
                struct frame_header h;
                const uint8_t *body;
                int k = frame_reader_fill(&r, FD);

                if (k == 0 || (k < 0 && k != -EAGAIN && k != -EINTR)) {
                        fprintf(stderr, "ROGUE stream ended (%d)\n", k);
                        frame_reader_done(&r);
                        msgpack_sbuffer_destroy(&sb);
                        return 0;
                }
                while ((k = frame_reader_next(&r, &h, &body)) == 1) {
                        if (h.type == FRAME_L_HELLO) {
                                msg_encode_a_hello(&sb, FRAME_PROTOCOL_VERSION);
                                send_sb(FRAME_A_HELLO, &sb, NULL, 0);
                                attacks(&sb);
                        } else if (h.type == FRAME_L_CONTROL_RESULT) {
                                struct msg_control_result m;

                                if (msg_decode_control_result(body, h.length, &m) == 0)
                                        fprintf(stderr, "ROGUE control-result id=%u ok=%d %s\n",
                                                m.id, m.ok, m.message);
                        } else if (h.type == FRAME_L_READY) {
                                fprintf(stderr, "ROGUE ready\n");
                        } else if (h.type == FRAME_L_STATS) {
                                struct msg_stats *s = calloc(1, sizeof(*s));

                                if (s && msg_decode_stats(body, h.length, s) == 0) {
                                        /* One write: loaderd logs to the same stderr. */
                                        char line[8192];
                                        size_t o = (size_t)snprintf(line, sizeof(line),
                                                                    "ROGUE stats");

                                        for (uint32_t i = 0; i < s->n && o < sizeof(line); i++)
                                                if (strncmp(s->s[i].name, "loaderd_", 8) == 0)
                                                        o += (size_t)snprintf(
                                                                line + o, sizeof(line) - o,
                                                                " %s=%llu", s->s[i].name,
                                                                (unsigned long long)s->s[i]
                                                                        .value);
                                        if (o < sizeof(line) - 1)
                                                fprintf(stderr, "%s\n", line);
                                        stats_seen++;
                                }
                                free(s);
                                /* Last, two counter reports (seconds) after its attacks: a
                                 * header over the cap, which breaks the stream. */
                                if (stats_seen == 2) {
                                        fprintf(stderr, "ROGUE sending an oversized frame\n");
                                        send_raw(FRAME_A_STATUS, NULL, FRAME_BODY_MAX + 1, NULL,
                                                 0);
                                }
                        }
                }
        }
}
