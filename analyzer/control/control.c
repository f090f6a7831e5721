/* Control socket server; see control.h. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "analyzer.h"
#include "control.h"
#include "config.h"
#include "log.h"

#define GROUPS_MAX 256

void control_init(struct control *c, int listen_fd)
{
        *c = (struct control){ .listen_fd = listen_fd, .started_ns = now_monotonic_ns() };
        /* loaderd creates it nonblocking; set it here only for one that is not (tests): the
         * seccomp filter lets F_SETFL through only with O_APPEND (sandbox.c). */
        if (listen_fd >= 0 && !(fcntl(listen_fd, F_GETFL) & O_NONBLOCK))
                (void)fcntl(listen_fd, F_SETFL, O_NONBLOCK);
}

void control_done(struct control *c)
{
        for (unsigned i = 0; i < c->n_pending; i++)
                close(c->pending[i].fd);
        c->n_pending = 0;
        for (unsigned i = 0; i < c->n_reading; i++)
                close(c->reading[i].fd);
        c->n_reading = 0;
        c->listen_fd = safe_close(c->listen_fd);
}

static bool member(gid_t g, gid_t gid, const gid_t *groups, int n_groups)
{
        if (g == (gid_t)-1)
                return false;
        if (gid == g)
                return true;
        for (int i = 0; i < n_groups; i++)
                if (groups[i] == g)
                        return true;
        return false;
}

enum control_access control_access_of(uid_t uid, gid_t gid, const gid_t *groups, int n_groups,
                                      gid_t group, gid_t data_group)
{
        if (uid == 0)
                return CONTROL_ADMIN;
        if (member(data_group, gid, groups, n_groups))
                return CONTROL_DATA;
        if (member(group, gid, groups, n_groups))
                return CONTROL_READ;
        return CONTROL_NONE;
}

/* Appends to out, never past its end; the caller checks for truncation. */
static void put(char *out, size_t size, size_t *len, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void put(char *out, size_t size, size_t *len, const char *fmt, ...)
{
        va_list ap;
        int k;

        if (*len >= size)
                return;
        va_start(ap, fmt);
        k = vsnprintf(out + *len, size - *len, fmt, ap);
        va_end(ap);
        if (k > 0)
                *len += (size_t)k;
}

/*
 * The tracked connections, most recently active first, as many as fit in the answer; "shown"
 * says how many of "tracked" that is. comm is bytes from the kernel: only [A-Za-z0-9._-] are
 * kept, anything else becomes '?'.
 */
static void connections_answer(struct analyzer *a, char *out, size_t out_size, size_t *len)
{
        const size_t room = 512; /* more than one entry takes */
        uint64_t now = now_monotonic_ns();
        unsigned shown = 0;

        put(out, out_size, len, "{\"ok\":true,\"connections\":{\"tracked\":%zu,\"list\":[",
            a->conns.n);
        for (const struct conn_entry *c = a->conns.lru_head; c; c = c->lru_next) {
                const struct tlssniff_data_record *h = &c->id;
                char comm[TLSSNIFF_COMM_LEN + 1], la[INET6_ADDRSTRLEN], ra[INET6_ADDRSTRLEN];
                size_t i;

                if (*len + room + 64 > out_size)
                        break;
                for (i = 0; i < TLSSNIFF_COMM_LEN && h->comm[i]; i++) {
                        char ch = h->comm[i];

                        comm[i] = (isalnum((unsigned char)ch) || ch == '.' || ch == '_' ||
                                   ch == '-') ? ch : '?';
                }
                comm[i] = '\0';
                format_addr(h->family, h->laddr, la, sizeof(la));
                format_addr(h->family, h->raddr, ra, sizeof(ra));
                put(out, out_size, len,
                    "%s{\"conn_id\":%llu,\"pid\":%u,\"comm\":\"%s\",\"role\":\"%s\","
                    "\"local\":\"%s:%u\",\"remote\":\"%s:%u\",\"protocol\":\"%s\","
                    "\"bytes_sent\":%llu,\"bytes_received\":%llu,\"idle_ms\":%llu}",
                    shown ? "," : "", (unsigned long long)c->conn_id, h->pid, comm,
                    output_role_name(c->role), la, h->lport, ra, h->rport, output_proto_name(c->proto),
                    (unsigned long long)c->bytes[TLSSNIFF_DIR_WRITE],
                    (unsigned long long)c->bytes[TLSSNIFF_DIR_READ],
                    (unsigned long long)((now - c->last_active_ns) / 1000000));
                shown++;
        }
        put(out, out_size, len, "],\"shown\":%u}}\n", shown);
}

/*
 * A string from a file or the kernel, for JSON: printable ASCII but quote, backslash and
 * braces (tlssniffctl's table printer splits objects at braces).
 */
static void put_clean(char *out, size_t out_size, size_t *len, const char *s)
{
        char buf[512];
        size_t i;

        for (i = 0; s[i] && i < sizeof(buf) - 1; i++)
                buf[i] = s[i] >= 0x20 && s[i] < 0x7f && !strchr("\"\\{}", s[i]) ? s[i] : '?';
        buf[i] = '\0';
        put(out, out_size, len, "\"%s\"", buf);
}

/* table[i] of a table of names with gaps, "?" for anything else. */
#define NAME_OF(table, i) ((size_t)(i) < ELEMENTSOF(table) && (table)[i] ? (table)[i] : "?")

static const char *const file_states[] = {
        [FILE_INFO_PLANNED] = "planned",
        [FILE_INFO_ATTACHED] = "attached",
        [FILE_INFO_FAILED] = "failed",
        [FILE_INFO_NOT_PROBED] = "not probed",
};

/*
 * Files with TLS code in them, newest first, as many as fit: what was found (OpenSSL library,
 * Go version and ABI), the process it was found in, and whether it is probed, and if not why.
 * Written as "files":{...} inside the answer.
 */
static void files_answer(struct analyzer *a, char *out, size_t out_size, size_t *len)
{
        const size_t room = 1400; /* more than one entry takes */
        size_t n = a->file_info_n < ANALYZER_FILE_INFO_MAX ? a->file_info_n
                                                           : ANALYZER_FILE_INFO_MAX;
        unsigned shown = 0;

        put(out, out_size, len, "\"files\":{\"files_analyzed\":%llu,\"files_with_tls\":%zu,"
                                "\"list\":[",
            (unsigned long long)a->files_analyzed, a->file_info_n);
        for (size_t k = 0; k < n && a->file_info; k++) {
                const struct file_info *f =
                        &a->file_info[(a->file_info_n - 1 - k) % ANALYZER_FILE_INFO_MAX];

                if (*len + room + 64 > out_size)
                        break;
                put(out, out_size, len, "%s{\"pid\":%u,\"kind\":\"%s\",\"path\":", shown ? "," : "",
                    f->pid, f->kind == MSG_FILE_EXECUTABLE ? "executable" : "library");
                put_clean(out, out_size, len, f->path);
                put(out, out_size, len, ",\"library\":");
                put_clean(out, out_size, len, f->library);
                put(out, out_size, len, ",\"state\":\"%s\",\"probes\":%u,\"reason\":",
                    NAME_OF(file_states, f->state),
                    f->probes);
                put_clean(out, out_size, len, f->reason);
                put(out, out_size, len, "}");
                shown++;
        }
        put(out, out_size, len, "],\"shown\":%u}", shown);
}

static const char *const process_states[] = {
        [MSG_PROCESS_TRACED] = "traced",
        [MSG_PROCESS_NOT_TARGET] = "not a target",
        [MSG_PROCESS_DETACHED] = "detached",
        [MSG_PROCESS_NO_PROBES] = "no probes",
        [MSG_PROCESS_NO_TLS] = "no TLS",
};

/*
 * The answer to "processes [PID]": loaderd's list of processes (m; NULL when loaderd cannot
 * be asked) with what the analyzer found in each of their TLS files, then the files.
 */
static void processes_answer(struct analyzer *a, const struct msg_processes *m, char *out,
                             size_t out_size, size_t *len)
{
        const size_t room = 2400; /* more than one entry takes */
        unsigned shown = 0;

        put(out, out_size, len, "{\"ok\":true,\"processes\":{\"total\":%u,\"list\":[",
            m ? m->total : 0);
        for (uint32_t i = 0; m && i < m->n && i < MSG_PROCESSES_MAX; i++) {
                const struct msg_process *p = &m->p[i];
                char comm[TLSSNIFF_COMM_LEN + 1], tls[1200];
                size_t tl = 0;

                if (*len + room + 64 > out_size)
                        break;
                memcpy(comm, p->comm, TLSSNIFF_COMM_LEN);
                comm[TLSSNIFF_COMM_LEN] = '\0';
                tls[0] = '\0';
                for (uint32_t k = 0; k < p->n_files && k < MSG_PROCESS_FILES_MAX; k++) {
                        const struct file_info *f = analyzer_file_info(a, p->files[k]);

                        put(tls, sizeof(tls), &tl, "%s%s (%s, %u probes)", k ? "; " : "",
                            f && f->library[0] ? f->library : "?",
                            f ? NAME_OF(file_states, f->state) : "?",
                            f ? f->probes : 0);
                }
                put(out, out_size, len, "%s{\"pid\":%u,\"comm\":", shown ? "," : "", p->pid);
                put_clean(out, out_size, len, comm);
                put(out, out_size, len, ",\"exe\":");
                put_clean(out, out_size, len, p->exe);
                put(out, out_size, len, ",\"state\":\"%s\",\"traced\":%s,\"tls\":",
                    NAME_OF(process_states, p->status),
                    p->status == MSG_PROCESS_TRACED ? "true" : "false");
                put_clean(out, out_size, len, tls);
                put(out, out_size, len, ",\"reason\":");
                put_clean(out, out_size, len, p->reason);
                put(out, out_size, len, "}");
                shown++;
        }
        put(out, out_size, len, "],\"shown\":%u%s},", shown,
            m ? "" : ",\"error\":\"loaderd cannot be asked\"");
        files_answer(a, out, out_size, len);
        put(out, out_size, len, "}\n");
}

static bool is_name_char(char ch)
{
        return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
}


/* A query for loaderd (processes), which answers with L_PROCESSES or L_CONTROL_RESULT. */
static int send_change(struct analyzer *a, struct control *c, uint8_t verb, const char *arg,
                       char *out, size_t out_size)
{
        struct msg_control m = { .verb = verb };
        int r;

        if (c->n_pending >= CONTROL_PENDING_MAX) {
                c->refused++;
                snprintf(out, out_size, "{\"ok\":false,\"error\":\"busy: %d changes are "
                                        "waiting for loaderd\"}\n", CONTROL_PENDING_MAX);
                return -EBUSY;
        }
        m.id = ++c->next_id;
        snprintf(m.arg, sizeof(m.arg), "%s", arg);
        r = analyzer_send_control(a, &m);
        if (r < 0) {
                c->refused++;
                snprintf(out, out_size, "{\"ok\":false,\"error\":\"loaderd cannot be reached\"}\n");
                return r;
        }
        c->last_id = m.id;
        out[0] = '\0';
        return CONTROL_PENDING;
}

int control_answer(struct analyzer *a, struct control *c, enum control_access access,
                   const char *request, size_t n, char *out, size_t out_size)
{
        char cmd[32], arg[CONTROL_REQUEST_MAX];
        size_t len = 0, k = 0, m = 0;

        c->requests++;
        /* A word of [a-z], then optionally one space and printable ASCII, then a newline. */
        while (k < n && k < sizeof(cmd) - 1 && request[k] >= 'a' && request[k] <= 'z') {
                cmd[k] = request[k];
                k++;
        }
        cmd[k] = '\0';
        if (k > 0 && k < n && request[k] == ' ') {
                for (size_t i = k + 1; i < n && request[i] != '\n' && m < sizeof(arg) - 1; i++) {
                        if (request[i] < 0x20 || request[i] > 0x7e)
                                break;
                        arg[m++] = request[i];
                }
                k += 1 + m;
        }
        arg[m] = '\0';
        if (k == 0 || k != n - 1 || request[k] != '\n') {
                c->refused++;
                snprintf(out, out_size, "{\"ok\":false,\"error\":\"malformed request\"}\n");
                return -EINVAL;
        }
        if (access == CONTROL_NONE) {
                c->refused++;
                snprintf(out, out_size, "{\"ok\":false,\"error\":\"permission denied\"}\n");
                return -EACCES;
        }
        if (strcmp(cmd, "tail") == 0) {
                out[0] = '\0';
                return CONTROL_TAIL;
        }
        if (strcmp(cmd, "attach") == 0 || strcmp(cmd, "detach") == 0 ||
            strcmp(cmd, "reload") == 0) {
                /* Changes are loaderd's to authorise, from the kernel's credentials of the
                 * client on a socket it serves itself; this side does not pass them on. */
                c->refused++;
                snprintf(out, out_size,
                         "{\"ok\":false,\"error\":\"%s goes to loaderd's admin socket (the "
                         "control socket's path with .admin added, root only); tlssniffctl "
                         "sends it there\"}\n",
                         cmd);
                return -EACCES;
        }
        if (strcmp(cmd, "processes") == 0) {
                bool pid = m > 0;

                for (size_t i = 0; i < m; i++)
                        pid = pid && arg[i] >= '0' && arg[i] <= '9';
                if (m > 0 && (!pid || m > 10)) {
                        c->refused++;
                        snprintf(out, out_size, "{\"ok\":false,\"error\":\"processes takes "
                                                "one process id or nothing\"}\n");
                        return -EINVAL;
                }
                /* loaderd reads /proc; without it (tests, fuzzing), the files alone. */
                if (send_change(a, c, MSG_CONTROL_PROCESSES, arg, out, out_size) ==
                    CONTROL_PENDING)
                        return CONTROL_PENDING;
                len = 0;
                processes_answer(a, NULL, out, out_size, &len);
                return len < out_size ? 0 : -E2BIG;
        }
        if (m > 0) {
                c->refused++;
                snprintf(out, out_size, "{\"ok\":false,\"error\":\"%s takes no argument\"}\n",
                         strlen(cmd) < 16 ? cmd : "this request");
                return -EINVAL;
        }
        if (strcmp(cmd, "stats") == 0) {
                const char *names[ANALYZER_STATS_MAX];
                uint64_t values[ANALYZER_STATS_MAX];
                unsigned cnt = analyzer_collect_stats(a, names, values);

                put(out, out_size, &len, "{\"ok\":true,\"stats\":{");
                for (unsigned i = 0; i < cnt; i++) {
                        const char *p = names[i];
                        bool clean = *p != '\0';

                        for (; *p; p++)
                                clean = clean && is_name_char(*p);
                        if (!clean)
                                continue; /* names are [a-z0-9_]; anything else is dropped */
                        put(out, out_size, &len, "%s\"%s\":%llu", i ? "," : "", names[i],
                            (unsigned long long)values[i]);
                }
                put(out, out_size, &len, "}}\n");
        } else if (strcmp(cmd, "status") == 0) {
                put(out, out_size, &len,
                    "{\"ok\":true,\"status\":{\"version\":\"%s\",\"uptime_s\":%llu,"
                    "\"files_analyzed\":%llu,\"files_with_tls\":%llu,\"messages\":%llu,"
                    "\"connections\":%zu}}\n",
                    TLSSNIFF_VERSION,
                    (unsigned long long)((now_monotonic_ns() - c->started_ns) / 1000000000ull),
                    (unsigned long long)a->files_analyzed,
                    (unsigned long long)a->plans_with_probes,
                    (unsigned long long)a->asmb.messages, a->conns.n);
        } else if (strcmp(cmd, "connections") == 0) {
                connections_answer(a, out, out_size, &len);
        } else {
                c->refused++;
                snprintf(out, out_size, "{\"ok\":false,\"error\":\"unknown request\"}\n");
                return -EINVAL;
        }
        if (len >= out_size) {
                snprintf(out, out_size, "{\"ok\":false,\"error\":\"answer too large\"}\n");
                return -E2BIG;
        }
        return 0;
}

void control_result(struct control *c, uint32_t id, bool ok, const char *message)
{
        char out[MSG_PATH_MAX + 64], text[MSG_PATH_MAX];

        for (unsigned i = 0; i < c->n_pending; i++) {
                if (c->pending[i].id != id)
                        continue;
                json_text(text, sizeof(text), message);
                if (ok)
                        snprintf(out, sizeof(out), "{\"ok\":true,\"result\":\"%s\"}\n", text);
                else
                        snprintf(out, sizeof(out), "{\"ok\":false,\"error\":\"%s\"}\n", text);
                (void)send(c->pending[i].fd, out, strlen(out), MSG_NOSIGNAL | MSG_DONTWAIT);
                close(c->pending[i].fd);
                c->pending[i] = c->pending[--c->n_pending];
                return;
        }
}

void control_processes(struct control *c, struct analyzer *a, const struct msg_processes *m)
{
        const size_t size = 256u << 10;
        _cleanup_free_ char *out = NULL;
        size_t len = 0;

        for (unsigned i = 0; i < c->n_pending; i++) {
                if (c->pending[i].id != m->id)
                        continue;
                out = malloc(size);
                if (out) {
                        processes_answer(a, m, out, size, &len);
                        if (len >= size)
                                snprintf(out, size, "{\"ok\":false,\"error\":\"answer too "
                                                    "large\"}\n");
                        (void)send(c->pending[i].fd, out, strlen(out),
                                   MSG_NOSIGNAL | MSG_DONTWAIT);
                }
                close(c->pending[i].fd);
                c->pending[i] = c->pending[--c->n_pending];
                return;
        }
}

void control_expire(struct control *c, uint64_t now_ns)
{
        static const char timeout[] = "{\"ok\":false,\"error\":\"loaderd did not answer\"}\n";
        static const char slow[] =
                "{\"ok\":false,\"error\":\"no whole request line within 1 s\"}\n";

        for (unsigned i = 0; i < c->n_reading;) {
                if (now_ns < c->reading[i].deadline_ns) {
                        i++;
                        continue;
                }
                c->slow_clients++;
                c->refused++;
                (void)send(c->reading[i].fd, slow, sizeof(slow) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
                close(c->reading[i].fd);
                c->reading[i] = c->reading[--c->n_reading];
        }

        for (unsigned i = 0; i < c->n_pending;) {
                if (now_ns < c->pending[i].deadline_ns) {
                        i++;
                        continue;
                }
                c->timeouts++;
                (void)send(c->pending[i].fd, timeout, sizeof(timeout) - 1,
                           MSG_NOSIGNAL | MSG_DONTWAIT);
                close(c->pending[i].fd);
                c->pending[i] = c->pending[--c->n_pending];
        }
}

/* Answers a client's request line (req, n bytes); true when its fd was kept (a change waiting
 * for loaderd, a tail). */
static bool answer(struct control *c, struct analyzer *a, int fd, enum control_access access,
                   char *req, size_t n)
{
        char out[16384];
        int r;

        r = control_answer(a, c, access, req, n, out, sizeof(out));
        if (r == CONTROL_PENDING) {
                c->pending[c->n_pending++] = (struct control_pending){
                        .fd = fd, .id = c->last_id,
                        .deadline_ns = now_monotonic_ns() + CONTROL_PENDING_NS };
                return true;
        }
        if (r == CONTROL_TAIL) {
                char err[256], text[256];

                /* "tail ARGS\n": the arguments without the newline. */
                req[n - 1] = '\0';
                if (tail_add_access(&a->tail, fd, n > 5 ? req + 5 : "", a->opt.exchanges,
                                    access >= CONTROL_DATA, err, sizeof(err)) == 0)
                        return true;
                c->refused++;
                json_text(text, sizeof(text), err);
                snprintf(out, sizeof(out), "{\"ok\":false,\"error\":\"%s\"}\n", text);
        }
        (void)send(fd, out, strlen(out), MSG_NOSIGNAL | MSG_DONTWAIT);
        return false;
}

/* Reads what client i sent; answers and forgets it once its line is whole, it closed, or its
 * buffer is full. Never waits: the socket is nonblocking. */
static void read_more(struct control *c, struct analyzer *a, unsigned i)
{
        struct control_reading *cr = &c->reading[i];
        ssize_t k = 0;

        while (cr->n < sizeof(cr->req)) {
                k = read(cr->fd, cr->req + cr->n, sizeof(cr->req) - cr->n);
                if (k <= 0)
                        break;
                cr->n += (size_t)k;
                if (memchr(cr->req, '\n', cr->n))
                        break;
        }
        if (k < 0 && (errno == EAGAIN || errno == EINTR) && !memchr(cr->req, '\n', cr->n))
                return; /* more to come */
        if (!answer(c, a, cr->fd, cr->access, cr->req, cr->n))
                close(cr->fd);
        c->reading[i] = c->reading[--c->n_reading];
}

void control_serve(struct control *c, struct analyzer *a)
{
        for (int i = 0; i < 16; i++) {
                int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                struct ucred cred;
                socklen_t sl = sizeof(cred);
                gid_t groups[GROUPS_MAX];
                socklen_t gl = sizeof(groups);
                enum control_access access = CONTROL_NONE;
                int n_groups = 0;

                if (fd < 0)
                        return;
                if (c->n_reading == CONTROL_READING_MAX) {
                        /* Every slot holds a client still sending: this one is not waited for. */
                        static const char busy[] =
                                "{\"ok\":false,\"error\":\"too many clients sending\"}\n";

                        c->refused++;
                        (void)send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
                        close(fd);
                        continue;
                }
                if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &sl) == 0) {
                        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &gl) == 0)
                                n_groups = (int)(gl / sizeof(gid_t));
                        access = control_access_of(cred.uid, cred.gid, groups, n_groups,
                                                   getgid(), a->opt.data_gid);
                }
                /* The whole line within 1 s, read as it comes (control_handle), never waited
                 * for: a client sending a byte at a time holds a slot, not the analyzer. */
                c->reading[c->n_reading] = (struct control_reading){
                        .fd = fd, .access = access,
                        .deadline_ns = now_monotonic_ns() + CONTROL_LINE_NS };
                read_more(c, a, c->n_reading++);
        }
}

int control_pollfds(const struct control *c, struct pollfd *p, int max)
{
        int n = 0;

        for (unsigned i = 0; i < c->n_reading && n < max; i++)
                p[n++] = (struct pollfd){ .fd = c->reading[i].fd, .events = POLLIN };
        return n;
}

void control_handle(struct control *c, struct analyzer *a, const struct pollfd *p, int n)
{
        for (int k = 0; k < n; k++) {
                if (!p[k].revents)
                        continue;
                for (unsigned i = 0; i < c->n_reading; i++)
                        if (c->reading[i].fd == p[k].fd) {
                                read_more(c, a, i);
                                break;
                        }
        }
}

int control_next_deadline(const struct control *c, uint64_t now_ns)
{
        uint64_t first = UINT64_MAX;

        for (unsigned i = 0; i < c->n_reading; i++)
                if (c->reading[i].deadline_ns < first)
                        first = c->reading[i].deadline_ns;
        if (first == UINT64_MAX)
                return -1;
        return first <= now_ns ? 0 : (int)((first - now_ns + 999999) / 1000000);
}
