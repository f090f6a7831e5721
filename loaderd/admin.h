/*
 * loaderd's admin socket: the changes tlssniffctl asks for (attach, detach, reload), served by
 * loaderd itself and authorised from the kernel's credentials of the peer (SO_PEERCRED: root
 * only; the socket is mode 0600 root:root too), never on the analyzer's word. One request line
 * per connection, the same grammar as the control socket's, a JSON answer line. Bounded: at
 * most ADMIN_CLIENTS_MAX connections at once, each closed ADMIN_DEADLINE_MS after it was
 * accepted; nothing here blocks. The transport knows nothing of the daemon: it calls change().
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define ADMIN_CLIENTS_MAX 4
#define ADMIN_REQUEST_MAX 512
#define ADMIN_DEADLINE_MS 2000

enum admin_verb {
        ADMIN_ATTACH = 1,
        ADMIN_DETACH,
        ADMIN_RELOAD,
};

/* Does what verb asks (arg: a pid or unit name for attach/detach, "" for reload); 0 or -errno,
 * with what was done, or why not, in msg either way. */
typedef int (*admin_change_fn)(void *userdata, enum admin_verb verb, const char *arg, char *msg,
                               size_t msg_size);

struct admin_client {
        int fd;
        uint64_t deadline_ns;
        size_t n;
        char buf[ADMIN_REQUEST_MAX];
};

struct admin {
        int listen_fd;
        int epoll_fd;
        uint32_t epoll_tag; /* epoll data of the listening socket and every client */
        struct admin_client clients[ADMIN_CLIENTS_MAX];
        unsigned n_clients;
        admin_change_fn change;
        void *userdata;
        /* Counters: requests answered, refused (not root, malformed, busy), timed out. */
        uint64_t requests, refused, timeouts;
};

/* Creates the socket at path (mode 0600, root's; a file there is replaced) and registers it
 * with epoll_fd under epoll_tag. 0 or -errno. */
int admin_open(struct admin *a, const char *path, int epoll_fd, uint32_t epoll_tag,
               admin_change_fn change, void *userdata);
/* Closes the socket and its clients and removes path (when it was opened). */
void admin_close(struct admin *a, const char *path);
/* After epoll reported epoll_tag: accepts what waits, reads what came, answers whole
 * requests. Never blocks. */
void admin_serve(struct admin *a);
/* Once a second or so: closes the clients past their deadline (counted in timeouts). */
void admin_tick(struct admin *a);

/* A request line (n bytes, its newline last): "attach ARG", "detach ARG" or "reload", ARG
 * printable ASCII. 0 with the verb and its argument; -EINVAL: not a request line,
 * -EOPNOTSUPP: another verb, -EDESTADDRREQ: attach or detach without an argument, -E2BIG:
 * reload with one. */
int admin_parse(const char *req, size_t n, enum admin_verb *ret_verb, char *ret_arg,
                size_t arg_size);
/* The admin socket that belongs to the control socket at control (control + ".admin"). */
int admin_path(const char *control, char *ret, size_t size);
