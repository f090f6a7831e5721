/*
 * libFuzzer target: the request line of loaderd's admin socket (loaderd/admin.c), from
 * arbitrary bytes. A line is either refused with one of admin_parse's errors, or it is one of
 * the three requests, with an argument that is printable ASCII, fits, and is there exactly
 * when the verb takes one; nothing is written past the argument's buffer.
 */
#include <errno.h>
#include <string.h>

#include "admin.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        enum admin_verb verb = 0;
        char arg[64 + 1];
        int r;

        memset(arg, 0x55, sizeof(arg));
        r = admin_parse((const char *)data, size, &verb, arg, sizeof(arg) - 1);
        CHECK((unsigned char)arg[sizeof(arg) - 1] == 0x55);
        if (r < 0) {
                CHECK(r == -EINVAL || r == -EOPNOTSUPP || r == -EDESTADDRREQ || r == -E2BIG);
                return 0;
        }
        CHECK(size > 0 && data[size - 1] == '\n');
        CHECK(verb == ADMIN_ATTACH || verb == ADMIN_DETACH || verb == ADMIN_RELOAD);
        CHECK((verb == ADMIN_RELOAD) == (arg[0] == '\0'));
        CHECK(strlen(arg) < sizeof(arg) - 1);
        for (const char *p = arg; *p; p++)
                CHECK(*p >= 0x20 && *p <= 0x7e);
        CHECK(memchr(data, '\n', size) == data + size - 1);
        return 0;
}
