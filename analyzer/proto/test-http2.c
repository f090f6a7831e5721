/*
 * Unit tests of HTTP/2 and gRPC exchanges (http2.c) on conversations built here: header blocks
 * encoded with libnghttp2's HPACK deflater (one per direction, as real peers keep them), frame
 * headers written by hand. A conversation is a timeline of frames, each sent by the client or
 * the server; it is fed frame by frame (timestamp = the frame's number in the timeline), one
 * byte at a time with the same timestamps, in the longest runs of one direction, and in those
 * runs cut at every byte of either direction. All must give the same exchanges in the same
 * order, and the first two the same timestamps.
 */
#undef NDEBUG
#include <assert.h>
#include <nghttp2/nghttp2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http2.h"

enum { C = 0, S = 1 }; /* client, server */

enum {
        DATA = 0,
        HEADERS = 1,
        PRIORITY = 2,
        RST_STREAM = 3,
        SETTINGS = 4,
        PUSH_PROMISE = 5,
        PING = 6,
        GOAWAY = 7,
        WINDOW_UPDATE = 8,
        CONTINUATION = 9,
};
#define END_STREAM 0x01
#define ACK 0x01
#define END_HEADERS 0x04
#define PADDED 0x08
#define PRIO 0x20

#define MAX_EVENTS 1024

/* --- building conversations --- */

struct event {
        int dir;
        size_t off, len;
        bool gap; /* bytes lost in dir before what follows */
};

struct conv {
        uint8_t *s[2];
        size_t len[2], cap[2];
        struct event ev[MAX_EVENTS];
        unsigned n_ev;
        nghttp2_hd_deflater *def[2];
        bool dump;     /* print the headers of each exchange */
        bool no_split; /* too long to cut at every byte */
        bool close;    /* h2_conn_close before freeing */
};

static void put(struct conv *cv, int dir, const void *p, size_t n)
{
        if (cv->len[dir] + n > cv->cap[dir]) {
                cv->cap[dir] = (cv->len[dir] + n) * 2 + 1024;
                cv->s[dir] = realloc(cv->s[dir], cv->cap[dir]);
                assert(cv->s[dir]);
        }
        memcpy(cv->s[dir] + cv->len[dir], p, n);
        cv->len[dir] += n;
}

/* Starts a new event (a call to h2_conn_data in the timeline); its 1-based number. */
static unsigned event(struct conv *cv, int dir)
{
        assert(cv->n_ev < MAX_EVENTS);
        cv->ev[cv->n_ev] = (struct event){ .dir = dir, .off = cv->len[dir] };
        return ++cv->n_ev;
}

static void event_end(struct conv *cv)
{
        struct event *e = &cv->ev[cv->n_ev - 1];

        e->len = cv->len[e->dir] - e->off;
}

static void frame_raw(struct conv *cv, int dir, uint8_t type, uint8_t flags, uint32_t sid,
                      const void *payload, size_t len)
{
        uint8_t h[9] = { (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len, type, flags,
                         (uint8_t)(sid >> 24), (uint8_t)(sid >> 16), (uint8_t)(sid >> 8),
                         (uint8_t)sid };

        put(cv, dir, h, sizeof(h));
        put(cv, dir, payload, len);
}

/* One frame as one event; its number. */
static unsigned frame(struct conv *cv, int dir, uint8_t type, uint8_t flags, uint32_t sid,
                      const void *payload, size_t len)
{
        unsigned e = event(cv, dir);

        frame_raw(cv, dir, type, flags, sid, payload, len);
        event_end(cv);
        return e;
}

static unsigned gap(struct conv *cv, int dir)
{
        unsigned e = event(cv, dir);

        cv->ev[e - 1].gap = true;
        event_end(cv);
        return e;
}

/* A header block of name, value, ..., NULL, encoded with the direction's deflater. */
static size_t hpack(struct conv *cv, int dir, const char *const *nv, uint8_t *out, size_t cap)
{
        nghttp2_nv a[64];
        size_t n = 0;
        ssize_t r;

        for (; nv[0]; nv += 2, n++) {
                assert(n < 64);
                a[n] = (nghttp2_nv){ (uint8_t *)nv[0], (uint8_t *)nv[1], strlen(nv[0]),
                                     strlen(nv[1]), NGHTTP2_NV_FLAG_NONE };
        }
        r = nghttp2_hd_deflate_hd(cv->def[dir], out, cap, a, n);
        assert(r >= 0);
        return (size_t)r;
}

static unsigned headers(struct conv *cv, int dir, uint32_t sid, uint8_t flags,
                        const char *const *nv)
{
        static uint8_t b[1 << 17];
        size_t n = hpack(cv, dir, nv, b, sizeof(b));

        return frame(cv, dir, HEADERS, flags | END_HEADERS, sid, b, n);
}

static unsigned data(struct conv *cv, int dir, uint32_t sid, uint8_t flags, const void *p,
                     size_t n)
{
        return frame(cv, dir, DATA, flags, sid, p, n);
}

static unsigned sdata(struct conv *cv, int dir, uint32_t sid, uint8_t flags, const char *s)
{
        return data(cv, dir, sid, flags, s, strlen(s));
}

static unsigned rst(struct conv *cv, int dir, uint32_t sid, uint32_t code)
{
        uint8_t p[4] = { (uint8_t)(code >> 24), (uint8_t)(code >> 16), (uint8_t)(code >> 8),
                         (uint8_t)code };

        return frame(cv, dir, RST_STREAM, 0, sid, p, 4);
}

/* A gRPC message: compressed flag 0, 4-byte length, body. */
static size_t grpc_msg(uint8_t *out, const char *body)
{
        size_t n = strlen(body);

        out[0] = 0;
        out[1] = (uint8_t)(n >> 24);
        out[2] = (uint8_t)(n >> 16);
        out[3] = (uint8_t)(n >> 8);
        out[4] = (uint8_t)n;
        memcpy(out + 5, body, n);
        return n + 5;
}

/* Event 1: the client preface and SETTINGS; event 2: the server's SETTINGS. */
static struct conv *conv_new(void)
{
        static const uint8_t client_settings[] = { 0, 3, 0, 0, 0, 100, 0, 4, 0, 0x60, 0, 0 };
        static const uint8_t server_settings[] = { 0, 5, 0, 0, 0x40, 0 };
        struct conv *cv = calloc(1, sizeof(*cv));

        assert(cv);
        assert(nghttp2_hd_deflate_new(&cv->def[C], 4096) == 0);
        assert(nghttp2_hd_deflate_new(&cv->def[S], 4096) == 0);
        event(cv, C);
        put(cv, C, H2_PREFACE, H2_PREFACE_LEN);
        frame_raw(cv, C, SETTINGS, 0, 0, client_settings, sizeof(client_settings));
        event_end(cv);
        frame(cv, S, SETTINGS, 0, 0, server_settings, sizeof(server_settings));
        return cv;
}

static void conv_free(struct conv *cv)
{
        for (int d = 0; d < 2; d++)
                if (cv->def[d]) /* recorded conversations have none */
                        nghttp2_hd_deflate_del(cv->def[d]);
        free(cv->s[C]);
        free(cv->s[S]);
        free(cv);
}

/* --- what comes out --- */

#define MAX_RECS 256

struct rec {
        char line[4096];
        char ts[96];
};

struct out {
        struct rec r[MAX_RECS];
        unsigned n, overflow;
        bool dump;
        size_t preview;
        uint64_t exchanges, errors;
};

__attribute__((format(printf, 3, 4))) static void app(char *buf, size_t *len, const char *fmt,
                                                       ...)
{
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(buf + *len, 4096 - *len, fmt, ap);
        va_end(ap);
        assert(n >= 0 && (size_t)n < 4096 - *len);
        *len += (size_t)n;
}

static void app_preview(char *buf, size_t *len, const uint8_t *p, size_t n)
{
        for (size_t i = 0; i < n; i++)
                app(buf, len, "%c", p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '.');
}

static void app_headers(char *buf, size_t *len, const char *tag, const struct exchange_headers *h)
{
        app(buf, len, " %s{", tag);
        for (unsigned i = 0; i < h->n; i++) {
                const char *name = h->text + h->name[i], *value = h->text + h->value[i];

                assert(h->name[i] < h->len && h->value[i] < h->len);
                if (strlen(value) > 40)
                        app(buf, len, "%s%s=<%zu>", i ? " " : "", name, strlen(value));
                else
                        app(buf, len, "%s%s=%s", i ? " " : "", name, value);
        }
        app(buf, len, "}%s", h->truncated ? "+" : "");
}

static void on_exchange(const struct exchange *x, void *ud)
{
        struct out *o = ud;
        struct rec *r;
        size_t len = 0;

        assert(x->http_version == 2 && x->version_minor == 0);
        assert(x->req_preview_len == (x->req_body < o->preview ? x->req_body : o->preview));
        assert(x->resp_preview_len == (x->resp_body < o->preview ? x->resp_body : o->preview));
        if (o->n >= MAX_RECS) {
                o->overflow++;
                return;
        }
        r = &o->r[o->n++];
        if (!x->error) {
                assert(x->req_done && x->resp_started);
                assert(x->start_ns <= x->req_end_ns && x->start_ns <= x->resp_start_ns);
                assert(x->resp_start_ns <= x->resp_end_ns);
        }
        app(r->line, &len, "%u %s %s %s %s -> %d req=%llu resp=%llu pv=[", x->stream_id,
            x->method, x->scheme, x->authority, x->target, x->status,
            (unsigned long long)x->req_body, (unsigned long long)x->resp_body);
        app_preview(r->line, &len, x->req_preview, x->req_preview_len);
        app(r->line, &len, "|");
        app_preview(r->line, &len, x->resp_preview, x->resp_preview_len);
        app(r->line, &len, "]");
        if (x->grpc)
                app(r->line, &len, " grpc=%s/%s st=%d msg=[%s] msgs=%u/%u", x->grpc_service,
                    x->grpc_method, x->grpc_status, x->grpc_message, x->grpc_msgs[0],
                    x->grpc_msgs[1]);
        else
                assert(x->grpc_status == -1 && !x->grpc_msgs[0] && !x->grpc_msgs[1]);
        app(r->line, &len, " err=%s", x->error ? x->error : "-");
        if (o->dump) {
                app_headers(r->line, &len, "rq", &x->req_headers);
                app_headers(r->line, &len, "rs", &x->resp_headers);
        }
        snprintf(r->ts, sizeof(r->ts), " t=%llu/%llu/%llu/%llu",
                 (unsigned long long)x->start_ns, (unsigned long long)x->req_end_ns,
                 (unsigned long long)x->resp_start_ns, (unsigned long long)x->resp_end_ns);
}

static char *render(const struct out *o, bool with_ts)
{
        size_t cap = 64 + (size_t)o->n * (sizeof(o->r[0].line) + sizeof(o->r[0].ts) + 1);
        char *s = malloc(cap), *p = s;

        assert(s && o->overflow == 0);
        for (unsigned i = 0; i < o->n; i++)
                p += sprintf(p, "%s%s\n", o->r[i].line, with_ts ? o->r[i].ts : "");
        sprintf(p, "exchanges=%llu errors=%llu\n", (unsigned long long)o->exchanges,
                (unsigned long long)o->errors);
        return s;
}

/* --- feeding --- */

enum mode {
        EVENTS,   /* each event one call, timestamp its number */
        BYTEWISE, /* each byte one call, timestamp its event's number */
        RUNS,     /* consecutive events of one direction in one call */
};

static void feed(struct h2_conn *h, const struct conv *cv, int dir, size_t off, size_t len,
                 uint64_t ts, bool bytewise)
{
        if (bytewise) {
                for (size_t i = 0; i < len; i++)
                        h2_conn_data(h, dir == C, cv->s[dir] + off + i, 1, ts);
        } else {
                h2_conn_data(h, dir == C, cv->s[dir] + off, len, ts);
        }
}

/* RUNS with cut_dir >= 0: the run of that direction holding byte `cut` is cut before it. */
static void run(const struct conv *cv, enum mode mode, int cut_dir, size_t cut, struct out *o)
{
        struct h2_conn *h;

        memset(o, 0, sizeof(*o));
        o->dump = cv->dump;
        o->preview = 8;
        h = h2_conn_new(o->preview, on_exchange, o);
        assert(h);
        for (unsigned i = 0; i < cv->n_ev;) {
                const struct event *e = &cv->ev[i];
                unsigned j = i + 1;
                size_t end;

                if (e->gap) {
                        h2_conn_gap(h, e->dir == C);
                        i++;
                        continue;
                }
                if (mode != RUNS) {
                        feed(h, cv, e->dir, e->off, e->len, i + 1, mode == BYTEWISE);
                        i++;
                        continue;
                }
                while (j < cv->n_ev && cv->ev[j].dir == e->dir && !cv->ev[j].gap)
                        j++;
                end = cv->ev[j - 1].off + cv->ev[j - 1].len;
                if (cut_dir == e->dir && cut > e->off && cut < end) {
                        feed(h, cv, e->dir, e->off, cut - e->off, i + 1, false);
                        feed(h, cv, e->dir, cut, end - cut, i + 1, false);
                } else {
                        feed(h, cv, e->dir, e->off, end - e->off, i + 1, false);
                }
                i = j;
        }
        if (cv->close)
                h2_conn_close(h);
        h2_conn_counters(h, &o->exchanges, &o->errors);
        h2_conn_free(h);
        /* Freeing after close emits nothing more. */
        assert(o->n <= o->exchanges);
}

static void same(const char *what, const char *got, const char *want)
{
        if (strcmp(got, want) != 0) {
                fprintf(stderr, "%s:\ngot:\n%s\nwant:\n%s\n", what, got, want);
                abort();
        }
}

/* The exchanges of the conversation, with timestamps, must be want, fed in every way. */
static void check(struct conv *cv, const char *want)
{
        static struct out o;
        char *events, *plain, *s;

        run(cv, EVENTS, -1, 0, &o);
        events = render(&o, true);
        plain = render(&o, false);
        same("frame by frame", events, want);
        run(cv, BYTEWISE, -1, 0, &o);
        s = render(&o, true);
        same("byte by byte", s, want);
        free(s);
        run(cv, RUNS, -1, 0, &o);
        s = render(&o, false);
        same("runs", s, plain);
        free(s);
        for (int dir = 0; dir < 2 && !cv->no_split; dir++) {
                for (size_t cut = 1; cut < cv->len[dir]; cut++) {
                        run(cv, RUNS, dir, cut, &o);
                        s = render(&o, false);
                        if (strcmp(s, plain) != 0) {
                                fprintf(stderr, "%s cut at %zu:\n", dir == C ? "client" : "server",
                                        cut);
                                same("split", s, plain);
                        }
                        free(s);
                }
        }
        free(events);
        free(plain);
        conv_free(cv);
}

/* --- the conversations --- */

#define NV(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* (1) A GET, its 200 response with a body in two DATA frames. */
static void test_get(void)
{
        struct conv *cv = conv_new();

        cv->dump = true;
        headers(cv, C, 1, END_STREAM,
                NV(":method", "GET", ":scheme", "https", ":authority", "example.test", ":path",
                   "/index.html", "user-agent", "test/1", "accept", "*/*"));         /* 3 */
        headers(cv, S, 1, 0,
                NV(":status", "200", "content-type", "text/plain", "content-length", "11")); /* 4 */
        sdata(cv, S, 1, 0, "hello ");                                                        /* 5 */
        sdata(cv, S, 1, END_STREAM, "world");                                                /* 6 */
        check(cv, "1 GET https example.test /index.html -> 200 req=0 resp=11 pv=[|hello wo] err=-"
                  " rq{:method=GET :scheme=https :authority=example.test :path=/index.html"
                  " user-agent=test/1 accept=*/*}"
                  " rs{:status=200 content-type=text/plain content-length=11} t=3/3/4/6\n"
                  "exchanges=1 errors=0\n");
}

/* (2) Three concurrent streams, frames interleaved, responses ending in another order. */
static void test_concurrent(void)
{
        struct conv *cv = conv_new();

        headers(cv, C, 1, END_STREAM,
                NV(":method", "GET", ":scheme", "https", ":authority", "a.test", ":path", "/a",
                   "accept", "text/html"));                                               /* 3 */
        headers(cv, C, 3, 0,
                NV(":method", "POST", ":scheme", "https", ":authority", "a.test", ":path", "/b",
                   "accept", "text/html", "content-type", "text/plain"));                 /* 4 */
        headers(cv, C, 5, END_STREAM,
                NV(":method", "GET", ":scheme", "https", ":authority", "a.test", ":path", "/c",
                   "accept", "text/html"));                                               /* 5 */
        sdata(cv, C, 3, 0, "ab");                                                         /* 6 */
        headers(cv, S, 3, 0, NV(":status", "201", "server", "t"));                        /* 7 */
        sdata(cv, C, 3, END_STREAM, "c");                                                 /* 8 */
        headers(cv, S, 5, 0, NV(":status", "404", "server", "t"));                        /* 9 */
        sdata(cv, S, 3, 0, "x");                                                          /* 10 */
        headers(cv, S, 1, 0, NV(":status", "200", "server", "t"));                        /* 11 */
        sdata(cv, S, 5, END_STREAM, "five");                                              /* 12 */
        sdata(cv, S, 1, 0, "one-");                                                       /* 13 */
        sdata(cv, S, 1, END_STREAM, "1");                                                 /* 14 */
        sdata(cv, S, 3, END_STREAM, "yz");                                                /* 15 */
        check(cv, "5 GET https a.test /c -> 404 req=0 resp=4 pv=[|five] err=- t=5/5/9/12\n"
                  "1 GET https a.test /a -> 200 req=0 resp=5 pv=[|one-1] err=- t=3/3/11/14\n"
                  "3 POST https a.test /b -> 201 req=3 resp=3 pv=[abc|xyz] err=- t=4/8/7/15\n"
                  "exchanges=3 errors=0\n");
}

/* (3) A POST with a body; the response ends with trailers. */
static void test_post_trailers(void)
{
        struct conv *cv = conv_new();

        cv->dump = true;
        headers(cv, C, 1, 0,
                NV(":method", "POST", ":scheme", "https", ":authority", "api.test", ":path",
                   "/v1/items", "content-type", "application/json", "content-length", "15"));
        sdata(cv, C, 1, 0, "{\"k\":\"v\",");
        sdata(cv, C, 1, END_STREAM, "\"n\":1}");
        headers(cv, S, 1, 0, NV(":status", "201", "content-type", "text/plain"));
        sdata(cv, S, 1, 0, "created");
        headers(cv, S, 1, END_STREAM, NV("x-checksum", "abc", "x-took", "5ms"));
        check(cv, "1 POST https api.test /v1/items -> 201 req=15 resp=7 pv=[{\"k\":\"v\"|created]"
                  " err=- rq{:method=POST :scheme=https :authority=api.test :path=/v1/items"
                  " content-type=application/json content-length=15}"
                  " rs{:status=201 content-type=text/plain x-checksum=abc x-took=5ms}"
                  " t=3/5/6/8\n"
                  "exchanges=1 errors=0\n");
}

/* (4) HEADERS + CONTINUATION (one of them empty); padded DATA; padded HEADERS with PRIORITY. */
static void test_continuation_padding(void)
{
        struct conv *cv = conv_new();
        uint8_t b[4096], p[4096];
        size_t n;

        /* Stream 1: the request's block in three pieces, END_STREAM on the HEADERS frame. */
        n = hpack(cv, C, NV(":method", "GET", ":scheme", "http", ":authority", "cont.test",
                            ":path", "/split", "x-long", "a fairly long header value here"),
                  b, sizeof(b));
        frame(cv, C, HEADERS, END_STREAM, 1, b, 5);                     /* 3 */
        frame(cv, C, CONTINUATION, 0, 1, b + 5, 0);                     /* 4 */
        frame(cv, C, CONTINUATION, END_HEADERS, 1, b + 5, n - 5);       /* 5 */
        /* Stream 3: padded HEADERS with PRIORITY, then padded DATA, one with a pad length 0. */
        n = hpack(cv, C, NV(":method", "PUT", ":scheme", "http", ":authority", "cont.test",
                            ":path", "/pad"),
                  b, sizeof(b));
        p[0] = 7;                                       /* pad length */
        memcpy(p + 1, "\x80\x00\x00\x01\x10", 5);       /* exclusive, depends on 1, weight 17 */
        memcpy(p + 6, b, n);
        memset(p + 6 + n, 0, 7);
        frame(cv, C, HEADERS, END_HEADERS | PADDED | PRIO, 3, p, 6 + n + 7); /* 6 */
        memcpy(p, "\x03" "body" "\0\0\0", 8);
        frame(cv, C, DATA, PADDED, 3, p, 8);                             /* 7 */
        memcpy(p, "\x00" "!", 2);
        frame(cv, C, DATA, PADDED | END_STREAM, 3, p, 2);                /* 8 */
        /* Responses: stream 3's in HEADERS + CONTINUATION; stream 1's DATA padded. */
        n = hpack(cv, S, NV(":status", "200", "x-one", "1", "x-two", "2"), b, sizeof(b));
        frame(cv, S, HEADERS, END_STREAM, 3, b, 1);                      /* 9 */
        frame(cv, S, CONTINUATION, END_HEADERS, 3, b + 1, n - 1);        /* 10 */
        headers(cv, S, 1, 0, NV(":status", "200"));                      /* 11 */
        p[0] = 200;
        memcpy(p + 1, "padded!", 7);
        memset(p + 8, 0, 200);
        frame(cv, S, DATA, PADDED | END_STREAM, 1, p, 208);              /* 12 */
        cv->dump = true;
        check(cv, "3 PUT http cont.test /pad -> 200 req=5 resp=0 pv=[body!|] err="
                  "- rq{:method=PUT :scheme=http :authority=cont.test :path=/pad}"
                  " rs{:status=200 x-one=1 x-two=2} t=6/8/9/10\n"
                  "1 GET http cont.test /split -> 200 req=0 resp=7 pv=[|padded!] err=-"
                  " rq{:method=GET :scheme=http :authority=cont.test :path=/split"
                  " x-long=a fairly long header value here} rs{:status=200} t=3/5/11/12\n"
                  "exchanges=2 errors=0\n");
}

/* (5) The server resets one stream while another completes, then goes away; the client
 * resets one with its response under way. */
static void test_reset_goaway(void)
{
        struct conv *cv = conv_new();
        static const uint8_t away[] = { 0, 0, 0, 3, 0, 0, 0, 0, 'b', 'y', 'e' };

        headers(cv, C, 1, END_STREAM,
                NV(":method", "GET", ":scheme", "https", ":authority", "r.test", ":path",
                   "/slow"));                                                  /* 3 */
        headers(cv, C, 3, END_STREAM,
                NV(":method", "GET", ":scheme", "https", ":authority", "r.test", ":path",
                   "/fast"));                                                  /* 4 */
        headers(cv, C, 5, END_STREAM,
                NV(":method", "GET", ":scheme", "https", ":authority", "r.test", ":path",
                   "/late"));                                                  /* 5 */
        headers(cv, S, 3, 0, NV(":status", "200"));                            /* 6 */
        rst(cv, S, 1, 8);                                                      /* 7 */
        sdata(cv, S, 3, END_STREAM, "ok");                                     /* 8 */
        frame(cv, S, GOAWAY, 0, 0, away, sizeof(away));                        /* 9 */
        headers(cv, C, 7, END_STREAM,
                NV(":method", "GET", ":scheme", "https", ":authority", "r.test", ":path",
                   "/after"));                                                 /* 10 */
        rst(cv, S, 9, 8); /* a stream never seen: ignored */                  /* 11 */
        check(cv, "1 GET https r.test /slow -> 0 req=0 resp=0 pv=[|] err=reset (code 8)"
                  " t=3/3/0/0\n"
                  "3 GET https r.test /fast -> 200 req=0 resp=2 pv=[|ok] err=- t=4/4/6/8\n"
                  "5 GET https r.test /late -> 0 req=0 resp=0 pv=[|] err=goaway t=5/5/0/0\n"
                  "7 GET https r.test /after -> 0 req=0 resp=0 pv=[|] err=goaway t=10/10/0/0\n"
                  "exchanges=4 errors=0\n");

        /* The client cancels a download it has the headers of. */
        cv = conv_new();
        headers(cv, C, 1, END_STREAM,
                NV(":method", "GET", ":scheme", "https", ":authority", "r.test", ":path",
                   "/big"));                                                   /* 3 */
        headers(cv, S, 1, 0, NV(":status", "200"));                            /* 4 */
        sdata(cv, S, 1, 0, "0123456789");                                      /* 5 */
        rst(cv, C, 1, 8);                                                      /* 6 */
        sdata(cv, S, 1, 0, "late bytes are not counted");                      /* 7 */
        check(cv, "1 GET https r.test /big -> 200 req=0 resp=10 pv=[|01234567] err=reset (code 8)"
                  " t=3/3/4/5\n"
                  "exchanges=1 errors=0\n");
}

/* (6) gRPC: a unary call, a trailers-only error, a bidirectional streaming call. */
static void test_grpc(void)
{
        struct conv *cv = conv_new();
        uint8_t m[256];
        size_t n, k;

        /* Unary: one request message split across two DATA frames, two response messages. */
        headers(cv, C, 1, 0,
                NV(":method", "POST", ":scheme", "http", ":path", "/helloworld.Greeter/SayHello",
                   ":authority", "localhost:50051", "content-type", "application/grpc",
                   "te", "trailers", "grpc-timeout", "1S"));                         /* 3 */
        n = grpc_msg(m, "\x0a\x05world");
        data(cv, C, 1, 0, m, 3);                                                      /* 4 */
        data(cv, C, 1, END_STREAM, m + 3, n - 3);                                     /* 5 */
        headers(cv, S, 1, 0, NV(":status", "200", "content-type", "application/grpc")); /* 6 */
        n = grpc_msg(m, "\x0a\x03hi!");
        n += grpc_msg(m + n, "");
        data(cv, S, 1, 0, m, n);                                                      /* 7 */
        headers(cv, S, 1, END_STREAM, NV("grpc-status", "0"));                        /* 8 */

        /* An error status in a trailers-only response. */
        headers(cv, C, 3, 0,
                NV(":method", "POST", ":scheme", "http", ":path", "/helloworld.Greeter/Lookup",
                   ":authority", "localhost:50051", "content-type", "application/grpc+proto",
                   "te", "trailers"));                                               /* 9 */
        n = grpc_msg(m, "\x0a\x03key");
        data(cv, C, 3, END_STREAM, m, n);                                             /* 10 */
        headers(cv, S, 3, END_STREAM,
                NV(":status", "200", "content-type", "application/grpc", "grpc-status", "5",
                   "grpc-message", "not found"));                                    /* 11 */

        /* Streaming: 3 messages each way, one of them cut inside its length prefix. */
        headers(cv, C, 5, 0,
                NV(":method", "POST", ":scheme", "http", ":path", "/chat.Chat/Talk",
                   ":authority", "localhost:50051", "content-type", "application/grpc",
                   "te", "trailers"));                                               /* 12 */
        n = grpc_msg(m, "one");
        data(cv, C, 5, 0, m, n);                                                      /* 13 */
        headers(cv, S, 5, 0, NV(":status", "200", "content-type", "application/grpc")); /* 14 */
        n = grpc_msg(m, "uno");
        data(cv, S, 5, 0, m, n);                                                      /* 15 */
        n = grpc_msg(m, "two");
        k = n + 2;
        n += grpc_msg(m + n, "three");
        data(cv, C, 5, 0, m, k);                                                      /* 16 */
        data(cv, C, 5, END_STREAM, m + k, n - k);                                     /* 17 */
        n = grpc_msg(m, "dos");
        n += grpc_msg(m + n, "tres");
        data(cv, S, 5, 0, m, n);                                                      /* 18 */
        headers(cv, S, 5, END_STREAM, NV("grpc-status", "0", "grpc-message", "done%21")); /* 19 */
        check(cv, "1 POST http localhost:50051 /helloworld.Greeter/SayHello -> 200 req=12 resp=15"
                  " pv=[.......w|.......h] grpc=helloworld.Greeter/SayHello st=0 msg=[]"
                  " msgs=1/2 err=- t=3/5/6/8\n"
                  "3 POST http localhost:50051 /helloworld.Greeter/Lookup -> 200 req=10 resp=0"
                  " pv=[.......k|] grpc=helloworld.Greeter/Lookup st=5 msg=[not found]"
                  " msgs=1/0 err=- t=9/10/11/11\n"
                  "5 POST http localhost:50051 /chat.Chat/Talk -> 200 req=26 resp=25"
                  " pv=[.....one|.....uno] grpc=chat.Chat/Talk st=0 msg=[done!] msgs=3/3 err=-"
                  " t=12/17/14/19\n"
                  "exchanges=3 errors=0\n");
}

/* (7) 100-continue: the informational response is skipped, the final one counts. */
static void test_continue(void)
{
        struct conv *cv = conv_new();

        cv->dump = true;
        headers(cv, C, 1, 0,
                NV(":method", "PUT", ":scheme", "https", ":authority", "up.test", ":path",
                   "/file", "expect", "100-continue"));     /* 3 */
        headers(cv, S, 1, 0, NV(":status", "100"));          /* 4 */
        sdata(cv, C, 1, END_STREAM, "data");                 /* 5 */
        headers(cv, S, 1, END_STREAM, NV(":status", "204")); /* 6 */
        check(cv, "1 PUT https up.test /file -> 204 req=4 resp=0 pv=[data|] err=-"
                  " rq{:method=PUT :scheme=https :authority=up.test :path=/file"
                  " expect=100-continue} rs{:status=204} t=3/5/6/6\n"
                  "exchanges=1 errors=0\n");
}

/* (8) No preface (HTTP/1 on the wire), a wrong one, no SETTINGS first. */
static void test_no_preface(void)
{
        static const char http1[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        static const char wrong[] = "PRI * HTTP/2.0\r\n\r\nXM\r\n\r\n";
        struct conv *cv = calloc(1, sizeof(*cv));

        assert(cv);
        assert(nghttp2_hd_deflate_new(&cv->def[C], 4096) == 0);
        assert(nghttp2_hd_deflate_new(&cv->def[S], 4096) == 0);
        event(cv, C);
        put(cv, C, http1, strlen(http1));
        event_end(cv);
        event(cv, S);
        put(cv, S, "HTTP/1.1 200 OK\r\n\r\n", 19);
        event_end(cv);
        check(cv, "exchanges=0 errors=1\n");

        cv = calloc(1, sizeof(*cv));
        assert(cv);
        assert(nghttp2_hd_deflate_new(&cv->def[C], 4096) == 0);
        assert(nghttp2_hd_deflate_new(&cv->def[S], 4096) == 0);
        event(cv, C);
        put(cv, C, wrong, strlen(wrong));
        event_end(cv);
        check(cv, "exchanges=0 errors=1\n");

        /* The server starts with something else than SETTINGS: abandoned, the stream open
         * on the client side is reported. */
        cv = calloc(1, sizeof(*cv));
        assert(cv);
        assert(nghttp2_hd_deflate_new(&cv->def[C], 4096) == 0);
        assert(nghttp2_hd_deflate_new(&cv->def[S], 4096) == 0);
        event(cv, C);
        put(cv, C, H2_PREFACE, H2_PREFACE_LEN);
        frame_raw(cv, C, SETTINGS, 0, 0, "", 0);
        event_end(cv);
        headers(cv, C, 1, END_STREAM,
                NV(":method", "GET", ":scheme", "https", ":authority", "x", ":path", "/")); /* 2 */
        frame(cv, S, PING, 0, 0, "12345678", 8); /* 3 */
        headers(cv, S, 1, END_STREAM, NV(":status", "200"));
        check(cv, "1 GET https x / -> 0 req=0 resp=0 pv=[|] err=no SETTINGS opening the server"
                  " side t=2/2/0/0\n"
                  "exchanges=1 errors=1\n");
}

/* (9) A gap: the open exchanges end with an error, nothing after it is parsed. */
static void test_gap(void)
{
        struct conv *cv = conv_new();

        headers(cv, C, 1, END_STREAM,
                NV(":method", "GET", ":scheme", "https", ":authority", "g.test", ":path",
                   "/one"));                                     /* 3 */
        headers(cv, C, 3, END_STREAM,
                NV(":method", "GET", ":scheme", "https", ":authority", "g.test", ":path",
                   "/two"));                                     /* 4 */
        headers(cv, S, 1, 0, NV(":status", "200"));              /* 5 */
        sdata(cv, S, 1, 0, "part");                              /* 6 */
        gap(cv, S);                                              /* 7 */
        sdata(cv, S, 1, END_STREAM, "rest");                     /* 8 */
        headers(cv, C, 5, END_STREAM,
                NV(":method", "GET", ":scheme", "https", ":authority", "g.test", ":path",
                   "/three"));                                   /* 9 */
        headers(cv, S, 5, END_STREAM, NV(":status", "200"));     /* 10 */
        check(cv, "1 GET https g.test /one -> 200 req=0 resp=4 pv=[|part]"
                  " err=bytes missing from the stream t=3/3/5/6\n"
                  "3 GET https g.test /two -> 0 req=0 resp=0 pv=[|]"
                  " err=bytes missing from the stream t=4/4/0/0\n"
                  "exchanges=2 errors=1\n");
}

/* HPACK state is kept across blocks of streams that are not tracked: pushed streams. */
static void test_push(void)
{
        struct conv *cv = conv_new();
        uint8_t b[4096], p[4096];
        size_t n;

        headers(cv, C, 1, END_STREAM,
                NV(":method", "GET", ":scheme", "https", ":authority", "p.test", ":path",
                   "/page"));                                                         /* 3 */
        /* The promise adds entries to the server's dynamic table; the response uses them. */
        n = hpack(cv, S, NV(":method", "GET", ":scheme", "https", ":authority", "p.test",
                            ":path", "/style.css", "x-pushed-by", "server-side-push"),
                  b, sizeof(b));
        memcpy(p, "\x00\x00\x00\x02", 4);
        memcpy(p + 4, b, n);
        frame(cv, S, PUSH_PROMISE, END_HEADERS, 1, p, 4 + n);                         /* 4 */
        headers(cv, S, 2, 0, NV(":status", "200", "x-pushed-by", "server-side-push")); /* 5 */
        sdata(cv, S, 2, END_STREAM, "body{}");                                        /* 6 */
        headers(cv, S, 1, 0, NV(":status", "200", "x-pushed-by", "server-side-push")); /* 7 */
        sdata(cv, S, 1, END_STREAM, "<html>");                                        /* 8 */
        cv->dump = true;
        check(cv, "1 GET https p.test /page -> 200 req=0 resp=6 pv=[|<html>] err=-"
                  " rq{:method=GET :scheme=https :authority=p.test :path=/page}"
                  " rs{:status=200 x-pushed-by=server-side-push} t=3/3/7/8\n"
                  "exchanges=1 errors=0\n");
}

/* An encoder allowed a 64 KiB table (SETTINGS_HEADER_TABLE_SIZE) may use it. */
static void test_big_table(void)
{
        struct conv *cv = conv_new();
        char names[12][16], value[1001];
        const char *nv[2 + 2 * 12 + 1];

        nghttp2_hd_deflate_del(cv->def[S]);
        assert(nghttp2_hd_deflate_new(&cv->def[S], H2_HPACK_TABLE_MAX) == 0);
        assert(nghttp2_hd_deflate_change_table_size(cv->def[S], H2_HPACK_TABLE_MAX) == 0);
        memset(value, 'v', 1000);
        value[1000] = '\0';
        nv[0] = ":status";
        nv[1] = "200";
        for (int i = 0; i < 12; i++) {
                snprintf(names[i], sizeof(names[i]), "x-big-%d", i);
                nv[2 + 2 * i] = names[i];
                nv[3 + 2 * i] = value;
        }
        nv[2 + 2 * 12] = NULL;
        for (uint32_t sid = 1; sid <= 3; sid += 2) {
                headers(cv, C, sid, END_STREAM,
                        NV(":method", "GET", ":scheme", "https", ":authority", "b.test", ":path",
                           "/"));
                headers(cv, S, sid, END_STREAM, nv);
        }
        assert(nghttp2_hd_deflate_get_dynamic_table_size(cv->def[S]) > 12000);
        cv->no_split = true;
        check(cv, "1 GET https b.test / -> 200 req=0 resp=0 pv=[|] err=- t=3/3/4/4\n"
                  "3 GET https b.test / -> 200 req=0 resp=0 pv=[|] err=- t=5/5/6/6\n"
                  "exchanges=2 errors=0\n");
}

/* A header block over H2_HEADER_BLOCK_MAX: an error for its stream, the next still decodes. */
static void test_big_block(void)
{
        enum { N = 16 };
        struct conv *cv = conv_new();
        static uint8_t b[1 << 18];
        static char value[8001];
        const char *nv[4 + 2 * N + 1];
        char names[N][16], want[1024];
        unsigned first = 0, last = 0, resp, req3, resp3;
        size_t n;

        srand(7);
        for (int i = 0; i < 8000; i++)
                value[i] = (char)('!' + rand() % 90); /* Huffman cannot shrink it much */
        nv[0] = ":method", nv[1] = "GET", nv[2] = ":path", nv[3] = "/huge";
        for (int i = 0; i < N; i++) {
                snprintf(names[i], sizeof(names[i]), "x-h%d", i);
                nv[4 + 2 * i] = names[i];
                nv[5 + 2 * i] = value;
        }
        nv[4 + 2 * N] = NULL;
        n = hpack(cv, C, nv, b, sizeof(b));
        assert(n > H2_HEADER_BLOCK_MAX);
        for (size_t off = 0; off < n; off += 16384) {
                size_t k = n - off < 16384 ? n - off : 16384;

                if (off == 0)
                        first = frame(cv, C, HEADERS, END_STREAM, 1, b, k);
                else
                        last = frame(cv, C, CONTINUATION, off + k == n ? END_HEADERS : 0, 1,
                                     b + off, k);
        }
        resp = headers(cv, S, 1, END_STREAM, NV(":status", "431"));
        req3 = headers(cv, C, 3, END_STREAM,
                       NV(":method", "GET", ":path", "/small", "x-h0", value));
        resp3 = headers(cv, S, 3, END_STREAM, NV(":status", "200"));
        cv->no_split = true;
        cv->dump = true;
        snprintf(want, sizeof(want),
                 "1 GET   /huge -> 431 req=0 resp=0 pv=[|] err=header block too large"
                 " rq{:method=GET :path=/huge x-h0=<8000>}+ rs{:status=431} t=%u/%u/%u/%u\n"
                 "3 GET   /small -> 200 req=0 resp=0 pv=[|] err=-"
                 " rq{:method=GET :path=/small x-h0=<8000>} rs{:status=200} t=%u/%u/%u/%u\n"
                 "exchanges=2 errors=1\n",
                 first, last, resp, resp, req3, req3, resp3, resp3);
        check(cv, want);
}

/* More streams than the table holds: the one over is counted and not tracked. */
static void test_table_full(void)
{
        struct conv *cv = conv_new();
        static char want[MAX_RECS * 128];
        size_t len = 0;

        for (uint32_t i = 0; i <= H2_STREAMS_MAX; i++)
                headers(cv, C, 2 * i + 1, END_STREAM,
                        NV(":method", "GET", ":scheme", "https", ":authority", "f.test", ":path",
                           "/x"));
        for (uint32_t i = 0; i <= H2_STREAMS_MAX; i++)
                headers(cv, S, 2 * i + 1, END_STREAM, NV(":status", "204"));
        for (uint32_t i = 0; i < H2_STREAMS_MAX; i++)
                len += (size_t)sprintf(want + len,
                                       "%u GET https f.test /x -> 204 req=0 resp=0 pv=[|] err=-"
                                       " t=%u/%u/%u/%u\n",
                                       2 * i + 1, i + 3, i + 3, i + 3 + H2_STREAMS_MAX + 1,
                                       i + 3 + H2_STREAMS_MAX + 1);
        sprintf(want + len, "exchanges=%u errors=1\n", H2_STREAMS_MAX);
        cv->no_split = true;
        check(cv, want);
}

/* Frames that are wrong but leave the connection readable: counted, skipped. */
static void test_frame_errors(void)
{
        struct conv *cv = conv_new();
        uint8_t p[16] = { 0 };

        frame(cv, C, SETTINGS, ACK, 0, "", 0);                                  /* 3 */
        frame(cv, S, SETTINGS, ACK, 0, "", 0);                                  /* 4 */
        headers(cv, C, 1, 0,
                NV(":method", "POST", ":scheme", "https", ":authority", "e.test", ":path",
                   "/e"));                                                      /* 5 */
        frame(cv, C, WINDOW_UPDATE, 0, 0, "\x00\x01\x00\x00", 4);               /* 6 */
        frame(cv, C, PRIORITY, 0, 1, "\x00\x00\x00\x00\x0f", 5);                /* 7 */
        frame(cv, C, PING, 0, 0, "pingping", 8);                                /* 8 */
        frame(cv, C, 0xfa, 0xff, 1, "unknown type", 12);                        /* 9 */
        p[0] = 9; /* pad length beyond the frame: skipped, END_STREAM too */
        frame(cv, C, DATA, PADDED | END_STREAM, 1, p, 4);                       /* 10 */
        frame(cv, C, SETTINGS, 0, 0, "\x00\x01\x00", 3); /* not whole entries */ /* 11 */
        frame(cv, C, PING, 0, 1, "pingping", 8);         /* not on stream 0 */  /* 12 */
        frame(cv, C, DATA, 0, 0, "orphan", 6);           /* stream 0 */         /* 13 */
        frame(cv, C, RST_STREAM, 0, 1, "\x00\x00", 2);   /* short */            /* 14 */
        sdata(cv, C, 1, END_STREAM, "ok");                                      /* 15 */
        frame(cv, S, PING, ACK, 0, "pingping", 8);                              /* 16 */
        headers(cv, S, 1, END_STREAM, NV(":status", "200"));                    /* 17 */
        sdata(cv, S, 1, 0, "after the end: ignored");                           /* 18 */
        check(cv, "1 POST https e.test /e -> 200 req=2 resp=0 pv=[ok|] err=- t=5/15/17/17\n"
                  "exchanges=1 errors=5\n");
}

/* What loses the thread of a connection: it is abandoned with the reason. */
static void test_fatal(void)
{
        static const char *const why[] = { "CONTINUATION without a header block",
                                            "header block interrupted by another frame",
                                            "HPACK decoding failed",
                                            "header block padding longer than its frame" };

        for (int i = 0; i < 4; i++) {
                struct conv *cv = conv_new();
                char want[512];
                uint8_t b[256];
                size_t n;

                headers(cv, C, 1, END_STREAM,
                        NV(":method", "GET", ":scheme", "https", ":authority", "z.test",
                           ":path", "/z"));                                      /* 3 */
                switch (i) {
                case 0:
                        frame(cv, S, CONTINUATION, END_HEADERS, 1, "\x88", 1);
                        break;
                case 1:
                        n = hpack(cv, S, NV(":status", "200"), b, sizeof(b));
                        frame(cv, S, HEADERS, 0, 1, b, n);
                        sdata(cv, S, 1, END_STREAM, "x");
                        break;
                case 2:
                        frame(cv, S, HEADERS, END_HEADERS, 1, "\xff\xff\xff\xff\xff", 5);
                        break;
                case 3:
                        frame(cv, S, HEADERS, END_HEADERS | PADDED, 1, "\x09\x88", 2);
                        break;
                }
                headers(cv, S, 1, END_STREAM, NV(":status", "200"));
                snprintf(want, sizeof(want),
                         "1 GET https z.test /z -> 0 req=0 resp=0 pv=[|] err=%s t=3/3/0/0\n"
                         "exchanges=1 errors=1\n",
                         why[i]);
                check(cv, want);
        }

        /* Closing reports what is open. */
        {
                struct conv *cv = conv_new();

                headers(cv, C, 1, 0,
                        NV(":method", "POST", ":scheme", "https", ":authority", "z.test",
                           ":path", "/open"));
                sdata(cv, C, 1, 0, "half");
                cv->close = true;
                check(cv, "1 POST https z.test /open -> 0 req=4 resp=0 pv=[half|]"
                          " err=connection closed t=3/4/0/0\n"
                          "exchanges=1 errors=0\n");
        }
}

/* Random frames after a valid start: no crash, nothing unbounded. */
static void test_random(void)
{
        static struct out o;
        uint8_t junk[4096];

        srand(11);
        for (int round = 0; round < 300; round++) {
                struct h2_conn *h = h2_conn_new((size_t)round % 16, on_exchange, &o);

                memset(&o, 0, sizeof(o));
                o.preview = (size_t)round % 16;
                for (size_t i = 0; i < sizeof(junk); i++)
                        junk[i] = (uint8_t)(rand() % 3 == 0 ? rand() % 10 : rand());
                h2_conn_data(h, true, (const uint8_t *)H2_PREFACE, H2_PREFACE_LEN, 1);
                h2_conn_data(h, true, (const uint8_t *)"\0\0\0\x04\0\0\0\0\0", 9, 1);
                h2_conn_data(h, false, (const uint8_t *)"\0\0\0\x04\0\0\0\0\0", 9, 1);
                h2_conn_data(h, round & 1, junk, sizeof(junk), 2);
                h2_conn_free(h);
        }
        assert(h2_conn_free(NULL) == NULL);
}

/*
 * Recorded conversations: the client side of real programs' HTTP/2 connections as tlssniff
 * captured them (tests/test_http2.py run with TLSSNIFF_KEEP=always; testdata/README.md): the
 * two byte streams and the calls that carried them, fed in the recorded order.
 */
static struct conv *conv_load(const char *dir, const char *name)
{
        struct conv *cv = calloc(1, sizeof(*cv));
        char path[1024], line[128];
        FILE *f;

        assert(cv);
        for (int d = 0; d < 2; d++) {
                long n;

                snprintf(path, sizeof(path), "%s/h2-%s.%s", dir, name, d == C ? "c2s" : "s2c");
                f = fopen(path, "rb");
                if (!f) {
                        fprintf(stderr, "cannot open %s: %m\n", path);
                        abort();
                }
                assert(fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0);
                rewind(f);
                cv->s[d] = malloc((size_t)n + 1);
                assert(cv->s[d] && fread(cv->s[d], 1, (size_t)n, f) == (size_t)n);
                cv->len[d] = cv->cap[d] = (size_t)n;
                fclose(f);
        }
        snprintf(path, sizeof(path), "%s/h2-%s.events", dir, name);
        f = fopen(path, "r");
        assert(f);
        while (fgets(line, sizeof(line), f)) {
                struct event *e = &cv->ev[cv->n_ev];
                char d;

                assert(cv->n_ev < MAX_EVENTS);
                assert(sscanf(line, "%c %zu %zu", &d, &e->off, &e->len) == 3);
                e->dir = d == 'c' ? C : S;
                assert(e->off + e->len <= cv->len[e->dir]);
                cv->n_ev++;
        }
        fclose(f);
        return cv;
}

static void test_recorded(const char *dir)
{
        static const struct {
                const char *name, *want;
        } cases[] = {
                { "nghttp",
                "13 GET https 127.0.0.1:41313 /a.bin -> 200 req=0 resp=1000 pv=[|....!(/6] err=- t=2/2/3/3\n"
                "17 GET https 127.0.0.1:41313 /c.bin -> 200 req=0 resp=5 pv=[|....!] err=- t=2/2/3/5\n"
                "15 GET https 127.0.0.1:41313 /b.bin -> 200 req=0 resp=20000 pv=[|....!(/6] err=- t=2/2/3/5\n"
                "exchanges=3 errors=0\n" },
                { "curl",
                "1 GET https 127.0.0.1:41313 /a.bin -> 200 req=0 resp=1000 pv=[|....!(/6] err=- t=2/2/6/6\n"
                "3 GET https 127.0.0.1:41313 /c.bin -> 200 req=0 resp=5 pv=[|....!] err=- t=7/7/8/8\n"
                "exchanges=2 errors=0\n" },
                { "go",
                "1 GET https 127.0.0.1:34105 /hello -> 200 req=0 resp=14 pv=[|hello fr] err=- t=2/2/7/8\n"
                "3 POST https 127.0.0.1:34105 /echo -> 200 req=6 resp=6 pv=[ping-0|ping-0] err=- t=9/10/12/13\n"
                "5 GET https 127.0.0.1:34105 /hello -> 200 req=0 resp=14 pv=[|hello fr] err=- t=14/14/15/16\n"
                "7 POST https 127.0.0.1:34105 /echo -> 200 req=6 resp=6 pv=[ping-1|ping-1] err=- t=17/18/20/21\n"
                "exchanges=4 errors=0\n" },
                { "grpc",
                "1 POST https localhost /demo.Echo/Unary -> 200 req=10 resp=15 pv=[.....hel|.....ech] grpc=demo.Echo/Unary st=0 msg=[] msgs=1/1 err=- t=3/3/7/7\n"
                "3 POST https localhost /demo.Echo/Stream -> 200 req=6 resp=39 pv=[.....x|.....par] grpc=demo.Echo/Stream st=0 msg=[] msgs=1/3 err=- t=9/9/11/14\n"
                "5 POST https localhost /demo.Echo/Unary -> 200 req=12 resp=0 pv=[.....mis|] grpc=demo.Echo/Unary st=5 msg=[no such thing] msgs=1/0 err=- t=15/15/16/16\n"
                "exchanges=3 errors=0\n" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct conv *cv = conv_load(dir, cases[i].name);

                printf("recorded: %s\n", cases[i].name);
                /* nghttp's server side is 21 KB: too long to cut at every byte. */
                cv->no_split = strcmp(cases[i].name, "nghttp") == 0;
                check(cv, cases[i].want);
        }
}

int main(int argc, char **argv)
{
        if (argc != 2) {
                fprintf(stderr, "usage: test-http2 TESTDATA_DIR\n");
                return 2;
        }
        test_recorded(argv[1]);
        test_get();
        test_concurrent();
        test_post_trailers();
        test_continuation_padding();
        test_reset_goaway();
        test_grpc();
        test_continue();
        test_no_preface();
        test_gap();
        test_push();
        test_big_table();
        test_big_block();
        test_table_full();
        test_frame_errors();
        test_fatal();
        test_random();
        printf("http2: ok\n");
        return 0;
}
