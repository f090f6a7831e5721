/*
 * Unit test: loaderd's ring buffer drain on memory laid out as the kernel lays out a ring
 * (records that wrap, records still being written, discarded ones, a consumer that stops).
 */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringbuf.h"

#define SIZE 4096u
#define BUSY (1u << 31)
#define DISCARD (1u << 30)

struct ring {
        uint64_t consumer, producer;
        uint8_t data[2 * SIZE]; /* the data area and its mirror, as the kernel maps it */
};

static void put(struct ring *r, uint64_t pos, const void *src, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                size_t at = (size_t)((pos + i) & (SIZE - 1));

                r->data[at] = ((const uint8_t *)src)[i];
                r->data[at + SIZE] = ((const uint8_t *)src)[i];
        }
}

/* Reserves and commits (unless flags say otherwise) one record of n bytes of value v. */
static uint64_t produce(struct ring *r, size_t n, uint8_t v, uint32_t flags)
{
        uint64_t at = r->producer;
        uint32_t hdr[2] = { (uint32_t)n | flags, 0 };
        uint8_t body[SIZE];

        memset(body, v, n);
        put(r, at, hdr, sizeof(hdr));
        put(r, at + 8, body, n);
        r->producer += (8 + n + 7) & ~(size_t)7;
        return at;
}

struct seen {
        unsigned n;
        size_t len[64];
        uint8_t val[64];
        int stop_at; /* fail on this record (1-based), 0: never */
};

static int on_sample(void *ctx, void *data, size_t size)
{
        struct seen *s = ctx;
        const uint8_t *p = data;

        for (size_t i = 0; i < size; i++)
                assert(p[i] == p[0]);
        s->len[s->n] = size;
        s->val[s->n] = size ? p[0] : 0;
        s->n++;
        return (int)s->n == s->stop_at ? -EAGAIN : 0;
}

static int drain(struct ring *r, struct seen *s)
{
        return ringbuf_consume_mem(&r->consumer, &r->producer, r->data, SIZE, on_sample, s);
}

/* The merge's key in these tests: the record's byte value. */
static uint64_t key_of(const void *data, size_t size)
{
        return size ? *(const uint8_t *)data : 0;
}

static int merge(struct ring **rings, unsigned n, struct seen *s)
{
        struct ringbuf_src src[4];

        assert(n <= 4);
        for (unsigned i = 0; i < n; i++)
                src[i] = (struct ringbuf_src){ .consumer = &rings[i]->consumer,
                                               .producer = &rings[i]->producer,
                                               .data = rings[i]->data,
                                               .size = SIZE };
        return ringbuf_merge_mem(src, n, key_of, on_sample, s);
}

static void expect(const struct seen *s, unsigned from, const uint8_t *vals, unsigned n)
{
        assert(s->n == from + n);
        for (unsigned i = 0; i < n; i++)
                assert(s->val[from + i] == vals[i]);
}

/* Several rings drained as one, in key order, each ring's own order kept. */
static void test_merge(void)
{
        struct ring *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
        struct ring *c = calloc(1, sizeof(*c)), *d = calloc(1, sizeof(*d));
        struct ring *all[4] = { a, b, c, d };
        struct seen s = {};
        uint64_t busy, stop;

        assert(a && b && c && d);
        /* Interleaved by key; c empty; d's first record discarded; b's third still written:
         * b's part ends there, the others go on. */
        produce(a, 8, 1, 0);
        produce(a, 16, 4, 0);
        produce(a, 3, 5, 0);
        produce(a, 8, 9, 0);
        produce(b, 8, 2, 0);
        produce(b, 100, 3, 0);
        busy = produce(b, 8, 6, BUSY);
        produce(b, 8, 7, 0);
        produce(d, 8, 8, DISCARD);
        produce(d, 8, 10, 0);
        assert(merge(all, 4, &s) == 7);
        expect(&s, 0, (const uint8_t[]){ 1, 2, 3, 4, 5, 9, 10 }, 7);
        assert(a->consumer == a->producer && b->consumer == busy && c->consumer == 0 &&
               d->consumer == d->producer);
        {
                uint32_t hdr = 8;

                put(b, busy, &hdr, sizeof(hdr)); /* committed */
        }
        assert(merge(all, 4, &s) == 2);
        expect(&s, 7, (const uint8_t[]){ 6, 7 }, 2);
        assert(b->consumer == b->producer);

        /* Keys out of order within a ring: the ring's order wins, the heads are compared. */
        s = (struct seen){};
        produce(a, 8, 20, 0);
        produce(a, 8, 11, 0);
        produce(b, 8, 15, 0);
        assert(merge(all, 2, &s) == 3);
        expect(&s, 0, (const uint8_t[]){ 15, 20, 11 }, 3);

        /* A consumer that says stop: the records handed over are consumed, no other. */
        s = (struct seen){ .stop_at = 2 };
        produce(a, 8, 30, 0);
        stop = produce(a, 8, 32, 0);
        produce(b, 8, 31, 0);
        assert(merge(all, 2, &s) == -EAGAIN && s.n == 2 && a->consumer == stop &&
               b->consumer == b->producer);
        s.stop_at = 0;
        assert(merge(all, 2, &s) == 1 && s.val[2] == 32 && a->consumer == a->producer);

        /* One ring: a plain drain. */
        s = (struct seen){};
        produce(c, 8, 40, 0);
        produce(c, 8, 41, 0);
        assert(merge(&all[2], 1, &s) == 2 && s.val[0] == 40 && s.val[1] == 41 &&
               c->consumer == c->producer);
        free(a);
        free(b);
        free(c);
        free(d);
}

int main(void)
{
        struct ring *r = calloc(1, sizeof(*r));
        struct seen s = {};
        uint64_t busy;

        assert(r);
        /* Empty. */
        assert(drain(r, &s) == 0 && s.n == 0);

        /* Lengths 0..40 (padding to 8), in order, contents exact. */
        for (unsigned i = 0; i <= 40; i += 5)
                produce(r, i, (uint8_t)(i + 1), 0);
        assert(drain(r, &s) == 9 && s.n == 9 && r->consumer == r->producer);
        for (unsigned i = 0; i < 9; i++)
                assert(s.len[i] == i * 5 && (i == 0 || s.val[i] == i * 5 + 1));

        /* Records that wrap around the end of the data area read whole through the mirror. */
        s = (struct seen){};
        while ((r->producer & (SIZE - 1)) < SIZE - 600)
                produce(r, 500, 0xaa, 0);
        assert(drain(r, &s) > 0 && r->consumer == r->producer);
        s = (struct seen){};
        produce(r, 1000, 0x11, 0); /* crosses the end */
        produce(r, 3, 0x22, 0);
        assert(drain(r, &s) == 2 && s.len[0] == 1000 && s.val[0] == 0x11 && s.len[1] == 3 &&
               s.val[1] == 0x22 && r->consumer == r->producer);

        /* A record still being written stops the drain, later ones wait behind it. */
        s = (struct seen){};
        produce(r, 16, 0x33, 0);
        busy = produce(r, 24, 0x44, BUSY);
        produce(r, 8, 0x55, 0);
        assert(drain(r, &s) == 1 && s.val[0] == 0x33 && r->consumer == busy);
        {
                uint32_t hdr = 24;

                put(r, busy, &hdr, sizeof(hdr)); /* committed */
        }
        assert(drain(r, &s) == 2 && s.val[1] == 0x44 && s.val[2] == 0x55 &&
               r->consumer == r->producer);

        /* Discarded records are skipped, not handed over. */
        s = (struct seen){};
        produce(r, 40, 0x66, DISCARD);
        produce(r, 12, 0x77, 0);
        assert(drain(r, &s) == 1 && s.val[0] == 0x77 && r->consumer == r->producer);

        /* A consumer that says stop: that record is consumed, the rest stays. */
        s = (struct seen){ .stop_at = 2 };
        produce(r, 10, 0x01, 0);
        produce(r, 10, 0x02, 0);
        busy = produce(r, 10, 0x03, 0);
        assert(drain(r, &s) == -EAGAIN && s.n == 2 && r->consumer == busy);
        s.stop_at = 0;
        assert(drain(r, &s) == 1 && s.val[2] == 0x03 && r->consumer == r->producer);

        free(r);
        test_merge();
        printf("ringbuf: ok\n");
        return 0;
}
