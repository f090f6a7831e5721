/*
 * loaderd: the root half of tlssniff. It owns the BPF object, discovers processes and their
 * files, hands file descriptors to the unprivileged analyzer, attaches the probes the analyzer
 * plans once they pass plan_validate(), and forwards ring-buffer records in frames. It never
 * parses payload and looks inside traced files only through elf_segments_read().
 */
#pragma once

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "frame.h"
#include "log.h"
#include "msg.h"
#include "elfseg.h"
#include "sha256.h"

#include "admin.h"
#include "options.h"
#include "plancache.h"
#include "ringbuf.h"

#define LOADERD_RECORDS_BATCH (512u << 10) /* flush a records frame at this size */
#define LOADERD_EVENTS_RING (4u << 20)     /* the ring of the records other than data */
#define LOADERD_BACKLOG_HIGH (16u << 20)   /* stop draining the ring buffer above this */
/* Frames queued for an analyzer that does not read, at most: a frame beyond is dropped and
 * counted (loaderd_frames_dropped). Records stop at LOADERD_BACKLOG_HIGH before. */
#define LOADERD_QUEUE_MAX (64u << 20)
#define LOADERD_OVERRIDES_MAX 1024         /* pids attached or detached with tlssniffctl */
/* Files in the registry, at most: beyond, the oldest without probes (no TLS, failed) is
 * forgotten (loaderd_files_evicted); when every one has probes or waits for its planner, a new
 * file is refused (loaderd_files_refused). */
#define LOADERD_FILES_MAX 8192
#define LOADERD_PROCESSES_PER_S 4 /* process listings (a /proc scan each) a second */

/* A systemd unit as a target: the cgroup it was last found at (0: not running). */
struct unit_target {
        char name[256];
        uint64_t cgroup_id; /* inode of its cgroup directory */
};

/*
 * What the kernel filters on: the configured targets (units resolved to their cgroups) and
 * tlssniffctl's overrides, which win over them and stay across reloads.
 */
struct targets {
        struct unit_target units[OPTIONS_UNITS_MAX];
        unsigned n_units;
        unsigned n_force_pids, n_exclude_pids;
        struct unit_target force_units[TLSSNIFF_FILTER_CGROUPS_MAX];
        struct unit_target exclude_units[TLSSNIFF_FILTER_CGROUPS_MAX];
        unsigned n_force_units, n_exclude_units;
        uint64_t unit_moves; /* units found at a new cgroup (started or restarted) */
        char cgroup_root[256]; /* where cgroup v2 is mounted, found on first use */
        bool switched;       /* the filter generation changed since the programs were waited for */
};

enum file_state {
        FILE_SENT,     /* waiting for a planner, or being planned (planner_pid > 0) */
        FILE_ATTACHED, /* probes attached */
        FILE_NO_TLS,   /* the analyzer found nothing to probe */
        FILE_FAILED,   /* plan refused or attach failed */
};

/* One probe of a plan, or an entry + uretprobe pair at one place, and its spec. */
struct probe_unit {
        uint16_t probe; /* index in the plan (the entry of a pair) */
        int16_t ret;    /* the pair's uretprobe, -1: none */
        uint32_t spec;  /* its probe_specs index: the attach cookie */
};

/* A plan's probes in the kernel: the units' links, in every process of the scope. */
struct probe_set {
        struct probe_unit *units;
        unsigned n_units;
        struct bpf_link **links; /* uprobes and uretprobes */
        unsigned n_links, cap_links;
        int *session_fds; /* uprobe sessions: each one unit's entry + return */
        unsigned n_sessions, cap_sessions;
};

#define LOADERD_SCOPE_PIDS_MAX 16 /* more target processes: probes in every process */

/* Where probes are put (attach.c): every process (n_pids 0), or only these. */
struct probe_scope {
        unsigned n_pids;
        uint32_t pids[LOADERD_SCOPE_PIDS_MAX];
};

struct traced_file {
        uint32_t id;
        uint64_t dev; /* st_dev */
        uint64_t ino;
        int fd;
        enum file_state state;
        bool initial; /* found by the start-up scan; counts towards readiness */
        uint8_t kind; /* enum msg_file_kind */
        pid_t pid;    /* the process it was found in (0: a library folder) */
        struct msg_plan *plan; /* attached: kept to attach it again when the scope changes */
        /* As loaderd found it (fstat at the offer): the plan cache may serve it or keep its
         * plan only while these are the same and only root can write it (planner.c). */
        uint64_t size;
        struct timespec mtime, ctime;
        bool cacheable;
        bool cache_store;               /* its planner's plan goes into the cache once checked */
        char key[SHA256_HEX_SIZE];      /* its SHA-256, once computed ("" before) */
        /* Its planner (planner.c) while it runs: pid, socket, what came, the deadline. */
        pid_t planner_pid;
        int planner_sock;
        struct frame_reader *planner_in;
        uint64_t planner_deadline_ns;
        struct probe_set set;
        char *path;
};

struct loaderd {
        struct options opt;
        int argc;    /* the command line, read again on reload */
        char **argv;
        struct targets targets;
        uint64_t reloads, reload_failures;
        unsigned status_processes, status_connections; /* the analyzer's, for STATUS= */
        /* Records frames' body bytes given to this analyzer, and handled by its last report;
         * what is in between when it dies is counted as lost (loaderd_analyzer_lost_...). */
        uint64_t analyzer_sent_bytes, analyzer_done_bytes, analyzer_lost_bytes;
        struct openssl_bpf *skel;
        bool sessions; /* entry + uretprobe pairs attached as uprobe sessions */
        /* The BPF ring buffers, mapped (ringbuf.h): [0] events (files, connections), then one
         * data ring per possible CPU (data_rings), whose map fds loaderd owns and which
         * ring_srcs[0..n_rings-2] drain as one. */
        struct ringbuf_reader *rings;
        struct ringbuf_src *ring_srcs;
        unsigned n_rings;
        uint64_t ring_bytes; /* all rings' sizes */
        uint64_t rb_used_max;
        uint64_t started_ns; /* CLOCK_MONOTONIC */
        int epoll_fd;
        int signal_fd;
        int timer_fd;
        int sock; /* to the analyzer */
        int output_fd; /* --output, opened once so a restarted analyzer appends to it */
        int control_fd; /* listening control socket, handed to every analyzer */
        unsigned analyzer_restarts;
        /* The analyzer's user, as spawn_analyzer last found it: planners run as the same user
         * without a name lookup (and perhaps a useradd) in the loop for every file. */
        uid_t child_uid;
        gid_t child_gid;
        unsigned restart_delay_ms;
        uint64_t analyzer_started_ns;
        pid_t analyzer_pid;
        bool analyzer_hello;
        bool rb_paused;
        bool ready;
        bool stopping;
        bool analyzer_failed; /* it exited with an error when told to stop */
        struct frame_reader in;
        struct frame_writer out;

        struct traced_file *files;
        unsigned n_files, cap_files;
        uint32_t next_file_id;
        uint32_t next_spec;
        uint32_t free_specs[TLSSNIFF_PROBE_SPECS_MAX]; /* of probe sets detached */
        unsigned n_free_specs;
        struct probe_scope scope;
        uint32_t probe_set; /* the id of the probe set attached (struct tlssniff_probe_spec) */
        uint64_t scope_changes; /* probes of every file replaced for a new scope */
        unsigned pending_initial;
        unsigned probes_attached;

        msgpack_sbuffer records; /* records frame body being built */
        uint32_t n_records;

        struct ratelimit refuse_log; /* refusals are caused by the untrusted analyzer */

        /* loaderd's own counters, reported with the kernel's. */
        uint64_t frames_refused;
        uint64_t frames_dropped;           /* not queued: LOADERD_QUEUE_MAX reached */
        /* tlssniffctl processes (all of them) makes loaderd read all of /proc: at most
         * LOADERD_PROCESSES_PER_S such listings a second, the others answered "busy". */
        struct ratelimit processes_rate;
        uint64_t processes_throttled;
        uint64_t analyzer_changes_refused; /* attach/detach/reload frames from the analyzer */
        uint64_t odd_names;                /* maps entries whose name is not the mapped file */
        unsigned planners_running;         /* planner.c */
        uint64_t planners_started, planners_refused, planners_timeouts, planners_failed;
        uint64_t analyzer_plans_refused;   /* A_PLAN frames from the data analyzer */
        uint64_t go_files, go_cache_hits, go_analyses, go_analysis_us; /* planners' reports */
        struct plancache cache;            /* plans of Go files by content (plancache.h) */
        uint64_t hashed_bytes;             /* read to compute plan cache keys */
        struct ratelimit odd_name_log;
        struct admin admin;                /* the admin socket (admin.h) */
        uint64_t records_forwarded;
        uint64_t file_events;
        uint64_t files_failed;
        uint64_t files_evicted, files_refused; /* LOADERD_FILES_MAX reached */
        uint64_t lost_frame_bytes; /* queued for an analyzer that died */
        uint64_t last_loss_reported;
};

int loaderd_run(struct options *opt, int argc, char **argv);
/* Reads the configuration and the command line again and applies them; on error nothing
 * changes. 0, or -EINVAL with the reason in msg; msg says what happened either way. */
int loaderd_reload(struct loaderd *l, char *msg, size_t msg_size);

/* A frame to the analyzer (queued behind what is pending). */
int loaderd_send_frame(struct loaderd *l, uint16_t type, const msgpack_sbuffer *sb);
/* processes.c: answers MSG_CONTROL_PROCESSES with an L_PROCESSES frame (arg: "" or a pid). */
int processes_answer(struct loaderd *l, uint32_t id, const char *arg);

/* targets.c */
/* At start: the filters of l->opt into the kernel. */
int targets_setup(struct loaderd *l, char *err, size_t err_size);
/* On reload: checks o's filters and writes them (the units' cgroups and the state follow
 * with targets_finish_reload once l->opt is o). */
int targets_apply(struct loaderd *l, const struct options *o, char *err, size_t err_size);
int targets_finish_reload(struct loaderd *l);
/* A process exec'd: is it a unit target that started or moved? */
void targets_on_exec(struct loaderd *l, pid_t pid);
/* Once a second: units whose cgroup appeared, went or changed. */
void targets_tick(struct loaderd *l);
/* tlssniffctl attach/detach: arg is a pid or a unit name; msg says what was done or why not. */
int targets_override(struct loaderd *l, bool attach, const char *arg, char *msg, size_t msg_size);
/* One frame from the analyzer through the dispatch table (also used by tests and fuzzing). */
int loaderd_dispatch_frame(struct loaderd *l, const struct frame_header *h, const uint8_t *body);

/* attach.c */
#define ATTACH_TYPE_UPROBE_SESSION 57 /* enum bpf_attach_type, Linux 6.13 */
/* tf's checked plan (allocated: tf's from now on, detach_file frees it) in the current scope;
 * -errno with the reason in err. */
int attach_file(struct loaderd *l, struct traced_file *tf, struct msg_plan *plan, char *err,
                size_t err_size);
void detach_file(struct loaderd *l, struct traced_file *tf);
/* Probes of tf's plan (in each process of the scope). */
unsigned file_probes(const struct traced_file *tf);
/* The scope the targets and options ask for. */
void scope_wanted(const struct loaderd *l, struct probe_scope *ret);
/* At start, before any file is attached: the scope, logged. */
void loaderd_scope_init(struct loaderd *l);
/* After the targets changed: every attached file's probes moved to the scope they now ask
 * for. On error the probes stay where they were and err says why. */
int loaderd_rescope(struct loaderd *l, char *err, size_t err_size);

/* discover.c */
/* An executable file mapping, from one line of /proc/PID/maps. */
struct maps_entry {
        uint64_t start, end;
        uint64_t dev; /* st_dev encoding */
        uint64_t ino;
        const char *name; /* the path as the kernel shows it, in the line ("" if none) */
};
/* Parses line (cutting its newline); false for a mapping that is not an executable file's. */
bool maps_exec_line(char *line, struct maps_entry *ret);
/* The next process in an opendir("/proc") walk, 0 at the end. */
pid_t proc_next_pid(DIR *proc);
int discover_all(struct loaderd *l);
int discover_pid(struct loaderd *l, pid_t pid, bool maps);
int discover_library_dirs(struct loaderd *l);
enum { EV_RINGBUF = 1, EV_SOCK, EV_SIGNAL, EV_TIMER, EV_ADMIN, EV_PLANNER };

/* loaderd.c: a planner's plan for tf (taken; NULL: none came): checked, attached, reported. */
void loaderd_plan_received(struct loaderd *l, struct traced_file *tf, struct msg_plan *plan);

/* planner.c: one confined, short-lived planner per file (tlssniff-analyzer --plan), at most
 * PLANNERS_MAX at once; a plan is taken from the planner of that file only. */
/* As many as this machine's CPUs in the tests, and most planners take milliseconds. */
#define PLANNERS_MAX 2
#define PLANNER_TIMEOUT_MS 30000
/* The epoll tag of tf's planner socket (EV_PLANNER in its low 4 bits, the file id above). */
#define PLANNER_TAG(id, ev) ((uint32_t)(id) << 4 | (ev))
/* Starts planners for files waiting, as slots are free. */
void planners_kick(struct loaderd *l);
/* tf's planner socket is readable or closed. */
void planner_on_event(struct loaderd *l, struct traced_file *tf);
/* Once a second: planners past their deadline are killed and their files failed. */
void planners_tick(struct loaderd *l);
/* At exit: every planner killed. */
void planners_stop(struct loaderd *l);
/* A checked plan of tf, from its planner: into the plan cache if tf->cache_store. */
void planner_plan_checked(struct loaderd *l, struct traced_file *tf, const struct msg_plan *plan);
/* At start: the cache folder made root's (mode 0700) and the plan cache loaded from it. */
void plancache_setup(struct loaderd *l);
/* loaderd.c: offers a file opened by the caller (takes ownership of fd). */
/* spawn.c: the analyzer's output options (--json, --exchanges, ...) as arguments. */
unsigned analyzer_output_args(const struct options *o, char args[][MSG_TEXT_MAX], unsigned max);
int loaderd_offer_file(struct loaderd *l, int fd, const char *path, pid_t pid, uint8_t kind,
                       bool initial);
bool loaderd_knows_file(struct loaderd *l, uint64_t dev, uint64_t ino);
/* Forgets the oldest file without probes that waits for no plan (LOADERD_FILES_MAX reached):
 * 0, or -ENOSPC when every file has probes or waits for its planner. */
int loaderd_evict_file(struct loaderd *l);
/* A maps entry of pid whose name does not lead to the file it maps (a forged or stale line):
 * counted in loaderd_odd_names, logged (escaped, rate-limited). */
void loaderd_odd_name(struct loaderd *l, pid_t pid, const char *name);
void loaderd_mark_known(struct loaderd *l, uint64_t dev, uint64_t ino, bool kernel_encoding);

/* spawn.c: uses l->opt and l->output_fd */
int spawn_analyzer(struct loaderd *l, int *ret_sock, pid_t *ret_pid);
/* A planner for one file (tlssniff-analyzer --plan=file_id, the file on its fd 4, confined
 * like the analyzer, stdout loaderd's): its socket and pid, or -errno. */
int spawn_planner(struct loaderd *l, uint32_t file_id, const char *name, int file_fd,
                  int *ret_sock, pid_t *ret_pid);
/* The analyzer's own descriptor of the output fd (CLOEXEC, for the caller to close): for a
 * regular file a new open file description, write-only and appending, so that the analyzer
 * can neither read the file nor change loaderd's description; else a duplicate. -errno. */
int analyzer_output_fd(int fd);
/* Sends sig (0: none) to the analyzer pid and waits for its end at most timeout_ms, never
 * longer: 1 when it ended and was reaped (its wait status in *ret_status, if not NULL), 0
 * when it still runs, -errno when sig could not be sent (EPERM without CAP_KILL). */
int analyzer_end(pid_t pid, int sig, int timeout_ms, int *ret_status);
