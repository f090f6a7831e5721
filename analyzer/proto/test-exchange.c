/*
 * Unit tests of request/response pairing on recorded byte streams: the request and response
 * directions are fed whole and in pieces (each direction cut at every position, interleaved),
 * and must give the same exchanges: method, path, status, body sizes, previews, errors.
 */
#undef NDEBUG
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/exchange.h"

struct out {
        char text[4096];
        size_t len;
};

static void on_exchange(const struct exchange *x, void *ud)
{
        struct out *o = ud;
        int n = snprintf(o->text + o->len, sizeof(o->text) - o->len,
                         "%s %s %s -> %d req=%llu resp=%llu preview=[%.*s] err=%s\n", x->method,
                         x->authority, x->target, x->status,
                         (unsigned long long)x->req_body, (unsigned long long)x->resp_body,
                         (int)x->resp_preview_len, (const char *)x->resp_preview,
                         x->error ? x->error : "-");

        assert(n > 0 && (size_t)n < sizeof(o->text) - o->len);
        o->len += (size_t)n;
        /* Timestamps are those of the bytes: the request starts first, ends before the
         * response's last byte. */
        assert(x->start_ns <= x->req_end_ns);
        if (x->status)
                assert(x->resp_start_ns <= x->resp_end_ns && x->start_ns <= x->resp_end_ns);
}

/*
 * Feeds req and resp: the request stream up to cut_req, then the response stream up to
 * cut_resp, then the rest of both (requests first, as they were sent). Timestamps grow.
 */
static void run(const char *req, const char *resp, size_t cut_req, size_t cut_resp,
                struct out *o)
{
        struct exchange_conn *c;
        size_t nq = strlen(req), nr = strlen(resp);

        memset(o, 0, sizeof(*o));
        c = exchange_conn_new(8, on_exchange, o);
        assert(c);
        exchange_conn_data(c, true, (const uint8_t *)req, cut_req, 1000);
        exchange_conn_data(c, false, (const uint8_t *)resp, cut_resp, 2000);
        exchange_conn_data(c, true, (const uint8_t *)req + cut_req, nq - cut_req, 3000);
        exchange_conn_data(c, false, (const uint8_t *)resp + cut_resp, nr - cut_resp, 4000);
        exchange_conn_free(c);
}

static void check(const char *req, const char *resp, const char *want)
{
        static struct out whole, part;
        size_t nq = strlen(req), nr = strlen(resp);

        run(req, resp, nq, nr, &whole);
        if (strcmp(whole.text, want) != 0) {
                fprintf(stderr, "got:\n%s\nwant:\n%s\n", whole.text, want);
                abort();
        }
        /* Responses can only follow their requests: cut the requests anywhere, the responses
         * at 0 (all after) and, with all requests first, anywhere. */
        for (size_t i = 0; i <= nq; i++) {
                run(req, resp, i, 0, &part);
                assert(strcmp(part.text, whole.text) == 0);
        }
        for (size_t j = 0; j <= nr; j++) {
                run(req, resp, nq, j, &part);
                if (strcmp(part.text, whole.text) != 0) {
                        fprintf(stderr, "cut %zu:\n%s\nvs\n%s\n", j, part.text, whole.text);
                        abort();
                }
        }
}

int main(void)
{
        /* keep-alive: three requests, one POST, on one connection; chunked and HEAD. */
        check("GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
              "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
              "HEAD /c HTTP/1.1\r\nHost: h\r\n\r\n",
              "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
              "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nmade!\r\n0\r\n\r\n"
              "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
              "GET h /a -> 200 req=0 resp=2 preview=[ok] err=-\n"
              "POST h /b -> 201 req=3 resp=5 preview=[made!] err=-\n"
              "HEAD h /c -> 200 req=0 resp=0 preview=[] err=-\n");

        /* 100 Continue before the final response; a response until close. */
        check("PUT /u HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\ndata",
              "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it",
              "PUT h /u -> 200 req=4 resp=9 preview=[all of i] err=-\n");

        /* A request without response (connection closed), and a response to a request that
         * was not captured. */
        check("GET /lost HTTP/1.1\r\nHost: h\r\n\r\n", "",
              "GET h /lost -> 0 req=0 resp=0 preview=[] err=no response captured\n");
        check("", "HTTP/1.1 204 No Content\r\n\r\n",
              "   -> 204 req=0 resp=0 preview=[] err=request not captured\n");

        /* A broken response: the exchange is reported with the error, the next one pairs. */
        check("GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n",
              "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n"
              "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!",
              "GET h /1 -> 200 req=0 resp=0 preview=[] err=bad chunk size\n"
              "GET h /2 -> 200 req=0 resp=1 preview=[!] err=-\n");

        /* A gap in the response stream abandons the response in progress. */
        {
                static struct out o;
                struct exchange_conn *c = exchange_conn_new(8, on_exchange, &o);
                const char *q = "GET /g HTTP/1.1\r\n\r\nGET /h HTTP/1.1\r\n\r\n";
                const char *r1 = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
                const char *r2 = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";

                exchange_conn_data(c, true, (const uint8_t *)q, strlen(q), 1);
                exchange_conn_data(c, false, (const uint8_t *)r1, strlen(r1), 2);
                exchange_conn_gap(c, false);
                exchange_conn_data(c, false, (const uint8_t *)r2, strlen(r2), 3);
                exchange_conn_free(c);
                assert(strcmp(o.text, "GET  /g -> 200 req=0 resp=0 preview=[abc] err=bytes "
                                      "missing from the stream\n"
                                      "GET  /h -> 200 req=0 resp=2 preview=[hi] err=-\n") == 0);
        }
        printf("exchange: ok\n");
        return 0;
}
