/*
 * Unit test: live subscriptions (control/tail.c). Socketpairs stand in for tlssniffctl; every
 * filter key selects exactly its records; subscribers get the very lines output.c writes; a
 * reader that does not read loses records, counted, and is told so once it reads again; gone
 * subscribers are removed; malformed requests are refused without taking the fd. Nothing
 * waits: sockets are read until they would block, poll() is given no time.
 */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control/tail.h"
#include "macro.h"
#include "sandbox.h"

#define OFFSET_NS 1700000000000000000ll
#define MAX_PRINT 64

/* Whatever the client end holds now; *eof when the server closed it. Appends to *buf. */
static size_t read_avail(int fd, char **buf, size_t *len, bool *eof)
{
        size_t got = 0;

        *eof = false;
        for (;;) {
                char chunk[65536];
                ssize_t k = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);

                if (k == 0) {
                        *eof = true;
                        break;
                }
                if (k < 0) {
                        assert(errno == EAGAIN || errno == EWOULDBLOCK);
                        break;
                }
                *buf = realloc(*buf, *len + (size_t)k + 1);
                assert(*buf);
                memcpy(*buf + *len, chunk, (size_t)k);
                *len += (size_t)k;
                (*buf)[*len] = '\0';
                got += (size_t)k;
        }
        return got;
}

/* A subscriber: returns the client end, its header line checked and consumed. */
static int subscribe(struct tail *t, const char *args, bool exchanges_on)
{
        char err[256] = "", *buf = NULL;
        size_t len = 0;
        bool eof;
        int sv[2];

        assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        if (tail_add(t, sv[0], args, exchanges_on, err, sizeof(err)) != 0) {
                fprintf(stderr, "tail_add '%s': %s\n", args, err);
                abort();
        }
        read_avail(sv[1], &buf, &len, &eof);
        assert(!eof && len > 0 && strncmp(buf, "{\"ok\":true,\"tail\":{\"kinds\":[", 28) == 0);
        assert(strchr(buf, '\n') == buf + len - 1); /* one line, nothing else yet */
        free(buf);
        return sv[1];
}

/* Records, as the analyzer would hand them over. */

static struct conn_entry conns[2];
static struct message msgs[3];
static struct exchange xs[3];
static const char *const payload[3] = { "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n",
                                        "\x01\x02 binary" };

static void ident(struct tlssniff_data_record *h, uint32_t pid, const char *comm,
                  uint64_t conn_id)
{
        *h = (struct tlssniff_data_record){
                .type = TLSSNIFF_REC_DATA, .pid = pid, .tid = pid + 1, .fd = 5,
                .timestamp_ns = 1000000000ull * pid, .conn_id = conn_id, .family = 2 /* AF_INET */,
                .lport = 40000, .rport = 443, .role = TLSSNIFF_ROLE_CLIENT,
                .laddr = { 10, 0, 0, 1 }, .raddr = { 10, 0, 0, 2 },
        };
        memcpy(h->comm, comm, strnlen(comm, sizeof(h->comm) - 1));
}

static void make_records(void)
{
        /* Connection 1: curl, pid 100, cgroup 11; connection 2: nginx, pid 200, cgroup 22;
         * connection 3: curl again, not tracked (no entry, so no cgroup). */
        ident(&conns[0].id, 100, "curl", 1);
        conns[0].conn_id = 1;
        conns[0].cgroup_id = 11;
        conns[0].role = TLSSNIFF_ROLE_CLIENT;
        conns[0].first_ns = conns[0].last_ns = 100000000000ull;
        ident(&conns[1].id, 200, "nginx", 2);
        conns[1].conn_id = 2;
        conns[1].cgroup_id = 22;
        conns[1].role = TLSSNIFF_ROLE_SERVER;
        conns[1].proto = CONN_PROTO_HTTP1;
        conns[1].bytes[0] = 10;
        conns[1].bytes[1] = 20;
        for (int i = 0; i < 3; i++) {
                static const uint32_t pid[3] = { 100, 200, 100 };
                static const char *const comm[3] = { "curl", "nginx", "curl" };

                ident(&msgs[i].hdr, pid[i], comm[i], (uint64_t)i + 1);
                msgs[i].hdr.direction = (uint8_t)(i & 1);
                msgs[i].hdr.len = msgs[i].hdr.call_len = (uint32_t)strlen(payload[i]);
                msgs[i].length = (uint32_t)strlen(payload[i]);
                msgs[i].data = (const uint8_t *)payload[i];
        }
        for (int i = 0; i < 3; i++) {
                static const char *const auth[3] = { "Example.com:443", "other.org", "[::1]:8443" };
                static const char *const target[3] = { "/api/users", "/health", "/api" };
                static const int status[3] = { 404, 503, 200 };

                xs[i] = (struct exchange){ .status = status[i], .version_minor = 1,
                                           .grpc_status = -1, .start_ns = 5000 + (uint64_t)i,
                                           .req_end_ns = 6000, .resp_start_ns = 7000,
                                           .resp_end_ns = 9000, .req_done = true,
                                           .resp_started = true };
                strcpy(xs[i].method, "GET");
                strcpy(xs[i].authority, auth[i]);
                strcpy(xs[i].target, target[i]);
                strcpy(xs[i].reason, "Whatever");
        }
}

enum { D1, D2, D3, X1, X2, X3, C1, C2, N_RECORDS };

/* Record i through the tail, or (o != NULL) through output.c as the main output would. */
static void emit(struct tail *t, struct output *o, int i)
{
        const struct conn_entry *c1 = &conns[0], *c2 = &conns[1];

        switch (i) {
        case D1:
        case D2:
        case D3: {
                const struct conn_entry *c = i == D1 ? c1 : i == D2 ? c2 : NULL;
                enum role_source rs = i == D2 ? ROLE_SOURCE_LISTEN : ROLE_SOURCE_KERNEL;
                uint8_t role = i == D2 ? TLSSNIFF_ROLE_SERVER : TLSSNIFF_ROLE_CLIENT;

                if (o)
                        assert(output_message(o, &msgs[i - D1], role, rs) == 0);
                else
                        tail_message(t, &msgs[i - D1], role, rs, c);
                break;
        }
        case X1:
        case X2:
        case X3: {
                const struct conn_entry *c = i == X2 ? c2 : c1;

                if (o)
                        assert(output_exchange(o, c, &xs[i - X1], false) == 0);
                else
                        tail_exchange(t, c, &xs[i - X1], false);
                break;
        }
        case C1:
                if (o)
                        assert(output_connection_open(o, c1, 123456) == 0);
                else
                        tail_connection(t, c1, "open", 123456);
                break;
        case C2:
                if (o)
                        assert(output_connection(o, c2, "closed") == 0);
                else
                        tail_connection(t, c2, "closed", 0);
                break;
        }
}

/* What output.c writes for the records in mask, in order, with these settings. */
static char *expected_with(unsigned mask, bool json, unsigned max_print,
                           const struct output_redaction *redact)
{
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        struct output o;

        assert(f);
        output_init(&o, f, json, max_print);
        o.realtime_offset_ns = OFFSET_NS;
        o.redact = redact;
        for (int i = 0; i < N_RECORDS; i++)
                if (mask & (1u << i))
                        emit(NULL, &o, i);
        output_done(&o);
        fclose(f);
        return buf;
}

static char *expected(unsigned mask, bool json)
{
        return expected_with(mask, json, MAX_PRINT, NULL);
}

#define B(x) (1u << (x))
#define ALL (B(N_RECORDS) - 1)

static const struct {
        const char *args;
        unsigned want;
} cases[] = {
        { "format=json", ALL },
        { "kind=data format=json", B(D1) | B(D2) | B(D3) },
        { "kind=exchanges format=json", B(X1) | B(X2) | B(X3) },
        { "kind=connections format=json", B(C1) | B(C2) },
        { "kind=data,connections format=json", B(D1) | B(D2) | B(D3) | B(C1) | B(C2) },
        { "pid=100 format=json", B(D1) | B(D3) | B(X1) | B(X3) | B(C1) },
        { "pid=7,200 format=json", B(D2) | B(X2) | B(C2) },
        { "comm=nginx format=json", B(D2) | B(X2) | B(C2) },
        { "comm=cur format=json", 0 }, /* exact, not a prefix */
        { "comm=curl comm=nginx kind=data format=json", B(D1) | B(D2) | B(D3) },
        { "cgroup=11 format=json", B(D1) | B(X1) | B(X3) | B(C1) }, /* D3: no entry */
        { "cgroup=99,22 format=json", B(D2) | B(X2) | B(C2) },
        { "host=example.COM format=json", B(X1) },
        { "host=example.com:443 format=json", B(X1) },
        { "host=example.com:80 format=json", 0 },
        { "host=::1 format=json", B(X3) },
        { "host=[::1]:8443 format=json", B(X3) },
        { "host=other.org:443 format=json", 0 }, /* the filter's port must be the authority's */
        { "path=/api format=json", B(X1) | B(X3) },
        { "path=/api/ format=json", B(X1) },
        { "status=4xx format=json", B(X1) },
        { "status=503 format=json", B(X2) },
        { "status=404,2xx format=json", B(X1) | B(X3) },
        { "status=5xx path=/api format=json", 0 },
        { "conn=2 format=json", B(D2) | B(X2) | B(C2) },
        { "kind=data conn=1 format=json", B(D1) }, /* tlssniffctl follow 1 */
        { "pid=100 comm=nginx format=json", 0 },    /* every key must match */
        { "pid=200", B(D2) | B(X2) | B(C2) },       /* text */
        { "kind=exchanges format=text", B(X1) | B(X2) | B(X3) },
        { "", ALL },
};

static void test_filters(void)
{
        size_t n = ELEMENTSOF(cases);

        for (size_t first = 0; first < n; first += TAIL_SUBSCRIBERS_MAX) {
                size_t batch = n - first < TAIL_SUBSCRIBERS_MAX ? n - first : TAIL_SUBSCRIBERS_MAX;
                int fds[TAIL_SUBSCRIBERS_MAX];
                struct tail t;

                tail_init(&t, 0, MAX_PRINT);
                tail_set_realtime_offset(&t, OFFSET_NS);
                for (size_t i = 0; i < batch; i++)
                        fds[i] = subscribe(&t, cases[first + i].args, true);
                assert(t.n == batch && t.subscribers_total == batch);
                for (int r = 0; r < N_RECORDS; r++)
                        emit(&t, NULL, r);
                tail_flush(&t);
                for (size_t i = 0; i < batch; i++) {
                        const char *args = cases[first + i].args;
                        char *got = NULL, *want = expected(cases[first + i].want,
                                                           strstr(args, "format=json") != NULL);
                        size_t len = 0;
                        bool eof;

                        read_avail(fds[i], &got, &len, &eof);
                        assert(!eof);
                        if (strcmp(got ? got : "", want) != 0) {
                                fprintf(stderr, "'%s':\ngot:\n%s\nwant:\n%s\n", args,
                                        got ? got : "", want);
                                abort();
                        }
                        free(got);
                        free(want);
                        close(fds[i]);
                }
                assert(t.dropped_records == 0 && t.format_errors == 0);
                tail_done(&t);
        }
}

/* The filter as the client sees it, and the wants that follow from it. */
static void test_echo(void)
{
        struct tail t;
        char *got = NULL;
        size_t len = 0;
        bool eof;
        int sv[2], fd;
        char err[256];

        tail_init(&t, 0, MAX_PRINT);
        assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        assert(tail_add(&t, sv[0],
                        "pid=5,6 comm=a\"b\\c cgroup=77 status=5xx,404 host=Example.com "
                        "path=/x\"y conn=9 format=json count=3\n",
                        true, err, sizeof(err)) == 0);
        read_avail(sv[1], &got, &len, &eof);
        assert(strcmp(got, "{\"ok\":true,\"tail\":{\"kinds\":[\"exchanges\"],\"pids\":[5,6],"
                           "\"comms\":[\"a\\\"b\\\\c\"],\"cgroups\":[77],\"host\":"
                           "\"Example.com\",\"path\":\"/x\\\"y\",\"status\":[\"5xx\",\"404\"],"
                           "\"conn\":9,\"format\":\"json\",\"count\":3}}\n") == 0);
        assert(tail_wants(&t, TAIL_KIND_EXCHANGES) && !tail_wants(&t, TAIL_KIND_DATA) &&
               !tail_wants(&t, TAIL_KIND_CONNECTIONS));
        free(got);
        close(sv[1]);
        tail_done(&t);

        /* Defaults: what is available. Without exchanges: data and connections. */
        tail_init(&t, 0, MAX_PRINT);
        assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        assert(tail_add(&t, sv[0], "", false, err, sizeof(err)) == 0);
        got = NULL;
        len = 0;
        read_avail(sv[1], &got, &len, &eof);
        assert(strcmp(got, "{\"ok\":true,\"tail\":{\"kinds\":[\"data\",\"connections\"],"
                           "\"pids\":[],\"comms\":[],\"cgroups\":[],\"host\":null,\"path\":null,"
                           "\"status\":[],\"conn\":null,\"format\":\"text\",\"count\":null}}\n") ==
               0);
        assert(tail_wants(&t, TAIL_KIND_DATA) && !tail_wants(&t, TAIL_KIND_EXCHANGES) &&
               tail_wants(&t, TAIL_KIND_CONNECTIONS));
        free(got);
        fd = subscribe(&t, "kind=all\n", false);
        assert(!tail_wants(&t, TAIL_KIND_EXCHANGES));
        close(fd);
        close(sv[1]);
        tail_done(&t);
}

/* The main output's settings, also when changed later: redacted headers, --max-print. */
static void test_settings(void)
{
        static char text[] = "authorization\0Bearer t0ken\0x-api-key\0s3cret\0accept\0*/*";
        struct output_redaction red = { .n = 1, .names = { "X-Api-Key" } };
        struct exchange saved = xs[0];
        struct tail t;
        char *got = NULL, *want;
        size_t len = 0;
        bool eof;
        int fd;

        xs[0].req_headers = (struct exchange_headers){
                .n = 3, .name = { 0, 27, 44 }, .value = { 14, 37, 51 }, .len = sizeof(text),
                .text = text };
        tail_init(&t, OFFSET_NS, MAX_PRINT);
        tail_set_redaction(&t, &red);
        fd = subscribe(&t, "kind=exchanges,data format=json", true);
        emit(&t, NULL, X1);
        tail_flush(&t);
        read_avail(fd, &got, &len, &eof);
        want = expected_with(B(X1), true, MAX_PRINT, &red);
        assert(strcmp(got, want) == 0);
        assert(!strstr(got, "s3cret") && !strstr(got, "t0ken") && strstr(got, "*/*"));
        free(want);
        free(got);
        /* A reload: fewer payload bytes in text, no extra redaction. */
        close(fd);
        fd = subscribe(&t, "kind=data,exchanges", true);
        tail_set_max_print(&t, 4);
        tail_set_redaction(&t, NULL);
        emit(&t, NULL, D1);
        tail_flush(&t);
        got = NULL;
        len = 0;
        read_avail(fd, &got, &len, &eof);
        want = expected_with(B(D1), false, 4, NULL);
        assert(strcmp(got, want) == 0 && strstr(got, "GET ...(14 more bytes)"));
        free(want);
        free(got);
        close(fd);
        tail_done(&t);
        xs[0] = saved;
}

/* Requests that must be refused, the fd left alone and nothing written to it. */
static void test_malformed(void)
{
        static const struct {
                const char *args;
                bool exchanges_on;
                const char *says;
        } bad[] = {
                { "bogus=1", true, "unknown key" },
                { "Pid=1", true, "unknown key" },
                { "pid", true, "key=value" },
                { "=1", true, "unknown key" },
                { "pid=", true, "empty value" },
                { "pid=abc", true, "bad pid" },
                { "pid=0", true, "bad pid" },
                { "pid=-1", true, "bad pid" },
                { "pid=+1", true, "bad pid" },
                { "pid=0x10", true, "bad pid" },
                { "pid=99999999999999999999999", true, "bad pid" },
                { "pid=4194305", true, "bad pid" },
                { "cgroup=18446744073709551616", true, "bad cgroup" },
                { "conn=1x", true, "bad conn" },
                { "count=0", true, "count" },
                { "count=4294967296", true, "count" },
                { "pid=1\tcomm=x", true, "control character" },
                { "comm=a\x01" "b", true, "control character" },
                { "host=\x7f", true, "control character" },
                { "comm=\xc3\xa9", true, "non-ASCII" },
                { "pid=1\n\n", true, "control character" },
                { "pid=1  comm=x", true, "empty token" },
                { " pid=1", true, "empty token" },
                { "pid=1 ", true, "empty token" },
                { "pid=1,,2", true, "empty item" },
                { "pid=,1", true, "empty item" },
                { "pid=1,", true, "empty item" },
                { "pid=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", true, "too many pid" },
                { "pid=1 pid=2 pid=3 pid=4 pid=5 pid=6 pid=7 pid=8 pid=9 pid=10 pid=11 pid=12 "
                  "pid=13 pid=14 pid=15 pid=16 pid=17", true, "too many pid" },
                { "comm=a,b,c,d,e,f,g,h,i", true, "too many comm" },
                { "cgroup=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,"
                  "27,28,29,30,31,32,33", true, "too many cgroup" },
                { "status=1xx,2xx,3xx,4xx,5xx,6xx,7xx,8xx,9xx", true, "too many status" },
                { "comm=abcdefghijklmnop", true, "longer than 15" },
                { "status=600x", true, "status must" },
                { "status=4XX", true, "status must" },
                { "status=0xx", true, "status must" },
                { "status=99", true, "status must" },
                { "status=4x4", true, "status must" },
                { "path=noslash", true, "start with /" },
                { "host=a/b", true, "bad character in host" },
                { "host=a host=b", true, "more than once" },
                { "format=json format=text", true, "more than once" },
                { "conn=1 conn=1", true, "more than once" },
                { "format=xml", true, "format must" },
                { "kind=everything", true, "kind must" },
                { "kind=data host=x", true, "kind=exchanges" },
                { "kind=all status=500", true, "kind=exchanges" },
                { "kind=exchanges", false, "exchanges = yes" },
                { "kind=data,exchanges", false, "--exchanges" },
                { "host=x", false, "exchanges = yes" },
                { "path=/", false, "exchanges = yes" },
                { "status=500", false, "exchanges = yes" },
        };
        struct tail t;
        int sv[2], fds[TAIL_SUBSCRIBERS_MAX];
        char err[256], c, big[TAIL_REQUEST_MAX + 16];

        tail_init(&t, 0, MAX_PRINT);
        assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                err[0] = '\0';
                if (tail_add(&t, sv[0], bad[i].args, bad[i].exchanges_on, err, sizeof(err)) !=
                            -EINVAL ||
                    !strstr(err, bad[i].says)) {
                        fprintf(stderr, "'%s': accepted or wrong error '%s'\n", bad[i].args, err);
                        abort();
                }
                assert(!strchr(err, '"') && !strchr(err, '\\'));
                for (const char *p = err; *p; p++)
                        assert(*p >= 0x20 && *p < 0x7f);
        }
        /* Without the data access: kind=data refused, all and the default mean the rest. */
        {
                struct tail_filter f;
                const unsigned k_data = 1u << TAIL_KIND_DATA,
                               k_conns = 1u << TAIL_KIND_CONNECTIONS,
                               k_xs = 1u << TAIL_KIND_EXCHANGES;

                assert(tail_filter_parse_access("kind=data", true, false, &f, err,
                                                sizeof(err)) == -EACCES &&
                       strstr(err, "tlssniff-data"));
                assert(tail_filter_parse_access("kind=exchanges,data", true, false, &f, err,
                                                sizeof(err)) == -EACCES);
                assert(tail_filter_parse_access("", true, false, &f, err, sizeof(err)) == 0 &&
                       f.kinds == (k_conns | k_xs));
                assert(tail_filter_parse_access("kind=all pid=7", true, false, &f, err,
                                                sizeof(err)) == 0 &&
                       f.kinds == (k_conns | k_xs) && f.n_pids == 1);
                assert(tail_filter_parse_access("", false, false, &f, err, sizeof(err)) == 0 &&
                       f.kinds == k_conns);
                assert(tail_filter_parse_access("", true, true, &f, err, sizeof(err)) == 0 &&
                       f.kinds == (k_data | k_conns | k_xs));
                assert(tail_add_access(&t, sv[0], "kind=data", true, false, err, sizeof(err)) ==
                               -EACCES &&
                       t.n == 0);
        }
        /* Too long: the line with "tail " and the newline is at most TAIL_REQUEST_MAX. */
        memset(big, 0, sizeof(big));
        strcpy(big, "comm=a");
        for (size_t i = 6; i < TAIL_ARGS_MAX + 1; i += 2)
                memcpy(big + i, ",a", 2);
        big[TAIL_ARGS_MAX + 1] = '\0';
        assert(tail_add(&t, sv[0], big, true, err, sizeof(err)) == -EINVAL);
        assert(strstr(err, "too long"));
        /* Exactly TAIL_ARGS_MAX bytes and the newline: the longest request there is. */
        memset(big, 0, sizeof(big));
        strcpy(big, "host=");
        memset(big + 5, 'a', TAIL_ARGS_MAX - 5);
        strcat(big, "\n");
        assert(tail_filter_parse(big, true, &(struct tail_filter){}, err, sizeof(err)) == 0);
        big[TAIL_ARGS_MAX] = 'a';
        assert(tail_filter_parse(big, true, &(struct tail_filter){}, err, sizeof(err)) ==
               -EINVAL);
        assert(strstr(err, "too long"));
        /* The longest path fits, one more byte does not. */
        memset(big, 0, sizeof(big));
        strcpy(big, "path=/");
        memset(big + 6, 'a', TAIL_PATH_MAX - 1);
        assert(tail_filter_parse(big, true, &(struct tail_filter){}, err, sizeof(err)) == 0);
        strcat(big, "a");
        assert(tail_filter_parse(big, true, &(struct tail_filter){}, err, sizeof(err)) ==
               -EINVAL);
        assert(strstr(err, "path is longer"));
        assert(t.n == 0 && t.subscribers_total == 0);
        /* The fd was not taken: still open, nothing was written to it. */
        assert(fcntl(sv[0], F_GETFD) >= 0);
        assert(recv(sv[1], &c, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN);
        assert(tail_add(&t, -1, "", true, err, sizeof(err)) == -EINVAL);

        /* The 17th subscriber. */
        for (int i = 0; i < TAIL_SUBSCRIBERS_MAX; i++)
                fds[i] = subscribe(&t, "kind=data", true);
        assert(tail_add(&t, sv[0], "kind=data", true, err, sizeof(err)) == -E2BIG);
        assert(strstr(err, "too many subscribers"));
        assert(fcntl(sv[0], F_GETFD) >= 0);
        assert(recv(sv[1], &c, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN);
        assert(t.n == TAIL_SUBSCRIBERS_MAX);
        /* One leaves: a place is free again. */
        close(fds[3]);
        {
                struct pollfd p[TAIL_SUBSCRIBERS_MAX];
                int k = tail_pollfds(&t, p, TAIL_SUBSCRIBERS_MAX);

                assert(k == TAIL_SUBSCRIBERS_MAX);
                assert(poll(p, (nfds_t)k, 0) >= 1);
                tail_handle(&t, p, k);
        }
        assert(t.n == TAIL_SUBSCRIBERS_MAX - 1);
        assert(tail_add(&t, sv[0], "kind=data", true, err, sizeof(err)) == 0);
        close(sv[1]);
        for (int i = 0; i < TAIL_SUBSCRIBERS_MAX; i++)
                if (i != 3)
                        close(fds[i]);
        tail_done(&t);
}

/* Gone subscribers: closed (seen by poll, or by a failed send), or talking after the request. */
static void test_gone(void)
{
        struct tail t;
        struct pollfd p[TAIL_SUBSCRIBERS_MAX];
        int a, b, c, k;

        tail_init(&t, 0, MAX_PRINT);
        a = subscribe(&t, "kind=data", true);
        b = subscribe(&t, "kind=connections", true);
        c = subscribe(&t, "kind=data", true);
        assert(tail_wants(&t, TAIL_KIND_DATA) && tail_wants(&t, TAIL_KIND_CONNECTIONS));
        /* Nothing happened: poll sees nothing, nobody is removed. */
        k = tail_pollfds(&t, p, TAIL_SUBSCRIBERS_MAX);
        assert(k == 3 && !(p[0].events & POLLOUT));
        assert(poll(p, (nfds_t)k, 0) == 0);
        tail_handle(&t, p, k);
        assert(t.n == 3);
        /* Closed: poll sees it. */
        close(b);
        k = tail_pollfds(&t, p, TAIL_SUBSCRIBERS_MAX);
        assert(poll(p, (nfds_t)k, 0) == 1);
        tail_handle(&t, p, k);
        assert(t.n == 2 && !tail_wants(&t, TAIL_KIND_CONNECTIONS));
        /* A client may not send anything after its request. */
        assert(write(c, "x", 1) == 1);
        k = tail_pollfds(&t, p, TAIL_SUBSCRIBERS_MAX);
        assert(poll(p, (nfds_t)k, 0) == 1);
        tail_handle(&t, p, k);
        assert(t.n == 1);
        close(c);
        /* Closed and not polled: the next send fails and removes it. */
        close(a);
        tail_message(&t, &msgs[0], TLSSNIFF_ROLE_CLIENT, ROLE_SOURCE_KERNEL, &conns[0]);
        tail_flush(&t);
        assert(t.n == 0 && !tail_wants(&t, TAIL_KIND_DATA));
        /* Nobody listening: records go nowhere, nothing is counted as dropped. */
        tail_message(&t, &msgs[0], TLSSNIFF_ROLE_CLIENT, ROLE_SOURCE_KERNEL, &conns[0]);
        assert(t.dropped_records == 0 && t.subscribers_total == 3);
        tail_done(&t);
}

/* count=N: N records, then the server closes. */
static void test_count(void)
{
        struct tail t;
        char *got = NULL, *want = expected(B(D1) | B(D2), true);
        size_t len = 0;
        bool eof;
        int fd;

        tail_init(&t, OFFSET_NS, MAX_PRINT);
        fd = subscribe(&t, "kind=data count=2 format=json", true);
        tail_message(&t, &msgs[0], TLSSNIFF_ROLE_CLIENT, ROLE_SOURCE_KERNEL, &conns[0]);
        tail_message(&t, &msgs[1], TLSSNIFF_ROLE_SERVER, ROLE_SOURCE_LISTEN, &conns[1]);
        assert(!tail_wants(&t, TAIL_KIND_DATA)); /* finishing: takes nothing more */
        tail_message(&t, &msgs[2], TLSSNIFF_ROLE_CLIENT, ROLE_SOURCE_KERNEL, NULL);
        tail_flush(&t);
        assert(t.n == 0);
        read_avail(fd, &got, &len, &eof);
        assert(eof && strcmp(got, want) == 0);
        free(got);
        free(want);
        close(fd);
        tail_done(&t);
}

/* The end: what is queued still goes out (without waiting), then the stream ends. */
static void test_done(void)
{
        struct tail t, zeroed = {};
        char *got = NULL, *want = expected(B(D1), true);
        size_t len = 0;
        bool eof;
        int fd, stdin_ok = fcntl(0, F_GETFD) >= 0;

        tail_init(&t, OFFSET_NS, MAX_PRINT);
        fd = subscribe(&t, "kind=data format=json", true);
        tail_message(&t, &msgs[0], TLSSNIFF_ROLE_CLIENT, ROLE_SOURCE_KERNEL, &conns[0]);
        assert(t.sub[0].len > 0); /* queued, not sent yet */
        tail_done(&t);
        read_avail(fd, &got, &len, &eof);
        assert(eof && strcmp(got, want) == 0);
        free(got);
        free(want);
        close(fd);
        /* An analyzer whose init failed before tail_init: no fd of anyone else is closed. */
        tail_done(&zeroed);
        assert((fcntl(0, F_GETFD) >= 0) == stdin_ok);
}

static unsigned count_prefix(const char *s, const char *prefix)
{
        unsigned n = 0;

        for (const char *p = s; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                n += strncmp(p, prefix, strlen(prefix)) == 0;
        return n;
}

/* Text records: a first line (time, process, ...), then the payload indented by 4 spaces. */
static unsigned count_text_records(const char *s)
{
        unsigned n = 0;

        for (const char *p = s; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                n += *p != ' ' && strncmp(p, "-- ", 3) != 0;
        return n;
}

/*
 * A reader that does not read: its queue fills to TAIL_BUFFER_MAX, later records are dropped
 * for it and counted; once it reads, it is told how many with one line, in its format.
 */
static void test_slow(void)
{
        enum { N = 200, SIZE = 16384 };
        static uint8_t data[SIZE];
        struct message m = msgs[0];
        struct tail t;
        int fd[2], sndbuf = 4096;
        char *got[2] = {};
        size_t len[2] = {};
        unsigned records[2], notes[2];
        unsigned long long dropped[2] = {};
        bool eof;

        memset(data, 'a', sizeof(data));
        m.data = data;
        m.length = m.hdr.len = m.hdr.call_len = SIZE;
        tail_init(&t, OFFSET_NS, SIZE); /* text prints the whole payload */
        for (int j = 0; j < 2; j++) {
                int sv[2];
                char err[256], *hdr = NULL;
                size_t hl = 0;

                assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
                assert(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) == 0);
                assert(tail_add(&t, sv[0], j ? "kind=data format=json" : "kind=data", true, err,
                                sizeof(err)) == 0);
                fd[j] = sv[1];
                read_avail(fd[j], &hdr, &hl, &eof);
                free(hdr);
        }
        for (int i = 0; i < N; i++) {
                tail_message(&t, &m, TLSSNIFF_ROLE_CLIENT, ROLE_SOURCE_KERNEL, &conns[0]);
                tail_flush(&t);
        }
        assert(t.dropped_records > 0);
        for (int j = 0; j < 2; j++)
                assert(t.sub[j].len <= TAIL_BUFFER_MAX && t.sub[j].dropped > 0);
        assert(t.dropped_records == t.sub[0].dropped + t.sub[1].dropped);
        /* The reader reads everything there is, until the server has nothing queued. */
        for (;;) {
                size_t k = 0;

                tail_flush(&t);
                for (int j = 0; j < 2; j++)
                        k += read_avail(fd[j], &got[j], &len[j], &eof);
                if (k == 0 && t.sub[0].len == 0 && t.sub[1].len == 0)
                        break;
        }
        /* One more record: after the "dropped" line (sent as soon as there was room). */
        tail_message(&t, &m, TLSSNIFF_ROLE_CLIENT, ROLE_SOURCE_KERNEL, &conns[0]);
        tail_flush(&t);
        for (int j = 0; j < 2; j++) {
                const char *note;

                read_avail(fd[j], &got[j], &len[j], &eof);
                note = j ? strstr(got[j], "{\"type\":\"dropped\",\"records\":")
                         : strstr(got[j], "-- ");
                assert(note);
                assert(sscanf(note, j ? "{\"type\":\"dropped\",\"records\":%llu}\n"
                                      : "-- %llu records dropped (reader too slow) --\n",
                              &dropped[j]) == 1);
                assert(dropped[j] > 0);
                notes[j] = count_prefix(got[j], j ? "{\"type\":\"dropped\"" : "-- ");
                records[j] = j ? count_prefix(got[j], "{\"type\":\"data\"")
                               : count_text_records(got[j]);
                /* Nothing lost without being counted, and the last record follows the note. */
                assert(notes[j] == 1);
                assert(strchr(note, '\n')[1] != '\0');
        }
        assert(records[0] + dropped[0] == N + 1 && records[1] + dropped[1] == N + 1);
        assert(dropped[0] + dropped[1] == t.dropped_records);
        for (int j = 0; j < 2; j++) {
                free(got[j]);
                close(fd[j]);
        }
        tail_done(&t);
}

/*
 * Last, as it cannot be undone: under the analyzer's seccomp filter (analyzer/sandbox.c), the
 * calls tail.c makes (memstreams, nonblocking sends and receives, poll, close) are allowed.
 * Everything the filter would refuse (socketpair, setsockopt, opening files) is done before.
 * The subscribers' sockets are nonblocking already, as the control server accepts them (the
 * filter refuses an F_SETFL that leaves out O_APPEND).
 */
static void test_sandboxed(void)
{
        char *want[2] = { expected(B(D1) | B(X1) | B(X3) | B(C1), false),
                          expected(B(D1) | B(X1) | B(X3) | B(C1), true) };
        struct tail t;
        struct pollfd p[TAIL_SUBSCRIBERS_MAX];
        int sv[2][2], gone[2], k, r;
        char err[256];

        for (int j = 0; j < 2; j++)
                assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
                                  sv[j]) == 0);
        assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, gone) == 0);
        r = sandbox_apply();
        if (r == -EOPNOTSUPP) {
                printf("tail: no seccomp filter in this build, sandboxed part skipped\n");
                free(want[0]);
                free(want[1]);
                return;
        }
        assert(r == 0);
        tail_init(&t, OFFSET_NS, MAX_PRINT);
        for (int j = 0; j < 2; j++) {
                char *hdr = NULL;
                size_t len = 0;
                bool eof;

                assert(tail_add(&t, sv[j][0], j ? "conn=1 format=json" : "conn=1", true, err,
                                sizeof(err)) == 0);
                read_avail(sv[j][1], &hdr, &len, &eof);
                assert(len > 0 && !eof);
                free(hdr);
        }
        assert(tail_add(&t, gone[0], "", true, err, sizeof(err)) == 0);
        close(gone[1]);
        for (int i = 0; i < N_RECORDS; i++)
                emit(&t, NULL, i);
        k = tail_pollfds(&t, p, TAIL_SUBSCRIBERS_MAX);
        assert(k == 3 && poll(p, (nfds_t)k, 0) >= 1);
        tail_handle(&t, p, k);
        tail_flush(&t);
        assert(t.n == 2);
        for (int j = 0; j < 2; j++) {
                char *got = NULL;
                size_t len = 0;
                bool eof;

                read_avail(sv[j][1], &got, &len, &eof);
                assert(got && strcmp(got, want[j]) == 0);
                free(got);
                free(want[j]);
                close(sv[j][1]);
        }
        tail_done(&t);
}

int main(void)
{
        make_records();
        test_filters();
        test_echo();
        test_settings();
        test_malformed();
        test_gone();
        test_count();
        test_done();
        test_slow();
        test_sandboxed();
        printf("tail: ok\n");
        return 0;
}
