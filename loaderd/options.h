/*
 * loaderd's settings: defaults, then the configuration file (/etc/tlssniff/tlssniff.conf,
 * docs/tlssniff.conf.5), then the command line. Both sources go through one table of settings
 * (a command-line option --name is the key "name" of one section of the file), so a value
 * means the same and is checked the same wherever it comes from.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "log.h"

#define LOADERD_FILTER_MAX 64
#define OPTIONS_UNITS_MAX 8
#define OPTIONS_REDACT_MAX 32
#define OPTIONS_LINE_MAX 4096
#define OPTIONS_ERROR_MAX 512

enum syscall_hooks {
        SYSCALL_HOOKS_AUTO,     /* socket tracepoints for I/O where the kernel has them */
        SYSCALL_HOOKS_PER_CALL, /* per-call system call tracepoints for I/O and mmap */
        SYSCALL_HOOKS_RAW,      /* raw sys_enter/sys_exit */
};

struct options {
        bool json;
        bool placement_fallback; /* --placement=fallback: entry + uretprobe everywhere */
        bool probe_scope_all;    /* --probe-scope=all: probes in every process, pid targets too */
        bool exchanges, no_data, show_secrets;
        bool journal_exchanges; /* --journal-exchanges (implies --exchanges) */
        enum syscall_hooks syscall_hooks; /* --syscall-hooks */
        bool uprobe_sessions;   /* --uprobe-sessions (default yes): where the kernel has them */
        bool direct_read;       /* --direct-read (default yes): where the kernel can */
        bool batch_scheduling;  /* --batch-scheduling (default no): SCHED_BATCH */
        bool check_config;      /* --check-config: read the settings, say whether they are good */
        unsigned body_preview;
        const char *output;
        const char *analyzer;
        const char *planner;        /* the planners' binary; NULL: the default analyzer's */
        const char *user;
        const char *data_group;     /* may tail raw data; "" for none (root only) */
        const char *control_socket; /* "" for none */
        const char *cache_dir;      /* the analyzer's Go offset cache; "" for none */
        const char *config;         /* the file read; NULL: none */
        unsigned max_print;
        unsigned long long call_cap;
        unsigned long long ringbuf_size; /* each CPU's data ring; 0: options_data_ring_size */
        enum log_target log_target;
        int log_level;
        unsigned n_pids, n_comms, n_cgroups, n_units, n_redact;
        uint32_t pids[LOADERD_FILTER_MAX];
        const char *comms[LOADERD_FILTER_MAX];
        const char *cgroups[LOADERD_FILTER_MAX];
        const char *units[OPTIONS_UNITS_MAX];
        const char *redact[OPTIONS_REDACT_MAX]; /* headers redacted besides the usual ones */
        unsigned n_redact_params;
        const char *redact_params[OPTIONS_REDACT_MAX]; /* parameters besides REDACT_PARAMS */

        /* Every string above is a copy owned here (options_free). */
        char **owned;
        unsigned n_owned, cap_owned;
};

enum options_result { OPTIONS_RUN = 1, OPTIONS_EXIT = 0 };

/*
 * Settings from the defaults, the configuration file (--config FILE, else the default file
 * when it exists) and argv, in that order: a later source overrides an earlier one, and
 * targets given on the command line replace the file's targets. Returns OPTIONS_RUN,
 * OPTIONS_EXIT (--help, --version, --check-config done) or -EINVAL with the reason in err
 * ("FILE:LINE: ..." for the file). The caller frees o with options_free() in every case.
 */
int options_load(struct options *o, int argc, char **argv, char *err, size_t err_size);
/* The file's settings alone, on top of o (tests, fuzzing): 0 or -EINVAL with err. */
int options_parse_config(struct options *o, const char *name, const char *text, size_t n,
                         char *err, size_t err_size);
void options_defaults(struct options *o);
/* A systemd unit name with a known suffix (.service, .scope, .slice, .socket). */
bool options_valid_unit(const char *s);
void options_free(struct options *o);
/* A copy of s owned by o (NULL stays NULL; NULL when out of memory). */
const char *options_keep(struct options *o, const char *s);
void options_help(void);
/* Each CPU's data ring: --ringbuf-size when given, else 16 MiB shared out among ncpu CPUs (a
 * power of two, 4 MiB at most and 1 MiB at least: a ring that fits in the caches with what
 * else runs costs the traced programs less per record, docs/performance.md). */
unsigned long long options_data_ring_size(const struct options *o, unsigned ncpu);
