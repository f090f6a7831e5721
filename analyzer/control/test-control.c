/* Unit test: control requests are parsed strictly and answered by access level. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "analyzer.h"

/* Reads what the server wrote to client fd (it has closed or answered). */
static void answer_of(int fd, char *buf, size_t size)
{
        ssize_t k = recv(fd, buf, size - 1, MSG_DONTWAIT);

        buf[k > 0 ? k : 0] = '\0';
}

/*
 * Clients whose line has not come hold a slot, not the analyzer: with every slot taken by
 * silent clients, one more is refused at once, a line that arrives is answered as it comes,
 * and the silent ones are answered and counted once their second is up (the expiry is given
 * its time, nothing here waits on a clock).
 */
static void test_reading(void)
{
        struct analyzer_options o = { .fd = -1, .control_fd = -1 };
        char dir[] = "/tmp/test-control-XXXXXX", buf[512];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int lfd, cl[CONTROL_READING_MAX + 1];
        struct pollfd p[CONTROL_READING_MAX];
        struct analyzer a;
        int n;

        assert(mkdtemp(dir));
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/s", dir);
        lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
               listen(lfd, 64) == 0);
        o.control_fd = lfd;
        analyzer_init(&a, &o);
        for (int i = 0; i <= CONTROL_READING_MAX; i++) {
                cl[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                assert(connect(cl[i], (struct sockaddr *)&sa, sizeof(sa)) == 0);
        }
        control_serve(&a.control, &a); /* 16 at a time */
        control_serve(&a.control, &a);
        assert(a.control.n_reading == CONTROL_READING_MAX);
        answer_of(cl[CONTROL_READING_MAX], buf, sizeof(buf));
        assert(strstr(buf, "too many clients sending"));
        /* One of them sends its line in two pieces: answered once it is whole. */
        assert(write(cl[3], "sta", 3) == 3);
        n = control_pollfds(&a.control, p, CONTROL_READING_MAX);
        assert(n == CONTROL_READING_MAX && poll(p, (nfds_t)n, 0) == 1);
        control_handle(&a.control, &a, p, n);
        assert(a.control.n_reading == CONTROL_READING_MAX);
        assert(write(cl[3], "ts\n", 3) == 3);
        n = control_pollfds(&a.control, p, CONTROL_READING_MAX);
        assert(poll(p, (nfds_t)n, 0) == 1);
        control_handle(&a.control, &a, p, n);
        assert(a.control.n_reading == CONTROL_READING_MAX - 1);
        answer_of(cl[3], buf, sizeof(buf));
        assert(strncmp(buf, "{\"ok\":true,\"stats\":", 19) == 0);
        /* The silent ones: nothing before their deadline, then each answered and counted. */
        assert(control_next_deadline(&a.control, now_monotonic_ns()) >= 0);
        control_expire(&a.control, now_monotonic_ns());
        assert(a.control.n_reading == CONTROL_READING_MAX - 1 && a.control.slow_clients == 0);
        control_expire(&a.control, now_monotonic_ns() + 2 * CONTROL_LINE_NS);
        assert(a.control.n_reading == 0 &&
               a.control.slow_clients == CONTROL_READING_MAX - 1);
        assert(control_next_deadline(&a.control, now_monotonic_ns()) == -1);
        answer_of(cl[0], buf, sizeof(buf));
        assert(strstr(buf, "no whole request line"));
        for (int i = 0; i <= CONTROL_READING_MAX; i++)
                close(cl[i]);
        analyzer_done(&a);
        unlink(sa.sun_path);
        rmdir(dir);
}

int main(void)
{
        struct analyzer_options o = { .fd = -1, .control_fd = -1 };
        struct analyzer a;
        char out[16384];
        gid_t groups[] = { 5, 77 };

        analyzer_init(&a, &o);
        assert(control_access_of(0, 0, NULL, 0, 77, 88) == CONTROL_ADMIN);
        assert(control_access_of(1000, 77, NULL, 0, 77, 88) == CONTROL_READ);
        assert(control_access_of(1000, 100, groups, 2, 77, 88) == CONTROL_READ);
        assert(control_access_of(1000, 100, groups, 1, 77, 88) == CONTROL_NONE);
        /* The data group, as primary or supplementary group; none configured: nobody. */
        assert(control_access_of(1000, 88, groups, 2, 77, 88) == CONTROL_DATA);
        assert(control_access_of(1000, 100, (gid_t[]){ 77, 88 }, 2, 77, 88) == CONTROL_DATA);
        assert(control_access_of(1000, 100, groups, 2, 77, (gid_t)-1) == CONTROL_READ);
        assert(control_access_of(1000, (gid_t)-1, NULL, 0, 77, (gid_t)-1) == CONTROL_NONE);

        assert(control_answer(&a, &a.control, CONTROL_READ, "stats\n", 6, out, sizeof(out)) == 0);
        assert(strncmp(out, "{\"ok\":true,\"stats\":{", 20) == 0);
        assert(strstr(out, "\"analyzer_records_bad\":0"));
        assert(control_answer(&a, &a.control, CONTROL_READ, "status\n", 7, out, sizeof(out)) ==
               0);
        assert(strstr(out, "\"uptime_s\":"));
        /* Outsiders get nothing; changes are not taken here, from anyone: they go to loaderd's
         * admin socket, whose peer loaderd checks itself. */
        assert(control_answer(&a, &a.control, CONTROL_NONE, "stats\n", 6, out, sizeof(out)) ==
               -EACCES);
        assert(control_answer(&a, &a.control, CONTROL_READ, "attach\n", 7, out, sizeof(out)) ==
               -EACCES);
        assert(strstr(out, "admin socket"));
        assert(control_answer(&a, &a.control, CONTROL_ADMIN, "attach\n", 7, out, sizeof(out)) ==
               -EACCES);
        assert(strstr(out, "admin socket"));
        /* Malformed: no newline, trailing bytes, upper case, empty, binary, unknown. */
        assert(control_answer(&a, &a.control, CONTROL_ADMIN, "stats", 5, out, sizeof(out)) ==
               -EINVAL);
        assert(control_answer(&a, &a.control, CONTROL_ADMIN, "stats\nx", 7, out, sizeof(out)) ==
               -EINVAL);
        assert(control_answer(&a, &a.control, CONTROL_ADMIN, "STATS\n", 6, out, sizeof(out)) ==
               -EINVAL);
        assert(control_answer(&a, &a.control, CONTROL_ADMIN, "", 0, out, sizeof(out)) ==
               -EINVAL);
        assert(control_answer(&a, &a.control, CONTROL_ADMIN, "st\0ts\n", 6, out, sizeof(out)) ==
               -EINVAL);
        assert(control_answer(&a, &a.control, CONTROL_ADMIN, "frobnicate\n", 11, out,
                              sizeof(out)) == -EINVAL);
        assert(strstr(out, "unknown request"));
        assert(a.control.requests == 11 && a.control.refused == 9);
        /* Arguments: only after one space, printable; changes are never passed on. */
        assert(control_answer(&a, &a.control, CONTROL_READ, "attach 42\n", 10, out,
                              sizeof(out)) == -EACCES);
        assert(control_answer(&a, &a.control, CONTROL_ADMIN, "reload\n", 7, out,
                              sizeof(out)) == -EACCES);
        assert(strstr(out, "reload goes to loaderd's admin socket"));
        assert(control_answer(&a, &a.control, CONTROL_ADMIN, "stats x\n", 8, out, sizeof(out)) ==
               -EINVAL);
        assert(strstr(out, "stats takes no argument"));
        assert(control_answer(&a, &a.control, CONTROL_ADMIN, "attach  42\n", 11, out,
                              sizeof(out)) != CONTROL_PENDING);
        assert(control_answer(&a, &a.control, CONTROL_ADMIN, "attach 4\x01\n", 10, out,
                              sizeof(out)) == -EINVAL);
        assert(control_answer(&a, &a.control, CONTROL_ADMIN, "attach 42\n", 10, out,
                              sizeof(out)) == -EACCES);
        assert(a.control.n_pending == 0);
        /* processes: a pid or nothing; without loaderd the files alone, with an error. */
        assert(control_answer(&a, &a.control, CONTROL_READ, "processes x1\n", 13, out,
                              sizeof(out)) == -EINVAL);
        assert(control_answer(&a, &a.control, CONTROL_READ, "processes\n", 10, out,
                              sizeof(out)) == 0);
        assert(strstr(out, "\"error\":\"loaderd cannot be asked\"") &&
               strstr(out, "\"files\":{\"files_analyzed\":"));
        /* tail goes to the subscription code with its arguments. */
        assert(control_answer(&a, &a.control, CONTROL_READ, "tail kind=data\n", 15, out,
                              sizeof(out)) == CONTROL_TAIL);
        assert(control_answer(&a, &a.control, CONTROL_NONE, "tail kind=data\n", 15, out,
                              sizeof(out)) == -EACCES);
        analyzer_done(&a);
        test_reading();
        printf("control: ok\n");
        return 0;
}
