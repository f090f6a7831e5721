/*
 * tlssniffctl: asks a running tlssniff over its control socket. `status` and `stats` print a
 * table for people or, with --json, the daemon's JSON answer for scripts.
 * Exit status: 0 answered, 1 the daemon refused or could not be reached, 2 bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"

static void help(void)
{
        printf("Usage: tlssniffctl [--socket PATH] [--json] COMMAND\n"
               "\n"
               "Commands:\n"
               "  status       version, uptime, files analysed, messages written\n"
               "  stats        every counter: captured calls/records/bytes, drops by reason,\n"
               "               truncation, loaderd backlog, analyzer errors\n"
               "  connections  tracked connections, most recently active first (as many as\n"
               "               fit in one answer): process, role, addresses, protocol, bytes\n"
               "  processes    files with TLS code, newest first: the OpenSSL library or Go\n"
               "               version and ABI found, the process it was found in, whether it\n"
               "               is probed (attached, failed, not probed) and why\n"
               "\n"
               "Options:\n"
               "  -s, --socket PATH   control socket (default /run/tlssniff/control)\n"
               "  -j, --json          print the daemon's JSON answer\n"
               "  -h, --help          this help\n"
               "\n"
               "Root and members of the tlssniff group may read; only root may change anything.\n"
               "Exit status: 0 answered, 1 refused or unreachable, 2 bad usage.\n");
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
        static const char *const keys[] = { "pid", "kind", "state", "probes", "library", "path",
                                            "reason" };
        const char *p = strstr(answer, "\"list\":["), *end;
        char v[7][512], analyzed[32] = "", with_tls[32] = "", shown[32] = "";

        if (!p)
                return -EBADMSG;
        field(answer, answer + strlen(answer), "files_analyzed", analyzed, sizeof(analyzed));
        field(answer, answer + strlen(answer), "files_with_tls", with_tls, sizeof(with_tls));
        field(answer, answer + strlen(answer), "shown", shown, sizeof(shown));
        printf("%-7s %-10s %-10s %6s  %-40s %s\n", "PID", "KIND", "STATE", "PROBES", "TLS",
               "FILE");
        for (p += 8; (p = strchr(p, '{')) && (end = strchr(p, '}')); p = end) {
                for (size_t i = 0; i < 7; i++)
                        field(p, end, keys[i], v[i], sizeof(v[i]));
                printf("%-7s %-10s %-10s %6s  %-40s %s\n        %s\n", v[0], v[1], v[2], v[3],
                       v[4], v[5], v[6]);
        }
        printf("%s of %s files with TLS shown (%s files analysed; the process is the one each "
               "file was found in)\n",
               shown, with_tls, analyzed);
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "socket", required_argument, NULL, 's' },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        const char *path = "/run/tlssniff/control", *cmd;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char req[64], answer[65536];
        size_t n = 0;
        bool json = false;
        int c, fd;

        while ((c = getopt_long(argc, argv, "s:jh", longopts, NULL)) >= 0) {
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
                default:
                        fprintf(stderr, "Try 'tlssniffctl --help'.\n");
                        return 2;
                }
        }
        if (optind != argc - 1) {
                fprintf(stderr, "tlssniffctl: one command expected. Try 'tlssniffctl --help'.\n");
                return 2;
        }
        cmd = argv[optind];
        if (strcmp(cmd, "status") != 0 && strcmp(cmd, "stats") != 0 &&
            strcmp(cmd, "connections") != 0 && strcmp(cmd, "processes") != 0) {
                fprintf(stderr, "tlssniffctl: unknown command '%s'. Try 'tlssniffctl --help'.\n",
                        cmd);
                return 2;
        }
        if (strlen(path) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "tlssniffctl: socket path too long.\n");
                return 2;
        }
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                fprintf(stderr, "tlssniffctl: cannot reach tlssniff at %s: %m\n", path);
                return 1;
        }
        snprintf(req, sizeof(req), "%s\n", cmd);
        if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
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
        if ((strcmp(cmd, "connections") == 0 ? print_connections(answer)
             : strcmp(cmd, "processes") == 0 ? print_processes(answer)
                                             : print_table(answer, cmd)) < 0) {
                fprintf(stderr, "tlssniffctl: cannot read the answer: %s", answer);
                return 1;
        }
        return 0;
}
