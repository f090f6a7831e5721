/* tlssniff-loaderd: settings (options.c), then loaderd_run(). */
#include <stdio.h>
#include <sys/resource.h>

#include "loaderd.h"

int main(int argc, char **argv)
{
        struct options o;
        struct rlimit rl;
        char err[OPTIONS_ERROR_MAX] = "";
        int r;

        r = options_load(&o, argc, argv, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "tlssniff-loaderd: %s\n", err[0] ? err : "out of memory");
                options_free(&o);
                return 2;
        }
        if (r == OPTIONS_EXIT || o.check_config) {
                if (o.check_config)
                        printf("Configuration %s%s is good.\n", o.config ? "file " : "",
                               o.config ? o.config : "(defaults and options)");
                options_free(&o);
                return 0;
        }
        log_setup("tlssniff-loaderd", o.log_target, o.log_level);
        /* One fd per probed file: lift the soft limit to the hard one. */
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void)setrlimit(RLIMIT_NOFILE, &rl);
        }
        /* Reloads read the file and argv again (SIGHUP, tlssniffctl reload). */
        r = loaderd_run(&o, argc, argv); /* takes o */
        return r < 0 ? 1 : 0;
}
