/*
 * Probes in the kernel: a checked plan attached to its file, in every process or, when the
 * targets are process ids only, in those processes alone (the probe scope).
 *
 * A uprobe tied to a process (perf_event_open with its pid, or an uprobe_multi link with its
 * pid) is put into that process's memory only: the kernel does not write the breakpoint into
 * any other process that maps the file, so they never trap, and cost nothing. A uprobe of every
 * process traps in all of them, and the programs' target check then drops the calls of the
 * processes that are not captured (about 0.5 µs a hit in the kernel, plus the check). Only
 * process ids can be scoped so: names, cgroups and units are matched when a probe hits.
 *
 * The scope changes with the targets (reload, tlssniffctl attach/detach). A process added to a
 * scope of processes gets probes of its own; any other change replaces every file's probes: the
 * programs are told probes are moving (probes_moving), the new set is attached, the old set is
 * detached (the kernel waits for its programs to finish), and the programs are told the move is
 * over. In between, a hit of a process in both scopes runs a program of each set, and the first
 * to run takes it (bpf/openssl.bpf.c, spec_current): each hit is handled once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "loaderd.h"
#include "openssl.skel.h"

/*
 * The bpf() attribute of an uprobe_multi link, as in the kernel's union bpf_attr (link_create):
 * Debian 12's libbpf 1.1 and uapi headers predate uprobe_multi links (Linux 6.6) and uprobe
 * sessions (BPF_TRACE_UPROBE_SESSION, Linux 6.13), so loaderd makes the system call itself.
 */
struct link_create_uprobe_multi {
        uint32_t prog_fd;
        uint32_t target_fd;
        uint32_t attach_type;
        uint32_t flags;
        uint64_t path;
        uint64_t offsets;
        uint64_t ref_ctr_offsets;
        uint64_t cookies;
        uint32_t cnt;
        uint32_t multi_flags;
        uint32_t pid;
        uint32_t pad;
};

/* pid 0: every process. */
static int attach_session(int prog_fd, const char *path, uint64_t offset, uint64_t cookie,
                          uint32_t pid)
{
        struct link_create_uprobe_multi a = {
                .prog_fd = (uint32_t)prog_fd,
                .attach_type = ATTACH_TYPE_UPROBE_SESSION,
                .path = (uint64_t)(uintptr_t)path,
                .offsets = (uint64_t)(uintptr_t)&offset,
                .cookies = (uint64_t)(uintptr_t)&cookie,
                .cnt = 1,
                .pid = pid,
        };
        int fd = (int)syscall(__NR_bpf, BPF_LINK_CREATE, &a, sizeof(a)); /* CLOEXEC: bpf's own */

        return fd < 0 ? -errno : fd;
}

/*
 * The other half of an entry + uretprobe pair that probe i is part of (the same function at the
 * same offset), not yet taken; -1: none.
 */
static int plan_pair_of(const struct msg_plan *plan, uint32_t i, const bool *used)
{
        const struct msg_probe *a = &plan->probes[i];
        uint8_t other;

        if (plan->has_go || (a->kind != TLSSNIFF_PROBE_ENTRY && a->kind != TLSSNIFF_PROBE_RETURN))
                return -1;
        other = a->kind == TLSSNIFF_PROBE_ENTRY ? TLSSNIFF_PROBE_RETURN : TLSSNIFF_PROBE_ENTRY;
        for (uint32_t j = 0; j < plan->n_probes; j++) {
                const struct msg_probe *p = &plan->probes[j];

                if (!used[j] && p->kind == other && p->offset == a->offset && p->func == a->func)
                        return (int)j;
        }
        return -1;
}

static int spec_alloc(struct loaderd *l, uint32_t *ret)
{
        if (l->n_free_specs > 0)
                *ret = l->free_specs[--l->n_free_specs];
        else if (l->next_spec < TLSSNIFF_PROBE_SPECS_MAX)
                *ret = l->next_spec++;
        else
                return -ENOSPC;
        return 0;
}

static void set_destroy(struct loaderd *l, struct probe_set *s)
{
        for (unsigned i = 0; i < s->n_links; i++)
                bpf_link__destroy(s->links[i]);
        for (unsigned i = 0; i < s->n_sessions; i++)
                safe_close(s->session_fds[i]);
        for (unsigned i = 0; i < s->n_units; i++)
                if (l->n_free_specs < TLSSNIFF_PROBE_SPECS_MAX)
                        l->free_specs[l->n_free_specs++] = s->units[i].spec;
        free(s->links);
        free(s->session_fds);
        free(s->units);
        *s = (struct probe_set){};
}

/*
 * The units of tf's plan (a probe, or an entry + uretprobe pair at one place) and their specs,
 * written as members of probe set set_id. Where sessions are possible a pair shares one spec:
 * the entry's arguments and the return's result.
 */
static int set_prepare(struct loaderd *l, struct traced_file *tf, struct probe_set *s,
                       uint32_t set_id, char *err, size_t err_size)
{
        const struct msg_plan *plan = tf->plan;
        bool used[MSG_PLAN_PROBES_MAX] = {};
        int r;

        s->units = calloc(plan->n_probes, sizeof(*s->units));
        if (!s->units)
                return -ENOMEM;
        for (uint32_t i = 0; i < plan->n_probes; i++) {
                const struct msg_probe *p = &plan->probes[i];
                struct probe_unit *u = &s->units[s->n_units];
                struct tlssniff_probe_spec spec = {
                        .func = p->func,
                        .kind = p->kind,
                        .source = plan->has_go ? TLSSNIFF_SOURCE_GO : TLSSNIFF_SOURCE_OPENSSL,
                        .file = tf->id,
                        .set = set_id,
                };
                int pair;

                if (used[i])
                        continue; /* the other half of a pair */
                used[i] = true;
                u->probe = (uint16_t)i;
                u->ret = -1;
                pair = l->sessions ? plan_pair_of(plan, i, used) : -1;
                if (pair >= 0) {
                        used[pair] = true;
                        if (p->kind == TLSSNIFF_PROBE_RETURN) {
                                u->probe = (uint16_t)pair;
                                u->ret = (int16_t)i;
                        } else {
                                u->ret = (int16_t)pair;
                        }
                        spec.kind = TLSSNIFF_PROBE_ENTRY;
                }
                memcpy(spec.loc, plan->probes[u->probe].loc, sizeof(spec.loc));
                if (u->ret >= 0)
                        spec.loc[TLSSNIFF_ARG_RESULT] = plan->probes[u->ret].loc[TLSSNIFF_ARG_RESULT];
                if (spec_alloc(l, &u->spec) < 0) {
                        snprintf(err, err_size, "probe spec table full");
                        return -ENOSPC;
                }
                s->n_units++;
                r = bpf_map__update_elem(l->skel->maps.probe_specs, &u->spec, sizeof(u->spec),
                                         &spec, sizeof(spec), BPF_ANY);
                if (r < 0) {
                        snprintf(err, err_size, "probe spec update: %s", strerror(-r));
                        return r;
                }
        }
        return 0;
}

/* Room in *arr (*cap elements of size bytes) for element n. */
static int set_grow(void **arr, unsigned *cap, unsigned n, size_t size)
{
        unsigned c = *cap ? 2 * *cap : 16;
        void *p;

        if (n < *cap)
                return 0;
        p = realloc(*arr, c * size);
        if (!p)
                return -ENOMEM;
        *arr = p;
        *cap = c;
        return 0;
}

static int set_add_link(struct probe_set *s, struct bpf_link *link)
{
        int r = set_grow((void **)&s->links, &s->cap_links, s->n_links, sizeof(*s->links));

        if (r >= 0)
                s->links[s->n_links++] = link;
        return r;
}

static int set_add_session(struct probe_set *s, int fd)
{
        int r = set_grow((void **)&s->session_fds, &s->cap_sessions, s->n_sessions,
                         sizeof(*s->session_fds));

        if (r >= 0)
                s->session_fds[s->n_sessions++] = fd;
        return r;
}

/* One probe as its own uprobe (or uretprobe) in process pid (-1: every process). */
static int attach_one(struct loaderd *l, struct probe_set *s, const char *fdpath, bool go,
                      const struct msg_probe *p, uint32_t spec, pid_t pid, char *err,
                      size_t err_size)
{
        LIBBPF_OPTS(bpf_uprobe_opts, uo);
        struct bpf_program *prog;
        struct bpf_link *link;
        int r;

        uo.retprobe = p->kind == TLSSNIFF_PROBE_RETURN;
        uo.bpf_cookie = spec;
        /* A placed return probe is a plain uprobe running the return program. */
        if (go)
                prog = p->kind == TLSSNIFF_PROBE_ENTRY ? l->skel->progs.go_entry
                       : p->kind == TLSSNIFF_PROBE_COPY ? l->skel->progs.go_copy
                                                        : l->skel->progs.go_return;
        else
                prog = p->kind == TLSSNIFF_PROBE_ENTRY ? l->skel->progs.tls_entry
                       : p->kind == TLSSNIFF_PROBE_COPY   ? l->skel->progs.tls_copy
                       : p->kind == TLSSNIFF_PROBE_FORGET ? l->skel->progs.tls_forget
                                                          : l->skel->progs.tls_return;
        link = bpf_program__attach_uprobe_opts(prog, pid, fdpath, p->offset, &uo);
        if (!link) {
                r = -errno;
                snprintf(err, err_size, "uprobe at 0x%llx: %s", (unsigned long long)p->offset,
                         strerror(-r));
                return r;
        }
        r = set_add_link(s, link);
        if (r < 0)
                bpf_link__destroy(link);
        return r;
}

/*
 * The prepared units of tf in process pid (-1: every process). -ESRCH: no such process (any
 * probe attached for it before the error stays, harmless).
 */
static int set_attach(struct loaderd *l, struct traced_file *tf, struct probe_set *s, pid_t pid,
                      char *err, size_t err_size)
{
        const struct msg_plan *plan = tf->plan;
        char fdpath[64];
        int r;

        /* The probe goes on the very file loaderd opened, whatever its path is now. */
        snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", tf->fd);
        for (unsigned i = 0; i < s->n_units; i++) {
                const struct probe_unit *u = &s->units[i];
                const struct msg_probe *p = &plan->probes[u->probe];

                if (u->ret >= 0 && l->sessions) {
                        r = attach_session(bpf_program__fd(l->skel->progs.tls_session), fdpath,
                                           p->offset, u->spec, pid < 0 ? 0 : (uint32_t)pid);
                        if (r >= 0) {
                                int fd = r;

                                r = set_add_session(s, fd);
                                if (r < 0) {
                                        safe_close(fd);
                                        return r;
                                }
                                continue;
                        }
                        if (r == -ESRCH) {
                                snprintf(err, err_size, "no process %d", (int)pid);
                                return r;
                        }
                        /* Both halves then go on separately, with the same spec. */
                        char ep[LOG_ESCAPE_MAX];

                        log_warning_errno(r, "Failed to attach an uprobe session to %s at 0x%llx, "
                                             "using an uprobe and a uretprobe from now on: %m",
                                          log_escape(tf->path, ep, sizeof(ep)),
                                          (unsigned long long)p->offset);
                        l->sessions = false;
                }
                if (u->ret >= 0) {
                        r = attach_one(l, s, fdpath, false, &plan->probes[u->ret], u->spec, pid,
                                       err, err_size);
                        if (r < 0)
                                return r;
                }
                r = attach_one(l, s, fdpath, plan->has_go, p, u->spec, pid, err, err_size);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The prepared units of tf in every process of scope (or every process at all). */
static int set_attach_scope(struct loaderd *l, struct traced_file *tf, struct probe_set *s,
                            const struct probe_scope *scope, char *err, size_t err_size)
{
        if (scope->n_pids == 0)
                return set_attach(l, tf, s, -1, err, err_size);
        for (unsigned i = 0; i < scope->n_pids; i++) {
                int r = set_attach(l, tf, s, (pid_t)scope->pids[i], err, err_size);

                if (r == -ESRCH)
                        continue; /* gone: nothing to probe there */
                if (r < 0)
                        return r;
        }
        return 0;
}

int attach_file(struct loaderd *l, struct traced_file *tf, struct msg_plan *plan, char *err,
                size_t err_size)
{
        int r;

        tf->plan = plan;
        if (!l->skel) {
                snprintf(err, err_size, "no BPF object loaded");
                return -ENODEV; /* unit tests and the fuzzer drive the handler without one */
        }
        if (plan->has_go) {
                /* The executable's own offsets, found by the programs through the spec's file. */
                r = bpf_map__update_elem(l->skel->maps.go_files, &tf->id, sizeof(tf->id),
                                         &plan->go, sizeof(plan->go), BPF_ANY);
                if (r < 0) {
                        snprintf(err, err_size, "Go offsets update: %s", strerror(-r));
                        return r;
                }
        }
        r = set_prepare(l, tf, &tf->set, l->probe_set, err, err_size);
        if (r < 0)
                return r;
        return set_attach_scope(l, tf, &tf->set, &l->scope, err, err_size);
}

void detach_file(struct loaderd *l, struct traced_file *tf)
{
        set_destroy(l, &tf->set);
        free(tf->plan);
        tf->plan = NULL;
}

unsigned file_probes(const struct traced_file *tf)
{
        return tf->plan ? tf->plan->n_probes : 0;
}

static bool scope_has(const struct probe_scope *s, uint32_t pid)
{
        for (unsigned i = 0; i < s->n_pids; i++)
                if (s->pids[i] == pid)
                        return true;
        return false;
}

static bool scope_add(struct probe_scope *s, uint32_t pid)
{
        if (scope_has(s, pid))
                return true;
        if (s->n_pids >= LOADERD_SCOPE_PIDS_MAX)
                return false;
        s->pids[s->n_pids++] = pid;
        return true;
}

/* a's processes are all in b (and both are scopes of processes). */
static bool scope_within(const struct probe_scope *a, const struct probe_scope *b)
{
        if (a->n_pids == 0 || b->n_pids == 0)
                return false;
        for (unsigned i = 0; i < a->n_pids; i++)
                if (!scope_has(b, a->pids[i]))
                        return false;
        return true;
}

void scope_wanted(const struct loaderd *l, struct probe_scope *ret)
{
        const struct options *o = &l->opt;
        struct probe_scope s = {};
        uint32_t key, next;
        int r;

        *ret = (struct probe_scope){};
        if (o->probe_scope_all || o->n_pids == 0 || o->n_comms || o->n_cgroups || o->n_units ||
            l->targets.n_force_units)
                return;
        for (unsigned i = 0; i < o->n_pids; i++)
                if (!scope_add(&s, o->pids[i]))
                        return;
        /* tlssniffctl attach PID: processes captured whatever the configured targets. */
        for (r = bpf_map__get_next_key(l->skel->maps.force_pids, NULL, &next, sizeof(next));
             r == 0;
             r = bpf_map__get_next_key(l->skel->maps.force_pids, &key, &next, sizeof(next))) {
                if (!scope_add(&s, next))
                        return;
                key = next;
        }
        *ret = s;
}

/* Where the probes are; a scope of every process is said only when it is news. */
static void scope_log(const struct probe_scope *s, bool every_process)
{
        char what[LOADERD_SCOPE_PIDS_MAX * 12 + 32];
        size_t len;

        if (s->n_pids == 0) {
                if (every_process)
                        log_info("Probes in every process that maps a traced file: the targets "
                                 "are checked when a probe hits.");
                return;
        }
        len = (size_t)snprintf(what, sizeof(what), "process%s", s->n_pids > 1 ? "es" : "");
        for (unsigned i = 0; i < s->n_pids && len < sizeof(what); i++)
                len += (size_t)snprintf(what + len, sizeof(what) - len, "%s %u", i ? "," : "",
                                        s->pids[i]);
        log_info("Probes in %s only: the targets are process ids, and no other process hits the "
                 "probes.",
                 what);
}

/* Links of a set beyond a mark go (an addition that failed part-way). */
static void set_truncate(struct probe_set *s, unsigned n_links, unsigned n_sessions)
{
        while (s->n_links > n_links)
                bpf_link__destroy(s->links[--s->n_links]);
        while (s->n_sessions > n_sessions)
                safe_close(s->session_fds[--s->n_sessions]);
}

/* The processes of want that the current scope lacks get probes on every attached file; on
 * error none of them has any. */
static int scope_add_processes(struct loaderd *l, const struct probe_scope *want, char *err,
                               size_t err_size)
{
        _cleanup_free_ unsigned *marks = calloc(2 * (l->n_files ? l->n_files : 1),
                                                sizeof(*marks));
        int r = 0;

        if (!marks) {
                snprintf(err, err_size, "out of memory");
                return -ENOMEM;
        }
        for (unsigned i = 0; r >= 0 && i < l->n_files; i++) {
                struct traced_file *tf = &l->files[i];

                marks[2 * i] = tf->set.n_links;
                marks[2 * i + 1] = tf->set.n_sessions;
                if (tf->state != FILE_ATTACHED)
                        continue;
                for (unsigned k = 0; r >= 0 && k < want->n_pids; k++) {
                        if (scope_has(&l->scope, want->pids[k]))
                                continue;
                        r = set_attach(l, tf, &tf->set, (pid_t)want->pids[k], err, err_size);
                        if (r == -ESRCH)
                                r = 0; /* gone: nothing to probe there */
                }
        }
        if (r < 0)
                for (unsigned i = 0; i < l->n_files; i++)
                        set_truncate(&l->files[i].set, marks[2 * i], marks[2 * i + 1]);
        return r;
}

void loaderd_scope_init(struct loaderd *l)
{
        scope_wanted(l, &l->scope);
        scope_log(&l->scope, false);
}

/* The same processes, or both every process. */
static bool scope_same(const struct probe_scope *a, const struct probe_scope *b)
{
        return a->n_pids == b->n_pids && (a->n_pids == 0 || scope_within(a, b));
}

int loaderd_rescope(struct loaderd *l, char *err, size_t err_size)
{
        struct probe_scope want;
        struct probe_set *sets = NULL;
        uint32_t set_id;
        int r = 0;

        if (!l->skel)
                return 0;
        scope_wanted(l, &want);
        if (scope_same(&want, &l->scope))
                return 0;
        if (scope_within(&l->scope, &want)) {
                /* Processes added: their own probes; the others' stay as they are. */
                r = scope_add_processes(l, &want, err, err_size);
                if (r < 0)
                        return r;
        } else {
                /* Every file's probes replaced: the new set first, then the old set goes. */
                set_id = l->probe_set + 1;
                sets = calloc(l->n_files ? l->n_files : 1, sizeof(*sets));
                if (!sets) {
                        snprintf(err, err_size, "out of memory");
                        return -ENOMEM;
                }
                __atomic_store_n(&l->skel->bss->probes_moving, 1, __ATOMIC_SEQ_CST);
                for (unsigned i = 0; r >= 0 && i < l->n_files; i++) {
                        struct traced_file *tf = &l->files[i];

                        if (tf->state != FILE_ATTACHED)
                                continue;
                        r = set_prepare(l, tf, &sets[i], set_id, err, err_size);
                        if (r >= 0)
                                r = set_attach_scope(l, tf, &sets[i], &want, err, err_size);
                }
                if (r < 0) {
                        for (unsigned i = 0; i < l->n_files; i++)
                                set_destroy(l, &sets[i]);
                        free(sets);
                        __atomic_store_n(&l->skel->bss->probes_moving, 0, __ATOMIC_SEQ_CST);
                        return r;
                }
                for (unsigned i = 0; i < l->n_files; i++) {
                        if (l->files[i].state != FILE_ATTACHED)
                                continue;
                        set_destroy(l, &l->files[i].set);
                        l->files[i].set = sets[i];
                }
                free(sets);
                l->probe_set = set_id;
                __atomic_store_n(&l->skel->bss->probes_moving, 0, __ATOMIC_SEQ_CST);
                l->scope_changes++;
        }
        l->scope = want;
        scope_log(&l->scope, true);
        return 0;
}
