/* The analyzer's command line, also used for the options a reload sends (L_CONFIG). */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "analyzer.h"
#include "macro.h"

static int bad(char *err, size_t err_size, const char *what, const char *arg)
{
        snprintf(err, err_size, "Invalid --%s '%.64s'.", what, arg ? arg : "");
        return -EINVAL;
}

/* A header or parameter name (an HTTP token) added to names; false when it is not one or
 * there is no room. */
static bool add_name(char names[][OUTPUT_HEADER_NAME_MAX + 1], unsigned *n, const char *name)
{
        size_t k = strlen(name);
        bool ok = k > 0 && k <= OUTPUT_HEADER_NAME_MAX && *n < OUTPUT_REDACT_MAX;

        for (size_t i = 0; ok && i < k; i++)
                ok = isalnum((unsigned char)name[i]) || strchr("!#$%&'*+-.^_`|~", name[i]);
        if (ok)
                memcpy(names[(*n)++], name, k + 1);
        return ok;
}

int analyzer_parse_options(int argc, char **argv, struct analyzer_options *o,
                           struct analyzer_cli *cli, char *err, size_t err_size)
{
        static const struct option longopts[] = {
                { "fd", required_argument, NULL, 'f' },
                { "control-fd", required_argument, NULL, 'C' },
                { "json", no_argument, NULL, 'j' },
                { "max-print", required_argument, NULL, 'm' },
                { "placement", required_argument, NULL, 'p' },
                { "analyze", required_argument, NULL, 'a' },
                { "plan", required_argument, NULL, 'L' },
                { "plan-name", required_argument, NULL, 'N' },
                { "exchanges", no_argument, NULL, 'x' },
                { "no-data", no_argument, NULL, 'n' },
                { "show-secrets", no_argument, NULL, 'S' },
                { "redact-header", required_argument, NULL, 'R' },
                { "redact-param", required_argument, NULL, 'P' },
                { "body-preview", required_argument, NULL, 'b' },
                { "journal-exchanges", no_argument, NULL, 'J' },
                { "data-gid", required_argument, NULL, 'D' },
                { "log-target", required_argument, NULL, 't' },
                { "log-level", required_argument, NULL, 'l' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        unsigned long long v;
        int c;

        *o = (struct analyzer_options){ .fd = -1, .control_fd = -1, .max_print = 512,
                                        .preview = 256, .log_level = LOG_INFO,
                                        .data_gid = (gid_t)-1 };
        *cli = (struct analyzer_cli){ .target = LOG_TARGET_AUTO };
        opterr = 0;
        optind = 0;
        while ((c = getopt_long(argc, argv, "h", longopts, NULL)) >= 0) {
                switch (c) {
                case 'f':
                        if (parse_u64(optarg, 0, 1024, &v) < 0)
                                return bad(err, err_size, "fd", optarg);
                        o->fd = (int)v;
                        break;
                case 'C':
                        if (parse_u64(optarg, 0, 1024, &v) < 0)
                                return bad(err, err_size, "control-fd", optarg);
                        o->control_fd = (int)v;
                        break;
                case 'j':
                        o->json = true;
                        break;
                case 'm':
                        if (parse_u64(optarg, 0, 1u << 20, &v) < 0)
                                return bad(err, err_size, "max-print", optarg);
                        o->max_print = (unsigned)v;
                        break;
                case 'a':
                        cli->analyze = optarg;
                        break;
                case 'L':
                        if (parse_u64(optarg, 1, UINT32_MAX, &v) < 0)
                                return bad(err, err_size, "plan", optarg);
                        cli->plan_file_id = (uint32_t)v;
                        break;
                case 'N':
                        cli->plan_name = optarg;
                        break;
                case 'x':
                        o->exchanges = true;
                        break;
                case 'n':
                        o->no_data = true;
                        break;
                case 'S':
                        o->show_secrets = true;
                        break;
                case 'R':
                        if (!add_name(o->redact.names, &o->redact.n, optarg))
                                return bad(err, err_size, "redact-header", optarg);
                        break;
                case 'P':
                        if (!add_name(o->redact.params, &o->redact.n_params, optarg))
                                return bad(err, err_size, "redact-param", optarg);
                        break;
                case 'b':
                        if (parse_u64(optarg, 0, EXCHANGE_PREVIEW_MAX, &v) < 0)
                                return bad(err, err_size, "body-preview", optarg);
                        o->preview = (unsigned)v;
                        break;
                case 'p':
                        if (strcmp(optarg, "auto") == 0)
                                o->placement = PLACE_MODE_AUTO;
                        else if (strcmp(optarg, "fallback") == 0)
                                o->placement = PLACE_MODE_FALLBACK;
                        else
                                return bad(err, err_size, "placement", optarg);
                        break;
                case 'J':
                        o->journal_exchanges = true;
                        break;
                case 'D':
                        if (parse_u64(optarg, 1, (gid_t)-2, &v) < 0)
                                return bad(err, err_size, "data-gid", optarg);
                        o->data_gid = (gid_t)v;
                        break;
                case 't':
                        if (log_parse_target(optarg, &cli->target) < 0)
                                return bad(err, err_size, "log-target", optarg);
                        break;
                case 'l':
                        if (parse_u64(optarg, 0, 7, &v) < 0)
                                return bad(err, err_size, "log-level", optarg);
                        o->log_level = (int)v;
                        break;
                case 'h':
                        cli->help = true;
                        break;
                default:
                        snprintf(err, err_size, "Unknown option '%.64s'.",
                                 optind > 0 && optind <= argc ? argv[optind - 1] : "?");
                        return -EINVAL;
                }
        }
        if (optind < argc) {
                snprintf(err, err_size, "Unexpected argument '%.64s'.", argv[optind]);
                return -EINVAL;
        }
        return 0;
}
