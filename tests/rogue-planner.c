/*
 * A rogue planner for test_rogue_planner.py: started by loaderd through --planner in place of
 * tlssniff-analyzer --plan (as the tlssniff user, its socket on fd 3, the file to plan on fd 4),
 * it tries what the planner of a hostile binary could once that binary took it over. The
 * planners of libssl and libcrypto are the real one (exec'd, same arguments), so that loaderd
 * still captures real traffic; a file whose name has "rogue-stall" in it gets no answer at all
 * (loaderd's deadline ends it); every other file gets one attack, by its id:
 *   0  a plan for the file before it (another file: libc, sshd, ...), a probe mid-instruction
 *   1  a frame that is not a plan (an attach request)
 *   2  a frame header over the size cap
 *   3  a plan for its own file with a probe outside its executable segments
 *   4  a body that does not decode, with descriptors passed along (SCM_RIGHTS)
 *   5  nothing: it exits at once
 * Each attack is one "ROGUE-PLANNER attack=N file=ID" line on stderr (loaderd's) for the test.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "frame.h"
#include "msg.h"
#include "rogue-send.h"

#define FD 3

static int send_raw(uint16_t type, const void *body, uint32_t n, const int *fds, unsigned n_fds)
{
        return rogue_send(FD, type, body, n, fds, n_fds);
}

/* A P_PLAN for file_id: one entry probe of SSL_write at offset. */
static int send_plan(uint32_t file_id, uint64_t offset)
{
        struct msg_plan *p = calloc(1, sizeof(*p));
        msgpack_sbuffer sb;
        int r;

        if (!p)
                return -ENOMEM;
        p->file_id = file_id;
        p->n_probes = 1;
        p->probes[0] = (struct msg_probe){ .kind = TLSSNIFF_PROBE_ENTRY,
                                           .func = TLSSNIFF_FUNC_SSL_WRITE,
                                           .offset = offset };
        p->probes[0].loc[TLSSNIFF_ARG_SSL] = (struct tlssniff_loc){ TLSSNIFF_LOC_REG, 5, 0 };
        p->probes[0].loc[TLSSNIFF_ARG_BUF] = (struct tlssniff_loc){ TLSSNIFF_LOC_REG, 4, 0 };
        p->probes[0].loc[TLSSNIFF_ARG_NUM] = (struct tlssniff_loc){ TLSSNIFF_LOC_REG, 1, 0 };
        snprintf(p->library, sizeof(p->library), "libssl.so.3");
        snprintf(p->reason, sizeof(p->reason), "rogue");
        msgpack_sbuffer_init(&sb);
        r = msg_encode_planner_plan(&sb, p, &(struct msg_planner_result){});
        if (r >= 0)
                r = send_raw(FRAME_P_PLAN, sb.data, (uint32_t)sb.size, NULL, 0);
        msgpack_sbuffer_destroy(&sb);
        free(p);
        return r;
}

/* The real planner, next to this program's build folder, with the same arguments. */
static void exec_real(char **argv)
{
        char self[PATH_MAX], real[PATH_MAX + 64];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        char *slash;

        if (n <= 0)
                return;
        self[n] = '\0';
        slash = strrchr(self, '/');
        if (!slash)
                return;
        *slash = '\0';
        snprintf(real, sizeof(real), "%s/../analyzer/tlssniff-analyzer", self);
        execv(real, argv);
}

int main(int argc, char **argv)
{
        const char *name = "";
        uint32_t id = 0;
        uint8_t bad = 0xc1; /* never valid msgpack */
        int fds[2];

        setvbuf(stderr, NULL, _IONBF, 0);
        for (int i = 1; i < argc; i++) {
                if (strncmp(argv[i], "--plan=", 7) == 0)
                        id = (uint32_t)strtoul(argv[i] + 7, NULL, 10);
                else if (strncmp(argv[i], "--plan-name=", 12) == 0)
                        name = argv[i] + 12;
        }
        if (id == 0) {
                fprintf(stderr, "ROGUE-PLANNER started without --plan\n");
                return 2;
        }
        if (strstr(name, "libssl") || strstr(name, "libcrypto")) {
                exec_real(argv);
                fprintf(stderr, "ROGUE-PLANNER cannot exec the real planner: %m\n");
                return 1;
        }
        if (strstr(name, "rogue-stall")) {
                fprintf(stderr, "ROGUE-PLANNER attack=stall file=%u\n", id);
                for (;;)
                        pause();
        }
        fprintf(stderr, "ROGUE-PLANNER attack=%u file=%u uid=%d\n", id % 6, id, (int)getuid());
        switch (id % 6) {
        case 0:
                /* Another file's id: loaderd must not take it, whatever the probe. */
                send_plan(id - 1, 0x1001);
                break;
        case 1: {
                struct msg_control c = { .id = 1, .verb = MSG_CONTROL_ATTACH };
                msgpack_sbuffer sb;

                snprintf(c.arg, sizeof(c.arg), "1");
                msgpack_sbuffer_init(&sb);
                msg_encode_control(&sb, &c);
                send_raw(FRAME_A_CONTROL, sb.data, (uint32_t)sb.size, NULL, 0);
                msgpack_sbuffer_destroy(&sb);
                break;
        }
        case 2:
                send_raw(FRAME_P_PLAN, NULL, FRAME_BODY_MAX + 1, NULL, 0);
                break;
        case 3:
                send_plan(id, 0xfffffffff0ull);
                break;
        case 4:
                fds[0] = memfd_create("rogue-planner-fd", MFD_CLOEXEC);
                fds[1] = memfd_create("rogue-planner-fd", MFD_CLOEXEC);
                send_raw(FRAME_P_PLAN, &bad, 1, fds, 2);
                break;
        default:
                return 0;
        }
        /* Then it stays, as a hostile planner would, until loaderd is done with it. */
        for (;;)
                pause();
}
