/*
 * Unit tests of the HTTP/1.x parser on recorded byte streams: each stream is fed whole, one
 * byte at a time, and split at every position, and must give the same events every time.
 */
#undef NDEBUG
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http1.h"

struct log {
        char text[8192];
        size_t len;
        char body[4096];
        size_t body_len;
};

__attribute__((format(printf, 2, 3))) static void logf_(struct log *l, const char *fmt, ...)
{
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(l->text + l->len, sizeof(l->text) - l->len, fmt, ap);
        va_end(ap);
        assert(n > 0 && (size_t)n < sizeof(l->text) - l->len);
        l->len += (size_t)n;
}

static void on_head(void *ud, const struct http1_head *h)
{
        struct log *l = ud;
        char buf[512];

        if (h->request)
                snprintf(buf, sizeof(buf), "%s %s 1.%d", h->method, h->target, h->version_minor);
        else
                snprintf(buf, sizeof(buf), "%d %s 1.%d", h->status, h->reason, h->version_minor);
        logf_(l, "HEAD %s", buf);
        for (unsigned i = 0; i < h->n_headers; i++)
                logf_(l, " [%s=%s]", h->headers[i].name, h->headers[i].value);
        snprintf(buf, sizeof(buf), " cl=%lld%s%s%s%s", (long long)h->content_length,
                 h->chunked ? " chunked" : "", h->interim ? " interim" : "",
                 h->upgrade ? " upgrade" : "", h->keep_alive ? " keep-alive" : "");
        logf_(l, "%s\n", buf);
        l->body_len = 0;
}

static void on_body(void *ud, const uint8_t *d, size_t n)
{
        struct log *l = ud;

        assert(l->body_len + n < sizeof(l->body));
        memcpy(l->body + l->body_len, d, n);
        l->body_len += n;
}

static void on_complete(void *ud, uint64_t body_bytes)
{
        struct log *l = ud;
        char n[32];

        assert(body_bytes == l->body_len);
        l->body[l->body_len] = '\0';
        snprintf(n, sizeof(n), "%llu", (unsigned long long)body_bytes);
        logf_(l, "DONE %s [%s]\n", n, l->body);
        l->body_len = 0;
}

static void on_error(void *ud, const char *why)
{
        logf_(ud, "ERROR %s\n", why);
        ((struct log *)ud)->body_len = 0;
}

static void on_upgrade(void *ud)
{
        logf_(ud, "UPGRADE\n");
}

static const struct http1_callbacks cbs = { on_head, on_body, on_complete, on_error,
                                            on_upgrade };

/* Feeds the stream in pieces: cut at `split` (0: whole), or one byte at a time (-1). */
static void run(bool request, const char *const *methods, const char *s, size_t n, long split,
                bool close, struct log *l)
{
        static struct http1_parser p;

        memset(l, 0, sizeof(*l));
        http1_init(&p, request, &cbs, l);
        for (const char *const *m = methods; m && *m; m++)
                http1_expect_response(&p, *m);
        if (split < 0) {
                for (size_t i = 0; i < n; i++)
                        http1_feed(&p, (const uint8_t *)s + i, 1);
        } else {
                http1_feed(&p, (const uint8_t *)s, (size_t)split);
                http1_feed(&p, (const uint8_t *)s + split, n - (size_t)split);
        }
        if (close)
                http1_close(&p);
        http1_done(&p);
}

/* The events of the whole stream; every split and byte-at-a-time feeding must agree. */
static void check(bool request, const char *const *methods, const char *s, bool close,
                  const char *want)
{
        static struct log whole, part;
        size_t n = strlen(s);

        run(request, methods, s, n, 0, close, &whole);
        if (strcmp(whole.text, want) != 0) {
                fprintf(stderr, "stream:\n%s\ngot:\n%s\nwant:\n%s\n", s, whole.text, want);
                abort();
        }
        run(request, methods, s, n, -1, close, &part);
        assert(strcmp(part.text, whole.text) == 0);
        for (size_t cut = 1; cut < n; cut++) {
                run(request, methods, s, n, (long)cut, close, &part);
                if (strcmp(part.text, whole.text) != 0) {
                        fprintf(stderr, "split at %zu differs:\n%s\nvs\n%s\n", cut, part.text,
                                whole.text);
                        abort();
                }
        }
}

int main(void)
{
        static const char *const get2[] = { "GET", "GET", NULL };
        static const char *const head_get[] = { "HEAD", "GET", NULL };
        static const char *const connect[] = { "CONNECT", NULL };

        /* Keep-alive requests, one with a body, pipelined in one stream. */
        check(true, NULL,
              "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
              "POST /b?q=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
              "GET /c HTTP/1.0\r\n\r\n",
              false,
              "HEAD GET /a 1.1 [Host=x] cl=-1 keep-alive\nDONE 0 []\n"
              "HEAD POST /b?q=1 1.1 [Host=x] [Content-Length=5] cl=5 keep-alive\nDONE 5 [hello]\n"
              "HEAD GET /c 1.0 cl=-1\nDONE 0 []\n");

        /* A chunked request body with an extension and a trailer. */
        check(true, NULL,
              "PUT /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
              "3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-Sum: 9\r\n\r\n",
              false,
              "HEAD PUT /u 1.1 [Transfer-Encoding=chunked] cl=-1 chunked keep-alive\n"
              "DONE 19 [abc0123456789abcdef]\n");

        /* Responses: by length, chunked, HEAD (no body despite Content-Length), 204, 304. */
        check(false, get2,
              "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
              "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwxyz\r\n0\r\n\r\n",
              false,
              "HEAD 200 OK 1.1 [Content-Length=2] cl=2 keep-alive\nDONE 2 [hi]\n"
              "HEAD 200 OK 1.1 [Transfer-Encoding=chunked] cl=-1 chunked keep-alive\n"
              "DONE 4 [wxyz]\n");
        check(false, head_get,
              "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"
              "HTTP/1.1 204 No Content\r\n\r\n"
              "HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n",
              false,
              "HEAD 200 OK 1.1 [Content-Length=99] cl=99 keep-alive\nDONE 0 []\n"
              "HEAD 204 No Content 1.1 cl=-1 keep-alive\nDONE 0 []\n"
              "HEAD 304 Not Modified 1.1 [Content-Length=7] cl=7 keep-alive\nDONE 0 []\n");

        /* 100 Continue, then the final response; a body until close. */
        check(false, get2,
              "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody!",
              true,
              "HEAD 100 Continue 1.1 cl=-1 interim keep-alive\nDONE 0 []\n"
              "HEAD 200 OK 1.1 [Connection=close] cl=-1\nDONE 5 [body!]\n");

        /* Upgrade: 101 stops the parsing; so does a 200 to CONNECT. */
        check(false, get2,
              "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello",
              false,
              "HEAD 101 Switching Protocols 1.1 [Upgrade=websocket] cl=-1 upgrade keep-alive\n"
              "DONE 0 []\nUPGRADE\n");
        check(false, connect, "HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01", false,
              "HEAD 200 Connection established 1.1 cl=-1 upgrade keep-alive\nDONE 0 []\n"
              "UPGRADE\n");

        /* Errors resynchronise on the next request line. */
        check(true, NULL,
              "GARBAGE\x01\x02 here\r\n\r\nGET /ok HTTP/1.1\r\n\r\n",
              false,
              "ERROR bad method\nHEAD GET /ok 1.1 cl=-1 keep-alive\nDONE 0 []\n");
        check(true, NULL,
              "POST /x HTTP/1.1\r\nContent-Length: 12x\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
              false, "ERROR bad Content-Length\nHEAD GET /next 1.1 cl=-1 keep-alive\nDONE 0 []\n");
        check(false, get2,
              "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
              "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
              false,
              "HEAD 200 OK 1.1 [Transfer-Encoding=chunked] cl=-1 chunked keep-alive\n"
              "ERROR bad chunk size\n"
              "HEAD 404 Not Found 1.1 [Content-Length=0] cl=0 keep-alive\nDONE 0 []\n");
        check(true, NULL, "GET /a HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", true,
              "HEAD GET /a 1.1 [Content-Length=10] cl=10 keep-alive\n"
              "ERROR connection closed before the end of the body\n");

        /* A head over the limit is an error, not an allocation. */
        {
                size_t n = HTTP1_HEAD_MAX + 100;
                char *big = malloc(n + 64);
                struct log l;

                assert(big);
                strcpy(big, "GET / HTTP/1.1\r\nX: ");
                memset(big + strlen(big), 'a', n);
                strcpy(big + n, "\r\n\r\nGET /after HTTP/1.1\r\n\r\n");
                run(true, NULL, big, strlen(big), 0, false, &l);
                assert(strstr(l.text, "ERROR message head too large"));
                assert(strstr(l.text, "HEAD GET /after"));
                free(big);
        }

        /* A gap abandons the message in progress; the next one is found. */
        {
                static struct http1_parser p;
                static struct log l;
                const char *a = "POST /x HTTP/1.1\r\nContent-Length: 100\r\n\r\npart";
                const char *b = "tail of the lost body\r\nGET /y HTTP/1.1\r\n\r\n";

                http1_init(&p, true, &cbs, &l);
                http1_feed(&p, (const uint8_t *)a, strlen(a));
                http1_gap(&p);
                http1_feed(&p, (const uint8_t *)b, strlen(b));
                assert(strstr(l.text, "ERROR bytes missing from the stream\n"
                                      "HEAD GET /y 1.1 cl=-1 keep-alive\nDONE 0 []\n"));
                http1_done(&p);
        }

        /* Random bytes: no crash, only errors. */
        {
                static struct http1_parser p;
                static struct log l;
                uint8_t junk[4096];

                srand(3);
                for (int round = 0; round < 200; round++) {
                        for (size_t i = 0; i < sizeof(junk); i++)
                                junk[i] = (uint8_t)(rand() % 4 == 0 ? '\n' : rand());
                        memset(&l, 0, sizeof(l));
                        http1_init(&p, round & 1, &cbs, &l);
                        http1_feed(&p, junk, sizeof(junk));
                        http1_close(&p);
                        http1_done(&p);
                }
        }
        printf("http1: ok\n");
        return 0;
}
