/* Names of the counters that loaderd and the analyzer report; see docs/design.md "Losses". */
#pragma once

#include "../bpf/events.h"

const char *stat_kernel_name(enum tlssniff_stat s);
