/*
 * Planners: binary analysis (ELF, DWARF, Go tables, machine code) of each file runs in a
 * process of its own, started for that file and ending with it (tlssniff-analyzer --plan,
 * confined like the analyzer), which never sees captured data. Its socket carries one A_PLAN
 * frame for its file's id and nothing else: a plan for another file, a second frame, a frame
 * of another type or no plan at all fails the file (counted), so a hostile binary that takes
 * over its planner can put probes only into itself. At most PLANNERS_MAX run at once, each
 * for PLANNER_TIMEOUT_MS at most.
 *
 * Go executables' plans are also kept in the plan cache (plancache.h), by the SHA-256 of the
 * file's bytes that loaderd computes from its own descriptor, for files only root can write
 * (anyone else could change the bytes between the hash and the planning), and by the file's
 * identity (identity_key: the same file unchanged is not hashed again). A file whose size no
 * cached plan has is not hashed; one whose hash is there gets the cached plan, checked by
 * plan_validate() like a planner's, and no planner.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loaderd.h"

/* Ends tf's planner (it may still run: killed; SIGCHLD reaps it) and frees a slot. */
static void planner_end(struct loaderd *l, struct traced_file *tf)
{
        if (tf->planner_sock >= 0) {
                (void)epoll_ctl(l->epoll_fd, EPOLL_CTL_DEL, tf->planner_sock, NULL);
                tf->planner_sock = safe_close(tf->planner_sock);
        }
        if (tf->planner_in) {
                frame_reader_done(tf->planner_in);
                free(tf->planner_in);
                tf->planner_in = NULL;
        }
        if (tf->planner_pid > 0) {
                (void)kill(tf->planner_pid, SIGKILL);
                tf->planner_pid = 0;
                l->planners_running--;
        }
}

/* tf gets no plan: what its planner did wrong, counted in counter. */
static void planner_fail(struct loaderd *l, struct traced_file *tf, uint64_t *counter,
                         const char *why)
{
        char ep[LOG_ESCAPE_MAX];

        (*counter)++;
        log_warning("No plan for %s: its planner %s.", log_escape(tf->path, ep, sizeof(ep)),
                    why);
        planner_end(l, tf);
        loaderd_plan_received(l, tf, NULL);
}

static bool same_time(struct timespec a, struct timespec b)
{
        return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/* tf->key: the SHA-256 of tf's bytes, if they are still what loaderd found at the offer
 * (size, mtime and ctime before and after the hash); else tf is no longer cacheable. */
static int file_key(struct loaderd *l, struct traced_file *tf)
{
        struct stat st;
        int r;

        if (tf->key[0])
                return 0;
        if (!tf->cacheable || tf->fd < 0)
                return -ENOENT;
        r = sha256_fd(tf->fd, tf->size, tf->key);
        l->hashed_bytes += tf->size;
        if (r >= 0 && (fstat(tf->fd, &st) < 0 || (uint64_t)st.st_size != tf->size ||
                       !same_time(st.st_mtim, tf->mtime) || !same_time(st.st_ctim, tf->ctime)))
                r = -ESTALE;
        if (r < 0) {
                tf->key[0] = '\0';
                tf->cacheable = false;
        }
        return r;
}

/*
 * The key of tf's plan by its identity: device, inode and both times, kept beside the key by
 * content so that the same file, unchanged (a restart, the same image layer in another
 * container), needs no hashing. Only for files only root can write, whose ctime nobody else
 * can set: another file cannot come to have it.
 */
static void identity_key(const struct traced_file *tf, char *buf, size_t size)
{
        snprintf(buf, size, "f:%llx:%llx:%lld.%09ld:%lld.%09ld", (unsigned long long)tf->dev,
                 (unsigned long long)tf->ino, (long long)tf->mtime.tv_sec, tf->mtime.tv_nsec,
                 (long long)tf->ctime.tv_sec, tf->ctime.tv_nsec);
}

/* tf's plan from the cache, handed on as its planner's would be: true if there was one. */
static bool plan_from_cache(struct loaderd *l, struct traced_file *tf)
{
        char ep[LOG_ESCAPE_MAX], ikey[128];
        struct msg_plan *plan;
        bool same_file;

        if (!tf->cacheable)
                return false;
        plan = calloc(1, sizeof(*plan));
        if (!plan)
                return false;
        plan->file_id = tf->id;
        identity_key(tf, ikey, sizeof(ikey));
        same_file = plancache_get(&l->cache, ikey, tf->size, plan) == 0;
        if (!same_file && (!plancache_has_size(&l->cache, tf->size) || file_key(l, tf) < 0 ||
                           plancache_get(&l->cache, tf->key, tf->size, plan) < 0)) {
                free(plan);
                return false;
        }
        if (!same_file)
                (void)plancache_put(&l->cache, ikey, tf->size, plan);
        l->go_files++;
        l->go_cache_hits++;
        if (same_file)
                log_info("Plan for %s from the plan cache (the same file, unchanged): no planner.",
                         log_escape(tf->path, ep, sizeof(ep)));
        else
                log_info("Plan for %s from the plan cache (sha256 %.16s...): no planner.",
                         log_escape(tf->path, ep, sizeof(ep)), tf->key);
        loaderd_plan_received(l, tf, plan);
        return true;
}

void planner_plan_checked(struct loaderd *l, struct traced_file *tf, const struct msg_plan *plan)
{
        char ikey[128];

        if (!tf->cache_store || file_key(l, tf) < 0)
                return;
        tf->cache_store = false;
        identity_key(tf, ikey, sizeof(ikey));
        (void)plancache_put(&l->cache, tf->key, tf->size, plan);
        (void)plancache_put(&l->cache, ikey, tf->size, plan);
}

void plancache_setup(struct loaderd *l)
{
        const char *dir = l->opt.cache_dir;
        _cleanup_close_ int fd = -1;
        struct stat st;
        int r = 0;

        if (dir && dir[0]) {
                /* Root's alone (it was the analyzer's once): opened without following a
                 * link, changed through the descriptor. */
                if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                        r = -errno;
                if (r >= 0 && (fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
                        r = -errno;
                if (r >= 0 && fstat(fd, &st) < 0)
                        r = -errno;
                if (r >= 0 && (st.st_uid != 0 || st.st_gid != 0) && fchown(fd, 0, 0) < 0)
                        r = -errno;
                if (r >= 0 && (st.st_mode & 07777) != 0700 && fchmod(fd, 0700) < 0)
                        r = -errno;
                if (r >= 0)
                        r = plancache_open(&l->cache, dir);
                if (r >= 0) {
                        log_debug("Plan cache: %zu plans in %s.", l->cache.n, dir);
                        return;
                }
                log_warning_errno(r, "Failed to use the cache folder '%s', keeping the plan "
                                     "cache in memory: %m", dir);
        }
        (void)plancache_open(&l->cache, NULL);
}

static int planner_start(struct loaderd *l, struct traced_file *tf)
{
        struct epoll_event ev = { .events = EPOLLIN };
        int r;

        tf->planner_in = calloc(1, sizeof(*tf->planner_in));
        if (!tf->planner_in)
                return -ENOMEM;
        frame_reader_init(tf->planner_in, false);
        r = spawn_planner(l, tf->id, tf->path, tf->fd, &tf->planner_sock, &tf->planner_pid);
        if (r < 0) {
                tf->planner_sock = -1;
                tf->planner_pid = 0;
                return r;
        }
        l->planners_running++;
        l->planners_started++;
        tf->planner_deadline_ns = now_monotonic_ns() + PLANNER_TIMEOUT_MS * 1000000ull;
        ev.data.u32 = PLANNER_TAG(tf->id, EV_PLANNER);
        if (epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, tf->planner_sock, &ev) < 0)
                return -errno;
        return 0;
}

void planners_kick(struct loaderd *l)
{
        for (unsigned i = 0; i < l->n_files && l->planners_running < PLANNERS_MAX; i++) {
                struct traced_file *tf = &l->files[i];
                int r;

                if (tf->state != FILE_SENT || tf->planner_pid > 0 || tf->planner_in)
                        continue;
                if (plan_from_cache(l, tf))
                        continue;
                r = planner_start(l, tf);
                if (r < 0) {
                        char ep[LOG_ESCAPE_MAX];

                        log_warning_errno(r, "Failed to start a planner for %s: %m",
                                          log_escape(tf->path, ep, sizeof(ep)));
                        l->planners_failed++;
                        planner_end(l, tf);
                        loaderd_plan_received(l, tf, NULL);
                }
        }
}

static void planner_take(struct loaderd *l, struct traced_file *tf);

void planner_on_event(struct loaderd *l, struct traced_file *tf)
{
        planner_take(l, tf);
        /* Whatever the verdict, a slot may be free: the next file's planner starts now. */
        if (!tf->planner_in)
                planners_kick(l);
}

/* Reads what tf's planner sent: nothing yet, or the one frame that decides the file. */
static void planner_take(struct loaderd *l, struct traced_file *tf)
{
        struct frame_header h;
        const uint8_t *body;
        struct msg_planner_result res;
        struct msg_plan *plan;
        int k, r;

        if (!tf->planner_in)
                return;
        k = frame_reader_fill(tf->planner_in, tf->planner_sock);
        if (k == -EAGAIN)
                return;
        r = frame_reader_next(tf->planner_in, &h, &body);
        if (r == 0) {
                /* More to come, unless the planner is gone or its socket failed. */
                if (k <= 0)
                        planner_fail(l, tf, &l->planners_failed, "ended without a plan");
                return;
        }
        if (r < 0 || h.type != FRAME_P_PLAN) {
                planner_fail(l, tf, &l->planners_refused, "sent something other than a plan");
                return;
        }
        plan = malloc(sizeof(*plan));
        if (!plan || msg_decode_planner_plan(body, h.length, plan, &res) < 0 ||
            plan->file_id != tf->id) {
                free(plan);
                planner_fail(l, tf, &l->planners_refused,
                             "sent a plan that does not decode or is for another file");
                return;
        }
        /* The planner's word, for the counters only. */
        if (res.go) {
                l->go_files++;
                l->go_analyses++;
                l->go_analysis_us += res.analysis_us;
                /* Kept once loaderd has checked it, under the hash of this file only. */
                tf->cache_store = plan->n_probes > 0 && tf->cacheable;
        }
        /* One frame, then the planner is done: what else it may send is not read. */
        planner_end(l, tf);
        loaderd_plan_received(l, tf, plan);
}

void planners_tick(struct loaderd *l)
{
        uint64_t now = now_monotonic_ns();

        for (unsigned i = 0; i < l->n_files; i++) {
                struct traced_file *tf = &l->files[i];

                if (tf->planner_in && now > tf->planner_deadline_ns)
                        planner_fail(l, tf, &l->planners_timeouts, "ran out of time");
        }
        planners_kick(l);
}

void planners_stop(struct loaderd *l)
{
        for (unsigned i = 0; i < l->n_files; i++)
                if (l->files[i].planner_in)
                        planner_end(l, &l->files[i]);
}
