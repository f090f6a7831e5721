/* Live subscriptions on the control socket; see tail.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "macro.h"
#include "tail.h"

#define TAIL_PID_MAX 4194304u /* the kernel's PID_MAX_LIMIT */
#define TAIL_NOTE_MAX 80      /* the longest "dropped" line */
#define TAIL_KEEP_BYTES 65536 /* an empty queue keeps at most this much memory */
#define TAIL_MEM_KEEP TAIL_BUFFER_MAX /* a format buffer that grew past this is given back */

static const char *const kind_names[_TAIL_KIND_MAX] = {
        [TAIL_KIND_DATA] = "data",
        [TAIL_KIND_EXCHANGES] = "exchanges",
        [TAIL_KIND_CONNECTIONS] = "connections",
};

#define KIND_BIT(k) (1u << (k))
#define EXCHANGES_OFF                                                                              \
        "exchanges are off in this tlssniff: set 'exchanges = yes' in tlssniff.conf or start "    \
        "it with --exchanges"
#define DATA_DENIED                                                                                \
        "raw data (kind=data) is for root and members of the data group (tlssniff-data) only"

void tail_init(struct tail *t, int64_t realtime_offset_ns, unsigned max_print)
{
        *t = (struct tail){ .realtime_offset_ns = realtime_offset_ns, .max_print = max_print };
        for (size_t i = 0; i < ELEMENTSOF(t->sub); i++)
                t->sub[i].fd = -1;
}

void tail_set_realtime_offset(struct tail *t, int64_t realtime_offset_ns)
{
        t->realtime_offset_ns = realtime_offset_ns;
        for (size_t i = 0; i < ELEMENTSOF(t->out); i++)
                t->out[i].realtime_offset_ns = realtime_offset_ns;
}

void tail_set_redaction(struct tail *t, const struct output_redaction *redact)
{
        t->redact = redact;
        for (size_t i = 0; i < ELEMENTSOF(t->out); i++)
                t->out[i].redact = redact;
}

void tail_set_max_print(struct tail *t, unsigned max_print)
{
        t->max_print = max_print;
        for (size_t i = 0; i < ELEMENTSOF(t->out); i++)
                t->out[i].max_print = max_print;
}

/* An error message for the client: printable ASCII without quotes or backslashes. */
static int fail(char *err, size_t size, int r, const char *fmt, ...) _printf_(4, 5);
static int fail(char *err, size_t size, int r, const char *fmt, ...)
{
        va_list ap;

        if (size == 0)
                return r;
        va_start(ap, fmt);
        (void)vsnprintf(err, size, fmt, ap);
        va_end(ap);
        for (char *p = err; *p; p++)
                if (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\')
                        *p = '?';
        return r;
}

/* Untrusted text quoted in an error: at most 32 bytes of it (fail() cleans it). */
#define QUOTE_MAX 32
#define Q(s) (int)(strlen(s) > QUOTE_MAX ? QUOTE_MAX : strlen(s)), (s)

/* Decimal digits only (no sign, no spaces, no hex), in [min, max]. */
static int parse_dec(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
        uint64_t v = 0;

        if (!*s || strlen(s) > 20)
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *s - '0', &v))
                        return -ERANGE;
        }
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

static bool host_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               strchr(".-_:[]", c);
}

enum key {
        KEY_KIND,
        KEY_PID,
        KEY_COMM,
        KEY_CGROUP,
        KEY_STATUS,
        KEY_HOST,
        KEY_PATH,
        KEY_CONN,
        KEY_FORMAT,
        KEY_COUNT,
        _KEY_MAX,
};

static const struct {
        const char *name;
        bool list; /* repeated or comma-separated; else given once */
} keys[_KEY_MAX] = {
        [KEY_KIND] = { "kind", true },     [KEY_PID] = { "pid", true },
        [KEY_COMM] = { "comm", true },     [KEY_CGROUP] = { "cgroup", true },
        [KEY_STATUS] = { "status", true }, [KEY_HOST] = { "host", false },
        [KEY_PATH] = { "path", false },    [KEY_CONN] = { "conn", false },
        [KEY_FORMAT] = { "format", false }, [KEY_COUNT] = { "count", false },
};

/* One value (one item of a list) of key k into f. */
static int parse_value(struct tail_filter *f, enum key k, const char *v, bool exchanges_on,
                       bool data_allowed, char *err, size_t err_size)
{
        uint64_t n;
        size_t len = strlen(v);

        switch (k) {
        case KEY_KIND:
                if (strcmp(v, "all") == 0) {
                        /* All this client may see. */
                        f->kinds |= (data_allowed ? KIND_BIT(TAIL_KIND_DATA) : 0) |
                                    KIND_BIT(TAIL_KIND_CONNECTIONS) |
                                    (exchanges_on ? KIND_BIT(TAIL_KIND_EXCHANGES) : 0);
                        return 0;
                }
                for (unsigned i = 0; i < _TAIL_KIND_MAX; i++)
                        if (strcmp(v, kind_names[i]) == 0) {
                                if (i == TAIL_KIND_EXCHANGES && !exchanges_on)
                                        return fail(err, err_size, -EINVAL, EXCHANGES_OFF);
                                if (i == TAIL_KIND_DATA && !data_allowed)
                                        return fail(err, err_size, -EACCES, DATA_DENIED);
                                f->kinds |= KIND_BIT(i);
                                return 0;
                        }
                return fail(err, err_size, -EINVAL,
                            "kind must be data, exchanges, connections or all, not '%.*s'", Q(v));
        case KEY_PID:
                if (f->n_pids >= TAIL_PIDS_MAX)
                        return fail(err, err_size, -EINVAL, "too many pid values (at most %d)",
                                    TAIL_PIDS_MAX);
                if (parse_dec(v, 1, TAIL_PID_MAX, &n) < 0)
                        return fail(err, err_size, -EINVAL, "bad pid '%.*s'", Q(v));
                f->pids[f->n_pids++] = (uint32_t)n;
                return 0;
        case KEY_COMM:
                if (f->n_comms >= TAIL_COMMS_MAX)
                        return fail(err, err_size, -EINVAL, "too many comm values (at most %d)",
                                    TAIL_COMMS_MAX);
                if (len > TAIL_COMM_MAX)
                        return fail(err, err_size, -EINVAL,
                                    "comm '%.*s' is longer than %d characters", Q(v),
                                    TAIL_COMM_MAX);
                memcpy(f->comms[f->n_comms++], v, len + 1);
                return 0;
        case KEY_CGROUP:
                if (f->n_cgroups >= TAIL_CGROUPS_MAX)
                        return fail(err, err_size, -EINVAL, "too many cgroup values (at most %d)",
                                    TAIL_CGROUPS_MAX);
                if (parse_dec(v, 1, UINT64_MAX, &n) < 0)
                        return fail(err, err_size, -EINVAL, "bad cgroup id '%.*s'", Q(v));
                f->cgroups[f->n_cgroups++] = n;
                return 0;
        case KEY_STATUS:
                if (f->n_statuses >= TAIL_STATUSES_MAX)
                        return fail(err, err_size, -EINVAL, "too many status values (at most %d)",
                                    TAIL_STATUSES_MAX);
                if (len != 3 || v[0] < '1' || v[0] > '9' ||
                    !((v[1] >= '0' && v[1] <= '9' && v[2] >= '0' && v[2] <= '9') ||
                      (v[1] == 'x' && v[2] == 'x')))
                        return fail(err, err_size, -EINVAL,
                                    "status must be a code like 404 or a class like 5xx, not "
                                    "'%.*s'", Q(v));
                f->statuses[f->n_statuses++] =
                        v[1] == 'x' ? (uint16_t)(v[0] - '0')
                                    : (uint16_t)((v[0] - '0') * 100 + (v[1] - '0') * 10 +
                                                 (v[2] - '0'));
                return 0;
        case KEY_HOST:
                if (len > TAIL_HOST_MAX)
                        return fail(err, err_size, -EINVAL, "host is longer than %d bytes",
                                    TAIL_HOST_MAX);
                for (const char *p = v; *p; p++)
                        if (!host_char(*p))
                                return fail(err, err_size, -EINVAL, "bad character in host '%.*s'",
                                            Q(v));
                memcpy(f->host, v, len + 1);
                return 0;
        case KEY_PATH:
                if (v[0] != '/')
                        return fail(err, err_size, -EINVAL, "path must start with /");
                if (len > TAIL_PATH_MAX)
                        return fail(err, err_size, -EINVAL, "path is longer than %d bytes",
                                    TAIL_PATH_MAX);
                memcpy(f->path, v, len + 1);
                return 0;
        case KEY_CONN:
                if (parse_dec(v, 0, UINT64_MAX, &f->conn_id) < 0)
                        return fail(err, err_size, -EINVAL, "bad conn id '%.*s'", Q(v));
                f->has_conn = true;
                return 0;
        case KEY_FORMAT:
                if (strcmp(v, "json") != 0 && strcmp(v, "text") != 0)
                        return fail(err, err_size, -EINVAL, "format must be json or text");
                f->json = v[0] == 'j';
                return 0;
        case KEY_COUNT:
                if (parse_dec(v, 1, TAIL_COUNT_MAX, &f->count) < 0)
                        return fail(err, err_size, -EINVAL, "count must be a number from 1 to %u",
                                    TAIL_COUNT_MAX);
                return 0;
        default:
                return fail(err, err_size, -EINVAL, "unknown key");
        }
}

int tail_filter_parse(const char *args, bool exchanges_on, struct tail_filter *ret, char *err,
                      size_t err_size)
{
        return tail_filter_parse_access(args, exchanges_on, true, ret, err, err_size);
}

int tail_filter_parse_access(const char *args, bool exchanges_on, bool data_allowed,
                             struct tail_filter *ret, char *err, size_t err_size)
{
        struct tail_filter f = {};
        char buf[TAIL_ARGS_MAX + 1];
        bool seen[_KEY_MAX] = {}, kinds_given;
        size_t n = strnlen(args, TAIL_ARGS_MAX + 2);
        char *tok, *next;
        int r;

        if (n > 0 && args[n - 1] == '\n')
                n--;
        if (n > TAIL_ARGS_MAX)
                return fail(err, err_size, -EINVAL, "request too long (at most %d bytes)",
                            TAIL_REQUEST_MAX);
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)args[i] < 0x20 || (unsigned char)args[i] >= 0x7f)
                        return fail(err, err_size, -EINVAL,
                                    "control character or non-ASCII byte in request");
        memcpy(buf, args, n);
        buf[n] = '\0';

        /* Tokens are separated by exactly one space; none is empty. */
        for (tok = n ? buf : NULL; tok; tok = next) {
                char *eq, *value, *item, *item_next;
                enum key k;

                next = strchr(tok, ' ');
                if (next)
                        *next++ = '\0';
                if (!*tok || (next && !*next))
                        return fail(err, err_size, -EINVAL,
                                    "empty token: key=value pairs are separated by one space");
                eq = strchr(tok, '=');
                if (!eq)
                        return fail(err, err_size, -EINVAL, "expected key=value, got '%.*s'",
                                    Q(tok));
                *eq = '\0';
                value = eq + 1;
                for (k = 0; k < _KEY_MAX; k++)
                        if (strcmp(tok, keys[k].name) == 0)
                                break;
                if (k == _KEY_MAX)
                        return fail(err, err_size, -EINVAL, "unknown key '%.*s'", Q(tok));
                if (!*value)
                        return fail(err, err_size, -EINVAL, "empty value for %s", keys[k].name);
                if (seen[k] && !keys[k].list)
                        return fail(err, err_size, -EINVAL, "%s given more than once",
                                    keys[k].name);
                seen[k] = true;
                if (!keys[k].list) {
                        r = parse_value(&f, k, value, exchanges_on, data_allowed, err,
                                        err_size);
                        if (r < 0)
                                return r;
                        continue;
                }
                for (item = value; item; item = item_next) {
                        item_next = strchr(item, ',');
                        if (item_next)
                                *item_next++ = '\0';
                        if (!*item || (item_next && !*item_next))
                                return fail(err, err_size, -EINVAL, "empty item in the %s list",
                                            keys[k].name);
                        r = parse_value(&f, k, item, exchanges_on, data_allowed, err,
                                        err_size);
                        if (r < 0)
                                return r;
                }
        }

        kinds_given = seen[KEY_KIND];
        if (f.host[0] || f.path[0] || f.n_statuses > 0) {
                /* They describe exchanges only: with other kinds they would select nothing. */
                if (!exchanges_on)
                        return fail(err, err_size, -EINVAL,
                                    "host, path and status need exchanges; " EXCHANGES_OFF);
                if (kinds_given && f.kinds != KIND_BIT(TAIL_KIND_EXCHANGES))
                        return fail(err, err_size, -EINVAL,
                                    "host, path and status select exchanges: use them with "
                                    "kind=exchanges");
                f.kinds = KIND_BIT(TAIL_KIND_EXCHANGES);
        } else if (!kinds_given) {
                f.kinds = (data_allowed ? KIND_BIT(TAIL_KIND_DATA) : 0) |
                          KIND_BIT(TAIL_KIND_CONNECTIONS) |
                          (exchanges_on ? KIND_BIT(TAIL_KIND_EXCHANGES) : 0);
        }
        *ret = f;
        return 0;
}

/* Appends to buf (size), never past its end; *len counts what would have been written. */
static void put(char *buf, size_t size, size_t *len, const char *fmt, ...) _printf_(4, 5);
static void put(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
        va_list ap;
        int k;

        va_start(ap, fmt);
        k = vsnprintf(*len < size ? buf + *len : NULL, *len < size ? size - *len : 0, fmt, ap);
        va_end(ap);
        if (k > 0)
                *len += (size_t)k;
}

static void put_status(char *buf, size_t size, size_t *len, uint16_t s)
{
        if (s < 10)
                put(buf, size, len, "%uxx", s);
        else
                put(buf, size, len, "%u", s);
}

int tail_filter_format(const struct tail_filter *f, char *buf, size_t size)
{
        size_t len = 0;
        const char *sep = "";

        put(buf, size, &len, "kind=");
        for (unsigned i = 0; i < _TAIL_KIND_MAX; i++)
                if (f->kinds & KIND_BIT(i)) {
                        put(buf, size, &len, "%s%s", sep, kind_names[i]);
                        sep = ",";
                }
        for (unsigned i = 0; i < f->n_pids; i++)
                put(buf, size, &len, "%s%u", i ? "," : " pid=", f->pids[i]);
        for (unsigned i = 0; i < f->n_comms; i++)
                put(buf, size, &len, "%s%s", i ? "," : " comm=", f->comms[i]);
        for (unsigned i = 0; i < f->n_cgroups; i++)
                put(buf, size, &len, "%s%llu", i ? "," : " cgroup=",
                    (unsigned long long)f->cgroups[i]);
        for (unsigned i = 0; i < f->n_statuses; i++) {
                put(buf, size, &len, "%s", i ? "," : " status=");
                put_status(buf, size, &len, f->statuses[i]);
        }
        if (f->host[0])
                put(buf, size, &len, " host=%s", f->host);
        if (f->path[0])
                put(buf, size, &len, " path=%s", f->path);
        if (f->has_conn)
                put(buf, size, &len, " conn=%llu", (unsigned long long)f->conn_id);
        put(buf, size, &len, " format=%s", f->json ? "json" : "text");
        if (f->count)
                put(buf, size, &len, " count=%llu", (unsigned long long)f->count);
        return len < size ? 0 : -ENOBUFS;
}

/* A JSON string of checked request bytes (printable ASCII): only " and \ need escaping. */
static void put_json_string(char *buf, size_t size, size_t *len, const char *s)
{
        put(buf, size, len, "\"");
        for (; *s; s++)
                put(buf, size, len, *s == '"' || *s == '\\' ? "\\%c" : "%c", *s);
        put(buf, size, len, "\"");
}

int tail_filter_echo(const struct tail_filter *f, char *buf, size_t size)
{
        size_t len = 0;
        const char *sep = "";

        put(buf, size, &len, "{\"ok\":true,\"tail\":{\"kinds\":[");
        for (unsigned i = 0; i < _TAIL_KIND_MAX; i++)
                if (f->kinds & KIND_BIT(i)) {
                        put(buf, size, &len, "%s\"%s\"", sep, kind_names[i]);
                        sep = ",";
                }
        put(buf, size, &len, "],\"pids\":[");
        for (unsigned i = 0; i < f->n_pids; i++)
                put(buf, size, &len, "%s%u", i ? "," : "", f->pids[i]);
        put(buf, size, &len, "],\"comms\":[");
        for (unsigned i = 0; i < f->n_comms; i++) {
                put(buf, size, &len, "%s", i ? "," : "");
                put_json_string(buf, size, &len, f->comms[i]);
        }
        put(buf, size, &len, "],\"cgroups\":[");
        for (unsigned i = 0; i < f->n_cgroups; i++)
                put(buf, size, &len, "%s%llu", i ? "," : "", (unsigned long long)f->cgroups[i]);
        put(buf, size, &len, "],\"host\":");
        if (f->host[0])
                put_json_string(buf, size, &len, f->host);
        else
                put(buf, size, &len, "null");
        put(buf, size, &len, ",\"path\":");
        if (f->path[0])
                put_json_string(buf, size, &len, f->path);
        else
                put(buf, size, &len, "null");
        put(buf, size, &len, ",\"status\":[");
        for (unsigned i = 0; i < f->n_statuses; i++) {
                put(buf, size, &len, "%s\"", i ? "," : "");
                put_status(buf, size, &len, f->statuses[i]);
                put(buf, size, &len, "\"");
        }
        put(buf, size, &len, "],\"conn\":");
        if (f->has_conn)
                put(buf, size, &len, "%llu", (unsigned long long)f->conn_id);
        else
                put(buf, size, &len, "null");
        put(buf, size, &len, ",\"format\":\"%s\",\"count\":", f->json ? "json" : "text");
        if (f->count)
                put(buf, size, &len, "%llu", (unsigned long long)f->count);
        else
                put(buf, size, &len, "null");
        put(buf, size, &len, "}}\n");
        return len < size ? 0 : -ENOBUFS;
}

/* Subscribers: queues, writing, removal. */

static bool active(const struct tail_subscriber *s)
{
        return s->fd >= 0 && !s->finishing;
}

static void update_wants(struct tail *t)
{
        memset(t->wants, 0, sizeof(t->wants));
        for (size_t i = 0; i < ELEMENTSOF(t->sub); i++)
                for (unsigned k = 0; k < _TAIL_KIND_MAX; k++)
                        if (active(&t->sub[i]) && (t->sub[i].f.kinds & KIND_BIT(k)))
                                t->wants[k]++;
}

bool tail_wants(const struct tail *t, enum tail_kind k)
{
        return (unsigned)k < _TAIL_KIND_MAX && t->wants[k] > 0;
}

static void remove_subscriber(struct tail *t, struct tail_subscriber *s)
{
        safe_close(s->fd);
        free(s->buf);
        *s = (struct tail_subscriber){ .fd = -1 };
        t->n--;
        update_wants(t);
}

/* Room for more bytes after the queued ones; the queue stays within TAIL_BUFFER_MAX. */
static int queue_reserve(struct tail_subscriber *s, size_t more)
{
        size_t want;
        uint8_t *p;

        if (s->len + more > TAIL_BUFFER_MAX)
                return -ENOBUFS;
        if (s->start + s->len + more <= s->cap)
                return 0;
        if (s->start > 0) {
                memmove(s->buf, s->buf + s->start, s->len);
                s->start = 0;
                if (s->len + more <= s->cap)
                        return 0;
        }
        want = s->cap ? 2 * s->cap : 4096;
        if (want < s->len + more)
                want = s->len + more;
        if (want > TAIL_BUFFER_MAX)
                want = TAIL_BUFFER_MAX;
        p = realloc(s->buf, want);
        if (!p)
                return -ENOMEM;
        s->buf = p;
        s->cap = want;
        return 0;
}

static void queue_put(struct tail_subscriber *s, const void *data, size_t n)
{
        memcpy(s->buf + s->start + s->len, data, n);
        s->len += n;
}

static size_t dropped_note(const struct tail_subscriber *s, char *buf, size_t size)
{
        int k = snprintf(buf, size,
                         s->f.json ? "{\"type\":\"dropped\",\"records\":%llu}\n"
                                   : "-- %llu records dropped (reader too slow) --\n",
                         (unsigned long long)s->dropped);

        return k > 0 && (size_t)k < size ? (size_t)k : 0;
}

/* The "dropped" line, once the queue is down to half: room again, and not a line per record.
 * true when it was queued. */
static bool queue_note(struct tail_subscriber *s)
{
        char note[TAIL_NOTE_MAX];
        size_t nl;

        if (s->dropped == 0 || s->finishing || s->len > TAIL_BUFFER_MAX / 2)
                return false;
        nl = dropped_note(s, note, sizeof(note));
        if (nl == 0 || queue_reserve(s, nl) < 0)
                return false;
        queue_put(s, note, nl);
        s->dropped = 0;
        return true;
}

/* Sends what the socket takes. The subscriber may be removed (closed, or finished). */
static void flush_one(struct tail *t, struct tail_subscriber *s)
{
        /* A second round sends the "dropped" line the first one made room for. */
        for (int round = 0; round < 2; round++) {
                while (s->len > 0) {
                        ssize_t k = send(s->fd, s->buf + s->start, s->len,
                                         MSG_NOSIGNAL | MSG_DONTWAIT);

                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                                break;
                        if (k <= 0) {
                                remove_subscriber(t, s);
                                return;
                        }
                        s->start += (size_t)k;
                        s->len -= (size_t)k;
                }
                if (s->len == 0) {
                        s->start = 0;
                        if (s->cap > TAIL_KEEP_BYTES) {
                                free(s->buf);
                                s->buf = NULL;
                                s->cap = 0;
                        }
                }
                if (round > 0 || !queue_note(s))
                        break;
        }
        if (s->finishing && s->len == 0)
                remove_subscriber(t, s);
}

static void drop(struct tail *t, struct tail_subscriber *s)
{
        s->dropped++;
        t->dropped_records++;
}

/* One formatted record for s: queued whole, with the pending "dropped" line first, or dropped. */
static void enqueue(struct tail *t, struct tail_subscriber *s, const char *data, size_t n)
{
        char note[TAIL_NOTE_MAX];
        size_t nl = s->dropped ? dropped_note(s, note, sizeof(note)) : 0;

        if (n > TAIL_BUFFER_MAX - nl || queue_reserve(s, nl + n) < 0) {
                drop(t, s);
                return;
        }
        queue_put(s, note, nl);
        queue_put(s, data, n);
        s->dropped = 0;
        if (s->f.count && --s->left == 0) {
                s->finishing = true;
                update_wants(t);
        }
        /* A busy analyzer may not poll for a while: do not wait for the queue to fill. */
        if (s->len >= TAIL_BUFFER_MAX / 2)
                flush_one(t, s);
}

int tail_add(struct tail *t, int fd, const char *args, bool exchanges_on, char *err,
             size_t err_size)
{
        return tail_add_access(t, fd, args, exchanges_on, true, err, err_size);
}

int tail_add_access(struct tail *t, int fd, const char *args, bool exchanges_on,
                    bool data_allowed, char *err, size_t err_size)
{
        struct tail_filter f;
        struct tail_subscriber *s = NULL;
        char echo[TAIL_ECHO_MAX];
        int r, fl;

        r = tail_filter_parse_access(args, exchanges_on, data_allowed, &f, err, err_size);
        if (r < 0)
                return r;
        if (t->n >= TAIL_SUBSCRIBERS_MAX)
                return fail(err, err_size, -E2BIG, "too many subscribers (at most %d)",
                            TAIL_SUBSCRIBERS_MAX);
        /* Accepted nonblocking by the control server; F_SETFL only for one that is not. */
        fl = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
        if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
                return fail(err, err_size, -EINVAL, "bad file descriptor");
        r = tail_filter_echo(&f, echo, sizeof(echo));
        if (r < 0)
                return fail(err, err_size, -EINVAL, "filter too large to echo");
        for (size_t i = 0; i < ELEMENTSOF(t->sub); i++)
                if (t->sub[i].fd < 0) {
                        s = &t->sub[i];
                        break;
                }
        if (!s)
                return fail(err, err_size, -E2BIG, "too many subscribers (at most %d)",
                            TAIL_SUBSCRIBERS_MAX);
        *s = (struct tail_subscriber){ .fd = fd, .f = f, .left = f.count };
        if (queue_reserve(s, strlen(echo)) < 0) {
                *s = (struct tail_subscriber){ .fd = -1 };
                return fail(err, err_size, -ENOMEM, "out of memory");
        }
        queue_put(s, echo, strlen(echo));
        t->n++;
        t->subscribers_total++;
        update_wants(t);
        flush_one(t, s); /* may find the client gone already: the fd is ours either way */
        return 0;
}

/* Records: matched per subscriber, formatted once per format. */

struct record {
        enum tail_kind kind;
        const struct message *m;
        uint8_t role;
        enum role_source rs;
        const struct conn_entry *c; /* may be NULL for data */
        const struct exchange *x;
        bool show_secrets;
        const char *event;
        uint64_t ts_ns;
};

static bool comm_is(const char *want, const char comm[TLSSNIFF_COMM_LEN])
{
        size_t n = strnlen(comm, TLSSNIFF_COMM_LEN);

        return strlen(want) == n && memcmp(want, comm, n) == 0;
}

/* host against an authority: whole, or without the authority's port (and IPv6 brackets). */
static bool host_is(const char *host, const char *authority)
{
        const char *end, *colon;
        size_t n = strlen(host);

        if (strcasecmp(host, authority) == 0)
                return true;
        if (authority[0] == '[') {
                end = strchr(authority, ']');
                if (!end)
                        return false;
                if ((size_t)(end + 1 - authority) == n &&
                    strncasecmp(host, authority, n) == 0)
                        return true; /* "[::1]" */
                return (size_t)(end - authority - 1) == n &&
                       strncasecmp(host, authority + 1, n) == 0; /* "::1" */
        }
        colon = strchr(authority, ':');
        if (!colon || strchr(colon + 1, ':'))
                return false; /* no port, or a bare IPv6 address */
        return (size_t)(colon - authority) == n && strncasecmp(host, authority, n) == 0;
}

static bool status_is(const struct tail_filter *f, int status)
{
        if (status < 100 || status > 999)
                return false;
        for (unsigned i = 0; i < f->n_statuses; i++)
                if (f->statuses[i] == status || f->statuses[i] == status / 100)
                        return true;
        return false;
}

static bool matches(const struct tail_filter *f, const struct record *r)
{
        const struct tlssniff_data_record *h = r->m ? &r->m->hdr : &r->c->id;
        uint64_t conn_id = r->m ? h->conn_id : r->c->conn_id;
        bool ok;

        if (!(f->kinds & KIND_BIT(r->kind)))
                return false;
        if (f->has_conn && conn_id != f->conn_id)
                return false;
        if (f->n_pids > 0) {
                ok = false;
                for (unsigned i = 0; i < f->n_pids && !ok; i++)
                        ok = f->pids[i] == h->pid;
                if (!ok)
                        return false;
        }
        if (f->n_comms > 0) {
                ok = false;
                for (unsigned i = 0; i < f->n_comms && !ok; i++)
                        ok = comm_is(f->comms[i], h->comm);
                if (!ok)
                        return false;
        }
        if (f->n_cgroups > 0) {
                ok = false;
                for (unsigned i = 0; i < f->n_cgroups && r->c && !ok; i++)
                        ok = f->cgroups[i] == r->c->cgroup_id;
                if (!ok)
                        return false;
        }
        if (r->kind != TAIL_KIND_EXCHANGES)
                return true;
        if (f->host[0] && !host_is(f->host, r->x->authority))
                return false;
        if (f->path[0] && strncmp(r->x->target, f->path, strlen(f->path)) != 0)
                return false;
        if (f->n_statuses > 0 && !status_is(f, r->x->status))
                return false;
        return true;
}

/* Fewer bytes than the record can take in that format: a record that cannot fit anyone's
 * queue is dropped without being formatted. */
static size_t lower_bound(const struct tail *t, bool json, const struct record *r)
{
        if (r->kind != TAIL_KIND_DATA)
                return 0;
        if (json)
                return 4 * (((size_t)r->m->length + 2) / 3);
        return r->m->length < t->max_print ? r->m->length : t->max_print;
}

static FILE *mem_open(struct tail *t, bool json)
{
        if (!t->mem[json]) {
                t->mem[json] = open_memstream(&t->mem_buf[json], &t->mem_size[json]);
                if (!t->mem[json])
                        return NULL;
                output_init(&t->out[json], t->mem[json], json, t->max_print);
                t->out[json].realtime_offset_ns = t->realtime_offset_ns;
                t->out[json].redact = t->redact;
        }
        return t->mem[json];
}

static void mem_close(struct tail *t, bool json)
{
        if (t->mem[json])
                fclose(t->mem[json]);
        free(t->mem_buf[json]);
        output_done(&t->out[json]);
        t->mem[json] = NULL;
        t->mem_buf[json] = NULL;
        t->mem_size[json] = 0;
}

/* The record as output.c writes it; *ret points into t's buffer until the next call. */
static int format(struct tail *t, bool json, const struct record *r, const char **ret,
                  size_t *ret_len)
{
        struct output *o = &t->out[json];
        FILE *f = mem_open(t, json);
        off_t pos;
        int k;

        if (!f)
                return -ENOMEM;
        clearerr(f);
        if (fseeko(f, 0, SEEK_SET) < 0)
                return -EIO;
        switch (r->kind) {
        case TAIL_KIND_DATA:
                k = output_message(o, r->m, r->role, r->rs);
                break;
        case TAIL_KIND_EXCHANGES:
                k = output_exchange(o, r->c, r->x, r->show_secrets);
                break;
        default:
                k = strcmp(r->event, "open") == 0 ? output_connection_open(o, r->c, r->ts_ns)
                                                  : output_connection(o, r->c, r->event);
                break;
        }
        if (fflush(f) != 0 || k < 0 || ferror(f))
                return -ENOMEM;
        pos = ftello(f);
        if (pos <= 0)
                return -EIO;
        *ret = t->mem_buf[json];
        *ret_len = (size_t)pos;
        return 0;
}

static void deliver(struct tail *t, const struct record *r)
{
        unsigned match = 0;
        size_t room[2] = {}; /* the most any matching subscriber can take, per format */
        bool any[2] = {};

        for (size_t i = 0; i < ELEMENTSOF(t->sub); i++) {
                const struct tail_subscriber *s = &t->sub[i];
                size_t free_bytes;

                if (!active(s) || !matches(&s->f, r))
                        continue;
                match |= 1u << i;
                any[s->f.json] = true;
                free_bytes = TAIL_BUFFER_MAX - s->len; /* len <= TAIL_BUFFER_MAX */
                if (s->dropped)
                        free_bytes = free_bytes > TAIL_NOTE_MAX ? free_bytes - TAIL_NOTE_MAX : 0;
                if (free_bytes > room[s->f.json])
                        room[s->f.json] = free_bytes;
        }
        for (int json = 0; json < 2; json++) {
                const char *data = NULL;
                size_t n = 0;
                bool formatted;

                if (!any[json])
                        continue;
                formatted = lower_bound(t, json, r) <= room[json] &&
                            format(t, json, r, &data, &n) == 0;
                if (!formatted && lower_bound(t, json, r) <= room[json])
                        t->format_errors++;
                for (size_t i = 0; i < ELEMENTSOF(t->sub); i++) {
                        struct tail_subscriber *s = &t->sub[i];

                        if (!(match & (1u << i)) || s->fd < 0 || s->f.json != json)
                                continue;
                        if (formatted)
                                enqueue(t, s, data, n);
                        else
                                drop(t, s);
                }
                if (t->mem_size[json] > TAIL_MEM_KEEP || t->out[json].b64_cap > TAIL_MEM_KEEP)
                        mem_close(t, json);
        }
}

void tail_message(struct tail *t, const struct message *m, uint8_t role, enum role_source rs,
                  const struct conn_entry *c)
{
        struct record r = { .kind = TAIL_KIND_DATA, .m = m, .role = role, .rs = rs, .c = c };

        if (tail_wants(t, TAIL_KIND_DATA))
                deliver(t, &r);
}

void tail_exchange(struct tail *t, const struct conn_entry *c, const struct exchange *x,
                   bool show_secrets)
{
        struct record r = { .kind = TAIL_KIND_EXCHANGES, .c = c, .x = x,
                            .show_secrets = show_secrets };

        if (tail_wants(t, TAIL_KIND_EXCHANGES))
                deliver(t, &r);
}

void tail_connection(struct tail *t, const struct conn_entry *c, const char *event,
                     uint64_t ts_ns)
{
        struct record r = { .kind = TAIL_KIND_CONNECTIONS, .c = c, .event = event,
                            .ts_ns = ts_ns };

        if (tail_wants(t, TAIL_KIND_CONNECTIONS))
                deliver(t, &r);
}

int tail_pollfds(const struct tail *t, struct pollfd *p, int max)
{
        int k = 0;

        for (size_t i = 0; i < ELEMENTSOF(t->sub) && k < max && t->n > 0; i++) {
                const struct tail_subscriber *s = &t->sub[i];

                if (s->fd < 0)
                        continue;
                p[k++] = (struct pollfd){
                        .fd = s->fd,
                        .events = (short)(POLLIN | POLLRDHUP | (s->len > 0 ? POLLOUT : 0)),
                };
        }
        return k;
}

static struct tail_subscriber *find_fd(struct tail *t, int fd)
{
        for (size_t i = 0; i < ELEMENTSOF(t->sub); i++)
                if (fd >= 0 && t->sub[i].fd == fd)
                        return &t->sub[i];
        return NULL;
}

void tail_handle(struct tail *t, const struct pollfd *p, int n)
{
        for (int i = 0; i < n; i++) {
                struct tail_subscriber *s = find_fd(t, p[i].fd);
                char c;

                if (!s || p[i].revents == 0)
                        continue;
                /* The client went (or closed its side, which the protocol does not allow). */
                if (p[i].revents & (POLLERR | POLLHUP | POLLNVAL | POLLRDHUP)) {
                        remove_subscriber(t, s);
                        continue;
                }
                /* Nothing may follow the request: bytes or EOF end the subscription. */
                if (p[i].revents & POLLIN) {
                        ssize_t k = recv(s->fd, &c, 1, MSG_DONTWAIT);

                        if (k >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                                remove_subscriber(t, s);
                                continue;
                        }
                }
                if (p[i].revents & POLLOUT)
                        flush_one(t, s);
        }
}

void tail_flush(struct tail *t)
{
        for (size_t i = 0; i < ELEMENTSOF(t->sub); i++) {
                struct tail_subscriber *s = &t->sub[i];

                if (s->fd >= 0 && (s->len > 0 || s->dropped > 0))
                        flush_one(t, s);
        }
}

void tail_done(struct tail *t)
{
        /* What the sockets take now (the last records, "shutdown" connection ends), without
         * waiting. t->n first: a struct tail left zeroed (tail_init never ran) has fds 0 in its
         * slots that are not ours. */
        if (t->n > 0)
                tail_flush(t);
        for (size_t i = 0; i < ELEMENTSOF(t->sub) && t->n > 0; i++)
                if (t->sub[i].fd >= 0)
                        remove_subscriber(t, &t->sub[i]);
        mem_close(t, false);
        mem_close(t, true);
}
