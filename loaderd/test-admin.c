/*
 * Unit test: loaderd's admin socket (admin.c) — the request grammar, and on a real socket: a
 * root client's change reaches change() and gets its answer, a non-root peer is refused from
 * its credentials, a client that sends no whole line is dropped at its deadline, the number of
 * clients and the length of a request are bounded, and each refusal is counted.
 */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "admin.h"

static void test_parse(void)
{
        enum admin_verb v = 0;
        char arg[64];

        assert(admin_parse("attach 42\n", 10, &v, arg, sizeof(arg)) == 0);
        assert(v == ADMIN_ATTACH && strcmp(arg, "42") == 0);
        assert(admin_parse("detach nginx.service\n", 21, &v, arg, sizeof(arg)) == 0);
        assert(v == ADMIN_DETACH && strcmp(arg, "nginx.service") == 0);
        assert(admin_parse("reload\n", 7, &v, arg, sizeof(arg)) == 0);
        assert(v == ADMIN_RELOAD && arg[0] == '\0');
        assert(admin_parse("reload now\n", 11, &v, arg, sizeof(arg)) == -E2BIG);
        assert(admin_parse("attach\n", 7, &v, arg, sizeof(arg)) == -EDESTADDRREQ);
        assert(admin_parse("status\n", 7, &v, arg, sizeof(arg)) == -EOPNOTSUPP);
        assert(admin_parse("attachx 1\n", 10, &v, arg, sizeof(arg)) == -EOPNOTSUPP);
        /* Not request lines: no newline, bytes after it, control bytes, two spaces, upper
         * case, empty, an argument longer than the buffer. */
        assert(admin_parse("reload", 6, &v, arg, sizeof(arg)) == -EINVAL);
        assert(admin_parse("reload\nx", 8, &v, arg, sizeof(arg)) == -EINVAL);
        assert(admin_parse("attach 4\x01\n", 10, &v, arg, sizeof(arg)) == -EINVAL);
        assert(admin_parse("attach 4\n2\n", 11, &v, arg, sizeof(arg)) == -EINVAL);
        assert(admin_parse("attach \n", 8, &v, arg, sizeof(arg)) == -EINVAL);
        assert(admin_parse("RELOAD\n", 7, &v, arg, sizeof(arg)) == -EINVAL);
        assert(admin_parse("", 0, &v, arg, sizeof(arg)) == -EINVAL);
        assert(admin_parse("attach 123456789\n", 17, &v, arg, 8) == -EINVAL);
}

struct seen {
        enum admin_verb verb;
        char arg[64];
        unsigned calls;
};

static int change(void *userdata, enum admin_verb verb, const char *arg, char *msg,
                  size_t msg_size)
{
        struct seen *s = userdata;

        s->verb = verb;
        snprintf(s->arg, sizeof(s->arg), "%s", arg);
        s->calls++;
        snprintf(msg, msg_size, "did \"%s\"", arg);
        return strcmp(arg, "bad") == 0 ? -EINVAL : 0;
}

static int connect_to(const char *path)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert(fd >= 0);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        assert(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
        return fd;
}

/* A few turns of the loop: what waits is accepted and read. */
static void serve_a_little(struct admin *a, int epfd)
{
        for (int i = 0; i < 5; i++) {
                struct epoll_event ev;

                (void)epoll_wait(epfd, &ev, 1, 10);
                admin_serve(a);
        }
}

/* Serves until fd has an answer line (or 2 s went by); returns it. */
static const char *answer_of(struct admin *a, int epfd, int fd)
{
        static char buf[2048];
        size_t n = 0;

        for (int i = 0; i < 200; i++) {
                struct epoll_event ev;
                ssize_t k;

                (void)epoll_wait(epfd, &ev, 1, 10);
                admin_serve(a);
                k = recv(fd, buf + n, sizeof(buf) - 1 - n, MSG_DONTWAIT);
                if (k > 0)
                        n += (size_t)k;
                buf[n] = '\0';
                if (memchr(buf, '\n', n))
                        return buf;
        }
        return buf;
}

static void test_socket(void)
{
        char dir[] = "/tmp/tlssniff-test-admin-XXXXXX", path[128];
        struct admin a;
        struct seen s = {};
        struct stat st;
        int epfd, fd, busy[ADMIN_CLIENTS_MAX + 1], status;
        char big[ADMIN_REQUEST_MAX + 16];
        pid_t pid;

        if (geteuid() != 0) {
                printf("admin: not root, the socket part needs to give the socket to root\n");
                return;
        }
        assert(mkdtemp(dir) && chmod(dir, 0755) == 0);
        snprintf(path, sizeof(path), "%s/control.admin", dir);
        epfd = epoll_create1(EPOLL_CLOEXEC);
        assert(epfd >= 0);
        assert(admin_open(&a, path, epfd, 7, change, &s) == 0);
        assert(stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0600 &&
               st.st_uid == 0 && st.st_gid == 0);

        /* Root: the change is made and answered, JSON-escaped. */
        fd = connect_to(path);
        assert(write(fd, "attach 42\n", 10) == 10);
        assert(strcmp(answer_of(&a, epfd, fd), "{\"ok\":true,\"result\":\"did \\\"42\\\"\"}\n") ==
               0);
        assert(s.calls == 1 && s.verb == ADMIN_ATTACH && strcmp(s.arg, "42") == 0);
        close(fd);
        /* A failed change says so; a request in two pieces is one request. */
        fd = connect_to(path);
        assert(write(fd, "detach b", 8) == 8);
        serve_a_little(&a, epfd);
        assert(write(fd, "ad\n", 3) == 3);
        assert(strncmp(answer_of(&a, epfd, fd), "{\"ok\":false,\"error\":\"did", 24) == 0);
        assert(s.calls == 2 && s.verb == ADMIN_DETACH);
        close(fd);
        /* Malformed and unknown requests never reach change(). */
        fd = connect_to(path);
        assert(write(fd, "status\n", 7) == 7);
        assert(strstr(answer_of(&a, epfd, fd), "unknown request"));
        close(fd);
        memset(big, 'a', sizeof(big));
        fd = connect_to(path);
        assert(write(fd, big, sizeof(big)) == (ssize_t)sizeof(big));
        assert(strstr(answer_of(&a, epfd, fd), "request too long"));
        close(fd);
        assert(s.calls == 2 && a.requests == 2 && a.refused == 2);

        /* A non-root peer that reached the socket (its mode changed) is refused by its
         * credentials; change() is not called. */
        assert(chmod(path, 0666) == 0);
        pid = fork();
        assert(pid >= 0);
        if (pid == 0) {
                char buf[256] = "";
                ssize_t k;

                if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
                        _exit(3);
                /* The refusal may come, and the socket close, before the request is sent. */
                signal(SIGPIPE, SIG_IGN);
                fd = connect_to(path);
                (void)!write(fd, "reload\n", 7);
                k = read(fd, buf, sizeof(buf) - 1);
                _exit(k > 0 && strstr(buf, "only root may change") ? 0 : 5);
        }
        for (int i = 0; i < 200 && waitpid(pid, &status, WNOHANG) == 0; i++) {
                struct epoll_event ev;

                (void)epoll_wait(epfd, &ev, 1, 10);
                admin_serve(&a);
        }
        assert(waitpid(pid, &status, 0) == pid || errno == ECHILD);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fprintf(stderr, "non-root client: wait status 0x%x\n", status);
        assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        assert(s.calls == 2 && a.refused == 3);
        assert(chmod(path, 0600) == 0);

        /* Bounds: ADMIN_CLIENTS_MAX silent clients are kept, one more is refused at once;
         * the silent ones are dropped at their deadline and counted. */
        for (int i = 0; i <= ADMIN_CLIENTS_MAX; i++)
                busy[i] = connect_to(path);
        serve_a_little(&a, epfd);
        assert(a.n_clients == ADMIN_CLIENTS_MAX && a.refused == 4);
        assert(strstr(answer_of(&a, epfd, busy[ADMIN_CLIENTS_MAX]), "busy"));
        admin_tick(&a);
        assert(a.n_clients == ADMIN_CLIENTS_MAX && a.timeouts == 0);
        for (unsigned i = 0; i < a.n_clients; i++)
                a.clients[i].deadline_ns = 0;
        admin_tick(&a);
        assert(a.n_clients == 0 && a.timeouts == ADMIN_CLIENTS_MAX);
        for (int i = 0; i < ADMIN_CLIENTS_MAX; i++)
                assert(strstr(answer_of(&a, epfd, busy[i]), "no whole request line in time"));
        for (int i = 0; i <= ADMIN_CLIENTS_MAX; i++)
                close(busy[i]);

        admin_close(&a, path);
        assert(access(path, F_OK) < 0);
        close(epfd);
        assert(rmdir(dir) == 0);
}

int main(void)
{
        test_parse();
        test_socket();
        printf("admin: ok\n");
        return 0;
}
