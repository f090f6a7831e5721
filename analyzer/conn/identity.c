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

static void give_identity(struct message *to, const struct opened_identity *o)
{
        to->hdr.fd = o->fd;
        to->hdr.family = o->family;
        to->hdr.lport = o->lport;
        to->hdr.rport = o->rport;
        to->hdr.role = o->role;
        memcpy(to->hdr.laddr, o->laddr, sizeof(to->hdr.laddr));
        memcpy(to->hdr.raddr, o->raddr, sizeof(to->hdr.raddr));
        to->hdr.flags &= (uint8_t)~TLSSNIFF_DATA_NO_SOCKET;
}

static void identity_of_message(struct opened_identity *o, const struct message *m)
{
        *o = (struct opened_identity){ .conn_id = m->hdr.conn_id, .pid = m->hdr.pid,
                                       .fd = m->hdr.fd, .family = m->hdr.family,
                                       .lport = m->hdr.lport, .rport = m->hdr.rport,
                                       .role = m->hdr.role };
        memcpy(o->laddr, m->hdr.laddr, sizeof(o->laddr));
        memcpy(o->raddr, m->hdr.raddr, sizeof(o->raddr));
}

/* Gives the held messages of o's connection its socket identity and writes them, in order. */
static void bind_and_release(struct identity *id, const struct opened_identity *o)
{
        struct held_message **pp = &id->head, *prev = NULL;

        while (*pp) {
                struct held_message *h = *pp;

                if (h->m.hdr.conn_id != o->conn_id || h->m.hdr.pid != o->pid) {
                        prev = h;
                        pp = &h->next;
                        continue;
                }
                *pp = h->next;
                if (id->tail == h)
                        id->tail = prev;
                id->n--;
                id->bytes -= h->m.length;
                give_identity(&h->m, o);
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
                if (id->n > 0) {
                        struct opened_identity o;

                        identity_of_message(&o, m);
                        bind_and_release(id, &o);
                }
                id->emit(m, id->userdata);
                return 0;
        }
        for (unsigned i = 0; i < IDENTITY_OPENED_MAX; i++) {
                const struct opened_identity *o = &id->opened[i];

                if (o->conn_id == m->hdr.conn_id && o->pid == m->hdr.pid && o->conn_id) {
                        struct message bound = *m;

                        give_identity(&bound, o);
                        id->late_bound++;
                        id->emit(&bound, id->userdata);
                        return 0;
                }
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

void identity_opened(struct identity *id, const struct tlssniff_open_record *r)
{
        struct opened_identity *o = &id->opened[id->opened_next++ % IDENTITY_OPENED_MAX];

        *o = (struct opened_identity){ .conn_id = r->conn_id, .pid = r->pid, .fd = r->fd,
                                       .family = r->family, .lport = r->lport,
                                       .rport = r->rport, .role = r->role };
        memcpy(o->laddr, r->laddr, sizeof(o->laddr));
        memcpy(o->raddr, r->raddr, sizeof(o->raddr));
        if (id->n > 0)
                bind_and_release(id, o);
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
