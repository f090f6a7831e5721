/* Consumer of the BPF ring buffer with one consumer-position store per drain; see ringbuf.h. */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ringbuf.h"

/* The kernel's record header (kernel/bpf/ringbuf.c): u32 length with two flag bits, u32 pgoff. */
#define RINGBUF_BUSY_BIT (1u << 31)
#define RINGBUF_DISCARD_BIT (1u << 30)
#define RINGBUF_HDR_SZ 8u

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
                cons += (RINGBUF_HDR_SZ + (len & ~RINGBUF_DISCARD_BIT) + 7) & ~7ull;
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
