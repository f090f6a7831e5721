// SPDX-License-Identifier: GPL-2.0
/*
 * Capture of TLS plaintext at the library boundary, and the socket identity that goes with it.
 *
 * Uprobes (planned by the analyzer, attached by loaderd with a cookie that indexes probe_specs)
 * record the arguments of SSL_read/SSL_write and friends at entry, keyed by thread, and emit the
 * bytes the call moved at return. The socket is learnt from the socket I/O the same thread does
 * while inside the TLS call (tp_btf/sock_recv_length and sock_send_length where the kernel has
 * them, else the read/write/send/recv system calls), and remembered per TLS object so calls
 * served from OpenSSL's own buffer are still attributed. The role comes from
 * the TCP state machine (tp_btf/inet_sock_set_state). Executables and executable mappings of
 * files loaderd has not seen are reported so that probes follow new processes and dlopen().
 *
 * Only uprobes and tracepoints are used: the kernels we target have no kprobes and refuse
 * fentry programs.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "events.h"
#include "regs.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_CLOSE 7
#define PROT_EXEC 4
#define SSL3_RT_APPLICATION_DATA 23 /* the record type of the caller's bytes */

/* One load or store the compiler keeps, in program order: fields other threads' runs read. */
#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))

/* Tunables, set by loaderd between open and load. */
const volatile __u32 self_tgid = 0;
/*
 * Data records wake loaderd once a CPU has written this much since it last woke it; loaderd
 * also drains every TLSSNIFF_DRAIN_MS. One wakeup per record would cost more than the record.
 * A constant that loaderd could set, but does not: 512 KiB and 2 MiB were measured
 * (docs/performance.md, 2026-12-02) and moved cost from loaderd to the traced server.
 */
const volatile __u64 wakeup_bytes = 128 << 10;
/* Payloads read straight into the ring buffer (emit_direct): --direct-read, where the kernel can. */
const volatile bool direct_read = false;

/* Source of connection ids; only ever incremented atomically (new_conn_id). */
__u64 next_conn_id = 0;

static __always_inline __u64 new_conn_id(void)
{
        return __sync_fetch_and_add(&next_conn_id, 1) + 1;
}

/*
 * Whether the system call programs learn sockets (set by loaderd, after load too: it falls back
 * to them when the socket tracepoints cannot be attached). Off when tp_btf/sock_recv_length and
 * sock_send_length do it.
 */
__u32 io_from_syscalls = 1;

/*
 * Set by loaderd while it moves probes into other processes (loaderd/attach.c): it attaches the
 * new set of probes, then detaches the old one, and in between a hit of a process in both
 * scopes runs a program of each set. The first to run takes the hit and leaves a mark on the
 * thread; the other one finds it and leaves the hit alone (spec_current).
 */
__u32 probes_moving = 0;

/* The generation of the configured target filters in force (struct tlssniff_filter_state). */
__u32 filter_gen = 0;

/* Every record but the data: files, connections opened and closed (and data, see data_rings). */
struct {
        __uint(type, BPF_MAP_TYPE_RINGBUF);
        __uint(max_entries, 32 << 20); /* resized by loaderd */
} events SEC(".maps");

/*
 * Data records go into the ring of the CPU the program runs on: loaderd creates one ring per
 * possible CPU and puts it at the CPU's index. With one ring for all, every reservation took the
 * ring's lock and read its positions and the headers of the records committed since, all of
 * them last written by the other CPUs: cache lines moving between CPUs on every record. loaderd
 * fills every slot before it attaches a probe (or does not start); a record whose CPU's slot
 * were empty would be dropped and counted (STAT_DROP_RINGBUF_*).
 */
struct data_ring {
        __uint(type, BPF_MAP_TYPE_RINGBUF);
        __uint(max_entries, 1 << 20); /* the template; loaderd sizes the rings it makes */
};

struct {
        __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
        __uint(max_entries, 1); /* the number of possible CPUs, set by loaderd */
        __type(key, __u32);
        __array(values, struct data_ring);
} data_rings SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
        __uint(max_entries, _STAT_MAX);
        __type(key, __u32);
        __type(value, __u64);
} stats SEC(".maps");

/* Sockets bound to a captured connection: their close is reported (TLSSNIFF_REC_CLOSE). */
struct {
        __uint(type, BPF_MAP_TYPE_LRU_HASH);
        __uint(max_entries, 65536);
        __type(key, __u64);   /* struct sock * */
        __type(value, __u64); /* conn_id */
} tracked_socks SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_ARRAY);
        __uint(max_entries, TLSSNIFF_PROBE_SPECS_MAX);
        __type(key, __u32);
        __type(value, struct tlssniff_probe_spec);
} probe_specs SEC(".maps");

/*
 * The TLS calls in progress on a thread, innermost last. Calls nest: a read can run a callback
 * that writes (node emits 'secureConnect' from inside SSL_read and the script writes at once),
 * and some builds implement SSL_read with SSL_read_ex. Each call reports its own bytes, except
 * a wrapper (same TLS object, buffer and direction as an outer call), whose outer call does.
 * Bounded LRU: a thread killed mid-call leaks nothing; a frame whose stack pointer is not above
 * a newer entry's is no longer on the stack and is dropped.
 */
#define CALL_FRAMES 4

struct call_frame {
        __u64 ssl;
        __u64 buf;
        __u64 num;
        __u64 outlen;
        __u64 sp;  /* stack pointer at the entry probe */
        __u64 ts;  /* CLOCK_BOOTTIME at entry: a write's bytes are the process's from then */
        __u32 spec;
        __u8 resolved; /* a socket was seen inside this call */
        __u8 wrapper;  /* an outer frame reports these bytes */
        __u8 writes;   /* the call sends (SSL_write*) */
        __u8 quiet;    /* a handshake: it only ties the TLS object to its socket, no bytes */
};

struct active_call {
        struct call_frame f[CALL_FRAMES];
        __u32 n;
        __u32 pad;
};

/*
 * Task-local: found through the task itself, without hashing, by every TLS call and every socket
 * I/O; one per thread that ever made a TLS call, freed with the thread.
 */
struct {
        __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
        __uint(map_flags, BPF_F_NO_PREALLOC);
        __type(key, int);
        __type(value, struct active_call);
} active_calls SEC(".maps");

/* The hit a thread's program took last while probes move (spec_current). */
struct move_mark {
        __u64 ip;
        __u64 sp;
        __u64 ts;  /* bpf_ktime_get_ns() */
        __u32 set; /* the probe set of the program that took it */
        __u32 pad;
};

struct {
        __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
        __uint(map_flags, BPF_F_NO_PREALLOC);
        __type(key, int);
        __type(value, struct move_mark);
} move_marks SEC(".maps");

struct conn_key {
        __u64 handle;
        __u32 tgid;
        __u32 pad;
};

struct conn_info {
        __u64 conn_id;
        __u64 sk;
        __u64 offset[2]; /* next stream offset per direction */
        __s32 fd;
        __u16 family;
        __u16 lport;
        __u16 rport;
        __u8 role;
        __u8 publishing; /* sk set, its tracked_socks entry not yet: see learn_socket */
        __u8 pad[2];
        __u8 laddr[16];
        __u8 raddr[16];
        __u64 next_id; /* set (once) by the thread replacing this connection: see learn_socket */
};

/* TLS object -> socket. LRU: connections that go away are evicted by newer ones. */
struct {
        __uint(type, BPF_MAP_TYPE_LRU_HASH);
        __uint(max_entries, 65536);
        __type(key, struct conn_key);
        __type(value, struct conn_info);
} conns SEC(".maps");

struct sock_info {
        __u64 open_ns; /* CLOCK_BOOTTIME of SYN_SENT / SYN_RECV */
        __u8 role;     /* enum tlssniff_role */
        __u8 pad[7];
};

/* struct sock * -> role and open time, from the TCP state machine. Deleted on close. */
struct {
        __uint(type, BPF_MAP_TYPE_LRU_HASH);
        __uint(max_entries, 65536);
        __type(key, __u64);
        __type(value, struct sock_info);
} sock_roles SEC(".maps");

/* Files loaderd has handled; exec and mmap of these are not reported again. An LRU: files
 * made in a loop (memfd executables) push out the least used, which, mapped again, are
 * reported again and deduplicated by loaderd. */
struct {
        __uint(type, BPF_MAP_TYPE_LRU_HASH);
        __uint(max_entries, 65536);
        __type(key, struct tlssniff_file_key);
        __type(value, __u8);
} known_files SEC(".maps");

/* Executable mmap seen at syscall entry, reported at exit once the address is known. */
struct {
        __uint(type, BPF_MAP_TYPE_LRU_HASH);
        __uint(max_entries, 4096);
        __type(key, __u32);
        __type(value, struct tlssniff_file_key);
} pending_mmaps SEC(".maps");

/*
 * Programs whose TLS objects do no socket I/O themselves (memory BIOs: node, asyncio) are
 * marked here; for their threads the socket is taken from the last read-type system call
 * before an SSL_read and from the next write-type system call after an SSL_write.
 */
struct {
        __uint(type, BPF_MAP_TYPE_LRU_HASH);
        __uint(max_entries, 4096);
        __type(key, __u32); /* tgid */
        __type(value, __u8);
} membio_tgids SEC(".maps");

/* Set once membio_tgids has had an entry: until then socket I/O skips looking there. */
__u32 membio_any = 0;

struct io_sock {
        __u64 sk; /* struct sock *, 0 when only the fd is known (system call hooks) */
        __s32 fd; /* -1 when only the socket is known (I/O outside the system calls we know) */
        __s32 kind; /* IO_READ or IO_WRITE (with fd IO_FD_LATER: which system call has it) */
};

/* The fd is read from the system call's registers only when a new connection needs it. */
#define IO_FD_LATER (-2)

struct {
        __uint(type, BPF_MAP_TYPE_LRU_HASH);
        __uint(max_entries, 16384);
        __type(key, __u32); /* tid */
        __type(value, struct io_sock);
} last_read_fd SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_LRU_HASH);
        __uint(max_entries, 16384);
        __type(key, __u32); /* tid */
        __type(value, struct conn_key);
} pending_write SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(max_entries, 1024);
        __type(key, __u32);
        __type(value, __u8); /* the generations the process is in (gen_bit) */
} filter_pids SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(max_entries, 128);
        __type(key, char[TLSSNIFF_COMM_LEN]);
        __type(value, __u8); /* the generations the name is in (gen_bit) */
} filter_comms SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
        __uint(max_entries, TLSSNIFF_FILTER_GENS * TLSSNIFF_FILTER_CGROUPS_MAX);
        __type(key, __u32);
        __type(value, __u32);
} filter_cgroups SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_ARRAY);
        __uint(max_entries, TLSSNIFF_FILTER_GENS);
        __type(key, __u32);
        __type(value, struct tlssniff_filter_state);
} filter_state SEC(".maps");

/*
 * Never looked up by a program: loaderd updates it to wait for the programs running at that
 * moment to finish (the kernel waits for a grace period on every update of a map of maps), so
 * that the filter generation just left is no longer read when it rewrites it.
 */
struct grace_inner {
        __uint(type, BPF_MAP_TYPE_ARRAY);
        __uint(max_entries, 1);
        __type(key, __u32);
        __type(value, __u32);
};

struct {
        __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
        __uint(max_entries, 1);
        __type(key, __u32);
        __array(values, struct grace_inner);
} programs_grace SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(max_entries, 1024);
        __type(key, __u32);
        __type(value, __u8);
} force_pids SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(max_entries, 1024);
        __type(key, __u32);
        __type(value, __u8);
} exclude_pids SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
        __uint(max_entries, TLSSNIFF_FILTER_CGROUPS_MAX);
        __type(key, __u32);
        __type(value, __u32);
} force_cgroups SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
        __uint(max_entries, TLSSNIFF_FILTER_CGROUPS_MAX);
        __type(key, __u32);
        __type(value, __u32);
} exclude_cgroups SEC(".maps");

/* Scratch for one record: the 512-byte stack cannot hold a chunk. */
struct scratch {
        struct tlssniff_data_record rec;
        __u8 data[TLSSNIFF_CHUNK_MAX];
        __u64 unwoken; /* bytes this CPU wrote to the ring since it last woke loaderd */
};

struct {
        __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
        __uint(max_entries, 1);
        __type(key, __u32);
        __type(value, struct scratch);
} scratch_map SEC(".maps");

static __always_inline void stat_add(__u32 idx, __u64 n)
{
        __u64 *v = bpf_map_lookup_elem(&stats, &idx);

        if (v)
                *v += n; /* per-CPU slot: no other writer */
}

/* The filter state of the generation in force: read once per decision. */
static __always_inline const struct tlssniff_filter_state *filter_state_get(void)
{
        __u32 gen = READ_ONCE(filter_gen) & (TLSSNIFF_FILTER_GENS - 1);

        return bpf_map_lookup_elem(&filter_state, &gen);
}

/* Whether the current task is under one of cgroups[base, base + n). */
static __always_inline bool under_cgroup(void *cgroups, __u32 base, __u32 n)
{
        for (__u32 i = 0; i < TLSSNIFF_FILTER_CGROUPS_MAX && i < n; i++)
                if (bpf_current_task_under_cgroup(cgroups, base + i) == 1)
                        return true;
        return false;
}

/* Whether a filter_pids or filter_comms key is in the generation of gen_bit. */
static __always_inline bool in_gen(void *map, const void *key, __u8 gen_bit)
{
        __u8 *v = bpf_map_lookup_elem(map, key);

        return v && (*v & gen_bit);
}

/*
 * Two programs of one hit run one after the other, with the same registers, within this of each
 * other (unless the thread is preempted in between for longer: then both take the hit). A mark
 * older than this is of another hit: a thread whose hit ran only the old set's program and whose
 * next hit at the same place runs only the new set's is at least a detach apart (which waits
 * for a grace period of the kernel's, milliseconds).
 */
#define MOVE_MARK_NS 1000000ull

/*
 * Whether the program of set takes this hit while probes move: yes unless the other set's
 * program took it already (a mark of the other set at the same instruction and stack pointer,
 * just made). The kernel runs a hit's programs in an order of its own, so either may come first;
 * the second clears the mark, so the thread's next hit at the same place starts afresh. A hit of
 * a process in one scope only runs one program, and its mark is then of the same set as the next.
 */
static __noinline bool move_takes_hit(struct pt_regs *ctx, __u32 set)
{
        struct move_mark *m = bpf_task_storage_get(&move_marks, bpf_get_current_task_btf(), NULL,
                                                   BPF_LOCAL_STORAGE_GET_F_CREATE);
        __u64 ip = PT_REGS_IP(ctx), sp = PT_REGS_SP(ctx), now = bpf_ktime_get_ns();

        if (!m) {
                stat_add(STAT_MOVE_UNMARKED, 1); /* taken by both sets, perhaps */
                return true;
        }
        if (m->set != set && m->ip == ip && m->sp == sp && now - m->ts < MOVE_MARK_NS) {
                m->ts = 0;
                return false;
        }
        m->ip = ip;
        m->sp = sp;
        m->ts = now;
        m->set = set;
        return true;
}

/* The spec of probe idx, unless the hit is another set's (see probes_moving); else NULL. */
static __always_inline struct tlssniff_probe_spec *spec_current(struct pt_regs *ctx, __u32 idx)
{
        struct tlssniff_probe_spec *spec = bpf_map_lookup_elem(&probe_specs, &idx);

        if (!spec)
                return NULL;
        if (READ_ONCE(probes_moving) && !move_takes_hit(ctx, spec->set))
                return NULL;
        return spec;
}

/* See struct tlssniff_filter_state. */
static __always_inline bool is_target(__u32 tgid)
{
        const struct tlssniff_filter_state *f = filter_state_get();

        if (tgid == self_tgid || !f)
                return false;
        if (f->exclude_pids_on && bpf_map_lookup_elem(&exclude_pids, &tgid))
                return false;
        if (f->exclude_cgroups_n && under_cgroup(&exclude_cgroups, 0, f->exclude_cgroups_n))
                return false;
        if (f->force_pids_on && bpf_map_lookup_elem(&force_pids, &tgid))
                return true;
        if (f->force_cgroups_n && under_cgroup(&force_cgroups, 0, f->force_cgroups_n))
                return true;
        if (f->pids_on && !in_gen(&filter_pids, &tgid, f->gen_bit))
                return false;
        if (f->comms_on) {
                char comm[TLSSNIFF_COMM_LEN] = {};

                bpf_get_current_comm(comm, sizeof(comm));
                if (!in_gen(&filter_comms, comm, f->gen_bit))
                        return false;
        }
        if (f->cgroups_n && !under_cgroup(&filter_cgroups, f->cgroups_base, f->cgroups_n))
                return false;
        return true;
}

static __always_inline __u64 read_loc(const struct pt_regs *regs, const struct tlssniff_loc *loc)
{
        __u64 v = 0;

        if (loc->kind == TLSSNIFF_LOC_REG)
                return tlssniff_reg_read(regs, loc->reg);
        if (loc->kind == TLSSNIFF_LOC_STACK) {
                __u64 sp = PT_REGS_SP(regs);

                bpf_probe_read_user(&v, sizeof(v), (void *)(sp + loc->off));
        }
        return v;
}

/*
 * An ssl_read_bytes call (spec: its record type and peek flag) that hands the caller bytes it
 * consumes: application data, not a peek (SSL_peek's bytes are copied again by the next read).
 * A record written (ssl_write_bytes, do_ssl3_write: no peek flag, read as 0): application data.
 */
static __always_inline bool delivers_app_data(const struct pt_regs *regs,
                                              const struct tlssniff_probe_spec *spec)
{
        return (int)read_loc(regs, &spec->loc[TLSSNIFF_ARG_RTYPE]) == SSL3_RT_APPLICATION_DATA &&
               (int)read_loc(regs, &spec->loc[TLSSNIFF_ARG_PEEK]) == 0;
}

/* &c->f[i] with i masked where the verifier sees it (the compiler drops a mask it can prove). */
static __always_inline struct call_frame *frame_at(struct active_call *c, __u32 i)
{
        asm volatile("" : "+r"(i));
        i &= CALL_FRAMES - 1;
        return &c->f[i];
}

/* Whether the frame's call reports bytes of its own (not a wrapper's inner call, a handshake). */
static __always_inline bool frame_reports(const struct call_frame *f)
{
        return !f->wrapper && !f->quiet;
}

/*
 * A frame dropped because its call is gone without its return probe having run (a longjmp, a
 * return the kernel did not report: an uprobe session whose set of probes was detached while
 * the call was in progress): the bytes of a call that moves them are lost, and counted.
 */
static __always_inline void count_lost_return(const struct call_frame *f)
{
        if (frame_reports(f))
                stat_add(STAT_LOST_RETURNS, 1);
}

static __always_inline bool func_writes(__u8 func)
{
        return func == TLSSNIFF_FUNC_SSL_WRITE || func == TLSSNIFF_FUNC_SSL_WRITE_EX ||
               func == TLSSNIFF_FUNC_SSL_WRITE_BYTES;
}

/*
 * The entry side of a TLS call: records its arguments on the thread's stack of calls in progress.
 * Returns 1 when the call has nothing for the return side (filtered out, or not recorded): an
 * uprobe session then skips the return probe altogether (see tls_session).
 */
static __always_inline int tls_entry_do(struct pt_regs *ctx)
{
        __u64 pid_tgid = bpf_get_current_pid_tgid();
        __u32 tgid = pid_tgid >> 32;
        __u32 spec_idx = (__u32)bpf_get_attach_cookie(ctx);
        struct tlssniff_probe_spec *spec;
        struct active_call *cur;
        struct call_frame *f;
        struct pt_regs regs;
        __u64 sp = PT_REGS_SP(ctx);
        __u32 n;

        if (!is_target(tgid)) {
                stat_add(STAT_FILTERED, 1);
                return 1;
        }
        spec = spec_current(ctx, spec_idx);
        if (!spec)
                return 1;
        cur = bpf_task_storage_get(&active_calls, bpf_get_current_task_btf(), NULL,
                                   BPF_LOCAL_STORAGE_GET_F_CREATE);
        if (!cur) {
                stat_add(STAT_ENTRY_DROPS, 1);
                return 1;
        }
        n = cur->n;
        /* Frames not above us on the stack belong to calls that are gone. */
        for (int i = 0; i < CALL_FRAMES; i++) {
                if (n == 0 || n > CALL_FRAMES || frame_at(cur, n - 1)->sp > sp)
                        break;
                count_lost_return(frame_at(cur, n - 1));
                n--;
        }
        if (n >= CALL_FRAMES) {
                cur->n = CALL_FRAMES;
                stat_add(STAT_ENTRY_DROPS, 1);
                return 1;
        }
        tlssniff_regs_copy(&regs, ctx);
        f = frame_at(cur, n);
        f->ssl = read_loc(&regs, &spec->loc[TLSSNIFF_ARG_SSL]);
        f->buf = read_loc(&regs, &spec->loc[TLSSNIFF_ARG_BUF]);
        f->num = read_loc(&regs, &spec->loc[TLSSNIFF_ARG_NUM]);
        if (spec->func == TLSSNIFF_FUNC_SSL_READ || spec->func == TLSSNIFF_FUNC_SSL_WRITE)
                f->num = (__u32)f->num; /* an int: the upper half of the register is junk */
        f->outlen = read_loc(&regs, &spec->loc[TLSSNIFF_ARG_OUTLEN]);
        f->spec = spec_idx;
        f->sp = sp;
        f->ts = bpf_ktime_get_boot_ns();
        f->resolved = 0;
        f->wrapper = 0;
        f->writes = func_writes(spec->func);
        f->quiet = spec->func == TLSSNIFF_FUNC_SSL_HANDSHAKE;
        /* ssl_read_bytes or ssl_write_bytes probed whole (sslcopy.h): only a call with
         * application data (a read: not a peek) moves the caller's bytes; any other is a frame
         * for the socket only. */
        if ((spec->func == TLSSNIFF_FUNC_SSL_READ_BYTES ||
             spec->func == TLSSNIFF_FUNC_SSL_WRITE_BYTES) &&
            !delivers_app_data(&regs, spec))
                f->quiet = 1;
        for (__u32 i = 0; i < CALL_FRAMES - 1; i++) {
                struct call_frame *o;

                if (i >= n)
                        break;
                o = frame_at(cur, i);
                if (o->ssl == f->ssl && o->buf == f->buf && o->writes == f->writes)
                        f->wrapper = 1;
        }
        cur->n = n + 1;
        return 0;
}

SEC("uprobe")
int tls_entry(struct pt_regs *ctx)
{
        tls_entry_do(ctx);
        return 0;
}

static __always_inline void fill_addrs(struct conn_info *ci, struct sock *sk)
{
        __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

        ci->family = family;
        if (family == AF_INET) {
                __u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
                __u32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);

                __builtin_memcpy(ci->laddr, &l, 4);
                __builtin_memcpy(ci->raddr, &r, 4);
        } else if (family == AF_INET6) {
                BPF_CORE_READ_INTO(&ci->laddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
                BPF_CORE_READ_INTO(&ci->raddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
        }
        if (family == AF_INET || family == AF_INET6) {
                ci->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
                ci->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
        }
}

/* The struct sock behind fd in the current task, or NULL when fd is not a socket. */
static __always_inline struct sock *sock_from_fd(int fd)
{
        struct task_struct *task = bpf_get_current_task_btf();
        struct file **fdarr;
        struct file *file = NULL;
        struct socket *sock;
        unsigned int max_fds;

        if (fd < 0)
                return NULL;
        max_fds = BPF_CORE_READ(task, files, fdt, max_fds);
        if ((unsigned int)fd >= max_fds)
                return NULL;
        fdarr = BPF_CORE_READ(task, files, fdt, fd);
        if (bpf_probe_read_kernel(&file, sizeof(file), &fdarr[fd]) < 0 || !file)
                return NULL;
        sock = BPF_CORE_READ(file, private_data);
        if (!sock)
                return NULL;
        /* A socket's file and struct socket point at each other; nothing else does. */
        if (BPF_CORE_READ(sock, file) != file)
                return NULL;
        return BPF_CORE_READ(sock, sk);
}

/* Tells the analyzer a connection now has its socket (open time, addresses, role). */
static __always_inline void emit_open(__u32 tgid, const struct conn_info *ci,
                                      const struct sock_info *si)
{
        struct tlssniff_open_record *r;

        r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
        if (!r) {
                stat_add(STAT_OPEN_EVENT_DROPS, 1);
                return;
        }
        r->type = TLSSNIFF_REC_OPEN;
        r->pid = tgid;
        r->conn_id = ci->conn_id;
        r->open_ns = si ? si->open_ns : 0;
        r->seen_ns = bpf_ktime_get_boot_ns();
        r->fd = ci->fd;
        r->family = ci->family;
        r->lport = ci->lport;
        r->rport = ci->rport;
        r->role = ci->role;
        r->pad = 0;
        r->pad2 = 0;
        r->cgroup_id = bpf_get_current_cgroup_id();
        __builtin_memcpy(r->laddr, ci->laddr, 16);
        __builtin_memcpy(r->raddr, ci->raddr, 16);
        bpf_get_current_comm(r->comm, sizeof(r->comm));
        bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP); /* loaderd drains every few ms */
}

enum { IO_NONE = 0, IO_READ = 1, IO_WRITE = 2 };

/* read, readv, recvfrom, recvmsg, recvmmsg / write, writev, sendto, sendmsg, sendmmsg */
static __always_inline int io_syscall_kind(long id)
{
#if defined(__TARGET_ARCH_x86)
        if (id == 0 || id == 19 || id == 45 || id == 47 || id == 299)
                return IO_READ;
        if (id == 1 || id == 20 || id == 44 || id == 46 || id == 307)
                return IO_WRITE;
#elif defined(__TARGET_ARCH_arm64)
        if (id == 63 || id == 65 || id == 207 || id == 212 || id == 243)
                return IO_READ;
        if (id == 64 || id == 66 || id == 206 || id == 211 || id == 269)
                return IO_WRITE;
#else
#error "unsupported architecture"
#endif
        return IO_NONE;
}

/*
 * The fd of the system call the current thread is in, when it is a read-type (kind IO_READ) or
 * write-type call we know, else -1 (io_uring, splice, a kernel-internal send).
 */
static __always_inline int syscall_fd(int kind)
{
        struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());

        if (io_syscall_kind(tlssniff_syscall_nr(regs)) != kind)
                return -1;
        return (int)PT_REGS_PARM1_CORE_SYSCALL(regs);
}

/*
 * A connection just inserted with publishing set gets its tracked_socks entry, then loses the
 * flag (unless another thread replaced it meanwhile), and is announced.
 */
static __always_inline void publish_fresh(struct conn_key *key, struct conn_info *fresh,
                                          const struct sock_info *si)
{
        struct conn_info *ci;

        bpf_map_update_elem(&tracked_socks, &fresh->sk, &fresh->conn_id, BPF_ANY);
        ci = bpf_map_lookup_elem(&conns, key);
        if (ci && ci->conn_id == fresh->conn_id)
                WRITE_ONCE(ci->publishing, 0);
        emit_open(key->tgid, fresh, si);
}

/*
 * How long a thread waits for a connection another thread is inserting: an update of the LRU
 * map took up to 73 us in the tests (its lists are rebalanced now and then), and the hypervisor
 * can stop a virtual CPU for longer. The bound is on time; the loop's count only has to exceed
 * it (a lookup takes about 25 ns).
 */
#define CONN_WAIT_NS 2000000ull
#define CONN_WAIT_LOOKUPS (1 << 18)

struct wait_new {
        struct conn_key key;
        __u64 id;       /* the connection awaited */
        __u64 old_id;   /* the connection it replaces */
        __u64 sk;       /* the waiting thread's socket: a new connection on it ends the wait */
        __u64 until;    /* bpf_ktime_get_ns() deadline */
        __u64 found_sk; /* the socket of the connection found (never 0), 0 until then */
};

/*
 * The old connection never ends the wait, even on the waiting thread's socket: the kernel often
 * gives a new socket the memory of the one just freed, so the old connection can show the same
 * socket pointer, and taking it would put the thread's records into the old connection.
 */
static long wait_new_conn(__u32 i, void *arg)
{
        struct wait_new *w = arg;
        struct conn_info *ci = bpf_map_lookup_elem(&conns, &w->key);
        __u64 sk, id;

        if (!ci)
                return bpf_ktime_get_ns() > w->until;
        sk = READ_ONCE(ci->sk);
        id = READ_ONCE(ci->conn_id);
        if (id != w->id && (sk != w->sk || id == w->old_id))
                return bpf_ktime_get_ns() > w->until;
        w->found_sk = sk;
        return 1;
}

/*
 * Ties the TLS object of key to the socket of io (the socket the thread did I/O on, or the one
 * behind its fd), starting a new connection if needed.
 *
 * Two threads may do this for one object at once (Go learns the socket on every call, and an
 * HTTP/2 server reads and writes a connection from two goroutines): they must agree on one
 * connection (docs/design.md). A thread that finds the object's connection on this socket takes
 * it as the same connection when the socket's tracked_socks entry names it, or while the thread
 * that tied them is still publishing; a socket whose entry is gone or names another connection
 * closed, and the kernel gave its memory to a new one that the same TLS object (reallocated at
 * the same address: Go's allocator does that) now uses. So the entry is written before the
 * connection shows the socket, or the connection is inserted flagged as publishing until it is.
 * A first connection is inserted only if none exists; a replacement only by the thread that
 * marked the old connection superseded (next_id), the others waiting for it to appear.
 */
static __always_inline bool learn_socket(struct conn_key *key, const struct io_sock *io)
{
        struct conn_info *ci, fresh = {};
        struct sock_info *si;
        struct sock *sk;
        int fd = io->fd;
        __u64 skp;

        if (io->sk) {
                sk = (struct sock *)io->sk;
        } else {
                sk = sock_from_fd(fd);
                if (!sk)
                        return false; /* not a socket: a pipe, an eventfd, a file */
        }
        skp = (__u64)sk;
        ci = bpf_map_lookup_elem(&conns, key);
        if (ci && READ_ONCE(ci->sk) == skp) {
                __u64 *tracked = bpf_map_lookup_elem(&tracked_socks, &skp);

                if ((tracked && *tracked == ci->conn_id) || READ_ONCE(ci->publishing))
                        return true;
        }
        /*
         * Not the connection the TLS object had: the socket's fd (found only now, off the common
         * path) is reported only if it is provably this socket's.
         */
        if (io->sk) {
                if (fd == IO_FD_LATER)
                        fd = syscall_fd(io->kind);
                if (fd >= 0 && sock_from_fd(fd) != sk)
                        fd = -1;
        }
        si = bpf_map_lookup_elem(&sock_roles, &skp);
        fresh.sk = skp;
        fresh.fd = fd;
        fresh.role = si ? si->role : TLSSNIFF_ROLE_UNKNOWN;
        fresh.publishing = 1;
        fill_addrs(&fresh, sk);
        if (!ci) {
                /*
                 * The object had no connection: insert ours unless another thread's call of the
                 * same object did so since our lookup; its connection is then this socket's, or
                 * one without a socket yet (adopted below).
                 */
                fresh.conn_id = new_conn_id();
                if (bpf_map_update_elem(&conns, key, &fresh, BPF_NOEXIST) == 0) {
                        publish_fresh(key, &fresh, si);
                        return true;
                }
                ci = bpf_map_lookup_elem(&conns, key);
                if (ci && READ_ONCE(ci->sk) == skp)
                        return true;
        }
        if (ci && READ_ONCE(ci->sk) == 0) {
                /*
                 * First socket seen for a TLS object whose data was captured before. Threads
                 * doing this at once write the same values; the one whose compare-and-swap
                 * sets the socket announces it.
                 */
                bpf_map_update_elem(&tracked_socks, &skp, &ci->conn_id, BPF_ANY);
                ci->fd = fd;
                ci->role = fresh.role;
                fill_addrs(ci, sk);
                if (__sync_val_compare_and_swap(&ci->sk, 0, skp) == 0)
                        emit_open(key->tgid, ci, si);
                return true;
        }
        /*
         * The TLS object was reused for another socket. Threads that find that at once agree
         * through the old connection: the one that marks it superseded (next_id, compare and
         * swap) inserts the new connection, the others wait for it to appear.
         */
        if (!fresh.conn_id)
                fresh.conn_id = new_conn_id();
        if (ci) {
                __u64 old_id = READ_ONCE(ci->conn_id);
                __u64 won = __sync_val_compare_and_swap(&ci->next_id, 0, fresh.conn_id);

                if (READ_ONCE(ci->conn_id) != old_id) {
                        /*
                         * Since our lookup another thread replaced the object's connection and
                         * the old element was freed and reused for another one (the LRU map
                         * reuses elements at once): undo, and take the object's connection now
                         * if it is on this socket.
                         */
                        if (!won)
                                __sync_val_compare_and_swap(&ci->next_id, fresh.conn_id, 0);
                        ci = bpf_map_lookup_elem(&conns, key);
                        if (ci && READ_ONCE(ci->sk) == skp)
                                return true;
                        ci = NULL;
                } else if (won) {
                        struct wait_new w = { .key = *key, .id = won, .old_id = old_id,
                                              .sk = skp,
                                              .until = bpf_ktime_get_ns() + CONN_WAIT_NS };

                        bpf_loop(CONN_WAIT_LOOKUPS, wait_new_conn, &w, 0);
                        if (!w.found_sk) {
                                stat_add(STAT_CONN_WAIT_TIMEOUTS, 1);
                                return true;
                        }
                        if (w.found_sk == skp)
                                return true;
                        ci = NULL; /* the winner saw another socket: replace its connection */
                }
        }
        if (bpf_map_update_elem(&conns, key, &fresh, BPF_ANY) < 0) {
                stat_add(STAT_CONN_DROPS, 1);
                if (ci) /* the old connection stays: a later call may replace it */
                        __sync_val_compare_and_swap(&ci->next_id, fresh.conn_id, 0);
                return true;
        }
        publish_fresh(key, &fresh, si);
        return true;
}

#if defined(__TARGET_ARCH_x86)
#define NR_MMAP 9
#elif defined(__TARGET_ARCH_arm64)
#define NR_MMAP 222
#endif

static __always_inline int file_key_of(struct file *file, struct tlssniff_file_key *key)
{
        struct inode *inode = BPF_CORE_READ(file, f_inode);

        if (!inode)
                return -1;
        key->dev = BPF_CORE_READ(inode, i_sb, s_dev);
        key->ino = BPF_CORE_READ(inode, i_ino);
        return 0;
}

static __always_inline void emit_file(__u32 type, __u32 tgid, struct tlssniff_file_key *key,
                                      __u64 addr)
{
        struct tlssniff_file_record *r;

        r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
        if (!r) {
                stat_add(STAT_FILE_EVENT_DROPS, 1);
                return;
        }
        r->type = type;
        r->pid = tgid;
        r->dev = key->dev;
        r->ino = key->ino;
        r->addr = addr;
        bpf_ringbuf_submit(r, BPF_RB_FORCE_WAKEUP); /* new files: attach without delay */
}

static __always_inline void note_exec_mmap(__u32 tid, unsigned long prot, int fd)
{
        struct task_struct *task = bpf_get_current_task_btf();
        struct tlssniff_file_key key = {};
        struct file **fdarr;
        struct file *file = NULL;
        unsigned int max_fds;

        if (!(prot & PROT_EXEC) || fd < 0)
                return;
        max_fds = BPF_CORE_READ(task, files, fdt, max_fds);
        if ((unsigned int)fd >= max_fds)
                return;
        fdarr = BPF_CORE_READ(task, files, fdt, fd);
        if (bpf_probe_read_kernel(&file, sizeof(file), &fdarr[fd]) < 0 || !file)
                return;
        if (file_key_of(file, &key) < 0 || bpf_map_lookup_elem(&known_files, &key))
                return;
        bpf_map_update_elem(&pending_mmaps, &tid, &key, BPF_ANY);
}

/* Socket I/O (io->kind IO_READ/IO_WRITE) by the current thread, on io's socket or fd. */
static __always_inline int io_seen(const struct io_sock *io)
{
        __u64 pid_tgid = bpf_get_current_pid_tgid();
        __u32 tid = (__u32)pid_tgid, tgid = pid_tgid >> 32;
        struct active_call *call;
        struct call_frame *f;

        if (tgid == self_tgid)
                return 0;
        call = bpf_task_storage_get(&active_calls, bpf_get_current_task_btf(), NULL, 0);
        if (call && call->n > 0 && call->n <= CALL_FRAMES) {
                /* The innermost call in progress is the one doing this I/O. */
                f = frame_at(call, call->n - 1);
                struct conn_key key = { .handle = f->ssl, .tgid = tgid };

                if (!f->resolved && learn_socket(&key, io))
                        f->resolved = 1;
                return 0;
        }
        if (!membio_any || !bpf_map_lookup_elem(&membio_tgids, &tgid))
                return 0;
        if (io->kind == IO_READ) {
                struct io_sock last = *io;

                if (last.fd == IO_FD_LATER)
                        last.fd = syscall_fd(io->kind); /* the system call is gone later */
                bpf_map_update_elem(&last_read_fd, &tid, &last, BPF_ANY);
        } else {
                struct conn_key *pk = bpf_map_lookup_elem(&pending_write, &tid);

                if (pk) {
                        struct conn_key key = *pk;

                        bpf_map_delete_elem(&pending_write, &tid);
                        learn_socket(&key, io);
                }
        }
        return 0;
}

/* A read or write system call on fd, when the system call programs learn sockets. */
static __always_inline int io_enter(int kind, int fd)
{
        struct io_sock io = { .fd = fd, .kind = kind };

        if (!io_from_syscalls)
                return 0;
        return io_seen(&io);
}

static __always_inline int mmap_exit(long ret)
{
        __u64 pid_tgid = bpf_get_current_pid_tgid();
        __u32 tid = (__u32)pid_tgid;
        struct tlssniff_file_key *key = bpf_map_lookup_elem(&pending_mmaps, &tid);

        if (!key)
                return 0;
        if (ret > 0 || ret < -4095)
                emit_file(TLSSNIFF_REC_FILE_MAPPED, pid_tgid >> 32, key, (__u64)ret);
        bpf_map_delete_elem(&pending_mmaps, &tid);
        return 0;
}

/*
 * Two ways to see system calls; loaderd attaches one set. The per-call tracepoints
 * (syscalls/sys_enter_read and friends, through tracefs) run only for the calls that matter;
 * the raw sys_enter/sys_exit tracepoints run for every system call on the host (about 0.3 µs
 * each here) and are the fallback when tracefs cannot be had.
 */
SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter, struct pt_regs *regs, long id)
{
        int kind;

        if (id == NR_MMAP) {
                note_exec_mmap((__u32)bpf_get_current_pid_tgid(),
                               PT_REGS_PARM3_CORE_SYSCALL(regs),
                               (int)PT_REGS_PARM5_CORE_SYSCALL(regs));
                return 0;
        }
        kind = io_syscall_kind(id);
        if (kind == IO_NONE)
                return 0;
        return io_enter(kind, (int)PT_REGS_PARM1_CORE_SYSCALL(regs));
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit, struct pt_regs *regs, long ret)
{
        if (tlssniff_syscall_nr(regs) != NR_MMAP)
                return 0;
        return mmap_exit(ret);
}

#define IO_TRACEPOINT(name, kind)                                                                  \
        SEC("tracepoint/syscalls/sys_enter_" #name)                                                \
        int tp_##name(struct trace_event_raw_sys_enter *ctx)                                       \
        {                                                                                          \
                return io_enter(kind, (int)ctx->args[0]);                                          \
        }

IO_TRACEPOINT(read, IO_READ)
IO_TRACEPOINT(readv, IO_READ)
IO_TRACEPOINT(recvfrom, IO_READ)
IO_TRACEPOINT(recvmsg, IO_READ)
IO_TRACEPOINT(recvmmsg, IO_READ)
IO_TRACEPOINT(write, IO_WRITE)
IO_TRACEPOINT(writev, IO_WRITE)
IO_TRACEPOINT(sendto, IO_WRITE)
IO_TRACEPOINT(sendmsg, IO_WRITE)
IO_TRACEPOINT(sendmmsg, IO_WRITE)

/*
 * Socket I/O seen where it happens (sock_recvmsg/sock_sendmsg, after the protocol's call): only
 * socket reads and writes run these, other system calls pay nothing, and the socket comes with
 * the event instead of from a walk of the fd table.
 */
SEC("tp_btf/sock_recv_length")
int BPF_PROG(sock_recv, struct sock *sk, int ret, int flags)
{
        struct io_sock io = { .sk = (__u64)sk, .fd = IO_FD_LATER, .kind = IO_READ };

        return io_seen(&io);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(sock_send, struct sock *sk, int ret, int flags)
{
        struct io_sock io = { .sk = (__u64)sk, .fd = IO_FD_LATER, .kind = IO_WRITE };

        return io_seen(&io);
}

SEC("tracepoint/syscalls/sys_enter_mmap")
int tp_mmap_enter(struct trace_event_raw_sys_enter *ctx)
{
        note_exec_mmap((__u32)bpf_get_current_pid_tgid(), ctx->args[2], (int)ctx->args[4]);
        return 0;
}

SEC("tracepoint/syscalls/sys_exit_mmap")
int tp_mmap_exit(struct trace_event_raw_sys_exit *ctx)
{
        return mmap_exit(ctx->ret);
}

/*
 * A thread ends: forget its per-thread state at once (tids are reused), and count the TLS calls
 * it was still inside (a process killed in the middle of SSL_read or SSL_write): their bytes
 * never reached the caller, so no record is made, but the loss is visible.
 */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(thread_exit, struct task_struct *p)
{
        struct task_struct *task = bpf_get_current_task_btf();
        __u32 tid = (__u32)bpf_get_current_pid_tgid();
        struct active_call *cur = bpf_task_storage_get(&active_calls, task, NULL, 0);

        if (cur) {
                __u32 n = cur->n, lost = 0;

                for (__u32 i = 0; i < CALL_FRAMES; i++)
                        if (i < n && frame_reports(frame_at(cur, i)))
                                lost++;
                if (lost)
                        stat_add(STAT_INTERRUPTED_CALLS, lost);
                bpf_task_storage_delete(&active_calls, task);
        }
        bpf_map_delete_elem(&last_read_fd, &tid);
        bpf_map_delete_elem(&pending_write, &tid);
        bpf_map_delete_elem(&pending_mmaps, &tid);
        return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(process_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
        struct tlssniff_file_key key = {};

        const struct tlssniff_filter_state *f = filter_state_get();

        if (file_key_of(BPF_CORE_READ(bprm, file), &key) < 0)
                return 0;
        if (bpf_map_lookup_elem(&known_files, &key) && !(f && f->report_execs))
                return 0;
        emit_file(TLSSNIFF_REC_EXEC, bpf_get_current_pid_tgid() >> 32, &key, 0);
        return 0;
}

/*
 * Set by loaderd when sock_destroy is attached: a socket's tracked_socks entry then stays from
 * TCP_CLOSE until the kernel destroys the socket. A socket reaches TCP_CLOSE while its reader
 * may still have bytes to read (one that sent its FIN first goes to TIME_WAIT as soon as the
 * peer's data and FIN arrive), and a thread that learns the socket again on a later call (Go
 * does on every call) must still find it its connection's, not take it for a new socket at a
 * closed one's address (learn_socket).
 */
__u32 forget_at_destroy = 0;

/* The socket is about to be freed: its memory may be a new socket's next. */
SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(sock_destroy, struct sock *sk)
{
        __u64 key = (__u64)sk;

        bpf_map_delete_elem(&tracked_socks, &key);
        return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(sock_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
        __u64 key = (__u64)sk;
        struct sock_info si = { .open_ns = bpf_ktime_get_boot_ns() };

        if (newstate == TCP_SYN_SENT || newstate == TCP_SYN_RECV)
                /* A connection starts on this socket (connect() again after a close can reuse
                 * it): whatever it was tied to has ended. */
                bpf_map_delete_elem(&tracked_socks, &key);
        if (newstate == TCP_SYN_SENT)
                si.role = TLSSNIFF_ROLE_CLIENT;
        else if (newstate == TCP_SYN_RECV)
                si.role = TLSSNIFF_ROLE_SERVER;
        else {
                if (newstate == TCP_CLOSE) {
                        __u64 *conn_id = bpf_map_lookup_elem(&tracked_socks, &key);

                        bpf_map_delete_elem(&sock_roles, &key);
                        if (conn_id) {
                                struct tlssniff_close_record r = {
                                        .type = TLSSNIFF_REC_CLOSE,
                                        .conn_id = *conn_id,
                                        .timestamp_ns = bpf_ktime_get_boot_ns(),
                                };

                                /* loaderd drains every few ms: no wake-up for this. */
                                if (bpf_ringbuf_output(&events, &r, sizeof(r), BPF_RB_NO_WAKEUP))
                                        stat_add(STAT_CLOSE_EVENT_DROPS, 1);
                                if (!forget_at_destroy)
                                        bpf_map_delete_elem(&tracked_socks, &key);
                        }
                }
                return 0;
        }
        bpf_map_update_elem(&sock_roles, &key, &si, BPF_ANY);
        return 0;
}

/*
 * Wake loaderd after every wakeup_bytes a CPU wrote, counted per CPU. Waking it for every
 * record costs the traced process an interrupt each (a self-IPI, an exit to the hypervisor on a
 * virtual machine), and asking the ring how much is waiting (bpf_ringbuf_query) reads the
 * positions every other CPU writes: a cache miss per record. loaderd drains every few ms anyway.
 */
static __always_inline __u64 data_wakeup_flag(struct scratch *s, __u64 size)
{
        s->unwoken += size;
        if (s->unwoken < wakeup_bytes)
                return BPF_RB_NO_WAKEUP;
        s->unwoken = 0;
        return BPF_RB_FORCE_WAKEUP;
}

/* One call's records: everything a record's header is built from, per record. */
struct emit_ctx {
        struct scratch *s;
        const struct conn_key *key;
        const struct conn_info *ci;
        __u64 buf;
        __u64 base;     /* stream offset of the call's first byte */
        __u64 ts;
        __u32 tid;
        __u32 captured; /* bytes to capture: min(moved, cap) */
        __u32 call_len;
        __u8 dir;
        __u8 source;
        __u8 flags; /* TLSSNIFF_DATA_TRUNCATED (fill_header adds TLSSNIFF_DATA_NO_SOCKET) */
};

/* The header of the record of [off, off + len) of the call. */
static __always_inline void fill_header(struct tlssniff_data_record *h, const struct emit_ctx *ec,
                                        __u32 off, __u32 len)
{
        const struct conn_info *ci = ec->ci;
        /*
         * The socket is set last (learn_socket): once it shows, the addresses are there. Read
         * per record, so that each record's fd, flag and addresses agree even when another
         * thread ties the connection to its socket in the middle of a call.
         */
        bool has_sk = READ_ONCE(ci->sk) != 0;

        h->type = TLSSNIFF_REC_DATA;
        h->pid = ec->key->tgid;
        h->tid = ec->tid;
        h->fd = has_sk ? ci->fd : -1;
        h->timestamp_ns = ec->ts;
        h->conn_id = ci->conn_id;
        h->handle = ec->key->handle;
        h->stream_offset = ec->base + off;
        h->call_len = ec->call_len;
        h->call_offset = off;
        h->len = len;
        h->family = ci->family;
        h->lport = ci->lport;
        h->rport = ci->rport;
        h->direction = ec->dir;
        h->role = ci->role;
        h->flags = ec->flags | (has_sk ? 0 : TLSSNIFF_DATA_NO_SOCKET);
        if (off + len >= ec->captured)
                h->flags |= TLSSNIFF_DATA_LAST;
        h->source = ec->source;
        h->pad = 0;
        __builtin_memcpy(h->laddr, ci->laddr, 16);
        __builtin_memcpy(h->raddr, ci->raddr, 16);
        bpf_get_current_comm(h->comm, sizeof(h->comm));
}

/*
 * Reads user memory straight into a ring buffer record (kernel 6.16+): the plaintext is copied
 * once, instead of into the scratch and from there into the ring. Used when loaderd found the
 * kfunc in the kernel's BTF and --direct-read is on (direct_read); otherwise emit_chunk copies
 * through the scratch.
 */
extern int bpf_probe_read_user_dynptr(struct bpf_dynptr *dptr, __u32 off, __u32 size,
                                      const void *unsafe_ptr__ign) __ksym __weak;

#ifndef bpf_ksym_exists
#define bpf_ksym_exists(sym) (!!(sym))
#endif

static __always_inline void count_emitted(__u64 len)
{
        stat_add(STAT_RECORDS, 1);
        stat_add(STAT_BYTES, len);
}

static __always_inline void count_ring_drop(__u64 len)
{
        stat_add(STAT_DROP_RINGBUF_RECORDS, 1);
        stat_add(STAT_DROP_RINGBUF_BYTES, len);
}

/* This CPU's data ring (data_rings); NULL only before loaderd filled the slots. */
static __always_inline void *data_ring(void)
{
        __u32 cpu = bpf_get_smp_processor_id();

        return bpf_map_lookup_elem(&data_rings, &cpu);
}

/*
 * One record, built where it goes: the header written into the reserved space and the payload
 * read from user memory after it. Nothing passes through a buffer another program run could
 * use (a uprobe's program can be preempted on a kernel that preempts kernel code).
 */
static __always_inline void emit_direct(const struct emit_ctx *ec, __u32 off, __u32 len)
{
        struct tlssniff_data_record *h;
        __u32 size = sizeof(*h) + len;
        struct bpf_dynptr dp;
        void *ring = data_ring();

        if (!ring) {
                count_ring_drop(len);
                return;
        }
        if (bpf_ringbuf_reserve_dynptr(ring, size, 0, &dp) < 0) {
                bpf_ringbuf_discard_dynptr(&dp, 0);
                count_ring_drop(len);
                return;
        }
        h = bpf_dynptr_data(&dp, 0, sizeof(*h));
        if (!h || bpf_probe_read_user_dynptr(&dp, sizeof(*h), len, (void *)(ec->buf + off)) < 0) {
                bpf_ringbuf_discard_dynptr(&dp, BPF_RB_NO_WAKEUP);
                stat_add(STAT_READ_FAIL_BYTES, len);
                return;
        }
        fill_header(h, ec, off, len);
        bpf_ringbuf_submit_dynptr(&dp, data_wakeup_flag(ec->s, size));
        count_emitted(len);
}

/*
 * The same through the CPU's scratch, for kernels without bpf_probe_read_user_dynptr (or
 * --direct-read=no): not safe where uprobe programs can be preempted (docs/design.md).
 */
static __always_inline void emit_copied(const struct emit_ctx *ec, __u32 off, __u32 len)
{
        struct scratch *s = ec->s;
        void *ring = data_ring();

        if (len == 0 || len > TLSSNIFF_CHUNK_MAX)
                return;
        if (!ring) {
                count_ring_drop(len);
                return;
        }
        if (bpf_probe_read_user(s->data, len, (void *)(ec->buf + off)) < 0) {
                stat_add(STAT_READ_FAIL_BYTES, len);
                return;
        }
        fill_header(&s->rec, ec, off, len);
        if (bpf_ringbuf_output(ring, &s->rec, sizeof(s->rec) + len,
                               data_wakeup_flag(s, sizeof(s->rec) + len)) < 0)
                count_ring_drop(len);
        else
                count_emitted(len);
}

static long emit_chunk(__u32 i, struct emit_ctx *ec)
{
        __u64 off = (__u64)i * TLSSNIFF_CHUNK_MAX;
        __u64 len;

        if (off >= ec->captured)
                return 1;
        len = ec->captured - off;
        if (len > TLSSNIFF_CHUNK_MAX)
                len = TLSSNIFF_CHUNK_MAX;
        /* Make the verifier see the bound on the register passed to the helper. */
        asm volatile("" : "+r"(len));
        if (len == 0 || len > TLSSNIFF_CHUNK_MAX)
                return 1;
        if (direct_read && bpf_ksym_exists(bpf_probe_read_user_dynptr))
                emit_direct(ec, off, len);
        else
                emit_copied(ec, off, len);
        return 0;
}

/*
 * Bytes the call moved; 0 when it failed or moved nothing. A result <= 0 is a failure in every
 * form we probe. When the entry side recorded a count pointer (the _ex functions, or the
 * internal call a placed probe sits on, whose count SSL_read/SSL_write keep in their frame),
 * the count is read through it; otherwise the result is the count (SSL_read/SSL_write).
 */
static __always_inline __u64 moved_bytes(struct pt_regs *ctx, struct tlssniff_probe_spec *spec,
                                         struct call_frame *call)
{
        struct pt_regs regs;
        long ret;

        tlssniff_regs_copy(&regs, ctx);
        ret = (long)read_loc(&regs, &spec->loc[TLSSNIFF_ARG_RESULT]);
        int rc = (int)ret;
        __u64 n = 0;

        if (rc <= 0)
                return 0;
        if (call->outlen) {
                if (bpf_probe_read_user(&n, sizeof(n), (void *)call->outlen) < 0)
                        n = 0;
        } else if (spec->func == TLSSNIFF_FUNC_SSL_READ || spec->func == TLSSNIFF_FUNC_SSL_WRITE) {
                n = (__u64)rc;
        }
        if (n > call->num)
                n = call->num; /* never read past the caller's buffer */
        return n;
}

/* A read through a memory BIO: the socket the thread read last (see membio_tgids). */
static __always_inline void learn_from_last_read(struct conn_key *key, __u32 tid)
{
        struct io_sock *io = bpf_map_lookup_elem(&last_read_fd, &tid);

        if (io)
                learn_socket(key, io);
}

/* A TLS call that did no socket I/O of its own: see membio_tgids. */
static __always_inline void resolve_membio(struct conn_key *key, __u32 tid, __u32 tgid, __u8 dir)
{
        __u8 one = 1;

        if (!bpf_map_lookup_elem(&membio_tgids, &tgid)) {
                bpf_map_update_elem(&membio_tgids, &tgid, &one, BPF_ANY);
                membio_any = 1;
        }
        if (dir == TLSSNIFF_DIR_READ) {
                learn_from_last_read(key, tid);
        } else {
                bpf_map_update_elem(&pending_write, &tid, key, BPF_ANY);
        }
}

/*
 * Writes the bytes one call moved ([buf, buf + moved), moved > 0) on the connection of key as
 * data records, starting a connection without a socket if the TLS object has none. A write is
 * stamped when it began (entry_ts), a read now, when it returned (docs/output.md): a write may
 * return after the read of its answer did on another thread.
 */
static __always_inline void emit_call(struct conn_key *key, struct conn_info *ci, __u32 tid,
                                      __u64 buf, __u64 moved, __u8 dir, __u8 source,
                                      __u64 entry_ts)
{
        const struct tlssniff_filter_state *f;
        struct conn_info fresh = {};
        struct emit_ctx ec = {};
        struct scratch *s;
        __u32 zero = 0;
        __u64 cap;

        if (!ci)
                ci = bpf_map_lookup_elem(&conns, key);
        if (!ci) {
                fresh.conn_id = new_conn_id();
                fresh.fd = -1;
                bpf_map_update_elem(&conns, key, &fresh, BPF_NOEXIST);
                ci = bpf_map_lookup_elem(&conns, key);
                if (!ci) {
                        stat_add(STAT_CONN_DROPS, 1);
                        return;
                }
        }
        s = bpf_map_lookup_elem(&scratch_map, &zero);
        if (!s)
                return;

        ec.s = s;
        ec.key = key;
        ec.ci = ci;
        ec.buf = buf;
        ec.base = __sync_fetch_and_add(&ci->offset[dir & 1], moved);
        ec.ts = dir == TLSSNIFF_DIR_WRITE ? entry_ts : bpf_ktime_get_boot_ns();
        ec.tid = tid;
        ec.call_len = moved > 0xffffffffull ? 0xffffffffu : (__u32)moved;
        ec.dir = dir;
        ec.source = source;
        ec.captured = moved;
        if (!READ_ONCE(ci->sk))
                stat_add(STAT_NO_SOCKET, 1); /* the records say so each (fill_header) */
        f = filter_state_get();
        cap = f && f->call_cap ? f->call_cap : TLSSNIFF_CALL_CAP_DEFAULT;
        if (moved > cap) {
                ec.captured = cap;
                ec.flags |= TLSSNIFF_DATA_TRUNCATED;
                stat_add(STAT_TRUNC_CALLS, 1);
                stat_add(STAT_TRUNC_BYTES, moved - cap);
        }
        stat_add(STAT_CALLS, 1);
        /* Most calls fit in one record: no loop (a helper call and an indirect one) for them. */
        if (ec.captured <= TLSSNIFF_CHUNK_MAX)
                emit_chunk(0, &ec);
        else
                bpf_loop((ec.captured + TLSSNIFF_CHUNK_MAX - 1) / TLSSNIFF_CHUNK_MAX, emit_chunk,
                         &ec, 0);
}

/* The return side of a TLS call: pops its frame and emits the bytes it moved. */
static __always_inline void tls_return_do(struct pt_regs *ctx)
{
        __u64 pid_tgid = bpf_get_current_pid_tgid();
        __u32 tid = (__u32)pid_tgid, tgid = pid_tgid >> 32;
        struct tlssniff_probe_spec *spec, *entry_spec;
        struct conn_key key = {};
        struct conn_info *ci;
        struct active_call *cur;
        struct call_frame frame, *call = &frame;
        __u32 spec_idx = (__u32)bpf_get_attach_cookie(ctx);
        __u64 moved;
        __u8 dir;
        __u64 sp = PT_REGS_SP(ctx);
        __u32 n;

        spec = spec_current(ctx, spec_idx);
        if (!spec)
                return; /* the other probe set's program took this hit (a move): it pops */
        cur = bpf_task_storage_get(&active_calls, bpf_get_current_task_btf(), NULL, 0);
        n = cur ? cur->n : 0;
        /*
         * Pop our frame: the innermost one whose entry stack pointer is not below ours less the
         * return address a uretprobe has seen popped. Deeper frames are calls that are gone.
         */
        for (int i = 0; i < CALL_FRAMES; i++) {
                if (n == 0 || n > CALL_FRAMES || frame_at(cur, n - 1)->sp + 8 >= sp)
                        break;
                count_lost_return(frame_at(cur, n - 1));
                n--;
        }
        if (!cur || n == 0 || n > CALL_FRAMES) {
                if (cur)
                        cur->n = 0;
                if (is_target(tgid))
                        stat_add(STAT_UNMATCHED_RETURN, 1);
                else
                        stat_add(STAT_FILTERED_RETURNS, 1);
                return;
        }
        frame = *frame_at(cur, n - 1);
        cur->n = n - 1;
        if (frame.wrapper || frame.quiet)
                return; /* the outer call reports these bytes; a handshake moves none */
        entry_spec = bpf_map_lookup_elem(&probe_specs, &call->spec);
        if (!entry_spec || spec->func != entry_spec->func) {
                stat_add(STAT_UNMATCHED_RETURN, 1);
                return;
        }
        dir = func_writes(spec->func) ? TLSSNIFF_DIR_WRITE : TLSSNIFF_DIR_READ;
        key.handle = call->ssl;
        key.tgid = tgid;
        ci = bpf_map_lookup_elem(&conns, &key);
        if (!call->resolved && (!ci || !ci->sk)) {
                resolve_membio(&key, tid, tgid, dir);
                ci = NULL; /* it may have replaced the element: emit_call looks it up again */
        }
        moved = moved_bytes(ctx, spec, call);
        if (moved == 0) {
                stat_add(STAT_ERROR_RETURNS, 1);
                return;
        }
        emit_call(&key, ci, tid, call->buf, moved, dir, spec->source, call->ts);
}

SEC("uretprobe")
int tls_return(struct pt_regs *ctx)
{
        tls_return_do(ctx);
        return 0;
}

/*
 * Reads and writes on OpenSSL's copies (TLSSNIFF_PROBE_COPY, planned by
 * analyzer/binary/sslcopy.c). Reads (TLSSNIFF_FUNC_SSL_READ_BYTES): the memcpy in
 * ssl3_read_bytes/dtls1_read_bytes that moves a record's plaintext into the caller's buffer; the
 * function's own arguments, where the analysis proved them, say whether this is a read of
 * application data (type) that consumes it (not SSL_peek: the later read copies the same bytes
 * again). Writes (TLSSNIFF_FUNC_SSL_WRITE_BYTES): the copy in do_ssl3_write that moves a
 * record's plaintext out of the caller's buffer into the record, once per record whatever the
 * retries, with the record's type. The copy's source and count are the bytes moved. One trap per
 * record, none for reads that find nothing, no return probe and no frame: the socket is the one
 * the TLS object got in its handshake's frame, or, for a connection older than tlssniff (or over
 * a memory BIO), the socket its thread writes next after a write's copy (resolve_membio); the
 * analyzer holds a connection's bytes until its socket is known (analyzer/conn/identity.c).
 */
SEC("uprobe")
int tls_copy(struct pt_regs *ctx)
{
        __u64 pid_tgid = bpf_get_current_pid_tgid();
        __u32 tid = (__u32)pid_tgid, tgid = pid_tgid >> 32;
        __u32 spec_idx = (__u32)bpf_get_attach_cookie(ctx);
        struct tlssniff_probe_spec *spec;
        struct conn_key key = { .tgid = tgid };
        struct conn_info *ci;
        struct pt_regs regs;
        __u64 src, n;
        __u8 dir;

        /* First, as cheap as it can be for the processes that are not captured (a copy of a
         * handshake message they make is counted too: one per connection). */
        if (!is_target(tgid)) {
                stat_add(STAT_FILTERED, 1);
                return 0;
        }
        spec = spec_current(ctx, spec_idx);
        if (!spec)
                return 0;
        tlssniff_regs_copy(&regs, ctx);
        if (!delivers_app_data(&regs, spec))
                return 0; /* a handshake message or an alert, or a peek */
        dir = spec->func == TLSSNIFF_FUNC_SSL_WRITE_BYTES ? TLSSNIFF_DIR_WRITE : TLSSNIFF_DIR_READ;
        key.handle = read_loc(&regs, &spec->loc[TLSSNIFF_ARG_SSL]);
        src = read_loc(&regs, &spec->loc[TLSSNIFF_ARG_BUF]);
        n = read_loc(&regs, &spec->loc[TLSSNIFF_ARG_NUM]);
        if (n == 0)
                return 0; /* an empty record (a read goes on to the next one) */
        ci = bpf_map_lookup_elem(&conns, &key);
        if (!ci || !ci->sk) {
                if (dir == TLSSNIFF_DIR_WRITE) {
                        /* The record goes out on the socket this thread writes next. */
                        resolve_membio(&key, tid, tgid, dir);
                        ci = NULL; /* emit_call looks it up again */
                } else if (membio_any && bpf_map_lookup_elem(&membio_tgids, &tgid)) {
                        learn_from_last_read(&key, tid);
                        ci = NULL; /* it may have replaced the element */
                }
        }
        emit_call(&key, ci, tid, src, n, dir, TLSSNIFF_SOURCE_OPENSSL,
                  dir == TLSSNIFF_DIR_WRITE ? bpf_ktime_get_boot_ns() : 0);
        return 0;
}

/*
 * SSL_free or SSL_clear (TLSSNIFF_PROBE_FORGET): the TLS object's connection ends here. With
 * reads on the copy the first read of a new object that the allocator put at a freed one's
 * address would otherwise be attributed to the old connection (no frame sees its socket I/O).
 */
SEC("uprobe")
int tls_forget(struct pt_regs *ctx)
{
        __u32 spec_idx = (__u32)bpf_get_attach_cookie(ctx);
        struct tlssniff_probe_spec *spec;
        struct conn_key key = { .tgid = bpf_get_current_pid_tgid() >> 32 };
        struct pt_regs regs;

        spec = spec_current(ctx, spec_idx);
        if (!spec)
                return 0;
        tlssniff_regs_copy(&regs, ctx);
        key.handle = read_loc(&regs, &spec->loc[TLSSNIFF_ARG_SSL]);
        bpf_map_delete_elem(&conns, &key);
        return 0;
}

/*
 * Entry and return of one function as a single uprobe session (an uprobe_multi link with
 * attach type BPF_TRACE_UPROBE_SESSION, kernel 6.13+), attached by loaderd in place of an
 * uprobe + uretprobe pair at the same offset when the kernel has sessions. Same programs, one
 * difference that matters: when the entry side returns 1 (a filtered-out process), the kernel
 * does not hijack the return address, so a call that is not captured costs one trap instead of
 * two. The cookie indexes one spec that holds both sides' value locations.
 */
extern bool bpf_session_is_return(void) __ksym __weak;

SEC("uprobe")
int tls_session(struct pt_regs *ctx)
{
        if (bpf_session_is_return()) {
                tls_return_do(ctx);
                return 0;
        }
        return tls_entry_do(ctx);
}

#include "go.bpf.h"
