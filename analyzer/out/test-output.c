/* Unit test: the JSON data line, byte for byte, and the address and base64 formatting it uses. */
#undef NDEBUG
#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "out/output.h"

static void test_addresses(void)
{
        uint8_t a[16] = {};
        char x[64], y[64];

        /* Every value of every octet, and a spread of whole addresses, as inet_ntop says. */
        for (unsigned i = 0; i < 4 * 256 + 100000; i++) {
                uint32_t v = i * 2654435761u;

                memcpy(a, &v, 4);
                if (i < 4 * 256) {
                        memset(a, 7, 4);
                        a[i / 256] = (uint8_t)i;
                }
                format_addr(AF_INET, a, x, sizeof(x));
                assert(inet_ntop(AF_INET, a, y, sizeof(y)));
                assert(strcmp(x, y) == 0);
        }
        memset(a, 0, sizeof(a));
        a[15] = 1;
        format_addr(AF_INET6, a, x, sizeof(x));
        assert(strcmp(x, "::1") == 0);
        format_addr(0, a, x, sizeof(x));
        assert(strcmp(x, "?") == 0);
}

static void test_data_line(void)
{
        static const uint8_t payload[] = "GET / HTTP/1.1\r\n\r\n";
        struct message m = { .offset = 7, .length = sizeof(payload) - 1, .data = payload };
        struct tlssniff_data_record *h = &m.hdr;
        struct output o;
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        assert(f);
        h->timestamp_ns = 1700000000123456789ull;
        h->pid = 4242;
        h->tid = 4243;
        h->fd = -1;
        h->conn_id = 99;
        h->call_len = 40;
        h->family = AF_INET;
        h->lport = 51234;
        h->rport = 443;
        h->direction = TLSSNIFF_DIR_WRITE;
        h->source = TLSSNIFF_SOURCE_OPENSSL;
        memcpy(h->laddr, "\x7f\x00\x00\x01", 4);
        memcpy(h->raddr, "\x0a\xff\x00\x63", 4);
        memcpy(h->comm, "cu\"rl\x01", 6);
        output_init(&o, f, true, 512);
        assert(output_message(&o, &m, TLSSNIFF_ROLE_CLIENT, ROLE_SOURCE_KERNEL) == 0);
        /* The same second again comes from the formatted-second cache. */
        h->timestamp_ns += 5;
        h->fd = 5;
        h->family = 0;
        assert(output_message(&o, &m, TLSSNIFF_ROLE_SERVER, ROLE_SOURCE_LISTEN) == 0);
        output_done(&o);
        fclose(f);
        assert(strcmp(buf,
                      "{\"type\":\"data\",\"time\":\"2023-11-14T22:13:20.123456789Z\","
                      "\"timestamp_ns\":1700000000123456789,\"pid\":4242,\"tid\":4243,"
                      "\"comm\":\"cu\\\"rl\\u0001\",\"fd\":-1,\"direction\":\"write\","
                      "\"role\":\"client\",\"role_source\":\"kernel\",\"family\":\"ipv4\","
                      "\"local\":{\"ip\":\"127.0.0.1\",\"port\":51234},"
                      "\"remote\":{\"ip\":\"10.255.0.99\",\"port\":443},\"conn_id\":99,"
                      "\"source\":\"openssl\",\"offset\":7,\"length\":18,\"call_length\":40,"
                      "\"truncated\":0,\"data_encoding\":\"base64\","
                      "\"data\":\"R0VUIC8gSFRUUC8xLjENCg0K\"}\n"
                      "{\"type\":\"data\",\"time\":\"2023-11-14T22:13:20.123456794Z\","
                      "\"timestamp_ns\":1700000000123456794,\"pid\":4242,\"tid\":4243,"
                      "\"comm\":\"cu\\\"rl\\u0001\",\"fd\":5,\"direction\":\"write\","
                      "\"role\":\"server\",\"role_source\":\"listen\",\"family\":\"unknown\","
                      "\"local\":null,\"remote\":null,\"conn_id\":99,"
                      "\"source\":\"openssl\",\"offset\":7,\"length\":18,\"call_length\":40,"
                      "\"truncated\":0,\"data_encoding\":\"base64\","
                      "\"data\":\"R0VUIC8gSFRUUC8xLjENCg0K\"}\n") == 0);
        free(buf);
}

/* The addresses written again from the per-connection cache only while they are the same bytes:
 * a changed address, port or family under the same conn_id (or a connection in the same slot)
 * shows as it is now. */
static void test_addr_cache(void)
{
        static const uint8_t payload[] = "x";
        struct message m = { .length = 1, .data = payload };
        struct tlssniff_data_record *h = &m.hdr;
        static const char *const want[] = {
                "\"local\":{\"ip\":\"127.0.0.1\",\"port\":1},\"remote\":{\"ip\":\"10.0.0.1\",\"port\":2},",
                "\"local\":{\"ip\":\"127.0.0.1\",\"port\":1},\"remote\":{\"ip\":\"10.0.0.1\",\"port\":2},",
                "\"local\":{\"ip\":\"127.0.0.1\",\"port\":1},\"remote\":{\"ip\":\"10.0.0.2\",\"port\":2},",
                "\"local\":{\"ip\":\"127.0.0.1\",\"port\":1},\"remote\":{\"ip\":\"10.0.0.2\",\"port\":3},",
                "\"local\":{\"ip\":\"127.0.0.1\",\"port\":4},\"remote\":{\"ip\":\"10.0.0.2\",\"port\":3},",
                "\"local\":{\"ip\":\"::1\",\"port\":4},\"remote\":{\"ip\":\"fd00::2\",\"port\":3},",
                "\"local\":{\"ip\":\"::1\",\"port\":4},\"remote\":{\"ip\":\"fd00::2\",\"port\":3},",
                "\"local\":{\"ip\":\"127.0.0.1\",\"port\":4},\"remote\":{\"ip\":\"10.0.0.2\",\"port\":3},",
        };
        struct output o;
        char *buf = NULL, *line;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        assert(f);
        h->conn_id = 5;
        h->family = AF_INET;
        h->lport = 1;
        h->rport = 2;
        memcpy(h->laddr, "\x7f\x00\x00\x01", 4);
        memcpy(h->raddr, "\x0a\x00\x00\x01", 4);
        output_init(&o, f, true, 512);
        for (int i = 0; i < 8; i++) {
                if (i == 2)
                        h->raddr[3] = 2;
                if (i == 3)
                        h->rport = 3;
                if (i == 4)
                        h->lport = 4;
                if (i == 5) { /* same bytes in the first four, now IPv6 */
                        uint8_t l6[16] = { [15] = 1 }, r6[16] = { [0] = 0xfd, [15] = 2 };

                        h->family = AF_INET6;
                        memcpy(h->laddr, l6, 16);
                        memcpy(h->raddr, r6, 16);
                }
                if (i == 6)
                        h->conn_id = 5 + OUTPUT_LINE_SLOTS; /* the same slot, other conn */
                if (i == 7) {
                        h->family = AF_INET;
                        memset(h->laddr, 0, 16);
                        memset(h->raddr, 0, 16);
                        memcpy(h->laddr, "\x7f\x00\x00\x01", 4);
                        memcpy(h->raddr, "\x0a\x00\x00\x02", 4);
                }
                assert(output_message(&o, &m, TLSSNIFF_ROLE_CLIENT, ROLE_SOURCE_KERNEL) == 0);
        }
        output_done(&o);
        fclose(f);
        line = buf;
        for (int i = 0; i < 8; i++) {
                char *end = strchr(line, '\n');

                assert(end);
                *end = '\0';
                assert(strstr(line, want[i]));
                line = end + 1;
        }
        assert(*line == '\0');
        free(buf);
}

/* One data line of m from an output that has seen nothing before (no cache). */
static char *fresh_line(const struct message *m, uint8_t role, enum role_source rs)
{
        struct output *o = malloc(sizeof(*o));
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        assert(o && f);
        output_init(o, f, true, 512);
        assert(output_message(o, m, role, rs) == 0);
        output_done(o);
        free(o);
        fclose(f);
        return buf;
}

/* The cached middle of the data line against lines made without a cache: 20,000 messages on 3
 * connections (two in the same slot) with every field of the middle changing now and then. */
static void test_line_cache_differential(void)
{
        static const char *const comms[] = { "nginx", "wrk", "a\"b\\c\x01", "" };
        static const uint8_t payload[] = "hello";
        struct message m = { .length = 5, .data = payload };
        struct tlssniff_data_record *h = &m.hdr;
        struct output *o = malloc(sizeof(*o));
        uint32_t x = 7;

        assert(o);
        for (int i = 0; i < 20000; i++) {
                char *buf = NULL, *want;
                size_t size = 0;
                FILE *f = open_memstream(&buf, &size);
                uint8_t role;
                enum role_source rs;

                assert(f);
                if (i == 0) {
                        output_init(o, f, true, 512);
                } else {
                        o->f = f;
                        output_file_changed(o);
                }
                x = x * 1103515245u + 12345u;
                if (x >> 28 == 0 || i == 0) { /* a field of the middle changes */
                        switch ((x >> 20) % 12) {
                        case 0: h->pid = x >> 8; break;
                        case 1: h->tid = x >> 12; break;
                        case 2: h->fd = (int32_t)(x >> 16) - 30000; break;
                        case 3: h->family = (x >> 10) % 3 == 0   ? AF_INET
                                            : (x >> 10) % 3 == 1 ? AF_INET6
                                                                 : 0;
                                break;
                        case 4: h->lport = (uint16_t)(x >> 9); break;
                        case 5: h->rport = (uint16_t)(x >> 7); break;
                        case 6: h->direction = (x >> 5) & 1; break;
                        case 7: h->source = (x >> 6) & 1 ? TLSSNIFF_SOURCE_GO
                                                         : TLSSNIFF_SOURCE_OPENSSL;
                                break;
                        case 8: h->laddr[(x >> 8) % 16] ^= (uint8_t)x; break;
                        case 9: h->raddr[(x >> 8) % 16] ^= (uint8_t)x; break;
                        default:
                                memset(h->comm, 0, sizeof(h->comm));
                                memcpy(h->comm, comms[(x >> 9) % 4], strlen(comms[(x >> 9) % 4]));
                        }
                }
                h->conn_id = (x >> 4) % 3 == 0 ? 1 : (x >> 4) % 3 == 1 ? 2 : 1 + OUTPUT_LINE_SLOTS;
                h->timestamp_ns = 1700000000000000000ull + i;
                role = (uint8_t)((x >> 3) % 3);
                rs = (enum role_source)((x >> 2) % 3);
                assert(output_message(o, &m, role, rs) == 0);
                fclose(f);
                want = fresh_line(&m, role, rs);
                assert(strcmp(buf, want) == 0);
                free(want);
                free(buf);
        }
        output_done(o);
        free(o);
}

/* Strings longer than the writer's buffer, every byte value, escaped as JSON wants. */
static void test_json_string(void)
{
        char in[1000], want[8000], *buf = NULL, *w = want;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        assert(f);
        *w++ = '"';
        for (size_t i = 0; i < sizeof(in); i++) {
                unsigned char c = (unsigned char)(i * 37 % 256);

                in[i] = (char)c;
                if (c == '"' || c == '\\')
                        w += sprintf(w, "\\%c", c);
                else if (c < 0x20 || c >= 0x7f)
                        w += sprintf(w, "\\u%04x", c);
                else
                        *w++ = (char)c;
        }
        *w++ = '"';
        *w = '\0';
        json_write_string(f, in, sizeof(in));
        json_write_string(f, "", 0);
        fclose(f);
        assert(size == strlen(want) + 2 && memcmp(buf, want, strlen(want)) == 0 &&
               strcmp(buf + strlen(want), "\"\"") == 0);
        free(buf);
}

/*
 * A regular output file is written back and dropped from the page cache behind the end as it
 * grows (what was asked of the kernel is in o.wb_started/wb_dropped), and every line arrives
 * whole; a stream that is not a regular file is left alone.
 */
static void test_writeback(void)
{
        static uint8_t payload[16384];
        static char line[32768];
        struct message m = { .length = sizeof(payload), .data = payload };
        char path[] = "/tmp/tlssniff-test-output-XXXXXX";
        static char buf[OUTPUT_BUFFER_SIZE];
        size_t lines = 0;
        struct output o;
        uint64_t total;
        int fd, p[2];
        FILE *f;

        for (size_t i = 0; i < sizeof(payload); i++)
                payload[i] = (uint8_t)(i * 131);
        m.hdr.call_len = sizeof(payload);
        m.hdr.direction = TLSSNIFF_DIR_READ;
        fd = mkstemp(path);
        assert(fd >= 0);
        f = fdopen(fd, "w");
        assert(f && setvbuf(f, buf, _IOFBF, sizeof(buf)) == 0);
        output_init(&o, f, true, 512);
        o.flush_at = OUTPUT_BUFFER_SIZE / 2;
        assert(o.wb_file && o.wb_started == 0 && o.wb_dropped == 0);
        /* 3,000 lines of about 22 KB: 66 MB. */
        for (unsigned i = 0; i < 3000; i++) {
                m.offset = (uint64_t)i * sizeof(payload);
                assert(output_message(&o, &m, TLSSNIFF_ROLE_CLIENT, ROLE_SOURCE_KERNEL) == 0);
        }
        output_flush(&o);
        total = (uint64_t)ftell(f);
        assert(total > 60u << 20);
        assert(o.wb_started + OUTPUT_WRITEBACK_STEP > total && o.wb_started <= total);
        assert(o.wb_dropped + OUTPUT_CACHE_KEEP + OUTPUT_WRITEBACK_STEP > total &&
               o.wb_dropped + OUTPUT_CACHE_KEEP <= total && o.wb_dropped % 4096 == 0);
        output_done(&o);
        fclose(f);

        /* Whatever was dropped from the cache reads back whole, line after line. */
        f = fopen(path, "r");
        assert(f);
        while (fgets(line, sizeof(line), f)) {
                size_t n = strlen(line);

                /* Base64 of 16 KiB is 21,848 bytes; the fields before it a few hundred. */
                assert(n > 21848 && n < 21848 + 600 && line[n - 1] == '\n' &&
                       strncmp(line, "{\"type\":\"data\",", 15) == 0 &&
                       strcmp(line + n - 3, "\"}\n") == 0);
                lines++;
        }
        fclose(f);
        assert(lines == 3000);
        unlink(path);

        /* A pipe is not a file: nothing is asked of the kernel. */
        assert(pipe(p) == 0);
        f = fdopen(p[1], "w");
        assert(f);
        output_init(&o, f, true, 512);
        assert(!o.wb_file);
        fclose(f);
        close(p[0]);
}

/* RFC 4648's vectors, then every length 0..1200 of pseudo-random bytes against the plain
 * one-character-per-6-bits encoder, through base64_encode (on x86-64 with AVX2: 24 bytes a step
 * from 56 bytes on, the rest portable) and the portable encoder (6 bytes a step, the tail 3 or
 * fewer), and each start 0..31 of the buffer (unaligned loads). */
static void test_base64(void)
{
        static const char *const vectors[][2] = { { "", "" },          { "f", "Zg==" },
                                                  { "fo", "Zm8=" },    { "foo", "Zm9v" },
                                                  { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
                                                  { "foobar", "Zm9vYmFy" } };
        static const char alphabet[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        uint8_t in[1200 + 32];
        char out[1700], want[1700];
        uint32_t x = 12345;

        for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
                size_t n = base64_encode((const uint8_t *)vectors[i][0], strlen(vectors[i][0]),
                                         out);

                assert(n == strlen(vectors[i][1]) && strcmp(out, vectors[i][1]) == 0);
        }
        for (size_t i = 0; i < sizeof(in); i++) {
                x = x * 1103515245u + 12345u;
                in[i] = (uint8_t)(x >> 16);
        }
        for (size_t start = 0; start < 32; start++) {
                for (size_t n = 0; n <= 1200; n += start ? 37 : 1) {
                        const uint8_t *b = in + start;
                        size_t k = 0;

                        for (size_t i = 0; i < n; i += 3) {
                                uint32_t v = (uint32_t)b[i] << 16 |
                                             (i + 1 < n ? (uint32_t)b[i + 1] << 8 : 0) |
                                             (i + 2 < n ? b[i + 2] : 0);

                                want[k++] = alphabet[v >> 18];
                                want[k++] = alphabet[(v >> 12) & 63];
                                want[k++] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
                                want[k++] = i + 2 < n ? alphabet[v & 63] : '=';
                        }
                        want[k] = '\0';
                        assert(base64_encode(b, n, out) == k && strcmp(out, want) == 0);
                        assert(base64_encode_portable(b, n, out) == k && strcmp(out, want) == 0);
                }
        }
        /* Every 6-bit value in every position of a 24-byte step: the ranges' offsets. */
        for (unsigned v = 0; v < 64; v++) {
                uint8_t block[60];
                size_t k;

                for (size_t i = 0; i < sizeof(block); i += 3) {
                        uint32_t w = v << 18 | ((v + 1) & 63) << 12 | ((v + 2) & 63) << 6 |
                                     ((v + 3) & 63);

                        block[i] = (uint8_t)(w >> 16);
                        block[i + 1] = (uint8_t)(w >> 8);
                        block[i + 2] = (uint8_t)w;
                }
                k = base64_encode(block, sizeof(block), out);
                assert(k == 80);
                for (size_t i = 0; i < k; i++)
                        assert(out[i] == alphabet[(v + i % 4) & 63]);
        }
}

int main(void)
{
        test_base64();
        test_addr_cache();
        test_line_cache_differential();
        test_writeback();
        test_json_string();
        test_addresses();
        test_data_line();
        printf("output: ok\n");
        return 0;
}
