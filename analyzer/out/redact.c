/* Redaction of query parameters and body fields; see redact.h. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "redact.h"

bool redact_param_is_secret(const struct output_redaction *r, const char *name, size_t n)
{
        static const char *const names[] = { REDACT_PARAMS };

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (strlen(names[i]) == n && strncasecmp(name, names[i], n) == 0)
                        return true;
        for (unsigned i = 0; r && i < r->n_params && i < OUTPUT_REDACT_MAX; i++)
                if (strlen(r->params[i]) == n && strncasecmp(name, r->params[i], n) == 0)
                        return true;
        return false;
}

/* A bounded appender: what does not fit is dropped, the length says what was kept. */
struct sink {
        uint8_t *out;
        size_t size, len;
};

static void put(struct sink *s, const void *p, size_t n)
{
        if (s->len + n > s->size)
                n = s->size - s->len;
        memcpy(s->out + s->len, p, n);
        s->len += n;
}

/* name=value pairs separated by '&' (or ';'): each sensitive value replaced. */
static void redact_pairs(const struct output_redaction *r, const uint8_t *p, size_t n,
                         struct sink *s)
{
        size_t i = 0;

        while (i < n) {
                size_t end = i, eq;

                while (end < n && p[end] != '&' && p[end] != ';')
                        end++;
                eq = i;
                while (eq < end && p[eq] != '=')
                        eq++;
                if (eq < end && redact_param_is_secret(r, (const char *)p + i, eq - i)) {
                        put(s, p + i, eq + 1 - i);
                        put(s, REDACT_VALUE, strlen(REDACT_VALUE));
                } else {
                        put(s, p + i, end - i);
                }
                if (end < n)
                        put(s, p + end, 1);
                i = end + 1;
        }
}

size_t redact_target(const struct output_redaction *r, const char *target, char *out,
                     size_t size)
{
        struct sink s = { (uint8_t *)out, size - 1, 0 };
        const char *q = strchr(target, '?'), *frag;
        size_t n = strlen(target);

        if (!q) {
                put(&s, target, n);
        } else {
                frag = strchr(q, '#');
                put(&s, target, (size_t)(q + 1 - target));
                redact_pairs(r, (const uint8_t *)q + 1,
                             (size_t)((frag ? frag : target + n) - (q + 1)), &s);
                if (frag)
                        put(&s, frag, strlen(frag));
        }
        out[s.len] = '\0';
        return s.len;
}

/* A JSON string starting at p[i] == '"': the index after its closing quote (or n). */
static size_t json_string_end(const uint8_t *p, size_t n, size_t i)
{
        for (i++; i < n; i++) {
                if (p[i] == '\\')
                        i++;
                else if (p[i] == '"')
                        return i + 1;
        }
        return n;
}

/* A JSON value that is not a string, object or array: up to , } ] or whitespace. */
static size_t json_scalar_end(const uint8_t *p, size_t n, size_t i)
{
        while (i < n && p[i] != ',' && p[i] != '}' && p[i] != ']' && !isspace(p[i]))
                i++;
        return i;
}

/*
 * Every "name": value member whose name is sensitive gets "[redacted]" as its value when that
 * value is a string or a scalar (an object or array is left: its own members are looked at).
 * A preview may be cut anywhere: a value cut short is still replaced.
 */
static void redact_json(const struct output_redaction *r, const uint8_t *p, size_t n,
                        struct sink *s)
{
        size_t i = 0;

        while (i < n) {
                size_t end, k, v;

                if (p[i] != '"') {
                        put(s, p + i, 1);
                        i++;
                        continue;
                }
                end = json_string_end(p, n, i);
                put(s, p + i, end - i);
                /* A member name is a string followed by ':'. */
                k = end;
                while (k < n && isspace(p[k]))
                        k++;
                if (k >= n || p[k] != ':' || end - i < 2 ||
                    !redact_param_is_secret(r, (const char *)p + i + 1, end - i - 2)) {
                        i = end;
                        continue;
                }
                v = k + 1;
                while (v < n && isspace(p[v]))
                        v++;
                put(s, p + end, v - end); /* the colon and the space as they were */
                if (v < n && (p[v] == '{' || p[v] == '[')) {
                        i = v;
                        continue;
                }
                put(s, "\"" REDACT_VALUE "\"", strlen(REDACT_VALUE) + 2);
                i = v < n && p[v] == '"' ? json_string_end(p, n, v) : json_scalar_end(p, n, v);
        }
}

size_t redact_preview(const struct output_redaction *r, const uint8_t *p, size_t n, uint8_t *out,
                      size_t size)
{
        struct sink s = { out, size, 0 };
        size_t i = 0;

        while (i < n && isspace(p[i]))
                i++;
        if (i < n && (p[i] == '{' || p[i] == '['))
                redact_json(r, p, n, &s);
        else if (memchr(p, '=', n) && !memchr(p, '\n', n) && !memchr(p, ' ', n))
                redact_pairs(r, p, n, &s); /* form encoding has neither spaces nor lines */
        else
                put(&s, p, n);
        return s.len;
}
