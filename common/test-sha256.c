/* SHA-256 against FIPS 180-4's examples, split updates, and sha256_fd on files. */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sha256.h"

static void hex(const uint8_t d[SHA256_SIZE], char out[SHA256_HEX_SIZE])
{
        for (int i = 0; i < SHA256_SIZE; i++)
                sprintf(out + 2 * i, "%02x", d[i]);
}

static void check(const char *msg, size_t repeat, const char *want)
{
        struct sha256 s;
        uint8_t d[SHA256_SIZE];
        char got[SHA256_HEX_SIZE];

        sha256_init(&s);
        for (size_t i = 0; i < repeat; i++)
                sha256_update(&s, msg, strlen(msg));
        sha256_final(&s, d);
        hex(d, got);
        if (strcmp(got, want) != 0) {
                fprintf(stderr, "sha256(%zu x \"%s\") = %s, want %s\n", repeat, msg, got, want);
                abort();
        }
}

int main(void)
{
        char tmpl[] = "/tmp/test-sha256-XXXXXX", one[SHA256_HEX_SIZE], split[SHA256_HEX_SIZE],
             got[SHA256_HEX_SIZE];
        static uint8_t buf[3u << 20];
        uint8_t d[SHA256_SIZE];
        struct sha256 s;
        int fd;

        check("", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        check("abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        check("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
        check("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
              "klmnopqrlmnopqrsmnopqrstnopqrstu", 1,
              "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
        check("a", 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
        /* 55, 56, 63, 64 and 65 bytes: the padding's edges. */
        check("0123456789012345678901234567890123456789012345678901234", 1,
              "f34d5a0f80c0cbf84c8c0b90218c22637abd199965249da736a20143c8c9c9d9");
        check("01234567890123456789012345678901234567890123456789012345", 1,
              "83aa034bda83e458a0dc9cbce0d4e354716aa0ff770ed37ac0ed2b292052e4af");
        check("012345678901234567890123456789012345678901234567890123456789012", 1,
              "074f6e9ac301d5d1b6df6f1dfb8c6f89c187ea945d352ce6a29279a9c630680b");
        check("0123456789012345678901234567890123456789012345678901234567890123", 1,
              "9674d9e078535b7cec43284387a6ee39956188e735a85452b0050b55341cda56");
        check("01234567890123456789012345678901234567890123456789012345678901234", 1,
              "52774b57c10e45040a61c14d35c1c8ebefe880082313aa0a21ebb077734cd067");

        /* Any split of the same bytes gives the same hash. */
        srand(7);
        for (size_t i = 0; i < sizeof(buf); i++)
                buf[i] = (uint8_t)rand();
        sha256_init(&s);
        sha256_update(&s, buf, sizeof(buf));
        sha256_final(&s, d);
        hex(d, one);
        sha256_init(&s);
        for (size_t pos = 0, step = 1; pos < sizeof(buf); pos += step, step = step * 7 % 1531 + 1)
                sha256_update(&s, buf + pos, pos + step > sizeof(buf) ? sizeof(buf) - pos : step);
        sha256_final(&s, d);
        hex(d, split);
        assert(strcmp(one, split) == 0);

        /* The portable code and the CPU's SHA instructions (where it has them) agree, on
         * every length up to 300 bytes and on the whole buffer in odd pieces. */
        for (size_t n = 0; n <= 300; n++) {
                uint8_t d2[SHA256_SIZE];
                struct sha256 g;

                sha256_init(&s);
                sha256_update(&s, buf + n, n);
                sha256_final(&s, d);
                sha256_init(&g);
                g.generic = true;
                sha256_update(&g, buf + n, n);
                sha256_final(&g, d2);
                assert(memcmp(d, d2, sizeof(d)) == 0);
        }
        {
                struct sha256 g;

                sha256_init(&g);
                g.generic = true;
                for (size_t pos = 0, step = 3; pos < sizeof(buf);
                     pos += step, step = step * 5 % 4099 + 1)
                        sha256_update(&g, buf + pos,
                                      pos + step > sizeof(buf) ? sizeof(buf) - pos : step);
                sha256_final(&g, d);
                hex(d, split);
                assert(strcmp(one, split) == 0);
        }

        /* sha256_fd reads the whole file, across its 1 MiB chunks, and refuses a short one. */
        fd = mkstemp(tmpl);
        assert(fd >= 0);
        unlink(tmpl);
        assert(write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf));
        assert(sha256_fd(fd, sizeof(buf), got) == 0 && strcmp(got, one) == 0);
        sha256_init(&s);
        sha256_update(&s, buf, 3);
        sha256_final(&s, d);
        hex(d, one);
        assert(sha256_fd(fd, 3, got) == 0 && strcmp(got, one) == 0); /* size bytes, no more */
        assert(sha256_fd(fd, sizeof(buf) + 1, got) == -EIO);
        close(fd);
        printf("sha256: ok\n");
        return 0;
}
