/* Strict msgpack encoding and decoding of frame bodies; see msg.h. */
#include <errno.h>
#include <string.h>

#include "msg.h"

/* Big-endian unsigned of w bytes at p[*off], advancing *off; false when the body ends first. */
static bool read_be(const uint8_t *p, size_t n, size_t *off, unsigned w, uint64_t *ret)
{
        uint64_t v = 0;

        if (n - *off < w)
                return false;
        for (unsigned i = 0; i < w; i++)
                v = v << 8 | p[(*off)++];
        *ret = v;
        return true;
}

/*
 * Whether body is exactly one well-formed msgpack object. msgpack-c allocates room for the
 * elements of an array or map as soon as it reads the count, before it knows they are there: a
 * 5-byte body could make it ask for 96 GiB. Every element takes at least one byte, so refusing
 * counts larger than the bytes left first bounds what msgpack-c allocates by the body's size.
 */
static bool well_formed(const uint8_t *p, size_t n)
{
        static const uint8_t fixed[] = { /* payload bytes after the marker, 0xc0..0xdf */
                [0xca - 0xc0] = 4, [0xcb - 0xc0] = 8, [0xcc - 0xc0] = 1, [0xcd - 0xc0] = 2,
                [0xce - 0xc0] = 4, [0xcf - 0xc0] = 8, [0xd0 - 0xc0] = 1, [0xd1 - 0xc0] = 2,
                [0xd2 - 0xc0] = 4, [0xd3 - 0xc0] = 8, [0xd4 - 0xc0] = 2, [0xd5 - 0xc0] = 3,
                [0xd6 - 0xc0] = 5, [0xd7 - 0xc0] = 9, [0xd8 - 0xc0] = 17,
        };
        uint64_t pending = 1, len, count;
        size_t off = 0;

        while (pending > 0) {
                uint8_t c;

                if (off >= n)
                        return false;
                c = p[off++];
                pending--;
                len = count = 0;
                if (c <= 0x7f || c >= 0xe0)
                        continue; /* fixint */
                if (c <= 0x8f)
                        count = 2 * (uint64_t)(c & 0x0f); /* fixmap */
                else if (c <= 0x9f)
                        count = c & 0x0f; /* fixarray */
                else if (c <= 0xbf)
                        len = c & 0x1f; /* fixstr */
                else
                        switch (c) {
                        case 0xc1:
                                return false; /* never used */
                        case 0xc4: case 0xc5: case 0xc6: /* bin 8/16/32 */
                                if (!read_be(p, n, &off, 1u << (c - 0xc4), &len))
                                        return false;
                                break;
                        case 0xc7: case 0xc8: case 0xc9: /* ext 8/16/32, then a type byte */
                                if (!read_be(p, n, &off, 1u << (c - 0xc7), &len))
                                        return false;
                                len++;
                                break;
                        case 0xd9: case 0xda: case 0xdb: /* str 8/16/32 */
                                if (!read_be(p, n, &off, 1u << (c - 0xd9), &len))
                                        return false;
                                break;
                        case 0xdc: case 0xdd: /* array 16/32 */
                                if (!read_be(p, n, &off, c == 0xdc ? 2 : 4, &count))
                                        return false;
                                break;
                        case 0xde: case 0xdf: /* map 16/32 */
                                if (!read_be(p, n, &off, c == 0xde ? 2 : 4, &count))
                                        return false;
                                count *= 2;
                                break;
                        default: /* nil, bools, numbers, fixext */
                                len = fixed[c - 0xc0];
                        }
                if (pending > n - off || len > n - off - pending || count > n - off - pending)
                        return false;
                off += len;
                pending += count;
        }
        return off == n;
}

/* One msgpack object spanning the whole body, or -EBADMSG. */
static int unpack_whole(const uint8_t *body, size_t n, msgpack_unpacked *u)
{
        size_t off = 0;
        msgpack_unpack_return r;

        msgpack_unpacked_init(u);
        if (!well_formed(body, n)) {
                msgpack_unpacked_destroy(u);
                return -EBADMSG;
        }
        r = msgpack_unpack_next(u, (const char *)body, n, &off);
        if (r != MSGPACK_UNPACK_SUCCESS || off != n) {
                msgpack_unpacked_destroy(u);
                return -EBADMSG;
        }
        return 0;
}

static bool get_array(const msgpack_object *o, uint32_t size, const msgpack_object **ret)
{
        if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != size)
                return false;
        *ret = o->via.array.ptr;
        return true;
}

static bool get_u64(const msgpack_object *o, uint64_t max, uint64_t *ret)
{
        if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
                return false;
        *ret = o->via.u64;
        return true;
}

static bool get_u32(const msgpack_object *o, uint32_t max, uint32_t *ret)
{
        uint64_t v;

        if (!get_u64(o, max, &v))
                return false;
        *ret = (uint32_t)v;
        return true;
}

static bool get_u8(const msgpack_object *o, uint8_t max, uint8_t *ret)
{
        uint64_t v;

        if (!get_u64(o, max, &v))
                return false;
        *ret = (uint8_t)v;
        return true;
}

static bool get_i64(const msgpack_object *o, int64_t *ret)
{
        if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX)
                *ret = (int64_t)o->via.u64;
        else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                *ret = o->via.i64;
        else
                return false;
        return true;
}

/* A string without NUL bytes that fits in size with its terminator; nil gives "". */
static bool get_str(const msgpack_object *o, char *out, size_t size, bool nil_ok)
{
        if (nil_ok && o->type == MSGPACK_OBJECT_NIL) {
                out[0] = '\0';
                return true;
        }
        if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= size)
                return false;
        if (o->via.str.size == 0) { /* msgpack-c gives a NULL pointer for "" */
                out[0] = '\0';
                return true;
        }
        if (memchr(o->via.str.ptr, '\0', o->via.str.size))
                return false;
        memcpy(out, o->via.str.ptr, o->via.str.size);
        out[o->via.str.size] = '\0';
        return true;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
        size_t n = strlen(s);

        msgpack_pack_str(pk, n);
        msgpack_pack_str_body(pk, s, n);
}

int msg_encode_l_hello(msgpack_sbuffer *sb, const struct msg_l_hello *m)
{
        msgpack_packer pk;

        msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 3);
        msgpack_pack_uint32(&pk, m->version);
        msgpack_pack_int64(&pk, m->realtime_offset_ns);
        msgpack_pack_uint32(&pk, m->call_cap);
        return 0;
}

int msg_decode_l_hello(const uint8_t *body, size_t n, struct msg_l_hello *ret)
{
        msgpack_unpacked u;
        const msgpack_object *a;
        struct msg_l_hello m;
        bool ok;

        if (unpack_whole(body, n, &u) < 0)
                return -EBADMSG;
        ok = get_array(&u.data, 3, &a) && get_u32(&a[0], UINT32_MAX, &m.version) &&
             get_i64(&a[1], &m.realtime_offset_ns) &&
             get_u32(&a[2], TLSSNIFF_CALL_CAP_MAX, &m.call_cap);
        msgpack_unpacked_destroy(&u);
        if (!ok)
                return -EBADMSG;
        *ret = m;
        return 0;
}

int msg_encode_a_hello(msgpack_sbuffer *sb, uint32_t version)
{
        msgpack_packer pk;

        msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 1);
        msgpack_pack_uint32(&pk, version);
        return 0;
}

int msg_decode_a_hello(const uint8_t *body, size_t n, uint32_t *ret_version)
{
        msgpack_unpacked u;
        const msgpack_object *a;
        uint32_t v;
        bool ok;

        if (unpack_whole(body, n, &u) < 0)
                return -EBADMSG;
        ok = get_array(&u.data, 1, &a) && get_u32(&a[0], UINT32_MAX, &v);
        msgpack_unpacked_destroy(&u);
        if (!ok)
                return -EBADMSG;
        *ret_version = v;
        return 0;
}

int msg_encode_file(msgpack_sbuffer *sb, const struct msg_file *m)
{
        msgpack_packer pk;

        msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 6);
        msgpack_pack_uint32(&pk, m->file_id);
        msgpack_pack_uint64(&pk, m->dev);
        msgpack_pack_uint64(&pk, m->ino);
        pack_str(&pk, m->path);
        msgpack_pack_uint32(&pk, m->pid);
        msgpack_pack_uint8(&pk, m->kind);
        return 0;
}

int msg_decode_file(const uint8_t *body, size_t n, struct msg_file *ret)
{
        msgpack_unpacked u;
        const msgpack_object *a;
        struct msg_file m;
        bool ok;

        if (unpack_whole(body, n, &u) < 0)
                return -EBADMSG;
        ok = get_array(&u.data, 6, &a) && get_u32(&a[0], UINT32_MAX, &m.file_id) &&
             get_u64(&a[1], UINT64_MAX, &m.dev) && get_u64(&a[2], UINT64_MAX, &m.ino) &&
             get_str(&a[3], m.path, sizeof(m.path), false) &&
             get_u32(&a[4], UINT32_MAX, &m.pid) && get_u8(&a[5], MSG_FILE_LIBRARY, &m.kind) &&
             m.kind >= MSG_FILE_EXECUTABLE;
        msgpack_unpacked_destroy(&u);
        if (!ok)
                return -EBADMSG;
        *ret = m;
        return 0;
}

int msg_encode_planner_plan(msgpack_sbuffer *sb, const struct msg_plan *plan,
                            const struct msg_planner_result *res)
{
        msgpack_sbuffer inner;
        msgpack_packer pk;
        int r;

        msgpack_sbuffer_init(&inner);
        r = msg_encode_plan(&inner, plan);
        if (r >= 0) {
                msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
                msgpack_pack_array(&pk, 3);
                msgpack_pack_bin(&pk, inner.size);
                msgpack_pack_bin_body(&pk, inner.data, inner.size);
                if (res->go)
                        msgpack_pack_true(&pk);
                else
                        msgpack_pack_false(&pk);
                msgpack_pack_uint64(&pk, res->analysis_us);
        }
        msgpack_sbuffer_destroy(&inner);
        return r;
}

int msg_decode_planner_plan(const uint8_t *body, size_t n, struct msg_plan *plan,
                            struct msg_planner_result *res)
{
        msgpack_unpacked u;
        const msgpack_object *a;
        struct msg_planner_result m = {};
        bool ok;

        if (unpack_whole(body, n, &u) < 0)
                return -EBADMSG;
        ok = get_array(&u.data, 3, &a) && a[0].type == MSGPACK_OBJECT_BIN &&
             a[1].type == MSGPACK_OBJECT_BOOLEAN && get_u64(&a[2], UINT64_MAX, &m.analysis_us) &&
             msg_decode_plan((const uint8_t *)a[0].via.bin.ptr, a[0].via.bin.size, plan) == 0;
        if (ok) {
                m.go = a[1].via.boolean;
        }
        msgpack_unpacked_destroy(&u);
        if (!ok)
                return -EBADMSG;
        *res = m;
        return 0;
}

int msg_encode_planned(msgpack_sbuffer *sb, const struct msg_planned *m)
{
        msgpack_packer pk;

        msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 9);
        msgpack_pack_uint32(&pk, m->file.file_id);
        msgpack_pack_uint64(&pk, m->file.dev);
        msgpack_pack_uint64(&pk, m->file.ino);
        pack_str(&pk, m->file.path);
        msgpack_pack_uint32(&pk, m->file.pid);
        msgpack_pack_uint8(&pk, m->file.kind);
        pack_str(&pk, m->library);
        pack_str(&pk, m->reason);
        msgpack_pack_uint32(&pk, m->probes);
        return 0;
}

int msg_decode_planned(const uint8_t *body, size_t n, struct msg_planned *ret)
{
        msgpack_unpacked u;
        const msgpack_object *a;
        struct msg_planned m;
        bool ok;

        if (unpack_whole(body, n, &u) < 0)
                return -EBADMSG;
        ok = get_array(&u.data, 9, &a) && get_u32(&a[0], UINT32_MAX, &m.file.file_id) &&
             get_u64(&a[1], UINT64_MAX, &m.file.dev) &&
             get_u64(&a[2], UINT64_MAX, &m.file.ino) &&
             get_str(&a[3], m.file.path, sizeof(m.file.path), false) &&
             get_u32(&a[4], UINT32_MAX, &m.file.pid) &&
             get_u8(&a[5], MSG_FILE_LIBRARY, &m.file.kind) &&
             m.file.kind >= MSG_FILE_EXECUTABLE &&
             get_str(&a[6], m.library, sizeof(m.library), false) &&
             get_str(&a[7], m.reason, sizeof(m.reason), false) &&
             get_u32(&a[8], MSG_PLAN_PROBES_MAX, &m.probes);
        msgpack_unpacked_destroy(&u);
        if (!ok)
                return -EBADMSG;
        *ret = m;
        return 0;
}

void msg_plan_add_probe(struct msg_plan *plan, uint8_t kind, uint8_t func, uint64_t offset,
                        const struct tlssniff_loc loc[_TLSSNIFF_ARG_MAX])
{
        struct msg_probe *p = &plan->probes[plan->n_probes++];

        memset(p, 0, sizeof(*p));
        p->kind = kind;
        p->func = func;
        p->offset = offset;
        memcpy(p->loc, loc, sizeof(p->loc));
}

int msg_encode_plan(msgpack_sbuffer *sb, const struct msg_plan *m)
{
        msgpack_packer pk;

        if (m->n_probes > MSG_PLAN_PROBES_MAX)
                return -E2BIG;
        msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 5);
        msgpack_pack_uint32(&pk, m->file_id);
        pack_str(&pk, m->library);
        pack_str(&pk, m->reason);
        msgpack_pack_array(&pk, m->n_probes);
        for (uint32_t i = 0; i < m->n_probes; i++) {
                const struct msg_probe *p = &m->probes[i];

                msgpack_pack_array(&pk, 4);
                msgpack_pack_uint8(&pk, p->kind);
                msgpack_pack_uint8(&pk, p->func);
                msgpack_pack_uint64(&pk, p->offset);
                msgpack_pack_array(&pk, _TLSSNIFF_ARG_MAX);
                for (unsigned j = 0; j < _TLSSNIFF_ARG_MAX; j++) {
                        msgpack_pack_array(&pk, 3);
                        msgpack_pack_uint8(&pk, p->loc[j].kind);
                        msgpack_pack_uint8(&pk, p->loc[j].reg);
                        msgpack_pack_int16(&pk, p->loc[j].off);
                }
        }
        if (!m->has_go) {
                msgpack_pack_nil(&pk);
                return 0;
        }
        msgpack_pack_array(&pk, 8);
        msgpack_pack_uint8(&pk, m->go.g_kind);
        msgpack_pack_uint8(&pk, m->go.g_reg);
        msgpack_pack_int16(&pk, m->go.g_off);
        msgpack_pack_uint32(&pk, m->go.goid);
        msgpack_pack_uint32(&pk, m->go.conn);
        msgpack_pack_uint32(&pk, m->go.conn_fd);
        msgpack_pack_uint32(&pk, m->go.pfd);
        msgpack_pack_uint32(&pk, m->go.sysfd);
        return 0;
}

/* The Go offsets of a plan: nil, or [g_kind, g_reg, g_off, goid, conn, conn_fd, pfd, sysfd]. */
static bool get_go(const msgpack_object *o, struct msg_plan *m)
{
        const msgpack_object *a;
        struct tlssniff_go_info *g = &m->go;
        int64_t off;

        if (o->type == MSGPACK_OBJECT_NIL)
                return true;
        if (!get_array(o, 8, &a) || !get_u8(&a[0], TLSSNIFF_GO_G_FS, &g->g_kind) ||
            g->g_kind < TLSSNIFF_GO_G_REG || !get_u8(&a[1], UINT8_MAX, &g->g_reg) ||
            !get_i64(&a[2], &off) || off < INT16_MIN || off > INT16_MAX ||
            !get_u32(&a[3], TLSSNIFF_GO_OFFSET_MAX, &g->goid) ||
            !get_u32(&a[4], TLSSNIFF_GO_OFFSET_MAX, &g->conn) ||
            !get_u32(&a[5], TLSSNIFF_GO_OFFSET_MAX, &g->conn_fd) ||
            !get_u32(&a[6], TLSSNIFF_GO_OFFSET_MAX, &g->pfd) ||
            !get_u32(&a[7], TLSSNIFF_GO_OFFSET_MAX, &g->sysfd))
                return false;
        g->g_off = (int16_t)off;
        m->has_go = true;
        return true;
}

static bool get_loc(const msgpack_object *o, struct tlssniff_loc *ret)
{
        const msgpack_object *a;
        int64_t off;

        if (!get_array(o, 3, &a) || !get_u8(&a[0], TLSSNIFF_LOC_STACK, &ret->kind) ||
            !get_u8(&a[1], UINT8_MAX, &ret->reg) || !get_i64(&a[2], &off))
                return false;
        if (off < INT16_MIN || off > INT16_MAX)
                return false;
        ret->off = (int16_t)off;
        return true;
}

int msg_decode_plan(const uint8_t *body, size_t n, struct msg_plan *ret)
{
        msgpack_unpacked u;
        const msgpack_object *a;
        struct msg_plan *m = ret;
        int r = -EBADMSG;

        if (unpack_whole(body, n, &u) < 0)
                return -EBADMSG;
        memset(m, 0, sizeof(*m));
        if (!get_array(&u.data, 5, &a) || !get_u32(&a[0], UINT32_MAX, &m->file_id) ||
            !get_str(&a[1], m->library, sizeof(m->library), false) ||
            !get_str(&a[2], m->reason, sizeof(m->reason), false) ||
            a[3].type != MSGPACK_OBJECT_ARRAY || a[3].via.array.size > MSG_PLAN_PROBES_MAX)
                goto out;
        m->n_probes = a[3].via.array.size;
        for (uint32_t i = 0; i < m->n_probes; i++) {
                const msgpack_object *p, *locs;
                struct msg_probe *pr = &m->probes[i];

                if (!get_array(&a[3].via.array.ptr[i], 4, &p) ||
                    !get_u8(&p[0], UINT8_MAX, &pr->kind) || !get_u8(&p[1], UINT8_MAX, &pr->func) ||
                    !get_u64(&p[2], UINT64_MAX, &pr->offset) ||
                    !get_array(&p[3], _TLSSNIFF_ARG_MAX, &locs))
                        goto out;
                for (unsigned j = 0; j < _TLSSNIFF_ARG_MAX; j++)
                        if (!get_loc(&locs[j], &pr->loc[j]))
                                goto out;
        }
        if (!get_go(&a[4], m))
                goto out;
        r = 0;
out:
        msgpack_unpacked_destroy(&u);
        return r;
}

int msg_encode_attached(msgpack_sbuffer *sb, const struct msg_attached *m)
{
        msgpack_packer pk;

        msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 3);
        msgpack_pack_uint32(&pk, m->file_id);
        msgpack_pack_uint32(&pk, m->probes);
        if (m->error[0])
                pack_str(&pk, m->error);
        else
                msgpack_pack_nil(&pk);
        return 0;
}

int msg_decode_attached(const uint8_t *body, size_t n, struct msg_attached *ret)
{
        msgpack_unpacked u;
        const msgpack_object *a;
        struct msg_attached m;
        bool ok;

        if (unpack_whole(body, n, &u) < 0)
                return -EBADMSG;
        ok = get_array(&u.data, 3, &a) && get_u32(&a[0], UINT32_MAX, &m.file_id) &&
             get_u32(&a[1], MSG_PLAN_PROBES_MAX, &m.probes) &&
             get_str(&a[2], m.error, sizeof(m.error), true);
        msgpack_unpacked_destroy(&u);
        if (!ok)
                return -EBADMSG;
        *ret = m;
        return 0;
}

int msg_encode_ready(msgpack_sbuffer *sb, const struct msg_ready *m)
{
        msgpack_packer pk;

        msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 2);
        msgpack_pack_uint32(&pk, m->probes);
        msgpack_pack_uint32(&pk, m->files);
        return 0;
}

int msg_decode_ready(const uint8_t *body, size_t n, struct msg_ready *ret)
{
        msgpack_unpacked u;
        const msgpack_object *a;
        struct msg_ready m;
        bool ok;

        if (unpack_whole(body, n, &u) < 0)
                return -EBADMSG;
        ok = get_array(&u.data, 2, &a) && get_u32(&a[0], UINT32_MAX, &m.probes) &&
             get_u32(&a[1], UINT32_MAX, &m.files);
        msgpack_unpacked_destroy(&u);
        if (!ok)
                return -EBADMSG;
        *ret = m;
        return 0;
}

int msg_encode_stats(msgpack_sbuffer *sb, const struct msg_stats *m)
{
        msgpack_packer pk;

        if (m->n > MSG_STATS_MAX)
                return -E2BIG;
        msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, m->n);
        for (uint32_t i = 0; i < m->n; i++) {
                msgpack_pack_array(&pk, 2);
                pack_str(&pk, m->s[i].name);
                msgpack_pack_uint64(&pk, m->s[i].value);
        }
        return 0;
}

int msg_decode_stats(const uint8_t *body, size_t n, struct msg_stats *ret)
{
        msgpack_unpacked u;
        int r = -EBADMSG;

        if (unpack_whole(body, n, &u) < 0)
                return -EBADMSG;
        if (u.data.type != MSGPACK_OBJECT_ARRAY || u.data.via.array.size > MSG_STATS_MAX)
                goto out;
        ret->n = u.data.via.array.size;
        for (uint32_t i = 0; i < ret->n; i++) {
                const msgpack_object *a;

                if (!get_array(&u.data.via.array.ptr[i], 2, &a) ||
                    !get_str(&a[0], ret->s[i].name, sizeof(ret->s[i].name), false) ||
                    !get_u64(&a[1], UINT64_MAX, &ret->s[i].value))
                        goto out;
        }
        r = 0;
out:
        msgpack_unpacked_destroy(&u);
        return r;
}

void msg_records_begin(msgpack_sbuffer *sb)
{
        static const char header[5] = { (char)0xdd, 0, 0, 0, 0 };

        msgpack_sbuffer_clear(sb);
        msgpack_sbuffer_write(sb, header, sizeof(header));
}

void msg_records_add(msgpack_sbuffer *sb, const void *rec, size_t n)
{
        msgpack_packer pk;

        msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
        msgpack_pack_bin(&pk, n);
        msgpack_pack_bin_body(&pk, rec, n);
}

void msg_records_finish(msgpack_sbuffer *sb, uint32_t count)
{
        sb->data[1] = (char)(count >> 24);
        sb->data[2] = (char)(count >> 16);
        sb->data[3] = (char)(count >> 8);
        sb->data[4] = (char)count;
}

/* The next bin item of a records frame at *off: its bytes and length, or false. */
static bool next_bin(const uint8_t *body, size_t n, size_t *off, const uint8_t **ret,
                     uint64_t *ret_len)
{
        uint64_t len;
        uint8_t c;

        if (*off >= n)
                return false;
        c = body[(*off)++];
        if (c < 0xc4 || c > 0xc6 || !read_be(body, n, off, 1u << (c - 0xc4), &len) ||
            len > n - *off)
                return false;
        *ret = body + *off;
        *ret_len = len;
        *off += len;
        return true;
}

/*
 * Records frames carry every captured byte, so they are walked directly rather than through
 * msgpack-c's object tree (a tenth of the analyzer's time when capturing everything): an array
 * header, then exactly that many bin items up to the end of the body; anything else is
 * -EBADMSG. The frame is checked whole before the first callback, as before: a frame broken at
 * its end hands over none of its records.
 */
int msg_records_foreach(const uint8_t *body, size_t n,
                        int (*cb)(const uint8_t *rec, size_t len, void *userdata), void *userdata)
{
        uint64_t count, len;
        const uint8_t *rec;
        size_t off = 0, first;

        if (n == 0)
                return -EBADMSG;
        if (body[0] >= 0x90 && body[0] <= 0x9f) {
                count = body[0] & 0x0f;
                off = 1;
        } else if (body[0] == 0xdc || body[0] == 0xdd) {
                off = 1;
                if (!read_be(body, n, &off, body[0] == 0xdc ? 2 : 4, &count))
                        return -EBADMSG;
        } else {
                return -EBADMSG;
        }
        first = off;
        for (uint64_t i = 0; i < count; i++)
                if (!next_bin(body, n, &off, &rec, &len))
                        return -EBADMSG;
        if (off != n)
                return -EBADMSG;
        off = first;
        for (uint64_t i = 0; i < count; i++) {
                int r;

                (void)next_bin(body, n, &off, &rec, &len);
                r = cb(rec, (size_t)len, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

int msg_encode_control(msgpack_sbuffer *sb, const struct msg_control *m)
{
        msgpack_packer pk;

        msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 3);
        msgpack_pack_uint32(&pk, m->id);
        msgpack_pack_uint8(&pk, m->verb);
        pack_str(&pk, m->arg);
        return 0;
}

int msg_decode_control(const uint8_t *body, size_t n, struct msg_control *ret)
{
        msgpack_unpacked u;
        const msgpack_object *a;
        struct msg_control m;
        bool ok;

        if (unpack_whole(body, n, &u) < 0)
                return -EBADMSG;
        ok = get_array(&u.data, 3, &a) && get_u32(&a[0], UINT32_MAX, &m.id) &&
             get_u8(&a[1], MSG_CONTROL_PROCESSES, &m.verb) && m.verb >= MSG_CONTROL_ATTACH &&
             get_str(&a[2], m.arg, sizeof(m.arg), false);
        msgpack_unpacked_destroy(&u);
        if (!ok)
                return -EBADMSG;
        *ret = m;
        return 0;
}

int msg_encode_control_result(msgpack_sbuffer *sb, const struct msg_control_result *m)
{
        msgpack_packer pk;

        msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 3);
        msgpack_pack_uint32(&pk, m->id);
        if (m->ok)
                msgpack_pack_true(&pk);
        else
                msgpack_pack_false(&pk);
        pack_str(&pk, m->message);
        return 0;
}

int msg_decode_control_result(const uint8_t *body, size_t n, struct msg_control_result *ret)
{
        msgpack_unpacked u;
        const msgpack_object *a;
        struct msg_control_result m;
        bool ok;

        if (unpack_whole(body, n, &u) < 0)
                return -EBADMSG;
        ok = get_array(&u.data, 3, &a) && get_u32(&a[0], UINT32_MAX, &m.id) &&
             a[1].type == MSGPACK_OBJECT_BOOLEAN &&
             get_str(&a[2], m.message, sizeof(m.message), false);
        if (ok)
                m.ok = a[1].via.boolean;
        msgpack_unpacked_destroy(&u);
        if (!ok)
                return -EBADMSG;
        *ret = m;
        return 0;
}

int msg_encode_config(msgpack_sbuffer *sb, const struct msg_config *m)
{
        msgpack_packer pk;

        if (m->n_args > MSG_CONFIG_ARGS_MAX)
                return -E2BIG;
        msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 2);
        msgpack_pack_array(&pk, m->n_args);
        for (uint32_t i = 0; i < m->n_args; i++)
                pack_str(&pk, m->args[i]);
        if (m->has_fd)
                msgpack_pack_true(&pk);
        else
                msgpack_pack_false(&pk);
        return 0;
}

int msg_decode_config(const uint8_t *body, size_t n, struct msg_config *ret)
{
        msgpack_unpacked u;
        const msgpack_object *a;
        bool ok;

        if (unpack_whole(body, n, &u) < 0)
                return -EBADMSG;
        ok = get_array(&u.data, 2, &a) && a[0].type == MSGPACK_OBJECT_ARRAY &&
             a[0].via.array.size <= MSG_CONFIG_ARGS_MAX && a[1].type == MSGPACK_OBJECT_BOOLEAN;
        if (ok) {
                ret->n_args = a[0].via.array.size;
                for (uint32_t i = 0; ok && i < ret->n_args; i++)
                        ok = get_str(&a[0].via.array.ptr[i], ret->args[i], sizeof(ret->args[i]),
                                     false);
                ret->has_fd = a[1].via.boolean;
        }
        msgpack_unpacked_destroy(&u);
        return ok ? 0 : -EBADMSG;
}

int msg_encode_processes(msgpack_sbuffer *sb, const struct msg_processes *m)
{
        msgpack_packer pk;

        if (m->n > MSG_PROCESSES_MAX)
                return -E2BIG;
        msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 3);
        msgpack_pack_uint32(&pk, m->id);
        msgpack_pack_uint32(&pk, m->total);
        msgpack_pack_array(&pk, m->n);
        for (uint32_t i = 0; i < m->n; i++) {
                const struct msg_process *p = &m->p[i];
                char comm[TLSSNIFF_COMM_LEN + 1];

                memcpy(comm, p->comm, TLSSNIFF_COMM_LEN);
                comm[TLSSNIFF_COMM_LEN] = '\0';
                msgpack_pack_array(&pk, 6);
                msgpack_pack_uint32(&pk, p->pid);
                msgpack_pack_uint8(&pk, p->status);
                pack_str(&pk, comm);
                pack_str(&pk, p->exe);
                pack_str(&pk, p->reason);
                msgpack_pack_array(&pk, p->n_files);
                for (uint32_t k = 0; k < p->n_files && k < MSG_PROCESS_FILES_MAX; k++)
                        msgpack_pack_uint32(&pk, p->files[k]);
        }
        return 0;
}

int msg_decode_processes(const uint8_t *body, size_t n, struct msg_processes *ret)
{
        msgpack_unpacked u;
        const msgpack_object *a;
        bool ok;

        if (unpack_whole(body, n, &u) < 0)
                return -EBADMSG;
        ok = get_array(&u.data, 3, &a) && get_u32(&a[0], UINT32_MAX, &ret->id) &&
             get_u32(&a[1], UINT32_MAX, &ret->total) && a[2].type == MSGPACK_OBJECT_ARRAY &&
             a[2].via.array.size <= MSG_PROCESSES_MAX;
        if (ok)
                ret->n = a[2].via.array.size;
        for (uint32_t i = 0; ok && i < ret->n; i++) {
                struct msg_process *p = &ret->p[i];
                const msgpack_object *e, *f;
                char comm[TLSSNIFF_COMM_LEN + 1];

                ok = get_array(&a[2].via.array.ptr[i], 6, &e) &&
                     get_u32(&e[0], INT32_MAX, &p->pid) &&
                     get_u8(&e[1], _MSG_PROCESS_STATUS_MAX - 1, &p->status) && p->status >= 1 &&
                     get_str(&e[2], comm, sizeof(comm), false) &&
                     get_str(&e[3], p->exe, sizeof(p->exe), false) &&
                     get_str(&e[4], p->reason, sizeof(p->reason), false) &&
                     e[5].type == MSGPACK_OBJECT_ARRAY &&
                     e[5].via.array.size <= MSG_PROCESS_FILES_MAX;
                if (!ok)
                        break;
                memset(p->comm, 0, sizeof(p->comm));
                memcpy(p->comm, comm, strlen(comm) < TLSSNIFF_COMM_LEN ? strlen(comm)
                                                                       : TLSSNIFF_COMM_LEN);
                f = e[5].via.array.ptr;
                p->n_files = e[5].via.array.size;
                for (uint32_t k = 0; ok && k < p->n_files; k++)
                        ok = get_u32(&f[k], UINT32_MAX, &p->files[k]);
        }
        msgpack_unpacked_destroy(&u);
        return ok ? 0 : -EBADMSG;
}

int msg_encode_status(msgpack_sbuffer *sb, const struct msg_status *m)
{
        msgpack_packer pk;

        msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 3);
        msgpack_pack_uint32(&pk, m->processes);
        msgpack_pack_uint32(&pk, m->connections);
        msgpack_pack_uint64(&pk, m->records_bytes);
        return 0;
}

int msg_decode_status(const uint8_t *body, size_t n, struct msg_status *ret)
{
        msgpack_unpacked u;
        const msgpack_object *a;
        struct msg_status m;
        bool ok;

        if (unpack_whole(body, n, &u) < 0)
                return -EBADMSG;
        ok = get_array(&u.data, 3, &a) && get_u32(&a[0], UINT32_MAX, &m.processes) &&
             get_u32(&a[1], UINT32_MAX, &m.connections) &&
             get_u64(&a[2], UINT64_MAX, &m.records_bytes);
        msgpack_unpacked_destroy(&u);
        if (!ok)
                return -EBADMSG;
        *ret = m;
        return 0;
}
