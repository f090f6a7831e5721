/*
 * Finding the OpenSSL functions in an ELF file (a shared libssl or an executable that links
 * OpenSSL statically and exports its symbols, as node does) and turning them into a probe plan
 * with the calling convention's value locations. Input is untrusted: any malformed file gives
 * an error or an empty plan, never a crash.
 */
#pragma once

#include "msg.h"

/* Fills plan (file_id untouched). 0 with n_probes == 0 and a reason when there is no TLS. */
int tlslib_plan(int fd, struct msg_plan *plan);
/* Same for a file in memory (unit tests, fuzzing). */
int tlslib_plan_mem(const void *data, size_t size, struct msg_plan *plan);
