/* tlssniff-analyzer: started by tlssniff-loaderd, never by hand; reads frames on --fd. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analyzer.h"
#include "binary/gotls.h"
#include "binary/planfile.h"
#include "binary/tlslib.h"
#include "frame.h"
#include "macro.h"
#include "sandbox.h"
#include "config.h"
#include "log.h"

/* The Go side of --analyze: what was found, then the plan as for any file. */
static int analyze_go(int fd, enum place_mode mode, struct msg_plan *plan)
{
        _cleanup_free_ struct gotls_info *info = malloc(sizeof(*info));
        int r;

        if (!info)
                return -ENOMEM;
        r = gotls_plan(fd, plan, info);
        if (r < 0)
                return r;
        if (mode == PLACE_MODE_FALLBACK)
                gotls_plan_fallback(plan, info);
        printf("go: version=%s machine=%s abi=%s functions=%s offsets=%s build_id=%s\n",
               info->version[0] ? info->version : "-",
               info->machine == EM_X86_64 ? "amd64" : info->machine == EM_AARCH64 ? "arm64" : "?",
               !info->version[0] ? "-" : info->abi_internal ? "ABIInternal" : "ABI0",
               info->symtab ? "symtab" : "pclntab",
               info->dwarf ? "dwarf" : "table", info->build_id[0] ? info->build_id : "-");
        if (plan->has_go)
                printf("go-offsets: g=%s%d goid=%u conn=%u conn_fd=%u pfd=%u sysfd=%u\n",
                       plan->go.g_kind == TLSSNIFF_GO_G_REG ? "reg" : "fs",
                       plan->go.g_kind == TLSSNIFF_GO_G_REG ? plan->go.g_reg : plan->go.g_off,
                       plan->go.goid, plan->go.conn, plan->go.conn_fd, plan->go.pfd,
                       plan->go.sysfd);
        for (int i = 0; i < 2; i++) {
                const struct gotls_func *f = i == 0 ? &info->read : &info->write;

                if (f->size == 0)
                        continue;
                printf("go-function: %s entry=0x%llx size=%llu offset=0x%llx "
                       "entry_probe=0x%llx rets=",
                       i == 0 ? "Read" : "Write", (unsigned long long)f->entry,
                       (unsigned long long)f->size, (unsigned long long)f->entry_offset,
                       (unsigned long long)(f->entry_probe - f->entry_offset + f->entry));
                for (uint32_t k = 0; k < f->n_rets; k++)
                        printf("%s0x%llx", k ? "," : "",
                               (unsigned long long)(f->rets[k] - f->entry_offset + f->entry));
                printf("\n");
        }
        return 0;
}

/* --analyze: the plan for one file, as the analyzer would send it, for people and tests. */
static int analyze_file(const char *path, enum place_mode mode)
{
        static const char *const kinds[] = { "?", "entry", "uretprobe", "return", "copy", "forget" };
        struct tlslib_details details;
        struct msg_plan *plan;
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "Failed to open '%s': %m\n", path);
                return 1;
        }
        plan = calloc(1, sizeof(*plan));
        if (!plan) {
                close(fd);
                return 1;
        }
        r = analyze_go(fd, mode, plan);
        if (r == -ENOTSUP)
                r = tlslib_plan(fd, mode, plan, &details);
        else
                memset(&details, 0, sizeof(details));
        close(fd);
        if (r < 0) {
                fprintf(stderr, "Failed to analyse '%s': %s\n", path, strerror(-r));
                free(plan);
                return 1;
        }
        printf("file: %s\nlibrary: %s\nsummary: %s\n", path,
               plan->library[0] ? plan->library : "-", plan->reason);
        for (size_t i = 0; i < ELEMENTSOF(details.function); i++)
                if (details.function[i][0])
                        printf("placement: %s\n", details.function[i]);
        for (uint32_t i = 0; i < plan->n_probes; i++) {
                const struct msg_probe *p = &plan->probes[i];

                printf("probe: func=%u kind=%s offset=0x%llx", p->func,
                       p->kind < ELEMENTSOF(kinds) ? kinds[p->kind] : "?",
                       (unsigned long long)p->offset);
                for (int a = 0; a < _TLSSNIFF_ARG_MAX; a++)
                        if (p->loc[a].kind == TLSSNIFF_LOC_REG)
                                printf(" arg%d=reg%u", a, p->loc[a].reg);
                        else if (p->loc[a].kind == TLSSNIFF_LOC_STACK)
                                printf(" arg%d=sp%+d", a, p->loc[a].off);
                printf("\n");
        }
        free(plan);
        return 0;
}

/*
 * --plan=ID: the planner. loaderd starts one per file, with the file on PLANNER_FILE_FD and
 * its socket on --fd: it plans that file, sends one A_PLAN for file ID and exits. It never
 * sees captured data, and loaderd takes from it a plan for that file only. Confined like the
 * analyzer (dropped to its user by loaderd, seccomp filter here, fatal when missing).
 */
static int run_planner(const struct analyzer_options *o, uint32_t file_id, const char *name)
{
        char ename[LOG_ESCAPE_MAX];
        _cleanup_free_ struct msg_plan *plan = calloc(1, sizeof(*plan));
        struct planfile_info info = {};
        uint8_t hdr[FRAME_HEADER_SIZE];
        msgpack_sbuffer sb;
        int r;

        if (!plan)
                return log_error_errno(ENOMEM, "Out of memory.");
        r = sandbox_apply();
        if (r < 0 && r != -EOPNOTSUPP) {
                return log_error_errno(r, "Failed to install the seccomp filter: %m");
        }
        plan->file_id = file_id;
        log_escape(name ? name : "(unnamed)", ename, sizeof(ename));
        if (planfile_plan(PLANNER_FILE_FD, ename, o->placement, plan, &info) < 0 &&
            !plan->reason[0])
                snprintf(plan->reason, sizeof(plan->reason), "the file cannot be read");
        msgpack_sbuffer_init(&sb);
        r = msg_encode_planner_plan(&sb, plan,
                                    &(struct msg_planner_result){
                                            .go = info.go,
                                            .analysis_us = info.analysis_ns / 1000 });
        if (r >= 0) {
                frame_header_write(hdr, (uint32_t)sb.size, FRAME_P_PLAN);
                if (write(o->fd, hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr) ||
                    write(o->fd, sb.data, sb.size) != (ssize_t)sb.size)
                        r = -errno;
        }
        msgpack_sbuffer_destroy(&sb);
        return r < 0 ? log_error_errno(r, "Failed to send the plan: %m") : 0;
}

static void help(void)
{
        printf("Usage: tlssniff-analyzer --fd=N [--control-fd=N] [--json] [--max-print BYTES]\n"
               "                         [--placement auto|fallback] [--log-target T]\n"
               "                         [--log-level N] [--exchanges [--no-data]]\n"
               "                         [--body-preview BYTES] [--show-secrets]\n"
               "                         [--redact-header NAME]... [--redact-param NAME]...\n"
               "                         [--journal-exchanges]\n"
               "       tlssniff-analyzer --analyze FILE [--placement auto|fallback]\n"
               "       tlssniff-analyzer --plan=ID --fd=N [--placement auto|fallback]\n"
               "                         [--log-target T]\n"
               "\n"
               "The unprivileged half of tlssniff, started by tlssniff-loaderd with the socket\n"
               "to it as fd N. Not meant to be run by hand, except --analyze, which prints the\n"
               "probe plan and placement decisions for one file and exits.\n");
}

int main(int argc, char **argv)
{
        struct analyzer_options o;
        struct analyzer_cli cli;
        char err[256];
        struct analyzer a;
        int r;

        r = analyzer_parse_options(argc, argv, &o, &cli, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "tlssniff-analyzer: %s\n", err);
                return 2;
        }
        if (cli.help) {
                help();
                return 0;
        }
        const char *analyze = cli.analyze;
        enum log_target target = cli.target;
        int level = o.log_level;

        if (analyze)
                return analyze_file(analyze, o.placement);
        if (cli.plan_file_id && o.fd >= 0) {
                log_setup("tlssniff-analyzer", target, level);
                if (getuid() == 0 || geteuid() == 0 || getgid() == 0 || getegid() == 0) {
                        log_error("Refusing to plan as root: the planner is started by "
                                  "tlssniff-loaderd under the analyzer's user.");
                        return 1;
                }
                return run_planner(&o, cli.plan_file_id, cli.plan_name) < 0 ? 1 : 0;
        }
        if (o.fd < 0) {
                fprintf(stderr, "tlssniff-analyzer: --fd is required. It is started by "
                                "tlssniff-loaderd.\n");
                return 2;
        }
        log_setup("tlssniff-analyzer", target, level);
        /* It parses what remote peers send: never with root's rights (loaderd drops them
         * before it starts the analyzer; this catches a start by other means). */
        if (getuid() == 0 || geteuid() == 0 || getgid() == 0 || getegid() == 0) {
                log_error("Refusing to run as root: tlssniff-analyzer is started by "
                          "tlssniff-loaderd under its own user.");
                return 1;
        }
        signal(SIGINT, SIG_IGN); /* the stream ends when loaderd closes it */
        signal(SIGPIPE, SIG_IGN);
        if (analyzer_init(&a, &o) < 0) {
                log_error("Out of memory.");
                return 1;
        }
        /* Everything the analyzer opens itself is open now. */
        r = sandbox_apply();
        if (r == -EOPNOTSUPP)
                log_info("No seccomp filter in this build (sanitizers or architecture).");
        else if (r < 0) {
                /* Parsing untrusted plaintext without the filter is not an option. */
                log_error_errno(r, "Failed to install the seccomp filter: %m");
                analyzer_done(&a);
                return 1;
        }
        r = analyzer_run(&a);
        analyzer_done(&a);
        return r < 0 ? 1 : 0;
}
