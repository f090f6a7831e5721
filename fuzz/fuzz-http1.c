/*
 * libFuzzer target: the HTTP/1.x parser (analyzer/proto/http1.c). The first byte picks the
 * direction and the methods of up to three requests awaiting responses; the rest is the
 * stream. It is fed whole, then one byte at a time, and both must give the same events (the
 * parser's promise to the reassembly layer); events are checked for sanity on the way.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http1.h"
#include "fuzz.h"

struct trace {
        uint64_t hash;
        uint64_t events;
        uint64_t body;
        bool in_message;
};

static void mix(struct trace *t, const void *p, size_t n)
{
        const uint8_t *b = p;

        for (size_t i = 0; i < n; i++)
                t->hash = (t->hash ^ b[i]) * 0x100000001b3ull;
}

static void on_head(void *ud, const struct http1_head *h)
{
        struct trace *t = ud;

        t->events++;
        t->in_message = true;
        t->body = 0;
        mix(t, "H", 1);
        if (h->request) {
                CHECK(h->method && h->target);
                mix(t, h->method, strlen(h->method));
                mix(t, h->target, strlen(h->target));
        } else {
                CHECK(h->status >= 100 && h->status <= 999 && h->reason);
                mix(t, &h->status, sizeof(h->status));
        }
        CHECK(h->n_headers <= HTTP1_HEADERS_MAX);
        for (unsigned i = 0; i < h->n_headers; i++) {
                mix(t, h->headers[i].name, strlen(h->headers[i].name));
                mix(t, h->headers[i].value, strlen(h->headers[i].value));
        }
}

static void on_body(void *ud, const uint8_t *d, size_t n)
{
        struct trace *t = ud;

        CHECK(t->in_message && n > 0);
        t->body += n;
        mix(t, d, n);
}

static void on_complete(void *ud, uint64_t body_bytes)
{
        struct trace *t = ud;

        CHECK(t->in_message && body_bytes == t->body);
        t->in_message = false;
        t->events++;
        mix(t, "C", 1);
        mix(t, &body_bytes, sizeof(body_bytes));
}

static void on_error(void *ud, const char *why)
{
        struct trace *t = ud;

        t->in_message = false;
        t->events++;
        mix(t, why, strlen(why));
}

static void on_upgrade(void *ud)
{
        struct trace *t = ud;

        t->events++;
        mix(t, "U", 1);
}

static const struct http1_callbacks cbs = { on_head, on_body, on_complete, on_error,
                                            on_upgrade };

static void run(const uint8_t *data, size_t size, bool bytewise, struct trace *t)
{
        static const char *const methods[] = { "GET", "HEAD", "CONNECT", "POST" };
        static struct http1_parser p;
        uint8_t flags = data[0];

        memset(t, 0, sizeof(*t));
        http1_init(&p, flags & 1, &cbs, t);
        for (int i = 0; i < 3; i++)
                http1_expect_response(&p, methods[(flags >> (1 + 2 * i)) & 3]);
        data++;
        size--;
        if (bytewise) {
                for (size_t i = 0; i < size; i++)
                        http1_feed(&p, data + i, 1);
        } else {
                http1_feed(&p, data, size);
        }
        http1_close(&p);
        http1_done(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct trace whole, bytes;
        uint8_t *copy;

        if (size < 1 || size > 65536)
                return 0;
        copy = malloc(size);
        if (!copy)
                return 0;
        memcpy(copy, data, size);
        run(copy, size, false, &whole);
        run(copy, size, true, &bytes);
        CHECK(whole.hash == bytes.hash && whole.events == bytes.events);
        free(copy);
        return 0;
}
