/*
 * libFuzzer target: tlssniff.conf as loaderd reads it (loaderd/options.c), from arbitrary
 * bytes. A file is either refused with "NAME:LINE: reason" for a line that exists, or every
 * setting it produced is within the bounds loaderd relies on.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loaderd.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char err[OPTIONS_ERROR_MAX] = "";
        struct options o;
        int r;

        options_defaults(&o);
        r = options_parse_config(&o, "f", (const char *)data, size, err, sizeof(err));
        if (r < 0) {
                unsigned line = 0, lines = 1;

                CHECK(r == -EINVAL);
                CHECK(sscanf(err, "f:%u:", &line) == 1);
                for (size_t i = 0; i < size; i++)
                        lines += data[i] == '\n';
                CHECK(line >= 1 && line <= lines);
        } else {
                CHECK(o.n_pids <= LOADERD_FILTER_MAX && o.n_comms <= LOADERD_FILTER_MAX);
                CHECK(o.n_cgroups <= TLSSNIFF_FILTER_CGROUPS_MAX);
                CHECK(o.n_units <= OPTIONS_UNITS_MAX && o.n_redact <= OPTIONS_REDACT_MAX);
                for (unsigned i = 0; i < o.n_comms; i++)
                        CHECK(strlen(o.comms[i]) >= 1 && strlen(o.comms[i]) < TLSSNIFF_COMM_LEN);
                for (unsigned i = 0; i < o.n_units; i++)
                        CHECK(options_valid_unit(o.units[i]));
                for (unsigned i = 0; i < o.n_cgroups; i++)
                        CHECK(o.cgroups[i][0] == '/');
                CHECK(o.call_cap >= 1 && o.call_cap <= TLSSNIFF_CALL_CAP_MAX);
                /* 0: the default, shared out among the CPUs (options_data_ring_size). */
                CHECK(o.ringbuf_size == 0 ||
                      (o.ringbuf_size >= (1u << 20) && o.ringbuf_size <= (1u << 30) &&
                       (o.ringbuf_size & (o.ringbuf_size - 1)) == 0));
                for (unsigned ncpu = 1; ncpu <= 4096; ncpu *= 4) {
                        unsigned long long ring = options_data_ring_size(&o, ncpu);

                        CHECK(ring >= (1u << 20) && ring <= (1u << 30) && (ring & (ring - 1)) == 0);
                }
                CHECK(o.body_preview <= 65536 && o.max_print <= (1u << 20));
                CHECK(!o.control_socket || !o.control_socket[0] ||
                      (o.control_socket[0] == '/' && strlen(o.control_socket) < 108));
                CHECK(!o.cache_dir || !o.cache_dir[0] || o.cache_dir[0] == '/');
        }
        options_free(&o);
        return 0;
}
