/* loaderd's admin socket; see admin.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "admin.h"
#include "log.h"
#include "macro.h"

int admin_path(const char *control, char *ret, size_t size)
{
        int n = snprintf(ret, size, "%s.admin", control);

        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int admin_parse(const char *req, size_t n, enum admin_verb *ret_verb, char *ret_arg,
                size_t arg_size)
{
        static const struct {
                const char *word;
                enum admin_verb verb;
        } verbs[] = { { "attach", ADMIN_ATTACH }, { "detach", ADMIN_DETACH },
                      { "reload", ADMIN_RELOAD } };
        size_t k = 0, m = 0, w;

        if (n == 0 || req[n - 1] != '\n' || arg_size == 0)
                return -EINVAL;
        while (k < n - 1 && req[k] >= 'a' && req[k] <= 'z')
                k++;
        w = k;
        if (k < n - 1) {
                if (req[k] != ' ')
                        return -EINVAL;
                for (k++; k < n - 1; k++) {
                        if (req[k] < 0x20 || req[k] > 0x7e || m + 1 >= arg_size)
                                return -EINVAL;
                        ret_arg[m++] = req[k];
                }
                if (m == 0)
                        return -EINVAL;
        }
        ret_arg[m] = '\0';
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                if (strlen(verbs[i].word) != w || memcmp(req, verbs[i].word, w) != 0)
                        continue;
                if (verbs[i].verb == ADMIN_RELOAD && m > 0)
                        return -E2BIG;
                if (verbs[i].verb != ADMIN_RELOAD && m == 0)
                        return -EDESTADDRREQ;
                *ret_verb = verbs[i].verb;
                return 0;
        }
        return -EOPNOTSUPP;
}

int admin_open(struct admin *a, const char *path, int epoll_fd, uint32_t epoll_tag,
               admin_change_fn change, void *userdata)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = epoll_tag };
        _cleanup_close_ int fd = -1;

        *a = (struct admin){ .listen_fd = -1, .epoll_fd = epoll_fd, .epoll_tag = epoll_tag,
                             .change = change, .userdata = userdata };
        for (unsigned i = 0; i < ADMIN_CLIENTS_MAX; i++)
                a->clients[i].fd = -1;
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        (void)unlink(path);
        /* Nobody but root may connect; the peer's credentials are checked all the same. The
         * socket is made 0600 root's as it is bound (umask; loaderd runs as root), not by
         * changing a name afterwards that could by then lead elsewhere. */
        {
                mode_t old = umask(0177);
                int k = bind(fd, (struct sockaddr *)&sa, sizeof(sa));

                umask(old);
                if (k < 0)
                        return -errno;
        }
        if (listen(fd, 16) < 0 || epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
                return -errno;
        a->listen_fd = TAKE_FD(fd);
        return 0;
}

static void drop_client(struct admin *a, unsigned i)
{
        (void)epoll_ctl(a->epoll_fd, EPOLL_CTL_DEL, a->clients[i].fd, NULL);
        close(a->clients[i].fd);
        a->clients[i] = a->clients[--a->n_clients];
        a->clients[a->n_clients].fd = -1;
}

void admin_close(struct admin *a, const char *path)
{
        while (a->n_clients > 0)
                drop_client(a, 0);
        if (a->listen_fd >= 0) {
                (void)epoll_ctl(a->epoll_fd, EPOLL_CTL_DEL, a->listen_fd, NULL);
                a->listen_fd = safe_close(a->listen_fd);
                if (path)
                        (void)unlink(path);
        }
}

/* One answer line, sent without waiting (the peer gets what fits; a root client reading its
 * answer always gets it: it is short). */
static void answer(int fd, bool ok, const char *text)
{
        char esc[1024], line[1100];

        json_text(esc, sizeof(esc), text);
        snprintf(line, sizeof(line), "{\"ok\":%s,\"%s\":\"%s\"}\n", ok ? "true" : "false",
                 ok ? "result" : "error", esc);
        (void)send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
}

static const char *parse_error(int r)
{
        switch (r) {
        case -EOPNOTSUPP:
                return "unknown request: the admin socket takes attach, detach and reload";
        case -EDESTADDRREQ:
                return "a process id or a unit name is needed";
        case -E2BIG:
                return "reload takes no argument";
        default:
                return "malformed request";
        }
}

/* Answers client i's request once its line is whole; true when the client is done. */
static bool handle_request(struct admin *a, unsigned i)
{
        struct admin_client *c = &a->clients[i];
        char arg[ADMIN_REQUEST_MAX], msg[1024] = "";
        enum admin_verb verb = 0;
        char *nl = memchr(c->buf, '\n', c->n);
        int r;

        if (!nl) {
                if (c->n < sizeof(c->buf))
                        return false;
                a->refused++;
                answer(c->fd, false, "request too long");
                return true;
        }
        r = admin_parse(c->buf, (size_t)(nl + 1 - c->buf), &verb, arg, sizeof(arg));
        if (r < 0) {
                a->refused++;
                answer(c->fd, false, parse_error(r));
                return true;
        }
        a->requests++;
        r = a->change(a->userdata, verb, arg, msg, sizeof(msg));
        answer(c->fd, r >= 0, msg);
        return true;
}

static void accept_clients(struct admin *a)
{
        for (;;) {
                struct epoll_event ev = { .events = EPOLLIN, .data.u32 = a->epoll_tag };
                struct ucred cred;
                socklen_t sl = sizeof(cred);
                int fd = accept4(a->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

                if (fd < 0)
                        return;
                /* The kernel's word on who connected: root, or nothing is done. */
                if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &sl) < 0 || cred.uid != 0) {
                        a->refused++;
                        answer(fd, false, "permission denied: only root may change anything");
                        close(fd);
                        continue;
                }
                if (a->n_clients >= ADMIN_CLIENTS_MAX) {
                        a->refused++;
                        answer(fd, false, "busy: try again");
                        close(fd);
                        continue;
                }
                if (epoll_ctl(a->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                        close(fd);
                        continue;
                }
                a->clients[a->n_clients++] = (struct admin_client){
                        .fd = fd, .deadline_ns = now_monotonic_ns() + ADMIN_DEADLINE_MS * 1000000ull
                };
        }
}

void admin_serve(struct admin *a)
{
        if (a->listen_fd < 0)
                return;
        accept_clients(a);
        for (unsigned i = 0; i < a->n_clients;) {
                struct admin_client *c = &a->clients[i];
                ssize_t k = c->n < sizeof(c->buf)
                                    ? recv(c->fd, c->buf + c->n, sizeof(c->buf) - c->n,
                                           MSG_DONTWAIT)
                                    : 0;
                bool done;

                if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
                        i++;
                        continue;
                }
                if (k > 0)
                        c->n += (size_t)k;
                done = handle_request(a, i);
                if (!done && k == 0) {
                        a->refused++; /* went before it finished its line */
                        done = true;
                }
                if (done)
                        drop_client(a, i);
                else
                        i++;
        }
}

void admin_tick(struct admin *a)
{
        uint64_t now = now_monotonic_ns();

        for (unsigned i = 0; i < a->n_clients;) {
                if (now < a->clients[i].deadline_ns) {
                        i++;
                        continue;
                }
                a->timeouts++;
                answer(a->clients[i].fd, false, "no whole request line in time");
                drop_client(a, i);
        }
}
