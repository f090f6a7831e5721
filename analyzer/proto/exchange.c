/* HTTP/1.x request/response pairing; see exchange.h. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/exchange.h"

struct exchange_conn {
        struct http1_parser req, resp;
        exchange_cb cb;
        void *userdata;
        size_t preview;
        uint64_t ts; /* timestamp of the bytes being fed */
        /* pending[0] is the oldest request without a complete response */
        struct exchange *pending[EXCHANGE_PENDING_MAX];
        unsigned n_pending;
        struct exchange *cur_req;  /* the request being parsed (also in pending) */
        unsigned resp_index;       /* pending index the response being parsed belongs to */
        bool resp_in_message;
        struct exchange *orphan;   /* a response with no request seen */
        uint64_t exchanges, errors;
};

static struct exchange *exchange_new(size_t preview)
{
        struct exchange *x = calloc(1, sizeof(*x));

        if (!x)
                return NULL;
        if (preview > 0) {
                x->req_preview = malloc(preview);
                x->resp_preview = malloc(preview);
                if (!x->req_preview || !x->resp_preview) {
                        free(x->req_preview);
                        free(x->resp_preview);
                        free(x);
                        return NULL;
                }
        }
        return x;
}

static void exchange_free(struct exchange *x)
{
        if (!x)
                return;
        free(x->req_preview);
        free(x->resp_preview);
        free(x->req_headers.text);
        free(x->resp_headers.text);
        free(x);
}

static void copy_str(char *dst, size_t size, const char *src)
{
        size_t n = strlen(src);

        if (n >= size)
                n = size - 1;
        memcpy(dst, src, n);
        dst[n] = '\0';
}

static void keep_headers(struct exchange_headers *eh, const struct http1_head *h)
{
        size_t need = 0;

        for (unsigned i = 0; i < h->n_headers; i++)
                need += strlen(h->headers[i].name) + strlen(h->headers[i].value) + 2;
        if (need > EXCHANGE_HEADER_BYTES)
                need = EXCHANGE_HEADER_BYTES;
        free(eh->text);
        eh->text = need ? malloc(need) : NULL;
        eh->n = 0;
        eh->len = 0;
        eh->truncated = h->headers_truncated || (need > 0 && !eh->text);
        if (!eh->text)
                return;
        for (unsigned i = 0; i < h->n_headers; i++) {
                size_t nl = strlen(h->headers[i].name), vl = strlen(h->headers[i].value);

                if (eh->len + nl + vl + 2 > need) {
                        eh->truncated = true;
                        break;
                }
                eh->name[eh->n] = (uint16_t)eh->len;
                memcpy(eh->text + eh->len, h->headers[i].name, nl + 1);
                eh->len += nl + 1;
                eh->value[eh->n] = (uint16_t)eh->len;
                memcpy(eh->text + eh->len, h->headers[i].value, vl + 1);
                eh->len += vl + 1;
                eh->n++;
        }
}

const char *exchange_header(const struct exchange_headers *h, const char *name)
{
        for (unsigned i = 0; i < h->n; i++)
                if (strcasecmp(h->text + h->name[i], name) == 0)
                        return h->text + h->value[i];
        return NULL;
}

static void emit(struct exchange_conn *c, struct exchange *x)
{
        c->exchanges++;
        c->cb(x, c->userdata);
        exchange_free(x);
}

/* The oldest pending exchange is done (or abandoned): emit it and shift the queue. */
static void emit_oldest(struct exchange_conn *c, const char *error)
{
        struct exchange *x = c->pending[0];

        if (!x)
                return;
        if (error && !x->error)
                x->error = error;
        memmove(c->pending, c->pending + 1, (c->n_pending - 1) * sizeof(c->pending[0]));
        c->pending[--c->n_pending] = NULL;
        if (c->cur_req == x)
                c->cur_req = NULL;
        emit(c, x);
}

/* Appends body bytes to a preview until it holds max bytes. */
static void keep_preview(uint8_t *preview, size_t *len, size_t max, const uint8_t *d, size_t n)
{
        size_t k;

        if (*len >= max)
                return;
        k = max - *len < n ? max - *len : n;
        memcpy(preview + *len, d, k);
        *len += k;
}

/* --- requests --- */

static void req_head(void *ud, const struct http1_head *h)
{
        struct exchange_conn *c = ud;
        struct exchange *x;

        if (c->n_pending >= EXCHANGE_PENDING_MAX)
                emit_oldest(c, "too many requests waiting for a response");
        x = exchange_new(c->preview);
        if (!x) {
                c->cur_req = NULL;
                return;
        }
        copy_str(x->method, sizeof(x->method), h->method);
        copy_str(x->target, sizeof(x->target), h->target);
        x->version_minor = h->version_minor;
        keep_headers(&x->req_headers, h);
        copy_str(x->authority, sizeof(x->authority),
                 exchange_header(&x->req_headers, "host") ?: "");
        x->start_ns = x->req_end_ns = c->ts;
        c->pending[c->n_pending++] = x;
        c->cur_req = x;
        http1_expect_response(&c->resp, h->method);
}

static void req_body(void *ud, const uint8_t *d, size_t n)
{
        struct exchange_conn *c = ud;
        struct exchange *x = c->cur_req;

        if (!x)
                return;
        keep_preview(x->req_preview, &x->req_preview_len, c->preview, d, n);
        x->req_end_ns = c->ts;
}

static void req_complete(void *ud, uint64_t body)
{
        struct exchange_conn *c = ud;
        struct exchange *x = c->cur_req;

        if (!x)
                return;
        x->req_body = body;
        x->req_end_ns = c->ts;
        x->req_done = true;
        c->cur_req = NULL;
}

static void req_error(void *ud, const char *why)
{
        struct exchange_conn *c = ud;

        c->errors++;
        if (c->cur_req) {
                c->cur_req->error = why;
                c->cur_req->req_done = true;
                c->cur_req = NULL;
        }
}

/* --- responses --- */

static struct exchange *resp_target(struct exchange_conn *c)
{
        if (c->n_pending > 0)
                return c->pending[0];
        return c->orphan;
}

static void resp_head(void *ud, const struct http1_head *h)
{
        struct exchange_conn *c = ud;
        struct exchange *x;

        if (h->interim)
                return; /* 100 Continue and friends: the final response follows */
        if (c->n_pending == 0) {
                /* A response to a request we did not see (capture started mid-connection). */
                exchange_free(c->orphan);
                c->orphan = exchange_new(c->preview);
                if (c->orphan) {
                        c->orphan->error = "request not captured";
                        c->orphan->start_ns = c->orphan->req_end_ns = c->ts;
                }
        }
        x = resp_target(c);
        c->resp_in_message = true;
        if (!x)
                return;
        x->status = h->status;
        copy_str(x->reason, sizeof(x->reason), h->reason);
        keep_headers(&x->resp_headers, h);
        x->resp_start_ns = x->resp_end_ns = c->ts;
        x->resp_started = true;
        x->upgraded = h->upgrade;
}

static void resp_body(void *ud, const uint8_t *d, size_t n)
{
        struct exchange_conn *c = ud;
        struct exchange *x = resp_target(c);

        if (!x || !c->resp_in_message)
                return;
        keep_preview(x->resp_preview, &x->resp_preview_len, c->preview, d, n);
        x->resp_end_ns = c->ts;
}

static void resp_complete(void *ud, uint64_t body)
{
        struct exchange_conn *c = ud;
        struct exchange *x = resp_target(c);

        if (!c->resp_in_message)
                return; /* an interim response ended */
        c->resp_in_message = false;
        if (!x)
                return;
        x->resp_body = body;
        x->resp_end_ns = c->ts;
        if (x == c->orphan) {
                c->orphan = NULL;
                emit(c, x);
                return;
        }
        emit_oldest(c, x->req_done ? NULL : "response ended before its request");
}

static void resp_error(void *ud, const char *why)
{
        struct exchange_conn *c = ud;

        c->errors++;
        if (c->resp_in_message || c->n_pending > 0) {
                c->resp_in_message = false;
                if (c->n_pending > 0 && c->pending[0]->resp_started)
                        emit_oldest(c, why);
        }
}

static void resp_upgrade(void *ud)
{
        struct exchange_conn *c = ud;

        /* Anything sent after the switch is not HTTP/1: stop reading requests too. */
        c->req.state = HTTP1_UPGRADED;
}

/* No on_upgrade for requests: the response decides whether the protocol switches. */
static const struct http1_callbacks req_cbs = { req_head, req_body, req_complete, req_error,
                                                NULL };
static const struct http1_callbacks resp_cbs = { resp_head, resp_body, resp_complete,
                                                 resp_error, resp_upgrade };

struct exchange_conn *exchange_conn_new(size_t preview, exchange_cb cb, void *userdata)
{
        struct exchange_conn *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        c->cb = cb;
        c->userdata = userdata;
        c->preview = preview < EXCHANGE_PREVIEW_MAX ? preview : EXCHANGE_PREVIEW_MAX;
        http1_init(&c->req, true, &req_cbs, c);
        http1_init(&c->resp, false, &resp_cbs, c);
        return c;
}

void exchange_conn_data(struct exchange_conn *c, bool requests, const uint8_t *data, size_t n,
                        uint64_t ts_ns)
{
        c->ts = ts_ns;
        http1_feed(requests ? &c->req : &c->resp, data, n);
}

void exchange_conn_gap(struct exchange_conn *c, bool requests)
{
        http1_gap(requests ? &c->req : &c->resp);
}

void exchange_conn_close(struct exchange_conn *c)
{
        http1_close(&c->req);
        http1_close(&c->resp);
}

void exchange_conn_counters(const struct exchange_conn *c, uint64_t *ret_exchanges,
                            uint64_t *ret_errors)
{
        *ret_exchanges = c->exchanges;
        *ret_errors = c->errors;
}

struct exchange_conn *exchange_conn_free(struct exchange_conn *c)
{
        if (!c)
                return NULL;
        exchange_conn_close(c);
        while (c->n_pending > 0)
                emit_oldest(c, c->pending[0]->resp_started ? "connection closed mid-response"
                                                           : "no response captured");
        exchange_free(c->orphan);
        http1_done(&c->req);
        http1_done(&c->resp);
        free(c);
        return NULL;
}
