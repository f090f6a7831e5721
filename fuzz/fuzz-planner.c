/*
 * libFuzzer target: loaderd's side of a planner's socket (loaderd/planner.c), the channel a
 * hostile binary's planner controls. The input is what the planner of file 1 (this executable)
 * writes to its socket; loaderd reads it as it comes (planner_on_event) until it is done with
 * the planner. Whatever the bytes, loaderd must end with exactly one verdict for the file
 * (a plan taken, or the planner refused or failed, counted), take nothing for another file,
 * and never attach a probe outside the file's executable segments. No BPF object is loaded:
 * a plan that passes validation fails to attach with "no BPF object loaded".
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "loaderd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static int exe_fd = -1;
        struct loaderd l = { .sock = -1, .epoll_fd = -1, .cache = { .fd = -1 } };
        struct traced_file tf = { .id = 1, .state = FILE_SENT, .path = (char *)"self",
                                  .planner_sock = -1 };
        int sv[2];
        unsigned verdicts;

        if (exe_fd < 0) {
                log_setup("fuzz-planner", LOG_TARGET_STDERR, LOG_EMERG);
                exe_fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
                CHECK(exe_fd >= 0);
        }
        if (size > 100000)
                return 0; /* the socket's buffer holds it all */
        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        CHECK(fcntl(sv[0], F_SETFL, O_NONBLOCK) == 0);
        tf.fd = fcntl(exe_fd, F_DUPFD_CLOEXEC, 3);
        CHECK(tf.fd >= 0);
        tf.planner_sock = sv[0];
        tf.planner_in = calloc(1, sizeof(*tf.planner_in));
        CHECK(tf.planner_in);
        frame_reader_init(tf.planner_in, false);
        CHECK(plancache_open(&l.cache, NULL) == 0);
        l.files = &tf;
        l.n_files = 1;
        for (size_t off = 0; off < size;) {
                ssize_t k = write(sv[1], data + off, size - off);

                CHECK(k > 0);
                off += (size_t)k;
        }
        close(sv[1]);
        /* As the event loop would call it: until loaderd is done with the planner. */
        for (int i = 0; i < 64 && tf.planner_in; i++)
                planner_on_event(&l, &tf);
        CHECK(!tf.planner_in && tf.planner_sock < 0);
        CHECK(tf.state == FILE_FAILED || tf.state == FILE_NO_TLS);
        CHECK(tf.set.n_links == 0 && !tf.plan);
        /* One verdict: refused (a frame or the plan), failed, no TLS, or (a plan taken) the
         * attach failed. */
        verdicts = (l.planners_refused > 0) + (l.planners_failed > 0) + (tf.state == FILE_NO_TLS);
        CHECK(l.planners_refused <= 1 && l.planners_failed <= 1 && verdicts <= 1);
        if (verdicts == 0)
                CHECK(tf.state == FILE_FAILED && l.files_failed == 1);
        CHECK(l.cache.n == 0); /* this executable is not root's alone to the cache: never kept */
        safe_close(tf.fd);
        free(tf.set.links);
        plancache_done(&l.cache);
        frame_writer_done(&l.out);
        return 0;
}
