/* Planning one file; see planfile.h. */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "binary/gotls.h"
#include "binary/planfile.h"
#include "log.h"
#include "macro.h"

#if defined(__x86_64__)
#define HOST_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define HOST_MACHINE EM_AARCH64
#endif

/* A Go executable's plan; -ENOTSUP when it is not Go. */
static int plan_go(int fd, const char *path, enum place_mode mode, struct msg_plan *plan,
                   struct planfile_info *info)
{
        _cleanup_free_ struct gotls_info *gi = malloc(sizeof(*gi));
        uint64_t start = now_monotonic_ns();
        int r;

        if (!gi)
                return -ENOMEM;
        r = gotls_plan(fd, plan, gi);
        if (r < 0)
                return r;
        if (mode == PLACE_MODE_FALLBACK)
                gotls_plan_fallback(plan, gi);
        info->go = true;
        info->analysis_ns = now_monotonic_ns() - start;
        if (plan->n_probes > 0 && gi->machine != HOST_MACHINE) {
                /* Analysed all the same: --analyze shows it; nothing can run it. */
                plan->n_probes = 0;
                plan->has_go = false;
                snprintf(plan->reason, sizeof(plan->reason),
                         "Go executable for another architecture (ELF machine %u)", gi->machine);
        }
        log_struct_id(LOG_INFO, MID_PLACEMENT, "Go plan for %s (%s): %s", path,
                      plan->library[0] ? plan->library : "Go", plan->reason);
        return 0;
}

int planfile_plan(int fd, const char *path, enum place_mode mode, struct msg_plan *plan,
                  struct planfile_info *info)
{
        struct stat st;
        int r;

        *info = (struct planfile_info){};
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode)) {
                snprintf(plan->reason, sizeof(plan->reason), "not a regular file");
                return 0;
        }
        r = plan_go(fd, path, mode, plan, info);
        if (r != -ENOTSUP)
                return r;
        r = tlslib_plan(fd, mode, plan, &info->details);
        if (r < 0)
                return r;
        if (plan->n_probes > 0)
                /* The placement decision, per function: stable for a given file. */
                for (size_t i = 0; i < ELEMENTSOF(info->details.function); i++)
                        if (info->details.function[i][0])
                                log_struct_id(LOG_INFO, MID_PLACEMENT,
                                              "Probe placement in %s (%s): %s", path,
                                              plan->library, info->details.function[i]);
        return 0;
}
