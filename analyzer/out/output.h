/* Writing messages for people (text) and for programs (JSON lines, docs/output.md). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "record.h"

enum role_source { ROLE_SOURCE_NONE, ROLE_SOURCE_KERNEL, ROLE_SOURCE_LISTEN };

struct output {
        FILE *f;
        bool json;
        unsigned max_print;
        int64_t realtime_offset_ns;
        char *b64; /* scratch for base64 */
        size_t b64_cap;
};

void output_init(struct output *o, FILE *f, bool json, unsigned max_print);
void output_done(struct output *o);
/* role may differ from m->hdr.role when it was guessed. */
int output_message(struct output *o, const struct message *m, uint8_t role, enum role_source rs);
int output_stats(struct output *o, const char *const *names, const uint64_t *values, unsigned n);

/* Helpers, exposed for tests. */
size_t base64_encode(const uint8_t *in, size_t n, char *out);
void json_write_string(FILE *f, const char *s, size_t n);
void format_addr(uint16_t family, const uint8_t addr[16], char *out, size_t size);
