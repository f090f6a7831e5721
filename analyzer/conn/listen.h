/*
 * Guessing the role of a connection that existed before tlssniff started (the kernel saw no
 * connect or accept for it): the side whose local port is a listening TCP port is the server.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct listen_ports {
        uint64_t bits[65536 / 64];
        time_t loaded_at;
        bool loaded;
        int fd[2]; /* /proc/net/tcp and tcp6, opened once (the sandbox forbids open later) */
};

/* Opens /proc/net/tcp{,6}; a table that cannot be opened is skipped. */
void listen_ports_init(struct listen_ports *lp);
void listen_ports_done(struct listen_ports *lp);
/* Re-reads the tables at most once a second. */
void listen_ports_refresh(struct listen_ports *lp);
bool listen_ports_has(const struct listen_ports *lp, uint16_t port);
/* Parses one /proc/net/tcp table into lp (exposed for tests). */
void listen_ports_parse(struct listen_ports *lp, const char *text);
