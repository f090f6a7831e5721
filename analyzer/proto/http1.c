/* Incremental HTTP/1.x parsing; see http1.h. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http1.h"

#define CONTENT_LENGTH_MAX (1ull << 50)

void http1_init(struct http1_parser *p, bool request, const struct http1_callbacks *cb,
                void *userdata)
{
        memset(p, 0, sizeof(*p));
        p->request = request;
        p->cb = cb;
        p->userdata = userdata;
        p->state = HTTP1_START;
}

void http1_done(struct http1_parser *p)
{
        free(p->head);
        p->head = NULL;
        p->head_cap = 0;
}

/* Room for n more head bytes (and the NUL); false when the head would be too large. */
static bool head_reserve(struct http1_parser *p, size_t n)
{
        size_t need = p->head_len + n, cap = p->head_cap ? p->head_cap : 512;
        char *h;

        if (need > HTTP1_HEAD_MAX)
                return false;
        if (need <= p->head_cap)
                return true;
        while (cap < need)
                cap *= 2;
        if (cap > HTTP1_HEAD_MAX)
                cap = HTTP1_HEAD_MAX;
        h = realloc(p->head, cap + 1);
        if (!h)
                return false;
        p->head = h;
        p->head_cap = cap;
        return true;
}

static void fail(struct http1_parser *p, const char *why)
{
        p->errors++;
        p->state = HTTP1_RESYNC;
        p->head_len = 0;
        p->line_len = 0;
        p->line_overflow = false;
        if (p->cb->on_error)
                p->cb->on_error(p->userdata, why);
}

static void complete(struct http1_parser *p)
{
        p->messages++;
        p->state = HTTP1_START;
        p->head_len = 0;
        if (p->cb->on_complete)
                p->cb->on_complete(p->userdata, p->body_bytes);
}

void http1_expect_response(struct http1_parser *p, const char *method)
{
        if (p->n_expected >= 32)
                return;
        if (method && strcmp(method, "HEAD") == 0)
                p->expect_head |= 1u << p->n_expected;
        if (method && strcmp(method, "CONNECT") == 0)
                p->expect_connect |= 1u << p->n_expected;
        p->n_expected++;
}

/* The oldest waiting request was answered: drop it from the queue. */
static void pop_expected(struct http1_parser *p, bool *ret_head, bool *ret_connect)
{
        *ret_head = p->n_expected > 0 && (p->expect_head & 1);
        *ret_connect = p->n_expected > 0 && (p->expect_connect & 1);
        if (p->n_expected > 0) {
                p->expect_head >>= 1;
                p->expect_connect >>= 1;
                p->n_expected--;
        }
}

static bool is_tchar(int c)
{
        return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* "HTTP/1.x" at s: the minor version, or -1. */
static int http_version(const char *s)
{
        if (strncmp(s, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)s[7]))
                return -1;
        return s[7] - '0';
}

/* Does this line (without its line end) look like the first line of a message? */
static bool looks_like_start(const struct http1_parser *p, const char *line, size_t n)
{
        size_t i = 0;

        if (!p->request)
                return n >= 12 && http_version(line) >= 0 && line[8] == ' ' &&
                       isdigit((unsigned char)line[9]) && isdigit((unsigned char)line[10]) &&
                       isdigit((unsigned char)line[11]);
        while (i < n && i < 16 && isupper((unsigned char)line[i]))
                i++;
        if (i < 3 || i >= n || line[i] != ' ')
                return false;
        /* ... " HTTP/1.x" at the end */
        return n >= i + 11 && line[n - 9] == ' ' && http_version(line + n - 8) >= 0;
}

static bool parse_length(const char *v, uint64_t *ret)
{
        uint64_t x = 0;

        if (!*v)
                return false;
        for (; *v; v++) {
                if (!isdigit((unsigned char)*v))
                        return false;
                x = x * 10 + (uint64_t)(*v - '0');
                if (x > CONTENT_LENGTH_MAX)
                        return false;
        }
        *ret = x;
        return true;
}

/* Does a comma-separated header value list contain this token (case-insensitive)? */
static bool has_token(const char *v, const char *token)
{
        size_t n = strlen(token);

        while (*v) {
                while (*v == ' ' || *v == '\t' || *v == ',')
                        v++;
                if (strncasecmp(v, token, n) == 0 &&
                    (v[n] == '\0' || v[n] == ',' || v[n] == ' ' || v[n] == '\t' || v[n] == ';'))
                        return true;
                while (*v && *v != ',')
                        v++;
        }
        return false;
}

/* Splits the next line off *s (NUL-terminating it, dropping \r); NULL at the end. */
static char *next_line(char **s)
{
        char *line = *s, *nl;

        if (!line || !*line)
                return NULL;
        nl = strchr(line, '\n');
        if (nl) {
                *nl = '\0';
                *s = nl + 1;
        } else {
                *s = line + strlen(line);
        }
        if (nl && nl > line && nl[-1] == '\r')
                nl[-1] = '\0';
        return line;
}

static const char *parse_start_line(struct http1_parser *p, char *line, struct http1_head *h)
{
        char *sp1, *sp2;

        if (p->request) {
                sp1 = strchr(line, ' ');
                if (!sp1 || sp1 == line || sp1 - line > 15)
                        return "bad request line";
                *sp1 = '\0';
                for (char *c = line; *c; c++)
                        if (!is_tchar((unsigned char)*c))
                                return "bad method";
                sp2 = strrchr(sp1 + 1, ' ');
                if (!sp2 || sp2 == sp1 + 1)
                        return "bad request line";
                *sp2 = '\0';
                h->method = line;
                h->target = sp1 + 1;
                if (strchr(h->target, ' '))
                        return "bad request target";
                h->version_minor = http_version(sp2 + 1);
                if (h->version_minor < 0 || sp2[9] != '\0')
                        return "bad HTTP version";
                return NULL;
        }
        h->version_minor = http_version(line);
        if (h->version_minor < 0 || line[8] != ' ')
                return "bad status line";
        if (!isdigit((unsigned char)line[9]) || !isdigit((unsigned char)line[10]) ||
            !isdigit((unsigned char)line[11]) || (line[12] != ' ' && line[12] != '\0'))
                return "bad status code";
        h->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
        if (h->status < 100)
                return "bad status code";
        h->reason = line[12] ? line + 13 : "";
        return NULL;
}

static const char *parse_headers(char **rest, struct http1_head *h, bool *te, bool *cl_seen,
                                 uint64_t *cl)
{
        bool close = false, keep = false;
        char *line;

        while ((line = next_line(rest)) && *line) {
                char *colon, *v, *end;

                if (*line == ' ' || *line == '\t')
                        continue; /* obsolete line folding: the continuation is not kept */
                colon = strchr(line, ':');
                if (!colon || colon == line)
                        return "bad header line";
                for (char *c = line; c < colon; c++)
                        if (!is_tchar((unsigned char)*c))
                                return "bad header name";
                *colon = '\0';
                v = colon + 1;
                while (*v == ' ' || *v == '\t')
                        v++;
                end = v + strlen(v);
                while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
                        *--end = '\0';
                if (h->n_headers < HTTP1_HEADERS_MAX) {
                        h->headers[h->n_headers].name = line;
                        h->headers[h->n_headers].value = v;
                        h->n_headers++;
                } else {
                        h->headers_truncated = true;
                }
                if (strcasecmp(line, "content-length") == 0) {
                        uint64_t x;

                        if (!parse_length(v, &x) || (*cl_seen && x != *cl))
                                return "bad Content-Length";
                        *cl_seen = true;
                        *cl = x;
                } else if (strcasecmp(line, "transfer-encoding") == 0) {
                        *te = true;
                        if (has_token(v, "chunked"))
                                h->chunked = true;
                } else if (strcasecmp(line, "connection") == 0) {
                        close |= has_token(v, "close");
                        keep |= has_token(v, "keep-alive");
                }
        }
        h->keep_alive = h->version_minor >= 1 ? !close : keep;
        return NULL;
}

/* The head is complete in p->head: parse it, announce it, and pick the body's framing. */
static void head_done(struct http1_parser *p)
{
        struct http1_head h = { .request = p->request, .content_length = -1 };
        char *rest = p->head, *line;
        bool te = false, cl_seen = false, was_head = false, was_connect = false;
        uint64_t cl = 0;
        const char *why;

        p->head[p->head_len] = '\0';
        line = next_line(&rest);
        if (!line) {
                fail(p, "empty message head");
                return;
        }
        why = parse_start_line(p, line, &h);
        if (!why)
                why = parse_headers(&rest, &h, &te, &cl_seen, &cl);
        if (!why && p->request && te && !h.chunked)
                why = "request Transfer-Encoding without chunked";
        if (why) {
                fail(p, why);
                return;
        }
        if (cl_seen)
                h.content_length = (int64_t)cl;
        p->body_bytes = 0;
        p->body = HTTP1_BODY_NONE;
        if (p->request) {
                if (h.chunked)
                        p->body = HTTP1_BODY_CHUNKED;
                else if (cl_seen && cl > 0)
                        p->body = HTTP1_BODY_LENGTH;
        } else {
                if (h.status >= 100 && h.status < 200 && h.status != 101) {
                        h.interim = true; /* the final response to the same request follows */
                } else {
                        pop_expected(p, &was_head, &was_connect);
                        if (h.status == 101 || (was_connect && h.status < 300))
                                h.upgrade = true;
                        else if (was_head || h.status == 204 || h.status == 304)
                                p->body = HTTP1_BODY_NONE;
                        else if (h.chunked)
                                p->body = HTTP1_BODY_CHUNKED;
                        else if (te)
                                p->body = HTTP1_BODY_UNTIL_CLOSE;
                        else if (cl_seen)
                                p->body = cl > 0 ? HTTP1_BODY_LENGTH : HTTP1_BODY_NONE;
                        else
                                p->body = HTTP1_BODY_UNTIL_CLOSE;
                }
        }
        if (p->request && h.method && strcasecmp(h.method, "CONNECT") == 0)
                p->body = HTTP1_BODY_NONE;
        if (p->cb->on_head)
                p->cb->on_head(p->userdata, &h);
        p->head_len = 0;
        if (h.upgrade) {
                complete(p);
                p->state = HTTP1_UPGRADED;
                if (p->cb->on_upgrade)
                        p->cb->on_upgrade(p->userdata);
                return;
        }
        switch (p->body) {
        case HTTP1_BODY_NONE:
                complete(p);
                break;
        case HTTP1_BODY_LENGTH:
                p->remaining = cl;
                p->state = HTTP1_BODY;
                break;
        case HTTP1_BODY_UNTIL_CLOSE:
                p->state = HTTP1_BODY;
                break;
        case HTTP1_BODY_CHUNKED:
                p->state = HTTP1_CHUNK_SIZE;
                p->line_len = 0;
                p->line_overflow = false;
                break;
        }
}

/*
 * Collects a short line (chunk size, chunk end, trailer, resync candidate) into p->line.
 * Returns the bytes consumed; *ret_done when the line end was reached.
 */
static size_t take_line(struct http1_parser *p, const uint8_t *data, size_t n, bool *ret_done)
{
        const uint8_t *nl = memchr(data, '\n', n);
        size_t take = nl ? (size_t)(nl - data) + 1 : n;
        size_t room = sizeof(p->line) - 1 - p->line_len;
        size_t copy = take < room ? take : room;

        memcpy(p->line + p->line_len, data, copy);
        p->line_len += copy;
        if (copy < take)
                p->line_overflow = true;
        *ret_done = nl != NULL;
        return take;
}

/* The collected line without its line end, NUL-terminated; its length in *ret_n. */
static char *line_text(struct http1_parser *p, size_t *ret_n)
{
        size_t n = p->line_len;

        if (n > 0 && p->line[n - 1] == '\n')
                n--;
        if (n > 0 && p->line[n - 1] == '\r')
                n--;
        p->line[n] = '\0';
        *ret_n = n;
        return p->line;
}

static void body_bytes(struct http1_parser *p, const uint8_t *data, size_t n)
{
        p->body_bytes += n;
        if (p->cb->on_body && n > 0)
                p->cb->on_body(p->userdata, data, n);
}

/* Passes on body bytes up to p->remaining; returns how many of n were taken. */
static size_t take_remaining(struct http1_parser *p, const uint8_t *data, size_t n)
{
        size_t used = n < p->remaining ? n : (size_t)p->remaining;

        body_bytes(p, data, used);
        p->remaining -= used;
        return used;
}

void http1_feed(struct http1_parser *p, const uint8_t *data, size_t n)
{
        while (n > 0) {
                size_t used = 0, k;
                bool done;

                switch (p->state) {
                case HTTP1_START:
                        if (*data == '\r' || *data == '\n') {
                                used = 1;
                                break;
                        }
                        p->state = HTTP1_HEAD;
                        p->head_len = 0;
                        continue;
                case HTTP1_HEAD: {
                        const uint8_t *nl = memchr(data, '\n', n);
                        size_t line_start = p->head_len;

                        used = nl ? (size_t)(nl - data) + 1 : n;
                        if (!head_reserve(p, used)) {
                                fail(p, "message head too large");
                                break;
                        }
                        memcpy(p->head + p->head_len, data, used);
                        p->head_len += used;
                        if (!nl)
                                break;
                        /* Find where this line began: after the previous '\n' in the head. */
                        while (line_start > 0 && p->head[line_start - 1] != '\n')
                                line_start--;
                        k = p->head_len - line_start; /* this line, with its line end */
                        if (line_start > 0 && (k == 1 || (k == 2 && p->head[line_start] == '\r')))
                                head_done(p);
                        break;
                }
                case HTTP1_BODY:
                        if (p->body == HTTP1_BODY_UNTIL_CLOSE) {
                                used = n;
                                body_bytes(p, data, n);
                                break;
                        }
                        used = take_remaining(p, data, n);
                        if (p->remaining == 0)
                                complete(p);
                        break;
                case HTTP1_CHUNK_SIZE: {
                        uint64_t size = 0;
                        size_t len;
                        char *s;
                        int digits = 0;

                        used = take_line(p, data, n, &done);
                        if (!done)
                                break;
                        s = line_text(p, &len);
                        for (; isxdigit((unsigned char)*s); s++, digits++) {
                                int d = isdigit((unsigned char)*s) ? *s - '0'
                                                                   : (tolower(*s) - 'a' + 10);

                                size = size * 16 + (uint64_t)d;
                                if (size > CONTENT_LENGTH_MAX)
                                        break;
                        }
                        p->line_len = 0;
                        if (digits == 0 || size > CONTENT_LENGTH_MAX ||
                            (*s && *s != ';' && *s != ' ' && *s != '\t')) {
                                fail(p, "bad chunk size");
                                break;
                        }
                        if (size == 0) {
                                p->state = HTTP1_TRAILERS;
                        } else {
                                p->remaining = size;
                                p->state = HTTP1_CHUNK_DATA;
                        }
                        break;
                }
                case HTTP1_CHUNK_DATA:
                        used = take_remaining(p, data, n);
                        if (p->remaining == 0) {
                                p->state = HTTP1_CHUNK_DATA_END;
                                p->line_len = 0;
                        }
                        break;
                case HTTP1_CHUNK_DATA_END: {
                        size_t len;

                        used = take_line(p, data, n, &done);
                        if (!done)
                                break;
                        (void)line_text(p, &len);
                        p->line_len = 0;
                        if (len != 0 || p->line_overflow) {
                                fail(p, "chunk data longer than its size");
                                break;
                        }
                        p->state = HTTP1_CHUNK_SIZE;
                        break;
                }
                case HTTP1_TRAILERS: {
                        size_t len;

                        used = take_line(p, data, n, &done);
                        if (!done)
                                break;
                        (void)line_text(p, &len);
                        p->line_len = 0;
                        if (len == 0 && !p->line_overflow)
                                complete(p);
                        p->line_overflow = false;
                        break;
                }
                case HTTP1_RESYNC: {
                        size_t len;
                        char *l;

                        used = take_line(p, data, n, &done);
                        if (!done)
                                break;
                        l = line_text(p, &len);
                        if (!p->line_overflow && looks_like_start(p, l, len) &&
                            head_reserve(p, len + 2)) {
                                /* This line starts the next message: it becomes its head. */
                                memcpy(p->head, l, len);
                                memcpy(p->head + len, "\r\n", 2);
                                p->head_len = len + 2;
                                p->state = HTTP1_HEAD;
                        }
                        p->line_len = 0;
                        p->line_overflow = false;
                        break;
                }
                case HTTP1_UPGRADED:
                        used = n;
                        break;
                }
                data += used;
                n -= used;
        }
}

void http1_gap(struct http1_parser *p)
{
        if (p->state == HTTP1_UPGRADED)
                return;
        if (p->state == HTTP1_START || p->state == HTTP1_RESYNC) {
                p->state = HTTP1_RESYNC;
                p->line_len = 0;
                return;
        }
        fail(p, "bytes missing from the stream");
}

void http1_close(struct http1_parser *p)
{
        switch (p->state) {
        case HTTP1_BODY:
                if (p->body == HTTP1_BODY_UNTIL_CLOSE) {
                        complete(p);
                        return;
                }
                fail(p, "connection closed before the end of the body");
                return;
        case HTTP1_HEAD:
        case HTTP1_CHUNK_SIZE:
        case HTTP1_CHUNK_DATA:
        case HTTP1_CHUNK_DATA_END:
        case HTTP1_TRAILERS:
                fail(p, "connection closed in the middle of a message");
                return;
        default:
                return;
        }
}
