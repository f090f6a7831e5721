/* Writing messages for people (text) and for programs (JSON lines, docs/output.md). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "conn/table.h"
#include "proto/exchange.h"
#include "record.h"

enum role_source { ROLE_SOURCE_NONE, ROLE_SOURCE_KERNEL, ROLE_SOURCE_LISTEN };

#define OUTPUT_REDACT_MAX 32
#define OUTPUT_HEADER_NAME_MAX 64
#define OUTPUT_WRITEBACK_STEP (8u << 20)
#define OUTPUT_CACHE_KEEP (32u << 20)
/*
 * The stdio buffer of the analyzer's output (records are flushed in whole lines at half of it).
 * Under load, fewer and larger writes cost less per byte (each is a hand-over to the writer
 * thread, a device request and, extending the file, a journal update): 2 MiB rather than 1
 * took the analyzer from 2.9 to 2.3 us per request on throughput.py; 4 MiB (with writes every
 * 10 ms) was no better over two runs (docs/performance.md, 2026-12-04, night).
 */
#define OUTPUT_BUFFER_SIZE (2u << 20)

/* Headers redacted besides authorization, proxy-authorization, cookie, set-cookie; query
 * parameters and body fields redacted besides REDACT_PARAMS (redact.h). */
struct output_redaction {
        unsigned n;
        char names[OUTPUT_REDACT_MAX][OUTPUT_HEADER_NAME_MAX + 1];
        unsigned n_params;
        char params[OUTPUT_REDACT_MAX][OUTPUT_HEADER_NAME_MAX + 1];
};

#define OUTPUT_LINE_SLOTS 128 /* a slot per connection and direction */
/* ,"pid":..."source":"openssl at most: 2 * 10 digits, comm 96 escaped, fd 11, two IPv6
 * addresses 2 * 67, conn_id 20, names and keys about 170. */
#define OUTPUT_LINE_MAX 512

struct output {
        const struct output_redaction *redact; /* NULL: the usual four only */
        FILE *f;
        int fd; /* the file under f (fileno(f) unless output_init_fd said), -1: none */
        bool json;
        unsigned max_print;
        int64_t realtime_offset_ns;
        char *b64; /* scratch for base64 */
        size_t b64_cap;
        uint8_t *redacted; /* scratch for redacted body previews */
        size_t redacted_cap;
        /*
         * Whole lines only: with flush_at set (below the stdio buffer's size), the stream is
         * flushed between messages once the bytes written since the last flush may exceed it,
         * so stdio never hands a line over in two parts (out/direct.c may still write a batch
         * in a few calls: loaderd cuts a half line an analyzer killed in between left behind).
         * 0: stdio decides.
         */
        size_t flush_at;
        size_t pending_bound; /* upper bound of the bytes buffered since the last flush */
        /*
         * A regular output file is written back as it grows (every OUTPUT_WRITEBACK_STEP) and
         * its pages dropped from the page cache once OUTPUT_CACHE_KEEP behind the end: a long
         * capture does not fill the page cache, and new writes land on pages just freed
         * instead of fresh ones (three times cheaper here; docs/performance.md).
         */
        bool wb_file;
        uint64_t wb_started; /* writeback started up to here */
        uint64_t wb_dropped; /* dropped from the page cache up to here */
        /* The middle of the data line ("pid" .. "source") per connection and direction: slot
         * (conn_id * 2 + direction) % OUTPUT_LINE_SLOTS, see put_middle. */
        struct output_line {
                struct output_line_key {
                        uint64_t conn_id;
                        uint32_t pid, tid;
                        int32_t fd;
                        uint16_t family, lport, rport;
                        uint8_t direction, role, rs, source;
                        uint8_t laddr[16], raddr[16];
                        char comm[TLSSNIFF_COMM_LEN];
                } key;
                uint16_t len; /* 0: empty */
                char text[OUTPUT_LINE_MAX];
        } lines[OUTPUT_LINE_SLOTS];
        /* The last second formatted as wall-clock text (one strftime per second). */
        int64_t tcache_secs;
        bool tcache_utc;
        char tcache[32];
};

void output_init(struct output *o, FILE *f, bool json, unsigned max_print);
/* The same for a stream with no fd of its own (fopencookie) that writes to fd. */
void output_init_fd(struct output *o, FILE *f, int fd, bool json, unsigned max_print);
void output_done(struct output *o);
/* role may differ from m->hdr.role when it was guessed. */
int output_message(struct output *o, const struct message *m, uint8_t role, enum role_source rs);
int output_stats(struct output *o, const char *const *names, const uint64_t *values, unsigned n);
void output_flush(struct output *o);
/* The stream's file was replaced (a reload's new output): look at what it is now. */
void output_file_changed(struct output *o);
/* "client", "server", "unknown"; "http/1", "http/2", "other", "none". */
const char *output_role_name(uint8_t role);
const char *output_proto_name(enum conn_proto p);
/*
 * One request/response exchange of connection c (docs/output.md, "exchange"). Sensitive
 * headers (authorization, cookie, set-cookie, proxy-authorization) are written as
 * "[redacted]" unless show_secrets.
 */
int output_exchange(struct output *o, const struct conn_entry *c, const struct exchange *x,
                    bool show_secrets);
/* The end of a tracked connection (docs/output.md, "connection"); why: closed, idle, ... */
int output_connection(struct output *o, const struct conn_entry *c, const char *why);
/* The connection-open record: c just got its socket; seen_ns: when (CLOCK_BOOTTIME). */
int output_connection_open(struct output *o, const struct conn_entry *c, uint64_t seen_ns);

/* Helpers, exposed for tests. */
/* base64 of in[0..n) into out (4 * ((n + 2) / 3) + 1 bytes with its NUL); returns the length.
 * base64_encode picks the fastest encoder the CPU has; the portable one is for comparison. */
size_t base64_encode(const uint8_t *in, size_t n, char *out);
size_t base64_encode_portable(const uint8_t *in, size_t n, char *out);
void json_write_string(FILE *f, const char *s, size_t n);
void format_addr(uint16_t family, const uint8_t addr[16], char *out, size_t size);
