/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Records and map values shared by the BPF programs and user space.
 *
 * Every type here is made of fixed-width fields only, laid out without padding holes, so that
 * BPF, loaderd and the analyzer agree on it byte for byte. loaderd never looks inside a data
 * record; it forwards ring-buffer samples verbatim and only the analyzer decodes them, checking
 * every length against the sample size (see analyzer/record.c).
 */
#pragma once

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define TLSSNIFF_CHUNK_MAX 16384u            /* payload bytes in one data record */
#define TLSSNIFF_CALL_CAP_DEFAULT (4u << 20) /* bytes captured per TLS call by default */
#define TLSSNIFF_CALL_CAP_MAX (64u << 20)
#define TLSSNIFF_COMM_LEN 16
#define TLSSNIFF_FILTER_CGROUPS_MAX 8
#define TLSSNIFF_PROBE_SPECS_MAX 4096
#define TLSSNIFF_DRAIN_MS 10 /* loaderd drains the ring buffer at least this often */

enum tlssniff_record_type {
        TLSSNIFF_REC_DATA = 1,        /* struct tlssniff_data_record + payload */
        TLSSNIFF_REC_EXEC = 2,        /* struct tlssniff_file_record: a process exec'd a file */
        TLSSNIFF_REC_FILE_MAPPED = 3, /* struct tlssniff_file_record: executable mmap of a file */
        TLSSNIFF_REC_CLOSE = 4,       /* struct tlssniff_close_record: a captured socket closed */
        TLSSNIFF_REC_OPEN = 5,        /* struct tlssniff_open_record: a connection got its socket */
};

enum tlssniff_direction {
        TLSSNIFF_DIR_READ = 0,  /* the process received (SSL_read) */
        TLSSNIFF_DIR_WRITE = 1, /* the process sent (SSL_write) */
};

enum tlssniff_role {
        TLSSNIFF_ROLE_UNKNOWN = 0, /* socket older than tlssniff; the analyzer guesses */
        TLSSNIFF_ROLE_CLIENT = 1,  /* the socket was connect()ed */
        TLSSNIFF_ROLE_SERVER = 2,  /* the socket was accept()ed */
};

enum tlssniff_data_flags {
        TLSSNIFF_DATA_TRUNCATED = 1u << 0, /* call moved more than the per-call cap */
        TLSSNIFF_DATA_NO_SOCKET = 1u << 1, /* no socket seen for this TLS object yet */
        TLSSNIFF_DATA_LAST = 1u << 2,      /* last record of this call */
};

/* Which TLS function a probe belongs to; decides how the result is read at return. */
enum tlssniff_func {
        TLSSNIFF_FUNC_SSL_READ = 1,     /* int SSL_read(ssl, buf, num): n > 0 bytes */
        TLSSNIFF_FUNC_SSL_WRITE = 2,    /* int SSL_write(ssl, buf, num) */
        TLSSNIFF_FUNC_SSL_READ_EX = 3,  /* int SSL_read_ex(ssl, buf, num, *readbytes): 1 = ok */
        TLSSNIFF_FUNC_SSL_WRITE_EX = 4, /* int SSL_write_ex(ssl, buf, num, *written) */
        TLSSNIFF_FUNC_GO_READ = 5,      /* crypto/tls.(*Conn).Read(b []byte) (n int, err error) */
        TLSSNIFF_FUNC_GO_WRITE = 6,     /* crypto/tls.(*Conn).Write(b []byte) (n int, err error) */
        /* int ssl3_read_bytes(s, type, *recvd_type, buf, len, peek, *readbytes) and
         * dtls1_read_bytes: only its memcpy of a record's plaintext into buf is probed */
        TLSSNIFF_FUNC_SSL_READ_BYTES = 7,
        TLSSNIFF_FUNC_SSL_FREE = 8,     /* void SSL_free(ssl), int SSL_clear(ssl): the object ends */
        /* int ossl_statem_accept/connect(ssl), the handshake: entry + return probes whose frame
         * ties the TLS object to the socket it does I/O on, and moves no bytes */
        TLSSNIFF_FUNC_SSL_HANDSHAKE = 9,
        /* int do_ssl3_write(s, type, buf, ...): only its copy of a record's plaintext out of the
         * caller's buffer is probed (copy(pkt, src, len)); DTLS's ssl_write_bytes,
         * dtls1_write_app_data_bytes(s, type, buf, len, *written), is probed whole */
        TLSSNIFF_FUNC_SSL_WRITE_BYTES = 10,
        _TLSSNIFF_FUNC_MAX,
};

/* Where a probe sits relative to the function it reads. */
enum tlssniff_probe_kind {
        TLSSNIFF_PROBE_ENTRY = 1,  /* uprobe where the arguments are live */
        TLSSNIFF_PROBE_RETURN = 2, /* uretprobe: result in the return register */
        TLSSNIFF_PROBE_RETURN_AT = 3, /* uprobe on a placed instruction after the work is done */
        TLSSNIFF_PROBE_COPY = 4, /* uprobe on the call that copies the plaintext to the caller
                                    (Go's Read: runtime.memmove; OpenSSL's ssl_read_bytes:
                                    memcpy): source, count, conn; no return */
        TLSSNIFF_PROBE_FORGET = 5, /* uprobe that every call of SSL_free/SSL_clear runs: the TLS
                                      object's connection is forgotten (with reads on the copy,
                                      nothing else tells a reused object from the old one) */
        _TLSSNIFF_PROBE_KIND_MAX,
};

/*
 * Where a probe finds one value. Plain entry probes use the C calling convention; the probe
 * placement analysis (docs/design.md, "Probe specs") can describe other places.
 */
enum tlssniff_loc_kind {
        TLSSNIFF_LOC_NONE = 0,
        TLSSNIFF_LOC_REG = 1,   /* register number in struct pt_regs order, see bpf/regs.h */
        TLSSNIFF_LOC_STACK = 2, /* 64-bit word at stack pointer + off (off % 4 == 0; an int
                                   argument is its low 32 bits) */
};

struct tlssniff_loc {
        __u8 kind;
        __u8 reg;
        __s16 off;
};

enum tlssniff_arg {
        TLSSNIFF_ARG_SSL = 0,
        TLSSNIFF_ARG_BUF = 1,
        TLSSNIFF_ARG_NUM = 2,
        TLSSNIFF_ARG_OUTLEN = 3, /* size_t * of the _ex functions */
        TLSSNIFF_ARG_RESULT = 4, /* return value, for return probes */
        TLSSNIFF_ARG_RTYPE = 5,  /* record type asked for (ssl_read_bytes copy probes) */
        TLSSNIFF_ARG_PEEK = 6,   /* peek flag (ssl_read_bytes copy probes) */
        _TLSSNIFF_ARG_MAX,
};

/* Value of the probe_specs array map, indexed by the attach cookie of each uprobe. */
struct tlssniff_probe_spec {
        __u8 func; /* enum tlssniff_func */
        __u8 kind; /* enum tlssniff_probe_kind */
        __u8 source;
        __u8 pad;
        struct tlssniff_loc loc[_TLSSNIFF_ARG_MAX];
        __u32 file; /* loaderd's file id: key of go_files for Go probes */
        __u32 set; /* loaderd's probe set: two are attached while probes move (probes_moving) */
};

/* Where a Go function finds the running goroutine's g. */
enum tlssniff_go_g {
        TLSSNIFF_GO_G_REG = 1, /* in a register (ABIInternal: r14 on amd64; x28 on arm64) */
        TLSSNIFF_GO_G_FS = 2,  /* at the thread pointer + g_off (amd64 ABI0: fs base - 8) */
};

/*
 * What the Go programs need to know about one Go executable: value of the go_files map, keyed
 * by loaderd's file id. Offsets come from the binary's DWARF, or from a per-version table when
 * it was stripped (analyzer/binary/gotls.c). The socket is found by following the *tls.Conn:
 * tls.Conn.conn (a net.Conn interface: the data word points at a *net.TCPConn) -> net.conn.fd
 * (*net.netFD) -> netFD.pfd (poll.FD) -> FD.Sysfd.
 */
struct tlssniff_go_info {
        __u8 g_kind; /* enum tlssniff_go_g */
        __u8 g_reg;  /* register number (bpf/regs.h) for TLSSNIFF_GO_G_REG */
        __s16 g_off; /* thread pointer offset for TLSSNIFF_GO_G_FS */
        __u32 goid;  /* runtime.g.goid */
        __u32 conn;  /* crypto/tls.Conn.conn */
        __u32 conn_fd; /* net.TCPConn.conn + net.conn.fd */
        __u32 pfd;   /* net.netFD.pfd */
        __u32 sysfd; /* internal/poll.FD.Sysfd */
};
#define TLSSNIFF_GO_OFFSET_MAX 4096u /* no struct member we read lies further in */

enum tlssniff_source {
        TLSSNIFF_SOURCE_OPENSSL = 1,
        TLSSNIFF_SOURCE_GO = 2,
};

/*
 * One chunk of the bytes one TLS call moved. A call that moved call_len bytes yields records
 * whose [call_offset, call_offset + len) ranges cover min(call_len, cap) in order; bytes past
 * the cap are counted (STAT_TRUNC_BYTES) and the last record carries TLSSNIFF_DATA_TRUNCATED.
 * stream_offset is the position of the record's first byte in one direction of one connection,
 * counted from 0 (so the call starts at stream_offset - call_offset); the analyzer orders and
 * checks records that reached it through different CPUs with it.
 */
struct tlssniff_data_record {
        __u32 type; /* TLSSNIFF_REC_DATA */
        __u32 pid;  /* tgid */
        __u32 tid;
        __s32 fd; /* -1 when unknown */
        __u64 timestamp_ns; /* CLOCK_BOOTTIME */
        __u64 conn_id;      /* unique per (TLS object, socket), never reused while loaded */
        __u64 handle;       /* SSL * or *tls.Conn in the process */
        __u64 stream_offset;
        __u32 call_len;
        __u32 call_offset;
        __u32 len; /* payload bytes that follow this header */
        __u16 family; /* AF_INET, AF_INET6, AF_UNIX, 0 = unknown */
        __u16 lport;  /* host order */
        __u16 rport;  /* host order */
        __u8 direction;
        __u8 role;
        __u8 flags;
        __u8 source;
        __u16 pad;
        __u8 laddr[16]; /* network order; IPv4 in the first 4 bytes */
        __u8 raddr[16];
        char comm[TLSSNIFF_COMM_LEN];
        /* followed by len payload bytes */
};

/* A process exec'd or mapped executable an unknown file; loaderd decides what to do. */
struct tlssniff_file_record {
        __u32 type;
        __u32 pid;
        __u64 dev; /* kernel encoding: major << 20 | minor */
        __u64 ino;
        __u64 addr; /* start of the mapping, 0 for exec */
};

/* The socket of a captured connection reached TCP_CLOSE (forwarded to the analyzer). */
struct tlssniff_close_record {
        __u32 type; /* TLSSNIFF_REC_CLOSE */
        __u32 pad;
        __u64 conn_id;
        __u64 timestamp_ns; /* CLOCK_BOOTTIME */
};

/*
 * A captured connection was tied to its socket (forwarded to the analyzer): the socket's
 * addresses and role, when it was connected or accepted (0: before tlssniff started), and when
 * the TLS object was first seen on it.
 */
struct tlssniff_open_record {
        __u32 type; /* TLSSNIFF_REC_OPEN */
        __u32 pid;
        __u64 conn_id;
        __u64 open_ns; /* CLOCK_BOOTTIME of connect()/accept() (TCP SYN_SENT/SYN_RECV), or 0 */
        __u64 seen_ns; /* CLOCK_BOOTTIME when the connection was tied to the socket */
        __s32 fd;
        __u16 family;
        __u16 lport;
        __u16 rport;
        __u8 role;
        __u8 pad;
        __u8 laddr[16];
        __u8 raddr[16];
        char comm[TLSSNIFF_COMM_LEN];
        __u32 pad2;
        __u64 cgroup_id; /* the process's cgroup v2 id (tlssniffctl tail --unit) */
};

/*
 * The target filters and the per-call cap, in the filter_state map so that a reload or
 * tlssniffctl attach/detach changes them while running. A process is a target when it is not
 * tlssniff itself, not excluded (detach), and either forced (attach) or matched by the
 * configured filters: OR within a kind, AND across kinds.
 *
 * The configured filters come in two generations, so that a reload switches from one set to
 * the other at one instant (the programs' filter_gen) instead of key by key: filter_state has a
 * state per generation, a filter_pids or filter_comms key belongs to generation g when its value
 * has bit g (gen_bit) set, and generation g's cgroups are filter_cgroups[cgroups_base ...].
 */
#define TLSSNIFF_FILTER_GENS 2

struct tlssniff_filter_state {
        __u32 call_cap;
        __u8 pids_on;         /* filter_pids holds the allowed processes */
        __u8 comms_on;        /* filter_comms holds the allowed names */
        __u8 cgroups_n;       /* filter_cgroups[cgroups_base, +n) are the allowed cgroups */
        __u8 force_pids_on;   /* force_pids: attached with tlssniffctl */
        __u8 exclude_pids_on; /* exclude_pids: detached with tlssniffctl */
        __u8 force_cgroups_n; /* force_cgroups[0..n) */
        __u8 exclude_cgroups_n; /* exclude_cgroups[0..n) */
        __u8 report_execs;    /* every exec is reported (loaderd follows systemd units) */
        __u8 gen_bit;         /* 1 << this state's generation: see above */
        __u8 cgroups_base;    /* its first filter_cgroups slot */
        __u8 pad[2];
};

/* Key of the known_files map: files loaderd has handled (probed or found without TLS). */
struct tlssniff_file_key {
        __u64 dev;
        __u64 ino;
};

/* Per-CPU counters; names in common/stats.c. Every early return that loses data bumps one. */
enum tlssniff_stat {
        STAT_CALLS = 0,           /* TLS calls that moved bytes and were captured */
        STAT_RECORDS,             /* data records written to the ring buffer */
        STAT_BYTES,               /* payload bytes written to the ring buffer */
        STAT_DROP_RINGBUF_RECORDS, /* data records lost: ring buffer full */
        STAT_DROP_RINGBUF_BYTES,  /* payload bytes lost: ring buffer full */
        STAT_TRUNC_CALLS,         /* calls larger than the per-call cap */
        STAT_TRUNC_BYTES,         /* bytes past the per-call cap */
        STAT_READ_FAIL_BYTES,     /* bytes lost: user memory could not be read */
        STAT_UNMATCHED_RETURN,    /* return without a recorded entry (probe attached mid-call) */
        STAT_ENTRY_DROPS,         /* entry not recorded: table full */
        STAT_NO_SOCKET,           /* calls whose socket was not yet known */
        STAT_FILTERED,            /* calls skipped by the target filters */
        STAT_ERROR_RETURNS,       /* calls that returned an error or 0 bytes */
        STAT_FILE_EVENT_DROPS,    /* exec/mmap notifications lost: ring buffer full */
        STAT_CONN_DROPS,          /* connection table update failed */
        STAT_INTERRUPTED_CALLS,   /* calls whose thread exited before they returned (killed) */
        STAT_CLOSE_EVENT_DROPS,   /* connection-close notifications lost: ring buffer full */
        STAT_OPEN_EVENT_DROPS,    /* connection-open notifications lost: ring buffer full */
        STAT_GO_NO_GOID,          /* Go probe hits whose goroutine id could not be read */
        STAT_GO_NO_FD,            /* Go calls whose socket fd could not be read from the tls.Conn */
        STAT_FILTERED_RETURNS,    /* return probes run for filtered calls (none with sessions) */
        STAT_CONN_WAIT_TIMEOUTS,  /* gave up waiting for another thread's new connection */
        STAT_MOVE_UNMARKED,       /* hits while probes moved that could not be marked */
        STAT_LOST_RETURNS,        /* calls whose return was never seen: bytes not captured */
        _STAT_MAX,
};
