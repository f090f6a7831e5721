/*
 * libFuzzer target: HTTP/2 and gRPC exchanges (analyzer/proto/http2.c). Input layout:
 *
 *   byte 0: flags. bits 0-3: preview size / 2 (0..30 bytes); bit 4: start both directions
 *           with a valid opening (client preface and SETTINGS, server SETTINGS) so that
 *           random frames get parsed; bit 5: h2_conn_close before h2_conn_free.
 *   then records: [tag][len] then len bytes (fewer when the input ends), where tag bit 7 is
 *           the direction (1: client), bit 6 a gap in that direction before the bytes, and
 *           bits 0-5 with the len byte a 14-bit length.
 *
 * The records are fed in order, each whole, then again each one byte at a time (timestamp: the
 * record's index, the same both times); the two runs must emit the same exchanges (a hash of
 * every field) and counters: the parser's promise to the reassembly layer. Exchanges are
 * checked for sanity on the way (terminated strings, headers inside their text, bounded
 * previews).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http2.h"
#include "fuzz.h"

struct trace {
        uint64_t hash;
        uint64_t seen;
        size_t preview;
};

static void mix(struct trace *t, const void *p, size_t n)
{
        const uint8_t *b = p;

        for (size_t i = 0; i < n; i++)
                t->hash = (t->hash ^ b[i]) * 0x100000001b3ull;
}

static void mix_str(struct trace *t, const char *s, size_t size)
{
        size_t n = strnlen(s, size);

        CHECK(n < size);
        mix(t, s, n + 1);
}

static void mix_headers(struct trace *t, const struct exchange_headers *h)
{
        CHECK(h->n <= HTTP1_HEADERS_MAX && h->len <= EXCHANGE_HEADER_BYTES);
        CHECK(h->n == 0 || h->text);
        for (unsigned i = 0; i < h->n; i++) {
                CHECK(h->name[i] < h->len && h->value[i] < h->len);
                mix_str(t, h->text + h->name[i], h->len - h->name[i]);
                mix_str(t, h->text + h->value[i], h->len - h->value[i]);
        }
        mix(t, &h->truncated, 1);
}

static void on_exchange(const struct exchange *x, void *ud)
{
        struct trace *t = ud;
        uint64_t nums[9] = { x->req_body, x->resp_body, x->start_ns, x->req_end_ns,
                             x->resp_start_ns, x->resp_end_ns, x->stream_id,
                             (uint64_t)(int64_t)x->status, (uint64_t)(int64_t)x->grpc_status };

        t->seen++;
        CHECK(x->http_version == 2);
        CHECK(x->stream_id & 1);
        CHECK(x->status >= 0 && x->status <= 999);
        CHECK(x->req_preview_len <= t->preview && x->resp_preview_len <= t->preview);
        CHECK(x->req_preview_len <= x->req_body && x->resp_preview_len <= x->resp_body);
        CHECK(x->req_preview_len == t->preview || x->req_preview_len == x->req_body);
        CHECK(x->resp_preview_len == t->preview || x->resp_preview_len == x->resp_body);
        CHECK(x->grpc || (x->grpc_status == -1 && !x->grpc_msgs[0] && !x->grpc_msgs[1]));
        CHECK(x->grpc_status >= -1);
        /* Without an error, both sides of the stream ended. */
        CHECK(x->error || x->req_done);
        mix(t, nums, sizeof(nums));
        mix_str(t, x->method, sizeof(x->method));
        mix_str(t, x->target, sizeof(x->target));
        mix_str(t, x->authority, sizeof(x->authority));
        mix_str(t, x->scheme, sizeof(x->scheme));
        mix_str(t, x->reason, sizeof(x->reason));
        mix_str(t, x->grpc_service, sizeof(x->grpc_service));
        mix_str(t, x->grpc_method, sizeof(x->grpc_method));
        mix_str(t, x->grpc_message, sizeof(x->grpc_message));
        mix(t, x->grpc_msgs, sizeof(x->grpc_msgs));
        mix(t, &x->grpc, 1);
        mix(t, &x->req_done, 1);
        mix(t, &x->resp_started, 1);
        mix_headers(t, &x->req_headers);
        mix_headers(t, &x->resp_headers);
        if (x->req_preview_len)
                mix(t, x->req_preview, x->req_preview_len);
        if (x->resp_preview_len)
                mix(t, x->resp_preview, x->resp_preview_len);
        if (x->error)
                mix(t, x->error, strlen(x->error) + 1);
}

static const uint8_t opening_client[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                        "\x00\x00\x00\x04\x00\x00\x00\x00\x00";
static const uint8_t opening_server[] = "\x00\x00\x00\x04\x00\x00\x00\x00\x00";

static void run(const uint8_t *data, size_t size, bool bytewise, struct trace *t,
                uint64_t *ret_exchanges, uint64_t *ret_errors)
{
        uint8_t flags = data[0];
        struct h2_conn *c;
        uint64_t ts = 0;

        memset(t, 0, sizeof(*t));
        t->preview = (size_t)(flags & 15) * 2;
        c = h2_conn_new(t->preview, on_exchange, t);
        if (!c)
                abort();
        if (flags & 0x10) {
                h2_conn_data(c, true, opening_client, sizeof(opening_client) - 1, 0);
                h2_conn_data(c, false, opening_server, sizeof(opening_server) - 1, 0);
        }
        data++;
        size--;
        while (size >= 2) {
                bool requests = data[0] & 0x80;
                size_t n = (size_t)(data[0] & 0x3f) << 8 | data[1];

                if (data[0] & 0x40)
                        h2_conn_gap(c, requests);
                data += 2;
                size -= 2;
                if (n > size)
                        n = size;
                ts++;
                if (bytewise) {
                        for (size_t i = 0; i < n; i++)
                                h2_conn_data(c, requests, data + i, 1, ts);
                } else {
                        h2_conn_data(c, requests, data, n, ts);
                }
                data += n;
                size -= n;
        }
        if (flags & 0x20)
                h2_conn_close(c);
        h2_conn_counters(c, ret_exchanges, ret_errors);
        CHECK(t->seen == *ret_exchanges);
        h2_conn_free(c); /* emits what is open when it was not closed */
        CHECK(t->seen >= *ret_exchanges && ((flags & 0x20) == 0 || t->seen == *ret_exchanges));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct trace whole, bytes;
        uint64_t ex_whole, err_whole, ex_bytes, err_bytes;
        uint8_t *copy;

        if (size < 1 || size > 65536)
                return 0;
        copy = malloc(size);
        if (!copy)
                return 0;
        memcpy(copy, data, size);
        run(copy, size, false, &whole, &ex_whole, &err_whole);
        run(copy, size, true, &bytes, &ex_bytes, &err_bytes);
        CHECK(whole.hash == bytes.hash && whole.seen == bytes.seen);
        CHECK(ex_whole == ex_bytes && err_whole == err_bytes);
        free(copy);
        return 0;
}
