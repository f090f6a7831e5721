/*
 * Unit test: the analyzer's seccomp filter (sandbox.c) holds a compromised analyzer to what it
 * needs. In a child, with a file as standard output opened as loaderd opens it for the
 * analyzer (write-only, appending): what is in the output cannot be rewritten or truncated,
 * no second descriptor of it can be made, only AF_UNIX sockets, no ioctl but TCGETS, no
 * files opened; and the calls the analyzer makes still work. The parent then checks the
 * file's bytes.
 */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox.h"

/* Fails with errno err; the child's exit status says which check did not hold. */
#define REFUSED(call, err)                                                                         \
        do {                                                                                       \
                errno = 0;                                                                         \
                if ((call) != -1 || errno != (err)) {                                              \
                        fprintf(stderr, "line %d: %s: errno %d, expected %d\n", __LINE__, #call,   \
                                errno, (err));                                                     \
                        _exit(10);                                                                 \
                }                                                                                  \
        } while (0)
#define WORKS(call)                                                                                \
        do {                                                                                       \
                if ((call) < 0) {                                                                  \
                        fprintf(stderr, "line %d: %s: %m\n", __LINE__, #call);                     \
                        _exit(11);                                                                 \
                }                                                                                  \
        } while (0)

static void child(const char *path)
{
        int out, other, sv[2], fd, r, fl;
        char c = 'x';

        out = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        assert(out >= 0 && dup2(out, STDOUT_FILENO) == STDOUT_FILENO);
        close(out);
        other = open("/dev/null", O_WRONLY | O_CLOEXEC);
        assert(other >= 0);
        assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0);
        r = sandbox_apply();
        if (r == -EOPNOTSUPP)
                _exit(77);
        if (r < 0)
                _exit(12);

        WORKS(write(STDOUT_FILENO, "after ", 6));
        /* The output: no truncation, no writing at an offset, no clearing O_APPEND (which
         * would let lseek + write rewrite it), no second descriptor, no mapping. */
        REFUSED(ftruncate(STDOUT_FILENO, 0), EPERM);
        REFUSED(pwrite(STDOUT_FILENO, "X", 1, 0), EPERM);
        REFUSED(fcntl(STDOUT_FILENO, F_SETFL, 0), EPERM);
        REFUSED(fcntl(STDOUT_FILENO, F_SETFL, O_NONBLOCK), EPERM);
        fl = fcntl(STDOUT_FILENO, F_GETFL);
        if (fl < 0 || !(fl & O_APPEND))
                _exit(13);
        REFUSED(fcntl(STDOUT_FILENO, F_DUPFD, 0), EPERM);
        REFUSED(fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 0), EPERM);
        REFUSED(dup2(STDOUT_FILENO, 9), EPERM);
        REFUSED(dup3(STDOUT_FILENO, 9, O_CLOEXEC), EPERM);
        errno = 0;
        if (mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, STDOUT_FILENO, 0) !=
                    MAP_FAILED ||
            errno != EACCES)
                _exit(16);
        /* What the analyzer does: O_DIRECT on and off with O_APPEND kept (the filesystem may
         * refuse O_DIRECT itself), seeking (appending regardless), writing. */
        r = fcntl(STDOUT_FILENO, F_SETFL, fl | O_DIRECT);
        if (r < 0 && errno == EPERM)
                _exit(14);
        WORKS(fcntl(STDOUT_FILENO, F_SETFL, fl));
        WORKS(lseek(STDOUT_FILENO, 0, SEEK_SET));
        WORKS(write(STDOUT_FILENO, "end\n", 4));
        /* Other descriptors: no F_SETFL without O_APPEND either, F_GETFL and F_SETFD work. */
        REFUSED(fcntl(sv[0], F_SETFL, O_NONBLOCK), EPERM);
        WORKS(fcntl(sv[0], F_SETFD, FD_CLOEXEC));
        WORKS(send(sv[0], &c, 1, MSG_DONTWAIT));
        WORKS(recv(sv[1], &c, 1, MSG_DONTWAIT));
        /* A reload's new output goes onto standard output, and only there. */
        REFUSED(dup2(other, 5), EPERM);
        /* No network, no other socket families; the journal's AF_UNIX works. */
        REFUSED(socket(AF_INET, SOCK_STREAM, 0), EAFNOSUPPORT);
        REFUSED(socket(AF_INET6, SOCK_DGRAM, 0), EAFNOSUPPORT);
        REFUSED(socket(AF_NETLINK, SOCK_RAW, 0), EAFNOSUPPORT);
        REFUSED(socket(AF_PACKET, SOCK_RAW, 0), EAFNOSUPPORT);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        WORKS(fd);
        close(fd);
        /* ioctl: TCGETS only (isatty); TIOCSTI and the rest are refused before the kernel. */
        REFUSED(ioctl(sv[0], TIOCSTI, &c), ENOTTY);
        REFUSED(ioctl(sv[0], FIONREAD, &r), ENOTTY);
        errno = 0;
        if (isatty(sv[0]) || errno != ENOTTY)
                _exit(15);
        /* No files opened. */
        REFUSED(open("/etc/hostname", O_RDONLY | O_CLOEXEC), EACCES);
        REFUSED(openat(AT_FDCWD, "/etc/hostname", O_RDONLY | O_CLOEXEC), EACCES);
        WORKS(dup2(other, STDOUT_FILENO));
        _exit(0);
}

int main(void)
{
        char path[] = "/tmp/tlssniff-test-sandbox-XXXXXX", buf[64] = "";
        int fd, status;
        ssize_t n;
        pid_t pid;

        fd = mkstemp(path);
        assert(fd >= 0);
        assert(write(fd, "before\n", 7) == 7);
        fflush(stdout);
        pid = fork();
        assert(pid >= 0);
        if (pid == 0)
                child(path);
        assert(waitpid(pid, &status, 0) == pid);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
                printf("sandbox: no seccomp filter in this build (sanitizers or architecture); "
                       "the normal build runs this test\n");
                unlink(path);
                return 0;
        }
        assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        n = pread(fd, buf, sizeof(buf) - 1, 0);
        assert(n >= 0);
        buf[n] = '\0';
        /* What was there stays, and every write went to the end. */
        assert(strcmp(buf, "before\nafter end\n") == 0);
        close(fd);
        unlink(path);
        printf("sandbox: ok\n");
        return 0;
}
