/* Consumer of the BPF ring buffer with one consumer-position store per drain; see ringbuf.h. */
#include <errno.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ringbuf.h"

/* The kernel's record header (kernel/bpf/ringbuf.c): u32 length with two flag bits, u32 pgoff. */
#define RINGBUF_BUSY_BIT (1u << 31)
#define RINGBUF_DISCARD_BIT (1u << 30)
#define RINGBUF_HDR_SZ 8u

static uint64_t record_span(uint32_t len)
{
        return (RINGBUF_HDR_SZ + (len & ~RINGBUF_DISCARD_BIT) + 7) & ~7ull;
}

int ringbuf_consume_mem(uint64_t *consumer, const uint64_t *producer, const uint8_t *data,
                        size_t size, ringbuf_sample_fn fn, void *ctx)
{
        uint64_t cons = __atomic_load_n(consumer, __ATOMIC_ACQUIRE);
        uint64_t released = cons, prod;
        int n = 0, r = 0;

        prod = __atomic_load_n(producer, __ATOMIC_ACQUIRE);
        while (cons < prod) {
                const uint32_t *hdr = (const uint32_t *)(data + (cons & (size - 1)));
                uint32_t len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);

                if (len & RINGBUF_BUSY_BIT)
                        break; /* reserved, not yet committed: later records wait for it */
                cons += record_span(len);
                if (!(len & RINGBUF_DISCARD_BIT)) {
                        n++;
                        r = fn(ctx, (void *)(hdr + 2), len);
                        if (r < 0)
                                break;
                }
                if (cons - released >= RINGBUF_RELEASE_BYTES) {
                        __atomic_store_n(consumer, cons, __ATOMIC_RELEASE);
                        released = cons;
                }
                if (cons >= prod)
                        prod = __atomic_load_n(producer, __ATOMIC_ACQUIRE);
        }
        if (cons != released)
                __atomic_store_n(consumer, cons, __ATOMIC_RELEASE);
        return r < 0 ? r : n;
}

static void src_release(struct ringbuf_src *s)
{
        if (s->cons != s->released) {
                __atomic_store_n(s->consumer, s->cons, __ATOMIC_RELEASE);
                s->released = s->cons;
        }
}

/* The ring's next committed record within the drain (skipping discarded ones), or false. */
static bool src_peek(struct ringbuf_src *s, ringbuf_key_fn key)
{
        if (s->head)
                return true;
        while (s->cons < s->end) {
                const uint32_t *hdr = (const uint32_t *)(s->data + (s->cons & (s->size - 1)));
                uint32_t len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);

                if (len & RINGBUF_BUSY_BIT) {
                        s->end = s->cons; /* later records wait for this one: next drain */
                        return false;
                }
                if (len & RINGBUF_DISCARD_BIT) {
                        s->cons += record_span(len);
                        continue;
                }
                s->head = (const uint8_t *)(hdr + 2);
                s->head_len = len;
                s->head_key = key(s->head, len);
                return true;
        }
        return false;
}

int ringbuf_merge_mem(struct ringbuf_src *src, unsigned n, ringbuf_key_fn key,
                      ringbuf_sample_fn fn, void *ctx)
{
        unsigned live = n; /* src[0..live) may have records in this drain */
        int done = 0, r = 0;

        for (unsigned i = 0; i < n; i++) {
                struct ringbuf_src *s = &src[i];

                s->cons = s->released = __atomic_load_n(s->consumer, __ATOMIC_ACQUIRE);
                s->end = __atomic_load_n(s->producer, __ATOMIC_ACQUIRE);
                s->head = NULL;
        }
        for (;;) {
                struct ringbuf_src *best = NULL;
                const uint8_t *rec;
                uint32_t len;

                for (unsigned i = 0; i < live;) {
                        if (!src_peek(&src[i], key)) {
                                /* Done for this drain: out of the way (order does not matter
                                 * between rings, only within one). */
                                struct ringbuf_src t = src[i];

                                src_release(&t);
                                src[i] = src[--live];
                                src[live] = t;
                                continue;
                        }
                        if (!best || src[i].head_key < best->head_key)
                                best = &src[i];
                        i++;
                }
                if (!best)
                        break;
                rec = best->head;
                len = best->head_len;
                best->head = NULL;
                best->cons += record_span(len);
                if (best->cons - best->released >= RINGBUF_RELEASE_BYTES)
                        src_release(best);
                done++;
                r = fn(ctx, (void *)rec, len);
                if (r < 0)
                        break;
        }
        for (unsigned i = 0; i < n; i++)
                src_release(&src[i]);
        return r < 0 ? r : done;
}

struct ringbuf_src ringbuf_reader_src(const struct ringbuf_reader *r)
{
        return (struct ringbuf_src){
                .consumer = r->consumer,
                .producer = r->producer,
                .data = r->data,
                .size = r->size,
        };
}

int ringbuf_reader_open(int map_fd, size_t size, struct ringbuf_reader *ret)
{
        long page = sysconf(_SC_PAGESIZE);
        void *c, *p;

        if (page <= 0 || size == 0 || (size & (size - 1)))
                return -EINVAL;
        c = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
        if (c == MAP_FAILED)
                return -errno;
        /* The producer page, then the data area twice: a record that wraps reads contiguously. */
        p = mmap(NULL, (size_t)page + 2 * size, PROT_READ, MAP_SHARED, map_fd, (off_t)page);
        if (p == MAP_FAILED) {
                int e = -errno;

                munmap(c, (size_t)page);
                return e;
        }
        *ret = (struct ringbuf_reader){
                .map_fd = map_fd,
                .size = size,
                .page = (size_t)page,
                .consumer = c,
                .producer = p,
                .data = (const uint8_t *)p + page,
        };
        return 0;
}

void ringbuf_reader_close(struct ringbuf_reader *r)
{
        if (!r->consumer)
                return;
        munmap(r->consumer, r->page);
        munmap((void *)r->producer, r->page + 2 * r->size);
        r->consumer = NULL;
        r->producer = NULL;
        r->data = NULL;
}

int ringbuf_reader_consume(struct ringbuf_reader *r, ringbuf_sample_fn fn, void *ctx)
{
        if (!r->consumer)
                return 0;
        return ringbuf_consume_mem(r->consumer, r->producer, r->data, r->size, fn, ctx);
}

uint64_t ringbuf_reader_used(const struct ringbuf_reader *r)
{
        if (!r->consumer)
                return 0;
        return __atomic_load_n(r->producer, __ATOMIC_ACQUIRE) -
               __atomic_load_n(r->consumer, __ATOMIC_ACQUIRE);
}
