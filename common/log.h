/*
 * Logging to the journal with structured fields when running under systemd, else to stderr.
 * Library code logs at debug at most; daemons log what an operator acts on with a MESSAGE_ID
 * (see docs/catalog.md).
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

#include "macro.h"

enum log_target { LOG_TARGET_AUTO, LOG_TARGET_STDERR, LOG_TARGET_JOURNAL };

void log_setup(const char *ident, enum log_target target, int max_level);
void log_set_max_level(int level);
int log_parse_target(const char *s, enum log_target *ret);
int log_get_max_level(void);
bool log_to_journal(void);

/* Logs and returns -abs(error) so callers can `return log_error_errno(r, ...)`. */
int log_internal(int level, int error, const char *message_id, const char *file, int line,
                 const char *format, ...) _printf_(6, 7);

#define log_full_errno(level, error, ...)                                                          \
        log_internal(level, error, NULL, __FILE__, __LINE__, __VA_ARGS__)
#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, e, __VA_ARGS__)
/* With a MESSAGE_ID from docs/catalog.md. */
#define log_struct_id(level, id, ...) log_internal(level, 0, id, __FILE__, __LINE__, __VA_ARGS__)

/*
 * s for a log line, in buf (size bytes, at least 1): control characters, DEL, '"' and '\\' as
 * \xNN, \" and \\, so that a name someone else chose (a path from /proc, what the
 * unprivileged side says) can neither forge a line nor end a quoted claim; cut (ending in
 * "...") when it does not fit. Returns buf.
 */
const char *log_escape(const char *s, char *buf, size_t size);
#define LOG_ESCAPE_MAX 1024 /* a buffer that holds most paths escaped */

/* At most burst messages per interval; for logging caused by untrusted input. */
struct ratelimit {
        uint64_t interval_ns;
        unsigned burst;
        uint64_t begin_ns;
        unsigned count;
        unsigned suppressed; /* since the last allowed message */
};

#define RATELIMIT_INIT(interval_s, burst_)                                                         \
        { .interval_ns = (uint64_t)(interval_s) * 1000000000ull, .burst = (burst_) }

/* true when a message may be logged now; rl->suppressed says how many were not before it. */
bool ratelimit_below(struct ratelimit *rl);

/* MESSAGE_IDs (128-bit, hex) of the events an operator acts on. */
#define MID_STARTED "6d0c3e1a2b7f4c59a1e8f0d2c4b6a801"
#define MID_READY "6d0c3e1a2b7f4c59a1e8f0d2c4b6a802"
#define MID_PROBE_ATTACHED "6d0c3e1a2b7f4c59a1e8f0d2c4b6a803"
#define MID_PROBE_FAILED "6d0c3e1a2b7f4c59a1e8f0d2c4b6a804"
#define MID_LOSS "6d0c3e1a2b7f4c59a1e8f0d2c4b6a805"
#define MID_ANALYZER_EXITED "6d0c3e1a2b7f4c59a1e8f0d2c4b6a806"
#define MID_FRAME_REFUSED "6d0c3e1a2b7f4c59a1e8f0d2c4b6a807"
#define MID_PLACEMENT "6d0c3e1a2b7f4c59a1e8f0d2c4b6a808"
#define MID_EXCHANGE "6d0c3e1a2b7f4c59a1e8f0d2c4b6a809"
#define MID_RELOADED "6d0c3e1a2b7f4c59a1e8f0d2c4b6a80a"
#define MID_RELOAD_FAILED "6d0c3e1a2b7f4c59a1e8f0d2c4b6a80b"
#define MID_TARGETS_CHANGED "6d0c3e1a2b7f4c59a1e8f0d2c4b6a80c"
