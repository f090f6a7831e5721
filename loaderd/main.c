/* tlssniff-loaderd: command line, then loaderd_run(). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "config.h"
#include "loaderd.h"

static void help(void)
{
        printf("Usage: tlssniff-loaderd [OPTIONS]\n"
               "\n"
               "Capture the plaintext of TLS connections made through OpenSSL by the processes\n"
               "of this host, with eBPF uprobes. Runs as root; starts an unprivileged analyzer\n"
               "(tlssniff-analyzer) that prints what is captured until SIGINT or SIGTERM.\n"
               "\n"
               "Output:\n"
               "  -j, --json               JSON lines (docs/output.md) instead of text\n"
               "  -o, --output FILE        write captured messages to FILE (default: stdout)\n"
               "      --max-print BYTES    payload bytes shown per message in text mode (512)\n"
               "  -x, --exchanges          also write HTTP/1.x request/response exchanges\n"
               "                           (docs/output.md)\n"
               "      --no-data            with --exchanges: no data messages, exchanges only\n"
               "      --body-preview BYTES body bytes kept per exchange and direction (256;\n"
               "                           at most 64K)\n"
               "      --show-secrets       do not redact Authorization, Cookie, Set-Cookie and\n"
               "                           Proxy-Authorization headers\n"
               "      --journal-exchanges  also write each exchange to the journal as a\n"
               "                           structured entry (TLSSNIFF_* fields; implies\n"
               "                           --exchanges; headers and bodies are left out)\n"
               "Targets (in the kernel; OR within a kind, AND across kinds; repeatable):\n"
               "  -p, --pid PID            only this process\n"
               "  -c, --comm NAME          only processes with this comm\n"
               "  -g, --cgroup PATH        only processes in this cgroup (v2 path) or below\n"
               "Capture:\n"
               "      --call-cap BYTES     bytes captured per TLS call, K/M/G suffixes (4M;\n"
               "                           1..64M); bytes over it are counted as truncated\n"
               "      --ringbuf-size BYTES ring buffer size, a power of two (32M; 1M..1G)\n"
               "      --syscall-hooks MODE auto: per-call system call tracepoints when tracefs\n"
               "                           can be had (mounted if needed), else raw; raw:\n"
               "                           raw sys_enter/sys_exit (every system call pays)\n"
               "      --placement MODE     auto: probes where the analysis proves them cheap\n"
               "                           (default); fallback: entry + uretprobe on every\n"
               "                           function (slower; for comparison)\n"
               "Process:\n"
               "      --analyzer PATH      analyzer binary (default: next to this one, then\n"
               "                           " TLSSNIFF_LIBEXECDIR ")\n"
               "      --user NAME          user the analyzer runs as (tlssniff; created if\n"
               "                           missing)\n"
               "      --control-socket PATH  socket for tlssniffctl (/run/tlssniff/control;\n"
               "                           \"\" for none), mode 0660 root:<the user's group>\n"
               "      --cache-dir DIR      the analyzer's Go offset cache (/var/cache/tlssniff;\n"
               "                           created, owned by the analyzer's user; \"\" for\n"
               "                           none: memory only)\n"
               "      --log-target TARGET  auto, stderr or journal (auto: journal under systemd)\n"
               "  -v, --verbose            debug logging\n"
               "  -h, --help               this help\n"
               "      --version            version\n");
}

enum { ARG_MAX_PRINT = 256, ARG_CALL_CAP, ARG_RINGBUF, ARG_ANALYZER, ARG_USER, ARG_LOG_TARGET,
       ARG_VERSION, ARG_CONTROL, ARG_PLACEMENT, ARG_NO_DATA, ARG_PREVIEW, ARG_SECRETS,
       ARG_SYSCALL_HOOKS, ARG_CACHE_DIR, ARG_JOURNAL_EXCHANGES };

static int parse_args(int argc, char **argv, struct options *o)
{
        static const struct option longopts[] = {
                { "json", no_argument, NULL, 'j' },
                { "output", required_argument, NULL, 'o' },
                { "max-print", required_argument, NULL, ARG_MAX_PRINT },
                { "pid", required_argument, NULL, 'p' },
                { "comm", required_argument, NULL, 'c' },
                { "cgroup", required_argument, NULL, 'g' },
                { "call-cap", required_argument, NULL, ARG_CALL_CAP },
                { "ringbuf-size", required_argument, NULL, ARG_RINGBUF },
                { "placement", required_argument, NULL, ARG_PLACEMENT },
                { "syscall-hooks", required_argument, NULL, ARG_SYSCALL_HOOKS },
                { "exchanges", no_argument, NULL, 'x' },
                { "no-data", no_argument, NULL, ARG_NO_DATA },
                { "body-preview", required_argument, NULL, ARG_PREVIEW },
                { "show-secrets", no_argument, NULL, ARG_SECRETS },
                { "analyzer", required_argument, NULL, ARG_ANALYZER },
                { "user", required_argument, NULL, ARG_USER },
                { "cache-dir", required_argument, NULL, ARG_CACHE_DIR },
                { "journal-exchanges", no_argument, NULL, ARG_JOURNAL_EXCHANGES },
                { "control-socket", required_argument, NULL, ARG_CONTROL },
                { "log-target", required_argument, NULL, ARG_LOG_TARGET },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {}
        };
        unsigned long long v;
        int c;

        while ((c = getopt_long(argc, argv, "jo:p:c:g:vhx", longopts, NULL)) >= 0) {
                switch (c) {
                case 'j':
                        o->json = true;
                        break;
                case 'o':
                        o->output = optarg;
                        break;
                case 'x':
                        o->exchanges = true;
                        break;
                case ARG_NO_DATA:
                        o->no_data = true;
                        break;
                case ARG_SECRETS:
                        o->show_secrets = true;
                        break;
                case ARG_PREVIEW:
                        if (parse_size(optarg, 0, 65536, &v) < 0) {
                                fprintf(stderr, "Invalid --body-preview '%s': 0..64K expected.\n",
                                        optarg);
                                return -EINVAL;
                        }
                        o->body_preview = (unsigned)v;
                        break;
                case ARG_SYSCALL_HOOKS:
                        if (strcmp(optarg, "auto") == 0)
                                o->raw_syscall_hooks = false;
                        else if (strcmp(optarg, "raw") == 0)
                                o->raw_syscall_hooks = true;
                        else {
                                fprintf(stderr, "Invalid --syscall-hooks '%s' (auto or raw).\n",
                                        optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_PLACEMENT:
                        if (strcmp(optarg, "auto") == 0)
                                o->placement_fallback = false;
                        else if (strcmp(optarg, "fallback") == 0)
                                o->placement_fallback = true;
                        else {
                                fprintf(stderr, "Invalid --placement '%s' (auto or fallback).\n",
                                        optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_MAX_PRINT:
                        if (parse_size(optarg, 0, 1u << 20, &v) < 0) {
                                fprintf(stderr, "Invalid --max-print '%s': 0..1M expected.\n",
                                        optarg);
                                return -EINVAL;
                        }
                        o->max_print = (unsigned)v;
                        break;
                case 'p':
                        if (o->n_pids >= LOADERD_FILTER_MAX ||
                            parse_u64(optarg, 1, INT32_MAX, &v) < 0) {
                                fprintf(stderr, "Invalid --pid '%s' (a process id; at most %d).\n",
                                        optarg, LOADERD_FILTER_MAX);
                                return -EINVAL;
                        }
                        o->pids[o->n_pids++] = (uint32_t)v;
                        break;
                case 'c':
                        if (o->n_comms >= LOADERD_FILTER_MAX || !*optarg ||
                            strlen(optarg) >= TLSSNIFF_COMM_LEN) {
                                fprintf(stderr,
                                        "Invalid --comm '%s' (1..15 characters; at most %d).\n",
                                        optarg, LOADERD_FILTER_MAX);
                                return -EINVAL;
                        }
                        o->comms[o->n_comms++] = optarg;
                        break;
                case 'g':
                        if (o->n_cgroups >= TLSSNIFF_FILTER_CGROUPS_MAX) {
                                fprintf(stderr, "At most %d --cgroup options.\n",
                                        TLSSNIFF_FILTER_CGROUPS_MAX);
                                return -EINVAL;
                        }
                        o->cgroups[o->n_cgroups++] = optarg;
                        break;
                case ARG_CALL_CAP:
                        if (parse_size(optarg, 1, TLSSNIFF_CALL_CAP_MAX, &o->call_cap) < 0) {
                                fprintf(stderr, "Invalid --call-cap '%s': 1..64M expected.\n",
                                        optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_RINGBUF:
                        if (parse_size(optarg, 1u << 20, 1u << 30, &o->ringbuf_size) < 0 ||
                            (o->ringbuf_size & (o->ringbuf_size - 1)) != 0) {
                                fprintf(stderr,
                                        "Invalid --ringbuf-size '%s': a power of two in 1M..1G "
                                        "expected.\n",
                                        optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_ANALYZER:
                        o->analyzer = optarg;
                        break;
                case ARG_JOURNAL_EXCHANGES:
                        o->journal_exchanges = true;
                        o->exchanges = true;
                        break;
                case ARG_CACHE_DIR:
                        if (optarg[0] && optarg[0] != '/') {
                                fprintf(stderr, "Invalid --cache-dir '%s': an absolute path, "
                                                "or \"\" for none.\n", optarg);
                                return -EINVAL;
                        }
                        o->cache_dir = optarg;
                        break;
                case ARG_USER:
                        o->user = optarg;
                        break;
                case ARG_CONTROL:
                        if (*optarg && (optarg[0] != '/' || strlen(optarg) >= 108)) {
                                fprintf(stderr, "Invalid --control-socket '%s': an absolute path "
                                                "shorter than 108 bytes, or \"\".\n", optarg);
                                return -EINVAL;
                        }
                        o->control_socket = optarg;
                        break;
                case ARG_LOG_TARGET:
                        if (log_parse_target(optarg, &o->log_target) < 0) {
                                fprintf(stderr, "Invalid --log-target '%s': auto, stderr or "
                                                "journal.\n", optarg);
                                return -EINVAL;
                        }
                        break;
                case 'v':
                        o->log_level = LOG_DEBUG;
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("tlssniff %s\n", TLSSNIFF_VERSION);
                        return 0;
                default:
                        fprintf(stderr, "Try 'tlssniff-loaderd --help'.\n");
                        return -EINVAL;
                }
        }
        if (o->no_data && !o->exchanges) {
                fprintf(stderr, "--no-data needs --exchanges (otherwise nothing is written).\n");
                return -EINVAL;
        }
        if (optind < argc) {
                fprintf(stderr, "Unexpected argument '%s'. Try 'tlssniff-loaderd --help'.\n",
                        argv[optind]);
                return -EINVAL;
        }
        return 1;
}

int main(int argc, char **argv)
{
        struct options o = {
                .max_print = 512,
                .body_preview = 256,
                .call_cap = TLSSNIFF_CALL_CAP_DEFAULT,
                .ringbuf_size = 32u << 20,
                .user = "tlssniff",
                .control_socket = "/run/tlssniff/control",
                .cache_dir = "/var/cache/tlssniff",
                .log_target = LOG_TARGET_AUTO,
                .log_level = LOG_INFO,
        };
        struct rlimit rl;
        int r;

        r = parse_args(argc, argv, &o);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        log_setup("tlssniff-loaderd", o.log_target, o.log_level);
        /* One fd per probed file: lift the soft limit to the hard one. */
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void)setrlimit(RLIMIT_NOFILE, &rl);
        }
        r = loaderd_run(&o);
        return r < 0 ? 1 : 0;
}
