/* Record validation and per-call message assembly; see record.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "record.h"

int record_validate(const uint8_t *rec, size_t len, struct tlssniff_data_record *ret_hdr,
                    const uint8_t **ret_payload)
{
        struct tlssniff_data_record h;

        if (len < sizeof(h))
                return -EBADMSG;
        memcpy(&h, rec, sizeof(h));
        if (h.type != TLSSNIFF_REC_DATA || h.len == 0 || h.len > TLSSNIFF_CHUNK_MAX ||
            len != sizeof(h) + h.len)
                return -EBADMSG;
        if (h.direction > TLSSNIFF_DIR_WRITE || h.role > TLSSNIFF_ROLE_SERVER)
                return -EBADMSG;
        if ((uint64_t)h.call_offset + h.len > h.call_len)
                return -EBADMSG;
        /* stream_offset is that of the record's first byte; the call starts call_offset before. */
        if (h.stream_offset < h.call_offset ||
            h.stream_offset - h.call_offset > UINT64_MAX - h.call_len)
                return -EBADMSG;
        *ret_hdr = h;
        *ret_payload = rec + sizeof(h);
        return 0;
}

static uint64_t call_start(const struct tlssniff_data_record *h)
{
        return h->stream_offset - h->call_offset;
}

/* A call whose records are still arriving. */
struct assembler_slot {
        struct tlssniff_data_record hdr; /* of the call's first record seen */
        uint32_t next_call_offset; /* where the next record must start to be contiguous */
        uint32_t run_start;        /* call offset of buf[0] */
        uint8_t *buf;
        size_t len, cap;
};

void assembler_init(struct assembler *a, message_cb cb, void *userdata)
{
        *a = (struct assembler){ .cb = cb, .userdata = userdata };
}

static uint32_t truncated_of(const struct tlssniff_data_record *h, uint32_t cap_end)
{
        return (h->flags & TLSSNIFF_DATA_TRUNCATED) && h->call_len > cap_end
                       ? h->call_len - cap_end
                       : 0;
}

static void emit_slot(struct assembler *a, struct assembler_slot *s, bool complete)
{
        struct message m = {
                .hdr = s->hdr,
                .offset = call_start(&s->hdr) + s->run_start,
                .length = (uint32_t)s->len,
                .data = s->buf,
        };

        if (complete)
                m.truncated = truncated_of(&s->hdr, s->next_call_offset);
        if (s->len > 0) {
                a->messages++;
                a->cb(&m, a->userdata);
        }
        s->len = 0;
}

static void slot_remove(struct assembler *a, unsigned i)
{
        free(a->slots[i].buf);
        a->slots[i] = a->slots[--a->n];
}

static int slot_append(struct assembler_slot *s, const uint8_t *data, uint32_t n)
{
        int r = buffer_reserve(&s->buf, &s->cap, s->len, n);

        if (r < 0)
                return r;
        memcpy(s->buf + s->len, data, n);
        s->len += n;
        return 0;
}

int assembler_add(struct assembler *a, const struct tlssniff_data_record *h, const uint8_t *data)
{
        bool single = h->call_offset == 0 && (h->flags & TLSSNIFF_DATA_LAST);
        struct assembler_slot *s = NULL;
        unsigned i;
        int r;

        a->records++;
        for (i = 0; i < a->n; i++)
                if (a->slots[i].hdr.conn_id == h->conn_id &&
                    a->slots[i].hdr.direction == h->direction)
                        break;
        if (single && i < a->n) {
                /* The previous call on this stream lost its last record. */
                a->split_messages++;
                emit_slot(a, &a->slots[i], false);
                slot_remove(a, i);
        }
        /* Fast path: a call that fits one record needs no copy. */
        if (single) {
                struct message m = { .hdr = *h, .offset = h->stream_offset, .length = h->len,
                                     .data = data, .truncated = truncated_of(h, h->len) };

                a->messages++;
                a->cb(&m, a->userdata);
                return 0;
        }
        if (i < a->n) {
                s = &a->slots[i];
                if (call_start(&s->hdr) != call_start(h) ||
                    s->next_call_offset != h->call_offset) {
                        /* A record of the pending call was lost, or a new call began. */
                        a->split_messages++;
                        emit_slot(a, s, false);
                        if (call_start(&s->hdr) != call_start(h))
                                s->hdr = *h;
                        s->run_start = h->call_offset;
                }
        } else {
                if (a->n == a->cap) {
                        unsigned cap = a->cap ? a->cap * 2 : 16;
                        struct assembler_slot *p = realloc(a->slots, cap * sizeof(*p));

                        if (!p)
                                return -ENOMEM;
                        a->slots = p;
                        a->cap = cap;
                }
                s = &a->slots[a->n++];
                *s = (struct assembler_slot){ .hdr = *h, .run_start = h->call_offset };
        }
        r = slot_append(s, data, h->len);
        if (r < 0)
                return r;
        s->next_call_offset = h->call_offset + h->len;
        if (h->flags & TLSSNIFF_DATA_LAST) {
                emit_slot(a, s, true);
                slot_remove(a, (unsigned)(s - a->slots));
        }
        return 0;
}

void assembler_flush(struct assembler *a)
{
        while (a->n > 0) {
                a->split_messages++;
                emit_slot(a, &a->slots[a->n - 1], false);
                slot_remove(a, a->n - 1);
        }
}

void assembler_done(struct assembler *a)
{
        for (unsigned i = 0; i < a->n; i++)
                free(a->slots[i].buf);
        free(a->slots);
        *a = (struct assembler){};
}
