/* Unit test: the configuration file and the command line (loaderd/options.c). */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loaderd.h"

static int parse(struct options *o, const char *text, char *err, size_t size)
{
        options_defaults(o);
        return options_parse_config(o, "t.conf", text, strlen(text), err, size);
}

static void refused(const char *text, const char *want)
{
        char err[OPTIONS_ERROR_MAX] = "";
        struct options o;

        assert(parse(&o, text, err, sizeof(err)) == -EINVAL);
        if (!strstr(err, want)) {
                fprintf(stderr, "%s: got '%s', wanted '%s'\n", text, err, want);
                abort();
        }
        options_free(&o);
}

/* options_load with a file holding text (NULL: no --config) and the arguments. */
static int load(struct options *o, const char *text, char *err, size_t size, int n, ...)
{
        static char path[] = "/tmp/tlssniff-test-options-XXXXXX";
        char *argv[32] = { (char *)"tlssniff-loaderd" };
        int argc = 1, fd, r;
        va_list ap;

        if (text) {
                strcpy(path, "/tmp/tlssniff-test-options-XXXXXX");
                fd = mkstemp(path);
                assert(fd >= 0);
                assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
                close(fd);
                argv[argc++] = (char *)"--config";
                argv[argc++] = path;
        } else {
                argv[argc++] = (char *)"--config=";
        }
        va_start(ap, n);
        for (int i = 0; i < n; i++)
                argv[argc++] = va_arg(ap, char *);
        va_end(ap);
        argv[argc] = NULL;
        r = options_load(o, argc, argv, err, size);
        if (text)
                unlink(path);
        return r;
}

int main(void)
{
        char err[OPTIONS_ERROR_MAX];
        struct options o;

        /* Every section, comments, quotes, a byte order mark, CRLF. */
        assert(parse(&o,
                     "\xef\xbb\xbf# c\r\n[targets]\r\ncomm = curl\npid=42\n unit = a.service \n"
                     "cgroup = /sys/fs/cgroup/x\n; c\n[capture]\ncall-cap = 1M\n"
                     "ringbuf-size = 64M\nplacement = fallback\nsyscall-hooks = raw\n"
                     "uprobe-sessions = no\ndirect-read = no\n"
                     "[output]\njson = yes\noutput = \"\"\nexchanges = on\nno-data = 1\n"
                     "body-preview = 1K\nmax-print = 0\njournal-exchanges = true\n"
                     "[redaction]\nredact-header = X-Api-Key\nshow-secrets = no\n"
                     "redact-param = otp\n"
                     "[service]\nuser = u\ncontrol-socket = \"\"\ncache-dir = /c\n"
                     "log-target = stderr\nverbose = yes\nbatch-scheduling = yes\n",
                     err, sizeof(err)) == 0);
        assert(o.n_comms == 1 && strcmp(o.comms[0], "curl") == 0 && o.n_pids == 1 &&
               o.pids[0] == 42 && o.n_units == 1 && strcmp(o.units[0], "a.service") == 0 &&
               o.n_cgroups == 1);
        assert(o.call_cap == 1u << 20 && o.ringbuf_size == 64u << 20 && o.placement_fallback &&
               o.syscall_hooks == SYSCALL_HOOKS_RAW && !o.uprobe_sessions && !o.direct_read);
        /* Given, the size is each CPU's, however many there are. */
        assert(options_data_ring_size(&o, 2) == 64u << 20 &&
               options_data_ring_size(&o, 256) == 64u << 20);
        assert(o.json && !o.output && o.exchanges && o.no_data && o.body_preview == 1024 &&
               o.max_print == 0 && o.journal_exchanges);
        assert(o.n_redact == 1 && strcmp(o.redact[0], "X-Api-Key") == 0 && !o.show_secrets);
        assert(o.n_redact_params == 1 && strcmp(o.redact_params[0], "otp") == 0);
        assert(strcmp(o.user, "u") == 0 && o.control_socket[0] == '\0' &&
               strcmp(o.cache_dir, "/c") == 0 && o.log_target == LOG_TARGET_STDERR &&
               o.log_level == LOG_DEBUG && o.batch_scheduling);
        options_free(&o);

        /* Errors name the line and say what is wrong. */
        refused("[output]\njson = maybe\n", "t.conf:2: json: 'maybe' is not yes or no");
        refused("\n\n[x]\n", "t.conf:3: unknown section [x]");
        refused("[targets]\nnope = 1\n", "t.conf:2: unknown key 'nope'");
        refused("[output]\ncomm = a\n", "t.conf:2: 'comm' belongs in [targets], not [output]");
        refused("comm = a\n", "t.conf:1: 'comm' before any [section]");
        refused("[targets\n", "t.conf:1: expected [section]");
        refused("[targets]\ncomm\n", "t.conf:2: expected key = value");
        refused("[targets]\ncomm = \"a\n", "t.conf:2: unbalanced quotes");
        refused("[targets]\ncomm = a\x01\n", "t.conf:2: control character");
        refused("[targets]\npid = 0\n", "t.conf:2: pid: '0' is not a process id");
        refused("[targets]\nunit = nginx\n", "not a unit name");
        refused("[targets]\ncgroup = rel\n", "not an absolute path");
        refused("[capture]\nringbuf-size = 3M\n", "not a power of two");
        refused("[capture]\ncall-cap = 0\n", "not a size in 1..64M");
        refused("[redaction]\nredact-header = a b\n", "not a header name");
        refused("[redaction]\nredact-param = a=b\n", "not a parameter name");
        refused("[service]\nhelp = yes\n", "unknown key 'help'");
        refused("[service]\nconfig = /x\n", "unknown key 'config'");
        {
                char big[OPTIONS_LINE_MAX + 64];

                memset(big, 'a', sizeof(big));
                memcpy(big, "[targets]\ncomm = ", 17);
                big[sizeof(big) - 1] = '\0';
                refused(big, "t.conf:2: line longer than");
        }
        assert(parse(&o, "[targets]\ncomm = a\0b\n", err, sizeof(err)) == 0); /* strlen stops */
        options_free(&o);
        options_defaults(&o);
        assert(options_parse_config(&o, "t.conf", "[targets]\ncomm = a\0b\n", 20, err,
                                    sizeof(err)) == -EINVAL && strstr(err, "t.conf:2: NUL"));
        options_free(&o);

        /* By default each CPU's data ring gets 16 MiB / CPUs, a power of two in 1M..4M. */
        options_defaults(&o);
        assert(o.ringbuf_size == 0);
        assert(options_data_ring_size(&o, 1) == 4u << 20 &&
               options_data_ring_size(&o, 2) == 4u << 20 &&
               options_data_ring_size(&o, 4) == 4u << 20 &&
               options_data_ring_size(&o, 6) == 2u << 20 &&
               options_data_ring_size(&o, 16) == 1u << 20 &&
               options_data_ring_size(&o, 512) == 1u << 20);
        options_free(&o);

        /* The command line overrides the file; its targets replace the file's. */
        assert(load(&o, "[targets]\ncomm = curl\nunit = a.service\n[output]\njson = yes\n"
                        "exchanges = yes\n",
                    err, sizeof(err), 3, "--json=no", "--pid", "7") == OPTIONS_RUN);
        assert(!o.json && o.exchanges && o.n_pids == 1 && o.pids[0] == 7 && o.n_comms == 0 &&
               o.n_units == 0);
        options_free(&o);
        assert(load(&o, "[targets]\ncomm = curl\n", err, sizeof(err), 1, "-x") == OPTIONS_RUN);
        assert(o.n_comms == 1 && o.exchanges);
        options_free(&o);
        /* A bad file is refused whatever the command line says. */
        assert(load(&o, "[output]\njson = maybe\n", err, sizeof(err), 1, "--json=no") ==
               -EINVAL);
        assert(strstr(err, ":2: json:"));
        options_free(&o);
        assert(load(&o, NULL, err, sizeof(err), 1, "--bogus") == -EINVAL &&
               strstr(err, "--bogus"));
        options_free(&o);
        assert(load(&o, NULL, err, sizeof(err), 1, "--no-data") == -EINVAL &&
               strstr(err, "no-data needs exchanges"));
        options_free(&o);
        assert(load(&o, NULL, err, sizeof(err), 2, "--json=maybe", "x") == -EINVAL &&
               strstr(err, "--json"));
        options_free(&o);
        assert(load(&o, NULL, err, sizeof(err), 1, "stray") == -EINVAL &&
               strstr(err, "Unexpected argument 'stray'"));
        options_free(&o);
        assert(load(&o, NULL, err, sizeof(err), 1, "--syscall-hooks=per-call") == OPTIONS_RUN &&
               o.syscall_hooks == SYSCALL_HOOKS_PER_CALL);
        options_free(&o);
        assert(load(&o, NULL, err, sizeof(err), 0) == OPTIONS_RUN &&
               o.syscall_hooks == SYSCALL_HOOKS_AUTO && o.uprobe_sessions && o.direct_read &&
               !o.batch_scheduling);
        options_free(&o);
        assert(load(&o, "[capture]\ndirect-read = no\n", err, sizeof(err), 1, "--direct-read") ==
                       OPTIONS_RUN &&
               o.direct_read);
        options_free(&o);
        assert(load(&o, NULL, err, sizeof(err), 1, "--direct-read=no") == OPTIONS_RUN &&
               !o.direct_read);
        options_free(&o);
        assert(load(&o, NULL, err, sizeof(err), 1, "--uprobe-sessions=no") == OPTIONS_RUN &&
               !o.uprobe_sessions);
        options_free(&o);
        assert(load(&o, "[capture]\nuprobe-sessions = no\n", err, sizeof(err), 1,
                    "--uprobe-sessions") == OPTIONS_RUN &&
               o.uprobe_sessions);
        options_free(&o);
        assert(load(&o, "[capture]\nuprobe-sessions = sometimes\n", err, sizeof(err), 0) ==
                       -EINVAL &&
               strstr(err, "uprobe-sessions"));
        options_free(&o);
        assert(load(&o, "[capture]\nsyscall-hooks = socket\n", err, sizeof(err), 0) == -EINVAL &&
               strstr(err, "'socket' is not auto, per-call or raw"));
        options_free(&o);
        assert(load(&o, NULL, err, sizeof(err), 1, "--journal-exchanges") == OPTIONS_RUN &&
               o.exchanges && o.journal_exchanges && !o.config);
        options_free(&o);
        /* Nine cgroups and units together are more than the kernel filter holds. */
        assert(load(&o, "[targets]\nunit=a.service\nunit=b.service\nunit=c.service\n"
                        "unit=d.service\nunit=e.service\ncgroup=/a\ncgroup=/b\ncgroup=/c\n"
                        "cgroup=/d\n",
                    err, sizeof(err), 0) == -EINVAL && strstr(err, "At most 8"));
        options_free(&o);
        printf("options: ok\n");
        return 0;
}
