/*
 * Finding the OpenSSL functions in an ELF file (a shared libssl or an executable that links
 * OpenSSL statically and exports its symbols, as node does) and turning them into a probe plan
 * whose probes sit where the placement analysis (place.h) proves them cheap and correct. Input
 * is untrusted: any malformed file gives an error or an empty plan, never a crash.
 */
#pragma once

#include "msg.h"
#include "place.h"

/*
 * The placement decision per function (SSL_read, SSL_write, SSL_read_ex, SSL_write_ex), then
 * whether reads are captured on OpenSSL's copy to the caller (sslcopy.h) and why.
 */
struct tlslib_details {
        char function[6][240]; /* "SSL_read: call-site: call at +0x1e, jle at +0x25"; "" absent */
};

/*
 * Fills plan (file_id untouched) and, when details is not NULL, the decision per function.
 * Returns 0 with n_probes == 0 and a reason when there is no TLS.
 */
int tlslib_plan(int fd, enum place_mode mode, struct msg_plan *plan,
                struct tlslib_details *details);
/* Same for a file in memory (unit tests, fuzzing). */
int tlslib_plan_mem(const void *data, size_t size, enum place_mode mode, struct msg_plan *plan,
                    struct tlslib_details *details);
