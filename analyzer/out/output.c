/* Text and JSON output; see output.h and docs/output.md. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "output.h"
#include "redact.h"

void output_init_fd(struct output *o, FILE *f, int fd, bool json, unsigned max_print)
{
        *o = (struct output){ .f = f, .fd = fd, .json = json, .max_print = max_print };
        output_file_changed(o);
}

void output_init(struct output *o, FILE *f, bool json, unsigned max_print)
{
        output_init_fd(o, f, fileno(f), json, max_print);
}

void output_file_changed(struct output *o)
{
        struct stat st;
        int fd = o->fd;

        o->wb_file = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
        /* What an earlier analyzer wrote is left as it is. */
        o->wb_started = o->wb_dropped = o->wb_file ? (uint64_t)st.st_size & ~(uint64_t)4095 : 0;
}

/* Best effort: errors (a sandbox that refuses the calls, a file system without them) are
 * harmless, the pages simply stay cached. */
static void writeback(struct output *o)
{
        int fd = o->fd;
        off_t end;

        if (!o->wb_file)
                return;
        end = lseek(fd, 0, SEEK_CUR); /* O_APPEND: the end of what was written */
        if (end < 0)
                return;
        if ((uint64_t)end < o->wb_started) /* truncated under us: start again */
                o->wb_started = o->wb_dropped = 0;
        if ((uint64_t)end - o->wb_started < OUTPUT_WRITEBACK_STEP)
                return;
        (void)sync_file_range(fd, (off_t)o->wb_started, end - (off_t)o->wb_started,
                              SYNC_FILE_RANGE_WRITE);
        o->wb_started = (uint64_t)end;
        if ((uint64_t)end > OUTPUT_CACHE_KEEP) {
                uint64_t upto = ((uint64_t)end - OUTPUT_CACHE_KEEP) & ~(uint64_t)4095;

                if (upto > o->wb_dropped) {
                        (void)posix_fadvise(fd, (off_t)o->wb_dropped,
                                            (off_t)(upto - o->wb_dropped), POSIX_FADV_DONTNEED);
                        o->wb_dropped = upto;
                }
        }
}

static void flush_out(struct output *o)
{
        fflush(o->f);
        writeback(o);
}

void output_done(struct output *o)
{
        free(o->b64);
        o->b64 = NULL;
        free(o->redacted);
        o->redacted = NULL;
}

/* What an exchange shows that can hold secrets: its target and body previews. */
struct exchange_view {
        const char *target;
        const uint8_t *req, *resp;
        size_t req_len, resp_len;
        char target_buf[REDACT_OUT_MAX(sizeof(((struct exchange *)0)->target))];
};

/* v as x says, or with sensitive query values and body fields redacted unless show_secrets
 * (a preview that cannot be redacted for want of memory is left out). */
static void exchange_view(struct output *o, const struct exchange *x, bool show_secrets,
                          struct exchange_view *v)
{
        size_t need = REDACT_OUT_MAX(x->req_preview_len) + REDACT_OUT_MAX(x->resp_preview_len);

        *v = (struct exchange_view){ .target = x->target, .req = x->req_preview,
                                     .resp = x->resp_preview, .req_len = x->req_preview_len,
                                     .resp_len = x->resp_preview_len };
        if (show_secrets)
                return;
        redact_target(o->redact, x->target, v->target_buf, sizeof(v->target_buf));
        v->target = v->target_buf;
        if (x->req_preview_len + x->resp_preview_len == 0)
                return;
        if (o->redacted_cap < need) {
                uint8_t *p = realloc(o->redacted, need);

                if (!p) {
                        v->req_len = v->resp_len = 0;
                        return;
                }
                o->redacted = p;
                o->redacted_cap = need;
        }
        v->req = o->redacted;
        v->req_len = redact_preview(o->redact, x->req_preview, x->req_preview_len, o->redacted,
                                    REDACT_OUT_MAX(x->req_preview_len));
        v->resp = o->redacted + REDACT_OUT_MAX(x->req_preview_len);
        v->resp_len = redact_preview(o->redact, x->resp_preview, x->resp_preview_len,
                                     o->redacted + REDACT_OUT_MAX(x->req_preview_len),
                                     REDACT_OUT_MAX(x->resp_preview_len));
}

static const char b64_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/*
 * Every 12-bit value as its two base64 characters: half the lookups of the plain loop. Filled
 * on first use, read-only after that (a table, not state).
 */
static const char (*b64_pairs(void))[2]
{
        static char pairs[4096][2];
        static bool ready;

        if (!ready) {
                for (unsigned v = 0; v < 4096; v++) {
                        pairs[v][0] = b64_alphabet[v >> 6];
                        pairs[v][1] = b64_alphabet[v & 63];
                }
                ready = true;
        }
        return (const char(*)[2])pairs;
}

/* The plain encoder: six bytes a step, then the tail of 3 or fewer. */
size_t base64_encode_portable(const uint8_t *in, size_t n, char *out)
{
        const char(*pairs)[2] = b64_pairs();
        size_t o = 0, i = 0;

        /* Six bytes a step from one 8-byte big-endian load (needs 8 readable bytes). */
        for (; i + 8 <= n; i += 6) {
                uint64_t v;

                memcpy(&v, in + i, sizeof(v));
                v = __builtin_bswap64(v);
                memcpy(out + o, pairs[(v >> 52) & 4095], 2);
                memcpy(out + o + 2, pairs[(v >> 40) & 4095], 2);
                memcpy(out + o + 4, pairs[(v >> 28) & 4095], 2);
                memcpy(out + o + 6, pairs[(v >> 16) & 4095], 2);
                o += 8;
        }
        for (; i + 2 < n; i += 3) {
                uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

                memcpy(out + o, pairs[v >> 12], 2);
                memcpy(out + o + 2, pairs[v & 4095], 2);
                o += 4;
        }
        if (i < n) {
                uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);

                out[o++] = b64_alphabet[v >> 18];
                out[o++] = b64_alphabet[(v >> 12) & 63];
                out[o++] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
                out[o++] = '=';
        }
        out[o] = '\0';
        return o;
}

#if defined(__x86_64__)
#include <immintrin.h>

/*
 * 24 bytes to 32 characters a step with AVX2 (W. Muła's and D. Lemire's method, as in aklomp's
 * base64): each 128-bit lane takes 12 input bytes, a byte shuffle puts each 3-byte group into a
 * 32-bit word twice, two multiplies move the four 6-bit fields into bytes, and one table lookup
 * per byte adds the offset of its alphabet range. Capturing everything, the base64 of the data
 * line was the analyzer's largest cost at about 1.6 GB/s; this runs several times faster. Every
 * load reads 16 bytes from where 12 are used, so a step needs 4 bytes beyond its 24; the rest
 * goes to the portable encoder.
 */
__attribute__((target("avx2"))) static size_t base64_encode_avx2(const uint8_t *in, size_t n,
                                                                  char *out)
{
        const __m256i shuf = _mm256_setr_epi8(1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10,
                                              1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10);
        const __m256i lut = _mm256_setr_epi8(65, 71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -19,
                                             -16, 0, 0, 65, 71, -4, -4, -4, -4, -4, -4, -4, -4,
                                             -4, -4, -19, -16, 0, 0);
        size_t i = 0, o = 0;

        for (; i + 28 <= n; i += 24, o += 32) {
                __m128i lo = _mm_loadu_si128((const __m128i *)(const void *)(in + i));
                __m128i hi = _mm_loadu_si128((const __m128i *)(const void *)(in + i + 12));
                __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
                __m256i t0, t1, t2, t3, idx;

                v = _mm256_shuffle_epi8(v, shuf);
                /* Per 32-bit word (bytes b1 b0 b2 b1): the fields a, b, c, d of the group into
                 * bytes 0..3. */
                t0 = _mm256_and_si256(v, _mm256_set1_epi32(0x0FC0FC00));
                t1 = _mm256_mulhi_epu16(t0, _mm256_set1_epi32(0x04000040));
                t2 = _mm256_and_si256(v, _mm256_set1_epi32(0x003F03F0));
                t3 = _mm256_mullo_epi16(t2, _mm256_set1_epi32(0x01000010));
                v = _mm256_or_si256(t1, t3);
                /* 0..25 -> index 0, 26..51 -> 1, 52..61 -> 2..11, 62 -> 12, 63 -> 13. */
                idx = _mm256_subs_epu8(v, _mm256_set1_epi8(51));
                idx = _mm256_sub_epi8(idx, _mm256_cmpgt_epi8(v, _mm256_set1_epi8(25)));
                v = _mm256_add_epi8(v, _mm256_shuffle_epi8(lut, idx));
                _mm256_storeu_si256((__m256i *)(void *)(out + o), v);
        }
        return o + base64_encode_portable(in + i, n - i, out + o);
}
#endif

size_t base64_encode(const uint8_t *in, size_t n, char *out)
{
#if defined(__x86_64__)
        /* Below two steps the vector setup does not pay. __builtin_cpu_supports reads what
         * libgcc (or compiler-rt) found at start-up: no system call, no state of ours. */
        if (n >= 56 && __builtin_cpu_supports("avx2"))
                return base64_encode_avx2(in, n, out);
#endif
        return base64_encode_portable(in, n, out);
}

/* One byte of a JSON string at p (at most 6 bytes); returns the end. The strings written
 * (comm, headers) are bytes, not UTF-8: everything outside printable ASCII is escaped. */
static char *put_json_char(char *p, unsigned char c)
{
        static const char hex[] = "0123456789abcdef";

        if (c == '"' || c == '\\') {
                *p++ = '\\';
                *p++ = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
                memcpy(p, "\\u00", 4);
                p += 4;
                *p++ = hex[c >> 4];
                *p++ = hex[c & 15];
        } else
                *p++ = (char)c;
        return p;
}

void json_write_string(FILE *f, const char *s, size_t n)
{
        char buf[256], *p = buf;

        *p++ = '"';
        for (size_t i = 0; i < n; i++) {
                if (p + 6 > buf + sizeof(buf) - 1) {
                        fwrite(buf, 1, (size_t)(p - buf), f);
                        p = buf;
                }
                p = put_json_char(p, (unsigned char)s[i]);
        }
        *p++ = '"';
        fwrite(buf, 1, (size_t)(p - buf), f);
}

void format_addr(uint16_t family, const uint8_t addr[16], char *out, size_t size)
{
        /* IPv4 by hand: glibc's inet_ntop formats it with sprintf, twice per message. */
        if (family == AF_INET && size >= INET_ADDRSTRLEN) {
                char *p = out;

                for (int i = 0; i < 4; i++) {
                        unsigned v = addr[i];

                        if (v >= 100)
                                *p++ = (char)('0' + v / 100);
                        if (v >= 10)
                                *p++ = (char)('0' + v / 10 % 10);
                        *p++ = (char)('0' + v % 10);
                        *p++ = i < 3 ? '.' : '\0';
                }
        } else if (family == AF_INET)
                inet_ntop(AF_INET, addr, out, (socklen_t)size);
        else if (family == AF_INET6)
                inet_ntop(AF_INET6, addr, out, (socklen_t)size);
        else
                snprintf(out, size, "?");
}

static const char *family_name(uint16_t f)
{
        switch (f) {
        case AF_INET: return "ipv4";
        case AF_INET6: return "ipv6";
        case AF_UNIX: return "unix";
        default: return "unknown";
        }
}

const char *output_proto_name(enum conn_proto p)
{
        switch (p) {
        case CONN_PROTO_HTTP1: return "http/1";
        case CONN_PROTO_HTTP2: return "http/2";
        case CONN_PROTO_OTHER: return "other";
        default: return "none";
        }
}

const char *output_role_name(uint8_t r)
{
        return r == TLSSNIFF_ROLE_CLIENT ? "client" : r == TLSSNIFF_ROLE_SERVER ? "server"
                                                                                 : "unknown";
}

static const char *role_source_name(enum role_source rs)
{
        return rs == ROLE_SOURCE_KERNEL ? "kernel" : rs == ROLE_SOURCE_LISTEN ? "listen" : "none";
}

static void print_escaped(FILE *f, const uint8_t *p, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                uint8_t c = p[i];

                switch (c) {
                case '\r': fputs("\\r", f); break;
                case '\n': fputs("\\n", f); break;
                case '\t': fputs("\\t", f); break;
                case '\\': fputs("\\\\", f); break;
                default:
                        if (c < 0x20 || c >= 0x7f)
                                fprintf(f, "\\x%02x", c);
                        else
                                fputc(c, f);
                }
        }
}

/*
 * Wall-clock time of a record: seconds (floored) and nanoseconds within the second. The record's
 * timestamp and loaderd's offset both come from outside, so the sum saturates instead of
 * overflowing, and a time gmtime cannot represent prints as "?".
 */
static void wall_time(struct output *o, uint64_t boot_ns, bool utc, char *tbuf, size_t size,
                      long *ret_ns)
{
        int64_t ns;
        time_t secs;
        struct tm tm;

        if (__builtin_add_overflow(boot_ns, o->realtime_offset_ns, &ns))
                ns = INT64_MAX; /* boot_ns >= 0: only upwards */
        secs = (time_t)(ns / 1000000000);
        *ret_ns = (long)(ns % 1000000000);
        if (*ret_ns < 0) {
                *ret_ns += 1000000000;
                secs--;
        }
        /* Messages come many per second: the second's text is made once. */
        if (o->tcache[0] && o->tcache_secs == (int64_t)secs && o->tcache_utc == utc &&
            size >= sizeof(o->tcache)) {
                memcpy(tbuf, o->tcache, sizeof(o->tcache)); /* no format parsing per message */
                return;
        }
        if (!(utc ? gmtime_r(&secs, &tm) : localtime_r(&secs, &tm)) ||
            strftime(tbuf, size, utc ? "%Y-%m-%dT%H:%M:%S" : "%H:%M:%S", &tm) == 0) {
                snprintf(tbuf, size, "?");
                return;
        }
        snprintf(o->tcache, sizeof(o->tcache), "%s", tbuf);
        o->tcache_secs = (int64_t)secs;
        o->tcache_utc = utc;
}

static int output_text(struct output *o, const struct message *m, uint8_t role)
{
        const struct tlssniff_data_record *h = &m->hdr;
        char la[INET6_ADDRSTRLEN], ra[INET6_ADDRSTRLEN], tbuf[32];
        size_t shown = m->length < o->max_print ? m->length : o->max_print;
        long ns;

        wall_time(o, h->timestamp_ns, false, tbuf, sizeof(tbuf), &ns);
        format_addr(h->family, h->laddr, la, sizeof(la));
        format_addr(h->family, h->raddr, ra, sizeof(ra));
        fprintf(o->f, "%s.%06lld %.*s[%u/%u] %s ", tbuf, (long long)ns / 1000,
                TLSSNIFF_COMM_LEN, h->comm, h->pid, h->tid, output_role_name(role));
        if (h->family == AF_INET6)
                fprintf(o->f, "[%s]:%u -> [%s]:%u", la, h->lport, ra, h->rport);
        else if (h->family == AF_INET)
                fprintf(o->f, "%s:%u -> %s:%u", la, h->lport, ra, h->rport);
        else
                fprintf(o->f, "(%s)", family_name(h->family));
        fprintf(o->f, " fd=%d conn=%llu %s %u B @%llu", h->fd, (unsigned long long)h->conn_id,
                h->direction == TLSSNIFF_DIR_WRITE ? "write" : "read", m->length,
                (unsigned long long)m->offset);
        if (m->truncated)
                fprintf(o->f, " (+%u B not captured: over --call-cap)", m->truncated);
        fputs("\n    ", o->f);
        print_escaped(o->f, m->data, shown);
        if (shown < m->length)
                fprintf(o->f, "...(%u more bytes)", m->length - (uint32_t)shown);
        fputc('\n', o->f);
        return 0;
}

/* Builders for the data line, which is written with one fwrite (no format parsing: printf was
 * a fifth of the analyzer's time when capturing everything). put_lit is always inlined, so that
 * the length of a literal is known when compiling. */
static inline __attribute__((always_inline)) char *put_lit(char *p, const char *s)
{
        size_t n = strlen(s);

        memcpy(p, s, n);
        return p + n;
}

#define LINE_HEAD_MAX 1024 /* the data line before its payload, at most (see output_json) */

static char *put_u64(char *p, uint64_t v)
{
        char t[20];
        int n = 0;

        do {
                t[n++] = (char)('0' + v % 10);
                v /= 10;
        } while (v);
        while (n)
                *p++ = t[--n];
        return p;
}

static char *put_i64(char *p, int64_t v)
{
        if (v >= 0)
                return put_u64(p, (uint64_t)v);
        *p++ = '-';
        return put_u64(p, (uint64_t)(-(v + 1)) + 1);
}

/* comm (at most TLSSNIFF_COMM_LEN bytes) as a JSON string, like json_write_string. */
static char *put_comm(char *p, const char *s, size_t n)
{
        *p++ = '"';
        for (size_t i = 0; i < n; i++)
                p = put_json_char(p, (unsigned char)s[i]);
        *p++ = '"';
        return p;
}

static char *put_addr(char *p, const struct tlssniff_data_record *h, const uint8_t *addr,
                      uint16_t port)
{
        char a[INET6_ADDRSTRLEN];

        if (h->family != AF_INET && h->family != AF_INET6)
                return put_lit(p, "null");
        format_addr(h->family, addr, a, sizeof(a));
        p = put_lit(p, "{\"ip\":\"");
        p = put_lit(p, a);
        p = put_lit(p, "\",\"port\":");
        p = put_u64(p, port);
        *p++ = '}';
        return p;
}

static void json_addr(FILE *f, const struct tlssniff_data_record *h, const uint8_t *addr,
                      uint16_t port)
{
        char b[96], *e = put_addr(b, h, addr, port);

        fwrite(b, 1, (size_t)(e - b), f);
}

/*
 * The part of a data line from "pid" up to "offset": the same for every message of a
 * connection in one direction from one thread, so it is written again from the cache slot of
 * its conn_id and direction while every field it is made of is the same (compared whole, key
 * zero-filled).
 */
static char *put_middle(struct output *o, char *p, const struct message *m, uint8_t role,
                        enum role_source rs)
{
        const struct tlssniff_data_record *h = &m->hdr;
        uint64_t slot = (h->conn_id << 1 | (h->direction & 1)) % OUTPUT_LINE_SLOTS;
        struct output_line *c = &o->lines[slot];
        struct output_line_key k;
        char *start = p;

        memset(&k, 0, sizeof(k));
        k.conn_id = h->conn_id;
        k.pid = h->pid;
        k.tid = h->tid;
        k.fd = h->fd;
        k.family = h->family;
        k.lport = h->lport;
        k.rport = h->rport;
        k.direction = h->direction;
        k.role = role;
        k.rs = (uint8_t)rs;
        k.source = h->source;
        memcpy(k.laddr, h->laddr, 16);
        memcpy(k.raddr, h->raddr, 16);
        memcpy(k.comm, h->comm, TLSSNIFF_COMM_LEN);
        if (c->len && memcmp(&c->key, &k, sizeof(k)) == 0) {
                memcpy(p, c->text, c->len);
                return p + c->len;
        }
        p = put_lit(p, ",\"pid\":");
        p = put_u64(p, h->pid);
        p = put_lit(p, ",\"tid\":");
        p = put_u64(p, h->tid);
        p = put_lit(p, ",\"comm\":");
        p = put_comm(p, h->comm, strnlen(h->comm, TLSSNIFF_COMM_LEN));
        p = put_lit(p, ",\"fd\":");
        p = put_i64(p, h->fd);
        p = put_lit(p, ",\"direction\":\"");
        p = put_lit(p, h->direction == TLSSNIFF_DIR_WRITE ? "write" : "read");
        p = put_lit(p, "\",\"role\":\"");
        p = put_lit(p, output_role_name(role));
        p = put_lit(p, "\",\"role_source\":\"");
        p = put_lit(p, role_source_name(rs));
        p = put_lit(p, "\",\"family\":\"");
        p = put_lit(p, family_name(h->family));
        p = put_lit(p, "\",\"local\":");
        p = put_addr(p, h, h->laddr, h->lport);
        p = put_lit(p, ",\"remote\":");
        p = put_addr(p, h, h->raddr, h->rport);
        p = put_lit(p, ",\"conn_id\":");
        p = put_u64(p, h->conn_id);
        p = put_lit(p, ",\"source\":\"");
        p = put_lit(p, h->source == TLSSNIFF_SOURCE_GO ? "go" : "openssl");
        if ((size_t)(p - start) <= sizeof(c->text)) {
                memcpy(&c->key, &k, sizeof(k)); /* the padding too: compared whole */
                c->len = (uint16_t)(p - start);
                memcpy(c->text, start, c->len);
        } else {
                c->len = 0; /* cannot happen (see OUTPUT_LINE_MAX); never a cut copy */
        }
        return p;
}

static int output_json(struct output *o, const struct message *m, uint8_t role,
                       enum role_source rs)
{
        const struct tlssniff_data_record *h = &m->hdr;
        /* The whole line in one buffer, written with one fwrite: the head (fixed text about 330
         * bytes, comm at most 96 escaped, two addresses 70 each), the payload's base64, the
         * tail. */
        size_t need = LINE_HEAD_MAX + 4 * ((size_t)m->length / 3 + 1) + 4;
        char tbuf[32], *p, *head;
        long ns;

        if (o->b64_cap < need) {
                char *b = realloc(o->b64, need);

                if (!b)
                        return -ENOMEM;
                o->b64 = b;
                o->b64_cap = need;
        }
        head = p = o->b64;
        wall_time(o, h->timestamp_ns, true, tbuf, sizeof(tbuf), &ns);
        p = put_lit(p, "{\"type\":\"data\",\"time\":\"");
        p = put_lit(p, tbuf);
        *p++ = '.';
        for (int d = 8; d >= 0; d--, ns /= 10) /* nine digits, by a constant: no divide */
                p[d] = (char)('0' + ns % 10);
        p += 9;
        p = put_lit(p, "Z\",\"timestamp_ns\":");
        p = put_u64(p, h->timestamp_ns);
        p = put_middle(o, p, m, role, rs);
        p = put_lit(p, "\",\"offset\":");
        p = put_u64(p, m->offset);
        p = put_lit(p, ",\"length\":");
        p = put_u64(p, m->length);
        p = put_lit(p, ",\"call_length\":");
        p = put_u64(p, h->call_len);
        p = put_lit(p, ",\"truncated\":");
        p = put_u64(p, m->truncated);
        p = put_lit(p, ",\"data_encoding\":\"base64\",\"data\":\"");
        p += base64_encode(m->data, m->length, p);
        p = put_lit(p, "\"}\n");
        /* One thread uses the stream (the output's writer thread only sees what stdio hands
         * over, out/direct.h): its lock is not needed. */
        fwrite_unlocked(head, 1, (size_t)(p - head), o->f);
        return 0;
}

/* At most this many bytes for one message: fixed fields, then the payload's encoding. */
static size_t message_bound(const struct output *o, const struct message *m)
{
        size_t shown = m->length < o->max_print ? m->length : o->max_print;

        return LINE_HEAD_MAX + 4 + (o->json ? 4 * ((size_t)m->length / 3 + 1) : 4 * shown);
}

int output_message(struct output *o, const struct message *m, uint8_t role, enum role_source rs)
{
        size_t bound = message_bound(o, m);
        int r;

        if (o->flush_at > 0) {
                if (o->pending_bound + bound > o->flush_at && o->pending_bound > 0) {
                        flush_out(o);
                        o->pending_bound = 0;
                }
                o->pending_bound += bound;
        }
        r = o->json ? output_json(o, m, role, rs) : output_text(o, m, role);

        if (r < 0)
                return r;
        return ferror_unlocked(o->f) ? -EIO : 0;
}

static bool is_secret(const struct output_redaction *extra, const char *name)
{
        static const char *const secret[] = { "authorization", "proxy-authorization", "cookie",
                                              "set-cookie" };

        for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++)
                if (strcasecmp(name, secret[i]) == 0)
                        return true;
        for (unsigned i = 0; extra && i < extra->n && i < OUTPUT_REDACT_MAX; i++)
                if (strcasecmp(name, extra->names[i]) == 0)
                        return true;
        return false;
}

static void json_headers(const struct output *o, const struct exchange_headers *h,
                         bool show_secrets)
{
        FILE *f = o->f;

        fputc('[', f);
        for (unsigned i = 0; i < h->n; i++) {
                const char *name = h->text + h->name[i], *value = h->text + h->value[i];

                fputs(i ? ",[" : "[", f);
                json_write_string(f, name, strlen(name));
                fputc(',', f);
                if (!show_secrets && is_secret(o->redact, name))
                        fputs("\"[redacted]\"", f);
                else
                        json_write_string(f, value, strlen(value));
                fputc(']', f);
        }
        fputc(']', f);
}

static double ms_between(uint64_t a, uint64_t b)
{
        return b >= a ? (double)(b - a) / 1e6 : 0.0;
}

/* "comm":..,"role":..,"family":..,"local":..,"remote":..,"conn_id":N of a tracked connection. */
static void json_conn_identity(FILE *f, const struct conn_entry *c)
{
        const struct tlssniff_data_record *h = &c->id;

        json_write_string(f, h->comm, strnlen(h->comm, TLSSNIFF_COMM_LEN));
        fprintf(f, ",\"role\":\"%s\",\"family\":\"%s\",\"local\":", output_role_name(c->role),
                family_name(h->family));
        json_addr(f, h, h->laddr, h->lport);
        fputs(",\"remote\":", f);
        json_addr(f, h, h->raddr, h->rport);
        fprintf(f, ",\"conn_id\":%llu", (unsigned long long)c->conn_id);
}

int output_exchange(struct output *o, const struct conn_entry *c, const struct exchange *x,
                    bool show_secrets)
{
        const struct tlssniff_data_record *h = &c->id;
        struct exchange_view v;
        char tbuf[32];
        long ns;

        exchange_view(o, x, show_secrets, &v);
        wall_time(o, x->start_ns, o->json, tbuf, sizeof(tbuf), &ns);
        if (!o->json) {
                char la[INET6_ADDRSTRLEN], ra[INET6_ADDRSTRLEN];

                format_addr(h->family, h->laddr, la, sizeof(la));
                format_addr(h->family, h->raddr, ra, sizeof(ra));
                fprintf(o->f, "%s.%06lld %.*s[%u] %s %s:%u -> %s:%u conn=%llu %s: %s %s%s",
                        tbuf, (long long)ns / 1000, TLSSNIFF_COMM_LEN, h->comm, h->pid,
                        output_role_name(c->role), la, h->lport, ra, h->rport,
                        (unsigned long long)c->conn_id,
                        x->grpc ? "gRPC" : x->http_version == 2 ? "HTTP/2" : "HTTP",
                        x->method[0] ? x->method : "?", x->authority, v.target);
                if (x->status)
                        fprintf(o->f, " -> %d %s", x->status, x->reason);
                if (x->grpc && x->grpc_status >= 0)
                        fprintf(o->f, " grpc-status %d", x->grpc_status);
                fprintf(o->f, " (%.3f ms, %llu B / %llu B)", ms_between(x->start_ns, x->resp_end_ns),
                        (unsigned long long)x->req_body, (unsigned long long)x->resp_body);
                if (x->error)
                        fprintf(o->f, " [%s]", x->error);
                fputc('\n', o->f);
                return ferror(o->f) ? -EIO : 0;
        }
        if (x->http_version == 2)
                fputs("{\"type\":\"exchange\",\"protocol\":\"http/2\"", o->f);
        else
                fprintf(o->f, "{\"type\":\"exchange\",\"protocol\":\"http/1.%d\"",
                        x->version_minor);
        fprintf(o->f, ",\"time\":\"%s.%09lldZ\",\"timestamp_ns\":%llu,\"pid\":%u,\"comm\":", tbuf,
                (long long)ns, (unsigned long long)x->start_ns, h->pid);
        json_conn_identity(o->f, c);
        fputs(",\"stream_id\":", o->f);
        if (x->http_version == 2)
                fprintf(o->f, "%u", x->stream_id);
        else
                fputs("null", o->f);
        fputs(",\"scheme\":", o->f);
        if (x->scheme[0])
                json_write_string(o->f, x->scheme, strlen(x->scheme));
        else
                fputs("\"https\"", o->f);
        fputs(",\"method\":", o->f);
        if (x->method[0])
                json_write_string(o->f, x->method, strlen(x->method));
        else
                fputs("null", o->f);
        fputs(",\"authority\":", o->f);
        json_write_string(o->f, x->authority, strlen(x->authority));
        fputs(",\"path\":", o->f);
        json_write_string(o->f, v.target, strlen(v.target));
        fprintf(o->f, ",\"status\":");
        if (x->status)
                fprintf(o->f, "%d", x->status);
        else
                fputs("null", o->f);
        fputs(",\"request_headers\":", o->f);
        json_headers(o, &x->req_headers, show_secrets);
        fputs(",\"response_headers\":", o->f);
        json_headers(o, &x->resp_headers, show_secrets);
        fprintf(o->f, ",\"request_body_bytes\":%llu,\"response_body_bytes\":%llu,"
                      "\"request_body_preview\":",
                (unsigned long long)x->req_body, (unsigned long long)x->resp_body);
        json_write_string(o->f, (const char *)v.req, v.req_len);
        fputs(",\"response_body_preview\":", o->f);
        json_write_string(o->f, (const char *)v.resp, v.resp_len);
        fprintf(o->f, ",\"latency_ms\":");
        if (x->resp_started)
                fprintf(o->f, "%.6f,\"ttfb_ms\":%.6f", ms_between(x->start_ns, x->resp_end_ns),
                        ms_between(x->req_end_ns, x->resp_start_ns));
        else
                fputs("null,\"ttfb_ms\":null", o->f);
        fputs(",\"grpc\":", o->f);
        if (x->grpc) {
                fputs("{\"service\":", o->f);
                json_write_string(o->f, x->grpc_service, strlen(x->grpc_service));
                fputs(",\"method\":", o->f);
                json_write_string(o->f, x->grpc_method, strlen(x->grpc_method));
                fputs(",\"status\":", o->f);
                if (x->grpc_status >= 0)
                        fprintf(o->f, "%d", x->grpc_status);
                else
                        fputs("null", o->f);
                fputs(",\"message\":", o->f);
                json_write_string(o->f, x->grpc_message, strlen(x->grpc_message));
                fprintf(o->f, ",\"request_messages\":%u,\"response_messages\":%u}",
                        x->grpc_msgs[0], x->grpc_msgs[1]);
        } else {
                fputs("null", o->f);
        }
        fprintf(o->f, ",\"upgraded\":%s,\"error\":", x->upgraded ? "true" : "false");
        if (x->error)
                json_write_string(o->f, x->error, strlen(x->error));
        else
                fputs("null", o->f);
        fputs("}\n", o->f);
        return ferror(o->f) ? -EIO : 0;
}

int output_connection(struct output *o, const struct conn_entry *c, const char *why)
{
        const struct tlssniff_data_record *h = &c->id;
        uint64_t end = c->close_ns ? c->close_ns : c->last_ns;
        char tbuf[32];
        long ns;

        wall_time(o, end, o->json, tbuf, sizeof(tbuf), &ns);
        if (!o->json) {
                fprintf(o->f, "%s.%06lld %.*s[%u] %s conn=%llu %s (%s): sent %llu B, received "
                              "%llu B, %.3f ms\n",
                        tbuf, (long long)ns / 1000, TLSSNIFF_COMM_LEN, h->comm, h->pid,
                        output_role_name(c->role), (unsigned long long)c->conn_id, why,
                        output_proto_name(c->proto),
                        (unsigned long long)c->bytes[TLSSNIFF_DIR_WRITE],
                        (unsigned long long)c->bytes[TLSSNIFF_DIR_READ],
                        ms_between(c->first_ns, end));
                return ferror(o->f) ? -EIO : 0;
        }
        fprintf(o->f, "{\"type\":\"connection\",\"event\":\"end\",\"reason\":\"%s\","
                      "\"time\":\"%s.%09lldZ\",\"timestamp_ns\":%llu,\"pid\":%u,\"comm\":",
                why, tbuf, (long long)ns, (unsigned long long)end, h->pid);
        json_conn_identity(o->f, c);
        fprintf(o->f, ",\"protocol\":\"%s\",\"first_timestamp_ns\":%llu,"
                      "\"duration_ms\":%.6f,\"bytes_sent\":%llu,\"bytes_received\":%llu}\n",
                output_proto_name(c->proto),
                (unsigned long long)c->first_ns, ms_between(c->first_ns, end),
                (unsigned long long)c->bytes[TLSSNIFF_DIR_WRITE],
                (unsigned long long)c->bytes[TLSSNIFF_DIR_READ]);
        return ferror(o->f) ? -EIO : 0;
}

int output_connection_open(struct output *o, const struct conn_entry *c, uint64_t seen_ns)
{
        const struct tlssniff_data_record *h = &c->id;
        uint64_t at = c->open_ns ? c->open_ns : seen_ns;
        char tbuf[32];
        long ns;

        wall_time(o, at, o->json, tbuf, sizeof(tbuf), &ns);
        if (!o->json) {
                char la[INET6_ADDRSTRLEN], ra[INET6_ADDRSTRLEN];

                format_addr(h->family, h->laddr, la, sizeof(la));
                format_addr(h->family, h->raddr, ra, sizeof(ra));
                fprintf(o->f, "%s.%06lld %.*s[%u] %s %s:%u -> %s:%u conn=%llu open%s\n", tbuf,
                        (long long)ns / 1000, TLSSNIFF_COMM_LEN, h->comm, h->pid,
                        output_role_name(c->role), la, h->lport, ra, h->rport,
                        (unsigned long long)c->conn_id,
                        c->open_ns ? "" : " (socket older than tlssniff)");
                return ferror(o->f) ? -EIO : 0;
        }
        fprintf(o->f, "{\"type\":\"connection\",\"event\":\"open\",\"time\":\"%s.%09lldZ\","
                      "\"timestamp_ns\":%llu,\"pid\":%u,\"comm\":",
                tbuf, (long long)ns, (unsigned long long)at, h->pid);
        json_conn_identity(o->f, c);
        fprintf(o->f, ",\"fd\":%d,\"open_timestamp_ns\":", h->fd);
        if (c->open_ns)
                fprintf(o->f, "%llu", (unsigned long long)c->open_ns);
        else
                fputs("null", o->f);
        fprintf(o->f, ",\"seen_timestamp_ns\":%llu}\n", (unsigned long long)seen_ns);
        return ferror(o->f) ? -EIO : 0;
}

void output_flush(struct output *o)
{
        flush_out(o);
        o->pending_bound = 0;
}

int output_stats(struct output *o, const char *const *names, const uint64_t *values, unsigned n)
{
        if (o->json) {
                fputs("{\"type\":\"stats\"", o->f);
                for (unsigned i = 0; i < n; i++) {
                        /* Names come over the socket: escape them like any other string. */
                        fputc(',', o->f);
                        json_write_string(o->f, names[i], strlen(names[i]));
                        fprintf(o->f, ":%llu", (unsigned long long)values[i]);
                }
                fputs("}\n", o->f);
        } else {
                fputs("-- statistics:", o->f);
                for (unsigned i = 0; i < n; i++)
                        fprintf(o->f, " %s=%llu", names[i], (unsigned long long)values[i]);
                fputc('\n', o->f);
        }
        flush_out(o);
        o->pending_bound = 0;
        return ferror(o->f) ? -EIO : 0;
}
