/*
 * An incremental HTTP/1.x parser for one direction of one connection: bytes go in in stream
 * order, in pieces of any size (one byte at a time gives the same events as the whole stream);
 * message heads, body bytes (de-chunked), ends and errors come out through callbacks. Input is
 * untrusted: every length is bounded, a malformed message is reported once and the parser
 * resynchronises on the next line that looks like the start of a message, and a gap in the
 * stream (a record the kernel dropped) does the same. The only allocation is the head buffer,
 * grown on demand up to HTTP1_HEAD_MAX (a parser costs little until a message arrives).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP1_HEAD_MAX 16384 /* request/status line and headers of one message */
#define HTTP1_HEADERS_MAX 64

struct http1_header {
        const char *name, *value; /* NUL-terminated, valid during on_head only */
};

struct http1_head {
        bool request;
        /* request */
        const char *method;
        const char *target;
        /* response */
        int status;
        const char *reason;
        int version_minor; /* HTTP/1.<minor> */
        unsigned n_headers;
        struct http1_header headers[HTTP1_HEADERS_MAX];
        bool headers_truncated; /* more than HTTP1_HEADERS_MAX: the rest are not listed */
        /* what the parser made of them */
        int64_t content_length; /* -1 when absent */
        bool chunked;
        bool interim;  /* a 1xx response other than 101: the final one follows */
        bool upgrade;  /* 101, or 2xx to CONNECT: the stream stops being HTTP/1 */
        bool keep_alive;
};

enum http1_body {
        HTTP1_BODY_NONE = 0,
        HTTP1_BODY_LENGTH,
        HTTP1_BODY_CHUNKED,
        HTTP1_BODY_UNTIL_CLOSE,
};

struct http1_callbacks {
        void (*on_head)(void *userdata, const struct http1_head *h);
        void (*on_body)(void *userdata, const uint8_t *data, size_t n);
        /* The message is complete; body_bytes is its de-chunked body size. */
        void (*on_complete)(void *userdata, uint64_t body_bytes);
        /* The message in progress (if any) is abandoned; the parser looks for the next one. */
        void (*on_error)(void *userdata, const char *why);
        /* The stream switched protocols (101 or CONNECT): what follows is not HTTP/1. */
        void (*on_upgrade)(void *userdata);
};

enum http1_state {
        HTTP1_START,   /* before a message: skipping empty lines */
        HTTP1_HEAD,    /* collecting the head */
        HTTP1_BODY,    /* body by length or until close */
        HTTP1_CHUNK_SIZE,
        HTTP1_CHUNK_DATA,
        HTTP1_CHUNK_DATA_END, /* the CRLF after a chunk */
        HTTP1_TRAILERS,
        HTTP1_RESYNC,  /* after an error: waiting for a line that starts a message */
        HTTP1_UPGRADED,
};

struct http1_parser {
        bool request; /* this direction carries requests (else responses) */
        enum http1_state state;
        const struct http1_callbacks *cb;
        void *userdata;

        char *head; /* head_cap + 1 bytes */
        size_t head_len, head_cap;
        char line[128]; /* chunk-size and trailer lines, resync lines */
        size_t line_len;
        bool line_overflow;

        enum http1_body body;
        uint64_t remaining;  /* body or chunk bytes left */
        uint64_t body_bytes; /* de-chunked body bytes of the message so far */
        bool resync_at_line_start;

        /* Responses: what the requests still waiting for one asked for (FIFO, pipelining). */
        uint32_t expect_head;  /* bit i: the i-th pending request was HEAD */
        uint32_t expect_connect;
        unsigned n_expected;

        uint64_t messages, errors;
};

void http1_init(struct http1_parser *p, bool request, const struct http1_callbacks *cb,
                void *userdata);
void http1_done(struct http1_parser *p);
/* Feeds the next bytes of the stream. */
void http1_feed(struct http1_parser *p, const uint8_t *data, size_t n);
/* Bytes were lost before what comes next: the message in progress is abandoned. */
void http1_gap(struct http1_parser *p);
/* The stream ended: a body read until close completes, anything else in progress is an error. */
void http1_close(struct http1_parser *p);
/*
 * For a response parser: a request was sent whose response comes next in line (its method
 * decides whether the response has a body). Requests beyond 32 waiting are not remembered:
 * their responses are parsed as answers to GET.
 */
void http1_expect_response(struct http1_parser *p, const char *method);
