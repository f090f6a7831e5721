/*
 * tlssniffctl: asks a running tlssniff over its control socket. `status` and `stats` print a
 * table for people or, with --json, the daemon's JSON answer for scripts. `tail` and `follow`
 * subscribe: the daemon sends records as they come (text, or JSON lines with --json) until
 * the count is reached, the daemon ends or tlssniffctl is stopped (Ctrl-C, a closed pipe).
 * Exit status: 0 answered (tail, follow: the count was reached or the daemon ended the
 * stream), 1 the daemon refused or could not be reached (or a unit has no cgroup), 2 bad usage.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"

/* The analyzer's bounds on a tail request (analyzer/control/tail.h): the whole line, "tail "
 * and the newline included, and the values of each list. */
#define TAIL_REQUEST_MAX 256
#define PIDS_MAX 16
#define COMMS_MAX 8
#define STATUSES_MAX 8
#define CGROUP_IDS_MAX 32 /* --unit and --cgroup together */
#define COMM_MAX 15
#define HOST_MAX 255
#define PATH_MAX_TAIL 240
#define PID_MAX 4194304ull
#define COUNT_MAX 4294967295ull
/* The cgroup walk: how deep below the cgroup v2 root, and how many folders at most. */
#define CGROUP_DEPTH_MAX 16
#define CGROUP_DIRS_MAX 100000

static void help(void)
{
        printf("Usage: tlssniffctl [--socket PATH] [--json] COMMAND\n"
               "       tlssniffctl attach|detach PID|UNIT\n"
               "       tlssniffctl reload\n"
               "       tlssniffctl [--json] tail [--data|--exchanges|--connections] [--pid N]...\n"
               "                   [--comm NAME]... [--unit UNIT]... [--cgroup PATH]...\n"
               "                   [--host H] [--path P] [--status S]... [-n N]\n"
               "       tlssniffctl [--json] follow CONN_ID [-n N]\n"
               "\n"
               "Commands:\n"
               "  status       version, uptime, files analysed, messages written\n"
               "  stats        every counter: captured calls/records/bytes, drops by reason,\n"
               "               truncation, loaderd backlog, analyzer errors\n"
               "  connections  tracked connections, most recently active first (as many as\n"
               "               fit in one answer): process, role, addresses, protocol, bytes\n"
               "  processes [PID]  the processes with TLS code (or that one): traced or not and\n"
               "               why (targets, detached, probes failed), their OpenSSL library\n"
               "               or Go version and ABI and probe state; then the files with TLS\n"
               "               code, newest first, with how their probes were placed\n"
               "  tail         records as they are captured, as tlssniff writes them: data,\n"
               "               exchanges (with --exchanges on) and connection open/end records;\n"
               "               each option narrows (all must match, a repeated one any of its\n"
               "               values)\n"
               "  follow ID    the data of one connection (ID from 'connections'), both\n"
               "               directions, as it passes\n"
               "  attach PID|UNIT  trace this process or systemd unit whatever the targets say\n"
               "               (root only; UNIT.service when UNIT has no suffix)\n"
               "  detach PID|UNIT  stop tracing this process or unit (root only); attach and\n"
               "               detach last until the other is asked or tlssniff restarts\n"
               "  reload       read the configuration file again (root only); a bad file is\n"
               "               refused with its line number and the running one kept\n"
               "\n"
               "Options:\n"
               "  -s, --socket PATH   control socket (default /run/tlssniff/control); attach,\n"
               "                      detach and reload go to PATH.admin, which loaderd serves\n"
               "                      itself to root only\n"
               "  -j, --json          print the daemon's JSON answer (tail, follow: JSON lines)\n"
               "  -h, --help          this help\n"
               "\n"
               "tail and follow:\n"
               "      --data          data records only (--exchanges, --connections likewise;\n"
               "                      default: all kinds the daemon writes)\n"
               "      --pid N         of process N\n"
               "      --comm NAME     of processes named NAME (exactly, at most 15 characters)\n"
               "      --unit UNIT     of the processes of a systemd unit (UNIT.service if UNIT\n"
               "                      has no suffix) and of the cgroups below it\n"
               "      --cgroup PATH   of the processes in a cgroup v2 folder or below it\n"
               "      --host H        exchanges with this authority (case-insensitive; with or\n"
               "                      without the port unless H has one)\n"
               "      --path P        exchanges whose path starts with P (P starts with /)\n"
               "      --status S      exchanges answered with status S (404) or class S (5xx)\n"
               "  -n, --count N       stop after N records\n"
               "Records a slow reader cannot take are dropped, and it is told how many.\n"
               "\n"
               "Root and members of the tlssniff group may read; only root may change anything.\n"
               "Exit status: 0 answered (tail, follow: count reached or the daemon ended the\n"
               "stream; attach, detach, reload: done), 1 refused, failed or unreachable (the\n"
               "reason on standard error), 2 bad usage.\n");
}

/* Prints {"ok":true,"<key>":{"a":1,"b":"x"}} as aligned "a  1" lines (flat objects only). */
static int print_table(const char *answer, const char *key)
{
        char want[64];
        const char *p;

        snprintf(want, sizeof(want), "\"%s\":{", key);
        p = strstr(answer, want);
        if (!p)
                return -EBADMSG;
        p += strlen(want);
        while (*p && *p != '}') {
                const char *name, *name_end, *val, *val_end;

                if (*p == ',')
                        p++;
                if (*p != '"')
                        return -EBADMSG;
                name = ++p;
                name_end = strchr(name, '"');
                if (!name_end || name_end[1] != ':')
                        return -EBADMSG;
                val = name_end + 2;
                if (*val == '"') {
                        val_end = strchr(val + 1, '"');
                        if (!val_end)
                                return -EBADMSG;
                        val_end++;
                } else
                        val_end = val + strcspn(val, ",}");
                printf("%-36.*s %.*s\n", (int)(name_end - name), name, (int)(val_end - val), val);
                p = val_end;
        }
        return 0;
}

/* The value of "key" inside [obj, end): a string without its quotes, or a number. */
static void field(const char *obj, const char *end, const char *key, char *out, size_t size)
{
        char want[48];
        const char *p, *v, *ve;

        snprintf(want, sizeof(want), "\"%s\":", key);
        out[0] = '\0';
        p = strstr(obj, want);
        if (!p || p >= end)
                return;
        v = p + strlen(want);
        if (*v == '"') {
                v++;
                ve = memchr(v, '"', (size_t)(end - v));
        } else {
                ve = v + strcspn(v, ",}");
        }
        if (!ve || ve > end)
                return;
        snprintf(out, size, "%.*s", (int)(ve - v), v);
}

/* {"ok":true,"connections":{"tracked":N,"list":[{...},...],"shown":M}} as a table. */
static int print_connections(const char *answer)
{
        static const char *const keys[] = { "conn_id", "pid", "comm", "role", "local",
                                            "remote", "protocol", "bytes_sent",
                                            "bytes_received", "idle_ms" };
        const char *p = strstr(answer, "\"list\":["), *end;
        char v[10][64], tracked[32] = "", shown[32] = "";

        if (!p)
                return -EBADMSG;
        field(answer, answer + strlen(answer), "tracked", tracked, sizeof(tracked));
        field(answer, answer + strlen(answer), "shown", shown, sizeof(shown));
        printf("%-6s %-7s %-15s %-7s %-22s %-22s %-8s %12s %12s %9s\n", "CONN", "PID", "COMM",
               "ROLE", "LOCAL", "REMOTE", "PROTO", "SENT", "RECEIVED", "IDLE_MS");
        for (p += 8; (p = strchr(p, '{')) && (end = strchr(p, '}')); p = end) {
                for (size_t i = 0; i < 10; i++)
                        field(p, end, keys[i], v[i], sizeof(v[i]));
                printf("%-6s %-7s %-15s %-7s %-22s %-22s %-8s %12s %12s %9s\n", v[0], v[1], v[2],
                       v[3], v[4], v[5], v[6], v[7], v[8], v[9]);
        }
        printf("%s of %s tracked connections shown\n", shown, tracked);
        return 0;
}

/* {"ok":true,"processes":{...,"list":[{...},...],"shown":M}} as lines for people. */
static int print_processes(const char *answer)
{
        static const char *const pkeys[] = { "pid", "comm", "state", "exe", "tls", "reason" };
        static const char *const fkeys[] = { "pid", "kind", "state", "probes", "library", "path",
                                             "reason" };
        const char *procs = strstr(answer, "\"processes\":{\"total\":");
        const char *files = strstr(answer, "\"files\":{\"files_analyzed\":");
        const char *p, *end;
        char v[7][1300], analyzed[32] = "", with_tls[32] = "", shown[32] = "", total[32] = "";

        if (!procs || !files || files < procs)
                return -EBADMSG;
        field(procs, files, "total", total, sizeof(total));
        printf("%-7s %-15s %-12s %s\n", "PID", "COMM", "STATE", "EXE");
        p = strstr(procs, "\"list\":[");
        for (p = p ? p + 8 : files; p < files && (p = strchr(p, '{')) && p < files &&
                                     (end = strchr(p, '}'));
             p = end) {
                for (size_t i = 0; i < sizeof(pkeys) / sizeof(pkeys[0]); i++)
                        field(p, end, pkeys[i], v[i], sizeof(v[i]));
                printf("%-7s %-15s %-12s %s\n", v[0], v[1], v[2], v[3]);
                if (v[4][0])
                        printf("        TLS: %s\n", v[4]);
                printf("        %s\n", v[5]);
        }
        field(procs, files, "shown", shown, sizeof(shown));
        printf("%s of %s processes with TLS code shown\n\n", shown, total);

        field(files, files + strlen(files), "files_analyzed", analyzed, sizeof(analyzed));
        field(files, files + strlen(files), "files_with_tls", with_tls, sizeof(with_tls));
        printf("%-7s %-10s %-10s %6s  %-40s %s\n", "PID", "KIND", "STATE", "PROBES", "TLS",
               "FILE");
        for (p = files + 8; (p = strchr(p, '{')) && (end = strchr(p, '}')); p = end) {
                for (size_t i = 0; i < sizeof(fkeys) / sizeof(fkeys[0]); i++)
                        field(p, end, fkeys[i], v[i], sizeof(v[i]));
                printf("%-7s %-10s %-10s %6s  %-40s %s\n        %s\n", v[0], v[1], v[2], v[3],
                       v[4], v[5], v[6]);
        }
        field(files, files + strlen(files), "shown", shown, sizeof(shown));
        printf("%s of %s files with TLS shown (%s files analysed; the process is the one each "
               "file was found in)\n",
               shown, with_tls, analyzed);
        return 0;
}

/* Subscriptions (tail, follow): the request, built and checked here, then the stream. */

struct tail_request {
        bool kinds[3]; /* data, exchanges, connections */
        const char *pids[PIDS_MAX], *comms[COMMS_MAX], *statuses[STATUSES_MAX];
        unsigned n_pids, n_comms, n_statuses;
        uint64_t cgroups[CGROUP_IDS_MAX];
        unsigned n_cgroups;
        const char *host, *path, *count, *conn;
        bool json;
};

static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage(const char *fmt, ...)
{
        va_list ap;

        fputs("tlssniffctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs(" Try 'tlssniffctl --help'.\n", stderr);
        return 2;
}

/* Digits only, in [min, max]. */
static bool is_number(const char *s, unsigned long long min, unsigned long long max)
{
        unsigned long long v = 0;

        if (!*s || strlen(s) > 20)
                return false;
        for (; *s; s++) {
                if (!isdigit((unsigned char)*s) || __builtin_mul_overflow(v, 10, &v) ||
                    __builtin_add_overflow(v, (unsigned)(*s - '0'), &v))
                        return false;
        }
        return v >= min && v <= max;
}

/* A value the request can carry: printable, no spaces (they separate keys), and for the
 * values of a list no commas (they separate values). */
static bool is_token(const char *s, size_t max, bool list)
{
        size_t n = strlen(s);

        if (n == 0 || n > max)
                return false;
        for (; *s; s++)
                if (*s <= ' ' || *s >= 0x7f || (list && *s == ','))
                        return false;
        return true;
}

/* 404, or a class like 5xx (5XX is taken too). */
static bool is_status(char *s)
{
        if (strlen(s) != 3 || s[0] < '1' || s[0] > '9')
                return false;
        if (isdigit((unsigned char)s[1]) && isdigit((unsigned char)s[2]))
                return true;
        if (tolower((unsigned char)s[1]) != 'x' || tolower((unsigned char)s[2]) != 'x')
                return false;
        s[1] = s[2] = 'x';
        return true;
}

static bool on_cgroup2(const char *path)
{
        struct statfs sf;

        return statfs(path, &sf) == 0 && (unsigned long)sf.f_type == CGROUP2_SUPER_MAGIC;
}

/* The cgroup v2 hierarchy: /sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid systems. */
static const char *cgroup_root(void)
{
        if (on_cgroup2("/sys/fs/cgroup"))
                return "/sys/fs/cgroup";
        if (on_cgroup2("/sys/fs/cgroup/unified"))
                return "/sys/fs/cgroup/unified";
        return NULL;
}

struct cgroup_walk {
        uint64_t *ids;
        unsigned n, max;
        bool overflow;
        unsigned dirs; /* folders looked at, at most CGROUP_DIRS_MAX */
};

static void add_id(struct cgroup_walk *w, uint64_t id)
{
        for (unsigned i = 0; i < w->n; i++)
                if (w->ids[i] == id)
                        return;
        if (w->n >= w->max)
                w->overflow = true;
        else
                w->ids[w->n++] = id;
}

static bool is_subdir(const char *dir, const struct dirent *de, char *out, size_t size)
{
        struct stat st;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                return false;
        if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
                return false;
        if ((size_t)snprintf(out, size, "%s/%s", dir, de->d_name) >= size)
                return false;
        return de->d_type == DT_DIR || (lstat(out, &st) == 0 && S_ISDIR(st.st_mode));
}

/* The cgroup id (the folder's inode number) of dir and of every folder below it. */
static void add_tree(struct cgroup_walk *w, const char *dir, int depth)
{
        char sub[PATH_MAX];
        struct dirent *de;
        struct stat st;
        DIR *d;

        if (stat(dir, &st) < 0)
                return;
        add_id(w, (uint64_t)st.st_ino);
        if (depth >= CGROUP_DEPTH_MAX || w->overflow)
                return;
        d = opendir(dir);
        if (!d)
                return;
        while ((de = readdir(d)) && !w->overflow && w->dirs < CGROUP_DIRS_MAX)
                if (is_subdir(dir, de, sub, sizeof(sub))) {
                        w->dirs++;
                        add_tree(w, sub, depth + 1);
                }
        closedir(d);
}

/* Folders named name below dir, each with what is below it. */
static unsigned find_unit(struct cgroup_walk *w, const char *dir, const char *name, int depth)
{
        char sub[PATH_MAX];
        struct dirent *de;
        unsigned found = 0;
        DIR *d = opendir(dir);

        if (!d)
                return 0;
        while ((de = readdir(d)) && w->dirs < CGROUP_DIRS_MAX)
                if (is_subdir(dir, de, sub, sizeof(sub))) {
                        w->dirs++;
                        if (strcmp(de->d_name, name) == 0) {
                                found++;
                                add_tree(w, sub, 0);
                        } else if (depth + 1 < CGROUP_DEPTH_MAX) {
                                found += find_unit(w, sub, name, depth + 1);
                        }
                }
        closedir(d);
        return found;
}

/* --unit and --cgroup to cgroup ids; 0, or the exit status. */
static int resolve_cgroups(struct tail_request *rq, char **units, unsigned n_units,
                           char **paths, unsigned n_paths)
{
        struct cgroup_walk w = { .ids = rq->cgroups, .max = CGROUP_IDS_MAX };
        const char *root;

        if (n_units + n_paths == 0)
                return 0;
        root = cgroup_root();
        if (!root) {
                fprintf(stderr, "tlssniffctl: no cgroup v2 hierarchy at /sys/fs/cgroup\n");
                return 1;
        }
        for (unsigned i = 0; i < n_units; i++) {
                char name[NAME_MAX + 1];

                /* Like systemctl: a name without a suffix is a service. */
                if ((size_t)snprintf(name, sizeof(name), "%s%s", units[i],
                                     strchr(units[i], '.') ? "" : ".service") >= sizeof(name))
                        return usage("unit name too long: '%s'.", units[i]);
                w.dirs = 0;
                if (find_unit(&w, root, name, 0) == 0) {
                        fprintf(stderr, "tlssniffctl: unit %s has no cgroup (not running?)\n",
                                name);
                        return 1;
                }
                if (w.overflow)
                        return usage("unit %s has more than %d cgroups; use --cgroup with a "
                                     "narrower one.", name, CGROUP_IDS_MAX);
        }
        for (unsigned i = 0; i < n_paths; i++) {
                char dir[PATH_MAX];
                const char *p = paths[i];
                struct stat st;

                /* A path in the file system, or one inside the hierarchy ("/system.slice/x",
                 * as /proc/PID/cgroup shows it). */
                if (!(p[0] == '/' && on_cgroup2(p) && stat(p, &st) == 0 && S_ISDIR(st.st_mode))) {
                        while (*p == '/')
                                p++;
                        if ((size_t)snprintf(dir, sizeof(dir), "%s/%s", root, p) >= sizeof(dir))
                                return usage("cgroup path too long.");
                        p = dir;
                        if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode) || !on_cgroup2(p)) {
                                fprintf(stderr, "tlssniffctl: no cgroup %s (under %s)\n",
                                        paths[i], root);
                                return 1;
                        }
                }
                w.dirs = 0;
                add_tree(&w, p, 0);
                if (w.overflow)
                        return usage("cgroup %s has more than %d cgroups below it; use a "
                                     "narrower one.", paths[i], CGROUP_IDS_MAX);
        }
        rq->n_cgroups = w.n;
        return 0;
}

/* The request line; 0, or the exit status. */
static int tail_line(const struct tail_request *rq, char *out, size_t size)
{
        static const char *const kind_names[] = { "data", "exchanges", "connections" };
        char buf[4096];
        size_t len = 0;
        const char *sep = " kind=";

#define PUT(...) len += (size_t)snprintf(buf + len, len < sizeof(buf) ? sizeof(buf) - len : 0, \
                                         __VA_ARGS__)
        PUT("tail");
        for (unsigned i = 0; i < 3; i++)
                if (rq->kinds[i]) {
                        PUT("%s%s", sep, kind_names[i]);
                        sep = ",";
                }
        for (unsigned i = 0; i < rq->n_pids; i++)
                PUT("%s%s", i ? "," : " pid=", rq->pids[i]);
        for (unsigned i = 0; i < rq->n_comms; i++)
                PUT("%s%s", i ? "," : " comm=", rq->comms[i]);
        for (unsigned i = 0; i < rq->n_cgroups; i++)
                PUT("%s%llu", i ? "," : " cgroup=", (unsigned long long)rq->cgroups[i]);
        for (unsigned i = 0; i < rq->n_statuses; i++)
                PUT("%s%s", i ? "," : " status=", rq->statuses[i]);
        if (rq->host)
                PUT(" host=%s", rq->host);
        if (rq->path)
                PUT(" path=%s", rq->path);
        if (rq->conn)
                PUT(" conn=%s", rq->conn);
        PUT(" format=%s", rq->json ? "json" : "text");
        if (rq->count)
                PUT(" count=%s", rq->count);
        PUT("\n");
#undef PUT
        if (len > TAIL_REQUEST_MAX || len >= size)
                return usage("the request is %zu bytes, at most %d fit: fewer --pid, --comm, "
                             "--unit or --cgroup values (%u cgroup ids).",
                             len, TAIL_REQUEST_MAX, rq->n_cgroups);
        memcpy(out, buf, len + 1);
        return 0;
}

static int connect_to(const char *path)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if (strlen(path) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "tlssniffctl: socket path too long.\n");
                return -2;
        }
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                fprintf(stderr, "tlssniffctl: cannot reach tlssniff at %s: %m\n", path);
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        return fd;
}

/*
 * Sends the request, checks the first line ({"ok":true,"tail":...}), then copies what comes
 * to stdout as it comes, until the daemon closes (the count was reached, or it ended) or
 * stdout's reader goes (exit 0, not death by SIGPIPE, so pipelines with pipefail succeed).
 * Ctrl-C ends tlssniffctl as usual; the daemon sees it go.
 */
static int run_tail(const char *path, const char *request)
{
        char buf[65536];
        size_t n = 0;
        const char *nl = NULL;
        int fd = connect_to(path);

        if (fd < 0)
                return fd == -2 ? 2 : 1;
        signal(SIGPIPE, SIG_IGN);
        if (write(fd, request, strlen(request)) != (ssize_t)strlen(request)) {
                fprintf(stderr, "tlssniffctl: cannot send the request: %m\n");
                close(fd);
                return 1;
        }
        while (!nl && n < 4096) {
                ssize_t k = read(fd, buf + n, sizeof(buf) - 1 - n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                n += (size_t)k;
                buf[n] = '\0';
                nl = memchr(buf, '\n', n);
        }
        if (!nl) {
                fprintf(stderr, "tlssniffctl: no answer from tlssniff\n");
                close(fd);
                return 1;
        }
        if (strncmp(buf, "{\"ok\":true,\"tail\":", 18) != 0) {
                fprintf(stderr, "tlssniffctl: refused: %.*s", (int)(nl + 1 - buf), buf);
                close(fd);
                return 1;
        }
        /* Records that came with the answer, then the rest as it comes. */
        n -= (size_t)(nl + 1 - buf);
        memmove(buf, nl + 1, n);
        for (;;) {
                ssize_t k;

                if (n > 0 && (fwrite(buf, 1, n, stdout) != n || fflush(stdout) != 0)) {
                        /* The reader went (tlssniffctl tail | head): an end like Ctrl-C. */
                        if (errno == EPIPE) {
                                close(fd);
                                return 0;
                        }
                        fprintf(stderr, "tlssniffctl: cannot write the output: %m\n");
                        close(fd);
                        return 1;
                }
                k = read(fd, buf, sizeof(buf));
                if (k < 0 && errno == EINTR) {
                        n = 0;
                        continue;
                }
                if (k == 0)
                        break;
                if (k < 0) {
                        fprintf(stderr, "tlssniffctl: connection to tlssniff lost: %m\n");
                        close(fd);
                        return 1;
                }
                n = (size_t)k;
        }
        close(fd);
        return 0;
}

enum {
        OPT_DATA = 0x100,
        OPT_EXCHANGES,
        OPT_CONNECTIONS,
        OPT_PID,
        OPT_COMM,
        OPT_UNIT,
        OPT_CGROUP,
        OPT_HOST,
        OPT_PATH,
        OPT_STATUS,
};

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "socket", required_argument, NULL, 's' },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                { "count", required_argument, NULL, 'n' },
                { "data", no_argument, NULL, OPT_DATA },
                { "exchanges", no_argument, NULL, OPT_EXCHANGES },
                { "connections", no_argument, NULL, OPT_CONNECTIONS },
                { "pid", required_argument, NULL, OPT_PID },
                { "comm", required_argument, NULL, OPT_COMM },
                { "unit", required_argument, NULL, OPT_UNIT },
                { "cgroup", required_argument, NULL, OPT_CGROUP },
                { "host", required_argument, NULL, OPT_HOST },
                { "path", required_argument, NULL, OPT_PATH },
                { "status", required_argument, NULL, OPT_STATUS },
                {}
        };
        const char *path = "/run/tlssniff/control", *cmd, *tail_opt = NULL, *filter_opt = NULL;
        char admin[PATH_MAX + 8];
        struct tail_request rq = {};
        char *units[CGROUP_IDS_MAX], *cgroup_paths[CGROUP_IDS_MAX];
        unsigned n_units = 0, n_paths = 0;
        char req[TAIL_REQUEST_MAX + 1], answer[65536];
        size_t n = 0;
        bool json = false, is_tail, is_follow, change;
        int c, fd, r, li = 0;

        while ((c = getopt_long(argc, argv, "s:jhn:", longopts, &li)) >= 0) {
                /* The first tail option, named in the error when the command is not tail;
                 * filter_opt: the first one follow does not take. */
                if (c == 'n' && !tail_opt)
                        tail_opt = "--count";
                if (c >= OPT_DATA && !filter_opt)
                        filter_opt = tail_opt = longopts[li].name;

                switch (c) {
                case 's':
                        path = optarg;
                        break;
                case 'j':
                        json = true;
                        break;
                case 'h':
                        help();
                        return 0;
                case 'n':
                        if (!is_number(optarg, 1, COUNT_MAX))
                                return usage("--count takes a number from 1 to %llu.",
                                             COUNT_MAX);
                        rq.count = optarg;
                        break;
                case OPT_DATA:
                case OPT_EXCHANGES:
                case OPT_CONNECTIONS:
                        rq.kinds[c - OPT_DATA] = true;
                        break;
                case OPT_PID:
                        if (!is_number(optarg, 1, PID_MAX))
                                return usage("--pid takes a process id, not '%s'.", optarg);
                        if (rq.n_pids >= PIDS_MAX)
                                return usage("at most %d --pid options.", PIDS_MAX);
                        rq.pids[rq.n_pids++] = optarg;
                        break;
                case OPT_COMM:
                        if (!is_token(optarg, COMM_MAX, true))
                                return usage("--comm takes a process name of 1 to %d characters "
                                             "without spaces or commas.", COMM_MAX);
                        if (rq.n_comms >= COMMS_MAX)
                                return usage("at most %d --comm options.", COMMS_MAX);
                        rq.comms[rq.n_comms++] = optarg;
                        break;
                case OPT_UNIT:
                        if (!*optarg || strchr(optarg, '/') || strcmp(optarg, ".") == 0 ||
                            strcmp(optarg, "..") == 0)
                                return usage("--unit takes a unit name, not '%s'.", optarg);
                        if (n_units >= CGROUP_IDS_MAX)
                                return usage("at most %d --unit options.", CGROUP_IDS_MAX);
                        units[n_units++] = optarg;
                        break;
                case OPT_CGROUP:
                        if (!*optarg)
                                return usage("--cgroup takes a cgroup path.");
                        if (n_paths >= CGROUP_IDS_MAX)
                                return usage("at most %d --cgroup options.", CGROUP_IDS_MAX);
                        cgroup_paths[n_paths++] = optarg;
                        break;
                case OPT_HOST:
                        if (rq.host || !is_token(optarg, HOST_MAX, false))
                                return usage("one --host, a host name or address of at most %d "
                                             "characters, with an optional :port.", HOST_MAX);
                        rq.host = optarg;
                        break;
                case OPT_PATH:
                        if (rq.path || optarg[0] != '/' || !is_token(optarg, PATH_MAX_TAIL, false))
                                return usage("one --path, starting with / and at most %d "
                                             "characters, without spaces.", PATH_MAX_TAIL);
                        rq.path = optarg;
                        break;
                case OPT_STATUS:
                        if (!is_status(optarg))
                                return usage("--status takes a status like 404 or a class like "
                                             "5xx, not '%s'.", optarg);
                        if (rq.n_statuses >= STATUSES_MAX)
                                return usage("at most %d --status options.", STATUSES_MAX);
                        rq.statuses[rq.n_statuses++] = optarg;
                        break;
                default:
                        fprintf(stderr, "Try 'tlssniffctl --help'.\n");
                        return 2;
                }
        }
        if (optind >= argc)
                return usage("a command is expected.");
        cmd = argv[optind];
        is_tail = strcmp(cmd, "tail") == 0;
        is_follow = strcmp(cmd, "follow") == 0;
        if (is_tail || is_follow) {
                rq.json = json;
                if (is_follow) {
                        if (optind + 2 != argc || !is_number(argv[optind + 1], 0, UINT64_MAX))
                                return usage("follow takes one connection id (see "
                                             "'tlssniffctl connections').");
                        if (filter_opt)
                                return usage("follow takes --json and --count only, not --%s.",
                                             filter_opt);
                        rq.kinds[0] = true;
                        rq.conn = argv[optind + 1];
                } else if (optind + 1 != argc) {
                        return usage("tail takes options only, not '%s'.", argv[optind + 1]);
                }
                r = resolve_cgroups(&rq, units, n_units, cgroup_paths, n_paths);
                if (r != 0)
                        return r;
                r = tail_line(&rq, req, sizeof(req));
                if (r != 0)
                        return r;
                return run_tail(path, req);
        }
        if (tail_opt)
                return usage("%s%s is an option of tail and follow only.",
                             tail_opt[0] == '-' ? "" : "--", tail_opt);
        change = strcmp(cmd, "attach") == 0 || strcmp(cmd, "detach") == 0;
        if (change) {
                /* attach/detach PID or UNIT (UNIT.service when it has no suffix). */
                const char *target = optind + 2 == argc ? argv[optind + 1] : NULL;
                bool unit = target && !is_number(target, 1, INT32_MAX);

                if (!target)
                        return usage("%s takes one process id or unit name.", cmd);
                for (const char *q = target; *q; q++)
                        if (!isalnum((unsigned char)*q) && !strchr(":-_.@\\", *q))
                                return usage("'%s' is not a process id or unit name.", target);
                if (strlen(target) > 200)
                        return usage("'%.32s...' is too long for a unit name.", target);
                snprintf(req, sizeof(req), "%s %s%s\n", cmd, target,
                         unit && !strchr(target, '.') ? ".service" : "");
        } else if (strcmp(cmd, "processes") == 0 && optind + 2 == argc) {
                if (!is_number(argv[optind + 1], 1, INT32_MAX))
                        return usage("processes takes one process id or nothing.");
                snprintf(req, sizeof(req), "processes %s\n", argv[optind + 1]);
        } else {
                if (optind != argc - 1)
                        return usage("one command expected.");
                if (strcmp(cmd, "status") != 0 && strcmp(cmd, "stats") != 0 &&
                    strcmp(cmd, "connections") != 0 && strcmp(cmd, "processes") != 0 &&
                    strcmp(cmd, "reload") != 0)
                        return usage("unknown command '%s'.", cmd);
                snprintf(req, sizeof(req), "%s\n", cmd);
                change = strcmp(cmd, "reload") == 0;
        }
        if (change) {
                /* Changes go to loaderd's admin socket: loaderd checks who asks itself. */
                if (snprintf(admin, sizeof(admin), "%s.admin", path) >= (int)sizeof(admin)) {
                        fprintf(stderr, "tlssniffctl: socket path too long.\n");
                        return 2;
                }
                path = admin;
        }
        fd = connect_to(path);
        if (fd < 0)
                return fd == -2 ? 2 : 1;
        /* A refusal can come, and the daemon close its side, before the request is sent:
         * read it rather than die of SIGPIPE. */
        signal(SIGPIPE, SIG_IGN);
        if (write(fd, req, strlen(req)) != (ssize_t)strlen(req) && errno != EPIPE) {
                fprintf(stderr, "tlssniffctl: cannot send the request: %m\n");
                return 1;
        }
        for (;;) {
                ssize_t k = read(fd, answer + n, sizeof(answer) - 1 - n);

                if (k <= 0)
                        break;
                n += (size_t)k;
                if (n == sizeof(answer) - 1)
                        break;
        }
        close(fd);
        answer[n] = '\0';
        if (n == 0) {
                fprintf(stderr, "tlssniffctl: no answer from tlssniff\n");
                return 1;
        }
        if (strncmp(answer, "{\"ok\":true", 10) != 0) {
                fprintf(stderr, "tlssniffctl: refused: %s", answer);
                return 1;
        }
        if (json) {
                fputs(answer, stdout);
                return 0;
        }
        if (change) {
                /* {"ok":true,"result":"what loaderd did"} */
                const char *p = strstr(answer, "\"result\":\"");

                if (!p) {
                        fprintf(stderr, "tlssniffctl: cannot read the answer: %s", answer);
                        return 1;
                }
                for (p += 10; *p && *p != '"'; p++) {
                        if (*p == '\\' && p[1])
                                p++;
                        putchar(*p);
                }
                putchar('\n');
                return 0;
        }
        if ((strcmp(cmd, "connections") == 0 ? print_connections(answer)
             : strcmp(cmd, "processes") == 0 ? print_processes(answer)
                                             : print_table(answer, cmd)) < 0) {
                fprintf(stderr, "tlssniffctl: cannot read the answer: %s", answer);
                return 1;
        }
        return 0;
}
