/* Unit test: socket-less messages wait for their connection's socket, in order, bounded. */
#undef NDEBUG
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "conn/identity.h"

struct seen {
        unsigned n;
        uint64_t conn[64];
        int fd[64];
        uint8_t first[64];
};

static void collect(const struct message *m, void *ud)
{
        struct seen *s = ud;

        if (s->n >= 64) { /* only counted */
                s->n++;
                return;
        }
        s->conn[s->n] = m->hdr.conn_id;
        s->fd[s->n] = m->hdr.fd;
        s->first[s->n] = m->data[0];
        s->n++;
}

static struct message msg(uint64_t conn, int fd, const uint8_t *data)
{
        struct message m = { .length = 1, .data = data };

        m.hdr.conn_id = conn;
        m.hdr.pid = 1;
        m.hdr.fd = fd;
        if (fd < 0)
                m.hdr.flags = TLSSNIFF_DATA_NO_SOCKET;
        else {
                m.hdr.family = 2;
                m.hdr.lport = 1234;
        }
        return m;
}

int main(void)
{
        static const uint8_t a = 'a', b = 'b', c = 'c', d = 'd';
        struct identity id;
        struct seen s = {};
        struct message m;

        identity_init(&id, collect, &s);
        /* conn 1 writes twice without a socket, conn 2 passes through, then conn 1 reads. */
        m = msg(1, -1, &a);
        identity_submit(&id, &m, 0);
        m = msg(1, -1, &b);
        identity_submit(&id, &m, 1);
        assert(s.n == 0 && identity_pending(&id));
        m = msg(2, 7, &c);
        identity_submit(&id, &m, 2);
        assert(s.n == 1 && s.conn[0] == 2);
        m = msg(1, 9, &d);
        identity_submit(&id, &m, 3);
        assert(s.n == 4);
        assert(s.first[1] == 'a' && s.fd[1] == 9 && s.first[2] == 'b' && s.fd[2] == 9);
        assert(s.first[3] == 'd');
        assert(!identity_pending(&id) && id.late_bound == 2);

        /* A message that never gets its socket is written as it is after the hold time. */
        m = msg(3, -1, &a);
        identity_submit(&id, &m, 100);
        identity_expire(&id, 100 + IDENTITY_HOLD_NS - 1, false);
        assert(s.n == 4);
        identity_expire(&id, 100 + IDENTITY_HOLD_NS, false);
        assert(s.n == 5 && s.fd[4] == -1 && id.released_bare == 1);

        /* Bounded: past the message limit the oldest goes out first. */
        for (unsigned i = 0; i < IDENTITY_HOLD_MESSAGES_MAX + 3; i++) {
                m = msg(4, -1, &b);
                identity_submit(&id, &m, 200);
        }
        assert(s.n == 8);
        identity_expire(&id, 0, true);
        assert(!identity_pending(&id) && s.n == 8 + IDENTITY_HOLD_MESSAGES_MAX);

        /*
         * A read placed on the copy comes before its connection's socket is known: the open
         * record binds it, and a message without a socket that arrives after the open record
         * (from another CPU, through the reassembly) is bound at once. Another process's
         * connection with the same id is not.
         */
        s.n = 0;
        m = msg(5, -1, &c);
        identity_submit(&id, &m, 300);
        assert(s.n == 0 && identity_pending(&id));
        {
                struct tlssniff_open_record o = { .type = TLSSNIFF_REC_OPEN, .pid = 1,
                                                  .conn_id = 5, .fd = 11, .family = 2,
                                                  .lport = 443, .role = TLSSNIFF_ROLE_SERVER };

                identity_opened(&id, &o);
        }
        assert(s.n == 1 && s.conn[0] == 5 && s.fd[0] == 11 && !identity_pending(&id));
        m = msg(5, -1, &d);
        identity_submit(&id, &m, 301);
        assert(s.n == 2 && s.fd[1] == 11 && s.first[1] == 'd');
        m = msg(5, -1, &a);
        m.hdr.pid = 2;
        identity_submit(&id, &m, 302);
        assert(s.n == 2 && identity_pending(&id));
        identity_expire(&id, 0, true);
        assert(s.n == 3 && s.fd[2] == -1);
        identity_done(&id);
        printf("identity: ok\n");
        return 0;
}
