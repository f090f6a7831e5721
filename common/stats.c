/* Counter names, one place for loaderd, the analyzer and the documentation. */
#include <stddef.h>

#include "stats.h"

static const char *const kernel_names[_STAT_MAX] = {
        [STAT_CALLS] = "calls",
        [STAT_RECORDS] = "records",
        [STAT_BYTES] = "bytes",
        [STAT_DROP_RINGBUF_RECORDS] = "drop_ringbuf_records",
        [STAT_DROP_RINGBUF_BYTES] = "drop_ringbuf_bytes",
        [STAT_TRUNC_CALLS] = "truncated_calls",
        [STAT_TRUNC_BYTES] = "truncated_bytes",
        [STAT_READ_FAIL_BYTES] = "drop_read_fail_bytes",
        [STAT_UNMATCHED_RETURN] = "unmatched_returns",
        [STAT_ENTRY_DROPS] = "drop_entries",
        [STAT_NO_SOCKET] = "calls_without_socket",
        [STAT_FILTERED] = "calls_filtered",
        [STAT_ERROR_RETURNS] = "calls_error_or_empty",
        [STAT_FILE_EVENT_DROPS] = "drop_file_events",
        [STAT_CONN_DROPS] = "drop_conn_updates",
        [STAT_INTERRUPTED_CALLS] = "calls_interrupted",
        [STAT_CLOSE_EVENT_DROPS] = "drop_close_events",
        [STAT_OPEN_EVENT_DROPS] = "drop_open_events",
        [STAT_GO_NO_GOID] = "go_no_goid",
        [STAT_GO_NO_FD] = "go_calls_without_fd",
        [STAT_FILTERED_RETURNS] = "returns_filtered",
        [STAT_CONN_WAIT_TIMEOUTS] = "conn_wait_timeouts",
        [STAT_MOVE_UNMARKED] = "move_unmarked_hits",
        [STAT_LOST_RETURNS] = "lost_returns",
};

const char *stat_kernel_name(enum tlssniff_stat s)
{
        if ((unsigned)s >= _STAT_MAX || !kernel_names[s])
                return "unknown";
        return kernel_names[s];
}
