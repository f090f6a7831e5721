/* tlssniff-analyzer: started by tlssniff-loaderd, never by hand; reads frames on --fd. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "analyzer.h"
#include "config.h"
#include "log.h"

static void help(void)
{
        printf("Usage: tlssniff-analyzer --fd=N [--control-fd=N] [--json] [--max-print BYTES]\n"
               "                         [--log-target T] [--log-level N]\n"
               "\n"
               "The unprivileged half of tlssniff, started by tlssniff-loaderd with the socket\n"
               "to it as fd N. Not meant to be run by hand.\n");
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "fd", required_argument, NULL, 'f' },
                { "control-fd", required_argument, NULL, 'C' },
                { "json", no_argument, NULL, 'j' },
                { "max-print", required_argument, NULL, 'm' },
                { "log-target", required_argument, NULL, 't' },
                { "log-level", required_argument, NULL, 'l' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        struct analyzer_options o = { .fd = -1, .control_fd = -1, .max_print = 512 };
        enum log_target target = LOG_TARGET_AUTO;
        unsigned long long v;
        int level = LOG_INFO;
        struct analyzer a;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", longopts, NULL)) >= 0) {
                switch (c) {
                case 'f':
                        if (parse_u64(optarg, 0, 1024, &v) < 0) {
                                fprintf(stderr, "Invalid --fd '%s'.\n", optarg);
                                return 2;
                        }
                        o.fd = (int)v;
                        break;
                case 'C':
                        if (parse_u64(optarg, 0, 1024, &v) < 0) {
                                fprintf(stderr, "Invalid --control-fd '%s'.\n", optarg);
                                return 2;
                        }
                        o.control_fd = (int)v;
                        break;
                case 'j':
                        o.json = true;
                        break;
                case 'm':
                        if (parse_u64(optarg, 0, 1u << 20, &v) < 0) {
                                fprintf(stderr, "Invalid --max-print '%s'.\n", optarg);
                                return 2;
                        }
                        o.max_print = (unsigned)v;
                        break;
                case 't':
                        if (log_parse_target(optarg, &target) < 0) {
                                fprintf(stderr, "Invalid --log-target '%s'.\n", optarg);
                                return 2;
                        }
                        break;
                case 'l':
                        if (parse_u64(optarg, 0, 7, &v) < 0) {
                                fprintf(stderr, "Invalid --log-level '%s'.\n", optarg);
                                return 2;
                        }
                        level = (int)v;
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        return 2;
                }
        }
        if (o.fd < 0) {
                fprintf(stderr, "tlssniff-analyzer: --fd is required. It is started by "
                                "tlssniff-loaderd.\n");
                return 2;
        }
        log_setup("tlssniff-analyzer", target, level);
        signal(SIGINT, SIG_IGN); /* the stream ends when loaderd closes it */
        signal(SIGPIPE, SIG_IGN);
        analyzer_init(&a, &o);
        r = analyzer_run(&a);
        analyzer_done(&a);
        return r < 0 ? 1 : 0;
}
