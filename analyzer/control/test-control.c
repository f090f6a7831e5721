/* Unit test: control requests are parsed strictly and answered by access level. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "analyzer.h"

int main(void)
{
        struct analyzer_options o = { .fd = -1, .control_fd = -1 };
        struct analyzer a;
        char out[16384];
        gid_t groups[] = { 5, 77 };

        analyzer_init(&a, &o);
        assert(control_access_of(0, 0, NULL, 0, 77, 88) == CONTROL_ADMIN);
        assert(control_access_of(1000, 77, NULL, 0, 77, 88) == CONTROL_READ);
        assert(control_access_of(1000, 100, groups, 2, 77, 88) == CONTROL_READ);
        assert(control_access_of(1000, 100, groups, 1, 77, 88) == CONTROL_NONE);
        /* The data group, as primary or supplementary group; none configured: nobody. */
        assert(control_access_of(1000, 88, groups, 2, 77, 88) == CONTROL_DATA);
        assert(control_access_of(1000, 100, (gid_t[]){ 77, 88 }, 2, 77, 88) == CONTROL_DATA);
        assert(control_access_of(1000, 100, groups, 2, 77, (gid_t)-1) == CONTROL_READ);
        assert(control_access_of(1000, (gid_t)-1, NULL, 0, 77, (gid_t)-1) == CONTROL_NONE);

        assert(control_answer(&a, &a.control, CONTROL_READ, "stats\n", 6, out, sizeof(out)) == 0);
        assert(strncmp(out, "{\"ok\":true,\"stats\":{", 20) == 0);
        assert(strstr(out, "\"analyzer_records_bad\":0"));
        assert(control_answer(&a, &a.control, CONTROL_READ, "status\n", 7, out, sizeof(out)) ==
               0);
        assert(strstr(out, "\"uptime_s\":"));
        /* Outsiders get nothing; changes are not taken here, from anyone: they go to loaderd's
         * admin socket, whose peer loaderd checks itself. */
        assert(control_answer(&a, &a.control, CONTROL_NONE, "stats\n", 6, out, sizeof(out)) ==
               -EACCES);
        assert(control_answer(&a, &a.control, CONTROL_READ, "attach\n", 7, out, sizeof(out)) ==
               -EACCES);
        assert(strstr(out, "admin socket"));
        assert(control_answer(&a, &a.control, CONTROL_ADMIN, "attach\n", 7, out, sizeof(out)) ==
               -EACCES);
        assert(strstr(out, "admin socket"));
        /* Malformed: no newline, trailing bytes, upper case, empty, binary, unknown. */
        assert(control_answer(&a, &a.control, CONTROL_ADMIN, "stats", 5, out, sizeof(out)) ==
               -EINVAL);
        assert(control_answer(&a, &a.control, CONTROL_ADMIN, "stats\nx", 7, out, sizeof(out)) ==
               -EINVAL);
        assert(control_answer(&a, &a.control, CONTROL_ADMIN, "STATS\n", 6, out, sizeof(out)) ==
               -EINVAL);
        assert(control_answer(&a, &a.control, CONTROL_ADMIN, "", 0, out, sizeof(out)) ==
               -EINVAL);
        assert(control_answer(&a, &a.control, CONTROL_ADMIN, "st\0ts\n", 6, out, sizeof(out)) ==
               -EINVAL);
        assert(control_answer(&a, &a.control, CONTROL_ADMIN, "frobnicate\n", 11, out,
                              sizeof(out)) == -EINVAL);
        assert(strstr(out, "unknown request"));
        assert(a.control.requests == 11 && a.control.refused == 9);
        /* Arguments: only after one space, printable; changes are never passed on. */
        assert(control_answer(&a, &a.control, CONTROL_READ, "attach 42\n", 10, out,
                              sizeof(out)) == -EACCES);
        assert(control_answer(&a, &a.control, CONTROL_ADMIN, "reload\n", 7, out,
                              sizeof(out)) == -EACCES);
        assert(strstr(out, "reload goes to loaderd's admin socket"));
        assert(control_answer(&a, &a.control, CONTROL_ADMIN, "stats x\n", 8, out, sizeof(out)) ==
               -EINVAL);
        assert(strstr(out, "stats takes no argument"));
        assert(control_answer(&a, &a.control, CONTROL_ADMIN, "attach  42\n", 11, out,
                              sizeof(out)) != CONTROL_PENDING);
        assert(control_answer(&a, &a.control, CONTROL_ADMIN, "attach 4\x01\n", 10, out,
                              sizeof(out)) == -EINVAL);
        assert(control_answer(&a, &a.control, CONTROL_ADMIN, "attach 42\n", 10, out,
                              sizeof(out)) == -EACCES);
        assert(a.control.n_pending == 0);
        /* processes: a pid or nothing; without loaderd the files alone, with an error. */
        assert(control_answer(&a, &a.control, CONTROL_READ, "processes x1\n", 13, out,
                              sizeof(out)) == -EINVAL);
        assert(control_answer(&a, &a.control, CONTROL_READ, "processes\n", 10, out,
                              sizeof(out)) == 0);
        assert(strstr(out, "\"error\":\"loaderd cannot be asked\"") &&
               strstr(out, "\"files\":{\"files_analyzed\":"));
        /* tail goes to the subscription code with its arguments. */
        assert(control_answer(&a, &a.control, CONTROL_READ, "tail kind=data\n", 15, out,
                              sizeof(out)) == CONTROL_TAIL);
        assert(control_answer(&a, &a.control, CONTROL_NONE, "tail kind=data\n", 15, out,
                              sizeof(out)) == -EACCES);
        analyzer_done(&a);
        printf("control: ok\n");
        return 0;
}
