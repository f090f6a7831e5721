/* Exchanges to the journal; see journal.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include "log.h"
#include "out/journal.h"
#include "out/output.h"
#include "out/redact.h"

#define FIELDS_MAX 24
#define FIELD_MAX 1200

struct fields {
        struct iovec iov[FIELDS_MAX];
        char buf[FIELDS_MAX][FIELD_MAX];
        unsigned n;
};

/* NAME=value, value cut to fit; control bytes kept (the journal stores values as binary). */
static void add(struct fields *f, const char *name, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void add(struct fields *f, const char *name, const char *fmt, ...)
{
        va_list ap;
        int k, m;

        if (f->n == FIELDS_MAX)
                return;
        k = snprintf(f->buf[f->n], FIELD_MAX, "%s=", name);
        va_start(ap, fmt);
        m = vsnprintf(f->buf[f->n] + k, FIELD_MAX - (size_t)k, fmt, ap);
        va_end(ap);
        if (m < 0)
                return;
        f->iov[f->n].iov_base = f->buf[f->n];
        f->iov[f->n].iov_len = strnlen(f->buf[f->n], FIELD_MAX);
        f->n++;
}

int journal_exchange(const struct conn_entry *c, const struct exchange *x,
                     const struct output_redaction *redact, bool show_secrets)
{
        char target[REDACT_OUT_MAX(sizeof(x->target))];
        struct fields *fp = malloc(sizeof(*fp)); /* 28 KiB: not on the stack */
        const struct tlssniff_data_record *h = &c->id;
        char la[INET6_ADDRSTRLEN] = "", ra[INET6_ADDRSTRLEN] = "";
        int r;

        if (!fp)
                return -ENOMEM;
#define f (*fp)
        f.n = 0;
        if (h->family == AF_INET || h->family == AF_INET6) {
                inet_ntop(h->family, h->laddr, la, sizeof(la));
                inet_ntop(h->family, h->raddr, ra, sizeof(ra));
        }
        if (show_secrets)
                snprintf(target, sizeof(target), "%s", x->target);
        else
                redact_target(redact, x->target, target, sizeof(target));
        add(&f, "MESSAGE", "%s %s%s -> %d (%.3f ms)%s%s", x->method[0] ? x->method : "?",
            x->authority, target, x->status,
            x->resp_started ? (double)(x->resp_end_ns - x->start_ns) / 1e6 : 0.0,
            x->error ? " " : "", x->error ? x->error : "");
        add(&f, "MESSAGE_ID", "%s", MID_EXCHANGE);
        add(&f, "PRIORITY", "%d", x->error ? LOG_NOTICE : LOG_INFO);
        add(&f, "SYSLOG_IDENTIFIER", "%s", "tlssniff-analyzer");
        add(&f, "TLSSNIFF_PROTOCOL", "%s",
            x->http_version == 2 ? "http/2" : x->version_minor ? "http/1.1" : "http/1.0");
        add(&f, "TLSSNIFF_METHOD", "%s", x->method);
        add(&f, "TLSSNIFF_AUTHORITY", "%s", x->authority);
        add(&f, "TLSSNIFF_PATH", "%s", target);
        if (x->status)
                add(&f, "TLSSNIFF_STATUS", "%d", x->status);
        if (x->resp_started)
                add(&f, "TLSSNIFF_LATENCY_MS", "%.6f", (double)(x->resp_end_ns - x->start_ns) / 1e6);
        add(&f, "TLSSNIFF_REQUEST_BODY_BYTES", "%llu", (unsigned long long)x->req_body);
        add(&f, "TLSSNIFF_RESPONSE_BODY_BYTES", "%llu", (unsigned long long)x->resp_body);
        add(&f, "TLSSNIFF_PID", "%u", h->pid);
        add(&f, "TLSSNIFF_COMM", "%.*s", TLSSNIFF_COMM_LEN, h->comm);
        add(&f, "TLSSNIFF_ROLE", "%s", output_role_name(c->role));
        add(&f, "TLSSNIFF_LOCAL", "%s:%u", la, h->lport);
        add(&f, "TLSSNIFF_REMOTE", "%s:%u", ra, h->rport);
        add(&f, "TLSSNIFF_CONN_ID", "%llu", (unsigned long long)c->conn_id);
        if (x->grpc) {
                add(&f, "TLSSNIFF_GRPC_SERVICE", "%s", x->grpc_service);
                add(&f, "TLSSNIFF_GRPC_METHOD", "%s", x->grpc_method);
                if (x->grpc_status >= 0)
                        add(&f, "TLSSNIFF_GRPC_STATUS", "%d", x->grpc_status);
        }
        if (x->error)
                add(&f, "TLSSNIFF_ERROR", "%s", x->error);
        r = sd_journal_sendv(f.iov, (int)f.n);
#undef f
        free(fp);
        return r < 0 ? r : 0;
}
