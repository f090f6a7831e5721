/*
 * Parser benchmark (issue: exchanges): HTTP/1.x parsing and pairing throughput, and the memory
 * one connection costs. Feeds a recorded-style keep-alive stream (requests with and without
 * bodies, responses by length and chunked) through exchange_conn in 16 KiB pieces, as the
 * analyzer does, and reports MB/s of stream parsed; then opens 10,000 connections with a
 * request waiting for its response each and reports the heap growth per connection.
 * Prints one JSON object. Build: ninja -C build tests/bench/bench-parser.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/exchange.h"

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

int main(void)
{
        enum { ROUNDS = 2000, BODY = 1024 };
        size_t cap = 64u << 20, nq = 0, nr = 0;
        char *req = malloc(cap), *resp = malloc(cap), body[BODY], line[256];
        struct mallinfo2 m0, m1, m2;
        struct exchange_conn **conns;
        double t0, t1;
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
        printf("{\"benchmark\": \"parser\", \"stream_mb\": %.1f, \"exchanges\": %llu, "
               "\"seconds\": %.3f, \"mb_per_s\": %.1f, \"exchanges_per_s\": %.0f, "
               "\"bytes_per_waiting_connection\": %.0f, \"bytes_per_idle_connection\": %.0f}\n",
               (double)(nq + nr) * rounds / 1e6, (unsigned long long)timed, t1 - t0,
               (double)(nq + nr) * rounds / 1e6 / (t1 - t0), (double)timed / (t1 - t0),
               (double)(m1.uordblks - m0.uordblks) / 10000.0,
               (double)(m2.uordblks - m0.uordblks) / 10000.0);
        for (int i = 0; i < 10000; i++)
                exchange_conn_free(conns[i]);
        free(conns);
        free(req);
        free(resp);
        return 0;
}
