/* HTTP/2 and gRPC exchanges of one connection; see http2.h. */
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/http2.h"

enum {
        F_DATA = 0,
        F_HEADERS = 1,
        F_PRIORITY = 2,
        F_RST_STREAM = 3,
        F_SETTINGS = 4,
        F_PUSH_PROMISE = 5,
        F_PING = 6,
        F_GOAWAY = 7,
        F_WINDOW_UPDATE = 8,
        F_CONTINUATION = 9,
};

#define FL_END_STREAM 0x01
#define FL_ACK 0x01
#define FL_END_HEADERS 0x04
#define FL_PADDED 0x08
#define FL_PRIORITY 0x20

enum { REQ = 0, RESP = 1 }; /* sides of a stream, and indexes of the directions */

enum h2_read {
        RD_PREFACE, /* the client's 24 bytes */
        RD_HEAD,    /* a frame header (9 bytes) */
        RD_PAYLOAD,
};

enum h2_side_state {
        ST_IDLE = 0, /* nothing of that side seen yet */
        ST_OPEN,     /* headers seen */
        ST_ENDED,    /* END_STREAM seen */
};

/* The fields of the header block being decoded, laid out as struct exchange_headers wants. */
struct h2_hlist {
        unsigned n;
        uint16_t name[HTTP1_HEADERS_MAX], value[HTTP1_HEADERS_MAX];
        size_t len;
        bool truncated;
        char text[EXCHANGE_HEADER_BYTES];
};

/* What a header block says, picked from every field as it is decoded, kept or not. */
struct h2_info {
        char method[16], path[1024], authority[256], host[256], scheme[16];
        int status;      /* -1: no :status; 0: not three digits */
        bool grpc;       /* content-type application/grpc* */
        int grpc_status; /* -1: none or not a number */
        bool has_grpc_message;
        char grpc_message[256];
};

/* What is decoded of a block, allocated while the block lasts: ~10 KB that an idle
 * connection does not need to hold. */
struct h2_decoded {
        struct h2_info info;
        struct h2_hlist h;
};

/* A header block: HEADERS or PUSH_PROMISE, then CONTINUATION frames up to END_HEADERS. */
struct h2_block {
        bool active;
        uint8_t type;
        bool end_stream;
        bool too_large;
        uint32_t sid;
        uint64_t ts;            /* of the first byte of its first frame */
        size_t bytes;           /* compressed */
        struct h2_decoded *dec; /* NULL when memory was short: decoded, not kept */
};

struct h2_dir {
        bool request;
        enum h2_read state;
        bool first_frame; /* the next frame is the first: it must be SETTINGS */
        size_t preface_got;
        uint8_t head[9];
        size_t head_len;
        /* the frame being read */
        uint32_t len, got, sid;
        uint8_t type, flags;
        uint64_t frame_ts; /* of the call that carried its first byte */
        bool bad;          /* invalid: the rest of it is skipped, its flags ignored */
        /* Prefix: pad length, priority, promised stream id; or a control frame's fields. */
        uint8_t pre[8];
        uint32_t pre_need, pre_got;
        uint32_t body_left; /* DATA or header block fragment bytes after the prefix */
        nghttp2_hd_inflater *hd;
        struct h2_block block;
};

/* gRPC length-prefixed messages: 1 byte compressed flag, 4 bytes big-endian length, body. */
struct h2_grpc_framing {
        uint8_t prefix_got;
        uint8_t len[4];
        uint64_t remaining;
        uint32_t msgs; /* complete messages */
};

struct h2_stream {
        struct exchange x;
        uint8_t st[2]; /* enum h2_side_state of the request and response sides */
        struct h2_grpc_framing grpc[2];
        char why[32]; /* x.error when it needs formatting */
};

struct h2_conn {
        struct h2_dir dir[2];
        exchange_cb cb;
        void *userdata;
        size_t preview;
        uint64_t ts; /* of the bytes being fed */
        /* Open streams, sorted by id. */
        struct h2_stream *streams[H2_STREAMS_MAX];
        unsigned n_streams;
        /* Client stream ids only grow: a block for one at or below this, not in the table, is
         * for a stream already emitted (or not tracked), not a new one. */
        uint32_t max_client_sid;
        bool goaway; /* the server sent GOAWAY: streams above goaway_last are refused */
        uint32_t goaway_last;
        bool dead; /* abandoned or closed: nothing more is parsed */
        uint64_t exchanges, errors;
};

static uint32_t be32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Copies at most size - 1 bytes of src[0..n), stopping at a NUL, and terminates. */
static void copy_bytes(char *dst, size_t size, const void *src, size_t n)
{
        const char *end = memchr(src, '\0', n);

        if (end)
                n = (size_t)(end - (const char *)src);
        if (n >= size)
                n = size - 1;
        memcpy(dst, src, n);
        dst[n] = '\0';
}

static bool is_name(const uint8_t *name, size_t nl, const char *want)
{
        size_t wl = strlen(want);

        return nl == wl && memcmp(name, want, wl) == 0;
}

static int hex_value(uint8_t c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* grpc-message is percent-encoded (gRPC over HTTP/2, "Responses"). %00 is left encoded. */
static void copy_percent_decoded(char *dst, size_t size, const uint8_t *src, size_t n)
{
        size_t o = 0;

        for (size_t i = 0; i < n && o + 1 < size && src[i] != '\0'; i++) {
                int hi = -1, lo = -1;

                if (src[i] == '%' && i + 2 < n) {
                        hi = hex_value(src[i + 1]);
                        lo = hex_value(src[i + 2]);
                }
                if (hi >= 0 && lo >= 0 && (hi | lo) != 0) {
                        dst[o++] = (char)(hi << 4 | lo);
                        i += 2;
                } else {
                        dst[o++] = (char)src[i];
                }
        }
        dst[o] = '\0';
}

/* Digits only, at most max_digits of them; -1 otherwise. */
static int parse_uint(const uint8_t *s, size_t n, size_t max_digits)
{
        int v = 0;

        if (n == 0 || n > max_digits)
                return -1;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -1;
                v = v * 10 + (s[i] - '0');
        }
        return v;
}

/* :status is three digits; anything else reads as 0, "no response" to the exchange. */
static int status_value(const uint8_t *s, size_t n)
{
        int v = n == 3 ? parse_uint(s, n, 3) : -1;

        return v < 0 ? 0 : v;
}

static void keep_preview(uint8_t *preview, size_t *len, size_t max, const uint8_t *d, size_t n)
{
        size_t k;

        if (*len >= max)
                return;
        k = max - *len < n ? max - *len : n;
        memcpy(preview + *len, d, k);
        *len += k;
}

static void grpc_framing_feed(struct h2_grpc_framing *g, const uint8_t *d, size_t n)
{
        while (n > 0) {
                if (g->remaining > 0) {
                        uint64_t k = g->remaining < n ? g->remaining : n;

                        g->remaining -= k;
                        d += k;
                        n -= (size_t)k;
                        if (g->remaining == 0 && g->msgs < UINT32_MAX)
                                g->msgs++;
                        continue;
                }
                if (g->prefix_got > 0)
                        g->len[g->prefix_got - 1] = *d;
                g->prefix_got++;
                d++;
                n--;
                if (g->prefix_got == 5) {
                        g->prefix_got = 0;
                        g->remaining = be32(g->len);
                        if (g->remaining == 0 && g->msgs < UINT32_MAX)
                                g->msgs++;
                }
        }
}

/* --- headers --- */

static void hlist_add(struct h2_hlist *h, const uint8_t *name, size_t nl, const uint8_t *value,
                      size_t vl)
{
        if (h->truncated)
                return;
        if (h->n >= HTTP1_HEADERS_MAX || h->len + nl + vl + 2 > sizeof(h->text)) {
                h->truncated = true;
                return;
        }
        h->name[h->n] = (uint16_t)h->len;
        memcpy(h->text + h->len, name, nl);
        h->len += nl;
        h->text[h->len++] = '\0';
        h->value[h->n] = (uint16_t)h->len;
        memcpy(h->text + h->len, value, vl);
        h->len += vl;
        h->text[h->len++] = '\0';
        h->n++;
}

/* Appends a block's fields to what a message already has (its headers, then trailers). */
static void headers_append(struct exchange_headers *eh, const struct h2_hlist *h)
{
        size_t cap = eh->len + h->len;
        char *text;

        if (h->truncated)
                eh->truncated = true;
        if (h->n == 0)
                return;
        if (cap > EXCHANGE_HEADER_BYTES)
                cap = EXCHANGE_HEADER_BYTES;
        if (cap <= eh->len) {
                eh->truncated = true;
                return;
        }
        text = realloc(eh->text, cap);
        if (!text) {
                eh->truncated = true;
                return;
        }
        eh->text = text;
        for (unsigned i = 0; i < h->n; i++) {
                /* name, NUL, value, NUL: values may hold NULs of their own */
                size_t start = h->name[i], end = i + 1 < h->n ? h->name[i + 1] : h->len;
                size_t shift = eh->len - start;

                if (eh->n >= HTTP1_HEADERS_MAX || eh->len + (end - start) > cap) {
                        eh->truncated = true;
                        break;
                }
                memcpy(eh->text + eh->len, h->text + start, end - start);
                eh->name[eh->n] = (uint16_t)(h->name[i] + shift);
                eh->value[eh->n] = (uint16_t)(h->value[i] + shift);
                eh->len += end - start;
                eh->n++;
        }
}

static void info_field(struct h2_info *in, const uint8_t *name, size_t nl, const uint8_t *value,
                       size_t vl)
{
        static const char grpc_ct[] = "application/grpc";

        if (nl > 0 && name[0] == ':') {
                if (is_name(name, nl, ":method"))
                        copy_bytes(in->method, sizeof(in->method), value, vl);
                else if (is_name(name, nl, ":path"))
                        copy_bytes(in->path, sizeof(in->path), value, vl);
                else if (is_name(name, nl, ":authority"))
                        copy_bytes(in->authority, sizeof(in->authority), value, vl);
                else if (is_name(name, nl, ":scheme"))
                        copy_bytes(in->scheme, sizeof(in->scheme), value, vl);
                else if (is_name(name, nl, ":status"))
                        in->status = status_value(value, vl);
        } else if (is_name(name, nl, "host")) {
                copy_bytes(in->host, sizeof(in->host), value, vl);
        } else if (is_name(name, nl, "content-type")) {
                in->grpc = vl >= sizeof(grpc_ct) - 1 &&
                           strncasecmp((const char *)value, grpc_ct, sizeof(grpc_ct) - 1) == 0;
        } else if (is_name(name, nl, "grpc-status")) {
                in->grpc_status = parse_uint(value, vl, 9);
        } else if (is_name(name, nl, "grpc-message")) {
                in->has_grpc_message = true;
                copy_percent_decoded(in->grpc_message, sizeof(in->grpc_message), value, vl);
        }
}

/* --- streams --- */

/* Index of the first stream whose id is >= sid. */
static unsigned stream_lower_bound(const struct h2_conn *c, uint32_t sid)
{
        unsigned lo = 0, hi = c->n_streams;

        while (lo < hi) {
                unsigned mid = lo + (hi - lo) / 2;

                if (c->streams[mid]->x.stream_id < sid)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static struct h2_stream *stream_find(const struct h2_conn *c, uint32_t sid)
{
        unsigned i = stream_lower_bound(c, sid);

        return i < c->n_streams && c->streams[i]->x.stream_id == sid ? c->streams[i] : NULL;
}

static void stream_free(struct h2_stream *s)
{
        free(s->x.req_preview);
        free(s->x.resp_preview);
        free(s->x.req_headers.text);
        free(s->x.resp_headers.text);
        free(s);
}

/* A new stream in the table, or NULL (counted) when it is full or memory is short. */
static struct h2_stream *stream_new(struct h2_conn *c, uint32_t sid)
{
        struct h2_stream *s;
        unsigned i;

        if (c->n_streams >= H2_STREAMS_MAX) {
                c->errors++;
                return NULL;
        }
        s = calloc(1, sizeof(*s));
        if (s && c->preview > 0) {
                s->x.req_preview = malloc(c->preview);
                s->x.resp_preview = malloc(c->preview);
                if (!s->x.req_preview || !s->x.resp_preview) {
                        stream_free(s);
                        s = NULL;
                }
        }
        if (!s) {
                c->errors++;
                return NULL;
        }
        s->x.http_version = 2;
        s->x.stream_id = sid;
        s->x.grpc_status = -1;
        i = stream_lower_bound(c, sid);
        memmove(c->streams + i + 1, c->streams + i, (c->n_streams - i) * sizeof(c->streams[0]));
        c->streams[i] = s;
        c->n_streams++;
        return s;
}

/* The stream is done (error: NULL, or why it is incomplete): out of the table, emitted. */
static void stream_emit(struct h2_conn *c, struct h2_stream *s, const char *error)
{
        struct exchange *x = &s->x;
        unsigned i = stream_lower_bound(c, x->stream_id);

        if (i < c->n_streams && c->streams[i] == s) {
                memmove(c->streams + i, c->streams + i + 1,
                        (c->n_streams - i - 1) * sizeof(c->streams[0]));
                c->n_streams--;
        }
        if (error && !x->error)
                x->error = error;
        if (s->st[REQ] == ST_IDLE) {
                /* Only the response was seen: its timestamps stand in for the request's. */
                if (!x->error)
                        x->error = "request not captured";
                x->start_ns = x->req_end_ns = x->resp_start_ns;
        }
        if (x->grpc) {
                x->grpc_msgs[REQ] = s->grpc[REQ].msgs;
                x->grpc_msgs[RESP] = s->grpc[RESP].msgs;
        } else {
                x->grpc_status = -1;
                x->grpc_message[0] = '\0';
        }
        c->exchanges++;
        c->cb(x, c->userdata);
        stream_free(s);
}

static void emit_all(struct h2_conn *c, const char *why)
{
        while (c->n_streams > 0)
                stream_emit(c, c->streams[0], why);
}

/* The thread of the connection is lost: emit what is open, parse nothing more. */
static void fatal(struct h2_conn *c, const char *why)
{
        if (c->dead)
                return;
        c->dead = true;
        c->errors++;
        emit_all(c, why);
}

static void stream_end(struct h2_conn *c, struct h2_stream *s, int side)
{
        s->st[side] = ST_ENDED;
        if (side == REQ) {
                s->x.req_done = true;
                s->x.req_end_ns = c->ts;
        } else {
                s->x.resp_end_ns = c->ts;
        }
        if (s->st[REQ] == ST_ENDED && s->st[RESP] == ST_ENDED)
                stream_emit(c, s, NULL);
}

static void stream_data(struct h2_conn *c, struct h2_stream *s, int side, const uint8_t *d,
                        size_t n)
{
        struct exchange *x = &s->x;

        if (s->st[side] == ST_ENDED)
                return;
        if (side == REQ) {
                x->req_body += n;
                keep_preview(x->req_preview, &x->req_preview_len, c->preview, d, n);
                x->req_end_ns = c->ts;
        } else {
                x->resp_body += n;
                keep_preview(x->resp_preview, &x->resp_preview_len, c->preview, d, n);
                x->resp_end_ns = c->ts;
        }
        grpc_framing_feed(&s->grpc[side], d, n);
}

/* gRPC's :path is "/" service "/" method. */
static void grpc_path(struct exchange *x, const char *path)
{
        const char *svc = path + 1, *slash;

        if (path[0] != '/')
                return;
        slash = strchr(svc, '/');
        if (!slash || slash == svc || !slash[1])
                return;
        copy_bytes(x->grpc_service, sizeof(x->grpc_service), svc, (size_t)(slash - svc));
        copy_bytes(x->grpc_method, sizeof(x->grpc_method), slash + 1, strlen(slash + 1));
}

static void apply_request(struct h2_conn *c, struct h2_stream *s, const struct h2_block *b)
{
        struct exchange *x = &s->x;
        const struct h2_info *in = &b->dec->info;

        if (s->st[REQ] == ST_IDLE) {
                s->st[REQ] = ST_OPEN;
                copy_bytes(x->method, sizeof(x->method), in->method, sizeof(in->method));
                copy_bytes(x->target, sizeof(x->target), in->path, sizeof(in->path));
                copy_bytes(x->scheme, sizeof(x->scheme), in->scheme, sizeof(in->scheme));
                if (in->authority[0])
                        copy_bytes(x->authority, sizeof(x->authority), in->authority,
                                   sizeof(in->authority));
                else
                        copy_bytes(x->authority, sizeof(x->authority), in->host, sizeof(in->host));
                headers_append(&x->req_headers, &b->dec->h);
                x->start_ns = b->ts;
                x->req_end_ns = c->ts;
                x->grpc = in->grpc;
                if (x->grpc)
                        grpc_path(x, x->target);
        } else if (s->st[REQ] == ST_OPEN) {
                headers_append(&x->req_headers, &b->dec->h); /* trailers */
                x->req_end_ns = c->ts;
        }
}

/* false: an informational (1xx) response, skipped. */
static bool apply_response(struct h2_conn *c, struct h2_stream *s, const struct h2_block *b)
{
        struct exchange *x = &s->x;
        const struct h2_info *in = &b->dec->info;

        if (s->st[RESP] == ST_IDLE) {
                if (in->status >= 100 && in->status < 200)
                        return false;
                s->st[RESP] = ST_OPEN;
                x->status = in->status > 0 ? in->status : 0;
                headers_append(&x->resp_headers, &b->dec->h);
                x->resp_start_ns = b->ts;
                x->resp_end_ns = c->ts;
                x->resp_started = true;
                if (s->st[REQ] == ST_IDLE && in->grpc)
                        x->grpc = true; /* the request was not seen: the response tells */
        } else if (s->st[RESP] == ST_OPEN) {
                headers_append(&x->resp_headers, &b->dec->h); /* trailers */
                x->resp_end_ns = c->ts;
        } else {
                return true;
        }
        /* In trailers, or in the headers of a trailers-only response. */
        if (in->grpc_status >= 0)
                x->grpc_status = in->grpc_status;
        if (in->has_grpc_message)
                copy_bytes(x->grpc_message, sizeof(x->grpc_message), in->grpc_message,
                           sizeof(in->grpc_message));
        return true;
}

/* A header block was decoded completely: it belongs to its stream now. */
static void block_apply(struct h2_conn *c, struct h2_dir *d)
{
        const struct h2_block *b = &d->block;
        int side = d->request ? REQ : RESP;
        struct h2_stream *s;

        /* Pushed streams (PUSH_PROMISE, even ids) are not tracked; their blocks went through
         * the inflater, which is all they are needed for. Stream 0 was counted already. */
        if (b->type == F_PUSH_PROMISE || b->sid == 0 || !(b->sid & 1))
                return;
        s = stream_find(c, b->sid);
        if (!s) {
                if (b->sid <= c->max_client_sid)
                        return; /* emitted already, or not tracked */
                if (d->request)
                        c->max_client_sid = b->sid;
                s = stream_new(c, b->sid);
                if (!s)
                        return;
        } else if (d->request && b->sid > c->max_client_sid) {
                c->max_client_sid = b->sid; /* the response was fed first */
        }
        if (b->too_large && !s->x.error)
                s->x.error = "header block too large";
        if (d->request)
                apply_request(c, s, b);
        else if (!apply_response(c, s, b))
                return;
        if (c->goaway && b->sid > c->goaway_last) {
                stream_emit(c, s, "goaway");
                return;
        }
        if (b->end_stream)
                stream_end(c, s, side);
}

/* --- frames --- */

static void block_start(struct h2_conn *c, struct h2_dir *d, uint8_t type, uint32_t sid,
                        bool end_stream)
{
        struct h2_block *b = &d->block;

        b->active = true;
        b->type = type;
        b->sid = sid;
        b->end_stream = end_stream;
        b->too_large = false;
        b->ts = d->frame_ts;
        b->bytes = 0;
        free(b->dec);
        b->dec = malloc(sizeof(*b->dec));
        if (!b->dec) {
                c->errors++;
                return;
        }
        memset(&b->dec->info, 0, sizeof(b->dec->info));
        b->dec->info.status = -1;
        b->dec->info.grpc_status = -1;
        b->dec->h.n = 0;
        b->dec->h.len = 0;
        b->dec->h.truncated = false;
}

static void block_done(struct h2_block *b)
{
        b->active = false;
        free(b->dec);
        b->dec = NULL;
}

/* Header block bytes, straight into the inflater: nothing of the block is buffered here. */
static void block_feed(struct h2_conn *c, struct h2_dir *d, const uint8_t *p, size_t n, bool final)
{
        static const uint8_t none[1];
        struct h2_block *b = &d->block;

        b->bytes += n;
        if (b->bytes > H2_HEADER_BLOCK_MAX && !b->too_large) {
                b->too_large = true; /* still decoded: the dynamic table needs it */
                c->errors++;
        }
        if (n == 0)
                p = none;
        for (;;) {
                nghttp2_nv nv;
                int flags = 0;
                ssize_t r = nghttp2_hd_inflate_hd2(d->hd, &nv, &flags, p, n, final);

                if (r < 0 || (size_t)r > n) {
                        fatal(c, "HPACK decoding failed");
                        return;
                }
                p += r;
                n -= (size_t)r;
                if ((flags & NGHTTP2_HD_INFLATE_EMIT) && b->dec) {
                        info_field(&b->dec->info, nv.name, nv.namelen, nv.value, nv.valuelen);
                        hlist_add(&b->dec->h, nv.name, nv.namelen, nv.value, nv.valuelen);
                }
                if (flags & NGHTTP2_HD_INFLATE_FINAL) {
                        nghttp2_hd_inflate_end_headers(d->hd);
                        break;
                }
                if (!(flags & NGHTTP2_HD_INFLATE_EMIT) && n == 0) {
                        if (final) /* cannot happen: a final call that ends no block */
                                fatal(c, "HPACK decoding failed");
                        break;
                }
        }
}

static void frame_skip_rest(struct h2_dir *d)
{
        d->bad = true;
        d->pre_need = d->pre_got;
        d->body_left = 0;
}

/* The prefix of the frame is in: where its body is. */
static void prefix_done(struct h2_conn *c, struct h2_dir *d)
{
        uint32_t pad, room;

        if (d->type != F_DATA && d->type != F_HEADERS && d->type != F_PUSH_PROMISE)
                return;
        pad = d->flags & FL_PADDED ? d->pre[0] : 0;
        room = d->len - d->pre_need;
        if (pad > room) {
                if (d->type != F_DATA) {
                        fatal(c, "header block padding longer than its frame");
                        return;
                }
                c->errors++;
                frame_skip_rest(d);
                return;
        }
        d->body_left = room - pad;
}

static void frame_begin(struct h2_conn *c, struct h2_dir *d)
{
        bool sid_zero;

        d->len = (uint32_t)d->head[0] << 16 | (uint32_t)d->head[1] << 8 | d->head[2];
        d->type = d->head[3];
        d->flags = d->head[4];
        d->sid = be32(d->head + 5) & 0x7fffffffu;
        d->got = 0;
        d->bad = false;
        d->pre_need = d->pre_got = 0;
        d->body_left = 0;
        sid_zero = d->sid == 0;

        if (d->first_frame) {
                d->first_frame = false;
                if (d->type != F_SETTINGS || (d->flags & FL_ACK) || !sid_zero) {
                        fatal(c, d->request ? "no SETTINGS after the client preface"
                                            : "no SETTINGS opening the server side");
                        return;
                }
        }
        if (d->block.active && d->type != F_CONTINUATION) {
                fatal(c, "header block interrupted by another frame");
                return;
        }
        switch (d->type) {
        case F_DATA:
                d->pre_need = d->flags & FL_PADDED ? 1 : 0;
                if (sid_zero || d->pre_need > d->len) {
                        c->errors++;
                        frame_skip_rest(d);
                        return;
                }
                break;
        case F_HEADERS:
        case F_PUSH_PROMISE:
                d->pre_need = d->flags & FL_PADDED ? 1 : 0;
                if (d->type == F_PUSH_PROMISE)
                        d->pre_need += 4; /* promised stream id */
                else if (d->flags & FL_PRIORITY)
                        d->pre_need += 5; /* stream dependency, weight */
                if (d->pre_need > d->len) {
                        fatal(c, "header block frame shorter than its prefix");
                        return;
                }
                if (sid_zero)
                        c->errors++; /* decoded all the same: the dynamic table needs it */
                block_start(c, d, d->type, d->sid,
                            d->type == F_HEADERS && (d->flags & FL_END_STREAM));
                break;
        case F_CONTINUATION:
                if (!d->block.active || d->sid != d->block.sid) {
                        fatal(c, "CONTINUATION without a header block");
                        return;
                }
                d->body_left = d->len;
                return;
        case F_RST_STREAM:
        case F_WINDOW_UPDATE:
                if (d->len != 4 || (d->type == F_RST_STREAM && sid_zero)) {
                        c->errors++;
                        frame_skip_rest(d);
                        return;
                }
                d->pre_need = 4;
                return;
        case F_PRIORITY:
                if (d->len != 5 || sid_zero) {
                        c->errors++;
                        frame_skip_rest(d);
                }
                return;
        case F_SETTINGS:
                if (!sid_zero || d->len % 6 != 0 || ((d->flags & FL_ACK) && d->len != 0)) {
                        c->errors++;
                        frame_skip_rest(d);
                }
                return; /* nothing in them matters here (see H2_HPACK_TABLE_MAX) */
        case F_PING:
                if (!sid_zero || d->len != 8) {
                        c->errors++;
                        frame_skip_rest(d);
                }
                return;
        case F_GOAWAY:
                if (!sid_zero || d->len < 8) {
                        c->errors++;
                        frame_skip_rest(d);
                        return;
                }
                d->pre_need = 8;
                return;
        default:
                return; /* extension frames: skipped */
        }
        if (d->pre_need == 0)
                prefix_done(c, d);
}

/* n bytes of the payload, n <= what is left of it. */
static void frame_payload(struct h2_conn *c, struct h2_dir *d, const uint8_t *p, size_t n)
{
        while (n > 0 && !c->dead) {
                size_t k;

                if (d->pre_got < d->pre_need) {
                        k = d->pre_need - d->pre_got < n ? d->pre_need - d->pre_got : n;
                        memcpy(d->pre + d->pre_got, p, k);
                        d->pre_got += (uint32_t)k;
                        if (d->pre_got == d->pre_need)
                                prefix_done(c, d);
                } else if (d->body_left > 0) {
                        k = d->body_left < n ? d->body_left : n;
                        if (d->type == F_DATA) {
                                struct h2_stream *s = stream_find(c, d->sid);

                                if (s)
                                        stream_data(c, s, d->request ? REQ : RESP, p, k);
                        } else {
                                block_feed(c, d, p, k, false);
                        }
                        d->body_left -= (uint32_t)k;
                } else {
                        return; /* padding, or what is not read of a frame */
                }
                p += k;
                n -= k;
        }
}

static void goaway(struct h2_conn *c, uint32_t last)
{
        unsigned i;

        if (!c->goaway || last < c->goaway_last)
                c->goaway_last = last;
        c->goaway = true;
        i = stream_lower_bound(c, c->goaway_last + 1u);
        while (i < c->n_streams)
                stream_emit(c, c->streams[i], "goaway");
}

static void frame_end(struct h2_conn *c, struct h2_dir *d)
{
        struct h2_stream *s;

        d->state = RD_HEAD;
        d->head_len = 0;
        if (d->bad)
                return;
        switch (d->type) {
        case F_DATA:
                s = stream_find(c, d->sid);
                if (s && (d->flags & FL_END_STREAM))
                        stream_end(c, s, d->request ? REQ : RESP);
                break;
        case F_HEADERS:
        case F_PUSH_PROMISE:
        case F_CONTINUATION:
                if (d->flags & FL_END_HEADERS) {
                        block_feed(c, d, NULL, 0, true);
                        if (c->dead)
                                return;
                        d->block.active = false;
                        if (d->block.dec)
                                block_apply(c, d);
                        block_done(&d->block);
                }
                break;
        case F_RST_STREAM:
                s = stream_find(c, d->sid);
                if (s) {
                        snprintf(s->why, sizeof(s->why), "reset (code %u)", be32(d->pre));
                        stream_emit(c, s, s->why);
                }
                break;
        case F_GOAWAY:
                /* The client's GOAWAY is about pushed streams, which are not tracked. */
                if (!d->request)
                        goaway(c, be32(d->pre) & 0x7fffffffu);
                break;
        default:
                break;
        }
}

static void dir_feed(struct h2_conn *c, struct h2_dir *d, const uint8_t *p, size_t n)
{
        while (n > 0 && !c->dead) {
                size_t k;

                switch (d->state) {
                case RD_PREFACE:
                        k = H2_PREFACE_LEN - d->preface_got < n ? H2_PREFACE_LEN - d->preface_got
                                                                : n;
                        if (memcmp(p, &H2_PREFACE[d->preface_got], k) != 0) {
                                fatal(c, "no HTTP/2 client preface");
                                return;
                        }
                        d->preface_got += k;
                        if (d->preface_got == H2_PREFACE_LEN)
                                d->state = RD_HEAD;
                        break;
                case RD_HEAD:
                        if (d->head_len == 0)
                                d->frame_ts = c->ts;
                        k = sizeof(d->head) - d->head_len < n ? sizeof(d->head) - d->head_len : n;
                        memcpy(d->head + d->head_len, p, k);
                        d->head_len += k;
                        if (d->head_len == sizeof(d->head)) {
                                frame_begin(c, d);
                                if (c->dead)
                                        return;
                                if (d->len == 0)
                                        frame_end(c, d);
                                else
                                        d->state = RD_PAYLOAD;
                        }
                        break;
                case RD_PAYLOAD:
                        k = d->len - d->got < n ? d->len - d->got : n;
                        frame_payload(c, d, p, k);
                        d->got += (uint32_t)k;
                        if (c->dead)
                                return;
                        if (d->got == d->len)
                                frame_end(c, d);
                        break;
                default:
                        return;
                }
                p += k;
                n -= k;
        }
}

/* --- the connection --- */

/*
 * An inflater that accepts dynamic tables up to H2_HPACK_TABLE_MAX, starting at the 4096
 * bytes every encoder starts with. Raising the limit puts the inflater in a state where the
 * next block must begin with a table size update (nghttp2 follows RFC 7541 4.2 for a lowered
 * SETTINGS value); the first block it is given is that update, back to 4096, so that
 * encoders that never send one decode, and those told to use more may say so.
 */
static nghttp2_hd_inflater *inflater_new(void)
{
        static const uint8_t back_to_4096[] = { 0x3f, 0xe1, 0x1f };
        nghttp2_hd_inflater *hd = NULL;
        nghttp2_nv nv;
        int flags = 0;
        ssize_t r;

        if (nghttp2_hd_inflate_new(&hd) != 0)
                return NULL;
        if (nghttp2_hd_inflate_change_table_size(hd, H2_HPACK_TABLE_MAX) != 0)
                goto fail;
        r = nghttp2_hd_inflate_hd2(hd, &nv, &flags, back_to_4096, sizeof(back_to_4096), 1);
        if (r != (ssize_t)sizeof(back_to_4096) || !(flags & NGHTTP2_HD_INFLATE_FINAL))
                goto fail;
        nghttp2_hd_inflate_end_headers(hd);
        return hd;
fail:
        nghttp2_hd_inflate_del(hd);
        return NULL;
}

struct h2_conn *h2_conn_new(size_t preview, exchange_cb cb, void *userdata)
{
        struct h2_conn *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        c->cb = cb;
        c->userdata = userdata;
        c->preview = preview < EXCHANGE_PREVIEW_MAX ? preview : EXCHANGE_PREVIEW_MAX;
        for (int i = 0; i < 2; i++) {
                struct h2_dir *d = &c->dir[i];

                d->request = i == REQ;
                d->state = d->request ? RD_PREFACE : RD_HEAD;
                d->first_frame = true;
                d->hd = inflater_new();
                if (!d->hd)
                        return h2_conn_free(c);
        }
        return c;
}

void h2_conn_data(struct h2_conn *c, bool requests, const uint8_t *data, size_t n, uint64_t ts_ns)
{
        if (c->dead)
                return;
        c->ts = ts_ns;
        dir_feed(c, &c->dir[requests ? REQ : RESP], data, n);
}

void h2_conn_gap(struct h2_conn *c, bool requests)
{
        (void)requests; /* either way the connection cannot be followed further */
        fatal(c, "bytes missing from the stream");
}

void h2_conn_close(struct h2_conn *c)
{
        if (c->dead)
                return;
        c->dead = true;
        emit_all(c, "connection closed");
}

void h2_conn_counters(const struct h2_conn *c, uint64_t *ret_exchanges, uint64_t *ret_errors)
{
        *ret_exchanges = c->exchanges;
        *ret_errors = c->errors;
}

struct h2_conn *h2_conn_free(struct h2_conn *c)
{
        if (!c)
                return NULL;
        h2_conn_close(c);
        for (int i = 0; i < 2; i++) {
                if (c->dir[i].hd)
                        nghttp2_hd_inflate_del(c->dir[i].hd);
                block_done(&c->dir[i].block);
        }
        free(c);
        return NULL;
}
