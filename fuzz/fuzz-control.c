/*
 * libFuzzer target: control socket requests (analyzer/control/control.c) from arbitrary bytes,
 * at each access level. Every request gets exactly one JSON line back that says ok or not, an
 * outsider never gets anything but a refusal, and a reader never gets a change through.
 * loaderd is not there (the analyzer's socket is -1), so changes and process lists take the
 * paths that say it cannot be reached.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyzer.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static struct analyzer a;
        static bool ready;
        static const enum control_access levels[] = { CONTROL_NONE, CONTROL_READ,
                                                      CONTROL_ADMIN };
        char out[16384];

        if (!ready) {
                struct analyzer_options o = { .fd = -1, .control_fd = -1, .max_print = 64 };

                CHECK(analyzer_init(&a, &o) == 0);
                ready = true;
        }
        if (size > CONTROL_REQUEST_MAX)
                size = CONTROL_REQUEST_MAX; /* what a client's line may be at most */
        for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
                size_t len;
                int r;

                out[0] = '\0';
                r = control_answer(&a, &a.control, levels[i], (const char *)data, size, out,
                                   sizeof(out));
                len = strlen(out);
                if (r == CONTROL_TAIL) {
                        CHECK(levels[i] != CONTROL_NONE && len == 0);
                        continue;
                }
                CHECK(r != CONTROL_PENDING); /* nothing can reach loaderd here */
                CHECK(len > 0 && len < sizeof(out) && out[len - 1] == '\n');
                CHECK(memchr(out, '\n', len) == out + len - 1);
                if (r == 0)
                        CHECK(strncmp(out, "{\"ok\":true,", 11) == 0);
                else
                        CHECK(strncmp(out, "{\"ok\":false,\"error\":\"", 21) == 0);
                if (levels[i] == CONTROL_NONE)
                        CHECK(r < 0);
                /* Changes go to loaderd's admin socket: refused here at every level. */
                if (size > 6 &&
                    (memcmp(data, "attach", 6) == 0 || memcmp(data, "detach", 6) == 0 ||
                     memcmp(data, "reload", 6) == 0))
                        CHECK(r < 0);
        }
        return 0;
}
