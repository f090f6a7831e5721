/*
 * Starting the analyzer: a socketpair, then a child that drops to the tlssniff user (created if
 * missing) with no supplementary groups, no capabilities and no_new_privs, and execs the
 * analyzer binary through an fd opened while still root, so the analyzer's path need not be
 * reachable by that user.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/limits.h>
#include <unistd.h>

#include "config.h"
#include "loaderd.h"

#define ANALYZER_FD 3

static int ensure_user(const char *user, uid_t *ret_uid, gid_t *ret_gid)
{
        struct passwd *pw = getpwnam(user);
        pid_t pid;
        int status;

        if (!pw) {
                log_info("Creating system user '%s' for the analyzer.", user);
                pid = fork();
                if (pid < 0)
                        return -errno;
                if (pid == 0) {
                        execlp("useradd", "useradd", "--system", "--user-group", "--no-create-home",
                               "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                               "--comment", "tlssniff analyzer", user, (char *)NULL);
                        _exit(127);
                }
                if (waitpid(pid, &status, 0) < 0)
                        return -errno;
                pw = getpwnam(user);
                if (!pw)
                        return -ESRCH;
        }
        if (pw->pw_uid == 0)
                return -EPERM; /* the whole point is to not be root */
        *ret_uid = pw->pw_uid;
        *ret_gid = pw->pw_gid;
        return 0;
}

static int open_analyzer(const char *configured)
{
        char self[PATH_MAX], cand[PATH_MAX + 64];
        ssize_t n;
        char *slash;
        int fd;

        if (configured)
                return open(configured, O_PATH | O_CLOEXEC);
        /* Next to loaderd in the build tree, or in libexecdir when installed. */
        n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n > 0) {
                self[n] = '\0';
                slash = strrchr(self, '/');
                if (slash) {
                        *slash = '\0';
                        snprintf(cand, sizeof(cand), "%s/../analyzer/tlssniff-analyzer", self);
                        fd = open(cand, O_PATH | O_CLOEXEC);
                        if (fd >= 0)
                                return fd;
                        snprintf(cand, sizeof(cand), "%s/tlssniff-analyzer", self);
                        fd = open(cand, O_PATH | O_CLOEXEC);
                        if (fd >= 0)
                                return fd;
                }
        }
        return open(TLSSNIFF_LIBEXECDIR "/tlssniff-analyzer", O_PATH | O_CLOEXEC);
}

/*
 * The control socket: created by root in the runtime directory, mode 0660 root:<analyzer group>
 * (group members may read, only root may change anything: checked again with SO_PEERCRED by
 * the analyzer, which serves it).
 */
static int make_control_socket(const char *path, gid_t gid)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;
        char dir[sizeof(sa.sun_path)];
        char *slash;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        strcpy(dir, path);
        slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = '\0';
                if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                        return -errno;
        }
        /* Nonblocking from the start: the analyzer's seccomp filter keeps it from clearing
         * O_APPEND with F_SETFL, so it sets no flags on the sockets it is given. */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        (void)unlink(path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chown(path, 0, gid) < 0 ||
            chmod(path, 0660) < 0 || listen(fd, 64) < 0)
                return -errno;
        return TAKE_FD(fd);
}

int analyzer_output_fd(int fd)
{
        char proc[64];
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode)) {
                fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
                return fd < 0 ? -errno : fd;
        }
        /* A description of its own (loaderd's is read-write, to cut a half line), write-only
         * and appending; the file is reached through the descriptor, whatever its name now. */
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        fd = open(proc, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY);
        return fd < 0 ? -errno : fd;
}

unsigned analyzer_output_args(const struct options *o, char args[][MSG_TEXT_MAX], unsigned max)
{
        unsigned n = 0;

#define ARG(...)                                                                                   \
        do {                                                                                       \
                if (n < max)                                                                       \
                        snprintf(args[n++], MSG_TEXT_MAX, __VA_ARGS__);                            \
        } while (0)
        ARG("--max-print=%u", o->max_print);
        ARG("--log-level=%d", o->log_level);
        if (o->data_group && o->data_group[0]) {
                /* Looked up at each start and reload; a group that does not exist: root only. */
                struct group gr, *found = NULL;
                char buf[4096];

                if (getgrnam_r(o->data_group, &gr, buf, sizeof(buf), &found) == 0 && found &&
                    found->gr_gid != 0)
                        ARG("--data-gid=%u", (unsigned)found->gr_gid);
        }
        if (o->json)
                ARG("--json");
        if (o->exchanges) {
                ARG("--exchanges");
                ARG("--body-preview=%u", o->body_preview);
                if (o->no_data)
                        ARG("--no-data");
                if (o->show_secrets)
                        ARG("--show-secrets");
                if (o->journal_exchanges)
                        ARG("--journal-exchanges");
                for (unsigned i = 0; i < o->n_redact; i++)
                        ARG("--redact-header=%s", o->redact[i]);
                for (unsigned i = 0; i < o->n_redact_params; i++)
                        ARG("--redact-param=%s", o->redact_params[i]);
        }
#undef ARG
        return n;
}

/* The environment of a confined child: empty, but for sanitizer settings (the ASan/UBSan
 * test build). */
struct child_env {
        char buf[3][512];
        char *envp[4];
};

static void child_env_init(struct child_env *e)
{
        static const char *const keep[] = { "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS" };
        size_t n = 0;

        for (size_t i = 0; i < ELEMENTSOF(keep); i++) {
                const char *v = getenv(keep[i]);

                if (v) {
                        snprintf(e->buf[n], sizeof(e->buf[n]), "%s=%s", keep[i], v);
                        e->envp[n] = e->buf[n];
                        n++;
                }
        }
        e->envp[n] = NULL;
}

/*
 * Forks a child that runs the analyzer binary (exe, an O_PATH fd opened as root) confined:
 * its own session, stdin /dev/null, stdout out_fd (-1: loaderd's), fd 3 sock, fd 4 fd4 (-1:
 * none), no other descriptor, the user uid/gid with no groups, PR_SET_PDEATHSIG, no_new_privs,
 * cwd /, an empty environment but for sanitizer settings. The caller's descriptors stay its
 * own. 0 with the child's pid, or -errno.
 */
static int spawn_confined(int exe, const char *const *argv, uid_t uid, gid_t gid, int out_fd,
                          int sock, int fd4, pid_t *ret_pid)
{
        _cleanup_close_ int devnull = -1;
        struct child_env env;
        pid_t parent = getpid(), pid;

        child_env_init(&env);
        /* Its standard input is /dev/null, not loaderd's (a terminal, perhaps). */
        devnull = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (devnull < 0)
                return -errno;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                /* Child: only async-signal-safe calls until exec. */
                sigset_t all;

                sigemptyset(&all);
                sigprocmask(SIG_SETMASK, &all, NULL);
                signal(SIGINT, SIG_IGN); /* loaderd decides when the child ends (EOF) */
                /* A session of its own: no controlling terminal to push input into. */
                if (setsid() < 0)
                        _exit(120);
                /* Move the descriptors off 0-4 first: any may sit where another goes. */
                exe = fcntl(exe, F_DUPFD_CLOEXEC, 10);
                sock = fcntl(sock, F_DUPFD_CLOEXEC, 10);
                devnull = fcntl(devnull, F_DUPFD_CLOEXEC, 10);
                out_fd = out_fd >= 0 ? fcntl(out_fd, F_DUPFD_CLOEXEC, 10) : -2;
                fd4 = fd4 >= 0 ? fcntl(fd4, F_DUPFD_CLOEXEC, 10) : -2;
                if (exe < 0 || sock < 0 || devnull < 0 || out_fd == -1 || fd4 == -1)
                        _exit(121);
                if (dup2(devnull, STDIN_FILENO) < 0 ||
                    (out_fd >= 0 && dup2(out_fd, STDOUT_FILENO) < 0) || dup2(sock, 3) < 0 ||
                    (fd4 >= 0 && dup2(fd4, 4) < 0))
                        _exit(121);
                if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
                    setresuid(uid, uid, uid) < 0)
                        _exit(122);
                /* After the change of user, which clears it; if loaderd died meanwhile, the
                 * parent is someone else already. */
                if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
                        _exit(120);
                if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                        _exit(123);
                if (chdir("/") < 0)
                        _exit(124);
                syscall(SYS_execveat, exe, "", (char *const *)argv, env.envp, AT_EMPTY_PATH);
                _exit(127);
        }
        *ret_pid = pid;
        return 0;
}

int spawn_analyzer(struct loaderd *l, int *ret_sock, pid_t *ret_pid)
{
        const struct options *o = &l->opt;
        int sv[2] = { -1, -1 };
        _cleanup_close_ int exe = -1, out_fd = -1;
        char out_args[16 + OPTIONS_REDACT_MAX][MSG_TEXT_MAX];
        const char *argv[32 + OPTIONS_REDACT_MAX];
        unsigned n_out;
        uid_t uid = 0;
        gid_t gid = 0;
        pid_t pid = 0;
        int r, argc = 0;

        r = ensure_user(o->user, &uid, &gid);
        if (r < 0)
                return log_error_errno(r, "Failed to find or create user '%s': %m", o->user);
        l->child_uid = uid;
        l->child_gid = gid;
        if (l->control_fd < 0 && o->control_socket && o->control_socket[0]) {
                l->control_fd = make_control_socket(o->control_socket, gid);
                if (l->control_fd < 0)
                        log_warning_errno(l->control_fd,
                                          "Failed to create the control socket '%s', going on "
                                          "without it: %m",
                                          o->control_socket);
        }
        exe = open_analyzer(o->analyzer);
        if (exe < 0)
                return log_error_errno(errno, "Failed to find the analyzer binary (%s): %m",
                                       o->analyzer ? o->analyzer : "tlssniff-analyzer");
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return log_error_errno(errno, "Failed to create the analyzer socket: %m");

        argv[argc++] = "tlssniff-analyzer";
        argv[argc++] = "--fd=3";
        if (l->control_fd >= 0)
                argv[argc++] = "--control-fd=4";
        if (o->placement_fallback)
                argv[argc++] = "--placement=fallback";
        n_out = analyzer_output_args(o, out_args, ELEMENTSOF(out_args));
        for (unsigned i = 0; i < n_out; i++)
                argv[argc++] = out_args[i];
        /* The analyzer gets an empty environment: tell it where loaderd logs. */
        argv[argc++] = log_to_journal() ? "--log-target=journal" : "--log-target=stderr";
        argv[argc] = NULL;

        if (l->output_fd >= 0) {
                out_fd = analyzer_output_fd(l->output_fd);
                if (out_fd < 0) {
                        close(sv[0]);
                        close(sv[1]);
                        return log_error_errno(out_fd, "Failed to open the output for the "
                                                       "analyzer: %m");
                }
        }
        r = spawn_confined(exe, argv, uid, gid, out_fd, sv[1], l->control_fd, &pid);
        close(sv[1]);
        if (r < 0) {
                close(sv[0]);
                return log_error_errno(r, "Failed to start the analyzer: %m");
        }
        *ret_sock = sv[0];
        *ret_pid = pid;
        return 0;
}

int analyzer_end(pid_t pid, int sig, int timeout_ms, int *ret_status)
{
        struct pollfd p = { .fd = -1, .events = POLLIN };
        int status, r = 0;
        pid_t got;

        if (sig && kill(pid, sig) < 0 && errno != ESRCH)
                r = -errno; /* EPERM: no CAP_KILL; it may still end by itself */
        /* Readable once the process has ended; a pid already reaped has none. */
        p.fd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (p.fd >= 0) {
                (void)poll(&p, 1, timeout_ms);
                close(p.fd);
        }
        got = waitpid(pid, &status, WNOHANG);
        if (got == pid) {
                if (ret_status)
                        *ret_status = status;
                return 1;
        }
        if (got < 0 && errno == ECHILD)
                return 1; /* reaped already (SIGCHLD) */
        return r;
}

int spawn_planner(struct loaderd *l, uint32_t file_id, const char *name, int file_fd,
                  int *ret_sock, pid_t *ret_pid)
{
        const struct options *o = &l->opt;
        int sv[2] = { -1, -1 };
        _cleanup_close_ int exe = -1, devnull = -1;
        char id_arg[32], name_arg[32 + MSG_PATH_MAX];
        const char *argv[10];
        uid_t uid = 0;
        gid_t gid = 0;
        pid_t pid = 0;
        int r, argc = 0;

        if (l->child_uid != 0) {
                uid = l->child_uid;
                gid = l->child_gid;
        } else if ((r = ensure_user(o->user, &uid, &gid)) < 0)
                return r;
        exe = open_analyzer(o->planner);
        if (exe < 0)
                return -errno;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        /* It writes nothing but its frame: standard output is /dev/null. */
        devnull = open("/dev/null", O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (devnull < 0) {
                r = -errno;
                close(sv[0]);
                close(sv[1]);
                return r;
        }
        snprintf(id_arg, sizeof(id_arg), "--plan=%u", file_id);
        /* The name for its log only (escaped there): it plans the descriptor. */
        snprintf(name_arg, sizeof(name_arg), "--plan-name=%s", name);
        argv[argc++] = "tlssniff-analyzer";
        argv[argc++] = id_arg;
        argv[argc++] = name_arg;
        argv[argc++] = "--fd=3";
        if (o->placement_fallback)
                argv[argc++] = "--placement=fallback";
        argv[argc++] = log_to_journal() ? "--log-target=journal" : "--log-target=stderr";
        argv[argc] = NULL;
        r = spawn_confined(exe, argv, uid, gid, devnull, sv[1], file_fd, &pid);
        close(sv[1]);
        if (r < 0) {
                close(sv[0]);
                return r;
        }
        *ret_sock = sv[0];
        *ret_pid = pid;
        return 0;
}
