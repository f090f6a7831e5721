/* The analyzer's seccomp filter; see sandbox.h. */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "sandbox.h"

#if defined(__x86_64__)
#define SANDBOX_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SANDBOX_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_SANITIZED 1
#endif
#endif

#define RET_ALLOW BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
#define RET_ERRNO(err) BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((err) & SECCOMP_RET_DATA))
#define ALLOW(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), RET_ALLOW
#define DENY(nr, err) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), RET_ERRNO(err)
#define LOAD_NR BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
/* The low 32 bits of argument i (little-endian): every argument checked here is an int or an
 * unsigned int to the kernel, which ignores the upper half. */
#define LOAD_ARG(i) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[i]))
/* System call nr only when its argument i is value; else it fails with err. Five
 * instructions; the accumulator holds nr again only for the next such check's JEQ. */
#define ALLOW_ARG_EQ(nr, i, value, err) \
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 4), LOAD_ARG(i), \
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (value), 0, 1), RET_ALLOW, RET_ERRNO(err)

int sandbox_apply(void)
{
#if defined(SANDBOX_SANITIZED) || !defined(SANDBOX_AUDIT_ARCH)
        /* ASan's leak checker stops the world with ptrace and reads /proc at exit. */
        return -EOPNOTSUPP;
#else
        static const struct sock_filter filter[] = {
                /* Another architecture's system call numbers mean something else: refuse. */
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SANDBOX_AUDIT_ARCH, 1, 0),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
                LOAD_NR,
                /* Frames, fds, the output, the control socket, the journal. */
                ALLOW(__NR_read), ALLOW(__NR_write), ALLOW(__NR_readv), ALLOW(__NR_writev),
                ALLOW(__NR_pread64), ALLOW(__NR_lseek), ALLOW(__NR_close), ALLOW(__NR_fstat),
                ALLOW(__NR_newfstatat), ALLOW(__NR_recvmsg), ALLOW(__NR_sendmsg),
                ALLOW(__NR_recvfrom), ALLOW(__NR_sendto), ALLOW(__NR_accept4),
                ALLOW(__NR_getsockopt), ALLOW(__NR_shutdown), ALLOW(__NR_memfd_create),
                ALLOW(__NR_fsync), ALLOW(__NR_fdatasync), ALLOW(__NR_ppoll),
                ALLOW(__NR_fadvise64), /* the output's written pages leave the page cache */
#ifdef __NR_sync_file_range
                ALLOW(__NR_sync_file_range),
#endif
                /* The output is standard output, opened by loaderd for appending only (not
                 * for reading: no shared writable mapping of it). What is in it already may
                 * not be rewritten: no truncating (ftruncate is not allowed at all), no
                 * second descriptor of it (fcntl's F_DUPFD*; dup2/dup3 only onto standard
                 * output, for a reload's new output), and O_APPEND may not be cleared (every
                 * F_SETFL keeps it: the analyzer's sockets are made nonblocking when created,
                 * and its only F_SETFL is the output's O_DIRECT). */
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_fcntl, 0, 10),
                LOAD_ARG(1),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, F_DUPFD, 7, 0),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, F_DUPFD_CLOEXEC, 6, 0),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, F_SETFL, 1, 0),
                RET_ALLOW,
                LOAD_ARG(2),
                BPF_STMT(BPF_ALU | BPF_AND | BPF_K, O_APPEND),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, O_APPEND, 0, 1),
                RET_ALLOW,
                RET_ERRNO(EPERM),
                LOAD_NR,
                ALLOW_ARG_EQ(__NR_dup3, 1, STDOUT_FILENO, EPERM),
                LOAD_NR,
#ifdef __NR_dup2
                ALLOW_ARG_EQ(__NR_dup2, 1, STDOUT_FILENO, EPERM),
                LOAD_NR,
#endif
                /* Sockets: the journal's and nothing else (no network). */
                ALLOW_ARG_EQ(__NR_socket, 0, AF_UNIX, EAFNOSUPPORT),
                LOAD_NR,
                /* ioctl: isatty()'s TCGETS only (no TIOCSTI into a terminal, whatever the
                 * terminal: loaderd also starts the analyzer in a session of its own). */
                ALLOW_ARG_EQ(__NR_ioctl, 1, TCGETS, ENOTTY),
                LOAD_NR,
#ifdef __NR_poll
                ALLOW(__NR_poll),
#endif
                /* Memory, time, signals, exit. */
                ALLOW(__NR_mmap), ALLOW(__NR_munmap), ALLOW(__NR_mremap), ALLOW(__NR_mprotect),
                ALLOW(__NR_brk), ALLOW(__NR_madvise), ALLOW(__NR_futex),
                ALLOW(__NR_clock_gettime), ALLOW(__NR_clock_nanosleep), ALLOW(__NR_nanosleep),
                ALLOW(__NR_gettimeofday), ALLOW(__NR_getpid), ALLOW(__NR_gettid),
                ALLOW(__NR_getuid), ALLOW(__NR_geteuid), ALLOW(__NR_getgid),
                ALLOW(__NR_getegid), ALLOW(__NR_getrandom), ALLOW(__NR_rt_sigreturn),
                ALLOW(__NR_rt_sigprocmask), ALLOW(__NR_rt_sigaction), ALLOW(__NR_tgkill),
                ALLOW(__NR_restart_syscall), ALLOW(__NR_sched_yield), ALLOW(__NR_exit),
                ALLOW(__NR_exit_group),
                /* No new files: everything the analyzer reads is handed to it. */
#ifdef __NR_open
                DENY(__NR_open, EACCES),
#endif
                DENY(__NR_openat, EACCES),
#ifdef __NR_openat2
                DENY(__NR_openat2, EACCES),
#endif
                /* Anything else fails cleanly instead of killing the process. */
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        };
        const struct sock_fprog prog = {
                .len = (unsigned short)ELEMENTSOF(filter),
                .filter = (struct sock_filter *)filter,
        };
        int r;

        /* localtime_r reads the zone file on first use: read it now, before open is gone. */
        tzset();
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        /* For every thread: the output's writer thread (out/direct.h) runs already. */
        r = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
        if (r != 0)
                return r < 0 ? -errno : -EBUSY; /* > 0: a thread that could not be synced */
        return 0;
#endif
}
