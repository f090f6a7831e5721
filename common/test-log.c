/* Unit test: log_escape — names someone else chose cannot forge a log line or end a claim. */
#undef NDEBUG
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

static void check(const char *in, size_t size, const char *want)
{
        char buf[64];

        memset(buf, 'Z', sizeof(buf));
        assert(size <= sizeof(buf));
        assert(log_escape(in, buf, size) == buf);
        if (strcmp(buf, want) != 0) {
                fprintf(stderr, "log_escape(%zu): got '%s', want '%s'\n", size, buf, want);
                assert(0);
        }
        assert(strlen(buf) < size);
}

int main(void)
{
        check("/usr/lib/libssl.so.3", 64, "/usr/lib/libssl.so.3");
        /* A newline and a fake line, quotes and backslashes, escape and DEL. */
        check("a\nReady: x", 64, "a\\x0aReady: x");
        check("lib\" (forged", 64, "lib\\\" (forged");
        check("c:\\x", 64, "c:\\\\x");
        check("\x1b[31m\x7f", 64, "\\x1b[31m\\x7f");
        /* Bytes above 0x7f (UTF-8 names) stay as they are. */
        check("caf\xc3\xa9", 64, "caf\xc3\xa9");
        /* Too long: cut, ending in "...", never past the buffer, never half an escape. */
        check("abcdefghij", 8, "abcd...");
        check("abcdefg", 8, "abcdefg");
        check("\n\n\n", 8, "\\x0a...");
        check("abc", 1, "");
        check("abc", 3, "");
        check("", 4, "");
        printf("log_escape: ok\n");
        return 0;
}
