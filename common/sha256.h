/*
 * SHA-256 (FIPS 180-4), for loaderd's plan cache key: the hash of a traced file's bytes, read
 * from its descriptor. Hashing is not parsing: the bytes are only mixed, never interpreted.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_SIZE 32
#define SHA256_HEX_SIZE (2 * SHA256_SIZE + 1)

struct sha256 {
        uint32_t h[8];
        uint64_t length; /* bytes so far */
        uint8_t block[64];
        size_t used;     /* bytes in block */
        bool generic;    /* portable C, not the CPU's SHA instructions (set by sha256_init
                          * when the CPU has none; tests set it to compare both) */
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t n);
void sha256_final(struct sha256 *s, uint8_t ret[SHA256_SIZE]);
/* The hash of the whole file behind fd (read with pread from offset 0, up to size bytes,
 * which must all be there: -EIO if the file is shorter now), as lowercase hex. */
int sha256_fd(int fd, uint64_t size, char ret[SHA256_HEX_SIZE]);
