/*
 * Analyzer pipeline benchmark (issue: benchmarks): the user-space cost of capturing everything,
 * without the kernel, the probes or the noise of a loaded machine. Builds the records of
 * throughput.py's workload as loaderd would forward them (64 connections, 32 keep-alive client/
 * server pairs; per request a 47-byte request written and read and a 1278-byte response written
 * and read), packs them into records frames exactly as loaderd does (msg_records_add, 512 KiB
 * frames), and hands the frames to the analyzer's frame handler with --json output into a
 * file, as `tlssniff-loaderd --json --output FILE` does. The baseline, in the same run and into
 * the same kind of file: writing only the payload bytes of the same records (the least any
 * tool that keeps every byte must do). Prints one JSON object with CPU nanoseconds per record
 * for both and their ratio, medians of --rounds rounds (interleaved).
 *
 * Usage: bench-pipeline [--records N] [--rounds R] [--dir DIR]
 * Build: ninja -C build tests/bench-pipeline
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "analyzer.h"

#define CONNS 64
#define REQ_BYTES 47
#define RESP_BYTES 1278
#define BATCH (512u << 10)

struct frames {
        uint8_t **body;
        size_t *len;
        size_t n, cap;
        uint64_t records, payload;
};

static void die(const char *what)
{
        fprintf(stderr, "bench-pipeline: %s\n", what);
        exit(1);
}

static double cpu_s(void)
{
        struct rusage ru;

        getrusage(RUSAGE_SELF, &ru);
        return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void frames_push(struct frames *f, msgpack_sbuffer *sb, uint32_t n)
{
        if (f->n == f->cap) {
                f->cap = f->cap ? 2 * f->cap : 64;
                f->body = realloc(f->body, f->cap * sizeof(*f->body));
                f->len = realloc(f->len, f->cap * sizeof(*f->len));
                if (!f->body || !f->len)
                        die("out of memory");
        }
        msg_records_finish(sb, n);
        f->body[f->n] = malloc(sb->size);
        if (!f->body[f->n])
                die("out of memory");
        memcpy(f->body[f->n], sb->data, sb->size);
        f->len[f->n++] = sb->size;
        msg_records_begin(sb);
}

/* Connection c (0..63): even ones are clients, c + 1 is the server of client c. */
static void fill_addrs(uint32_t c, uint16_t *lport, uint16_t *rport, uint8_t *role)
{
        uint16_t client_port = (uint16_t)(40000 + c / 2);

        *role = c % 2 ? TLSSNIFF_ROLE_SERVER : TLSSNIFF_ROLE_CLIENT;
        *lport = c % 2 ? 443 : client_port;
        *rport = c % 2 ? client_port : 443;
}

static void make_frames(struct frames *f, uint64_t records)
{
        static uint8_t rec[sizeof(struct tlssniff_data_record) + RESP_BYTES];
        struct tlssniff_data_record *h = (struct tlssniff_data_record *)rec;
        uint64_t offsets[CONNS][2] = {}, ts = 1000000000ull;
        msgpack_sbuffer sb;
        uint32_t n = 0;

        msgpack_sbuffer_init(&sb);
        msg_records_begin(&sb);
        for (uint32_t c = 0; c < CONNS; c++) {
                struct tlssniff_open_record o = { .type = TLSSNIFF_REC_OPEN,
                                                  .pid = c % 2 ? 1000 : 2000,
                                                  .conn_id = c + 1,
                                                  .open_ns = ts,
                                                  .seen_ns = ts,
                                                  .fd = (int32_t)(10 + c / 2),
                                                  .family = AF_INET };

                fill_addrs(c, &o.lport, &o.rport, &o.role);
                memcpy(o.laddr, "\x7f\x00\x00\x01", 4);
                memcpy(o.raddr, "\x7f\x00\x00\x01", 4);
                memcpy(o.comm, c % 2 ? "nginx" : "wrk", c % 2 ? 5 : 3);
                msg_records_add(&sb, &o, sizeof(o));
                n++;
        }
        for (uint64_t i = 0; i < records; i++) {
                /* Request i / 4 on pair p: client writes, server reads, server writes, client
                 * reads. */
                uint32_t pair = (uint32_t)(i / 4 % (CONNS / 2)), step = (uint32_t)(i % 4);
                uint32_t c = 2 * pair + (step == 1 || step == 2);
                uint32_t len = step < 2 ? REQ_BYTES : RESP_BYTES;
                uint8_t dir = step == 0 || step == 2 ? TLSSNIFF_DIR_WRITE : TLSSNIFF_DIR_READ;

                memset(h, 0, sizeof(*h));
                h->type = TLSSNIFF_REC_DATA;
                h->pid = c % 2 ? 1000 : 2000;
                h->tid = h->pid;
                h->fd = (int32_t)(10 + pair);
                h->timestamp_ns = ts += 3000;
                h->conn_id = c + 1;
                h->handle = 0x5000 + c;
                h->stream_offset = offsets[c][dir];
                offsets[c][dir] += len;
                h->call_len = len;
                h->len = len;
                h->family = AF_INET;
                fill_addrs(c, &h->lport, &h->rport, &h->role);
                h->direction = dir;
                h->flags = TLSSNIFF_DATA_LAST; /* one record per call, as these sizes are */
                h->source = TLSSNIFF_SOURCE_OPENSSL;
                memcpy(h->laddr, "\x7f\x00\x00\x01", 4);
                memcpy(h->raddr, "\x7f\x00\x00\x01", 4);
                memcpy(h->comm, c % 2 ? "nginx" : "wrk", c % 2 ? 5 : 3);
                for (uint32_t k = 0; k < len; k++)
                        rec[sizeof(*h) + k] = (uint8_t)(i * 31 + k);
                msg_records_add(&sb, rec, sizeof(*h) + len);
                n++;
                f->records++;
                f->payload += len;
                if (sb.size >= BATCH) {
                        frames_push(f, &sb, n);
                        n = 0;
                }
        }
        if (n)
                frames_push(f, &sb, n);
        msgpack_sbuffer_destroy(&sb);
}

static FILE *open_out(const char *dir, const char *name, char **ret_path)
{
        static char buf[OUTPUT_BUFFER_SIZE];
        char *path;
        FILE *out;

        if (asprintf(&path, "%s/%s", dir, name) < 0)
                die("out of memory");
        out = fopen(path, "we");
        if (!out)
                die("cannot create the output file");
        (void)setvbuf(out, buf, _IOFBF, sizeof(buf));
        *ret_path = path;
        return out;
}

/* The analyzer as tlssniff-loaderd --json --output FILE runs it; CPU seconds. */
static double run_analyzer(const struct frames *f, const char *dir, uint64_t *ret_bytes)
{
        struct analyzer_options opt = { .fd = -1, .control_fd = -1, .json = true,
                                        .max_print = 512 };
        struct msg_l_hello hello = { .version = FRAME_PROTOCOL_VERSION,
                                     .realtime_offset_ns = 1700000000000000000LL,
                                     .call_cap = TLSSNIFF_CALL_CAP_DEFAULT };
        struct analyzer *a = malloc(sizeof(*a));
        struct frame_header h;
        msgpack_sbuffer sb;
        char *path;
        FILE *out = open_out(dir, "analyzer.jsonl", &path);
        double t0;

        if (!a || analyzer_init(a, &opt) < 0)
                die("analyzer_init failed");
        a->out.f = out;
        a->out.flush_at = OUTPUT_BUFFER_SIZE / 2;
        output_file_changed(&a->out);
        a->listen.loaded = true; /* no /proc/net/tcp: every record says its role */
        a->listen.loaded_at = time(NULL);
        msgpack_sbuffer_init(&sb);
        if (msg_encode_l_hello(&sb, &hello) < 0)
                die("hello");
        h = (struct frame_header){ .length = (uint32_t)sb.size, .type = FRAME_L_HELLO };
        if (analyzer_handle_frame(a, &h, (const uint8_t *)sb.data) < 0)
                die("hello refused");
        msgpack_sbuffer_destroy(&sb);
        t0 = cpu_s();
        for (size_t i = 0; i < f->n; i++) {
                h = (struct frame_header){ .length = (uint32_t)f->len[i],
                                           .type = FRAME_L_RECORDS };
                if (analyzer_handle_frame(a, &h, f->body[i]) < 0)
                        die("records frame refused");
        }
        assembler_flush(&a->asmb);
        output_flush(&a->out);
        fflush(out);
        t0 = cpu_s() - t0;
        {
                const char *names[ANALYZER_STATS_MAX];
                uint64_t values[ANALYZER_STATS_MAX], messages = 0, bad = 0;
                unsigned k = analyzer_collect_stats(a, names, values);

                for (unsigned i = 0; i < k; i++) {
                        if (strcmp(names[i], "analyzer_messages") == 0)
                                messages = values[i];
                        if (strcmp(names[i], "analyzer_records_bad") == 0 ||
                            strcmp(names[i], "analyzer_stream_gaps") == 0 ||
                            strcmp(names[i], "analyzer_output_errors") == 0)
                                bad += values[i];
                }
                if (messages != f->records || bad)
                        die("the analyzer did not write every record as one message");
        }
        *ret_bytes = (uint64_t)ftell(out);
        analyzer_done(a);
        free(a);
        fclose(out);
        unlink(path);
        free(path);
        return t0;
}

static int floor_record(const uint8_t *rec, size_t len, void *userdata)
{
        const struct tlssniff_data_record *h = (const void *)rec;

        if (len > sizeof(*h) && h->type == TLSSNIFF_REC_DATA)
                fwrite(rec + sizeof(*h), 1, len - sizeof(*h), userdata);
        return 0;
}

/* The floor: only the payload bytes of the same records, decoded from the same frames, into
 * the same kind of file. */
static double run_floor(const struct frames *f, const char *dir)
{
        char *path;
        FILE *out = open_out(dir, "floor.bin", &path);
        double t0 = cpu_s();

        for (size_t i = 0; i < f->n; i++)
                if (msg_records_foreach(f->body[i], f->len[i], floor_record, out) < 0)
                        die("records frame does not decode");
        fflush(out);
        t0 = cpu_s() - t0;
        fclose(out);
        unlink(path);
        free(path);
        return t0;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = { { "records", required_argument, NULL, 'n' },
                                                   { "rounds", required_argument, NULL, 'r' },
                                                   { "dir", required_argument, NULL, 'd' },
                                                   { "help", no_argument, NULL, 'h' },
                                                   {} };
        unsigned long records = 400000, rounds = 5;
        const char *dir = "/var/tmp";
        struct frames f = {};
        double ta[64], tf[64];
        uint64_t out_bytes = 0;
        int c;

        while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
                char *end;

                switch (c) {
                case 'n':
                case 'r': {
                        unsigned long v = strtoul(optarg, &end, 10);

                        if (*end || v == 0 || (c == 'r' && v > 64) || v > 100000000)
                                die("--records takes 1..100000000, --rounds 1..64");
                        if (c == 'n')
                                records = v;
                        else
                                rounds = v;
                        break;
                }
                case 'd': dir = optarg; break;
                case 'h':
                        printf("Usage: bench-pipeline [--records N] [--rounds R] [--dir DIR]\n");
                        return 0;
                default: return 2;
                }
        }
        make_frames(&f, records);
        for (unsigned long r = 0; r < rounds; r++) {
                ta[r] = run_analyzer(&f, dir, &out_bytes);
                tf[r] = run_floor(&f, dir);
        }
        qsort(ta, rounds, sizeof(double), cmp_double);
        qsort(tf, rounds, sizeof(double), cmp_double);
        printf("{\"benchmark\":\"pipeline\",\"records\":%llu,\"payload_bytes\":%llu,"
               "\"frames\":%zu,\"rounds\":%lu,\"output_bytes\":%llu,"
               "\"analyzer_ns_per_record\":%.1f,\"floor_ns_per_record\":%.1f,"
               "\"ratio_to_floor\":%.2f,\"analyzer_mb_per_cpu_s\":%.0f}\n",
               (unsigned long long)f.records, (unsigned long long)f.payload, f.n, rounds,
               (unsigned long long)out_bytes, ta[rounds / 2] / (double)f.records * 1e9,
               tf[rounds / 2] / (double)f.records * 1e9, ta[rounds / 2] / tf[rounds / 2],
               (double)f.payload / 1e6 / ta[rounds / 2]);
        return 0;
}
