/* Checks on a probe plan from the analyzer before loaderd attaches anything. */
#pragma once

#include <stddef.h>

#include "elfseg.h"
#include "msg.h"

/*
 * 0 when every probe of the plan is of a known kind and function, lies inside an executable
 * segment of the file, and names value locations that the BPF programs can read; otherwise
 * -EINVAL with the first problem described in reason.
 */
int plan_validate(const struct msg_plan *plan, const struct elf_segments *segs, char *reason,
                  size_t reason_size);
