/* SHA-256; see sha256.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "sha256.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

static const uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
};

static uint32_t ror(uint32_t x, unsigned n)
{
        return x >> n | x << (32 - n);
}

static void compress(uint32_t h[8], const uint8_t *p)
{
        uint32_t w[64], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6],
                        hh = h[7];

        for (int i = 0; i < 16; i++)
                w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
                       (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
        for (int i = 16; i < 64; i++) {
                uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ w[i - 15] >> 3;
                uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ w[i - 2] >> 10;

                w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        for (int i = 0; i < 64; i++) {
                uint32_t t1 = hh + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) +
                              k[i] + w[i];
                uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));

                hh = g;
                g = f;
                f = e;
                e = d + t1;
                d = c;
                c = b;
                b = a;
                a = t1 + t2;
        }
        h[0] += a;
        h[1] += b;
        h[2] += c;
        h[3] += d;
        h[4] += e;
        h[5] += f;
        h[6] += g;
        h[7] += hh;
}

#if defined(__x86_64__)
/*
 * The same compression with the x86 SHA extensions (SHA-NI), about ten times as fast: the
 * state as the instructions want it (ABEF and CDGH), four rounds per step, the message
 * schedule in a ring of four vectors.
 */
__attribute__((target("sha,sse4.1,ssse3"))) static void compress_ni(uint32_t h[8],
                                                                    const uint8_t *p,
                                                                    size_t blocks)
{
        const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bull, 0x0405060700010203ull);
        __m128i t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[0]), 0xb1);
        __m128i st1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[4]), 0x1b);
        __m128i st0 = _mm_alignr_epi8(t, st1, 8);

        st1 = _mm_blend_epi16(st1, t, 0xf0);
        for (; blocks > 0; blocks--, p += 64) {
                __m128i save0 = st0, save1 = st1, w[4];

                for (int r = 0; r < 16; r++) {
                        __m128i m;

                        if (r < 4)
                                w[r] = _mm_shuffle_epi8(
                                        _mm_loadu_si128((const __m128i *)(p + 16 * r)), swap);
                        else
                                w[r % 4] = _mm_sha256msg2_epu32(
                                        _mm_add_epi32(_mm_sha256msg1_epu32(w[r % 4],
                                                                           w[(r + 1) % 4]),
                                                      _mm_alignr_epi8(w[(r + 3) % 4],
                                                                      w[(r + 2) % 4], 4)),
                                        w[(r + 3) % 4]);
                        m = _mm_add_epi32(w[r % 4], _mm_loadu_si128((const __m128i *)&k[4 * r]));
                        st1 = _mm_sha256rnds2_epu32(st1, st0, m);
                        st0 = _mm_sha256rnds2_epu32(st0, st1, _mm_shuffle_epi32(m, 0x0e));
                }
                st0 = _mm_add_epi32(st0, save0);
                st1 = _mm_add_epi32(st1, save1);
        }
        t = _mm_shuffle_epi32(st0, 0x1b);
        st1 = _mm_shuffle_epi32(st1, 0xb1);
        _mm_storeu_si128((__m128i *)&h[0], _mm_blend_epi16(t, st1, 0xf0));
        _mm_storeu_si128((__m128i *)&h[4], _mm_alignr_epi8(st1, t, 8));
}

static bool cpu_has_sha(void)
{
        unsigned a, b, c, d;

        if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3))
                return false;
        return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_SHA);
}
#endif

static void compress_blocks(struct sha256 *s, const uint8_t *p, size_t blocks)
{
#if defined(__x86_64__)
        if (!s->generic) {
                compress_ni(s->h, p, blocks);
                return;
        }
#endif
        for (; blocks > 0; blocks--, p += 64)
                compress(s->h, p);
}

void sha256_init(struct sha256 *s)
{
        static const uint32_t iv[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };

        memcpy(s->h, iv, sizeof(iv));
        s->length = 0;
        s->used = 0;
#if defined(__x86_64__)
        s->generic = !cpu_has_sha();
#else
        s->generic = true;
#endif
}

void sha256_update(struct sha256 *s, const void *data, size_t n)
{
        const uint8_t *p = data;

        s->length += n;
        if (s->used) {
                size_t take = n < sizeof(s->block) - s->used ? n : sizeof(s->block) - s->used;

                memcpy(s->block + s->used, p, take);
                s->used += take;
                p += take;
                n -= take;
                if (s->used < sizeof(s->block))
                        return;
                compress_blocks(s, s->block, 1);
                s->used = 0;
        }
        compress_blocks(s, p, n / 64);
        p += n / 64 * 64;
        n %= 64;
        memcpy(s->block, p, n);
        s->used = n;
}

void sha256_final(struct sha256 *s, uint8_t ret[SHA256_SIZE])
{
        uint64_t bits = s->length * 8;

        s->block[s->used++] = 0x80;
        if (s->used > 56) {
                memset(s->block + s->used, 0, 64 - s->used);
                compress_blocks(s, s->block, 1);
                s->used = 0;
        }
        memset(s->block + s->used, 0, 56 - s->used);
        for (int i = 0; i < 8; i++)
                s->block[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
        compress_blocks(s, s->block, 1);
        for (int i = 0; i < 8; i++) {
                ret[4 * i] = (uint8_t)(s->h[i] >> 24);
                ret[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
                ret[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
                ret[4 * i + 3] = (uint8_t)s->h[i];
        }
}

int sha256_fd(int fd, uint64_t size, char ret[SHA256_HEX_SIZE])
{
        static const char hex[] = "0123456789abcdef";
        const size_t chunk = 1u << 20;
        _cleanup_free_ uint8_t *buf = malloc(chunk);
        uint8_t digest[SHA256_SIZE];
        struct sha256 s;
        uint64_t done = 0;

        if (!buf)
                return -ENOMEM;
        sha256_init(&s);
        while (done < size) {
                ssize_t n = pread(fd, buf, size - done < chunk ? (size_t)(size - done) : chunk,
                                  (off_t)done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -EIO;
                sha256_update(&s, buf, (size_t)n);
                done += (uint64_t)n;
        }
        sha256_final(&s, digest);
        for (int i = 0; i < SHA256_SIZE; i++) {
                ret[2 * i] = hex[digest[i] >> 4];
                ret[2 * i + 1] = hex[digest[i] & 15];
        }
        ret[2 * SHA256_SIZE] = '\0';
        return 0;
}
