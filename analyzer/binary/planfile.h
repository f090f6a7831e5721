/*
 * The probe plan of one file, as a planner makes it: a Go executable's or an OpenSSL library's or executable's; n_probes 0 with a reason for anything
 * else. The one entry point of binary analysis, for the planner process (tlssniff-analyzer
 * --plan) and --analyze alike.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "binary/place.h"
#include "binary/tlslib.h"
#include "msg.h"

/* What planning one file found out, besides the plan. */
struct planfile_info {
        bool go;             /* a Go executable */
        uint64_t analysis_ns; /* time spent analysing */
        struct tlslib_details details; /* OpenSSL: the placement decision per function */
};

/*
 * Plans the regular file open in fd (its name path only for the log): plan (file_id left as
 * it is) and info. 0, or a negative errno when the file could not be read;
 * a file with nothing to probe is 0 with plan->n_probes == 0 and the reason in plan->reason.
 */
int planfile_plan(int fd, const char *path, enum place_mode mode, struct msg_plan *plan,
                  struct planfile_info *info);
