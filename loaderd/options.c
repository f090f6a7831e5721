/* loaderd's settings from the configuration file and the command line; see options.h. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "events.h"
#include "macro.h"
#include "options.h"

#define CONFIG_FILE_MAX (1u << 20)

enum {
        OPT_JSON = 'j',
        OPT_OUTPUT = 'o',
        OPT_PID = 'p',
        OPT_COMM = 'c',
        OPT_CGROUP = 'g',
        OPT_VERBOSE = 'v',
        OPT_HELP = 'h',
        OPT_EXCHANGES = 'x',
        OPT_MAX_PRINT = 256,
        OPT_CALL_CAP,
        OPT_RINGBUF,
        OPT_ANALYZER,
        OPT_PLANNER,
        OPT_DATA_GROUP,
        OPT_USER,
        OPT_BATCH_SCHEDULING,
        OPT_LOG_TARGET,
        OPT_VERSION,
        OPT_CONTROL,
        OPT_PLACEMENT,
        OPT_PROBE_SCOPE,
        OPT_NO_DATA,
        OPT_PREVIEW,
        OPT_SECRETS,
        OPT_SYSCALL_HOOKS,
        OPT_UPROBE_SESSIONS,
        OPT_DIRECT_READ,
        OPT_CACHE_DIR,
        OPT_JOURNAL_EXCHANGES,
        OPT_UNIT,
        OPT_REDACT,
        OPT_REDACT_PARAM,
        OPT_CONFIG,
        OPT_CHECK_CONFIG,
};

/* A setting: its option name (= its key in the file), its section (NULL: command line only). */
struct setting {
        const char *name;
        const char *section;
        int code;
        bool flag; /* a yes/no switch: --name, --name=no, "name = yes" */
        bool target;
};

static const struct setting settings[] = {
        { "pid", "targets", OPT_PID, false, true },
        { "comm", "targets", OPT_COMM, false, true },
        { "cgroup", "targets", OPT_CGROUP, false, true },
        { "unit", "targets", OPT_UNIT, false, true },
        { "call-cap", "capture", OPT_CALL_CAP, false, false },
        { "ringbuf-size", "capture", OPT_RINGBUF, false, false },
        { "placement", "capture", OPT_PLACEMENT, false, false },
        { "probe-scope", "capture", OPT_PROBE_SCOPE, false, false },
        { "syscall-hooks", "capture", OPT_SYSCALL_HOOKS, false, false },
        { "uprobe-sessions", "capture", OPT_UPROBE_SESSIONS, true, false },
        { "direct-read", "capture", OPT_DIRECT_READ, true, false },
        { "json", "output", OPT_JSON, true, false },
        { "output", "output", OPT_OUTPUT, false, false },
        { "max-print", "output", OPT_MAX_PRINT, false, false },
        { "exchanges", "output", OPT_EXCHANGES, true, false },
        { "no-data", "output", OPT_NO_DATA, true, false },
        { "body-preview", "output", OPT_PREVIEW, false, false },
        { "journal-exchanges", "output", OPT_JOURNAL_EXCHANGES, true, false },
        { "show-secrets", "redaction", OPT_SECRETS, true, false },
        { "redact-header", "redaction", OPT_REDACT, false, false },
        { "redact-param", "redaction", OPT_REDACT_PARAM, false, false },
        { "analyzer", "service", OPT_ANALYZER, false, false },
        { "planner", "service", OPT_PLANNER, false, false },
        { "user", "service", OPT_USER, false, false },
        { "data-group", "service", OPT_DATA_GROUP, false, false },
        { "batch-scheduling", "service", OPT_BATCH_SCHEDULING, true, false },
        { "control-socket", "service", OPT_CONTROL, false, false },
        { "cache-dir", "service", OPT_CACHE_DIR, false, false },
        { "log-target", "service", OPT_LOG_TARGET, false, false },
        { "verbose", "service", OPT_VERBOSE, true, false },
        { "config", NULL, OPT_CONFIG, false, false },
        { "check-config", NULL, OPT_CHECK_CONFIG, true, false },
        { "help", NULL, OPT_HELP, true, false },
        { "version", NULL, OPT_VERSION, true, false },
};

void options_help(void)
{
        printf("Usage: tlssniff-loaderd [OPTIONS]\n"
               "\n"
               "Capture the plaintext of TLS connections made through OpenSSL or Go's crypto/tls\n"
               "by the processes of this host, with eBPF uprobes. Runs as root; starts an\n"
               "unprivileged analyzer (tlssniff-analyzer) that prints what is captured until\n"
               "SIGINT or SIGTERM; SIGHUP re-reads the configuration.\n"
               "\n"
               "Settings come from " TLSSNIFF_CONFIG_FILE " (when it exists;\n"
               "tlssniff.conf(5)), then from these options, which override it. Switches take\n"
               "=yes or =no (--exchanges=no undoes \"exchanges = yes\" in the file).\n"
               "\n"
               "Output:\n"
               "  -j, --json               JSON lines (docs/output.md) instead of text\n"
               "  -o, --output FILE        write captured messages to FILE (default: stdout)\n"
               "      --max-print BYTES    payload bytes shown per message in text mode (512)\n"
               "  -x, --exchanges          also write HTTP/1.x, HTTP/2 and gRPC request/response\n"
               "                           exchanges (docs/output.md)\n"
               "      --no-data            with --exchanges: no data messages, exchanges only\n"
               "      --body-preview BYTES body bytes kept per exchange and direction (256;\n"
               "                           at most 64K)\n"
               "      --show-secrets       redact nothing: neither the Authorization, Cookie,\n"
               "                           Set-Cookie and Proxy-Authorization headers nor the\n"
               "                           values of sensitive query parameters and form or\n"
               "                           JSON fields (token, password, ...: docs/output.md)\n"
               "      --redact-header NAME redact this header too (repeatable, at most %d)\n"
               "      --redact-param NAME  redact this query parameter or form/JSON field too\n"
               "                           (repeatable, at most %d)\n"
               "      --journal-exchanges  also write each exchange to the journal as a\n"
               "                           structured entry (TLSSNIFF_* fields; implies\n"
               "                           --exchanges; headers and bodies are left out)\n"
               "Targets (in the kernel; OR within a kind, AND across kinds; repeatable; any\n"
               "target given here replaces all targets of the configuration file):\n"
               "  -p, --pid PID            only this process\n"
               "  -c, --comm NAME          only processes with this comm\n"
               "  -g, --cgroup PATH        only processes in this cgroup (v2 path) or below\n"
               "      --unit UNIT          only processes of this systemd unit (its cgroup,\n"
               "                           followed when the unit starts or restarts)\n"
               "Capture:\n"
               "      --call-cap BYTES     bytes captured per TLS call, K/M/G suffixes (4M;\n"
               "                           1..64M); bytes over it are counted as truncated\n"
               "      --ringbuf-size BYTES each CPU's data ring buffer, a power of two (1M..1G;\n"
               "                           default 16M / CPUs, 1M..4M)\n"
               "      --syscall-hooks MODE auto: socket tracepoints for socket identity where\n"
               "                           the kernel has them, per-call system call\n"
               "                           tracepoints for mmap (tracefs, mounted if needed);\n"
               "                           per-call: those for both; raw: raw sys_enter/\n"
               "                           sys_exit (every system call pays)\n"
               "      --uprobe-sessions[=no]\n"
               "                           an uprobe and the uretprobe at the same place as\n"
               "                           one uprobe session where the kernel has them (yes),\n"
               "                           so calls of processes filtered out skip the return\n"
               "                           probe; no: always a separate uprobe and uretprobe\n"
               "      --direct-read[=no]   read the plaintext straight into the ring buffer\n"
               "                           where the kernel can (bpf_probe_read_user_dynptr,\n"
               "                           Linux 6.16+; yes); no: through a per-CPU scratch\n"
               "                           buffer (faster, but not safe on a preemptible kernel)\n"
               "      --placement MODE     auto: probes where the analysis proves them cheap\n"
               "                           (default); fallback: entry + uretprobe on every\n"
               "                           function (slower; for comparison)\n"
               "      --probe-scope MODE   auto: when the targets are process ids only (at\n"
               "                           most 16), probes in those processes alone, so no\n"
               "                           other process hits them (default); all: in every\n"
               "                           process, the targets checked on each hit\n"
               "Service:\n"
               "      --config FILE        read FILE instead of " TLSSNIFF_CONFIG_FILE "\n"
               "                           (\"\" for none); it must exist\n"
               "      --check-config       check the configuration and options, then exit\n"
               "                           (0: good; 2: the error is printed)\n"
               "      --analyzer PATH      analyzer binary (default: next to this one, then\n"
               "                           " TLSSNIFF_LIBEXECDIR ")\n"
               "      --planner PATH       binary of the planners, one per traced file, that\n"
               "                           plan its probes (tlssniff-analyzer --plan;\n"
               "                           default: found as --analyzer's default, whatever\n"
               "                           --analyzer says)\n"
               "      --user NAME          user the analyzer runs as (tlssniff; created if\n"
               "                           missing)\n"
               "      --data-group NAME    members of this group may tail raw data\n"
               "                           (tlssniffctl tail --data; tlssniff-data; \"\" for\n"
               "                           root only); the others of group tlssniff see\n"
               "                           exchanges and connections only\n"
               "      --batch-scheduling[=no]\n"
               "                           yes: loaderd and the analyzer run with the\n"
               "                           SCHED_BATCH policy (waking up, they do not preempt\n"
               "                           the programs they trace); no (default): the\n"
               "                           policy they were started with\n"
               "      --control-socket PATH  socket for tlssniffctl (/run/tlssniff/control;\n"
               "                           \"\" for none), mode 0660 root:<the user's group>;\n"
               "                           PATH.admin takes attach, detach and reload from\n"
               "                           root only (mode 0600, served by loaderd itself)\n"
               "      --cache-dir DIR      the analyzer's Go offset cache (/var/cache/tlssniff;\n"
               "                           created, owned by the analyzer's user; \"\" for\n"
               "                           none: memory only)\n"
               "      --log-target TARGET  auto, stderr or journal (auto: journal under systemd)\n"
               "  -v, --verbose            debug logging\n"
               "  -h, --help               this help\n"
               "      --version            version\n"
               "\n"
               "Exit status: 0 stopped by a signal after a clean run, 1 a failure while running,\n"
               "2 bad options or configuration.\n",
               OPTIONS_REDACT_MAX, OPTIONS_REDACT_MAX);
}

void options_defaults(struct options *o)
{
        *o = (struct options){
                .max_print = 512,
                .body_preview = 256,
                .call_cap = TLSSNIFF_CALL_CAP_DEFAULT,
                .ringbuf_size = 0, /* options_data_ring_size() */
                .user = "tlssniff",
                .data_group = "tlssniff-data",
                .control_socket = "/run/tlssniff/control",
                .cache_dir = "/var/cache/tlssniff",
                .log_target = LOG_TARGET_AUTO,
                .log_level = LOG_INFO,
                .uprobe_sessions = true,
                .direct_read = true,
                .batch_scheduling = false,
        };
}

void options_free(struct options *o)
{
        for (unsigned i = 0; i < o->n_owned; i++)
                free(o->owned[i]);
        free(o->owned);
        o->owned = NULL;
        o->n_owned = o->cap_owned = 0;
}

static int fail(char *err, size_t err_size, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t err_size, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

/* A copy of s owned by o. */
const char *options_keep(struct options *o, const char *s)
{
        char *c;

        if (!s)
                return NULL;
        if (o->n_owned == o->cap_owned) {
                unsigned cap = o->cap_owned ? o->cap_owned * 2 : 16;
                char **n = realloc(o->owned, cap * sizeof(*n));

                if (!n)
                        return NULL;
                o->owned = n;
                o->cap_owned = cap;
        }
        c = strdup(s);
        if (c)
                o->owned[o->n_owned++] = c;
        return c;
}

static int parse_bool(const char *s, bool *ret)
{
        static const char *const yes[] = { "yes", "true", "on", "1" };
        static const char *const no[] = { "no", "false", "off", "0" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

/* A systemd unit name: [A-Za-z0-9:_.@-\\], a known suffix, at most 255 bytes. */
bool options_valid_unit(const char *s)
{
        static const char *const suffixes[] = { ".service", ".scope", ".slice", ".socket" };
        size_t n = strlen(s);
        bool suffix = false;

        if (n == 0 || n > 255)
                return false;
        for (const char *p = s; *p; p++)
                if (!isalnum((unsigned char)*p) && !strchr(":-_.@\\", *p))
                        return false;
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                size_t k = strlen(suffixes[i]);

                suffix = suffix || (n > k && strcmp(s + n - k, suffixes[i]) == 0);
        }
        return suffix;
}

/* An HTTP header name (a token), at most 64 bytes. */
static bool valid_header(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > 64)
                return false;
        for (const char *p = s; *p; p++)
                if (!isalnum((unsigned char)*p) && !strchr("!#$%&'*+-.^_`|~", *p))
                        return false;
        return true;
}

/* One setting; arg is NULL for a switch given without a value. Message without a prefix. */
static int apply(struct options *o, const struct setting *s, const char *arg, char *err,
                 size_t err_size)
{
        unsigned long long v;
        bool on = true;
        const char *copy = NULL;

        if (s->flag && arg && parse_bool(arg, &on) < 0)
                return fail(err, err_size, "'%s' is not yes or no", arg);
        if (!s->flag) {
                if (!arg)
                        return fail(err, err_size, "a value is needed");
                copy = options_keep(o, arg);
                if (!copy)
                        return -ENOMEM;
        }
        switch (s->code) {
        case OPT_JSON:
                o->json = on;
                break;
        case OPT_OUTPUT:
                /* "" or "-": standard output. */
                o->output = *arg && strcmp(arg, "-") != 0 ? copy : NULL;
                break;
        case OPT_EXCHANGES:
                o->exchanges = on;
                break;
        case OPT_UPROBE_SESSIONS:
                o->uprobe_sessions = on;
                break;
        case OPT_DIRECT_READ:
                o->direct_read = on;
                break;
        case OPT_NO_DATA:
                o->no_data = on;
                break;
        case OPT_SECRETS:
                o->show_secrets = on;
                break;
        case OPT_JOURNAL_EXCHANGES:
                o->journal_exchanges = on;
                break;
        case OPT_VERBOSE:
                o->log_level = on ? LOG_DEBUG : LOG_INFO;
                break;
        case OPT_CHECK_CONFIG:
                o->check_config = on;
                break;
        case OPT_PREVIEW:
                if (parse_size(arg, 0, 65536, &v) < 0)
                        return fail(err, err_size, "'%s' is not a size in 0..64K", arg);
                o->body_preview = (unsigned)v;
                break;
        case OPT_SYSCALL_HOOKS:
                if (strcmp(arg, "auto") == 0)
                        o->syscall_hooks = SYSCALL_HOOKS_AUTO;
                else if (strcmp(arg, "per-call") == 0)
                        o->syscall_hooks = SYSCALL_HOOKS_PER_CALL;
                else if (strcmp(arg, "raw") == 0)
                        o->syscall_hooks = SYSCALL_HOOKS_RAW;
                else
                        return fail(err, err_size, "'%s' is not auto, per-call or raw", arg);
                break;
        case OPT_PLACEMENT:
                if (strcmp(arg, "auto") != 0 && strcmp(arg, "fallback") != 0)
                        return fail(err, err_size, "'%s' is not auto or fallback", arg);
                o->placement_fallback = strcmp(arg, "fallback") == 0;
                break;
        case OPT_PROBE_SCOPE:
                if (strcmp(arg, "auto") != 0 && strcmp(arg, "all") != 0)
                        return fail(err, err_size, "'%s' is not auto or all", arg);
                o->probe_scope_all = strcmp(arg, "all") == 0;
                break;
        case OPT_MAX_PRINT:
                if (parse_size(arg, 0, 1u << 20, &v) < 0)
                        return fail(err, err_size, "'%s' is not a size in 0..1M", arg);
                o->max_print = (unsigned)v;
                break;
        case OPT_PID:
                if (parse_u64(arg, 1, INT32_MAX, &v) < 0)
                        return fail(err, err_size, "'%s' is not a process id", arg);
                if (o->n_pids >= LOADERD_FILTER_MAX)
                        return fail(err, err_size, "more than %d pids", LOADERD_FILTER_MAX);
                o->pids[o->n_pids++] = (uint32_t)v;
                break;
        case OPT_COMM:
                if (!*arg || strlen(arg) >= TLSSNIFF_COMM_LEN)
                        return fail(err, err_size, "'%s' is not 1..15 characters", arg);
                if (o->n_comms >= LOADERD_FILTER_MAX)
                        return fail(err, err_size, "more than %d names", LOADERD_FILTER_MAX);
                o->comms[o->n_comms++] = copy;
                break;
        case OPT_CGROUP:
                if (arg[0] != '/')
                        return fail(err, err_size, "'%s' is not an absolute path", arg);
                if (o->n_cgroups >= TLSSNIFF_FILTER_CGROUPS_MAX)
                        return fail(err, err_size, "more than %d cgroups",
                                    TLSSNIFF_FILTER_CGROUPS_MAX);
                o->cgroups[o->n_cgroups++] = copy;
                break;
        case OPT_UNIT:
                if (!options_valid_unit(arg))
                        return fail(err, err_size,
                                    "'%s' is not a unit name (like nginx.service)", arg);
                if (o->n_units >= OPTIONS_UNITS_MAX)
                        return fail(err, err_size, "more than %d units", OPTIONS_UNITS_MAX);
                o->units[o->n_units++] = copy;
                break;
        case OPT_REDACT:
        case OPT_REDACT_PARAM: {
                bool header = s->code == OPT_REDACT;
                const char **names = header ? o->redact : o->redact_params;
                unsigned *n = header ? &o->n_redact : &o->n_redact_params;

                if (!valid_header(arg))
                        return fail(err, err_size, "'%s' is not a %s name", arg,
                                    header ? "header" : "parameter");
                if (*n >= OPTIONS_REDACT_MAX)
                        return fail(err, err_size, "more than %d %ss", OPTIONS_REDACT_MAX,
                                    header ? "header" : "parameter");
                names[(*n)++] = copy;
                break;
        }
        case OPT_CALL_CAP:
                if (parse_size(arg, 1, TLSSNIFF_CALL_CAP_MAX, &o->call_cap) < 0)
                        return fail(err, err_size, "'%s' is not a size in 1..64M", arg);
                break;
        case OPT_RINGBUF:
                if (parse_size(arg, 1u << 20, 1u << 30, &v) < 0 || (v & (v - 1)) != 0)
                        return fail(err, err_size, "'%s' is not a power of two in 1M..1G", arg);
                o->ringbuf_size = v;
                break;
        case OPT_ANALYZER:
                if (arg[0] != '/' && strchr(arg, '/') == NULL && *arg)
                        return fail(err, err_size, "'%s' is not a path", arg);
                o->analyzer = *arg ? copy : NULL;
                break;
        case OPT_PLANNER:
                if (arg[0] != '/' && strchr(arg, '/') == NULL && *arg)
                        return fail(err, err_size, "'%s' is not a path", arg);
                o->planner = *arg ? copy : NULL;
                break;
        case OPT_BATCH_SCHEDULING:
                o->batch_scheduling = on;
                break;
        case OPT_DATA_GROUP:
                o->data_group = copy;
                break;
        case OPT_USER:
                if (!*arg)
                        return fail(err, err_size, "a user name is needed");
                o->user = copy;
                break;
        case OPT_CACHE_DIR:
                if (arg[0] && arg[0] != '/')
                        return fail(err, err_size, "'%s' is not an absolute path or \"\"", arg);
                o->cache_dir = copy;
                break;
        case OPT_CONTROL:
                if (*arg && (arg[0] != '/' || strlen(arg) >= 108))
                        return fail(err, err_size,
                                    "'%s' is not an absolute path shorter than 108 bytes, or "
                                    "\"\"",
                                    arg);
                o->control_socket = copy;
                break;
        case OPT_LOG_TARGET:
                if (log_parse_target(arg, &o->log_target) < 0)
                        return fail(err, err_size, "'%s' is not auto, stderr or journal", arg);
                break;
        case OPT_CONFIG:
                o->config = *arg ? copy : NULL;
                break;
        default:
                return fail(err, err_size, "not a setting");
        }
        return 0;
}

static void clear_targets(struct options *o)
{
        o->n_pids = o->n_comms = o->n_cgroups = o->n_units = 0;
}

static char *trim(char *s)
{
        char *e;

        while (*s == ' ' || *s == '\t')
                s++;
        e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
                *--e = '\0';
        return s;
}

int options_parse_config(struct options *o, const char *name, const char *text, size_t n,
                         char *err, size_t err_size)
{
        char line[OPTIONS_LINE_MAX + 1], section[32] = "", msg[OPTIONS_ERROR_MAX];
        unsigned lineno = 0;
        size_t pos = 0;

        if (n >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
                pos = 3; /* a UTF-8 byte order mark */
        while (pos < n) {
                const char *nl = memchr(text + pos, '\n', n - pos);
                size_t len = nl ? (size_t)(nl - (text + pos)) : n - pos;
                const struct setting *s = NULL;
                char *p, *eq, *key, *value;
                int r;

                lineno++;
                if (len > OPTIONS_LINE_MAX)
                        return fail(err, err_size, "%s:%u: line longer than %u bytes", name,
                                    lineno, OPTIONS_LINE_MAX);
                if (memchr(text + pos, '\0', len))
                        return fail(err, err_size, "%s:%u: NUL byte", name, lineno);
                memcpy(line, text + pos, len);
                line[len] = '\0';
                pos += len + (nl != NULL);
                for (size_t i = 0; i < len; i++)
                        if ((unsigned char)line[i] < 0x20 && line[i] != '\t' && line[i] != '\r')
                                return fail(err, err_size, "%s:%u: control character", name,
                                            lineno);
                p = trim(line);
                if (*p == '\0' || *p == '#' || *p == ';')
                        continue;
                if (*p == '[') {
                        char *end = strchr(p, ']');
                        bool known = false;

                        if (!end || *trim(end + 1) != '\0')
                                return fail(err, err_size, "%s:%u: expected [section]", name,
                                            lineno);
                        *end = '\0';
                        p = trim(p + 1);
                        for (size_t i = 0; i < ELEMENTSOF(settings); i++)
                                known = known ||
                                        (settings[i].section && strcmp(settings[i].section, p) == 0);
                        if (!known)
                                return fail(err, err_size,
                                            "%s:%u: unknown section [%.32s] (targets, capture, "
                                            "output, redaction, service)",
                                            name, lineno, p);
                        snprintf(section, sizeof(section), "%s", p);
                        continue;
                }
                eq = strchr(p, '=');
                if (!eq)
                        return fail(err, err_size, "%s:%u: expected key = value", name, lineno);
                *eq = '\0';
                key = trim(p);
                value = trim(eq + 1);
                if (!section[0])
                        return fail(err, err_size, "%s:%u: '%.64s' before any [section]", name,
                                    lineno, key);
                /* "..." keeps the value as written (an empty one, spaces at the ends). */
                if (value[0] == '"') {
                        size_t k = strlen(value);

                        if (k < 2 || value[k - 1] != '"' || memchr(value + 1, '"', k - 2))
                                return fail(err, err_size, "%s:%u: unbalanced quotes", name,
                                            lineno);
                        value[k - 1] = '\0';
                        value++;
                }
                for (size_t i = 0; i < ELEMENTSOF(settings); i++)
                        if (settings[i].section && strcmp(settings[i].name, key) == 0)
                                s = &settings[i];
                if (!s)
                        return fail(err, err_size, "%s:%u: unknown key '%.64s'", name, lineno,
                                    key);
                if (strcmp(s->section, section) != 0)
                        return fail(err, err_size, "%s:%u: '%s' belongs in [%s], not [%s]", name,
                                    lineno, key, s->section, section);
                r = apply(o, s, value, msg, sizeof(msg));
                if (r == -ENOMEM)
                        return fail(err, err_size, "%s:%u: out of memory", name, lineno);
                if (r < 0)
                        return fail(err, err_size, "%s:%u: %s: %s", name, lineno, key, msg);
        }
        return 0;
}

static int read_config(struct options *o, const char *path, bool missing_ok, char *err,
                       size_t err_size)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        _cleanup_free_ char *text = NULL;
        struct stat st;
        size_t n = 0;

        if (fd < 0) {
                if (errno == ENOENT && missing_ok) {
                        o->config = NULL;
                        return 0;
                }
                return fail(err, err_size, "%s: %s", path, strerror(errno));
        }
        if (fstat(fd, &st) < 0)
                return fail(err, err_size, "%s: %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return fail(err, err_size, "%s: not a regular file", path);
        if (st.st_size > CONFIG_FILE_MAX)
                return fail(err, err_size, "%s: larger than %u bytes", path, CONFIG_FILE_MAX);
        text = malloc((size_t)st.st_size + 1);
        if (!text)
                return -ENOMEM;
        while (n < (size_t)st.st_size) {
                ssize_t k = read(fd, text + n, (size_t)st.st_size - n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return fail(err, err_size, "%s: %s", path, strerror(errno));
                if (k == 0)
                        break;
                n += (size_t)k;
        }
        return options_parse_config(o, path, text, n, err, err_size);
}

int options_load(struct options *o, int argc, char **argv, char *err, size_t err_size)
{
        struct option longopts[ELEMENTSOF(settings) + 1] = {};
        const char *config = TLSSNIFF_CONFIG_FILE;
        bool explicit_config = false, cli_targets = false;
        int c, r;

        options_defaults(o);
        for (size_t i = 0; i < ELEMENTSOF(settings); i++)
                longopts[i] = (struct option){ settings[i].name,
                                               settings[i].flag ? optional_argument
                                                                : required_argument,
                                               NULL, settings[i].code };
        opterr = 0;
        /* First pass: which file, and the requests that need none. */
        optind = 0;
        while ((c = getopt_long(argc, argv, "jo:p:c:g:vhx", longopts, NULL)) >= 0) {
                if (c == OPT_CONFIG) {
                        config = optarg;
                        explicit_config = true;
                } else if (c == OPT_HELP) {
                        options_help();
                        return OPTIONS_EXIT;
                } else if (c == OPT_VERSION) {
                        printf("tlssniff %s\n", TLSSNIFF_VERSION);
                        return OPTIONS_EXIT;
                }
        }
        if (config[0]) {
                const char *copy = options_keep(o, config);

                if (!copy)
                        return -ENOMEM;
                o->config = copy;
                r = read_config(o, copy, !explicit_config, err, err_size);
                if (r < 0)
                        return r;
        }
        /* Second pass: the command line over the file. */
        optind = 0;
        while ((c = getopt_long(argc, argv, "jo:p:c:g:vhx", longopts, NULL)) >= 0) {
                const struct setting *s = NULL;
                char msg[OPTIONS_ERROR_MAX];

                if (c == '?' || c == ':')
                        return fail(err, err_size, "Unknown or incomplete option '%s'. Try "
                                                   "'tlssniff-loaderd --help'.",
                                    argv[optind - 1]);
                for (size_t i = 0; i < ELEMENTSOF(settings); i++)
                        if (settings[i].code == c)
                                s = &settings[i];
                if (!s || c == OPT_CONFIG)
                        continue;
                if (s->target && !cli_targets) {
                        clear_targets(o);
                        cli_targets = true;
                }
                r = apply(o, s, optarg, msg, sizeof(msg));
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return fail(err, err_size, "Invalid --%s: %s.", s->name, msg);
        }
        if (optind < argc)
                return fail(err, err_size, "Unexpected argument '%s'. Try 'tlssniff-loaderd "
                                           "--help'.",
                            argv[optind]);
        if (o->n_cgroups + o->n_units > TLSSNIFF_FILTER_CGROUPS_MAX)
                return fail(err, err_size, "At most %d cgroups and units together.",
                            TLSSNIFF_FILTER_CGROUPS_MAX);
        if (o->journal_exchanges)
                o->exchanges = true;
        if (o->no_data && !o->exchanges)
                return fail(err, err_size, "no-data needs exchanges (otherwise nothing is "
                                           "written).");
        return OPTIONS_RUN;
}

unsigned long long options_data_ring_size(const struct options *o, unsigned ncpu)
{
        unsigned long long size = 4u << 20;

        if (o->ringbuf_size)
                return o->ringbuf_size;
        while (size > (1u << 20) && size * ncpu > (16u << 20))
                size >>= 1;
        return size;
}
