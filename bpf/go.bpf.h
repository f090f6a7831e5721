/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Capture of Go crypto/tls plaintext: the programs for crypto/tls.(*Conn).Read and .Write.
 * Included at the end of openssl.bpf.c because they share its maps (connections, sockets,
 * ring buffer, counters) and its record writer: one BPF object, one skeleton.
 *
 * An entry probe remembers (goroutine -> conn, buffer) and a plain uprobe on every RET of the
 * function (planned by the analyzer; uretprobes break Go stacks) emits the bytes moved. A
 * goroutine can park inside Read and resume on another thread, so calls are keyed by the
 * goroutine id, read through the g pointer at the executable's own goid offset (go_files).
 * The socket is followed from the *tls.Conn itself, so records carry the same identity as
 * OpenSSL ones.
 */

struct go_key {
        __u64 goid;
        __u32 tgid;
        __u32 pad;
};

struct go_call {
        __u64 conn; /* *tls.Conn */
        __u64 buf;
        __u64 num;
        __u64 ts; /* CLOCK_BOOTTIME at entry */
        __u32 spec;
        __u32 pad;
};

/* Calls in progress. LRU: a goroutine that never returns (panic) is evicted eventually. */
struct {
        __uint(type, BPF_MAP_TYPE_LRU_HASH);
        __uint(max_entries, 65536);
        __type(key, struct go_key);
        __type(value, struct go_call);
} go_calls SEC(".maps");

/* Per-executable offsets, keyed by loaderd's file id (the probe spec's file). */
struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(max_entries, 4096);
        __type(key, __u32);
        __type(value, struct tlssniff_go_info);
} go_files SEC(".maps");

static __always_inline int go_goid(const struct pt_regs *regs, const struct tlssniff_go_info *gi,
                                   __u64 *ret)
{
        __u64 g = 0;

        if (gi->g_kind == TLSSNIFF_GO_G_REG) {
                g = tlssniff_reg_read(regs, gi->g_reg);
        } else if (gi->g_kind == TLSSNIFF_GO_G_FS) {
#if defined(__TARGET_ARCH_x86)
                struct task_struct *task = bpf_get_current_task_btf();
                __u64 fsbase = BPF_CORE_READ(task, thread.fsbase);

                if (bpf_probe_read_user(&g, sizeof(g), (void *)(fsbase + gi->g_off)) < 0)
                        return -1;
#endif
        }
        if (!g || bpf_probe_read_user(ret, sizeof(*ret), (void *)(g + gi->goid)) < 0)
                return -1;
        return 0;
}

/* The fd behind a *tls.Conn: conn (net.Conn's data word) -> conn.fd -> pfd.Sysfd. */
static __always_inline int go_conn_fd(__u64 conn, const struct tlssniff_go_info *gi)
{
        __u64 data = 0, netfd = 0;
        __s64 fd = -1;

        if (bpf_probe_read_user(&data, sizeof(data), (void *)(conn + gi->conn + 8)) < 0 || !data)
                return -1;
        if (bpf_probe_read_user(&netfd, sizeof(netfd), (void *)(data + gi->conn_fd)) < 0 ||
            !netfd)
                return -1;
        if (bpf_probe_read_user(&fd, sizeof(fd), (void *)(netfd + gi->pfd + gi->sysfd)) < 0)
                return -1;
        return fd >= 0 && fd < 0x7fffffff ? (int)fd : -1;
}

/*
 * Ties the *tls.Conn of ck to its socket, on every call: a *tls.Conn freed and reallocated at
 * the same address for another socket must not inherit the old connection (learn_socket
 * compares the socket).
 */
static __always_inline void go_learn_conn(struct conn_key *ck, const struct tlssniff_go_info *gi)
{
        struct io_sock io = { .fd = go_conn_fd(ck->handle, gi) };

        if (io.fd < 0 || !learn_socket(ck, &io))
                stat_add(STAT_GO_NO_FD, 1);
}

/*
 * What both Go programs start with: the probe's spec, the executable's offsets, a copy of the
 * registers and the goroutine id. GO_OK, GO_NO_SPEC (nothing to count) or GO_NO_GOID (the
 * goroutine id could not be read: kernel_go_no_goid).
 */
enum { GO_OK = 0, GO_NO_SPEC = 1, GO_NO_GOID = 2 };

static __always_inline int go_probe_begin(struct pt_regs *ctx, struct tlssniff_probe_spec **spec,
                                          struct tlssniff_go_info **gi, struct pt_regs *regs,
                                          __u64 *goid)
{
        __u32 spec_idx = (__u32)bpf_get_attach_cookie(ctx);

        *spec = spec_current(ctx, spec_idx);
        if (!*spec)
                return GO_NO_SPEC;
        *gi = bpf_map_lookup_elem(&go_files, &(*spec)->file);
        if (!*gi)
                return GO_NO_GOID;
        tlssniff_regs_copy(regs, ctx);
        if (go_goid(regs, *gi, goid) < 0)
                return GO_NO_GOID;
        return GO_OK;
}

SEC("uprobe")
int go_entry(struct pt_regs *ctx)
{
        __u64 pid_tgid = bpf_get_current_pid_tgid();
        __u32 tgid = pid_tgid >> 32;
        __u32 spec_idx = (__u32)bpf_get_attach_cookie(ctx);
        struct tlssniff_probe_spec *spec;
        struct tlssniff_go_info *gi;
        struct go_key key = { .tgid = tgid };
        struct go_call call = { .spec = spec_idx, .ts = bpf_ktime_get_boot_ns() };
        struct conn_key ck = { .tgid = tgid };
        struct pt_regs regs;
        int r;

        if (!is_target(tgid)) {
                stat_add(STAT_FILTERED, 1);
                return 0;
        }
        r = go_probe_begin(ctx, &spec, &gi, &regs, &key.goid);
        if (r != GO_OK) {
                if (r == GO_NO_GOID)
                        stat_add(STAT_GO_NO_GOID, 1);
                return 0;
        }
        call.conn = read_loc(&regs, &spec->loc[TLSSNIFF_ARG_SSL]);
        call.buf = read_loc(&regs, &spec->loc[TLSSNIFF_ARG_BUF]);
        call.num = read_loc(&regs, &spec->loc[TLSSNIFF_ARG_NUM]);
        /* The same goroutine entering again (after growing its stack) overwrites: same call. */
        if (bpf_map_update_elem(&go_calls, &key, &call, BPF_ANY) < 0) {
                stat_add(STAT_ENTRY_DROPS, 1);
                return 0;
        }
        ck.handle = call.conn;
        go_learn_conn(&ck, gi);
        return 0;
}

SEC("uprobe")
int go_return(struct pt_regs *ctx)
{
        __u64 pid_tgid = bpf_get_current_pid_tgid();
        __u32 tid = (__u32)pid_tgid, tgid = pid_tgid >> 32;
        struct tlssniff_probe_spec *spec, *entry_spec;
        struct tlssniff_go_info *gi;
        struct go_key key = { .tgid = tgid };
        struct conn_key ck = { .tgid = tgid };
        struct go_call *cp, call;
        struct pt_regs regs;
        long n;
        int r;
        __u8 dir;

        r = go_probe_begin(ctx, &spec, &gi, &regs, &key.goid);
        if (r != GO_OK) {
                if (r == GO_NO_GOID && is_target(tgid))
                        stat_add(STAT_GO_NO_GOID, 1);
                return 0;
        }
        cp = bpf_map_lookup_elem(&go_calls, &key);
        if (!cp) {
                if (is_target(tgid))
                        stat_add(STAT_UNMATCHED_RETURN, 1);
                return 0;
        }
        call = *cp;
        bpf_map_delete_elem(&go_calls, &key);
        entry_spec = bpf_map_lookup_elem(&probe_specs, &call.spec);
        if (!entry_spec || entry_spec->func != spec->func) {
                stat_add(STAT_UNMATCHED_RETURN, 1);
                return 0;
        }
        /* n int: bytes moved, even when an error comes with them; nothing when n <= 0. */
        n = (long)read_loc(&regs, &spec->loc[TLSSNIFF_ARG_RESULT]);
        if (n <= 0) {
                stat_add(STAT_ERROR_RETURNS, 1);
                return 0;
        }
        if ((__u64)n > call.num)
                n = (long)call.num; /* never read past the caller's buffer */
        dir = spec->func == TLSSNIFF_FUNC_GO_WRITE ? TLSSNIFF_DIR_WRITE : TLSSNIFF_DIR_READ;
        ck.handle = call.conn;
        emit_call(&ck, NULL, tid, call.buf, (__u64)n, dir, TLSSNIFF_SOURCE_GO, call.ts);
        return 0;
}

/*
 * Read as one probe on its copy to the caller (TLSSNIFF_PROBE_COPY: the call to
 * runtime.memmove inside crypto/tls.(*Conn).Read, planned where the analysis proves it,
 * analyzer/binary/gotls.c): the source and the count are memmove's arguments, the *tls.Conn is
 * in its argument slot. It fires only when Read delivers bytes, and needs neither an entry
 * record nor the RET probes the kernel single-steps, nor the goroutine id.
 */
SEC("uprobe")
int go_copy(struct pt_regs *ctx)
{
        __u64 pid_tgid = bpf_get_current_pid_tgid();
        __u32 tid = (__u32)pid_tgid, tgid = pid_tgid >> 32;
        __u32 spec_idx = (__u32)bpf_get_attach_cookie(ctx);
        struct tlssniff_probe_spec *spec;
        struct tlssniff_go_info *gi;
        struct conn_key ck = { .tgid = tgid };
        struct pt_regs regs;
        __u64 src;
        long n;

        if (!is_target(tgid)) {
                stat_add(STAT_FILTERED, 1);
                return 0;
        }
        spec = spec_current(ctx, spec_idx);
        if (!spec)
                return 0;
        gi = bpf_map_lookup_elem(&go_files, &spec->file);
        if (!gi)
                return 0;
        tlssniff_regs_copy(&regs, ctx);
        ck.handle = read_loc(&regs, &spec->loc[TLSSNIFF_ARG_SSL]);
        src = read_loc(&regs, &spec->loc[TLSSNIFF_ARG_BUF]);
        n = (long)read_loc(&regs, &spec->loc[TLSSNIFF_ARG_NUM]);
        if (n <= 0) {
                stat_add(STAT_ERROR_RETURNS, 1);
                return 0;
        }
        go_learn_conn(&ck, gi);
        emit_call(&ck, NULL, tid, src, (__u64)n, TLSSNIFF_DIR_READ, TLSSNIFF_SOURCE_GO, 0);
        return 0;
}
