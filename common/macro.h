/* Small helpers used everywhere: cleanup attributes, ownership transfer, array sizes. */
#pragma once

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))

static inline void freep(void *p)
{
        free(*(void **)p);
}

static inline void closep(int *fd)
{
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)

/* Take ownership out of a cleanup variable. */
#define TAKE_PTR(p)                                                                                \
        ({                                                                                         \
                __typeof__(p) _p = (p);                                                            \
                (p) = NULL;                                                                        \
                _p;                                                                                \
        })
#define TAKE_FD(fd)                                                                                \
        ({                                                                                         \
                int _fd = (fd);                                                                    \
                (fd) = -1;                                                                         \
                _fd;                                                                               \
        })

static inline int safe_close(int fd)
{
        if (fd >= 0)
                close(fd);
        return -1;
}

/*
 * Makes room for `more` bytes after the `len` used bytes of *buf (capacity *cap), at least
 * doubling. 0 or -ENOMEM; *buf and *cap are updated only on success.
 */
int buffer_reserve(uint8_t **buf, size_t *cap, size_t len, size_t more);

/* The JSON string form of s in out (size bytes, at least 1): printable ASCII, '"' and '\\'
 * escaped, any other byte as '?'; cut to fit. */
void json_text(char *out, size_t size, const char *s);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t now_monotonic_ns(void);

/* Parse an unsigned decimal/hex integer in [min, max]; 0 or -EINVAL/-ERANGE. */
int parse_u64(const char *s, unsigned long long min, unsigned long long max,
              unsigned long long *ret);
/* Like parse_u64 but accepts the suffixes K, M, G (powers of 1024). */
int parse_size(const char *s, unsigned long long min, unsigned long long max,
               unsigned long long *ret);
