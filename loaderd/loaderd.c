/*
 * loaderd's event loop: BPF set-up, the frame protocol with the analyzer, probe attachment and
 * the ring-buffer drain with backpressure. See loaderd.h for its place in the design.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <systemd/sd-daemon.h>
#include <bpf/libbpf.h>

#include "admin.h"
#include "config.h"
#include "loaderd.h"
#include "openssl.skel.h"
#include "plan.h"
#include "stats.h"

/* epoll tags (the low 4 bits; a planner's file id is above them, PLANNER_TAG). */

enum proto_state {
        ST_HELLO = 1u << 0,   /* waiting for the analyzer's hello */
        ST_RUNNING = 1u << 1,
};

static uint64_t kernel_dev(uint64_t st_dev)
{
        return ((uint64_t)major(st_dev) << 20) | minor(st_dev);
}

static struct traced_file *file_by_id(struct loaderd *l, uint32_t id)
{
        for (unsigned i = 0; i < l->n_files; i++)
                if (l->files[i].id == id)
                        return &l->files[i];
        return NULL;
}

bool loaderd_knows_file(struct loaderd *l, uint64_t dev, uint64_t ino)
{
        for (unsigned i = 0; i < l->n_files; i++)
                if (l->files[i].dev == dev && l->files[i].ino == ino)
                        return true;
        return false;
}

void loaderd_mark_known(struct loaderd *l, uint64_t dev, uint64_t ino, bool kernel_encoding)
{
        struct tlssniff_file_key key = { .dev = kernel_encoding ? dev : kernel_dev(dev),
                                         .ino = ino };
        uint8_t one = 1;

        /* Best effort: a full map only means more notifications, which are deduplicated. */
        (void)bpf_map__update_elem(l->skel->maps.known_files, &key, sizeof(key), &one,
                                   sizeof(one), BPF_ANY);
}

static int send_frame(struct loaderd *l, uint16_t type, const msgpack_sbuffer *sb, int fd)
{
        int r;

        if (frame_writer_pending(&l->out) + FRAME_HEADER_SIZE + sb->size > LOADERD_QUEUE_MAX) {
                /* An analyzer that stopped reading cannot make root's memory grow. */
                l->frames_dropped++;
                return -ENOBUFS;
        }
        r = frame_writer_put(&l->out, type, sb->data, sb->size, fd);

        if (r < 0)
                return r;
        r = frame_writer_flush(&l->out, l->sock);
        return r == -EAGAIN ? 0 : r;
}

int loaderd_send_frame(struct loaderd *l, uint16_t type, const msgpack_sbuffer *sb)
{
        return send_frame(l, type, sb, -1);
}

int loaderd_evict_file(struct loaderd *l)
{
        for (unsigned i = 0; i < l->n_files; i++) {
                struct traced_file *tf = &l->files[i];

                if (tf->state != FILE_NO_TLS && tf->state != FILE_FAILED)
                        continue;
                detach_file(l, tf);
                safe_close(tf->fd);
                free(tf->path);
                memmove(tf, tf + 1, (l->n_files - i - 1) * sizeof(*tf));
                l->n_files--;
                l->files_evicted++;
                return 0;
        }
        return -ENOSPC;
}

int loaderd_offer_file(struct loaderd *l, int fd, const char *path, pid_t pid, uint8_t kind,
                       bool initial)
{
        char ep[LOG_ESCAPE_MAX];
        struct traced_file *tf;
        struct stat st;
        int r;

        if (fstat(fd, &st) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        if (l->n_files >= LOADERD_FILES_MAX && loaderd_evict_file(l) < 0) {
                l->files_refused++;
                close(fd);
                return -ENOSPC;
        }
        if (l->n_files == l->cap_files) {
                unsigned cap = l->cap_files ? l->cap_files * 2 : 64;
                struct traced_file *p = realloc(l->files, cap * sizeof(*p));

                if (!p) {
                        close(fd);
                        return -ENOMEM;
                }
                l->files = p;
                l->cap_files = cap;
        }
        tf = &l->files[l->n_files];
        *tf = (struct traced_file){
                .id = ++l->next_file_id,
                .dev = st.st_dev,
                .ino = st.st_ino,
                .fd = fd,
                .state = FILE_SENT,
                .initial = initial,
                .kind = kind,
                .pid = pid,
                .path = strdup(path),
                .planner_sock = -1,
                .size = (uint64_t)st.st_size,
                .mtime = st.st_mtim,
                .ctime = st.st_ctim,
                /* Only root can change its bytes: the plan cache may serve it (planner.c). */
                .cacheable = S_ISREG(st.st_mode) && st.st_uid == 0 && !(st.st_mode & 022) &&
                             !l->opt.placement_fallback,
        };
        if (!tf->path) {
                close(fd);
                return -ENOMEM;
        }
        l->n_files++;
        loaderd_mark_known(l, st.st_dev, st.st_ino, false);

        if (initial)
                l->pending_initial++;
        log_debug("File %s (file %u, pid %d) waits for its planner.",
                  log_escape(path, ep, sizeof(ep)), tf->id, (int)pid);
        planners_kick(l);
        return 0;
}

void loaderd_odd_name(struct loaderd *l, pid_t pid, const char *name)
{
        char ep[LOG_ESCAPE_MAX];

        l->odd_names++;
        if (l->odd_name_log.interval_ns == 0)
                l->odd_name_log = (struct ratelimit)RATELIMIT_INIT(60, 5);
        if (ratelimit_below(&l->odd_name_log))
                log_warning("Process %d maps a file whose name in /proc/%d/maps, %s, leads "
                            "elsewhere (a forged or stale name): not opened by name (%llu such "
                            "names so far).",
                            (int)pid, (int)pid, log_escape(name, ep, sizeof(ep)),
                            (unsigned long long)l->odd_names);
}

static void check_ready(struct loaderd *l)
{
        struct msg_ready m;
        msgpack_sbuffer sb;
        unsigned files = 0;

        if (l->ready || l->pending_initial > 0)
                return;
        l->ready = true;
        for (unsigned i = 0; i < l->n_files; i++)
                files += l->files[i].state == FILE_ATTACHED;
        log_struct_id(LOG_NOTICE, MID_READY, "Ready: %u probes attached to %u files.",
                      l->probes_attached, files);
        /* Under systemd (Type=notify) the unit becomes active only now. */
        (void)sd_notifyf(false, "READY=1\nSTATUS=Capturing: %u probes on %u files.",
                         l->probes_attached, files);
        m.probes = l->probes_attached;
        m.files = files;
        msgpack_sbuffer_init(&sb);
        msg_encode_ready(&sb, &m);
        (void)send_frame(l, FRAME_L_READY, &sb, -1);
        msgpack_sbuffer_destroy(&sb);
}

static void report_attached(struct loaderd *l, struct traced_file *tf, const char *error)
{
        struct msg_attached m = { .file_id = tf->id, .probes = file_probes(tf) };
        msgpack_sbuffer sb;

        snprintf(m.error, sizeof(m.error), "%s", error ? error : "");
        msgpack_sbuffer_init(&sb);
        msg_encode_attached(&sb, &m);
        (void)send_frame(l, FRAME_L_ATTACHED, &sb, -1);
        msgpack_sbuffer_destroy(&sb);
}

static int refuse(struct loaderd *l, uint16_t type, int error, const char *why)
{
        unsigned suppressed = l->refuse_log.suppressed;

        l->frames_refused++;
        if (l->refuse_log.interval_ns == 0)
                l->refuse_log = (struct ratelimit)RATELIMIT_INIT(10, 10);
        if (ratelimit_below(&l->refuse_log)) {
                log_struct_id(LOG_WARNING, MID_FRAME_REFUSED,
                              "Refused %s frame from the analyzer: %s (%u refusals not logged "
                              "before this one; %llu in all)",
                              frame_type_name(type), why, suppressed,
                              (unsigned long long)l->frames_refused);
                l->refuse_log.suppressed = 0;
        }
        return error;
}

static int on_a_hello(struct loaderd *l, const uint8_t *body, size_t n)
{
        uint32_t version;

        if (msg_decode_a_hello(body, n, &version) < 0)
                return refuse(l, FRAME_A_HELLO, -EBADMSG, "body does not decode");
        if (version != FRAME_PROTOCOL_VERSION)
                return refuse(l, FRAME_A_HELLO, -EPROTO, "protocol version mismatch");
        l->analyzer_hello = true;
        return 0;
}

/*
 * A_PLAN from the data analyzer, which parses what remote peers send: never taken, whatever
 * it names. Plans come from each file's planner (planner.c).
 */
static int on_a_plan(struct loaderd *l, const uint8_t *body, size_t n)
{
        l->analyzer_plans_refused++;
        return refuse(l, FRAME_A_PLAN, 0, "a plan from the analyzer: plans come from planners");
}

void loaderd_plan_received(struct loaderd *l, struct traced_file *tf, struct msg_plan *plan)
{
        struct elf_segments segs;
        char reason[256] = "";
        int r;

        if (tf->initial)
                l->pending_initial--;
        tf->initial = false;
        if (plan) {
                /* The analyzer lists the file (tlssniffctl processes) with what its planner
                 * said; loaderd's own verdict follows in L_ATTACHED. */
                struct msg_planned *m = calloc(1, sizeof(*m));
                msgpack_sbuffer sb;

                if (m) {
                        m->file = (struct msg_file){ .file_id = tf->id, .dev = tf->dev,
                                                     .ino = tf->ino, .pid = (uint32_t)tf->pid,
                                                     .kind = tf->kind };
                        snprintf(m->file.path, sizeof(m->file.path), "%s", tf->path);
                        snprintf(m->library, sizeof(m->library), "%s", plan->library);
                        snprintf(m->reason, sizeof(m->reason), "%s", plan->reason);
                        m->probes = plan->n_probes;
                        msgpack_sbuffer_init(&sb);
                        msg_encode_planned(&sb, m);
                        (void)send_frame(l, FRAME_L_PLANNED, &sb, -1);
                        msgpack_sbuffer_destroy(&sb);
                        free(m);
                }
        }
        if (!plan) {
                tf->state = FILE_FAILED;
                l->files_failed++;
                goto done;
        }
        if (plan->n_probes == 0) {
                char ep[LOG_ESCAPE_MAX], er[4 * MSG_TEXT_MAX];

                tf->state = FILE_NO_TLS;
                log_debug("No TLS in %s (its planner says \"%s\")",
                          log_escape(tf->path, ep, sizeof(ep)),
                          log_escape(plan->reason, er, sizeof(er)));
                goto done;
        }
        r = elf_segments_read(tf->fd, &segs);
        if (r < 0) {
                snprintf(reason, sizeof(reason), "cannot read the ELF program headers");
        } else {
                r = plan_validate(plan, &segs, reason, sizeof(reason));
        }
        if (r >= 0)
                planner_plan_checked(l, tf, plan);
        if (r < 0) {
                tf->state = FILE_FAILED;
                l->files_failed++;
                l->planners_refused++;
                {
                        char ep[LOG_ESCAPE_MAX];

                        log_warning("Refused the plan of %s's planner: %s",
                                    log_escape(tf->path, ep, sizeof(ep)), reason);
                }
                goto done;
        }
        r = attach_file(l, tf, plan, reason, sizeof(reason));
        plan = NULL; /* tf's now */
        if (r < 0) {
                char ep[LOG_ESCAPE_MAX], el[2 * MSG_TEXT_MAX];

                log_struct_id(LOG_WARNING, MID_PROBE_FAILED,
                              "Failed to attach probes to %s (its planner says \"%s\"): %s",
                              log_escape(tf->path, ep, sizeof(ep)),
                              log_escape(tf->plan->library, el, sizeof(el)), reason);
                detach_file(l, tf);
                tf->state = FILE_FAILED;
                l->files_failed++;
                report_attached(l, tf, reason);
                goto done;
        }
        tf->state = FILE_ATTACHED;
        l->probes_attached += file_probes(tf);
        {
                /* The path as the kernel named it, the library and summary as the planner's
                 * claim: escaped, so neither can forge a line or end the quote. */
                char ep[LOG_ESCAPE_MAX], el[2 * MSG_TEXT_MAX], er[4 * MSG_TEXT_MAX];

                log_struct_id(LOG_INFO, MID_PROBE_ATTACHED,
                              "Attached %u probes to %s (its planner says \"%s; %s\"%s%s).",
                              file_probes(tf), log_escape(tf->path, ep, sizeof(ep)),
                              log_escape(tf->plan->library, el, sizeof(el)),
                              log_escape(tf->plan->reason, er, sizeof(er)),
                              tf->set.n_sessions ? "; entry and return as uprobe sessions" : "",
                              l->scope.n_pids ? "; in the target processes only" : "");
        }
        report_attached(l, tf, NULL);
done:
        if (tf->state != FILE_ATTACHED)
                tf->fd = safe_close(tf->fd); /* kept only to deduplicate by (dev, ino) */
        free(plan);
        check_ready(l);
}

static int send_control_result(struct loaderd *l, uint32_t id, bool ok, const char *message)
{
        struct msg_control_result m = { .id = id, .ok = ok };
        msgpack_sbuffer sb;
        int r;

        snprintf(m.message, sizeof(m.message), "%s", message);
        msgpack_sbuffer_init(&sb);
        msg_encode_control_result(&sb, &m);
        r = send_frame(l, FRAME_L_CONTROL_RESULT, &sb, -1);
        msgpack_sbuffer_destroy(&sb);
        return r;
}

/*
 * tlssniffctl attach/detach/reload, from the admin socket (admin.c), whose peer the kernel
 * said is root. The argument must be a pid of a live process or a unit with a cgroup; msg
 * says what was done, or why not.
 */
static int admin_change(void *userdata, enum admin_verb verb, const char *arg, char *msg,
                        size_t msg_size)
{
        struct loaderd *l = userdata;
        char ea[2 * ADMIN_REQUEST_MAX], em[2048];
        bool attach = verb == ADMIN_ATTACH;
        int r;

        if (!l->skel) {
                snprintf(msg, msg_size, "no BPF object loaded");
                return -ENODEV;
        }
        if (verb == ADMIN_RELOAD)
                return loaderd_reload(l, msg, msg_size);
        r = targets_override(l, attach, arg, msg, msg_size);
        if (r >= 0) {
                char scope_err[256];
                size_t len = strlen(msg);

                /* A process attached to a scope of processes gets probes of its own; a unit
                 * makes it every process. */
                if (loaderd_rescope(l, scope_err, sizeof(scope_err)) < 0) {
                        snprintf(msg + len, msg_size - len,
                                 "; but its probes could not be attached: %s", scope_err);
                        r = -EIO;
                }
        }
        /* Root's words, but a pid's comm or a unit's name can be anyone's: escaped. */
        if (r >= 0)
                log_struct_id(LOG_NOTICE, MID_TARGETS_CHANGED, "tlssniffctl: %s.",
                              log_escape(msg, em, sizeof(em)));
        else
                log_info("tlssniffctl %s \"%s\" refused: %s", attach ? "attach" : "detach",
                         log_escape(arg, ea, sizeof(ea)), log_escape(msg, em, sizeof(em)));
        return r;
}

/*
 * A_CONTROL: `tlssniffctl processes`, a read-only query the analyzer passes on. Changes
 * (attach, detach, reload) are not taken from the analyzer, whatever it says of its client:
 * they come through the admin socket, where loaderd sees the client's credentials itself.
 */
static int on_a_control(struct loaderd *l, const uint8_t *body, size_t n)
{
        char msg[MSG_PATH_MAX] = "";
        struct msg_control m;
        unsigned long long pid;
        int r;

        if (msg_decode_control(body, n, &m) < 0)
                return refuse(l, FRAME_A_CONTROL, -EBADMSG, "body does not decode");
        if (m.verb != MSG_CONTROL_PROCESSES) {
                l->analyzer_changes_refused++;
                refuse(l, FRAME_A_CONTROL, 0,
                       "a change (attach, detach or reload) from the analyzer: changes come "
                       "through the admin socket only");
                (void)send_control_result(l, m.id, false,
                                          "changes go to loaderd's admin socket "
                                          "(tlssniffctl does that)");
                return 0;
        }
        if (m.arg[0] && parse_u64(m.arg, 1, INT32_MAX, &pid) < 0)
                return refuse(l, FRAME_A_CONTROL, -EBADMSG, "processes: not a pid");
        if (l->processes_rate.interval_ns == 0)
                l->processes_rate = (struct ratelimit)RATELIMIT_INIT(1, LOADERD_PROCESSES_PER_S);
        if (!m.arg[0] && !ratelimit_below(&l->processes_rate)) {
                /* Any member of group tlssniff may ask; each whole listing is a scan of
                 * /proc (one process's is not). */
                l->processes_throttled++;
                return send_control_result(l, m.id, false,
                                           "busy: loaderd lists all processes at most "
                                           "4 times a second, try again");
        }
        if (!l->skel)
                r = -ENODEV, snprintf(msg, sizeof(msg), "no BPF object loaded");
        else {
                r = processes_answer(l, m.id, m.arg);
                if (r >= 0)
                        return 0;
                snprintf(msg, sizeof(msg), "listing the processes: %s", strerror(-r));
        }
        return send_control_result(l, m.id, false, msg);
}

/*
 * The analyzer's counts: processes and connections for the service manager's STATUS=, and how
 * many bytes of records frames it has handled, so that what it had not when it dies is counted.
 */
static int on_a_status(struct loaderd *l, const uint8_t *body, size_t n)
{
        struct msg_status m;

        if (msg_decode_status(body, n, &m) < 0)
                return refuse(l, FRAME_A_STATUS, -EBADMSG, "body does not decode");
        l->status_processes = m.processes;
        l->status_connections = m.connections;
        if (m.records_bytes <= l->analyzer_sent_bytes)
                l->analyzer_done_bytes = m.records_bytes;
        return 0;
}

/* Whether two option sets give the analyzer the same output arguments. */
static bool same_output(const struct options *a, const struct options *b)
{
        static char x[16 + OPTIONS_REDACT_MAX][MSG_TEXT_MAX], y[16 + OPTIONS_REDACT_MAX][MSG_TEXT_MAX];
        unsigned nx = analyzer_output_args(a, x, ELEMENTSOF(x));
        unsigned ny = analyzer_output_args(b, y, ELEMENTSOF(y));

        if (nx != ny)
                return false;
        for (unsigned i = 0; i < nx; i++)
                if (strcmp(x[i], y[i]) != 0)
                        return false;
        return true;
}

static bool same_str(const char *a, const char *b)
{
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Settings only a restart applies: named in *kept, and the running values carried over. */
static void keep_restart_settings(const struct options *old, struct options *n, char *kept,
                                  size_t size)
{
        size_t len = 0;

#define KEEP(changed_, name_, assign_)                                                             \
        do {                                                                                       \
                if (changed_) {                                                                    \
                        len += (size_t)snprintf(kept + len, len < size ? size - len : 0, "%s%s",   \
                                                len ? ", " : "", name_);                           \
                        assign_;                                                                   \
                }                                                                                  \
        } while (0)
        kept[0] = '\0';
        KEEP(old->ringbuf_size != n->ringbuf_size, "ringbuf-size",
             n->ringbuf_size = old->ringbuf_size);
        KEEP(old->syscall_hooks != n->syscall_hooks, "syscall-hooks",
             n->syscall_hooks = old->syscall_hooks);
        KEEP(old->uprobe_sessions != n->uprobe_sessions, "uprobe-sessions",
             n->uprobe_sessions = old->uprobe_sessions);
        KEEP(old->direct_read != n->direct_read, "direct-read", n->direct_read = old->direct_read);
        KEEP(old->exchanges != n->exchanges, "exchanges", n->exchanges = old->exchanges);
        KEEP(old->placement_fallback != n->placement_fallback, "placement",
             n->placement_fallback = old->placement_fallback);
        KEEP(!same_str(old->analyzer, n->analyzer), "analyzer",
             n->analyzer = options_keep(n, old->analyzer));
        KEEP(!same_str(old->planner, n->planner), "planner",
             n->planner = options_keep(n, old->planner));
        KEEP(!same_str(old->user, n->user), "user", n->user = options_keep(n, old->user));
        KEEP(old->batch_scheduling != n->batch_scheduling, "batch-scheduling",
             n->batch_scheduling = old->batch_scheduling);
        KEEP(!same_str(old->control_socket, n->control_socket), "control-socket",
             n->control_socket = options_keep(n, old->control_socket));
        KEEP(!same_str(old->cache_dir, n->cache_dir), "cache-dir",
             n->cache_dir = options_keep(n, old->cache_dir));
        KEEP(old->log_target != n->log_target, "log-target", n->log_target = old->log_target);
#undef KEEP
}

/*
 * The output file, for appending (cut_partial_line relies on it) and for reading too
 * (cut_partial_line reads back the end of the file); flags adds O_TRUNC at start.
 */
static int open_output(const char *path, int flags)
{
        return open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY | flags, 0640);
}

int loaderd_reload(struct loaderd *l, char *msg, size_t msg_size)
{
        struct options n;
        char err[OPTIONS_ERROR_MAX] = "", kept[256], scope_err[256] = "";
        _cleanup_close_ int out_fd = -1;
        bool out_changed = false, send_config;
        int r;

        if (!l->argv) {
                snprintf(msg, msg_size, "no command line to read again");
                return -EINVAL;
        }
        r = options_load(&n, l->argc, l->argv, err, sizeof(err));
        if (r == OPTIONS_RUN) {
                keep_restart_settings(&l->opt, &n, kept, sizeof(kept));
                out_changed = !same_str(l->opt.output, n.output);
                if (out_changed) {
                        /* Standard output again is loaderd's own. */
                        out_fd = n.output ? open_output(n.output, 0)
                                          : fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
                        if (out_fd < 0) {
                                snprintf(err, sizeof(err), "output '%s': %s",
                                         n.output ? n.output : "stdout", strerror(errno));
                                r = -EINVAL;
                        }
                }
        }
        if (r == OPTIONS_RUN)
                r = targets_apply(l, &n, err, sizeof(err)) < 0 ? -EINVAL : OPTIONS_RUN;
        if (r != OPTIONS_RUN) {
                l->reload_failures++;
                snprintf(msg, msg_size, "reload failed, the running configuration is kept: %s",
                         err[0] ? err : "out of memory");
                log_struct_id(LOG_ERR, MID_RELOAD_FAILED,
                              "Reload failed, the running configuration is kept: %s",
                              err[0] ? err : "out of memory");
                options_free(&n);
                return -EINVAL;
        }
        send_config = out_changed || !same_output(&l->opt, &n);
        if (out_changed) {
                safe_close(l->output_fd);
                l->output_fd = TAKE_FD(out_fd);
        }
        log_set_max_level(n.log_level);
        options_free(&l->opt);
        l->opt = n;
        (void)targets_finish_reload(l);
        if (loaderd_rescope(l, scope_err, sizeof(scope_err)) < 0) {
                l->reload_failures++;
                log_struct_id(LOG_ERR, MID_RELOAD_FAILED,
                              "Reload: the probes could not be moved for the new targets, they "
                              "stay where they were: %s",
                              scope_err);
        } else {
                scope_err[0] = '\0';
        }
        if (send_config && l->sock >= 0) {
                struct msg_config *c = calloc(1, sizeof(*c));
                msgpack_sbuffer sb;

                if (c) {
                        _cleanup_close_ int afd = -1;

                        c->n_args = analyzer_output_args(&l->opt, c->args, MSG_CONFIG_ARGS_MAX);
                        if (out_changed && l->output_fd >= 0) {
                                afd = analyzer_output_fd(l->output_fd);
                                if (afd < 0)
                                        log_error_errno(afd, "Failed to open the new output for "
                                                             "the analyzer, it keeps the old: %m");
                        }
                        c->has_fd = afd >= 0;
                        msgpack_sbuffer_init(&sb);
                        if (msg_encode_config(&sb, c) == 0)
                                (void)send_frame(l, FRAME_L_CONFIG, &sb, afd);
                        msgpack_sbuffer_destroy(&sb);
                        free(c);
                }
        }
        l->reloads++;
        snprintf(msg, msg_size, "reloaded %s%s%s%s%s%s",
                 l->opt.config ? l->opt.config : "(no file)",
                 kept[0] ? "; these settings take effect at the next restart: " : "", kept,
                 send_config ? "; output settings applied" : "",
                 scope_err[0] ? "; the probes could not be moved for the new targets: " : "",
                 scope_err);
        log_struct_id(LOG_NOTICE, MID_RELOADED, "Reloaded the configuration: %s.", msg + 9);
        return 0;
}

/* What loaderd accepts from the analyzer, and when. */
static const struct {
        uint16_t type;
        int (*handler)(struct loaderd *l, const uint8_t *body, size_t n);
        unsigned states;
} handlers[] = {
        { FRAME_A_HELLO, on_a_hello, ST_HELLO },
        { FRAME_A_PLAN, on_a_plan, ST_RUNNING },
        { FRAME_A_CONTROL, on_a_control, ST_RUNNING },
        { FRAME_A_STATUS, on_a_status, ST_RUNNING },
};

static int dispatch(struct loaderd *l, const struct frame_header *h, const uint8_t *body)
{
        unsigned state = l->analyzer_hello ? ST_RUNNING : ST_HELLO;

        for (size_t i = 0; i < ELEMENTSOF(handlers); i++) {
                if (handlers[i].type != h->type)
                        continue;
                if (!(handlers[i].states & state))
                        return refuse(l, h->type, 0, "not allowed in this state");
                return handlers[i].handler(l, body, h->length);
        }
        return refuse(l, h->type, 0, "unknown frame type");
}

/* Exposed for the frame-handler fuzzer and unit tests. */
int loaderd_dispatch_frame(struct loaderd *l, const struct frame_header *h, const uint8_t *body)
{
        return dispatch(l, h, body);
}

static int flush_records(struct loaderd *l)
{
        int r;

        if (l->n_records == 0)
                return 0;
        msg_records_finish(&l->records, l->n_records);
        /* Straight from the records buffer into the socket; copied only if it does not fit. */
        r = l->sock >= 0 ? frame_writer_send(&l->out, l->sock, FRAME_L_RECORDS, l->records.data,
                                             l->records.size)
                         : frame_writer_put(&l->out, FRAME_L_RECORDS, l->records.data,
                                            l->records.size, -1);
        l->analyzer_sent_bytes += l->records.size;
        l->records_forwarded += l->n_records;
        l->n_records = 0;
        msg_records_begin(&l->records);
        return r == -EAGAIN ? 0 : r;
}

static void on_file_record(struct loaderd *l, const struct tlssniff_file_record *fr)
{
        l->file_events++;
        if (fr->type == TLSSNIFF_REC_EXEC)
                targets_on_exec(l, (pid_t)fr->pid);
        /*
         * Offering a file marks it known, so the kernel does not report it again. A file that
         * could not be opened (its process exited right after mapping it) stays unmarked: the
         * next process that maps it reports it again, instead of the library staying unprobed.
         */
        (void)discover_pid(l, (pid_t)fr->pid, fr->type == TLSSNIFF_REC_FILE_MAPPED);
}

/*
 * Socket identity comes from the socket tracepoints sock_recv_length/sock_send_length (tp_btf)
 * where the kernel has them: only socket reads and writes run a program, and it gets the socket
 * itself. Otherwise from the read/write-like system calls. mmap (dlopen discovery) is seen
 * through the per-call tracepoints when tracefs is there (mounted on /sys/kernel/tracing if it
 * is not yet); without it, through the raw sys_enter/sys_exit tracepoints, which every system
 * call on the host pays for (docs/design.md).
 */
static bool syscall_tracepoints_ready(void)
{
        static const char probe[] = "/sys/kernel/tracing/events/syscalls/sys_enter_read/id";

        if (access(probe, R_OK) == 0)
                return true;
        if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL) == 0)
                log_info("Mounted tracefs on /sys/kernel/tracing.");
        return access(probe, R_OK) == 0;
}

/* What loaderd looks for in the kernel's BTF (read once: it is megabytes). */
struct kernel_features {
        bool socket_tracepoints; /* sock_recv_length and sock_send_length */
        bool uprobe_sessions;    /* BPF_TRACE_UPROBE_SESSION and bpf_session_is_return() */
        bool read_user_dynptr;   /* bpf_probe_read_user_dynptr() (6.16+) */
        bool tcp_destroy_sock;   /* the tcp_destroy_sock tracepoint */
};

static bool btf_enum_has(const struct btf *btf, const char *type, const char *value)
{
        int id = btf__find_by_name_kind(btf, type, BTF_KIND_ENUM);
        const struct btf_type *t;

        if (id <= 0)
                return false;
        t = btf__type_by_id(btf, (__u32)id);
        for (unsigned i = 0; t && i < btf_vlen(t); i++)
                if (strcmp(btf__name_by_offset(btf, btf_enum(t)[i].name_off), value) == 0)
                        return true;
        return false;
}

static struct kernel_features kernel_features_read(void)
{
        struct btf *vmlinux = btf__load_vmlinux_btf();
        struct kernel_features k = {};

        if (!vmlinux)
                return k;
        k.socket_tracepoints =
                btf__find_by_name_kind(vmlinux, "btf_trace_sock_recv_length", BTF_KIND_TYPEDEF) >
                        0 &&
                btf__find_by_name_kind(vmlinux, "btf_trace_sock_send_length", BTF_KIND_TYPEDEF) >
                        0;
        k.uprobe_sessions =
                btf_enum_has(vmlinux, "bpf_attach_type", "BPF_TRACE_UPROBE_SESSION") &&
                btf__find_by_name_kind(vmlinux, "bpf_session_is_return", BTF_KIND_FUNC) > 0;
        k.read_user_dynptr =
                btf__find_by_name_kind(vmlinux, "bpf_probe_read_user_dynptr", BTF_KIND_FUNC) > 0;
        k.tcp_destroy_sock =
                btf__find_by_name_kind(vmlinux, "btf_trace_tcp_destroy_sock", BTF_KIND_TYPEDEF) >
                0;
        btf__free(vmlinux);
        return k;
}

/*
 * Before load: the socket programs are loaded only when they may be used; the session program
 * only where the kernel has uprobe sessions and try_sessions says so (its attach type is set
 * here: libbpf 1.1 has no section name for it).
 */
static void prepare_programs(struct loaderd *l, const struct kernel_features *k,
                             bool try_sessions)
{
        bool socket = l->opt.syscall_hooks == SYSCALL_HOOKS_AUTO && k->socket_tracepoints;

        bpf_program__set_autoload(l->skel->progs.sock_recv, socket);
        bpf_program__set_autoload(l->skel->progs.sock_send, socket);
        bpf_program__set_autoload(l->skel->progs.sock_destroy, k->tcp_destroy_sock);
        l->sessions = try_sessions && k->uprobe_sessions;
        bpf_program__set_autoload(l->skel->progs.tls_session, l->sessions);
        if (l->sessions)
                bpf_program__set_expected_attach_type(l->skel->progs.tls_session,
                                                      (enum bpf_attach_type)ATTACH_TYPE_UPROBE_SESSION);
}

static void choose_syscall_hooks(struct openssl_bpf *skel, bool socket, bool per_call)
{
        struct bpf_program *prog;

        bpf_object__for_each_program(prog, skel->obj) {
                const char *sec = bpf_program__section_name(prog);

                if (strncmp(sec, "tracepoint/syscalls/", 20) == 0)
                        bpf_program__set_autoattach(
                                prog, per_call && (!socket || strstr(sec, "_mmap") != NULL));
        }
        bpf_program__set_autoattach(skel->progs.sys_enter, !per_call);
        bpf_program__set_autoattach(skel->progs.sys_exit, !per_call);
        bpf_program__set_autoattach(skel->progs.sock_recv, socket);
        bpf_program__set_autoattach(skel->progs.sock_send, socket);
        skel->data->io_from_syscalls = !socket;
}

static int attach_tracepoints(struct loaderd *l)
{
        bool socket = bpf_program__autoload(l->skel->progs.sock_recv);
        bool per_call = l->opt.syscall_hooks != SYSCALL_HOOKS_RAW && syscall_tracepoints_ready();
        int r;

        for (;;) {
                choose_syscall_hooks(l->skel, socket, per_call);
                r = openssl_bpf__attach(l->skel);
                if (r >= 0 || (!socket && !per_call))
                        break;
                openssl_bpf__detach(l->skel);
                if (socket) {
                        log_warning_errno(r, "Failed to attach the socket tracepoints, using the "
                                             "system calls for socket identity: %m");
                        socket = false;
                } else {
                        log_warning_errno(r, "Failed to attach the per-call system call "
                                             "tracepoints, using raw sys_enter/sys_exit: %m");
                        per_call = false;
                }
        }
        /* Without the destroy tracepoint a socket is forgotten at TCP_CLOSE (bpf/openssl.bpf.c). */
        if (r >= 0)
                l->skel->bss->forget_at_destroy = l->skel->links.sock_destroy != NULL;
        if (r >= 0)
                log_info("Sockets seen through %s; mmap through %s.",
                         socket     ? "the socket tracepoints (sock_recv_length, sock_send_length)"
                         : per_call ? "per-call system call tracepoints (syscalls/sys_enter_read, ...)"
                                    : "raw sys_enter/sys_exit tracepoints",
                         per_call ? "per-call tracepoints (syscalls/sys_enter_mmap)"
                                  : "raw sys_enter/sys_exit tracepoints (every system call on "
                                    "the host pays for them)");
        return r;
}

static int on_sample(void *ctx, void *data, size_t size)
{
        struct loaderd *l = ctx;
        uint32_t type;

        if (size < sizeof(type))
                return 0;
        memcpy(&type, data, sizeof(type));
        if (type == TLSSNIFF_REC_DATA ||
            (type == TLSSNIFF_REC_CLOSE && size == sizeof(struct tlssniff_close_record)) ||
            (type == TLSSNIFF_REC_OPEN && size == sizeof(struct tlssniff_open_record))) {
                msg_records_add(&l->records, data, size);
                l->n_records++;
                if (l->records.size >= LOADERD_RECORDS_BATCH)
                        (void)flush_records(l);
        } else if ((type == TLSSNIFF_REC_EXEC || type == TLSSNIFF_REC_FILE_MAPPED) &&
                   size >= sizeof(struct tlssniff_file_record)) {
                on_file_record(l, data);
        }
        /* Stop draining when the analyzer is behind; the kernel counts what it then drops. */
        if (frame_writer_pending(&l->out) > LOADERD_BACKLOG_HIGH)
                return -EAGAIN;
        return 0;
}

/* A data record's place in a merged drain: its timestamp (the time of its call's copy, entry
 * or return, docs/output.md); anything else first. */
static uint64_t record_key(const void *data, size_t size)
{
        const struct tlssniff_data_record *h = data;

        if (size < sizeof(*h) || h->type != TLSSNIFF_REC_DATA)
                return 0;
        return h->timestamp_ns;
}

/*
 * Drains every ring: events first (a connection's open record before its data, mostly), then
 * the CPUs' data rings as one, in timestamp order (ringbuf_merge_mem): the records of a
 * thread that moved between CPUs, or of two threads on one connection, come in the order they
 * were made, and the output in time order. Returns the records drained or a negative errno
 * (-EAGAIN: stopped, the analyzer is behind).
 */
static int rings_consume(struct loaderd *l)
{
        int n, r;

        if (l->n_rings == 0)
                return 0;
        n = ringbuf_reader_consume(&l->rings[0], on_sample, l);
        if (n < 0)
                return n;
        r = ringbuf_merge_mem(l->ring_srcs, l->n_rings - 1, record_key, on_sample, l);
        return r < 0 ? r : n + r;
}

static int ring_polling(struct loaderd *l, int op)
{
        for (unsigned i = 0; i < l->n_rings; i++) {
                struct epoll_event ev = { .events = EPOLLIN, .data.u32 = EV_RINGBUF };

                if (epoll_ctl(l->epoll_fd, op, l->rings[i].map_fd, &ev) < 0)
                        return -errno;
        }
        return 0;
}

static int update_rb_polling(struct loaderd *l)
{
        bool pause = frame_writer_pending(&l->out) > LOADERD_BACKLOG_HIGH / 2;
        struct epoll_event sev = { .events = EPOLLIN, .data.u32 = EV_SOCK };
        int r;

        if (pause != l->rb_paused) {
                l->rb_paused = pause;
                r = ring_polling(l, pause ? EPOLL_CTL_DEL : EPOLL_CTL_ADD);
                if (r < 0)
                        return r;
        }
        if (frame_writer_pending(&l->out) > 0)
                sev.events |= EPOLLOUT;
        if (epoll_ctl(l->epoll_fd, EPOLL_CTL_MOD, l->sock, &sev) < 0)
                return -errno;
        return 0;
}

static void read_kernel_stats(struct loaderd *l, uint64_t out[_STAT_MAX])
{
        int ncpu = libbpf_num_possible_cpus();
        uint64_t *vals;

        memset(out, 0, sizeof(uint64_t) * _STAT_MAX);
        if (ncpu <= 0)
                return;
        vals = calloc((size_t)ncpu, sizeof(uint64_t));
        if (!vals)
                return;
        for (uint32_t k = 0; k < _STAT_MAX; k++) {
                if (bpf_map__lookup_elem(l->skel->maps.stats, &k, sizeof(k), vals,
                                         sizeof(uint64_t) * (size_t)ncpu, 0) < 0)
                        continue;
                for (int c = 0; c < ncpu; c++)
                        out[k] += vals[c];
        }
        free(vals);
}

static uint64_t ring_used(struct loaderd *l)
{
        uint64_t used = 0;

        for (unsigned i = 0; i < l->n_rings; i++)
                used += ringbuf_reader_used(&l->rings[i]);

        if (used > l->rb_used_max)
                l->rb_used_max = used;
        return used;
}

static void send_stats(struct loaderd *l)
{
        uint64_t k[_STAT_MAX];
        struct msg_stats m = {};
        msgpack_sbuffer sb;
        uint64_t lost;

        read_kernel_stats(l, k);
        for (unsigned i = 0; i < _STAT_MAX && m.n < MSG_STATS_MAX; i++) {
                snprintf(m.s[m.n].name, sizeof(m.s[m.n].name), "kernel_%s", stat_kernel_name(i));
                m.s[m.n++].value = k[i];
        }
#define ADD(name_, v_)                                                                             \
        do {                                                                                       \
                /* Not reached: room for all (test_control reads the last). */                      \
                if (m.n == MSG_STATS_MAX)                                                          \
                        break;                                                                     \
                snprintf(m.s[m.n].name, sizeof(m.s[m.n].name), "%s", name_);                       \
                m.s[m.n++].value = (v_);                                                           \
        } while (0)
        ADD("loaderd_records_forwarded", l->records_forwarded);
        ADD("loaderd_frames_refused", l->frames_refused);
        ADD("loaderd_frames_dropped", l->frames_dropped);
        ADD("loaderd_processes_throttled", l->processes_throttled);
        ADD("loaderd_analyzer_changes_refused", l->analyzer_changes_refused);
        ADD("loaderd_odd_names", l->odd_names);
        ADD("loaderd_planners_started", l->planners_started);
        ADD("loaderd_planners_refused", l->planners_refused);
        ADD("loaderd_planners_timeouts", l->planners_timeouts);
        ADD("loaderd_planners_failed", l->planners_failed);
        ADD("loaderd_analyzer_plans_refused", l->analyzer_plans_refused);
        ADD("loaderd_go_files", l->go_files);
        ADD("loaderd_go_cache_hits", l->go_cache_hits);
        ADD("loaderd_go_analyses", l->go_analyses);
        ADD("loaderd_go_analysis_us", l->go_analysis_us);
        ADD("loaderd_plan_cache_entries", l->cache.n);
        ADD("loaderd_plan_cache_stored", l->cache.stored);
        ADD("loaderd_plan_cache_full", l->cache.full);
        ADD("loaderd_plan_cache_errors", l->cache.load_errors + l->cache.write_errors);
        ADD("loaderd_plan_cache_hashed_bytes", l->hashed_bytes);
        ADD("loaderd_admin_requests", l->admin.requests);
        ADD("loaderd_admin_refused", l->admin.refused);
        ADD("loaderd_admin_timeouts", l->admin.timeouts);
        ADD("loaderd_file_events", l->file_events);
        ADD("loaderd_files", l->n_files);
        ADD("loaderd_files_failed", l->files_failed);
        ADD("loaderd_files_evicted", l->files_evicted);
        ADD("loaderd_files_refused", l->files_refused);
        ADD("loaderd_probes_attached", l->probes_attached);
        ADD("loaderd_backlog_bytes", frame_writer_pending(&l->out));
        ADD("loaderd_ringbuf_size", l->ring_bytes);
        ADD("loaderd_ringbufs", l->n_rings);
        ADD("loaderd_ringbuf_used_bytes", ring_used(l));
        ADD("loaderd_ringbuf_used_max_bytes", l->rb_used_max);
        ADD("loaderd_uptime_s", (now_monotonic_ns() - l->started_ns) / 1000000000ull);
        ADD("loaderd_analyzer_restarts", l->analyzer_restarts);
        ADD("loaderd_lost_frame_bytes", l->lost_frame_bytes);
        ADD("loaderd_analyzer_lost_record_bytes", l->analyzer_lost_bytes);
        ADD("loaderd_reloads", l->reloads);
        ADD("loaderd_reload_failures", l->reload_failures);
        ADD("loaderd_unit_moves", l->targets.unit_moves);
        ADD("loaderd_attached_pids", l->targets.n_force_pids);
        ADD("loaderd_scope_pids", l->scope.n_pids);
        ADD("loaderd_scope_changes", l->scope_changes);
        ADD("loaderd_detached_pids", l->targets.n_exclude_pids);
#undef ADD
        msgpack_sbuffer_init(&sb);
        msg_encode_stats(&sb, &m);
        (void)frame_writer_put(&l->out, FRAME_L_STATS, sb.data, sb.size, -1);
        msgpack_sbuffer_destroy(&sb);

        lost = k[STAT_DROP_RINGBUF_BYTES] + k[STAT_READ_FAIL_BYTES] + k[STAT_TRUNC_BYTES];
        if (lost != l->last_loss_reported) {
                log_struct_id(LOG_WARNING, MID_LOSS,
                              "Capture losses so far: %llu bytes dropped (ring buffer full), %llu "
                              "bytes unreadable, %llu bytes over the per-call cap, %llu records "
                              "dropped.",
                              (unsigned long long)k[STAT_DROP_RINGBUF_BYTES],
                              (unsigned long long)k[STAT_READ_FAIL_BYTES],
                              (unsigned long long)k[STAT_TRUNC_BYTES],
                              (unsigned long long)k[STAT_DROP_RINGBUF_RECORDS]);
                l->last_loss_reported = lost;
        }
}

static void rings_close(struct loaderd *l)
{
        for (unsigned i = 0; i < l->n_rings; i++) {
                int fd = l->rings[i].map_fd;

                ringbuf_reader_close(&l->rings[i]);
                if (i > 0)
                        safe_close(fd); /* ours; events' fd is the skeleton's */
        }
        free(l->rings);
        free(l->ring_srcs);
        l->rings = NULL;
        l->ring_srcs = NULL;
        l->n_rings = 0;
}

/*
 * Maps events and makes, maps and puts into data_rings a data ring per possible CPU (see
 * data_rings in bpf/openssl.bpf.c). Before any program is attached: a data record with no ring
 * in its CPU's slot would be dropped (and counted).
 */
static int rings_setup(struct loaderd *l, int ncpu)
{
        uint64_t size = options_data_ring_size(&l->opt, (unsigned)ncpu);
        int outer = bpf_map__fd(l->skel->maps.data_rings);
        int r;

        l->rings = calloc((size_t)ncpu + 1, sizeof(*l->rings));
        l->ring_srcs = calloc((size_t)ncpu, sizeof(*l->ring_srcs));
        if (!l->rings || !l->ring_srcs)
                return log_error_errno(-ENOMEM, "Failed to set up the ring buffers: %m");
        r = ringbuf_reader_open(bpf_map__fd(l->skel->maps.events), LOADERD_EVENTS_RING,
                                &l->rings[0]);
        if (r < 0)
                return log_error_errno(r, "Failed to map the ring buffer: %m");
        l->n_rings = 1;
        l->ring_bytes = LOADERD_EVENTS_RING;
        for (int cpu = 0; cpu < ncpu; cpu++) {
                uint32_t key = (uint32_t)cpu;
                int fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "tlssniff_data", 0, 0,
                                        (uint32_t)size, NULL);

                if (fd < 0)
                        return log_error_errno(-errno, "Failed to create the data ring buffer "
                                                       "of CPU %d (%llu bytes): %m",
                                               cpu, (unsigned long long)size);
                r = ringbuf_reader_open(fd, size, &l->rings[l->n_rings]);
                if (r < 0) {
                        safe_close(fd);
                        return log_error_errno(r, "Failed to map the data ring buffer of CPU %d: "
                                                  "%m", cpu);
                }
                l->ring_srcs[cpu] = ringbuf_reader_src(&l->rings[l->n_rings]);
                l->n_rings++;
                l->ring_bytes += size;
                if (bpf_map_update_elem(outer, &key, &fd, BPF_ANY) < 0)
                        return log_error_errno(-errno, "Failed to install the data ring buffer "
                                                       "of CPU %d: %m", cpu);
        }
        log_info("Data ring buffers: %d of %llu MiB, one per CPU.", ncpu,
                 (unsigned long long)(size >> 20));
        return 0;
}

static int setup_bpf(struct loaderd *l)
{
        const struct options *o = &l->opt;
        char err[OPTIONS_ERROR_MAX];
        struct kernel_features k = kernel_features_read();
        struct openssl_bpf *skel;
        int ncpu = libbpf_num_possible_cpus();
        int r;

        if (ncpu <= 0)
                return log_error_errno(ncpu < 0 ? ncpu : -EINVAL,
                                       "Failed to count the possible CPUs: %m");
        libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
        /* With the session program if it may be used; if that load fails, once more without. */
        for (bool try_sessions = o->uprobe_sessions;; try_sessions = false) {
                skel = openssl_bpf__open();
                if (!skel)
                        return log_error_errno(errno, "Failed to open the BPF object: %m");
                l->skel = skel;
                skel->rodata->self_tgid = (uint32_t)getpid();
                skel->rodata->direct_read = o->direct_read && k.read_user_dynptr;
                r = bpf_map__set_max_entries(skel->maps.events, LOADERD_EVENTS_RING);
                if (r >= 0)
                        r = bpf_map__set_max_entries(skel->maps.data_rings, (uint32_t)ncpu);
                if (r < 0)
                        return log_error_errno(r, "Failed to size the ring buffers: %m");
                prepare_programs(l, &k, try_sessions);
                r = openssl_bpf__load(skel);
                if (r >= 0 || !l->sessions)
                        break;
                log_warning_errno(r, "Failed to load the BPF programs with the uprobe session "
                                     "program, loading them without it: %m");
                openssl_bpf__destroy(skel);
                l->skel = NULL;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to load the BPF programs (needs root, BPF and "
                                          "uprobe support): %m");
        if (l->sessions)
                log_info("Entry and return probes at the same place attached as uprobe sessions.");
        else if (!o->uprobe_sessions)
                log_info("Entry and return probes attached separately (--uprobe-sessions=no).");
        else if (!k.uprobe_sessions)
                log_info("The kernel has no uprobe sessions: entry and return probes attached "
                         "separately.");
        if (skel->rodata->direct_read)
                log_info("Plaintext read straight into the ring buffer.");
        else
                log_info("Plaintext copied into the ring buffer through a scratch buffer (%s).",
                         o->direct_read ? "the kernel has no bpf_probe_read_user_dynptr"
                                        : "--direct-read=no");

        r = rings_setup(l, ncpu);
        if (r < 0)
                return r;
        r = targets_setup(l, err, sizeof(err));
        if (r < 0)
                return log_error_errno(r, "Failed to set the targets: %s", err);
        loaderd_scope_init(l);

        r = attach_tracepoints(l);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the tracepoints: %m");

        return 0;
}

static int send_hello(struct loaderd *l)
{
        struct msg_l_hello m = { .version = FRAME_PROTOCOL_VERSION,
                                 .call_cap = (uint32_t)l->opt.call_cap };
        struct timespec rt, bt;
        msgpack_sbuffer sb;
        int r;

        clock_gettime(CLOCK_REALTIME, &rt);
        clock_gettime(CLOCK_BOOTTIME, &bt);
        m.realtime_offset_ns = ((int64_t)rt.tv_sec - bt.tv_sec) * 1000000000LL +
                               (rt.tv_nsec - bt.tv_nsec);
        msgpack_sbuffer_init(&sb);
        msg_encode_l_hello(&sb, &m);
        r = send_frame(l, FRAME_L_HELLO, &sb, -1);
        msgpack_sbuffer_destroy(&sb);
        return r;
}

static int handle_sock(struct loaderd *l, uint32_t events)
{
        struct frame_header h;
        const uint8_t *body;
        int r;

        if (events & EPOLLOUT) {
                r = frame_writer_flush(&l->out, l->sock);
                if (r < 0 && r != -EAGAIN)
                        return log_error_errno(r, "Failed to write to the analyzer: %m");
        }
        if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                return 0;
        r = frame_reader_fill(&l->in, l->sock);
        if (r == -EAGAIN)
                return 0;
        if (r < 0)
                return log_error_errno(r, "Failed to read from the analyzer: %m");
        if (r == 0)
                return log_error_errno(EPIPE, "The analyzer closed its socket.");
        while ((r = frame_reader_next(&l->in, &h, &body)) > 0) {
                r = dispatch(l, &h, body);
                if (r < 0 && r != -EBADMSG)
                        return log_error_errno(r, "Failed to handle %s frame: %m",
                                               frame_type_name(h.type));
        }
        if (r < 0) {
                /* Frame boundaries are lost: nothing after this can be trusted. */
                l->frames_refused++;
                return log_error_errno(r, "Refused the analyzer's byte stream: %m");
        }
        return 0;
}

/* Starts an analyzer and greets it; the socket joins the event loop. */
static int start_analyzer(struct loaderd *l)
{
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = EV_SOCK };
        int r;

        r = spawn_analyzer(l, &l->sock, &l->analyzer_pid);
        if (r < 0)
                return r;
        l->analyzer_started_ns = now_monotonic_ns();
        if (fcntl(l->sock, F_SETFL, O_NONBLOCK) < 0 ||
            epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, l->sock, &ev) < 0)
                return log_error_errno(errno, "Failed to set up the analyzer socket: %m");
        r = send_hello(l);
        if (r < 0)
                return log_error_errno(r, "Failed to greet the analyzer: %m");
        return 0;
}

/*
 * Replaces a dead or misbehaving analyzer, with a backoff of 100 ms doubling to 10 s (reset
 * once one has run for a minute). Frames queued for the old one are lost and counted; while
 * loaderd waits it does not drain the ring buffer, so what the kernel drops is counted there.
 * Files still waiting for a plan are offered again; attached probes stay as they are.
 */
/*
 * A killed analyzer can leave the end of a line in the output: the kernel may cut a large
 * write short at a page when SIGKILL comes. The output (opened for appending, so the cut is
 * the end of the file) goes back to its last whole line; those bytes are part of what the
 * analyzer had not finished, counted with it. Returns the bytes cut.
 */
static uint64_t cut_partial_line(int fd)
{
        uint8_t buf[65536];
        struct stat st;
        off_t end;
        int flags = fd >= 0 ? fcntl(fd, F_GETFL) : -1;

        if (flags < 0 || !(flags & O_APPEND) || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
            st.st_size == 0)
                return 0;
        /* Killed in a direct write (analyzer/out/direct.c), it left O_DIRECT on the file, which
         * would refuse these reads. */
        if ((flags & O_DIRECT) && fcntl(fd, F_SETFL, flags & ~O_DIRECT) < 0)
                return 0;
        for (end = st.st_size; end > 0;) {
                size_t n = end > (off_t)sizeof(buf) ? sizeof(buf) : (size_t)end;
                ssize_t k = pread(fd, buf, n, end - (off_t)n);

                if (k != (ssize_t)n)
                        return 0;
                for (size_t i = n; i > 0; i--)
                        if (buf[i - 1] == '\n') {
                                off_t keep = end - (off_t)n + (off_t)i;

                                if (keep == st.st_size || ftruncate(fd, keep) < 0)
                                        return 0;
                                return (uint64_t)(st.st_size - keep);
                        }
                end -= (off_t)n;
        }
        return ftruncate(fd, 0) < 0 ? 0 : (uint64_t)st.st_size;
}

static int restart_analyzer(struct loaderd *l, const char *why, int status)
{
        uint64_t now = now_monotonic_ns(), unhandled;
        int r;

        if (l->analyzer_pid > 0) {
                /* Killed and waited for a bounded time: one that outlives it (no CAP_KILL)
                 * loses its socket below and is reaped on SIGCHLD when it ends. */
                r = analyzer_end(l->analyzer_pid, SIGKILL, 5000, NULL);
                if (r <= 0)
                        log_error("Could not end the analyzer (pid %d)%s%s; starting another.",
                                  (int)l->analyzer_pid, r < 0 ? ": " : "",
                                  r < 0 ? strerror(-r) : "");
                l->analyzer_pid = 0;
        }
        /* What it had not handled by its last report: still queued here, in the socket, or in
         * its buffers. An upper bound (it reports once a second), never an undercount. */
        unhandled = l->analyzer_sent_bytes - l->analyzer_done_bytes;
        l->analyzer_lost_bytes += unhandled;
        log_struct_id(LOG_ERR, MID_ANALYZER_EXITED,
                      "The analyzer stopped (%s, status 0x%x); %zu bytes of frames for it are "
                      "lost, up to %llu bytes of records it had not handled by its last report "
                      "with them. Restarting it.",
                      why, status, frame_writer_pending(&l->out),
                      (unsigned long long)unhandled);
        l->analyzer_sent_bytes = l->analyzer_done_bytes = 0;
        {
                uint64_t cut = cut_partial_line(l->output_fd >= 0 ? l->output_fd
                                                                  : STDOUT_FILENO);

                if (cut > 0)
                        log_warning("Cut %llu bytes of a line the analyzer did not finish from "
                                    "the end of the output.",
                                    (unsigned long long)cut);
        }
        if (l->sock >= 0)
                (void)epoll_ctl(l->epoll_fd, EPOLL_CTL_DEL, l->sock, NULL);
        l->sock = safe_close(l->sock);
        l->lost_frame_bytes += frame_writer_pending(&l->out);
        frame_writer_done(&l->out);
        frame_reader_done(&l->in);
        frame_reader_init(&l->in, false);
        l->analyzer_hello = false;

        if (now - l->analyzer_started_ns > 60ull * 1000000000ull)
                l->restart_delay_ms = 0;
        l->restart_delay_ms = l->restart_delay_ms ? l->restart_delay_ms * 2 : 100;
        if (l->restart_delay_ms > 10000)
                l->restart_delay_ms = 10000;
        usleep(l->restart_delay_ms * 1000);

        r = start_analyzer(l);
        if (r < 0)
                return r;
        l->analyzer_restarts++;
        return 0;
}

static int make_signal_fd(void)
{
        sigset_t mask;

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        return signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* Drains what is left, tells the analyzer the stream ends, and waits for it. */
static void shutdown_analyzer(struct loaderd *l)
{
        int status = 0, r;

        if (l->sock < 0)
                return;
        (void)rings_consume(l);
        (void)flush_records(l);
        send_stats(l);
        for (int i = 0; i < 500 && frame_writer_pending(&l->out) > 0; i++) {
                if (frame_writer_flush(&l->out, l->sock) != -EAGAIN)
                        break;
                usleep(10000);
        }
        shutdown(l->sock, SHUT_WR);
        /* It ends at the end of the stream; 10 s for its last output. */
        r = analyzer_end(l->analyzer_pid, 0, 10000, &status);
        if (r == 1 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
                log_error("The analyzer failed at exit (status 0x%x).", status);
                l->analyzer_failed = true;
        } else if (r != 1) {
                log_warning("The analyzer did not exit in time, killing it.");
                r = analyzer_end(l->analyzer_pid, SIGKILL, 5000, NULL);
                if (r != 1)
                        log_error("Could not end the analyzer (pid %d)%s%s.",
                                  (int)l->analyzer_pid, r < 0 ? ": " : "",
                                  r < 0 ? strerror(-r) : "");
        }
        l->analyzer_pid = 0;
}

/* Reaps every child that ended (an old analyzer that outlived its replacement too) and
 * replaces the current analyzer if it was one of them. */
static int on_sigchld(struct loaderd *l)
{
        int status, r;
        pid_t p;

        while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
                if (p != l->analyzer_pid)
                        continue;
                l->analyzer_pid = 0;
                r = restart_analyzer(l, "it exited", status);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int loop(struct loaderd *l)
{
        struct epoll_event evs[16];
        int r;

        for (;;) {
                int n = epoll_wait(l->epoll_fd, evs, ELEMENTSOF(evs), TLSSNIFF_DRAIN_MS);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return log_error_errno(errno, "epoll_wait failed: %m");
                }
                for (int i = 0; i < n; i++) {
                        switch (evs[i].data.u32 & 15) {
                        case EV_RINGBUF:
                                r = rings_consume(l);
                                if (r < 0 && r != -EAGAIN)
                                        return log_error_errno(r, "Ring buffer: %m");
                                break;
                        case EV_SOCK:
                                if (l->sock < 0)
                                        break; /* restarted during this turn */
                                r = handle_sock(l, evs[i].events);
                                if (r < 0) {
                                        /* A dead, broken or misbehaving analyzer: replace it. */
                                        r = restart_analyzer(l, "its socket failed", 0);
                                        if (r < 0)
                                                return r;
                                }
                                break;
                        case EV_SIGNAL: {
                                struct signalfd_siginfo si;

                                while (read(l->signal_fd, &si, sizeof(si)) == sizeof(si)) {
                                        if (si.ssi_signo == SIGCHLD) {
                                                r = on_sigchld(l);
                                                if (r < 0)
                                                        return r;
                                        } else if (si.ssi_signo == SIGHUP) {
                                                char msg[OPTIONS_ERROR_MAX + 128];

                                                (void)loaderd_reload(l, msg, sizeof(msg));
                                        } else {
                                                log_info("Received signal %u, stopping.",
                                                         si.ssi_signo);
                                                return 0;
                                        }
                                }
                                break;
                        }
                        case EV_ADMIN:
                                admin_serve(&l->admin);
                                break;
                        case EV_PLANNER: {
                                struct traced_file *tf = file_by_id(l, evs[i].data.u32 >> 4);

                                if (tf)
                                        planner_on_event(l, tf);
                                break;
                        }
                        case EV_TIMER: {
                                uint64_t ticks;

                                (void)read(l->timer_fd, &ticks, sizeof(ticks));
                                targets_tick(l);
                                admin_tick(&l->admin);
                                planners_tick(l);
                                send_stats(l);
                                /* The loop is alive: feed the watchdog (WatchdogSec=). */
                                (void)sd_notifyf(false,
                                                 "WATCHDOG=1\nSTATUS=%s: %u processes, %u "
                                                 "connections; %u probes, %u files, "
                                                 "%llu records forwarded, %u analyzer "
                                                 "restarts.",
                                                 l->ready ? "Capturing" : "Starting",
                                                 l->status_processes, l->status_connections,
                                                 l->probes_attached, l->n_files,
                                                 (unsigned long long)l->records_forwarded,
                                                 l->analyzer_restarts);
                                break;
                        }
                        }
                }
                /* Data records do not wake us until 256 KiB wait: drain them every turn. */
                if (!l->rb_paused) {
                        r = rings_consume(l);
                        if (r < 0 && r != -EAGAIN)
                                return log_error_errno(r, "Ring buffer: %m");
                }
                r = flush_records(l);
                if (r < 0)
                        return log_error_errno(r, "Failed to forward records: %m");
                r = update_rb_polling(l);
                if (r < 0)
                        return log_error_errno(r, "Failed to update polling: %m");
        }
}

/*
 * With --batch-scheduling, SCHED_BATCH for loaderd and, inherited across fork and exec, the
 * analyzer: a task of that policy that wakes up (the ring buffer's wakeup, a frame arriving)
 * does not preempt the task running on that CPU. It was the default until the output went
 * around the page cache: then it let the rings overflow under load, and without it capture
 * was as fast (docs/performance.md, 2026-12-04, later and night). A policy other than
 * SCHED_OTHER was chosen by whoever started loaderd (a unit's CPUSchedulingPolicy=) and is
 * kept.
 */
static void set_scheduling(bool batch)
{
        struct sched_param sp = { 0 };
        int policy = sched_getscheduler(0);

        if (!batch)
                return;
        if (policy != SCHED_OTHER) {
                log_info("Scheduling policy %d kept: tlssniff was started with it.", policy);
                return;
        }
        if (sched_setscheduler(0, SCHED_BATCH, &sp) < 0)
                log_warning_errno(errno, "Failed to switch to the SCHED_BATCH policy, going on "
                                         "without it: %m");
        else
                log_info("Running with the SCHED_BATCH scheduling policy, as the analyzer will.");
}

int loaderd_run(struct options *opt, int argc, char **argv)
{
        struct loaderd l = { .opt = *opt, .argc = argc, .argv = argv, .sock = -1, .epoll_fd = -1, .signal_fd = -1,
                             .timer_fd = -1, .output_fd = -1,
                             .control_fd = -1, .admin = { .listen_fd = -1 },
                             .cache = { .fd = -1 } };
        char admin_sock[PATH_MAX] = "";
        struct itimerspec its = { .it_interval = { 1, 0 }, .it_value = { 1, 0 } };
        struct epoll_event ev;
        int r;

        if (geteuid() != 0) {
                r = log_error_errno(EPERM, "tlssniff-loaderd must run as root.");
                goto out;
        }
        log_struct_id(LOG_INFO, MID_STARTED, "tlssniff %s starting.", TLSSNIFF_VERSION);
        set_scheduling(l.opt.batch_scheduling);
        l.started_ns = now_monotonic_ns();
        msgpack_sbuffer_init(&l.records);
        msg_records_begin(&l.records);
        frame_reader_init(&l.in, false);

        l.signal_fd = make_signal_fd();
        if (l.signal_fd < 0) {
                r = log_error_errno(l.signal_fd, "Failed to set up signals: %m");
                goto out;
        }
        r = setup_bpf(&l);
        if (r < 0)
                goto out;
        if (l.opt.output) {
                /* Opened once: a restarted analyzer goes on writing to the same file. */
                l.output_fd = open_output(l.opt.output, O_TRUNC);
                if (l.output_fd < 0) {
                        r = log_error_errno(errno, "Failed to open output '%s': %m",
                                            l.opt.output);
                        goto out;
                }
        }
        l.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        l.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (l.timer_fd < 0 || l.epoll_fd < 0 || timerfd_settime(l.timer_fd, 0, &its, NULL) < 0) {
                r = log_error_errno(errno, "Failed to set up the event loop: %m");
                goto out;
        }
        (void)ring_polling(&l, EPOLL_CTL_ADD);
        ev = (struct epoll_event){ .events = EPOLLIN, .data.u32 = EV_SIGNAL };
        epoll_ctl(l.epoll_fd, EPOLL_CTL_ADD, l.signal_fd, &ev);
        ev = (struct epoll_event){ .events = EPOLLIN, .data.u32 = EV_TIMER };
        epoll_ctl(l.epoll_fd, EPOLL_CTL_ADD, l.timer_fd, &ev);

        if (l.opt.control_socket && l.opt.control_socket[0]) {
                r = admin_path(l.opt.control_socket, admin_sock, sizeof(admin_sock));
                if (r >= 0)
                        r = admin_open(&l.admin, admin_sock, l.epoll_fd, EV_ADMIN, admin_change,
                                       &l);
                if (r < 0)
                        log_warning_errno(r, "Failed to create the admin socket '%s', going on "
                                             "without it (no attach, detach or reload from "
                                             "tlssniffctl): %m",
                                          admin_sock);
        }
        plancache_setup(&l);
        r = start_analyzer(&l);
        if (r < 0)
                goto out;
        /* Files go out before the analyzer answers; its hello gates only what it may send. */
        discover_library_dirs(&l);
        discover_all(&l);
        check_ready(&l);

        r = loop(&l);
out:
        (void)sd_notify(false, "STOPPING=1");
        (void)rings_consume(&l);
        shutdown_analyzer(&l);
        planners_stop(&l);
        plancache_done(&l.cache);
        if (r >= 0 && l.analyzer_failed)
                r = -EIO;
        for (unsigned i = 0; i < l.n_files; i++) {
                detach_file(&l, &l.files[i]);
                safe_close(l.files[i].fd);
                free(l.files[i].path);
        }
        free(l.files);
        rings_close(&l);
        openssl_bpf__destroy(l.skel);
        frame_reader_done(&l.in);
        frame_writer_done(&l.out);
        msgpack_sbuffer_destroy(&l.records);
        safe_close(l.sock);
        safe_close(l.epoll_fd);
        safe_close(l.signal_fd);
        safe_close(l.timer_fd);
        safe_close(l.output_fd);
        admin_close(&l.admin, admin_sock[0] ? admin_sock : NULL);
        if (l.control_fd >= 0 && l.opt.control_socket[0])
                (void)unlink(l.opt.control_socket);
        safe_close(l.control_fd);
        options_free(&l.opt);
        return r;
}
