/* Logging backend: sd_journal_send() with structured fields, or plain lines on stderr. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-journal.h>
#include <time.h>

#include "log.h"

/*
 * The one piece of process-wide state outside main's context: logging is configured once at
 * start and read everywhere, like errno.
 */
static struct {
        const char *ident;
        bool journal;
        int max_level;
} log_state = { "tlssniff", false, LOG_INFO };

bool ratelimit_below(struct ratelimit *rl)
{
        uint64_t now = now_monotonic_ns();

        if (rl->begin_ns == 0 || now - rl->begin_ns >= rl->interval_ns) {
                rl->begin_ns = now;
                rl->count = 0;
        }
        if (rl->count < rl->burst) {
                rl->count++;
                return true;
        }
        rl->suppressed++;
        return false;
}

int log_parse_target(const char *s, enum log_target *ret)
{
        if (strcmp(s, "auto") == 0)
                *ret = LOG_TARGET_AUTO;
        else if (strcmp(s, "stderr") == 0)
                *ret = LOG_TARGET_STDERR;
        else if (strcmp(s, "journal") == 0)
                *ret = LOG_TARGET_JOURNAL;
        else
                return -EINVAL;
        return 0;
}

void log_setup(const char *ident, enum log_target target, int max_level)
{
        log_state.ident = ident;
        log_state.max_level = max_level;
        if (target == LOG_TARGET_AUTO)
                /* Under systemd our stderr already goes to the journal; use fields instead. */
                log_state.journal = getenv("JOURNAL_STREAM") || getenv("INVOCATION_ID");
        else
                log_state.journal = target == LOG_TARGET_JOURNAL;
}

bool log_to_journal(void)
{
        return log_state.journal;
}

void log_set_max_level(int level)
{
        log_state.max_level = level;
}

int log_get_max_level(void)
{
        return log_state.max_level;
}

int log_internal(int level, int error, const char *message_id, const char *file, int line,
                 const char *format, ...)
{
        char msg[2048];
        int saved = errno;
        va_list ap;

        if (error < 0)
                error = -error;
        if (level > log_state.max_level)
                return -error;

        errno = error; /* for %m */
        va_start(ap, format);
        vsnprintf(msg, sizeof(msg), format, ap);
        va_end(ap);

        if (log_state.journal) {
                char prio[8], lineno[16];
                char idfield[64] = "MESSAGE_ID=";

                snprintf(prio, sizeof(prio), "%d", level);
                snprintf(lineno, sizeof(lineno), "%d", line);
                if (message_id)
                        strncat(idfield, message_id, sizeof(idfield) - strlen(idfield) - 1);
                sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%s", prio, "CODE_FILE=%s", file,
                                "CODE_LINE=%s", lineno, "SYSLOG_IDENTIFIER=%s", log_state.ident,
                                "ERRNO=%d", error, message_id ? "%s" : "TLSSNIFF=%s",
                                message_id ? idfield : "1", NULL);
        } else {
                fprintf(stderr, "%s: %s\n", log_state.ident, msg);
        }
        errno = saved;
        return -error;
}

/* The escaped form of c in tmp (at least 5 bytes); its length. */
static size_t escape_char(unsigned char c, char *tmp)
{
        if (c < 0x20 || c == 0x7f)
                return (size_t)snprintf(tmp, 5, "\\x%02x", c);
        if (c == '"' || c == '\\')
                return (size_t)snprintf(tmp, 5, "\\%c", c);
        tmp[0] = (char)c;
        return 1;
}

const char *log_escape(const char *s, char *buf, size_t size)
{
        size_t need = 0, o = 0, limit;
        char tmp[5];

        for (const char *p = s; *p; p++)
                need += escape_char((unsigned char)*p, tmp);
        /* All of it, or as much as leaves room for "..." and the NUL. */
        limit = need < size ? need : size >= 4 ? size - 4 : 0;
        for (; *s; s++) {
                size_t k = escape_char((unsigned char)*s, tmp);

                if (o + k > limit)
                        break;
                memcpy(buf + o, tmp, k);
                o += k;
        }
        if (need >= size && size >= 4) {
                memcpy(buf + o, "...", 3);
                o += 3;
        }
        buf[o] = '\0';
        return buf;
}
