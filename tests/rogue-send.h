/* What the rogue test programs (rogue-analyzer.c, rogue-planner.c) share: raw frames. */
#pragma once

#include <stdint.h>

/* Sends one frame on fd (header, then body if not NULL), with n_fds (at most 8) descriptors
 * passed along (SCM_RIGHTS) when n_fds > 0; blocking. 0 or -errno. */
int rogue_send(int fd, uint16_t type, const void *body, uint32_t n, const int *fds,
               unsigned n_fds);
