/* Holding socket-less messages until their connection's socket is known; see identity.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "identity.h"

struct held_message {
        struct held_message *next;
        struct message m;
        uint64_t since_ns;
        uint8_t data[];
};

void identity_init(struct identity *id, message_cb emit, void *userdata)
{
        *id = (struct identity){ .emit = emit, .userdata = userdata };
}

static bool has_socket(const struct message *m)
{
        return !(m->hdr.flags & TLSSNIFF_DATA_NO_SOCKET);
}

static void release_head(struct identity *id)
{
        struct held_message *h = id->head;

        id->head = h->next;
        if (!id->head)
                id->tail = NULL;
        id->n--;
        id->bytes -= h->m.length;
        h->m.data = h->data;
        id->released_bare++;
        id->emit(&h->m, id->userdata);
        free(h);
}

/* Gives the held messages of m's connection m's socket identity and writes them, in order. */
static void bind_and_release(struct identity *id, const struct message *m)
{
        struct held_message **pp = &id->head, *prev = NULL;

        while (*pp) {
                struct held_message *h = *pp;

                if (h->m.hdr.conn_id != m->hdr.conn_id || h->m.hdr.pid != m->hdr.pid) {
                        prev = h;
                        pp = &h->next;
                        continue;
                }
                *pp = h->next;
                if (id->tail == h)
                        id->tail = prev;
                id->n--;
                id->bytes -= h->m.length;
                h->m.hdr.fd = m->hdr.fd;
                h->m.hdr.family = m->hdr.family;
                h->m.hdr.lport = m->hdr.lport;
                h->m.hdr.rport = m->hdr.rport;
                h->m.hdr.role = m->hdr.role;
                memcpy(h->m.hdr.laddr, m->hdr.laddr, sizeof(h->m.hdr.laddr));
                memcpy(h->m.hdr.raddr, m->hdr.raddr, sizeof(h->m.hdr.raddr));
                h->m.hdr.flags &= (uint8_t)~TLSSNIFF_DATA_NO_SOCKET;
                h->m.data = h->data;
                id->late_bound++;
                id->emit(&h->m, id->userdata);
                free(h);
        }
}

int identity_submit(struct identity *id, const struct message *m, uint64_t now_ns)
{
        struct held_message *h;

        if (has_socket(m)) {
                if (id->n > 0)
                        bind_and_release(id, m);
                id->emit(m, id->userdata);
                return 0;
        }
        while (id->n > 0 && (id->n >= IDENTITY_HOLD_MESSAGES_MAX ||
                             id->bytes + m->length > IDENTITY_HOLD_BYTES_MAX))
                release_head(id);
        h = malloc(sizeof(*h) + m->length);
        if (!h) {
                id->released_bare++;
                id->emit(m, id->userdata); /* no memory to hold it: write it as it is */
                return 0;
        }
        h->next = NULL;
        h->m = *m;
        h->since_ns = now_ns;
        memcpy(h->data, m->data, m->length);
        if (id->tail)
                id->tail->next = h;
        else
                id->head = h;
        id->tail = h;
        id->n++;
        id->bytes += m->length;
        return 0;
}

void identity_expire(struct identity *id, uint64_t now_ns, bool force)
{
        while (id->head && (force || now_ns - id->head->since_ns >= IDENTITY_HOLD_NS))
                release_head(id);
}

bool identity_pending(const struct identity *id)
{
        return id->n > 0;
}

void identity_done(struct identity *id)
{
        while (id->head) {
                struct held_message *h = id->head;

                id->head = h->next;
                free(h);
        }
        id->tail = NULL;
        id->n = 0;
        id->bytes = 0;
}
