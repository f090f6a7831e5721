/*
 * Parser benchmark (issue: exchanges): HTTP/1.x parsing and pairing throughput, and the memory
 * one connection costs. Feeds a recorded-style keep-alive stream (requests with and without
 * bodies, responses by length and chunked) through exchange_conn in 16 KiB pieces, as the
 * analyzer does, and reports MB/s of stream parsed; then opens 10,000 connections with a
 * request waiting for its response each and reports the heap growth per connection. Then the
 * same for HTTP/2 (h2_conn): the same requests and responses as streams of one connection,
 * header blocks from libnghttp2's HPACK deflater, 64 streams open at a time (requests of a
 * batch, then their responses), and the heap of an HTTP/2 connection after its opening.
 * Prints one JSON object. Build: ninja -C build tests/bench/bench-parser.
 */
#include <malloc.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/exchange.h"
#include "proto/http2.h"

static uint64_t exchanges;

static void on_exchange(const struct exchange *x, void *ud)
{
        (void)ud;
        if (x->status)
                exchanges++;
}

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t append(char *buf, size_t len, size_t cap, const char *s, size_t n)
{
        if (len + n > cap)
                abort();
        memcpy(buf + len, s, n);
        return len + n;
}

/* --- HTTP/2 --- */

struct h2_bench {
        char *s[2]; /* client, server */
        size_t len[2], cap;
        size_t *batch_end[2]; /* end of each batch in each direction */
        unsigned n_batches;
        nghttp2_hd_deflater *def[2];
};

static void h2_put(struct h2_bench *b, int dir, const void *p, size_t n)
{
        b->len[dir] = append(b->s[dir], b->len[dir], b->cap, p, n);
}

static void h2_frame(struct h2_bench *b, int dir, uint8_t type, uint8_t flags, uint32_t sid,
                     const void *payload, size_t n)
{
        uint8_t h[9] = { (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n, type, flags,
                         (uint8_t)(sid >> 24), (uint8_t)(sid >> 16), (uint8_t)(sid >> 8),
                         (uint8_t)sid };

        h2_put(b, dir, h, sizeof(h));
        h2_put(b, dir, payload, n);
}

static void h2_headers(struct h2_bench *b, int dir, uint32_t sid, bool end_stream,
                       const char *const *nv)
{
        static uint8_t block[4096];
        nghttp2_nv a[16];
        size_t n = 0;
        ssize_t r;

        for (; nv[0]; nv += 2, n++)
                a[n] = (nghttp2_nv){ (uint8_t *)nv[0], (uint8_t *)nv[1], strlen(nv[0]),
                                     strlen(nv[1]), NGHTTP2_NV_FLAG_NONE };
        r = nghttp2_hd_deflate_hd(b->def[dir], block, sizeof(block), a, n);
        if (r < 0)
                abort();
        h2_frame(b, dir, 1, 0x4 | (end_stream ? 0x1 : 0), sid, block, (size_t)r);
}

/* The HTTP/1 workload as HTTP/2 streams: ROUNDS exchanges in batches of BATCH. */
static void h2_build(struct h2_bench *b, int rounds, int batch, const char *body, size_t body_len)
{
        static const uint8_t settings[] = { 0, 0, 0, 4, 0, 0, 0, 0, 0 };

        b->cap = 64u << 20;
        b->s[0] = malloc(b->cap);
        b->s[1] = malloc(b->cap);
        b->n_batches = (unsigned)((rounds + batch - 1) / batch);
        b->batch_end[0] = calloc(b->n_batches, sizeof(size_t));
        b->batch_end[1] = calloc(b->n_batches, sizeof(size_t));
        if (!b->s[0] || !b->s[1] || !b->batch_end[0] || !b->batch_end[1] ||
            nghttp2_hd_deflate_new(&b->def[0], 4096) != 0 ||
            nghttp2_hd_deflate_new(&b->def[1], 4096) != 0)
                abort();
        h2_put(b, 0, H2_PREFACE, H2_PREFACE_LEN);
        h2_put(b, 0, settings, sizeof(settings));
        h2_put(b, 1, settings, sizeof(settings));
        for (int first = 0; first < rounds; first += batch) {
                for (int i = first; i < first + batch && i < rounds; i++) {
                        uint32_t sid = 2 * (uint32_t)i + 1;
                        char path[64], len[16];
                        bool post = i % 4 == 0;

                        snprintf(path, sizeof(path), "/api/v1/items/%d?q=x", i);
                        snprintf(len, sizeof(len), "%zu", body_len);
                        if (post) {
                                h2_headers(b, 0, sid, false,
                                           (const char *const[]){
                                                   ":method", "POST", ":scheme", "https",
                                                   ":authority", "example.test", ":path", path,
                                                   "user-agent", "bench/1.0", "accept", "*/*",
                                                   "content-type", "application/json",
                                                   "content-length", len, NULL });
                                h2_frame(b, 0, 0, 0x1, sid, body, body_len);
                        } else {
                                h2_headers(b, 0, sid, true,
                                           (const char *const[]){
                                                   ":method", "GET", ":scheme", "https",
                                                   ":authority", "example.test", ":path", path,
                                                   "user-agent", "bench/1.0", "accept", "*/*",
                                                   NULL });
                        }
                }
                for (int i = first; i < first + batch && i < rounds; i++) {
                        uint32_t sid = 2 * (uint32_t)i + 1;
                        char len[16];

                        snprintf(len, sizeof(len), "%zu", body_len);
                        h2_headers(b, 1, sid, false,
                                   (const char *const[]){ ":status", "200", "content-type",
                                                          "text/plain", "content-length", len,
                                                          NULL });
                        if (i % 2 == 0) {
                                h2_frame(b, 1, 0, 0x1, sid, body, body_len);
                        } else {
                                for (int k = 0; k < 4; k++)
                                        h2_frame(b, 1, 0, k == 3 ? 0x1 : 0, sid,
                                                 body + k * body_len / 4, body_len / 4);
                        }
                }
                b->batch_end[0][first / batch] = b->len[0];
                b->batch_end[1][first / batch] = b->len[1];
        }
}

static void h2_feed(struct h2_conn *c, bool requests, const char *s, size_t from, size_t to)
{
        for (size_t o = from; o < to; o += 16384)
                h2_conn_data(c, requests, (const uint8_t *)s + o, to - o < 16384 ? to - o : 16384,
                             o);
}

static void h2_free(struct h2_bench *b)
{
        nghttp2_hd_deflate_del(b->def[0]);
        nghttp2_hd_deflate_del(b->def[1]);
        free(b->s[0]);
        free(b->s[1]);
        free(b->batch_end[0]);
        free(b->batch_end[1]);
}

int main(void)
{
        enum { ROUNDS = 2000, BODY = 1024 };
        size_t cap = 64u << 20, nq = 0, nr = 0;
        char *req = malloc(cap), *resp = malloc(cap), body[BODY], line[256];
        struct mallinfo2 m0, m1, m2, m3, m4;
        struct exchange_conn **conns;
        static struct h2_conn *conns2[10000];
        struct h2_bench h2 = { 0 };
        double t0, t1, h0, h1;
        int rounds = 20;
        uint64_t timed;

        memset(body, 'b', sizeof(body));
        for (int i = 0; i < ROUNDS; i++) {
                int n = snprintf(line, sizeof(line),
                                 "%s /api/v1/items/%d?q=x HTTP/1.1\r\nHost: example.test\r\n"
                                 "User-Agent: bench/1.0\r\nAccept: */*\r\n%s\r\n",
                                 i % 4 == 0 ? "POST" : "GET", i,
                                 i % 4 == 0 ? "Content-Type: application/json\r\n"
                                              "Content-Length: 1024\r\n" : "");

                nq = append(req, nq, cap, line, (size_t)n);
                if (i % 4 == 0)
                        nq = append(req, nq, cap, body, BODY);
                if (i % 2 == 0) {
                        n = snprintf(line, sizeof(line),
                                     "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                     "Content-Length: %d\r\n\r\n", BODY);
                        nr = append(resp, nr, cap, line, (size_t)n);
                        nr = append(resp, nr, cap, body, BODY);
                } else {
                        static const char h[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

                        nr = append(resp, nr, cap, h, sizeof(h) - 1);
                        for (int k = 0; k < 4; k++) {
                                nr = append(resp, nr, cap, "100\r\n", 5);
                                nr = append(resp, nr, cap, body, 256);
                                nr = append(resp, nr, cap, "\r\n", 2);
                        }
                        nr = append(resp, nr, cap, "0\r\n\r\n", 5);
                }
        }

        t0 = now_s();
        for (int r = 0; r < rounds; r++) {
                struct exchange_conn *c = exchange_conn_new(256, on_exchange, NULL);

                for (size_t o = 0; o < nq; o += 16384)
                        exchange_conn_data(c, true, (uint8_t *)req + o,
                                           nq - o < 16384 ? nq - o : 16384, o);
                for (size_t o = 0; o < nr; o += 16384)
                        exchange_conn_data(c, false, (uint8_t *)resp + o,
                                           nr - o < 16384 ? nr - o : 16384, o);
                exchange_conn_free(c);
        }
        t1 = now_s();
        if (exchanges != (uint64_t)rounds * ROUNDS)
                abort();
        timed = exchanges;

        /* Memory: 10,000 connections, each with one request waiting for its response. */
        conns = calloc(10000, sizeof(*conns));
        m0 = mallinfo2();
        for (int i = 0; i < 10000; i++) {
                static const char q[] = "GET /wait HTTP/1.1\r\nHost: example.test\r\n"
                                        "User-Agent: bench/1.0\r\nAccept: */*\r\n\r\n";

                conns[i] = exchange_conn_new(256, on_exchange, NULL);
                exchange_conn_data(conns[i], true, (const uint8_t *)q, sizeof(q) - 1, 1);
        }
        m1 = mallinfo2();
        /* The same connections after their response: idle keep-alive. */
        for (int i = 0; i < 10000; i++) {
                static const char a[] = "HTTP/1.1 204 No Content\r\n\r\n";

                exchange_conn_data(conns[i], false, (const uint8_t *)a, sizeof(a) - 1, 2);
        }
        m2 = mallinfo2();
        for (int i = 0; i < 10000; i++)
                exchange_conn_free(conns[i]);

        /* HTTP/2: the same exchanges as streams of one connection. */
        h2_build(&h2, ROUNDS, 64, body, BODY);
        exchanges = 0;
        h0 = now_s();
        for (int r = 0; r < rounds; r++) {
                struct h2_conn *c = h2_conn_new(256, on_exchange, NULL);
                size_t q = 0, a = 0;

                if (!c)
                        abort();
                for (unsigned k = 0; k < h2.n_batches; k++) {
                        h2_feed(c, true, h2.s[0], q, h2.batch_end[0][k]);
                        h2_feed(c, false, h2.s[1], a, h2.batch_end[1][k]);
                        q = h2.batch_end[0][k];
                        a = h2.batch_end[1][k];
                }
                h2_conn_free(c);
        }
        h1 = now_s();
        if (exchanges != (uint64_t)rounds * ROUNDS)
                abort();
        /* Memory: 10,000 HTTP/2 connections after their opening (preface and SETTINGS). */
        m3 = mallinfo2();
        for (int i = 0; i < 10000; i++) {
                conns2[i] = h2_conn_new(256, on_exchange, NULL);
                h2_conn_data(conns2[i], true, (const uint8_t *)h2.s[0], H2_PREFACE_LEN + 9, 1);
                h2_conn_data(conns2[i], false, (const uint8_t *)h2.s[1], 9, 1);
        }
        m4 = mallinfo2();
        for (int i = 0; i < 10000; i++)
                h2_conn_free(conns2[i]);
        printf("{\"benchmark\": \"parser\", \"stream_mb\": %.1f, \"exchanges\": %llu, "
               "\"seconds\": %.3f, \"mb_per_s\": %.1f, \"exchanges_per_s\": %.0f, "
               "\"bytes_per_waiting_connection\": %.0f, \"bytes_per_idle_connection\": %.0f, "
               "\"h2_stream_mb\": %.1f, \"h2_seconds\": %.3f, \"h2_mb_per_s\": %.1f, "
               "\"h2_exchanges_per_s\": %.0f, \"h2_bytes_per_connection\": %.0f}\n",
               (double)(nq + nr) * rounds / 1e6, (unsigned long long)timed, t1 - t0,
               (double)(nq + nr) * rounds / 1e6 / (t1 - t0), (double)timed / (t1 - t0),
               (double)(m1.uordblks - m0.uordblks) / 10000.0,
               (double)(m2.uordblks - m0.uordblks) / 10000.0,
               (double)(h2.len[0] + h2.len[1]) * rounds / 1e6, h1 - h0,
               (double)(h2.len[0] + h2.len[1]) * rounds / 1e6 / (h1 - h0),
               (double)exchanges / (h1 - h0), (double)(m4.uordblks - m3.uordblks) / 10000.0);
        h2_free(&h2);
        free(conns);
        free(req);
        free(resp);
        return 0;
}
