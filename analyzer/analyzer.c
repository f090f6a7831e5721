/* The analyzer's frame loop; see analyzer.h. */
#include <elf.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "analyzer.h"
#include "binary/planfile.h"
#include "binary/gotls.h"
#include "out/journal.h"
#include "binary/tlslib.h"
#include "log.h"

/* Assembled messages go through late socket binding first. */
static void on_assembled(const struct message *m, void *userdata)
{
        struct analyzer *a = userdata;

        (void)identity_submit(&a->identity, m, a->frame_now_ns);
}

static void on_message(const struct message *m, void *userdata)
{
        struct analyzer *a = userdata;
        uint8_t role = m->hdr.role;
        enum role_source rs = ROLE_SOURCE_KERNEL;

        if (role == TLSSNIFF_ROLE_UNKNOWN) {
                rs = ROLE_SOURCE_NONE;
                if (m->hdr.family == 2 /* AF_INET */ || m->hdr.family == 10 /* AF_INET6 */) {
                        listen_ports_refresh(&a->listen);
                        role = listen_ports_has(&a->listen, m->hdr.lport) ? TLSSNIFF_ROLE_SERVER
                                                                          : TLSSNIFF_ROLE_CLIENT;
                        rs = ROLE_SOURCE_LISTEN;
                }
        }
        conn_table_message(&a->conns, m, role, a->frame_now_ns);
        if (!a->opt.no_data && output_message(&a->out, m, role, rs) < 0)
                a->output_errors++;
        if (tail_wants(&a->tail, TAIL_KIND_DATA))
                tail_message(&a->tail, m, role, rs, conn_table_find(&a->conns, m->hdr.conn_id));
}

static void on_exchange(const struct conn_entry *c, const struct exchange *x, void *userdata)
{
        struct analyzer *a = userdata;

        if (output_exchange(&a->out, c, x, a->opt.show_secrets) < 0)
                a->output_errors++;
        if (a->opt.journal_exchanges &&
            journal_exchange(c, x, &a->opt.redact, a->opt.show_secrets) < 0)
                a->journal_errors++;
        if (tail_wants(&a->tail, TAIL_KIND_EXCHANGES))
                tail_exchange(&a->tail, c, x, a->opt.show_secrets);
}

static void on_conn_opened(const struct conn_entry *c, uint64_t seen_ns, void *userdata)
{
        struct analyzer *a = userdata;

        /* Connection records (open and end) go with the exchanges they frame. */
        if (a->opt.exchanges && output_connection_open(&a->out, c, seen_ns) < 0)
                a->output_errors++;
        if (tail_wants(&a->tail, TAIL_KIND_CONNECTIONS))
                tail_connection(&a->tail, c, "open", seen_ns);
}

static void on_conn_closed(const struct conn_entry *c, const char *why, void *userdata)
{
        struct analyzer *a = userdata;

        if (a->opt.exchanges && output_connection(&a->out, c, why) < 0)
                a->output_errors++;
        if (tail_wants(&a->tail, TAIL_KIND_CONNECTIONS))
                tail_connection(&a->tail, c, why, 0);
}

int analyzer_init(struct analyzer *a, const struct analyzer_options *opt)
{

        *a = (struct analyzer){ .opt = *opt, .sock = opt->fd };
        control_init(&a->control, opt->control_fd);
        frame_reader_init(&a->in, true);
        /* Large writes: a 4 KiB stdio buffer turns a busy capture into a syscall storm, and
         * on ext4 each small append into a new block pays for zeroing the rest of it. The
         * buffer is ours: glibc ignores setvbuf's size when the buffer pointer is NULL. It
         * lives as long as the process (stdout may be flushed from exit handlers). */
        if (opt->fd >= 0) {
                static char out_buf[OUTPUT_BUFFER_SIZE];

                /* A regular file's whole blocks go around the page cache (out/direct.h). */
                a->out_stream = direct_stream_open(&a->out_direct, STDOUT_FILENO, out_buf,
                                                   sizeof(out_buf));
                if (!a->out_stream) {
                        log_warning_errno(errno, "Failed to set up the output stream, writing "
                                                 "through stdio: %m");
                        (void)setvbuf(stdout, out_buf, _IOFBF, sizeof(out_buf));
                }
        }
        if (a->out_stream)
                output_init_fd(&a->out, a->out_stream, STDOUT_FILENO, opt->json, opt->max_print);
        else
                output_init(&a->out, stdout, opt->json, opt->max_print);
        a->out.redact = &a->opt.redact;
        if (opt->fd >= 0)
                a->out.flush_at = OUTPUT_BUFFER_SIZE / 2; /* whole lines per write */
        assembler_init(&a->asmb, on_assembled, a);
        identity_init(&a->identity, on_message, a);
        listen_ports_init(&a->listen);
        /* Connections are always tracked (tlssniffctl connections); parsed with --exchanges. */
        if (conn_table_init(&a->conns, opt->exchanges, opt->preview, on_exchange,
                            on_conn_closed, a) < 0)
                return -ENOMEM;
        a->conns.open_cb = on_conn_opened;
        tail_init(&a->tail, 0, opt->max_print);
        tail_set_redaction(&a->tail, &a->opt.redact);
        return 0;
}

void analyzer_done(struct analyzer *a)
{
        frame_reader_done(&a->in);
        output_done(&a->out);
        if (a->out_stream) {
                (void)fclose(a->out_stream); /* writes what it holds */
                a->out_stream = NULL;
                direct_writer_done(&a->out_direct);
        }
        assembler_done(&a->asmb);
        identity_done(&a->identity);
        control_done(&a->control);
        listen_ports_done(&a->listen);
        free(a->file_info);
        if (a->conns.buckets)
                conn_table_done(&a->conns);
        tail_done(&a->tail);
}

static int send_frame(struct analyzer *a, uint16_t type, const msgpack_sbuffer *sb)
{
        uint8_t hdr[FRAME_HEADER_SIZE];
        struct iovec iov[2] = { { hdr, sizeof(hdr) }, { sb->data, sb->size } };
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
        size_t total = sizeof(hdr) + sb->size, done = 0;

        if (a->sock < 0)
                return 0; /* fed by a test or fuzzer */
        frame_header_write(hdr, (uint32_t)sb->size, type);
        while (done < total) {
                ssize_t n = sendmsg(a->sock, &mh, MSG_NOSIGNAL);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                struct pollfd p = { .fd = a->sock, .events = POLLOUT };

                                (void)poll(&p, 1, 1000);
                                continue;
                        }
                        return -errno;
                }
                done += (size_t)n;
                /* Advance the iovecs past what was written. */
                while (mh.msg_iovlen > 0 && (size_t)n >= mh.msg_iov[0].iov_len) {
                        n -= (ssize_t)mh.msg_iov[0].iov_len;
                        mh.msg_iov++;
                        mh.msg_iovlen--;
                }
                if (mh.msg_iovlen > 0) {
                        mh.msg_iov[0].iov_base = (uint8_t *)mh.msg_iov[0].iov_base + n;
                        mh.msg_iov[0].iov_len -= (size_t)n;
                }
        }
        return 0;
}

static int on_l_hello(struct analyzer *a, const uint8_t *body, size_t n)
{
        struct msg_l_hello m;
        msgpack_sbuffer sb;
        int r;

        r = msg_decode_l_hello(body, n, &m);
        if (r < 0)
                return r;
        if (m.version != FRAME_PROTOCOL_VERSION)
                return -EPROTO;
        a->out.realtime_offset_ns = m.realtime_offset_ns;
        tail_set_realtime_offset(&a->tail, m.realtime_offset_ns);
        a->hello = true;
        msgpack_sbuffer_init(&sb);
        msg_encode_a_hello(&sb, FRAME_PROTOCOL_VERSION);
        r = send_frame(a, FRAME_A_HELLO, &sb);
        msgpack_sbuffer_destroy(&sb);
        return r;
}

/* Files with TLS code in them, probed or not, for tlssniffctl processes. */
static void remember_file(struct analyzer *a, const struct msg_file *m, const struct msg_plan *p)
{
        struct file_info *f;

        if (!a->file_info) {
                a->file_info = calloc(ANALYZER_FILE_INFO_MAX, sizeof(*a->file_info));
                if (!a->file_info)
                        return;
        }
        f = &a->file_info[a->file_info_n++ % ANALYZER_FILE_INFO_MAX];
        *f = (struct file_info){
                .file_id = m->file_id,
                .pid = m->pid,
                .kind = m->kind,
                .state = p->n_probes > 0 ? FILE_INFO_PLANNED : FILE_INFO_NOT_PROBED,
                .probes = (uint16_t)p->n_probes,
        };
        /* Cut to fit: a long path keeps its start. */
        snprintf(f->path, sizeof(f->path), "%.*s", (int)sizeof(f->path) - 1, m->path);
        snprintf(f->library, sizeof(f->library), "%.*s", (int)sizeof(f->library) - 1, p->library);
        snprintf(f->reason, sizeof(f->reason), "%.*s", (int)sizeof(f->reason) - 1, p->reason);
}

struct file_info *analyzer_file_info(struct analyzer *a, uint32_t file_id)
{
        size_t n = a->file_info_n < ANALYZER_FILE_INFO_MAX ? a->file_info_n
                                                           : ANALYZER_FILE_INFO_MAX;

        for (size_t i = 0; a->file_info && i < n; i++)
                if (a->file_info[i].file_id == file_id)
                        return &a->file_info[i];
        return NULL;
}

/* A file a planner planned, as loaderd reports it: listed for tlssniffctl processes. */
static int on_l_planned(struct analyzer *a, const uint8_t *body, size_t n)
{
        struct msg_planned m;
        struct msg_plan *plan;
        int r = msg_decode_planned(body, n, &m);

        if (r < 0)
                return r;
        plan = calloc(1, sizeof(*plan));
        if (!plan)
                return -ENOMEM;
        plan->file_id = m.file.file_id;
        plan->n_probes = m.probes;
        memcpy(plan->library, m.library, sizeof(plan->library));
        memcpy(plan->reason, m.reason, sizeof(plan->reason));
        a->files_analyzed++;
        if (plan->n_probes > 0 || plan->library[0])
                remember_file(a, &m.file, plan);
        if (plan->n_probes > 0)
                a->plans_with_probes++;
        free(plan);
        return 0;
}

static int on_record(const uint8_t *rec, size_t len, void *userdata)
{
        struct analyzer *a = userdata;
        struct tlssniff_data_record h;
        const uint8_t *payload;
        uint32_t type = 0;

        if (len >= sizeof(type))
                memcpy(&type, rec, sizeof(type));
        if (type == TLSSNIFF_REC_OPEN) {
                struct tlssniff_open_record o;

                if (len != sizeof(o)) {
                        a->records_bad++;
                        return 0;
                }
                memcpy(&o, rec, sizeof(o));
                a->open_events++;
                identity_opened(&a->identity, &o);
                if (a->conns.buckets)
                        conn_table_opened(&a->conns, &o, now_monotonic_ns());
                return 0;
        }
        if (type == TLSSNIFF_REC_CLOSE) {
                struct tlssniff_close_record c;

                if (len != sizeof(c)) {
                        a->records_bad++;
                        return 0;
                }
                memcpy(&c, rec, sizeof(c));
                a->close_events++;
                if (a->conns.buckets)
                        conn_table_closed(&a->conns, c.conn_id, c.timestamp_ns,
                                          now_monotonic_ns());
                return 0;
        }

        if (record_validate(rec, len, &h, &payload) < 0) {
                a->records_bad++;
                return 0;
        }
        return assembler_add(&a->asmb, &h, payload);
}

static int on_l_records(struct analyzer *a, const uint8_t *body, size_t n)
{
        int r;

        /* One clock read a frame, not two a message: the holds it times last 200-500 ms. */
        a->frame_now_ns = now_monotonic_ns();
        r = msg_records_foreach(body, n, on_record, a);

        a->records_frame_bytes += n;
        /* The output is written out by the loop (flush_output_due) or when half its buffer is
         * full (output_message). Tail subscribers get theirs now; their buffers are small. */
        if (r >= 0)
                tail_flush(&a->tail);
        return r;
}

/* Every second: loaderd's counters in, the analyzer's counts out (its STATUS=). */
static int on_l_stats(struct analyzer *a, const uint8_t *body, size_t n)
{
        /* Handled means written out: with no message held for its socket or its turn in the
         * stream, everything read so far; else what was read by the previous report, a second
         * ago (messages are held at most 200 ms and 500 ms). */
        bool holding = identity_pending(&a->identity) || a->conns.holding > 0;
        struct msg_status st = { .connections = (uint32_t)a->conns.n,
                                 .records_bytes = holding ? a->records_frame_bytes_prev
                                                          : a->records_frame_bytes };
        msgpack_sbuffer sb;
        int r;

        r = msg_decode_stats(body, n, &a->kernel_stats);
        if (r < 0)
                return r;
        output_flush(&a->out);
        /* In the file, not only handed to the writer thread: a SIGKILL loses what it holds. */
        if (a->out_stream)
                (void)direct_writer_drain(&a->out_direct);
        a->out_flushed_ns = now_monotonic_ns();
        a->records_frame_bytes_prev = a->records_frame_bytes;
        st.processes = conn_table_count_pids(&a->conns);
        msgpack_sbuffer_init(&sb);
        msg_encode_status(&sb, &st);
        r = send_frame(a, FRAME_A_STATUS, &sb);
        msgpack_sbuffer_destroy(&sb);
        return r;
}

int analyzer_send_control(struct analyzer *a, const struct msg_control *m)
{
        msgpack_sbuffer sb;
        int r;

        if (a->sock < 0)
                return -ENOTCONN;
        msgpack_sbuffer_init(&sb);
        msg_encode_control(&sb, m);
        r = send_frame(a, FRAME_A_CONTROL, &sb);
        msgpack_sbuffer_destroy(&sb);
        return r;
}

static int on_l_processes(struct analyzer *a, const uint8_t *body, size_t n)
{
        _cleanup_free_ struct msg_processes *m = malloc(sizeof(*m));
        int r;

        if (!m)
                return -ENOMEM;
        r = msg_decode_processes(body, n, m);
        if (r < 0)
                return r;
        control_processes(&a->control, a, m);
        return 0;
}

static int on_l_control_result(struct analyzer *a, const uint8_t *body, size_t n)
{
        struct msg_control_result m;
        int r = msg_decode_control_result(body, n, &m);

        if (r < 0)
                return r;
        control_result(&a->control, m.id, m.ok, m.message);
        return 0;
}

/*
 * A reload changed the output settings: the new ones, as command-line arguments, and the new
 * output's fd when it changed. Exchanges on or off and the placement need a restart (loaderd
 * does not send them changed).
 */
static int on_l_config(struct analyzer *a, const uint8_t *body, size_t n)
{
        _cleanup_free_ struct msg_config *m = malloc(sizeof(*m));
        char *argv[MSG_CONFIG_ARGS_MAX + 2], err[256];
        struct analyzer_options o;
        struct analyzer_cli cli;
        int fd = -1, r;

        if (!m)
                return -ENOMEM;
        r = msg_decode_config(body, n, m);
        if (r >= 0 && m->has_fd) {
                fd = frame_reader_take_fd(&a->in);
                if (fd < 0)
                        r = -EBADMSG;
        }
        if (r < 0) {
                safe_close(fd);
                return r;
        }
        argv[0] = (char *)"tlssniff-analyzer";
        for (uint32_t i = 0; i < m->n_args; i++)
                argv[i + 1] = m->args[i];
        argv[m->n_args + 1] = NULL;
        if (analyzer_parse_options((int)m->n_args + 1, argv, &o, &cli, err, sizeof(err)) < 0) {
                log_warning("Ignoring the new output settings from loaderd: %s", err);
                safe_close(fd);
                return -EBADMSG;
        }
        output_flush(&a->out);
        /* What the writer thread holds belongs to the old file. */
        if (a->out_stream && direct_writer_drain(&a->out_direct) < 0)
                a->output_errors++;
        if (fd >= 0) {
                /* The output is standard output: the new file takes its place. */
                if (dup2(fd, STDOUT_FILENO) < 0)
                        log_warning_errno(errno, "Failed to switch to the new output: %m");
                safe_close(fd);
                if (a->out_stream)
                        direct_writer_reset(&a->out_direct);
                output_file_changed(&a->out);
        }
        a->opt.json = o.json;
        a->opt.max_print = o.max_print;
        a->opt.no_data = o.no_data;
        a->opt.show_secrets = o.show_secrets;
        a->opt.journal_exchanges = o.journal_exchanges;
        a->opt.preview = o.preview;
        a->opt.redact = o.redact;
        a->opt.log_level = o.log_level;
        a->opt.data_gid = o.data_gid;
        a->out.json = o.json;
        a->out.max_print = o.max_print;
        tail_set_max_print(&a->tail, o.max_print);
        a->conns.preview = o.preview;
        log_set_max_level(o.log_level);
        a->reconfigurations++;
        log_debug("New output settings applied (%u arguments).", m->n_args);
        return 0;
}

static int on_l_attached(struct analyzer *a, const uint8_t *body, size_t n)
{
        struct msg_attached m;
        struct file_info *f;
        int r = msg_decode_attached(body, n, &m);

        if (r < 0)
                return r;

        if (m.error[0])
                log_debug("File %u: attaching failed: %s", m.file_id, m.error);
        f = analyzer_file_info(a, m.file_id);
        if (f) {
                f->state = m.error[0] ? FILE_INFO_FAILED : FILE_INFO_ATTACHED;
                f->probes = (uint16_t)m.probes;
                if (m.error[0])
                        snprintf(f->reason, sizeof(f->reason), "%.*s", (int)sizeof(f->reason) - 1,
                                 m.error);
        }
        return 0;
}

static int on_l_ready(struct analyzer *a, const uint8_t *body, size_t n)
{
        struct msg_ready m;

        return msg_decode_ready(body, n, &m);
}

static const struct {
        uint16_t type;
        int (*handler)(struct analyzer *a, const uint8_t *body, size_t n);
        bool needs_hello;
} handlers[] = {
        { FRAME_L_HELLO, on_l_hello, false },
        { FRAME_L_RECORDS, on_l_records, true },  { FRAME_L_STATS, on_l_stats, true },
        { FRAME_L_ATTACHED, on_l_attached, true }, { FRAME_L_READY, on_l_ready, true },
        { FRAME_L_CONFIG, on_l_config, true },
        { FRAME_L_CONTROL_RESULT, on_l_control_result, true },
        { FRAME_L_PROCESSES, on_l_processes, true },
        { FRAME_L_PLANNED, on_l_planned, true },
};

int analyzer_handle_frame(struct analyzer *a, const struct frame_header *h, const uint8_t *body)
{
        a->frames++;
        for (size_t i = 0; i < ELEMENTSOF(handlers); i++) {
                int r;

                if (handlers[i].type != h->type)
                        continue;
                if (handlers[i].needs_hello != a->hello) {
                        a->frames_bad++;
                        return -EPROTO;
                }
                r = handlers[i].handler(a, body, h->length);
                if (r == -EBADMSG)
                        a->frames_bad++;
                return r;
        }
        a->frames_bad++;
        return -EBADMSG;
}

unsigned analyzer_collect_stats(const struct analyzer *a, const char **names, uint64_t *values)
{
        unsigned n = 0;

        for (uint32_t i = 0; i < a->kernel_stats.n; i++) {
                names[n] = a->kernel_stats.s[i].name;
                values[n++] = a->kernel_stats.s[i].value;
        }
#define ADD(name_, v_)                                                                             \
        do {                                                                                       \
                if (n < ANALYZER_STATS_MAX) {                                                      \
                        names[n] = name_;                                                          \
                        values[n++] = (v_);                                                        \
                }                                                                                  \
        } while (0)
        ADD("analyzer_frames", a->frames);
        ADD("analyzer_frames_bad", a->frames_bad);
        ADD("analyzer_records", a->asmb.records);
        ADD("analyzer_records_bad", a->records_bad);
        ADD("analyzer_messages", a->asmb.messages);
        ADD("analyzer_split_messages", a->asmb.split_messages);
        ADD("analyzer_late_socket_messages", a->identity.late_bound);
        ADD("analyzer_socketless_messages", a->identity.released_bare);
        ADD("analyzer_files_analyzed", a->files_analyzed);
        ADD("analyzer_files_with_tls", a->plans_with_probes);
        ADD("analyzer_open_events", a->open_events);
        ADD("analyzer_journal_errors", a->journal_errors);
        ADD("analyzer_output_errors", a->output_errors);
        ADD("analyzer_output_direct_bytes",
            a->out_stream ? direct_writer_direct_bytes(&a->out_direct) : 0);
        ADD("analyzer_control_requests", a->control.requests);
        ADD("analyzer_control_refused", a->control.refused);
        ADD("analyzer_conns", a->conns.n);
        ADD("analyzer_conns_evicted", a->conns.evicted);
        ADD("analyzer_conns_expired", a->conns.expired);
        ADD("analyzer_conns_closed", a->conns.closed);
        ADD("analyzer_close_events", a->close_events);
        ADD("analyzer_exchanges", a->conns.exchanges);
        ADD("analyzer_http_errors", a->conns.http_errors);
        ADD("analyzer_stream_gaps", a->conns.gaps);
        ADD("analyzer_stream_held", a->conns.held);
        ADD("analyzer_stream_hold_timeouts", a->conns.hold_timeouts);
        ADD("analyzer_tail_subscribers", a->tail.n);
        ADD("analyzer_tail_drops", a->tail.dropped_records);
        ADD("analyzer_tail_format_errors", a->tail.format_errors);
        ADD("analyzer_control_timeouts", a->control.timeouts);
        ADD("analyzer_control_slow_clients", a->control.slow_clients);
        ADD("analyzer_reconfigurations", a->reconfigurations);
#undef ADD
        return n;
}

static void write_final_stats(struct analyzer *a)
{
        const char *names[ANALYZER_STATS_MAX];
        uint64_t values[ANALYZER_STATS_MAX];
        unsigned n = analyzer_collect_stats(a, names, values);

        (void)output_stats(&a->out, names, values, n);
}

/*
 * The output is written out when the loop waits for frames: at once if the last write is
 * ANALYZER_OUTPUT_COALESCE_NS old (a quiet capture's lines appear as soon as they are made),
 * else when it is (a busy capture writes fewer, larger batches than one per frame: each is a
 * hand-over to the writer thread and a device request). Returns the milliseconds to wait for
 * that, or -1.
 */
static int flush_output_due(struct analyzer *a)
{
        uint64_t now, due;

        if (__fpending(a->out.f) == 0)
                return -1;
        now = now_monotonic_ns();
        due = a->out_flushed_ns + ANALYZER_OUTPUT_COALESCE_NS;
        if (now >= due) {
                output_flush(&a->out);
                a->out_flushed_ns = now;
                return -1;
        }
        return (int)((due - now + 999999) / 1000000);
}

int analyzer_run(struct analyzer *a)
{
        struct frame_header h;
        const uint8_t *body;
        int r;

        for (;;) {
                bool eof;

                a->frame_now_ns = now_monotonic_ns();
                identity_expire(&a->identity, a->frame_now_ns, false);
                if (a->conns.buckets)
                        conn_table_expire(&a->conns, a->frame_now_ns);
                r = frame_reader_fill(&a->in, a->sock);
                if (r == -EAGAIN) {
                        struct pollfd p[2 + TAIL_SUBSCRIBERS_MAX + CONTROL_READING_MAX] = {
                                { .fd = a->sock, .events = POLLIN },
                                { .fd = a->control.listen_fd, .events = POLLIN } };
                        int timeout = identity_pending(&a->identity) ||
                                                      a->conns.closing_n > 0 ||
                                                      a->conns.holding > 0
                                              ? 50
                                      : a->control.n_pending > 0 ? 1000
                                                                 : -1;
                        int out_wait = flush_output_due(a);
                        int line_wait = control_next_deadline(&a->control, now_monotonic_ns());
                        int n_tail, n_ctl;

                        if (out_wait >= 0 && (timeout < 0 || out_wait < timeout))
                                timeout = out_wait;
                        if (line_wait >= 0 && (timeout < 0 || line_wait < timeout))
                                timeout = line_wait;
                        tail_flush(&a->tail);
                        n_tail = tail_pollfds(&a->tail, p + 2, TAIL_SUBSCRIBERS_MAX);
                        n_ctl = control_pollfds(&a->control, p + 2 + n_tail,
                                                CONTROL_READING_MAX);
                        if (poll(p, 2 + (nfds_t)n_tail + (nfds_t)n_ctl, timeout) < 0 &&
                            errno != EINTR)
                                return log_error_errno(errno, "poll failed: %m");
                        tail_handle(&a->tail, p + 2, n_tail);
                        control_handle(&a->control, a, p + 2 + n_tail, n_ctl);
                        control_expire(&a->control, now_monotonic_ns());
                        if (a->control.listen_fd >= 0 && (p[1].revents & POLLIN))
                                control_serve(&a->control, a);
                        continue;
                }
                if (r < 0)
                        return log_error_errno(r, "Failed to read from loaderd: %m");
                eof = r == 0;
                while ((r = frame_reader_next(&a->in, &h, &body)) > 0) {
                        r = analyzer_handle_frame(a, &h, body);
                        if (r == -EBADMSG) {
                                log_warning("Ignoring malformed %s frame from loaderd.",
                                            frame_type_name(h.type));
                                continue;
                        }
                        if (r < 0)
                                return log_error_errno(r, "Failed to handle %s frame: %m",
                                                       frame_type_name(h.type));
                }
                if (r < 0)
                        return log_error_errno(r, "Broken frame stream from loaderd: %m");
                if (eof)
                        break;
        }
        a->frame_now_ns = now_monotonic_ns();
        assembler_flush(&a->asmb);
        identity_expire(&a->identity, a->frame_now_ns, true);
        if (a->conns.buckets)
                conn_table_done(&a->conns); /* pending exchanges, as incomplete */
        write_final_stats(a);
        return 0;
}
