/*
 * Request/response exchanges of one HTTP/1.x connection: two parsers (requests one way,
 * responses the other), requests paired with responses in order (keep-alive and pipelining),
 * timestamps from the messages that carried the bytes. An exchange is emitted when its
 * response ends, or with an error when the stream breaks; every bound is stated and what goes
 * over it is cut, not allocated.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "proto/http1.h"

#define EXCHANGE_PENDING_MAX 32      /* requests waiting for their response */
#define EXCHANGE_HEADER_BYTES 8192   /* names and values kept per message */
#define EXCHANGE_PREVIEW_MAX 65536   /* largest body preview that can be asked for */

struct exchange_headers {
        unsigned n;
        uint16_t name[HTTP1_HEADERS_MAX], value[HTTP1_HEADERS_MAX]; /* offsets into text */
        size_t len;
        bool truncated;
        char *text; /* len bytes, allocated to fit (at most EXCHANGE_HEADER_BYTES) */
};

struct exchange {
        char method[16];
        char target[1024];
        char authority[256];
        int status;     /* 0: no response */
        char reason[64];
        int version_minor;
        struct exchange_headers req_headers, resp_headers;
        uint64_t req_body, resp_body;
        uint8_t *req_preview, *resp_preview; /* preview_max bytes each */
        size_t req_preview_len, resp_preview_len;
        uint64_t start_ns;      /* first request byte */
        uint64_t req_end_ns;    /* last request byte */
        uint64_t resp_start_ns; /* first response byte */
        uint64_t resp_end_ns;   /* last response byte */
        bool req_done, resp_started;
        bool upgraded; /* 101 / CONNECT: HTTP/1 ends here */
        const char *error; /* NULL, or why this exchange is incomplete */
        /* HTTP/2 (proto/http2.h). HTTP/1.x exchanges leave these zero (exchange.c callocs). */
        uint8_t http_version; /* 2: HTTP/2; 0 or 1: HTTP/1.x (version_minor) */
        uint32_t stream_id;
        char scheme[16]; /* :scheme */
        bool grpc;       /* the request's content-type is application/grpc* */
        char grpc_service[256], grpc_method[128]; /* from :path "/pkg.Service/Method" */
        int grpc_status;       /* grpc-status of the response; -1: none (HTTP/2 only) */
        char grpc_message[256]; /* grpc-message, percent-decoded */
        uint32_t grpc_msgs[2];  /* length-prefixed messages seen: [0] request, [1] response */
};

struct exchange_conn;
typedef void (*exchange_cb)(const struct exchange *x, void *userdata);

/* preview: body bytes kept per direction (<= EXCHANGE_PREVIEW_MAX). NULL when out of memory. */
struct exchange_conn *exchange_conn_new(size_t preview, exchange_cb cb, void *userdata);
/* Emits what is pending as incomplete ("connection closed") and frees. */
struct exchange_conn *exchange_conn_free(struct exchange_conn *c);
/* Bytes of the request direction (requests = true) or the response direction, in order. */
void exchange_conn_data(struct exchange_conn *c, bool requests, const uint8_t *data, size_t n,
                        uint64_t ts_ns);
void exchange_conn_gap(struct exchange_conn *c, bool requests);
void exchange_conn_close(struct exchange_conn *c);
/* Counters for the stats: exchanges emitted, parse errors (both directions). */
void exchange_conn_counters(const struct exchange_conn *c, uint64_t *ret_exchanges,
                            uint64_t *ret_errors);
/* "Host" and friends: the value of a header, or NULL. */
const char *exchange_header(const struct exchange_headers *h, const char *name);
