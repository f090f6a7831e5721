/*
 * Live subscriptions over the control socket (tlssniffctl tail, tlssniffctl follow): a client
 * sends "tail ARGS\n" once, is answered with one JSON line echoing its filter, and then gets
 * every record that matches as the main output writes it (out/output.c, JSON lines or text),
 * until it closes, the optional count is reached or the analyzer ends.
 *
 * Never blocks the analyzer and never grows without bound: each subscriber has a queue of at
 * most TAIL_BUFFER_MAX bytes written with nonblocking sends; a record that does not fit is
 * dropped for that subscriber only, counted (dropped_records), and the subscriber is told how
 * many with one line once its queue has room again. A record is formatted once per format
 * however many subscribers take it.
 *
 * ARGS are untrusted: at most TAIL_ARGS_MAX bytes of space-separated key=value tokens, every
 * value checked and every list bounded (docs/tlssniffctl.1, "tail"):
 *   kind=data|exchanges|connections|all   pid=N   comm=NAME   cgroup=ID   status=NNN|Nxx
 *   host=H   path=/PREFIX   conn=ID   format=json|text   count=N
 * List keys (kind, pid, comm, cgroup, status) may be repeated or take comma-separated values.
 */
#pragma once

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "conn/table.h"
#include "out/output.h"
#include "proto/exchange.h"
#include "record.h"

#define TAIL_SUBSCRIBERS_MAX 16
#define TAIL_BUFFER_MAX (1u << 20) /* bytes queued per subscriber; beyond: records dropped */
#define TAIL_REQUEST_MAX 256       /* the whole line, "tail " and the newline included */
#define TAIL_ARGS_MAX (TAIL_REQUEST_MAX - 6) /* the text after "tail ", without the newline */
#define TAIL_PIDS_MAX 16
#define TAIL_COMMS_MAX 8
#define TAIL_CGROUPS_MAX 32 /* what tlssniffctl --unit resolves to at most */
#define TAIL_STATUSES_MAX 8
#define TAIL_HOST_MAX 255
#define TAIL_PATH_MAX 240
#define TAIL_COUNT_MAX UINT32_MAX
#define TAIL_COMM_MAX 15 /* TLSSNIFF_COMM_LEN without its NUL */

enum tail_kind {
        TAIL_KIND_DATA,        /* struct message: output_message */
        TAIL_KIND_EXCHANGES,   /* struct exchange: output_exchange (needs --exchanges) */
        TAIL_KIND_CONNECTIONS, /* connection open and end: output_connection{_open,} */
        _TAIL_KIND_MAX,
};

/* Empty lists and unset fields select everything; set ones must all match. */
struct tail_filter {
        unsigned kinds; /* 1u << TAIL_KIND_* */
        unsigned n_pids, n_comms, n_cgroups, n_statuses;
        uint32_t pids[TAIL_PIDS_MAX];
        char comms[TAIL_COMMS_MAX][TAIL_COMM_MAX + 1];
        uint64_t cgroups[TAIL_CGROUPS_MAX]; /* against conn_entry->cgroup_id, any matches */
        /* 100..999: that status; 1..9: its class (5 is 5xx). Exchanges without a response
         * (status 0) never match. */
        uint16_t statuses[TAIL_STATUSES_MAX];
        char host[TAIL_HOST_MAX + 1]; /* "": any; else the authority, case-insensitively, with
                                         or without its port */
        char path[TAIL_PATH_MAX + 1]; /* "": any; else a prefix of the target, starts with / */
        bool has_conn;
        uint64_t conn_id;
        bool json;      /* JSON lines as output.c writes them; else its text for people */
        uint64_t count; /* 0: no limit; else the subscription ends after this many records */
};

struct tail_subscriber {
        int fd; /* -1: a free slot */
        struct tail_filter f;
        uint8_t *buf; /* queued bytes are buf[start, start + len), len <= TAIL_BUFFER_MAX */
        size_t start, len, cap;
        uint64_t dropped;   /* records dropped since the last "dropped" line it was sent */
        uint64_t left;      /* records still to send when f.count is set */
        bool finishing;     /* count reached: closed once its queue is written */
};

struct tail {
        struct tail_subscriber sub[TAIL_SUBSCRIBERS_MAX];
        unsigned n;                     /* slots in use */
        unsigned wants[_TAIL_KIND_MAX]; /* subscribers taking records of each kind */
        struct output out[2];           /* [0] text, [1] JSON, writing to mem[] */
        FILE *mem[2];                   /* open_memstream, opened on first use */
        char *mem_buf[2];
        size_t mem_size[2];
        int64_t realtime_offset_ns;
        unsigned max_print;
        const struct output_redaction *redact;
        uint64_t dropped_records;   /* records not sent to a subscriber: it read too slowly */
        uint64_t subscribers_total; /* subscriptions accepted */
        uint64_t format_errors;     /* records that could not be formatted (out of memory) */
};

void tail_init(struct tail *t, int64_t realtime_offset_ns, unsigned max_print);
/* Sends what the sockets take now (no waiting), closes every subscriber (they see the end of
 * the stream) and frees everything. Safe on a zeroed struct tail (tail_init never ran). */
void tail_done(struct tail *t);
/* loaderd tells the wall-clock offset in its hello, after tail_init. */
void tail_set_realtime_offset(struct tail *t, int64_t realtime_offset_ns);
/* What the main output does, so that subscribers get its very lines: the headers it redacts
 * (the pointer is kept: the analyzer's options, updated in place on a reload; NULL: the
 * usual four only) and the payload bytes text shows (--max-print, also on a reload). */
void tail_set_redaction(struct tail *t, const struct output_redaction *redact);
void tail_set_max_print(struct tail *t, unsigned max_print);

/*
 * A control client sent "tail ARGS\n" (root or tlssniff group member: already checked).
 * tail_add lets it have every kind; tail_add_access only what its access allows: without
 * data_allowed (root and the data group have it), kind=data is refused with -EACCES, and
 * kind=all and no kind at all mean the other kinds. args
 * is the text after "tail ", with or without the newline. Takes ownership of fd on success
 * (and on failure closes nothing). Returns 0, or -EINVAL (bad request) / -E2BIG (too many
 * subscribers) / -ENOMEM with a message in err: printable ASCII without quotes or backslashes, safe to
 * put in a JSON string as is. exchanges_on: whether the analyzer parses exchanges; asking
 * for exchanges (or host, path, status) when it does not is refused with how to turn them
 * on. On success the first line the client gets is {"ok":true,"tail":{...the filter...}}.
 */
int tail_add(struct tail *t, int fd, const char *args, bool exchanges_on, char *err,
             size_t err_size);
int tail_add_access(struct tail *t, int fd, const char *args, bool exchanges_on,
                    bool data_allowed, char *err, size_t err_size);
/* Cheap: whether any subscriber takes records of this kind. */
bool tail_wants(const struct tail *t, enum tail_kind k);

/* A data message, with the role the analyzer settled on; c: its connection, may be NULL
 * (then a cgroup filter does not match). */
void tail_message(struct tail *t, const struct message *m, uint8_t role, enum role_source rs,
                  const struct conn_entry *c);
void tail_exchange(struct tail *t, const struct conn_entry *c, const struct exchange *x,
                   bool show_secrets);
/* event: "open" (ts_ns: when it was seen, CLOCK_BOOTTIME) or a close reason ("closed",
 * "idle", ...; ts_ns unused, the entry has its times). */
void tail_connection(struct tail *t, const struct conn_entry *c, const char *event,
                     uint64_t ts_ns);

/*
 * poll() integration. tail_pollfds fills at most max entries (one per subscriber: POLLOUT
 * when bytes are queued, POLLIN|POLLRDHUP to see the client go) and returns how many.
 * tail_handle takes those entries after poll: writes queued bytes and drops subscribers that
 * closed, errored or sent anything after their request. Entries are matched by fd: call
 * tail_handle right after poll, before anything that may add a subscriber (control_serve).
 */
int tail_pollfds(const struct tail *t, struct pollfd *p, int max);
void tail_handle(struct tail *t, const struct pollfd *p, int n);
/* Writes what the sockets take now, without waiting: call after a batch of records. */
void tail_flush(struct tail *t);

/* Exposed for tests and fuzzing. */
int tail_filter_parse(const char *args, bool exchanges_on, struct tail_filter *ret, char *err,
                      size_t err_size);
int tail_filter_parse_access(const char *args, bool exchanges_on, bool data_allowed,
                             struct tail_filter *ret, char *err, size_t err_size);
/* The filter as canonical ARGS (parses back to the same filter); -ENOBUFS if it does not fit. */
int tail_filter_format(const struct tail_filter *f, char *buf, size_t size);
/* {"ok":true,"tail":{...}}\n; -ENOBUFS if it does not fit (TAIL_ECHO_MAX always does). */
int tail_filter_echo(const struct tail_filter *f, char *buf, size_t size);
#define TAIL_ECHO_MAX 4096
