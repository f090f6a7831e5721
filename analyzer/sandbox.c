/* The analyzer's seccomp filter; see sandbox.h. */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
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

#define ALLOW(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), \
                  BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
#define DENY(nr, err) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), \
                      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((err) & SECCOMP_RET_DATA))

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
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                /* Frames, fds, the output, the control socket, the journal. */
                ALLOW(__NR_read), ALLOW(__NR_write), ALLOW(__NR_readv), ALLOW(__NR_writev),
                ALLOW(__NR_pread64), ALLOW(__NR_lseek), ALLOW(__NR_close), ALLOW(__NR_fstat),
                ALLOW(__NR_newfstatat), ALLOW(__NR_fcntl), ALLOW(__NR_ioctl),
                ALLOW(__NR_recvmsg), ALLOW(__NR_sendmsg), ALLOW(__NR_recvfrom),
                ALLOW(__NR_sendto), ALLOW(__NR_accept4), ALLOW(__NR_getsockopt),
                ALLOW(__NR_socket), ALLOW(__NR_shutdown), ALLOW(__NR_memfd_create),
                ALLOW(__NR_ftruncate), ALLOW(__NR_fsync), ALLOW(__NR_fdatasync),
                ALLOW(__NR_ppoll), ALLOW(__NR_dup3), /* a reload's new output */
                ALLOW(__NR_fadvise64), /* the output's written pages leave the page cache */
#ifdef __NR_sync_file_range
                ALLOW(__NR_sync_file_range),
#endif
#ifdef __NR_dup2
                ALLOW(__NR_dup2),
#endif
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
