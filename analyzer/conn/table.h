/*
 * The connection table: one entry per captured connection (the kernel's conn_id, which is
 * per process, TLS object and socket), with bytes per direction, the protocol found on it, and
 * each direction's bytes put back in order by their stream offsets and handed to the protocol
 * parser. Bounded: at most CONN_TABLE_MAX entries (the least recently active one is evicted to
 * make room) and an entry idle for CONN_IDLE_NS is closed. Evictions, gaps and parse errors are
 * counted.
 *
 * Order: the kernel writes a direction's records in the order the calls returned (one thread
 * uses a TLS object at a time, and the ring buffer is shared by all CPUs), so a direction's
 * messages arrive in stream order; an offset that jumps ahead is a gap (records the kernel
 * dropped), an offset behind the expected one is a repeat and is cut to its new part.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "events.h"
#include "proto/exchange.h"
#include "proto/http2.h"
#include "record.h"

#define CONN_TABLE_MAX 16384
#define CONN_IDLE_NS (300ull * 1000 * 1000 * 1000)
/* After the kernel reports a close, wait this long (messages held for their socket identity
 * may still come, see conn/identity.h) before closing the entry. */
#define CONN_CLOSE_DELAY_NS (300ull * 1000 * 1000)
#define CONN_CLOSE_QUEUE 4096
#define CONN_EARLY_MAX 4096 /* server bytes kept before detection */
/* Messages that arrived before the bytes in front of them, held per connection: at most this
 * many and this many bytes, for at most CONN_HOLD_NS; then the missing bytes are a gap. */
#define CONN_HOLD_MAX 8
#define CONN_HOLD_BYTES (1u << 20)
#define CONN_HOLD_NS (500ull * 1000 * 1000)

struct conn_held {
        uint64_t off, ts;
        uint32_t len;
        uint8_t dir;
        uint8_t *data;
};

enum conn_proto { CONN_PROTO_NONE = 0, CONN_PROTO_HTTP1, CONN_PROTO_HTTP2, CONN_PROTO_OTHER };

struct conn_entry {
        uint64_t conn_id;
        struct tlssniff_data_record id; /* identity (pid, comm, addresses) of its last message */
        uint8_t role;                   /* as the analyzer decided it (kernel or guessed) */
        enum conn_proto proto;
        uint64_t next[2];  /* next stream offset per direction (TLSSNIFF_DIR_*) */
        uint64_t bytes[2];
        uint64_t last_active_ns; /* monotonic */
        uint64_t first_ns, last_ns; /* CLOCK_BOOTTIME of its first and last message */
        uint64_t close_ns;          /* CLOCK_BOOTTIME of the kernel's close, 0 if none */
        uint64_t open_ns;           /* CLOCK_BOOTTIME of connect()/accept(), 0 if unknown */
        uint64_t cgroup_id;         /* the process's cgroup v2 id (inode), 0 if unknown */
        struct exchange_conn *x; /* HTTP/1 exchanges (--exchanges) */
        struct h2_conn *h2;      /* HTTP/2 exchanges (--exchanges) */
        uint8_t *early;          /* server bytes seen before the client's first (HTTP/2 servers
                                    send SETTINGS at once), kept until the protocol is known */
        uint32_t early_len;
        uint64_t early_ts;
        struct conn_held *held; /* CONN_HOLD_MAX slots, allocated while holding */
        unsigned n_held;
        size_t held_bytes;
        uint64_t hold_since_ns; /* monotonic: when the oldest held message came */
        struct conn_entry *lru_prev, *lru_next; /* most recent first */
        struct conn_entry *hash_next;
};

typedef void (*conn_exchange_cb)(const struct conn_entry *c, const struct exchange *x,
                                 void *userdata);
/* A connection got its socket (the kernel's open record); c->open_ns is 0 if it is older. */
typedef void (*conn_open_cb)(const struct conn_entry *c, uint64_t seen_ns, void *userdata);
/* why: "closed" (the socket closed), "idle", "evicted", "shutdown" */
typedef void (*conn_close_cb)(const struct conn_entry *c, const char *why, void *userdata);

/*
 * Where each direction of a connection that left the table (closed by the kernel, idle, evicted)
 * had got to, so that its bytes arriving later go on from there: a program can read what it had
 * received after the kernel closed the connection, or come back after an idle spell. Without
 * this they would be held as out of order and then counted as a gap. Direct-mapped by id: a
 * connection that left later may take an older one's slot (that one's late bytes are then held
 * and counted as before).
 */
#define CONN_GONE_SLOTS 4096

struct conn_gone {
        uint64_t conn_id; /* 0: empty (ids start at 1) */
        uint64_t next[2];
};

struct conn_table {
        struct conn_entry **buckets; /* CONN_TABLE_MAX chains */
        struct conn_gone *gone;      /* CONN_GONE_SLOTS */
        uint64_t reopened;           /* entries that went on from a connection that had left */
        size_t n;
        struct conn_entry *lru_head, *lru_tail;
        size_t preview;
        bool parse; /* run the protocol parsers (--exchanges); else only track */
        conn_exchange_cb cb;
        conn_close_cb close_cb;
        conn_open_cb open_cb;
        void *userdata;
        struct {
                uint64_t conn_id, at_ns;
        } closing[CONN_CLOSE_QUEUE]; /* kernel closes waiting CONN_CLOSE_DELAY_NS */
        unsigned closing_head, closing_n;
        struct conn_entry *emitting; /* the entry whose exchange is being emitted */
        uint64_t evicted, expired, closed, gaps, repeats, exchanges, http_errors;
        uint64_t held;          /* messages that arrived early and were held */
        uint64_t hold_timeouts; /* held messages given up on (the gap stayed) */
        size_t holding;         /* entries holding messages */
};

int conn_table_init(struct conn_table *t, bool parse, size_t preview, conn_exchange_cb cb,
                    conn_close_cb close_cb, void *userdata);
/* The entry of conn_id, or NULL. */
const struct conn_entry *conn_table_find(struct conn_table *t, uint64_t conn_id);
/* How many processes the tracked connections belong to (at most 256 are told apart). */
unsigned conn_table_count_pids(const struct conn_table *t);
/* Closes every connection (pending exchanges are emitted as incomplete). */
void conn_table_done(struct conn_table *t);
/* One message of a connection, with the role the analyzer settled on. */
void conn_table_message(struct conn_table *t, const struct message *m, uint8_t role,
                        uint64_t now_ns);
/*
 * The kernel tied conn_id to its socket (struct tlssniff_open_record): the entry is made, with
 * that identity, and t->open_cb called.
 */
void conn_table_opened(struct conn_table *t, const struct tlssniff_open_record *o,
                       uint64_t now_ns);
/* The kernel saw the socket of conn_id close at close_ns (CLOCK_BOOTTIME). */
void conn_table_closed(struct conn_table *t, uint64_t conn_id, uint64_t close_ns,
                       uint64_t now_ns);
/* Closes connections idle for CONN_IDLE_NS and those whose close delay has passed. */
void conn_table_expire(struct conn_table *t, uint64_t now_ns);
