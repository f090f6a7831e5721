/*
 * Unit test: the connection table puts each direction back in order by stream offset whatever
 * order its messages come in, declares a gap only for bytes that really never come (after the
 * hold time, or at once for bytes past the per-call cap), and stays bounded.
 */
#undef NDEBUG
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "conn/table.h"

static const char REQ[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
static const char RESP[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 404 No\r\n"
                           "Content-Length: 0\r\n\r\n";

struct seen {
        unsigned n, errors;
        char paths[8][16];
        int status[8];
};

static void on_exchange(const struct conn_entry *c, const struct exchange *x, void *userdata)
{
        struct seen *s = userdata;

        (void)c;
        if (s->n < 8) {
                snprintf(s->paths[s->n], sizeof(s->paths[s->n]), "%.15s", x->target);
                s->status[s->n] = x->status;
        }
        s->n++;
        s->errors += x->error != NULL;
}

/* A message of conn 1 (client side): dir write = requests, read = responses. */
static void msg(struct conn_table *t, unsigned dir, const char *all, size_t off, size_t len,
                uint32_t truncated, uint64_t now)
{
        struct message m = { .offset = off, .length = (uint32_t)len, .truncated = truncated };

        m.hdr.conn_id = 1;
        m.hdr.direction = (uint8_t)dir;
        m.hdr.timestamp_ns = 1000 + off;
        m.hdr.role = TLSSNIFF_ROLE_CLIENT;
        m.data = (const uint8_t *)all + off;
        conn_table_message(t, &m, TLSSNIFF_ROLE_CLIENT, now);
}

/* Requests cut at r1, responses at s1 and s2, the pieces delivered in the order given. */
static void run(const size_t order[][3], size_t n, struct seen *s, struct conn_table *t)
{
        memset(s, 0, sizeof(*s));
        assert(conn_table_init(t, true, 64, on_exchange, NULL, s) == 0);
        for (size_t i = 0; i < n; i++) {
                const char *all = order[i][0] == TLSSNIFF_DIR_WRITE ? REQ : RESP;

                msg(t, (unsigned)order[i][0], all, order[i][1], order[i][2] - order[i][1], 0,
                    1000);
        }
}

int main(void)
{
        size_t rl = strlen(REQ), sl = strlen(RESP);
        struct conn_table t;
        struct seen s;

        /* In order: two exchanges, no gaps. */
        {
                const size_t o[][3] = { { TLSSNIFF_DIR_WRITE, 0, 10 },
                                        { TLSSNIFF_DIR_WRITE, 10, rl },
                                        { TLSSNIFF_DIR_READ, 0, 20 },
                                        { TLSSNIFF_DIR_READ, 20, sl } };
                run(o, 4, &s, &t);
                assert(s.n == 2 && s.errors == 0 && t.gaps == 0 && t.held == 0);
                conn_table_done(&t);
        }
        /* Each direction's second half first: held, then handed on in order; same result. */
        {
                const size_t o[][3] = { { TLSSNIFF_DIR_WRITE, 10, rl },
                                        { TLSSNIFF_DIR_READ, 30, sl },
                                        { TLSSNIFF_DIR_READ, 20, 30 },
                                        { TLSSNIFF_DIR_WRITE, 0, 10 },
                                        { TLSSNIFF_DIR_READ, 0, 20 } };
                run(o, 5, &s, &t);
                assert(s.n == 2 && s.errors == 0 && t.gaps == 0 && t.held == 3);
                assert(strcmp(s.paths[0], "/a") == 0 && s.status[0] == 200);
                assert(strcmp(s.paths[1], "/b") == 0 && s.status[1] == 404);
                assert(t.holding == 0);
                conn_table_done(&t);
        }
        /* Bytes that never come: held until the hold time passes, then a gap. */
        {
                const size_t o[][3] = { { TLSSNIFF_DIR_WRITE, 0, rl },
                                        { TLSSNIFF_DIR_READ, 20, sl } };
                run(o, 2, &s, &t);
                assert(t.gaps == 0 && t.holding == 1);
                conn_table_expire(&t, 1000 + CONN_HOLD_NS / 2);
                assert(t.gaps == 0 && t.hold_timeouts == 0);
                conn_table_expire(&t, 1000 + CONN_HOLD_NS + 1);
                assert(t.gaps == 1 && t.hold_timeouts == 1 && t.holding == 0);
                conn_table_done(&t);
                assert(s.errors >= 1); /* the first response was cut */
        }
        /* More early messages than can be held: the oldest go on with a gap, nothing grows. */
        {
                memset(&s, 0, sizeof(s));
                assert(conn_table_init(&t, true, 64, on_exchange, NULL, &s) == 0);
                for (unsigned i = 0; i < CONN_HOLD_MAX + 3; i++)
                        msg(&t, TLSSNIFF_DIR_READ, RESP, 10 + i, 1, 0, 1000);
                assert(t.held == CONN_HOLD_MAX);
                assert(t.gaps == 1);
                conn_table_done(&t);
        }
        /* A call larger than the per-call cap: its missing tail is a gap at once, no waiting. */
        {
                memset(&s, 0, sizeof(s));
                assert(conn_table_init(&t, true, 64, on_exchange, NULL, &s) == 0);
                msg(&t, TLSSNIFF_DIR_WRITE, REQ, 0, 5, 7, 1000); /* 5 captured, 7 past the cap */
                msg(&t, TLSSNIFF_DIR_WRITE, REQ, 12, 3, 0, 1000);
                assert(t.held == 0 && t.gaps == 1);
                conn_table_done(&t);
        }
        /*
         * Bytes that come after the connection left the table (read after the kernel closed
         * it): they go on from where it had got to, no hold and no gap.
         */
        {
                memset(&s, 0, sizeof(s));
                assert(conn_table_init(&t, true, 64, on_exchange, NULL, &s) == 0);
                msg(&t, TLSSNIFF_DIR_WRITE, REQ, 0, rl, 0, 1000);
                msg(&t, TLSSNIFF_DIR_READ, RESP, 0, 20, 0, 1000);
                conn_table_closed(&t, 1, 2000, 1000);
                conn_table_expire(&t, 1000 + CONN_CLOSE_DELAY_NS + 1);
                assert(t.n == 0 && t.closed == 1);
                msg(&t, TLSSNIFF_DIR_READ, RESP, 20, sl - 20, 0, 1000 + CONN_CLOSE_DELAY_NS + 2);
                assert(t.reopened == 1 && t.held == 0 && t.holding == 0 && t.gaps == 0);
                assert(conn_table_find(&t, 1)->next[TLSSNIFF_DIR_READ] == sl);
                conn_table_done(&t);
        }
        printf("table: ok\n");
        return 0;
}
