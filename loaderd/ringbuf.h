/*
 * loaderd's consumer of the BPF ring buffer. libbpf's ring_buffer advances the consumer position
 * after every record; each such store is a cache line that every producing CPU reads on its
 * next reservation (bpf_ringbuf_reserve checks the free space), so draining 200,000 records a
 * second cost the traced processes a cache miss per record. This reader advances it once per
 * drain (or every RINGBUF_RELEASE_BYTES within a long one, so producers see space freed
 * during it), and lets the map fd itself be polled (no nested epoll).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define RINGBUF_RELEASE_BYTES (1u << 20)

/* Called for each record; a negative return stops the drain after this record (consumed). */
typedef int (*ringbuf_sample_fn)(void *ctx, void *data, size_t size);

struct ringbuf_reader {
        int map_fd;
        size_t size;             /* data area, a power of two */
        size_t page;
        uint64_t *consumer;      /* mapped read-write: ours to advance */
        const uint64_t *producer; /* read-only, followed by the data area mapped twice */
        const uint8_t *data;
};

/* Maps the ring of map_fd (a BPF_MAP_TYPE_RINGBUF of size bytes). */
int ringbuf_reader_open(int map_fd, size_t size, struct ringbuf_reader *ret);
void ringbuf_reader_close(struct ringbuf_reader *r);

/*
 * Every record the producers have committed, in order, to fn; stops at a record still being
 * written. Returns the records handed to fn, or fn's negative result.
 */
int ringbuf_reader_consume(struct ringbuf_reader *r, ringbuf_sample_fn fn, void *ctx);

/*
 * One ring's part in a merged drain (ringbuf_merge_mem): where the kernel maps it, and the
 * drain's position in it.
 */
struct ringbuf_src {
        uint64_t *consumer;
        const uint64_t *producer;
        const uint8_t *data;
        size_t size;
        uint64_t cons, end, released; /* during a drain */
        const uint8_t *head;          /* the next record, peeked; NULL: not yet */
        uint32_t head_len;
        uint64_t head_key;
};

/* A record's place in a merged drain: smaller first. */
typedef uint64_t (*ringbuf_key_fn)(const void *data, size_t size);

/*
 * Drains n rings as one: the records each had committed when the drain began, each time the
 * one with the smallest key among the rings' next records, so that each ring's records keep
 * their order and records of different rings come in key order as far as each ring's order
 * allows. A record still being written ends its ring's part in this drain. Each step compares
 * the rings that still have records in this drain (an idle CPU's ring drops out at once).
 * Reorders src (the rings' order in it means nothing). Returns the records handed to fn, or
 * fn's negative result (fn's record is consumed).
 */
int ringbuf_merge_mem(struct ringbuf_src *src, unsigned n, ringbuf_key_fn key,
                      ringbuf_sample_fn fn, void *ctx);

/* The src of a mapped reader's ring. */
struct ringbuf_src ringbuf_reader_src(const struct ringbuf_reader *r);

/* Bytes committed or reserved and not yet consumed. */
uint64_t ringbuf_reader_used(const struct ringbuf_reader *r);

/* The drain itself, on memory laid out as the kernel lays out a ring (for the unit test). */
int ringbuf_consume_mem(uint64_t *consumer, const uint64_t *producer, const uint8_t *data,
                        size_t size, ringbuf_sample_fn fn, void *ctx);
