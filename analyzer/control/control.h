/*
 * The control socket's server side, in the analyzer. loaderd creates the listening socket in
 * the runtime directory (0660 root:tlssniff) and hands it over; each connection carries one
 * request line and gets one JSON line back. SO_PEERCRED decides: root may do everything,
 * members of the tlssniff group may read (status, stats), nobody else gets an answer.
 * Requests are untrusted input: bounded, parsed strictly, refusals counted.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define CONTROL_REQUEST_MAX 256
#define CONTROL_PENDING_MAX 8
#define CONTROL_PENDING_NS (15ull * 1000 * 1000 * 1000) /* loaderd answers within this */
#define CONTROL_LINE_NS (1000ull * 1000 * 1000) /* a client's whole request line, at most */
#define CONTROL_READING_MAX 16 /* clients whose line is still coming; more are refused */

struct analyzer;

/* A change (attach, detach, reload) sent to loaderd, its client waiting for the answer. */
struct control_pending {
        int fd;
        uint32_t id;
        uint64_t deadline_ns;
};

/* A client whose request line has not all come yet: read as it comes, never waited for. */
struct control_reading {
        int fd;
        int access; /* enum control_access, from its credentials at accept */
        size_t n;
        uint64_t deadline_ns;
        char req[CONTROL_REQUEST_MAX];
};

/* control_answer's results besides 0 (answered) and -errno (refused, answered). */
enum {
        CONTROL_PENDING = 1, /* sent to loaderd as c->last_id; the answer comes later */
        CONTROL_TAIL = 2,    /* a subscription: the fd goes to tail_add() with the arguments */
};

struct control {
        int listen_fd;
        struct control_pending pending[CONTROL_PENDING_MAX];
        unsigned n_pending;
        struct control_reading reading[CONTROL_READING_MAX];
        unsigned n_reading;
        uint32_t next_id, last_id;
        uint64_t timeouts; /* changes loaderd did not answer in time */
        uint64_t slow_clients; /* no whole request line within CONTROL_LINE_NS */
        uint64_t requests;
        uint64_t refused;
        uint64_t started_ns; /* CLOCK_MONOTONIC */
};

/* NONE: nothing; READ: group tlssniff, everything but raw data; DATA: also raw data (the data
 * group, e.g. tlssniff-data); ADMIN: root. */
enum control_access { CONTROL_NONE, CONTROL_READ, CONTROL_DATA, CONTROL_ADMIN };

void control_init(struct control *c, int listen_fd);
void control_done(struct control *c);
/* Accepts and answers the pending connections. */
void control_serve(struct control *c, struct analyzer *a);
/* loaderd's answer to change id: written to its client, which is then closed. */
void control_result(struct control *c, uint32_t id, bool ok, const char *message);
struct msg_processes;
/* loaderd's list of processes for request m->id: the answer, written to its client. */
void control_processes(struct control *c, struct analyzer *a, const struct msg_processes *m);
/* Clients whose change loaderd did not answer in time, or whose request line did not come
 * within CONTROL_LINE_NS, get an error. */
void control_expire(struct control *c, uint64_t now_ns);
struct pollfd;
/* poll() integration for clients whose line is still coming: POLLIN for each (at most max
 * entries; returns how many); control_handle reads what came after poll, answers whole lines.
 * control_next_deadline: ms until the first line deadline, -1 if none. */
int control_pollfds(const struct control *c, struct pollfd *p, int max);
void control_handle(struct control *c, struct analyzer *a, const struct pollfd *p, int n);
int control_next_deadline(const struct control *c, uint64_t now_ns);
/* The access a peer has: uid 0 admin; group gid (primary or supplementary) read. */
/* data_group (gid_t)-1: none. */
enum control_access control_access_of(uid_t uid, gid_t gid, const gid_t *groups, int n_groups,
                                      gid_t group, gid_t data_group);
/*
 * Answers one request line ("VERB[ ARGUMENTS]\n") into out (a JSON line). Exposed for tests
 * and fuzzing; returns 0 when the request was served, -EACCES or -EINVAL when refused,
 * CONTROL_PENDING when it went to loaderd, CONTROL_TAIL for a subscription.
 */
int control_answer(struct analyzer *a, struct control *c, enum control_access access,
                   const char *request, size_t n, char *out, size_t out_size);
