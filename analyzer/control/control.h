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

struct analyzer;

struct control {
        int listen_fd;
        uint64_t requests;
        uint64_t refused;
        uint64_t started_ns; /* CLOCK_MONOTONIC */
};

enum control_access { CONTROL_NONE, CONTROL_READ, CONTROL_ADMIN };

void control_init(struct control *c, int listen_fd);
void control_done(struct control *c);
/* Accepts and answers the pending connections. */
void control_serve(struct control *c, struct analyzer *a);
/* The access a peer has: uid 0 admin; group gid (primary or supplementary) read. */
enum control_access control_access_of(uid_t uid, gid_t gid, const gid_t *groups, int n_groups,
                                      gid_t group);
/*
 * Answers one request line into out (a JSON line). Exposed for tests and fuzzing; returns 0
 * when the request was served, -EACCES or -EINVAL when refused.
 */
int control_answer(struct analyzer *a, struct control *c, enum control_access access,
                   const char *request, size_t n, char *out, size_t out_size);
