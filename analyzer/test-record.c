/* Unit test: record validation and joining of a call's records into messages. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"

struct got {
        unsigned n;
        uint64_t offset[16];
        uint32_t length[16];
        uint32_t truncated[16];
        uint8_t bytes[1 << 17];
        size_t total;
};

static void collect(const struct message *m, void *ud)
{
        struct got *g = ud;

        assert(g->n < 16);
        g->offset[g->n] = m->offset;
        g->length[g->n] = m->length;
        g->truncated[g->n] = m->truncated;
        g->n++;
        memcpy(g->bytes + g->total, m->data, m->length);
        g->total += m->length;
}

/* stream_off is where the call starts; the record carries that of its own first byte. */
static uint8_t *make_record(uint64_t conn, uint8_t dir, uint64_t stream_off, uint32_t call_len,
                            uint32_t call_off, uint32_t len, uint8_t flags, const uint8_t *data,
                            size_t *ret_size)
{
        struct tlssniff_data_record h = {
                .type = TLSSNIFF_REC_DATA, .pid = 1, .tid = 1, .fd = 3, .conn_id = conn,
                .stream_offset = stream_off + call_off, .call_len = call_len, .call_offset = call_off,
                .len = len, .direction = dir, .flags = flags, .family = 2,
        };
        uint8_t *p = malloc(sizeof(h) + len);

        memcpy(p, &h, sizeof(h));
        memcpy(p + sizeof(h), data, len);
        *ret_size = sizeof(h) + len;
        return p;
}

static void feed_record(struct assembler *a, uint8_t *rec, size_t size)
{
        struct tlssniff_data_record h;
        const uint8_t *payload;

        assert(record_validate(rec, size, &h, &payload) == 0);
        assert(assembler_add(a, &h, payload) == 0);
        free(rec);
}

/* Builds a record and feeds it (size is known only after building, hence two steps). */
#define feed(a, ...)                                                                               \
        do {                                                                                       \
                size_t size_;                                                                      \
                uint8_t *rec_ = make_record(__VA_ARGS__, &size_);                                  \
                feed_record(a, rec_, size_);                                                       \
        } while (0)

static void test_validate(void)
{
        uint8_t data[8] = "abcdefg";
        struct tlssniff_data_record h;
        const uint8_t *p;
        size_t n;
        uint8_t *r = make_record(1, 1, 0, 8, 0, 8, TLSSNIFF_DATA_LAST, data, &n);

        assert(record_validate(r, n, &h, &p) == 0);
        /* Size must match the header's length exactly; every truncation fails. */
        for (size_t k = 0; k < n; k++)
                assert(record_validate(r, k, &h, &p) == -EBADMSG);
        /* Chunk beyond the call, bad direction, wrong type. */
        ((struct tlssniff_data_record *)r)->call_offset = 1;
        assert(record_validate(r, n, &h, &p) == -EBADMSG);
        ((struct tlssniff_data_record *)r)->call_offset = 0;
        ((struct tlssniff_data_record *)r)->direction = 2;
        assert(record_validate(r, n, &h, &p) == -EBADMSG);
        ((struct tlssniff_data_record *)r)->direction = 0;
        ((struct tlssniff_data_record *)r)->type = 2;
        assert(record_validate(r, n, &h, &p) == -EBADMSG);
        free(r);
}

static void test_join(void)
{
        static struct got g;
        static uint8_t call[40000];
        struct assembler a;

        for (size_t i = 0; i < sizeof(call); i++)
                call[i] = (uint8_t)(i * 7);
        memset(&g, 0, sizeof(g));
        assembler_init(&a, collect, &g);
        /* A 40000-byte call in 3 records, interleaved with a one-record call elsewhere. */
        feed(&a, 5, 1, 100, 40000, 0, 16384, 0, call);
        feed(&a, 6, 0, 0, 3, 0, 3, TLSSNIFF_DATA_LAST, (const uint8_t *)"xyz");
        feed(&a, 5, 1, 100, 40000, 16384, 16384, 0, call + 16384);
        feed(&a, 5, 1, 100, 40000, 32768, 40000 - 32768, TLSSNIFF_DATA_LAST,
                             call + 32768);
        assert(g.n == 2);
        assert(g.length[0] == 3 && memcmp(g.bytes, "xyz", 3) == 0);
        assert(g.offset[1] == 100 && g.length[1] == 40000);
        assert(memcmp(g.bytes + 3, call, sizeof(call)) == 0);
        assert(a.split_messages == 0);

        /* Lost middle record: two contiguous messages, the gap visible in the offsets. */
        memset(&g, 0, sizeof(g));
        feed(&a, 5, 1, 40100, 40000, 0, 16384, 0, call);
        feed(&a, 5, 1, 40100, 40000, 32768, 40000 - 32768, TLSSNIFF_DATA_LAST,
                             call + 32768);
        assert(g.n == 2);
        assert(g.offset[0] == 40100 && g.length[0] == 16384);
        assert(g.offset[1] == 40100 + 32768 && g.length[1] == 40000 - 32768);
        assert(a.split_messages == 1);

        /* Truncated call: the bytes past the cap are reported on the message. */
        memset(&g, 0, sizeof(g));
        feed(&a, 7, 0, 0, 5000, 0, 1000,
                             TLSSNIFF_DATA_LAST | TLSSNIFF_DATA_TRUNCATED, call);
        assert(g.n == 1 && g.length[0] == 1000 && g.truncated[0] == 4000);

        /* A call whose last record never came is flushed at the end. */
        memset(&g, 0, sizeof(g));
        feed(&a, 8, 0, 0, 40000, 0, 16384, 0, call);
        assert(g.n == 0);
        assembler_flush(&a);
        assert(g.n == 1 && g.length[0] == 16384);
        assembler_done(&a);
}

int main(void)
{
        test_validate();
        test_join();
        printf("records: ok\n");
        return 0;
}
