/*
 * tlssniffctl processes: which processes map files with TLS code, and for each whether it is
 * traced and if not why, as the kernel's filters decide it (struct tlssniff_filter_state:
 * tlssniff itself and detached processes never, attached ones always, else the configured
 * targets). Read from /proc on request, so it is exact at that moment; loaderd sends file
 * ids, the analyzer adds what it found in each file.
 */
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loaderd.h"
#include "macro.h"
#include "openssl.skel.h"

static const struct traced_file *file_of(const struct loaderd *l, uint64_t dev, uint64_t ino)
{
        for (unsigned i = 0; i < l->n_files; i++)
                if (l->files[i].dev == dev && l->files[i].ino == ino)
                        return &l->files[i];
        return NULL;
}

/* The process's cgroup v2 directory, under the hierarchy's root. */
static int cgroup_dir(const struct loaderd *l, pid_t pid, char *out, size_t size)
{
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        char path[64];
        FILE *f;
        int r = -ENOENT;

        snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (getline(&line, &cap, f) > 0)
                if (strncmp(line, "0::", 3) == 0) {
                        line[strcspn(line, "\n")] = '\0';
                        snprintf(out, size, "%s%s",
                                 l->targets.cgroup_root[0] ? l->targets.cgroup_root
                                                           : "/sys/fs/cgroup",
                                 line + 3);
                        r = 0;
                }
        fclose(f);
        return r;
}

/* Whether dir or one of its parents is the cgroup with this inode. */
static bool under(const char *dir, uint64_t ino)
{
        char p[PATH_MAX];
        struct stat st;

        if (ino == 0)
                return false;
        snprintf(p, sizeof(p), "%s", dir);
        for (;;) {
                char *slash;

                if (stat(p, &st) == 0 && st.st_ino == ino)
                        return true;
                slash = strrchr(p, '/');
                if (!slash || slash == p)
                        return false;
                *slash = '\0';
        }
}

static bool under_path(const char *dir, const char *cgroup)
{
        struct stat st;

        return stat(cgroup, &st) == 0 && under(dir, st.st_ino);
}

static bool map_has(struct bpf_map *map, uint32_t pid)
{
        uint8_t v;

        return bpf_map__lookup_elem(map, &pid, sizeof(pid), &v, sizeof(v), 0) == 0;
}

/* Whether the kernel traces pid (comm: its name), and why not; mirrors is_target(). */
static bool is_target(struct loaderd *l, pid_t pid, const char *comm, char *why, size_t size)
{
        const struct options *o = &l->opt;
        const struct targets *t = &l->targets;
        char dir[PATH_MAX] = "";
        bool hit;

        (void)cgroup_dir(l, pid, dir, sizeof(dir));
        if (pid == getpid()) {
                snprintf(why, size, "tlssniff itself");
                return false;
        }
        if (map_has(l->skel->maps.exclude_pids, (uint32_t)pid)) {
                snprintf(why, size, "detached with tlssniffctl");
                return false;
        }
        for (unsigned i = 0; i < t->n_exclude_units; i++)
                if (under(dir, t->exclude_units[i].cgroup_id)) {
                        snprintf(why, size, "its unit %s is detached with tlssniffctl",
                                 t->exclude_units[i].name);
                        return false;
                }
        if (map_has(l->skel->maps.force_pids, (uint32_t)pid)) {
                snprintf(why, size, "attached with tlssniffctl");
                return true;
        }
        for (unsigned i = 0; i < t->n_force_units; i++)
                if (under(dir, t->force_units[i].cgroup_id)) {
                        snprintf(why, size, "its unit %s is attached with tlssniffctl",
                                 t->force_units[i].name);
                        return true;
                }
        hit = o->n_pids == 0;
        for (unsigned i = 0; i < o->n_pids; i++)
                hit = hit || o->pids[i] == (uint32_t)pid;
        if (!hit) {
                snprintf(why, size, "not a target: its pid is not one of the targets' pids%s",
                         l->scope.n_pids ? " (no probe is in its memory)" : "");
                return false;
        }
        hit = o->n_comms == 0;
        for (unsigned i = 0; i < o->n_comms; i++)
                hit = hit || strncmp(o->comms[i], comm, TLSSNIFF_COMM_LEN - 1) == 0;
        if (!hit) {
                snprintf(why, size, "not a target: its name '%s' is not one of the targets' names",
                         comm);
                return false;
        }
        hit = o->n_cgroups + t->n_units == 0;
        for (unsigned i = 0; i < o->n_cgroups; i++)
                hit = hit || under_path(dir, o->cgroups[i]);
        for (unsigned i = 0; i < t->n_units; i++)
                hit = hit || under(dir, t->units[i].cgroup_id);
        if (!hit) {
                snprintf(why, size, "not a target: not in the targets' cgroups or units");
                return false;
        }
        snprintf(why, size, "a target");
        return true;
}

/* One process's entry; 0 when it has none to show (no TLS files and not asked for). */
static int process_entry(struct loaderd *l, pid_t pid, bool asked, struct msg_process *p)
{
        char path[64], why[MSG_TEXT_MAX - 96];
        _cleanup_free_ char *line = NULL;
        unsigned attached = 0;
        size_t cap = 0;
        ssize_t k;
        FILE *f;

        *p = (struct msg_process){ .pid = (uint32_t)pid };
        snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
        f = fopen(path, "re");
        if (!f)
                return -ESRCH;
        if (getline(&line, &cap, f) > 0) {
                line[strcspn(line, "\n")] = '\0';
                memcpy(p->comm, line, strnlen(line, sizeof(p->comm) - 1));
        }
        fclose(f);
        snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
        k = readlink(path, p->exe, sizeof(p->exe) - 1);
        p->exe[k > 0 ? k : 0] = '\0';

        snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
        f = fopen(path, "re");
        if (!f)
                return -ESRCH;
        /* Whole lines, whatever the length of a name (see discover.c). */
        while (getline(&line, &cap, f) > 0) {
                const struct traced_file *tf;
                struct maps_entry e;
                bool seen = false;

                if (!maps_exec_line(line, &e))
                        continue;
                tf = file_of(l, e.dev, e.ino);
                /* Files still being analysed may hold no TLS code: not listed yet. */
                if (!tf || (tf->state != FILE_ATTACHED && tf->state != FILE_FAILED))
                        continue;
                for (unsigned i = 0; i < p->n_files; i++)
                        seen = seen || p->files[i] == tf->id;
                if (seen || p->n_files == MSG_PROCESS_FILES_MAX)
                        continue;
                p->files[p->n_files++] = tf->id;
                attached += tf->state == FILE_ATTACHED;
        }
        fclose(f);
        if (p->n_files == 0 && !asked)
                return 0;

        if (!is_target(l, pid, p->comm, why, sizeof(why))) {
                p->status = strncmp(why, "not a target", 12) == 0 ? MSG_PROCESS_NOT_TARGET
                                                                   : MSG_PROCESS_DETACHED;
                snprintf(p->reason, sizeof(p->reason), "%s", why);
        } else if (attached > 0) {
                p->status = MSG_PROCESS_TRACED;
                snprintf(p->reason, sizeof(p->reason), "%s; probes on %u of its TLS files", why,
                         attached);
        } else if (p->n_files == 0) {
                p->status = MSG_PROCESS_NO_TLS;
                snprintf(p->reason, sizeof(p->reason),
                         "%s, but no OpenSSL library or Go executable with crypto/tls was "
                         "found in it",
                         why);
        } else {
                p->status = MSG_PROCESS_NO_PROBES;
                snprintf(p->reason, sizeof(p->reason),
                         "%s, but attaching the probes to its TLS files failed (see the files "
                         "below)",
                         why);
        }
        return 1;
}

int processes_answer(struct loaderd *l, uint32_t id, const char *arg)
{
        _cleanup_free_ struct msg_processes *m = calloc(1, sizeof(*m));
        msgpack_sbuffer sb;
        int r;

        if (!m)
                return -ENOMEM;
        m->id = id;
        if (arg[0]) {
                unsigned long long pid;

                if (parse_u64(arg, 1, INT32_MAX, &pid) == 0 &&
                    process_entry(l, (pid_t)pid, true, &m->p[0]) > 0)
                        m->n = m->total = 1;
        } else {
                DIR *d = opendir("/proc");
                pid_t pid;

                if (!d)
                        return -errno;
                while ((pid = proc_next_pid(d)) > 0) {
                        struct msg_process p;

                        if (process_entry(l, pid, false, &p) <= 0)
                                continue;
                        m->total++;
                        if (m->n < MSG_PROCESSES_MAX)
                                m->p[m->n++] = p;
                }
                closedir(d);
        }
        msgpack_sbuffer_init(&sb);
        r = msg_encode_processes(&sb, m);
        if (r >= 0)
                r = loaderd_send_frame(l, FRAME_L_PROCESSES, &sb);
        msgpack_sbuffer_destroy(&sb);
        return r;
}
