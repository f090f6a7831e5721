/*
 * msgpack bodies of the frames in frame.h. Each decoder accepts exactly one msgpack object of
 * the expected shape that spans the whole body, with every integer and string in range, and
 * returns -EBADMSG otherwise. Encoders append to a msgpack_sbuffer.
 */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <msgpack.h>
#include <stdint.h>

#include "../bpf/events.h"

#define MSG_PATH_MAX 1024
#define MSG_TEXT_MAX 256
#define MSG_PLAN_PROBES_MAX 64
#define MSG_STATS_MAX 96
#define MSG_STAT_NAME_MAX 48

enum msg_file_kind {
        MSG_FILE_EXECUTABLE = 1, /* a process's main program */
        MSG_FILE_LIBRARY = 2,    /* another executable mapping */
};

struct msg_l_hello {
        uint32_t version;
        int64_t realtime_offset_ns; /* CLOCK_REALTIME - CLOCK_BOOTTIME */
        uint32_t call_cap;
};

struct msg_file {
        uint32_t file_id;
        uint64_t dev;
        uint64_t ino;
        uint32_t pid;
        uint8_t kind;
        char path[MSG_PATH_MAX];
};

struct msg_probe {
        uint8_t kind; /* enum tlssniff_probe_kind */
        uint8_t func; /* enum tlssniff_func */
        uint64_t offset;
        struct tlssniff_loc loc[_TLSSNIFF_ARG_MAX];
};

struct msg_plan {
        uint32_t file_id;
        char library[MSG_TEXT_MAX]; /* what the analyzer found, e.g. "libssl.so.3" */
        char reason[MSG_TEXT_MAX];  /* why there are no probes, or how they were placed */
        uint32_t n_probes;
        struct msg_probe probes[MSG_PLAN_PROBES_MAX];
        bool has_go; /* Go probes: go holds the executable's offsets */
        struct tlssniff_go_info go;
};

/* L_PLANNED: a file and what its planner said of it. */
struct msg_planned {
        struct msg_file file;
        char library[MSG_TEXT_MAX];
        char reason[MSG_TEXT_MAX];
        uint32_t probes;
};

struct msg_attached {
        uint32_t file_id;
        uint32_t probes;
        char error[MSG_TEXT_MAX];
};

struct msg_ready {
        uint32_t probes;
        uint32_t files;
};

struct msg_stat {
        char name[MSG_STAT_NAME_MAX];
        uint64_t value;
};

struct msg_stats {
        uint32_t n;
        struct msg_stat s[MSG_STATS_MAX];
};

/* A_CONTROL verbs: the analyzer passes on processes only; loaderd refuses the changes from it
 * (they come through its admin socket, loaderd/admin.h). */
enum msg_control_verb {
        MSG_CONTROL_ATTACH = 1,
        MSG_CONTROL_DETACH = 2,
        MSG_CONTROL_RELOAD = 3,
        MSG_CONTROL_PROCESSES = 4, /* answered with L_PROCESSES; arg: "" or one pid */
};

/* What loaderd says of a process (tlssniffctl processes). */
enum msg_process_status {
        MSG_PROCESS_TRACED = 1,     /* a target, with probes on a TLS file it maps */
        MSG_PROCESS_NOT_TARGET = 2, /* the configured targets leave it out */
        MSG_PROCESS_DETACHED = 3,   /* tlssniffctl detach (or tlssniff itself) */
        MSG_PROCESS_NO_PROBES = 4,  /* a target, but no probes on its TLS files (why: reason) */
        MSG_PROCESS_NO_TLS = 5,     /* no file with TLS code found in it */
        _MSG_PROCESS_STATUS_MAX,
};

#define MSG_PROCESSES_MAX 128
#define MSG_PROCESS_FILES_MAX 8

struct msg_process {
        uint32_t pid;
        uint8_t status;
        char comm[TLSSNIFF_COMM_LEN];
        char exe[MSG_TEXT_MAX];
        char reason[MSG_TEXT_MAX];
        uint32_t n_files;
        uint32_t files[MSG_PROCESS_FILES_MAX]; /* ids of the TLS files it maps (L_FILE) */
};

struct msg_processes {
        uint32_t id;
        uint32_t total; /* processes found; at most MSG_PROCESSES_MAX are in p */
        uint32_t n;
        struct msg_process p[MSG_PROCESSES_MAX];
};

int msg_encode_processes(msgpack_sbuffer *sb, const struct msg_processes *m);
/* ret is written in part when the body is refused. */
int msg_decode_processes(const uint8_t *body, size_t n, struct msg_processes *ret);

struct msg_control {
        uint32_t id;
        uint8_t verb;
        char arg[MSG_TEXT_MAX]; /* a pid or a unit name; "" for reload */
};

struct msg_control_result {
        uint32_t id;
        bool ok;
        char message[MSG_PATH_MAX];
};

#define MSG_CONFIG_ARGS_MAX 64

/* The analyzer's options after a reload, as on its command line. */
struct msg_config {
        uint32_t n_args;
        char args[MSG_CONFIG_ARGS_MAX][MSG_TEXT_MAX];
        bool has_fd; /* the output changed: its new fd comes with the frame */
};

int msg_encode_control(msgpack_sbuffer *sb, const struct msg_control *m);
int msg_decode_control(const uint8_t *body, size_t n, struct msg_control *ret);
int msg_encode_control_result(msgpack_sbuffer *sb, const struct msg_control_result *m);
int msg_decode_control_result(const uint8_t *body, size_t n, struct msg_control_result *ret);
int msg_encode_config(msgpack_sbuffer *sb, const struct msg_config *m);
int msg_decode_config(const uint8_t *body, size_t n, struct msg_config *ret);

int msg_encode_l_hello(msgpack_sbuffer *sb, const struct msg_l_hello *m);
int msg_decode_l_hello(const uint8_t *body, size_t n, struct msg_l_hello *ret);
int msg_encode_a_hello(msgpack_sbuffer *sb, uint32_t version);
int msg_decode_a_hello(const uint8_t *body, size_t n, uint32_t *ret_version);
int msg_encode_file(msgpack_sbuffer *sb, const struct msg_file *m);
int msg_decode_file(const uint8_t *body, size_t n, struct msg_file *ret);
/* P_PLAN, a planner's answer: the plan and what planning it took. */
struct msg_planner_result {
        bool go;              /* a Go executable */
        uint64_t analysis_us; /* time spent analysing */
};
int msg_encode_planner_plan(msgpack_sbuffer *sb, const struct msg_plan *plan,
                            const struct msg_planner_result *res);
/* plan (large: the caller's) and res, or -EBADMSG. */
int msg_decode_planner_plan(const uint8_t *body, size_t n, struct msg_plan *plan,
                            struct msg_planner_result *res);
int msg_encode_planned(msgpack_sbuffer *sb, const struct msg_planned *m);
int msg_decode_planned(const uint8_t *body, size_t n, struct msg_planned *ret);
/* Appends a probe (the caller checks there is room). */
void msg_plan_add_probe(struct msg_plan *plan, uint8_t kind, uint8_t func, uint64_t offset,
                        const struct tlssniff_loc loc[_TLSSNIFF_ARG_MAX]);
int msg_encode_plan(msgpack_sbuffer *sb, const struct msg_plan *m);
int msg_decode_plan(const uint8_t *body, size_t n, struct msg_plan *ret);
int msg_encode_attached(msgpack_sbuffer *sb, const struct msg_attached *m);
int msg_decode_attached(const uint8_t *body, size_t n, struct msg_attached *ret);
/* The analyzer's counts, once a second (A_STATUS). */
struct msg_status {
        uint32_t processes;   /* processes with tracked connections */
        uint32_t connections; /* tracked connections */
        uint64_t records_bytes; /* L_RECORDS body bytes handled since it started */
};

int msg_encode_status(msgpack_sbuffer *sb, const struct msg_status *m);
int msg_decode_status(const uint8_t *body, size_t n, struct msg_status *ret);
int msg_encode_ready(msgpack_sbuffer *sb, const struct msg_ready *m);
int msg_decode_ready(const uint8_t *body, size_t n, struct msg_ready *ret);
int msg_encode_stats(msgpack_sbuffer *sb, const struct msg_stats *m);
int msg_decode_stats(const uint8_t *body, size_t n, struct msg_stats *ret);

/*
 * Records: the body is an array of bin objects, built incrementally in sb: begin writes an
 * array32 header whose count finish fills in, so records are copied once.
 */
void msg_records_begin(msgpack_sbuffer *sb);
void msg_records_add(msgpack_sbuffer *sb, const void *rec, size_t n);
void msg_records_finish(msgpack_sbuffer *sb, uint32_t count);
/* Calls cb for each bin of a records body; stops at the first negative return. */
int msg_records_foreach(const uint8_t *body, size_t n,
                        int (*cb)(const uint8_t *rec, size_t len, void *userdata),
                        void *userdata);
