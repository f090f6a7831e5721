/*
 * Late socket identity. A TLS library working on memory buffers (node, asyncio) does its socket
 * I/O outside SSL_write, so the kernel learns the socket only after the first writes of a
 * connection were captured. Messages without a socket are held here, per connection, until a
 * message of the same connection brings the socket (they are then given its identity), or for
 * at most IDENTITY_HOLD_NS, or until the bounds below are reached; then they are written as
 * they are. Nothing is dropped.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "record.h"

#define IDENTITY_HOLD_NS (200ull * 1000 * 1000)
#define IDENTITY_OPENED_MAX 256u /* connections whose socket came in an open record, remembered */
#define IDENTITY_HOLD_BYTES_MAX (8u << 20)
#define IDENTITY_HOLD_MESSAGES_MAX 4096u

struct held_message;

/* A connection's socket identity from its open record (the fields a data record carries). */
struct opened_identity {
        uint64_t conn_id;
        uint32_t pid;
        int32_t fd;
        uint16_t family, lport, rport;
        uint8_t role;
        uint8_t laddr[16], raddr[16];
};

struct identity {
        struct held_message *head, *tail;
        /* The last IDENTITY_OPENED_MAX open records: messages without a socket that reach us
         * after their connection's open record (through the reassembly) take it from here. */
        struct opened_identity opened[IDENTITY_OPENED_MAX];
        unsigned opened_next;
        unsigned n;
        size_t bytes;
        message_cb emit;
        void *userdata;
        uint64_t late_bound;    /* messages that got their socket late */
        uint64_t released_bare; /* messages written without a socket */
};

void identity_init(struct identity *id, message_cb emit, void *userdata);
/* now_ns: a monotonic clock, for the hold timeout. */
int identity_submit(struct identity *id, const struct message *m, uint64_t now_ns);
/*
 * A connection got its socket (an open record; reads placed on the copy are seen before it):
 * its held messages get the identity and are written, and later ones without a socket too.
 */
void identity_opened(struct identity *id, const struct tlssniff_open_record *o);
/* Releases messages held longer than the hold time; all of them when force is set. */
void identity_expire(struct identity *id, uint64_t now_ns, bool force);
bool identity_pending(const struct identity *id);
void identity_done(struct identity *id);
