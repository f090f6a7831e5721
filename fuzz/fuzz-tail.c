/*
 * libFuzzer target: tail requests (analyzer/control/tail.c), the text after "tail " that any
 * tlssniff group member may send. Input: a flags byte (bit 0: exchanges are on), the request
 * up to and with its first newline, then an exchange's authority and target on one line each.
 * A refused request leaves a clean message and the fd alone; an accepted one is within every
 * bound, echoes within TAIL_ECHO_MAX, and its canonical form parses back to itself. Then it
 * subscribes over a socketpair and gets a data message, an exchange with the fuzzed authority
 * and target, and connection records: the stream starts with the echo and holds whole lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control/tail.h"
#include "fuzz.h"

static void check_err(const char *err)
{
        CHECK(err[0] != '\0');
        for (const char *p = err; *p; p++)
                CHECK(*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\');
}

static void check_filter(const struct tail_filter *f)
{
        CHECK(f->kinds != 0 && f->kinds < (1u << _TAIL_KIND_MAX));
        CHECK(f->n_pids <= TAIL_PIDS_MAX && f->n_comms <= TAIL_COMMS_MAX);
        CHECK(f->n_cgroups <= TAIL_CGROUPS_MAX && f->n_statuses <= TAIL_STATUSES_MAX);
        for (unsigned i = 0; i < f->n_comms; i++)
                CHECK(strnlen(f->comms[i], sizeof(f->comms[i])) <= TAIL_COMM_MAX);
        for (unsigned i = 0; i < f->n_statuses; i++)
                CHECK((f->statuses[i] >= 1 && f->statuses[i] <= 9) ||
                      (f->statuses[i] >= 100 && f->statuses[i] <= 999));
        CHECK(strnlen(f->host, sizeof(f->host)) <= TAIL_HOST_MAX);
        CHECK(strnlen(f->path, sizeof(f->path)) <= TAIL_PATH_MAX);
        CHECK(!f->path[0] || f->path[0] == '/');
        CHECK(f->count <= TAIL_COUNT_MAX);
}

/* Subscribes with args and sends it one record of each kind; reads what came. */
static void subscribe(const char *args, bool exchanges_on, const char *authority,
                      const char *target)
{
        static char got[1 << 16];
        struct tail t;
        struct conn_entry c = { .conn_id = 7, .cgroup_id = 11, .role = TLSSNIFF_ROLE_CLIENT };
        struct exchange x = { .status = 404, .grpc_status = -1, .version_minor = 1 };
        struct message m = { .length = 5, .data = (const uint8_t *)"hello" };
        char err[256] = "";
        ssize_t n;
        int sv[2];

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return;
        tail_init(&t, 0, 64);
        if (tail_add(&t, sv[0], args, exchanges_on, err, sizeof(err)) < 0)
                abort(); /* it parsed a moment ago */
        c.id = (struct tlssniff_data_record){ .pid = 42, .conn_id = 7, .family = 2,
                                              .comm = "curl" };
        m.hdr = c.id;
        snprintf(x.authority, sizeof(x.authority), "%s", authority);
        snprintf(x.target, sizeof(x.target), "%s", target);
        strcpy(x.method, "GET");
        tail_connection(&t, &c, "open", 1);
        tail_message(&t, &m, TLSSNIFF_ROLE_CLIENT, ROLE_SOURCE_KERNEL, &c);
        tail_message(&t, &m, TLSSNIFF_ROLE_CLIENT, ROLE_SOURCE_KERNEL, NULL);
        tail_exchange(&t, &c, &x, false);
        tail_connection(&t, &c, "closed", 0);
        tail_flush(&t);
        n = recv(sv[1], got, sizeof(got) - 1, MSG_DONTWAIT);
        CHECK(n > 0);
        got[n] = '\0';
        CHECK(strncmp(got, "{\"ok\":true,\"tail\":{", 19) == 0);
        CHECK(got[n - 1] == '\n');
        CHECK(t.dropped_records == 0);
        tail_done(&t);
        close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char args[1024], authority[256] = "", target[1024] = "", err[256], canon[1024];
        char again[1024];
        struct tail_filter f, g;
        const uint8_t *nl, *rest, *end = data + size;
        bool exchanges_on;
        size_t n;
        int r, sv[2];

        if (size < 1 || size > 4096)
                return 0;
        exchanges_on = data[0] & 1;
        data++;
        nl = memchr(data, '\n', (size_t)(end - data));
        n = nl ? (size_t)(nl + 1 - data) : (size_t)(end - data);
        if (n >= sizeof(args))
                return 0;
        memcpy(args, data, n);
        args[n] = '\0';
        rest = data + n;
        nl = memchr(rest, '\n', (size_t)(end - rest));
        snprintf(authority, sizeof(authority), "%.*s",
                 (int)((nl ? nl : end) - rest), (const char *)rest);
        if (nl)
                snprintf(target, sizeof(target), "%.*s", (int)(end - nl - 1),
                         (const char *)nl + 1);

        memset(&f, 0xa5, sizeof(f));
        err[0] = '\0';
        r = tail_filter_parse(args, exchanges_on, &f, err, sizeof(err));
        if (r < 0) {
                CHECK(r == -EINVAL);
                check_err(err);
                /* Refused by tail_add too, without touching the fd. */
                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
                        struct tail t;
                        char c;

                        tail_init(&t, 0, 64);
                        CHECK(tail_add(&t, sv[0], args, exchanges_on, err, sizeof(err)) == r);
                        CHECK(fcntl(sv[0], F_GETFD) >= 0);
                        CHECK(recv(sv[1], &c, 1, MSG_DONTWAIT) < 0);
                        tail_done(&t);
                        close(sv[0]);
                        close(sv[1]);
                }
                return 0;
        }
        check_filter(&f);
        {
                /* A client without the data access: the same filter without data, or a
                 * refusal of kind=data (-EACCES) only when the filter had data. */
                struct tail_filter h;
                int rr;

                memset(&h, 0x5a, sizeof(h));
                rr = tail_filter_parse_access(args, exchanges_on, false, &h, err, sizeof(err));
                CHECK(rr == 0 || (rr == -EACCES && (f.kinds & (1u << TAIL_KIND_DATA))));
                if (rr == 0)
                        CHECK(!(h.kinds & (1u << TAIL_KIND_DATA)) &&
                              (h.kinds | (1u << TAIL_KIND_DATA)) ==
                                      (f.kinds | (1u << TAIL_KIND_DATA)));
                else
                        check_err(err);
        }
        {
                char echo[TAIL_ECHO_MAX];

                CHECK(tail_filter_echo(&f, echo, sizeof(echo)) == 0);
                CHECK(strlen(echo) > 2 && strcmp(echo + strlen(echo) - 3, "}}\n") == 0);
        }
        CHECK(tail_filter_format(&f, canon, sizeof(canon)) == 0);
        if (strlen(canon) <= TAIL_ARGS_MAX) {
                CHECK(tail_filter_parse(canon, exchanges_on, &g, err, sizeof(err)) == 0);
                CHECK(tail_filter_format(&g, again, sizeof(again)) == 0);
                CHECK(strcmp(canon, again) == 0);
        }
        subscribe(args, exchanges_on, authority, target);
        return 0;
}
