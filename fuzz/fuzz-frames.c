/*
 * libFuzzer target: the frame reader and every msgpack body decoder on arbitrary bytes. The
 * input is a byte stream as loaderd or the analyzer would read it from the socket; it is fed in
 * uneven pieces so that buffer growth and compaction run between frames. Each frame body goes
 * through every decoder (not only its type's: a decoder must refuse any shape it does not
 * expect), and what decodes is encoded and decoded again, which must give the same value.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "msg.h"
#include "fuzz.h"

/* A decoded string must be terminated inside its buffer. */
#define CHECK_STR(s) CHECK(memchr((s), '\0', sizeof(s)) != NULL)

static void roundtrip_l_hello(const struct msg_l_hello *m)
{
        msgpack_sbuffer sb;
        struct msg_l_hello back;

        msgpack_sbuffer_init(&sb);
        CHECK(msg_encode_l_hello(&sb, m) == 0);
        CHECK(msg_decode_l_hello((const uint8_t *)sb.data, sb.size, &back) == 0);
        CHECK(back.version == m->version && back.realtime_offset_ns == m->realtime_offset_ns &&
              back.call_cap == m->call_cap);
        msgpack_sbuffer_destroy(&sb);
}

static void roundtrip_file(const struct msg_file *m)
{
        msgpack_sbuffer sb;
        struct msg_file *back = malloc(sizeof(*back));

        CHECK(back);
        msgpack_sbuffer_init(&sb);
        CHECK(msg_encode_file(&sb, m) == 0);
        CHECK(msg_decode_file((const uint8_t *)sb.data, sb.size, back) == 0);
        CHECK(back->file_id == m->file_id && back->dev == m->dev && back->ino == m->ino &&
              back->pid == m->pid && back->kind == m->kind && strcmp(back->path, m->path) == 0);
        msgpack_sbuffer_destroy(&sb);
        free(back);
}

static void roundtrip_plan(const struct msg_plan *m)
{
        msgpack_sbuffer sb;
        struct msg_plan *back = malloc(sizeof(*back));

        CHECK(back);
        msgpack_sbuffer_init(&sb);
        CHECK(msg_encode_plan(&sb, m) == 0);
        CHECK(msg_decode_plan((const uint8_t *)sb.data, sb.size, back) == 0);
        CHECK(back->file_id == m->file_id && back->n_probes == m->n_probes &&
              strcmp(back->library, m->library) == 0 && strcmp(back->reason, m->reason) == 0);
        for (uint32_t i = 0; i < m->n_probes; i++) {
                const struct msg_probe *p = &m->probes[i], *q = &back->probes[i];

                CHECK(p->kind == q->kind && p->func == q->func && p->offset == q->offset);
                for (unsigned j = 0; j < _TLSSNIFF_ARG_MAX; j++)
                        CHECK(p->loc[j].kind == q->loc[j].kind && p->loc[j].reg == q->loc[j].reg &&
                              p->loc[j].off == q->loc[j].off);
        }
        msgpack_sbuffer_destroy(&sb);
        free(back);
}

static void roundtrip_attached(const struct msg_attached *m)
{
        msgpack_sbuffer sb;
        struct msg_attached back;

        msgpack_sbuffer_init(&sb);
        CHECK(msg_encode_attached(&sb, m) == 0);
        CHECK(msg_decode_attached((const uint8_t *)sb.data, sb.size, &back) == 0);
        CHECK(back.file_id == m->file_id && back.probes == m->probes &&
              strcmp(back.error, m->error) == 0);
        msgpack_sbuffer_destroy(&sb);
}

static void roundtrip_ready(const struct msg_ready *m)
{
        msgpack_sbuffer sb;
        struct msg_ready back;

        msgpack_sbuffer_init(&sb);
        CHECK(msg_encode_ready(&sb, m) == 0);
        CHECK(msg_decode_ready((const uint8_t *)sb.data, sb.size, &back) == 0);
        CHECK(back.probes == m->probes && back.files == m->files);
        msgpack_sbuffer_destroy(&sb);
}

static void roundtrip_stats(const struct msg_stats *m)
{
        msgpack_sbuffer sb;
        struct msg_stats *back = malloc(sizeof(*back));

        CHECK(back);
        msgpack_sbuffer_init(&sb);
        CHECK(msg_encode_stats(&sb, m) == 0);
        CHECK(msg_decode_stats((const uint8_t *)sb.data, sb.size, back) == 0);
        CHECK(back->n == m->n);
        for (uint32_t i = 0; i < m->n; i++)
                CHECK(back->s[i].value == m->s[i].value &&
                      strcmp(back->s[i].name, m->s[i].name) == 0);
        msgpack_sbuffer_destroy(&sb);
        free(back);
}

struct records_ctx {
        const uint8_t *body;
        size_t n;
        unsigned count;
};

static int on_record(const uint8_t *rec, size_t len, void *userdata)
{
        struct records_ctx *c = userdata;

        /* Each bin lies inside the body it came from (record_validate is fuzz-analyzer's). */
        CHECK(len <= c->n);
        if (len > 0)
                CHECK(rec >= c->body && (size_t)(rec - c->body) <= c->n - len);
        /* Stop early now and then, as the analyzer does on an assembler error. */
        return ++c->count == 1000 ? -ENOBUFS : 0;
}

static void decode_body(uint16_t type, const uint8_t *body, size_t n)
{
        struct msg_l_hello hello;
        struct msg_file *file = malloc(sizeof(*file));
        struct msg_plan *plan = malloc(sizeof(*plan));
        struct msg_stats *stats = malloc(sizeof(*stats));
        struct msg_attached att;
        struct msg_ready ready;
        struct records_ctx rc = { .body = body, .n = n };
        uint32_t version;

        CHECK(file && plan && stats);
        (void)type; /* every decoder sees every body; see the top of this file */

        if (msg_decode_l_hello(body, n, &hello) == 0) {
                CHECK(hello.call_cap <= TLSSNIFF_CALL_CAP_MAX);
                roundtrip_l_hello(&hello);
        }
        (void)msg_decode_a_hello(body, n, &version);
        if (msg_decode_file(body, n, file) == 0) {
                CHECK_STR(file->path);
                CHECK(file->kind == MSG_FILE_EXECUTABLE || file->kind == MSG_FILE_LIBRARY);
                roundtrip_file(file);
        }
        if (msg_decode_plan(body, n, plan) == 0) {
                CHECK(plan->n_probes <= MSG_PLAN_PROBES_MAX);
                CHECK_STR(plan->library);
                CHECK_STR(plan->reason);
                roundtrip_plan(plan);
        }
        if (msg_decode_attached(body, n, &att) == 0) {
                CHECK_STR(att.error);
                CHECK(att.probes <= MSG_PLAN_PROBES_MAX);
                roundtrip_attached(&att);
        }
        if (msg_decode_ready(body, n, &ready) == 0)
                roundtrip_ready(&ready);
        if (msg_decode_stats(body, n, stats) == 0) {
                CHECK(stats->n <= MSG_STATS_MAX);
                for (uint32_t i = 0; i < stats->n; i++)
                        CHECK_STR(stats->s[i].name);
                roundtrip_stats(stats);
        }
        (void)msg_records_foreach(body, n, on_record, &rc);

        free(stats);
        free(plan);
        free(file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* Piece sizes cycle so that frames end at every position relative to a feed. */
        static const size_t pieces[] = { 1, 8, 3, 4096, 13, 64, 7 };
        struct frame_reader r;
        size_t off = 0;
        unsigned k = 0;
        bool broken = false;

        frame_reader_init(&r, false);
        while (off < size && !broken) {
                size_t n = pieces[k++ % (sizeof(pieces) / sizeof(pieces[0]))];
                struct frame_header h;
                const uint8_t *body;
                int ret;

                if (n > size - off)
                        n = size - off;
                if (frame_reader_feed(&r, data + off, n) < 0)
                        break;
                off += n;
                while ((ret = frame_reader_next(&r, &h, &body)) > 0) {
                        CHECK(h.length <= FRAME_BODY_MAX && h.flags == 0);
                        CHECK(body >= r.buf && body + h.length <= r.buf + r.len);
                        (void)frame_type_name(h.type);
                        decode_body(h.type, body, h.length);
                }
                /* A bad header loses frame boundaries: the connection would be dropped. */
                broken = ret < 0;
        }
        CHECK(frame_reader_take_fd(&r) == -ENOENT);
        frame_reader_done(&r);
        return 0;
}
