/* The connection table; see table.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conn/table.h"
#include "log.h"
#include "macro.h"

static void hold_drain(struct conn_table *t, struct conn_entry *c, unsigned dir, bool flush);

static size_t bucket_of(uint64_t conn_id)
{
        return (size_t)((conn_id * 0x9e3779b97f4a7c15ull) >> 40) % CONN_TABLE_MAX;
}

int conn_table_init(struct conn_table *t, bool parse, size_t preview, conn_exchange_cb cb,
                    conn_close_cb close_cb, void *userdata)
{
        memset(t, 0, sizeof(*t));
        t->parse = parse;
        t->preview = preview;
        t->cb = cb;
        t->close_cb = close_cb;
        t->userdata = userdata;
        t->buckets = calloc(CONN_TABLE_MAX, sizeof(*t->buckets));
        t->gone = calloc(CONN_GONE_SLOTS, sizeof(*t->gone));
        if (!t->buckets || !t->gone) {
                free(t->buckets);
                free(t->gone);
                t->buckets = NULL;
                t->gone = NULL;
                return -ENOMEM;
        }
        return 0;
}

static void lru_unlink(struct conn_table *t, struct conn_entry *c)
{
        if (c->lru_prev)
                c->lru_prev->lru_next = c->lru_next;
        else
                t->lru_head = c->lru_next;
        if (c->lru_next)
                c->lru_next->lru_prev = c->lru_prev;
        else
                t->lru_tail = c->lru_prev;
        c->lru_prev = c->lru_next = NULL;
}

static void lru_push_front(struct conn_table *t, struct conn_entry *c)
{
        c->lru_prev = NULL;
        c->lru_next = t->lru_head;
        if (t->lru_head)
                t->lru_head->lru_prev = c;
        t->lru_head = c;
        if (!t->lru_tail)
                t->lru_tail = c;
}

/* Removes c from the table, emitting what its protocol parser still holds. */
static void conn_close(struct conn_table *t, struct conn_entry *c, const char *why)
{
        struct conn_entry **pp = &t->buckets[bucket_of(c->conn_id)];
        struct conn_gone *g;

        while (*pp && *pp != c)
                pp = &(*pp)->hash_next;
        if (*pp)
                *pp = c->hash_next;
        if (c->n_held) {
                hold_drain(t, c, 0, true);
                hold_drain(t, c, 1, true);
        }
        lru_unlink(t, c);
        t->n--;
        if (c->x) {
                uint64_t ex, err;

                t->emitting = c;
                exchange_conn_counters(c->x, &ex, &err);
                c->x = exchange_conn_free(c->x);
                t->emitting = NULL;
                t->http_errors += err;
        }
        if (c->h2) {
                uint64_t ex, err;

                t->emitting = c;
                h2_conn_counters(c->h2, &ex, &err);
                c->h2 = h2_conn_free(c->h2);
                t->emitting = NULL;
                t->http_errors += err;
        }
        free(c->early);
        free(c->held);
        if (t->close_cb)
                t->close_cb(c, why, t->userdata);
        g = &t->gone[c->conn_id % CONN_GONE_SLOTS];
        g->conn_id = c->conn_id;
        g->next[0] = c->next[0];
        g->next[1] = c->next[1];
        free(c);
}

static struct conn_entry *find(struct conn_table *t, uint64_t conn_id)
{
        struct conn_entry *c;

        for (c = t->buckets[bucket_of(conn_id)]; c; c = c->hash_next)
                if (c->conn_id == conn_id)
                        return c;
        return NULL;
}

void conn_table_done(struct conn_table *t)
{
        while (t->lru_head)
                conn_close(t, t->lru_head, "shutdown");
        free(t->buckets);
        t->buckets = NULL;
        free(t->gone);
        t->gone = NULL;
}

static void close_now(struct conn_table *t, uint64_t conn_id, uint64_t close_ns)
{
        struct conn_entry *c = find(t, conn_id);

        if (!c)
                return;
        c->close_ns = close_ns;
        t->closed++;
        conn_close(t, c, "closed");
}

void conn_table_closed(struct conn_table *t, uint64_t conn_id, uint64_t close_ns,
                       uint64_t now_ns)
{
        struct conn_entry *c = find(t, conn_id);
        unsigned i;

        if (!c)
                return;
        c->close_ns = close_ns;
        if (t->closing_n == CONN_CLOSE_QUEUE) {
                close_now(t, conn_id, close_ns); /* queue full: no grace for this one */
                return;
        }
        i = (t->closing_head + t->closing_n++) % CONN_CLOSE_QUEUE;
        t->closing[i].conn_id = conn_id;
        t->closing[i].at_ns = now_ns + CONN_CLOSE_DELAY_NS;
}

void conn_table_expire(struct conn_table *t, uint64_t now_ns)
{
        while (t->closing_n > 0 && t->closing[t->closing_head].at_ns <= now_ns) {
                uint64_t id = t->closing[t->closing_head].conn_id;
                struct conn_entry *c = find(t, id);

                t->closing_head = (t->closing_head + 1) % CONN_CLOSE_QUEUE;
                t->closing_n--;
                if (c)
                        close_now(t, id, c->close_ns);
        }
        if (t->holding > 0) {
                for (struct conn_entry *c = t->lru_head; c; c = c->lru_next)
                        if (c->n_held && now_ns - c->hold_since_ns > CONN_HOLD_NS) {
                                t->hold_timeouts++;
                                hold_drain(t, c, 0, true);
                                hold_drain(t, c, 1, true);
                        }
        }
        while (t->lru_tail && now_ns - t->lru_tail->last_active_ns > CONN_IDLE_NS) {
                t->expired++;
                conn_close(t, t->lru_tail, "idle");
        }
}

static void exchange_done(const struct exchange *x, void *userdata)
{
        struct conn_table *t = userdata;

        t->exchanges++;
        if (t->cb && t->emitting)
                t->cb(t->emitting, x, t->userdata);
}

/* The entry of conn_id, made (evicting the least recently active if full) when missing. */
static struct conn_entry *lookup(struct conn_table *t, uint64_t conn_id)
{
        size_t b = bucket_of(conn_id);
        struct conn_entry *c = find(t, conn_id);
        struct conn_gone *g;

        if (c) {
                lru_unlink(t, c);
                lru_push_front(t, c);
                return c;
        }
        if (t->n >= CONN_TABLE_MAX) {
                t->evicted++;
                conn_close(t, t->lru_tail, "evicted");
        }
        c = calloc(1, sizeof(*c));
        if (!c)
                return NULL;
        c->conn_id = conn_id;
        g = &t->gone[conn_id % CONN_GONE_SLOTS];
        if (conn_id && g->conn_id == conn_id) {
                c->next[0] = g->next[0];
                c->next[1] = g->next[1];
                g->conn_id = 0;
                t->reopened++;
        }
        c->hash_next = t->buckets[b];
        t->buckets[b] = c;
        t->n++;
        lru_push_front(t, c);
        return c;
}

const struct conn_entry *conn_table_find(struct conn_table *t, uint64_t conn_id)
{
        return t->buckets ? lookup(t, conn_id) : NULL;
}

/* Distinct processes among the tracked connections; bounded work. */
unsigned conn_table_count_pids(const struct conn_table *t)
{
        uint32_t seen[256];
        unsigned n = 0;

        for (const struct conn_entry *c = t->lru_head; c; c = c->lru_next) {
                bool known = false;

                for (unsigned i = 0; i < n && !known; i++)
                        known = seen[i] == c->id.pid;
                if (known)
                        continue;
                if (n == ELEMENTSOF(seen))
                        break; /* a lower bound beyond 256 processes */
                seen[n++] = c->id.pid;
        }
        return n;
}

void conn_table_opened(struct conn_table *t, const struct tlssniff_open_record *o,
                       uint64_t now_ns)
{
        struct conn_entry *c = lookup(t, o->conn_id);

        if (!c)
                return;
        c->last_active_ns = now_ns;
        c->open_ns = o->open_ns;
        c->cgroup_id = o->cgroup_id;
        if (!c->first_ns)
                c->first_ns = o->open_ns ? o->open_ns : o->seen_ns;
        /* The identity its messages will carry; a message updates it like any other. */
        c->id.pid = o->pid;
        c->id.fd = o->fd;
        c->id.conn_id = o->conn_id;
        c->id.family = o->family;
        c->id.lport = o->lport;
        c->id.rport = o->rport;
        c->id.role = o->role;
        memcpy(c->id.laddr, o->laddr, sizeof(c->id.laddr));
        memcpy(c->id.raddr, o->raddr, sizeof(c->id.raddr));
        memcpy(c->id.comm, o->comm, sizeof(c->id.comm));
        c->role = o->role;
        if (t->open_cb)
                t->open_cb(c, o->seen_ns, t->userdata);
}

/* Does this look like the first line of an HTTP/1 request? (method token, then a space) */
static bool looks_like_request(const uint8_t *d, size_t n)
{
        size_t i = 0;

        while (i < n && i < 16 && d[i] >= 'A' && d[i] <= 'Z')
                i++;
        return i >= 3 && i < n && d[i] == ' ';
}

static void detect(struct conn_table *t, struct conn_entry *c, bool requests, const uint8_t *d,
                   size_t n)
{
        static const char h2_preface[] = "PRI * HTTP/2.0\r\n";

        if (!requests)
                return; /* the client speaks first in HTTP; wait for its bytes */
        size_t k = n < sizeof(h2_preface) - 1 ? n : sizeof(h2_preface) - 1;

        if (n >= 3 && memcmp(d, h2_preface, k) == 0) {
                c->proto = CONN_PROTO_HTTP2;
                if (t->parse) {
                        c->h2 = h2_conn_new(t->preview, exchange_done, t);
                        if (c->h2 && c->early_len > 0) {
                                t->emitting = c;
                                h2_conn_data(c->h2, false, c->early, c->early_len, c->early_ts);
                                t->emitting = NULL;
                        }
                }
        } else if (looks_like_request(d, n)) {
                c->proto = CONN_PROTO_HTTP1;
                if (t->parse) {
                        c->x = exchange_conn_new(t->preview, exchange_done, t);
                        if (!c->x)
                                c->proto = CONN_PROTO_OTHER;
                }
        } else {
                c->proto = CONN_PROTO_OTHER;
        }
}

/* Bytes of one direction, starting at offset off, handed on in stream order. */
static void feed(struct conn_table *t, struct conn_entry *c, unsigned dir, uint64_t off,
                 const uint8_t *d, size_t n, uint64_t ts)
{
        bool requests = c->role == TLSSNIFF_ROLE_SERVER ? dir == TLSSNIFF_DIR_READ
                                                        : dir == TLSSNIFF_DIR_WRITE;

        /* Cut what was seen already. */
        if (off + n <= c->next[dir] && n > 0) {
                t->repeats++;
                return;
        }
        if (off < c->next[dir]) {
                t->repeats++;
                d += c->next[dir] - off;
                n -= (size_t)(c->next[dir] - off);
                off = c->next[dir];
        }
        if (off > c->next[dir]) {
                t->gaps++;
                log_debug("Connection %llu %s: %llu bytes missing at stream offset %llu.",
                          (unsigned long long)c->conn_id, dir ? "write" : "read",
                          (unsigned long long)(off - c->next[dir]),
                          (unsigned long long)c->next[dir]);
                if (c->x || c->h2) {
                        t->emitting = c;
                        if (c->x)
                                exchange_conn_gap(c->x, requests);
                        if (c->h2)
                                h2_conn_gap(c->h2, requests);
                        t->emitting = NULL;
                }
        }
        c->next[dir] = off + n;
        if (c->proto == CONN_PROTO_NONE && n > 0 && !requests && t->parse) {
                /* The server spoke first: keep a little of it until the client's bytes say
                 * which protocol this is (an HTTP/2 server's SETTINGS come at once). */
                size_t keep = n < CONN_EARLY_MAX - c->early_len ? n : CONN_EARLY_MAX - c->early_len;

                if (!c->early)
                        c->early = malloc(CONN_EARLY_MAX);
                if (c->early && keep > 0) {
                        if (c->early_len == 0)
                                c->early_ts = ts;
                        memcpy(c->early + c->early_len, d, keep);
                        c->early_len += (uint32_t)keep;
                }
                return;
        }
        if (c->proto == CONN_PROTO_NONE && n > 0) {
                detect(t, c, requests, d, n);
                free(c->early);
                c->early = NULL;
                c->early_len = 0;
        }
        if (c->x && n > 0) {
                t->emitting = c;
                exchange_conn_data(c->x, requests, d, n, ts);
                t->emitting = NULL;
        }
        if (c->h2 && n > 0) {
                t->emitting = c;
                h2_conn_data(c->h2, requests, d, n, ts);
                t->emitting = NULL;
        }
}

static void hold_drop(struct conn_table *t, struct conn_entry *c, unsigned i)
{
        struct conn_held *h = &c->held[i];

        c->held_bytes -= h->len;
        free(h->data);
        c->held[i] = c->held[--c->n_held];
        if (c->n_held == 0) {
                t->holding--;
                free(c->held); /* rare: no need to keep the slots around */
                c->held = NULL;
        }
}

/* Hands on the held messages of dir that are now in order (all of them when flush). */
static void hold_drain(struct conn_table *t, struct conn_entry *c, unsigned dir, bool flush)
{
        for (;;) {
                unsigned best = UINT32_MAX;

                for (unsigned i = 0; i < c->n_held; i++)
                        if (c->held[i].dir == dir &&
                            (best == UINT32_MAX || c->held[i].off < c->held[best].off))
                                best = i;
                if (best == UINT32_MAX || (!flush && c->held[best].off > c->next[dir]))
                        return;
                feed(t, c, dir, c->held[best].off, c->held[best].data, c->held[best].len,
                     c->held[best].ts);
                hold_drop(t, c, best);
        }
}

/* Keeps a copy of a message that came before the bytes in front of it; false if full. */
static bool hold(struct conn_table *t, struct conn_entry *c, unsigned dir, uint64_t off,
                 const uint8_t *d, size_t n, uint64_t ts, uint64_t now_ns)
{
        struct conn_held *h;

        if (c->n_held == CONN_HOLD_MAX || n > CONN_HOLD_BYTES - c->held_bytes)
                return false;
        if (!c->held) {
                c->held = calloc(CONN_HOLD_MAX, sizeof(*c->held));
                if (!c->held)
                        return false;
        }
        h = &c->held[c->n_held];
        h->data = malloc(n ? n : 1);
        if (!h->data)
                return false;
        memcpy(h->data, d, n);
        h->off = off;
        h->len = (uint32_t)n;
        h->ts = ts;
        h->dir = (uint8_t)dir;
        if (c->n_held++ == 0) {
                t->holding++;
                c->hold_since_ns = now_ns;
        }
        c->held_bytes += n;
        t->held++;
        return true;
}

void conn_table_message(struct conn_table *t, const struct message *m, uint8_t role,
                        uint64_t now_ns)
{
        struct conn_entry *c = lookup(t, m->hdr.conn_id);
        unsigned dir = m->hdr.direction & 1;

        if (!c)
                return;
        c->id = m->hdr;
        c->role = role;
        if (!c->first_ns)
                c->first_ns = m->hdr.timestamp_ns;
        c->last_ns = m->hdr.timestamp_ns;
        c->last_active_ns = now_ns;
        c->bytes[dir] += m->length;
        /*
         * Calls on one connection can return on two CPUs at once (two goroutines writing one
         * tls.Conn), so a message may arrive before the one in front of it: hold it (bounded)
         * until the bytes before it come, or give up on them after CONN_HOLD_NS.
         */
        if (m->offset > c->next[dir] &&
            hold(t, c, dir, m->offset, m->data, m->length, m->hdr.timestamp_ns, now_ns))
                return;
        if (m->offset > c->next[dir])
                hold_drain(t, c, dir, true); /* no room: what was held goes first, gaps and all */
        feed(t, c, dir, m->offset, m->data, m->length, m->hdr.timestamp_ns);
        /* Bytes past the per-call cap are known to be missing: not worth waiting for. */
        if (m->truncated)
                feed(t, c, dir, m->offset + m->length + m->truncated, NULL, 0,
                     m->hdr.timestamp_ns);
        if (c->n_held)
                hold_drain(t, c, dir, false);
}
