/* Checked number parsing for command lines and configuration. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "macro.h"

void json_text(char *out, size_t size, const char *s)
{
        size_t k = 0;

        for (; *s && k + 3 < size; s++) {
                unsigned char ch = (unsigned char)*s;

                if (ch == '"' || ch == '\\')
                        out[k++] = '\\';
                out[k++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
        }
        out[k] = '\0';
}

uint64_t now_monotonic_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int buffer_reserve(uint8_t **buf, size_t *cap, size_t len, size_t more)
{
        size_t want;
        uint8_t *p;

        if (*cap - len >= more)
                return 0;
        if (more > SIZE_MAX / 2 - len)
                return -ENOMEM;
        want = len + more;
        if (want < 2 * *cap)
                want = 2 * *cap;
        p = realloc(*buf, want);
        if (!p)
                return -ENOMEM;
        *buf = p;
        *cap = want;
        return 0;
}

int parse_u64(const char *s, unsigned long long min, unsigned long long max,
              unsigned long long *ret)
{
        unsigned long long v;
        char *end = NULL;

        if (!s || !*s || isspace((unsigned char)*s) || *s == '-' || *s == '+')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 0);
        if (errno == ERANGE)
                return -ERANGE;
        if (errno != 0 || end == s || *end != '\0')
                return -EINVAL;
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

int parse_size(const char *s, unsigned long long min, unsigned long long max,
               unsigned long long *ret)
{
        char buf[64];
        unsigned long long v, mult = 1;
        size_t n;
        int r;

        if (!s)
                return -EINVAL;
        n = strlen(s);
        if (n == 0 || n >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, s, n + 1);
        switch (buf[n - 1]) {
        case 'K': case 'k': mult = 1ull << 10; break;
        case 'M': case 'm': mult = 1ull << 20; break;
        case 'G': case 'g': mult = 1ull << 30; break;
        default: break;
        }
        if (mult != 1)
                buf[n - 1] = '\0';
        r = parse_u64(buf, 0, ~0ull / mult, &v);
        if (r < 0)
                return r;
        v *= mult;
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}
