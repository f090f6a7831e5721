/*
 * libFuzzer target: OpenSSL symbol discovery (libelf) on arbitrary bytes, as the analyzer does
 * for every file loaderd offers. The input is copied to a buffer of its exact size, so that a
 * read past the end of the image is seen by ASan, and because libelf may write to the image it
 * is given. A plan that comes out must be one the analyzer can encode and loaderd decode.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "binary/tlslib.h"
#include "fuzz.h"

static void check_plan(const struct msg_plan *plan)
{
        struct msg_plan *back = malloc(sizeof(*back));
        msgpack_sbuffer sb;

        CHECK(back);
        CHECK(plan->n_probes <= MSG_PLAN_PROBES_MAX);
        CHECK(memchr(plan->library, '\0', sizeof(plan->library)));
        CHECK(memchr(plan->reason, '\0', sizeof(plan->reason)));
        CHECK(plan->reason[0] != '\0'); /* there is always a why */
        for (uint32_t i = 0; i < plan->n_probes; i++) {
                const struct msg_probe *p = &plan->probes[i];

                CHECK(p->kind >= TLSSNIFF_PROBE_ENTRY && p->kind < _TLSSNIFF_PROBE_KIND_MAX);
                CHECK(p->func >= TLSSNIFF_FUNC_SSL_READ && p->func < _TLSSNIFF_FUNC_MAX);
                /* The pairings loaderd accepts (loaderd/plan.c) */
                if (p->kind == TLSSNIFF_PROBE_COPY)
                        CHECK(p->func == TLSSNIFF_FUNC_SSL_READ_BYTES ||
                              p->func == TLSSNIFF_FUNC_SSL_WRITE_BYTES);
                CHECK((p->kind == TLSSNIFF_PROBE_FORGET) == (p->func == TLSSNIFF_FUNC_SSL_FREE));
        }

        /* The analyzer sends the plan: it must survive the wire. */
        msgpack_sbuffer_init(&sb);
        CHECK(msg_encode_plan(&sb, plan) == 0);
        CHECK(msg_decode_plan((const uint8_t *)sb.data, sb.size, back) == 0);
        CHECK(back->n_probes == plan->n_probes && strcmp(back->library, plan->library) == 0 &&
              strcmp(back->reason, plan->reason) == 0);
        msgpack_sbuffer_destroy(&sb);
        free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct msg_plan *plan = calloc(1, sizeof(*plan));
        void *copy = malloc(size ? size : 1);

        CHECK(plan && copy);
        if (size > 0)
                memcpy(copy, data, size);
        plan->file_id = 42;
        CHECK(tlslib_plan_mem(copy, size, PLACE_MODE_AUTO, plan, NULL) == 0);
        CHECK(plan->file_id == 42); /* "file_id untouched" */
        check_plan(plan);
        free(copy);
        free(plan);
        return 0;
}
