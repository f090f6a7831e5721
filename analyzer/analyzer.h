/*
 * The analyzer: the unprivileged half of tlssniff. It reads frames from loaderd on one socket,
 * answers each offered file with a probe plan, and turns data records into messages on its
 * output. Everything here treats its input as untrusted.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "binary/place.h"
#include "control/control.h"
#include "control/tail.h"
#include "conn/identity.h"
#include "conn/listen.h"
#include "conn/table.h"
#include "frame.h"
#include "log.h"
#include "msg.h"
#include "out/direct.h"
#include "out/output.h"
#include "record.h"

/* loaderd's counters and the analyzer's own (analyzer_collect_stats: 38 today). */
#define ANALYZER_STATS_MAX (MSG_STATS_MAX + 48)
/* The output is written at most this often while records keep coming (flush_output_due). */
#define ANALYZER_OUTPUT_COALESCE_NS (5 * 1000 * 1000ull)

struct analyzer_options {
        int fd;
        int control_fd; /* listening control socket from loaderd, or -1 */
        bool json;
        unsigned max_print;
        enum place_mode placement; /* --placement: auto or fallback */
        bool exchanges;    /* --exchanges: HTTP request/response records */
        bool no_data;      /* --no-data: no data records (with --exchanges) */
        bool show_secrets; /* --show-secrets: no header redaction */
        bool journal_exchanges; /* --journal-exchanges: exchanges also to the journal */
        unsigned preview;  /* --body-preview bytes */
        struct output_redaction redact; /* --redact-header NAME ... */
        int log_level;                 /* --log-level */
        gid_t data_gid; /* --data-gid: members may tail raw data; (gid_t)-1: root only */
};

/* What the command line asks besides the options of a running analyzer. */
/* The planner's file (--plan): loaderd puts it on this descriptor. */
#define PLANNER_FILE_FD 4

struct analyzer_cli {
        const char *analyze; /* --analyze FILE */
        uint32_t plan_file_id; /* --plan=ID: plan the file on fd PLANNER_FILE_FD, then exit */
        const char *plan_name; /* --plan-name=NAME: what loaderd calls it, for the log */
        bool help;
        enum log_target target;
};

/*
 * The analyzer's command line (also the arguments of a reload's L_CONFIG frame, with a
 * dummy argv[0]); 0, or -EINVAL with the reason in err.
 */
int analyzer_parse_options(int argc, char **argv, struct analyzer_options *o,
                           struct analyzer_cli *cli, char *err, size_t err_size);

/* What became of a file with TLS in it (tlssniffctl processes). */
enum file_info_state {
        FILE_INFO_PLANNED = 1, /* plan sent, loaderd has not answered yet */
        FILE_INFO_ATTACHED,    /* probes attached */
        FILE_INFO_FAILED,      /* loaderd could not attach them (reason: its error) */
        FILE_INFO_NOT_PROBED,  /* TLS code found, but no plan could be made (reason: why) */
};

#define ANALYZER_FILE_INFO_MAX 1024 /* the most recent ones are kept */

struct file_info {
        uint32_t file_id, pid;
        uint8_t kind; /* enum msg_file_kind */
        uint8_t state;
        uint16_t probes;
        char path[256];
        char library[128]; /* "libssl.so.3", "Go go1.19.8 (amd64, ABIInternal)" */
        char reason[256];  /* placement summary, or why not probed */
};

struct analyzer {
        struct analyzer_options opt;
        int sock;
        bool hello;
        struct frame_reader in;
        struct output out;
        /* The output's stream when the analyzer runs under loaderd (NULL: stdout itself). */
        FILE *out_stream;
        struct direct_writer out_direct;
        uint64_t out_flushed_ns; /* when the loop last wrote the output out (CLOCK_MONOTONIC) */
        struct assembler asmb;
        struct identity identity;
        struct control control;
        struct tail tail; /* tlssniffctl tail/follow subscribers */
        struct listen_ports listen;
        struct conn_table conns;
        struct msg_stats kernel_stats; /* last counters from loaderd */

        uint64_t frames;
        uint64_t frames_bad;
        uint64_t records_bad;
        uint64_t files_analyzed;
        struct file_info *file_info; /* ring of ANALYZER_FILE_INFO_MAX, allocated on use */
        size_t file_info_n;          /* entries written in all (the ring keeps the last ones) */
        uint64_t plans_with_probes;
        uint64_t output_errors;
        uint64_t journal_errors; /* exchanges the journal did not take */
        uint64_t close_events; /* sockets of captured connections the kernel saw close */
        uint64_t open_events;  /* connections the kernel tied to their socket */
        uint64_t reconfigurations; /* L_CONFIG frames applied */
        uint64_t records_frame_bytes; /* L_RECORDS body bytes handled (A_STATUS) */
        uint64_t frame_now_ns; /* monotonic time, read once per turn of the loop and per
                                  L_RECORDS frame: the "now" of the messages it handles */
        uint64_t records_frame_bytes_prev; /* the same at the previous L_STATS */
};

int analyzer_init(struct analyzer *a, const struct analyzer_options *opt);
void analyzer_done(struct analyzer *a);
int analyzer_run(struct analyzer *a);
/* Every counter, kernel's and loaderd's (as last reported) and the analyzer's. */
unsigned analyzer_collect_stats(const struct analyzer *a, const char **names, uint64_t *values);
/* What was found in file_id (an L_FILE), or NULL when it is not remembered. */
struct file_info *analyzer_file_info(struct analyzer *a, uint32_t file_id);
/* tlssniffctl attach/detach/reload, to loaderd (control.c). */
int analyzer_send_control(struct analyzer *a, const struct msg_control *m);
/* One frame, as if read from the socket (tests, fuzzing). */
int analyzer_handle_frame(struct analyzer *a, const struct frame_header *h, const uint8_t *body);
