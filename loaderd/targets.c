/*
 * Targets in the kernel: the configured pids, names, cgroups and systemd units, and
 * tlssniffctl's attach/detach overrides (struct tlssniff_filter_state). A unit is turned into
 * its cgroup here, and followed: a unit that starts later, or restarts into a new cgroup, is
 * found again when one of its processes execs (the kernel reports every exec while units are
 * targets) or at the latest by the next once-a-second check.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loaderd.h"
#include "macro.h"
#include "openssl.skel.h"

#define CGROUP_WALK_MAX 20000 /* directories looked at when searching for a unit */
#define CGROUP_DEPTH_MAX 8

/*
 * Searches below path for a cgroup directory called name, in folders only root can create
 * entries in: a subtree systemd delegated to a user (user@UID.service, a unit with
 * Delegate=yes) belongs to that user, who could make a look-alike of any unit's name there.
 */
static int walk(char *path, size_t len, size_t size, const char *name, unsigned depth,
                unsigned *budget)
{
        DIR *d;
        struct dirent *e;
        struct stat st;
        int r = -ENOENT;

        if (depth > CGROUP_DEPTH_MAX)
                return -ENOENT;
        d = opendir(path);
        if (!d)
                return -ENOENT;
        if (fstat(dirfd(d), &st) < 0 || st.st_uid != 0 || (st.st_mode & 022)) {
                closedir(d);
                return -ENOENT;
        }
        while (r == -ENOENT && (e = readdir(d))) {
                size_t k = strlen(e->d_name);

                if (e->d_type != DT_DIR || e->d_name[0] == '.' || len + 1 + k + 1 > size)
                        continue;
                if (*budget == 0) {
                        r = -E2BIG;
                        break;
                }
                (*budget)--;
                path[len] = '/';
                memcpy(path + len + 1, e->d_name, k + 1);
                if (strcmp(e->d_name, name) == 0) {
                        r = 0;
                        break;
                }
                r = walk(path, len + 1 + k, size, name, depth + 1, budget);
        }
        if (r != 0)
                path[len] = '\0';
        closedir(d);
        return r;
}

/*
 * Where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup on a unified host,
 * /sys/fs/cgroup/unified on a hybrid one, else the first cgroup2 mount. The kernel's
 * cgroup filter works on v2 groups only.
 */
static const char *cgroup2_root(struct targets *t)
{
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        FILE *f;

        if (t->cgroup_root[0])
                return t->cgroup_root;
        f = fopen("/proc/self/mounts", "re");
        if (!f)
                return "/sys/fs/cgroup";
        while (getline(&line, &cap, f) > 0) {
                char dev[256], dir[256], type[64];

                if (sscanf(line, "%255s %255s %63s", dev, dir, type) != 3 ||
                    strcmp(type, "cgroup2") != 0)
                        continue;
                if (!t->cgroup_root[0] || strcmp(dir, "/sys/fs/cgroup") == 0 ||
                    (strcmp(dir, "/sys/fs/cgroup/unified") == 0 &&
                     strcmp(t->cgroup_root, "/sys/fs/cgroup") != 0))
                        snprintf(t->cgroup_root, sizeof(t->cgroup_root), "%s", dir);
        }
        fclose(f);
        return t->cgroup_root[0] ? t->cgroup_root : "/sys/fs/cgroup";
}

/* The cgroup directory of a unit: where systemd puts system units first (only systemd creates
 * entries in system.slice), else a search of the folders only root writes (walk). */
static int unit_cgroup(struct targets *t, const char *unit, char *path, size_t size,
                       uint64_t *ret_id)
{
        const char *root = cgroup2_root(t);
        unsigned budget = CGROUP_WALK_MAX;
        struct stat st;
        int r;

        snprintf(path, size, "%s/system.slice/%s", root, unit);
        if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
                snprintf(path, size, "%s", root);
                r = walk(path, strlen(path), size, unit, 0, &budget);
                if (r < 0)
                        return r;
                if (stat(path, &st) < 0)
                        return -errno;
        }
        *ret_id = st.st_ino;
        return 0;
}

static int set_slot(struct bpf_map *map, uint32_t idx, const char *path)
{
        _cleanup_close_ int fd = -1;
        uint32_t v;

        if (!path) {
                int r = bpf_map__delete_elem(map, &idx, sizeof(idx), 0);

                return r == -ENOENT ? 0 : r;
        }
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        v = (uint32_t)fd;
        return bpf_map__update_elem(map, &idx, sizeof(idx), &v, sizeof(v), BPF_ANY);
}

/*
 * The configured filters' generations (struct tlssniff_filter_state): the one in force, and the
 * one a reload prepares beside it and then switches to at one instant, so that a process in
 * both the old and the new targets is never filtered out in between, and one in neither never
 * let through.
 */
static uint32_t gen_now(const struct loaderd *l)
{
        return __atomic_load_n(&l->skel->bss->filter_gen, __ATOMIC_RELAXED) &
               (TLSSNIFF_FILTER_GENS - 1);
}

static uint32_t gen_next(const struct loaderd *l)
{
        return gen_now(l) ^ 1;
}

/*
 * Waits until no program reads the generation that was in force before the last switch, before
 * it is written again: an update of programs_grace (a map of maps) returns after a grace period
 * of the kernel's, when every program that was running has finished (the programs of probes and
 * tracepoints run under RCU). A few milliseconds, once per reload that follows another.
 */
static void wait_programs(struct loaderd *l)
{
        uint32_t zero = 0;
        int fd;

        if (!l->targets.switched)
                return;
        l->targets.switched = false;
        fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "tlssniff_grace", sizeof(uint32_t),
                            sizeof(uint32_t), 1, NULL);
        if (fd < 0 || bpf_map__update_elem(l->skel->maps.programs_grace, &zero, sizeof(zero), &fd,
                                           sizeof(fd), BPF_ANY) < 0) {
                log_debug("No grace period from the kernel (%m): waiting 10 ms instead.");
                usleep(10000); /* a program runs for microseconds */
        }
        safe_close(fd);
}

static uint32_t gen_cgroup(uint32_t gen, uint32_t i)
{
        return gen * TLSSNIFF_FILTER_CGROUPS_MAX + i;
}

static bool key_among(const void *key, const void *keys, size_t n, size_t key_size)
{
        for (size_t i = 0; i < n; i++)
                if (memcmp(key, (const uint8_t *)keys + i * key_size, key_size) == 0)
                        return true;
        return false;
}

/*
 * Makes keys[0..n) (each key_size bytes) the members of generation gen of map (a filter_pids
 * or filter_comms: a key's value has bit gen set while it is a member), leaving the other
 * generation's members as they are; a key in neither goes.
 */
static int set_gen_keys(struct bpf_map *map, const void *keys, size_t n, size_t key_size,
                        uint32_t gen)
{
        uint8_t key[64], next[64], bit = (uint8_t)(1u << gen), v;
        bool have = false;
        int r;

        if (key_size > sizeof(key))
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                const uint8_t *k = (const uint8_t *)keys + i * key_size;

                if (bpf_map__lookup_elem(map, k, key_size, &v, 1, 0) < 0)
                        v = 0;
                v |= bit;
                r = bpf_map__update_elem(map, k, key_size, &v, 1, BPF_ANY);
                if (r < 0)
                        return r;
        }
        for (;;) {
                r = bpf_map__get_next_key(map, have ? key : NULL, next, key_size);
                if (r == -ENOENT)
                        return 0;
                if (r < 0)
                        return r;
                if (!key_among(next, keys, n, key_size) &&
                    bpf_map__lookup_elem(map, next, key_size, &v, 1, 0) == 0) {
                        if ((v & ~bit) == 0) {
                                r = bpf_map__delete_elem(map, next, key_size, 0);
                                if (r < 0)
                                        return r;
                                continue; /* the walk goes on from the same previous key */
                        }
                        if (v & bit) {
                                v &= (uint8_t)~bit;
                                r = bpf_map__update_elem(map, next, key_size, &v, 1, BPF_EXIST);
                                if (r < 0)
                                        return r;
                        }
                }
                memcpy(key, next, key_size);
                have = true;
        }
}

/* Writes generation gen's filter state (the overrides and the cap are the same in both). */
static int write_state(struct loaderd *l, uint32_t gen)
{
        const struct options *o = &l->opt;
        const struct targets *t = &l->targets;
        struct tlssniff_filter_state s = {
                .call_cap = (uint32_t)o->call_cap,
                .pids_on = o->n_pids > 0,
                .comms_on = o->n_comms > 0,
                .cgroups_n = (uint8_t)(o->n_cgroups + t->n_units),
                .force_pids_on = t->n_force_pids > 0,
                .exclude_pids_on = t->n_exclude_pids > 0,
                .force_cgroups_n = (uint8_t)t->n_force_units,
                .exclude_cgroups_n = (uint8_t)t->n_exclude_units,
                .report_execs = t->n_units + t->n_force_units + t->n_exclude_units > 0,
                .gen_bit = (uint8_t)(1u << gen),
                .cgroups_base = (uint8_t)gen_cgroup(gen, 0),
        };

        return bpf_map__update_elem(l->skel->maps.filter_state, &gen, sizeof(gen), &s,
                                    sizeof(s), BPF_ANY);
}

/* Points slot idx of map at where unit u is now; logs when that changed. */
static int place_unit(struct targets *t, struct bpf_map *map, uint32_t idx,
                      struct unit_target *u)
{
        char path[PATH_MAX];
        uint64_t id = 0;
        int r;

        r = unit_cgroup(t, u->name, path, sizeof(path), &id);
        if (r < 0)
                id = 0;
        if (id == u->cgroup_id && id != 0)
                return 0;
        r = set_slot(map, idx, id ? path : NULL);
        if (r < 0)
                return log_warning_errno(r, "Failed to set the cgroup of unit %s, ignoring: %m",
                                         u->name);
        if (id)
                log_info("Unit %s is at cgroup %s.", u->name, path);
        else if (u->cgroup_id)
                log_info("Unit %s has no cgroup any more (stopped); followed when it starts.",
                         u->name);
        u->cgroup_id = id;
        return 1;
}

/* Places the units: the configured ones in generation gen's cgroups, the overrides. */
static void place_all_units(struct loaderd *l, uint32_t gen)
{
        struct targets *t = &l->targets;
        bool moved = false;

        for (unsigned i = 0; i < t->n_units; i++)
                moved |= place_unit(t, l->skel->maps.filter_cgroups,
                                    gen_cgroup(gen, l->opt.n_cgroups + i), &t->units[i]) > 0;
        for (unsigned i = 0; i < t->n_force_units; i++)
                moved |= place_unit(t, l->skel->maps.force_cgroups, i, &t->force_units[i]) > 0;
        for (unsigned i = 0; i < t->n_exclude_units; i++)
                moved |= place_unit(t, l->skel->maps.exclude_cgroups, i, &t->exclude_units[i]) > 0;
        if (moved)
                l->targets.unit_moves++;
}

int targets_apply(struct loaderd *l, const struct options *o, char *err, size_t err_size)
{
        struct bpf_map *cg = l->skel->maps.filter_cgroups;
        struct targets *t = &l->targets;
        char comms[LOADERD_FILTER_MAX][TLSSNIFF_COMM_LEN] = {};
        uint32_t gen = gen_next(l);
        int r;

        if (o->n_cgroups + o->n_units > TLSSNIFF_FILTER_CGROUPS_MAX) {
                snprintf(err, err_size, "at most %d cgroups and units together",
                         TLSSNIFF_FILTER_CGROUPS_MAX);
                return -EINVAL;
        }
        for (unsigned i = 0; i < o->n_cgroups; i++) {
                struct stat st;

                if (stat(o->cgroups[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
                        snprintf(err, err_size, "cgroup '%s': %s", o->cgroups[i],
                                 errno ? strerror(errno) : "not a directory");
                        return -EINVAL;
                }
        }
        /* Checked: the generation not in force is prepared (targets_commit switches to it). */
        wait_programs(l);
        for (unsigned i = 0; i < o->n_comms; i++)
                strncpy(comms[i], o->comms[i], TLSSNIFF_COMM_LEN - 1);
        r = set_gen_keys(l->skel->maps.filter_pids, o->pids, o->n_pids, sizeof(uint32_t), gen);
        if (r >= 0)
                r = set_gen_keys(l->skel->maps.filter_comms, comms, o->n_comms,
                                 TLSSNIFF_COMM_LEN, gen);
        for (uint32_t i = 0; r >= 0 && i < TLSSNIFF_FILTER_CGROUPS_MAX; i++)
                r = set_slot(cg, gen_cgroup(gen, i), i < o->n_cgroups ? o->cgroups[i] : NULL);
        if (r < 0) {
                snprintf(err, err_size, "setting the kernel's filters: %s", strerror(-r));
                return r;
        }
        t->n_units = o->n_units;
        for (unsigned i = 0; i < o->n_units; i++) {
                snprintf(t->units[i].name, sizeof(t->units[i].name), "%s", o->units[i]);
                t->units[i].cgroup_id = 0;
        }
        return 0;
}

/*
 * After targets_apply and l->opt being the options applied: the prepared generation gets its
 * units and its state, then the programs switch to it.
 */
static int targets_commit(struct loaderd *l)
{
        uint32_t gen = gen_next(l);
        int r;

        /* A pid is a process, not a name: one that is not running is never captured. */
        for (unsigned i = 0; i < l->opt.n_pids; i++)
                if (kill((pid_t)l->opt.pids[i], 0) < 0 && errno == ESRCH)
                        log_warning("Target process %u does not exist: nothing will be captured "
                                    "from it.",
                                    l->opt.pids[i]);
        place_all_units(l, gen);
        for (unsigned i = 0; i < l->targets.n_units; i++)
                if (!l->targets.units[i].cgroup_id)
                        log_notice("Unit %s has no cgroup (not running); it is traced once it "
                                   "starts.",
                                   l->targets.units[i].name);
        r = write_state(l, gen);
        if (r < 0)
                return r;
        __atomic_store_n(&l->skel->bss->filter_gen, gen, __ATOMIC_RELEASE);
        l->targets.switched = true;
        return 0;
}

int targets_setup(struct loaderd *l, char *err, size_t err_size)
{
        int r = targets_apply(l, &l->opt, err, err_size);

        if (r < 0)
                return r;
        r = targets_commit(l);
        if (r < 0)
                snprintf(err, err_size, "setting the filter state: %s", strerror(-r));
        return r;
}

int targets_finish_reload(struct loaderd *l)
{
        return targets_commit(l);
}

void targets_tick(struct loaderd *l)
{
        if (l->targets.n_units + l->targets.n_force_units + l->targets.n_exclude_units)
                place_all_units(l, gen_now(l));
}

void targets_on_exec(struct loaderd *l, pid_t pid)
{
        const struct targets *t = &l->targets;
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        char path[64];
        FILE *f;
        bool ours = false;

        if (t->n_units + t->n_force_units + t->n_exclude_units == 0)
                return;
        snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
        f = fopen(path, "re");
        if (!f)
                return;
        /* "0::/system.slice/nginx.service": is one of the units a component of it? Whole
         * lines: a cgroup path longer than a buffer must not be read as two. */
        while (getline(&line, &cap, f) > 0) {
                for (unsigned i = 0; i < t->n_units + t->n_force_units + t->n_exclude_units;
                     i++) {
                        const struct unit_target *u =
                                i < t->n_units ? &t->units[i]
                                : i < t->n_units + t->n_force_units
                                        ? &t->force_units[i - t->n_units]
                                        : &t->exclude_units[i - t->n_units - t->n_force_units];
                        const char *p = strstr(line, u->name);
                        size_t k = strlen(u->name);

                        if (p && p > line && p[-1] == '/' && (p[k] == '/' || p[k] == '\n'))
                                ours = true;
                }
        }
        fclose(f);
        if (ours)
                place_all_units(l, gen_now(l));
}

/* The processes in a cgroup and below, offered like any new process. */
static void discover_cgroup(struct loaderd *l, const char *dir, unsigned depth)
{
        char path[PATH_MAX];
        DIR *d;
        struct dirent *e;
        FILE *f;

        if (depth > CGROUP_DEPTH_MAX)
                return;
        snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
        f = fopen(path, "re");
        if (f) {
                long pid;

                while (fscanf(f, "%ld", &pid) == 1)
                        if (pid > 0)
                                (void)discover_pid(l, (pid_t)pid, true);
                fclose(f);
        }
        d = opendir(dir);
        if (!d)
                return;
        while ((e = readdir(d)))
                if (e->d_type == DT_DIR && e->d_name[0] != '.') {
                        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                        discover_cgroup(l, path, depth + 1);
                }
        closedir(d);
}

static int list_remove(struct unit_target *list, unsigned *n, const char *name)
{
        for (unsigned i = 0; i < *n; i++)
                if (strcmp(list[i].name, name) == 0) {
                        memmove(&list[i], &list[i + 1], (*n - i - 1) * sizeof(*list));
                        (*n)--;
                        return 1;
                }
        return 0;
}

/* Rewrites every slot of a force/exclude array from its list. */
static void relist(struct targets *t, struct bpf_map *map, struct unit_target *list,
                   unsigned n)
{
        for (uint32_t i = 0; i < TLSSNIFF_FILTER_CGROUPS_MAX; i++) {
                if (i < n) {
                        list[i].cgroup_id = 0;
                        (void)place_unit(t, map, i, &list[i]);
                } else
                        (void)set_slot(map, i, NULL);
        }
}

static int override_unit(struct loaderd *l, bool attach, const char *unit, char *msg,
                         size_t msg_size)
{
        struct targets *t = &l->targets;
        struct unit_target *add = attach ? t->force_units : t->exclude_units;
        struct unit_target *del = attach ? t->exclude_units : t->force_units;
        unsigned *n_add = attach ? &t->n_force_units : &t->n_exclude_units;
        unsigned *n_del = attach ? &t->n_exclude_units : &t->n_force_units;
        char path[PATH_MAX];
        uint64_t id;
        bool present = false;
        int r;

        r = unit_cgroup(t, unit, path, sizeof(path), &id);
        if (r < 0) {
                snprintf(msg, msg_size, "unit %s has no cgroup (is it running?)", unit);
                return -ENOENT;
        }
        for (unsigned i = 0; i < *n_add; i++)
                present = present || strcmp(add[i].name, unit) == 0;
        if (!present && *n_add >= TLSSNIFF_FILTER_CGROUPS_MAX) {
                snprintf(msg, msg_size, "at most %d units can be %s", TLSSNIFF_FILTER_CGROUPS_MAX,
                         attach ? "attached" : "detached");
                return -ENOSPC;
        }
        if (list_remove(del, n_del, unit))
                relist(t, attach ? l->skel->maps.exclude_cgroups : l->skel->maps.force_cgroups,
                       del, *n_del);
        if (!present) {
                snprintf(add[*n_add].name, sizeof(add[*n_add].name), "%s", unit);
                add[*n_add].cgroup_id = 0;
                (*n_add)++;
                relist(t, attach ? l->skel->maps.force_cgroups : l->skel->maps.exclude_cgroups, add,
                       *n_add);
        }
        r = write_state(l, gen_now(l));
        if (r < 0) {
                snprintf(msg, msg_size, "updating the kernel's filters: %s", strerror(-r));
                return r;
        }
        if (attach)
                discover_cgroup(l, path, 0);
        snprintf(msg, msg_size, "%s unit %s (cgroup %s)", attach ? "attached" : "detached", unit,
                 path);
        return 0;
}

static int override_pid(struct loaderd *l, bool attach, uint32_t pid, char *msg,
                        size_t msg_size)
{
        struct targets *t = &l->targets;
        struct bpf_map *add = attach ? l->skel->maps.force_pids : l->skel->maps.exclude_pids;
        struct bpf_map *del = attach ? l->skel->maps.exclude_pids : l->skel->maps.force_pids;
        unsigned *n_add = attach ? &t->n_force_pids : &t->n_exclude_pids;
        unsigned *n_del = attach ? &t->n_exclude_pids : &t->n_force_pids;
        char path[64], comm[32] = "?";
        uint8_t one = 1, v;
        FILE *f;
        int r;

        snprintf(path, sizeof(path), "/proc/%u/comm", pid);
        f = fopen(path, "re");
        if (!f) {
                snprintf(msg, msg_size, "no process %u", pid);
                return -ESRCH;
        }
        if (fgets(comm, sizeof(comm), f))
                comm[strcspn(comm, "\n")] = '\0';
        fclose(f);
        if (bpf_map__lookup_elem(del, &pid, sizeof(pid), &v, 1, 0) == 0) {
                (void)bpf_map__delete_elem(del, &pid, sizeof(pid), 0);
                (*n_del)--;
        }
        if (bpf_map__lookup_elem(add, &pid, sizeof(pid), &v, 1, 0) < 0) {
                if (*n_add >= LOADERD_OVERRIDES_MAX) {
                        snprintf(msg, msg_size, "at most %d processes can be %s",
                                 LOADERD_OVERRIDES_MAX, attach ? "attached" : "detached");
                        return -ENOSPC;
                }
                r = bpf_map__update_elem(add, &pid, sizeof(pid), &one, 1, BPF_ANY);
                if (r < 0) {
                        snprintf(msg, msg_size, "updating the kernel's filters: %s",
                                 strerror(-r));
                        return r;
                }
                (*n_add)++;
        }
        r = write_state(l, gen_now(l));
        if (r < 0) {
                snprintf(msg, msg_size, "updating the kernel's filters: %s", strerror(-r));
                return r;
        }
        if (attach)
                (void)discover_pid(l, (pid_t)pid, true);
        for (char *p = comm; *p; p++)
                if (!isprint((unsigned char)*p))
                        *p = '?';
        snprintf(msg, msg_size, "%s process %u (%s)", attach ? "attached" : "detached", pid, comm);
        return 0;
}

int targets_override(struct loaderd *l, bool attach, const char *arg, char *msg,
                     size_t msg_size)
{
        unsigned long long pid;

        if (parse_u64(arg, 1, INT32_MAX, &pid) == 0)
                return override_pid(l, attach, (uint32_t)pid, msg, msg_size);
        if (!options_valid_unit(arg)) {
                snprintf(msg, msg_size, "'%.64s' is neither a process id nor a unit name", arg);
                return -EINVAL;
        }
        return override_unit(l, attach, arg, msg, msg_size);
}
