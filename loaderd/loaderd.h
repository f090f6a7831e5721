/*
 * loaderd: the root half of tlssniff. It owns the BPF object, discovers processes and their
 * files, hands file descriptors to the unprivileged analyzer, attaches the probes the analyzer
 * plans once they pass plan_validate(), and forwards ring-buffer records in frames. It never
 * parses payload and looks inside traced files only through elf_segments_read().
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "frame.h"
#include "log.h"
#include "msg.h"
#include "elfseg.h"

#define LOADERD_FILTER_MAX 64
#define LOADERD_RECORDS_BATCH (512u << 10) /* flush a records frame at this size */
#define LOADERD_BACKLOG_HIGH (16u << 20)   /* stop draining the ring buffer above this */

struct options {
        bool json;
        bool placement_fallback; /* --placement=fallback: entry + uretprobe everywhere */
        bool exchanges, no_data, show_secrets;
        bool journal_exchanges; /* --journal-exchanges (implies --exchanges) */
        bool raw_syscall_hooks; /* --syscall-hooks=raw */
        unsigned body_preview;
        const char *output;
        const char *analyzer;
        const char *user;
        const char *control_socket; /* "" for none */
        const char *cache_dir;      /* the analyzer's Go offset cache; "" for none */
        unsigned max_print;
        unsigned long long call_cap;
        unsigned long long ringbuf_size;
        enum log_target log_target;
        int log_level;
        unsigned n_pids, n_comms, n_cgroups;
        uint32_t pids[LOADERD_FILTER_MAX];
        const char *comms[LOADERD_FILTER_MAX];
        const char *cgroups[LOADERD_FILTER_MAX];
};

enum file_state {
        FILE_SENT,     /* offered to the analyzer, plan pending */
        FILE_ATTACHED, /* probes attached */
        FILE_NO_TLS,   /* the analyzer found nothing to probe */
        FILE_FAILED,   /* plan refused or attach failed */
};

struct traced_file {
        uint32_t id;
        uint64_t dev; /* st_dev */
        uint64_t ino;
        int fd;
        enum file_state state;
        bool initial; /* found by the start-up scan; counts towards readiness */
        uint8_t kind; /* enum msg_file_kind */
        unsigned n_links;
        struct bpf_link **links;
        char *path;
};

struct loaderd {
        struct options opt;
        struct openssl_bpf *skel;
        struct ring_buffer *rb;
        int epoll_fd;
        int signal_fd;
        int timer_fd;
        int sock; /* to the analyzer */
        int output_fd; /* --output, opened once so a restarted analyzer appends to it */
        int control_fd; /* listening control socket, handed to every analyzer */
        unsigned analyzer_restarts;
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
        unsigned pending_initial;
        unsigned probes_attached;

        msgpack_sbuffer records; /* records frame body being built */
        uint32_t n_records;

        struct ratelimit refuse_log; /* refusals are caused by the untrusted analyzer */

        /* loaderd's own counters, reported with the kernel's. */
        uint64_t frames_refused;
        uint64_t records_forwarded;
        uint64_t file_events;
        uint64_t files_failed;
        uint64_t lost_frame_bytes; /* queued for an analyzer that died */
        uint64_t last_loss_reported;
};

int loaderd_run(struct options *opt);
/* One frame from the analyzer through the dispatch table (also used by tests and fuzzing). */
int loaderd_dispatch_frame(struct loaderd *l, const struct frame_header *h, const uint8_t *body);

/* discover.c */
int discover_all(struct loaderd *l);
int discover_pid(struct loaderd *l, pid_t pid, bool maps);
int discover_library_dirs(struct loaderd *l);
/* loaderd.c: offers a file opened by the caller (takes ownership of fd). */
int loaderd_offer_file(struct loaderd *l, int fd, const char *path, pid_t pid, uint8_t kind,
                       bool initial);
bool loaderd_knows_file(struct loaderd *l, uint64_t dev, uint64_t ino);
void loaderd_mark_known(struct loaderd *l, uint64_t dev, uint64_t ino, bool kernel_encoding);

/* spawn.c: uses l->opt and l->output_fd */
int spawn_analyzer(struct loaderd *l, int *ret_sock, pid_t *ret_pid);
