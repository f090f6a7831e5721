/*
 * The Go offset cache: probe plans of Go executables, keyed by build id and file size, kept in
 * memory and appended to one file in the analyzer's cache directory, so that another copy of
 * a binary, or the same binary after a restart, is planned without disassembly. The file is
 * opened before the sandbox closes (no open() afterwards); see docs/design.md, "Go".
 *
 * File format: records of {"TSG1", u32 length of what follows up to the crc, u64 file size,
 * u16 key length, key, u32 plan length, plan (the A_PLAN msgpack body), u32 crc32 of the
 * record before it}, little endian. Loading stops at the first record that does not check out
 * and cuts the file there.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "msg.h"

#define GOCACHE_ENTRIES_MAX 4096
#define GOCACHE_FILE_MAX (32u << 20)
#define GOCACHE_FILE_NAME "go-plans.v2" /* v2: Read may be one copy probe; v1 plans are re-made */

struct gocache_entry {
        char *key;
        uint64_t size;
        uint8_t *plan; /* msgpack A_PLAN body */
        size_t plan_len;
};

struct gocache {
        int fd; /* -1: memory only */
        struct gocache_entry *e;
        size_t n, cap;
        uint64_t hits, misses, stored, load_errors, write_errors;
};

/* Opens (creating) the cache file in dir and loads it; dir NULL: memory only. */
int gocache_open(struct gocache *c, const char *dir);
/*
 * The cached plan for (key, size), if fits (may be NULL) accepts it for the file at hand;
 * -ENOENT otherwise (a miss). On a hit, ret is written but for ret->file_id, which stays the
 * caller's: a cached plan belongs to no file.
 */
int gocache_get(struct gocache *c, const char *key, uint64_t size,
                bool (*fits)(const struct msg_plan *plan, void *userdata), void *userdata,
                struct msg_plan *ret);
/* Remembers a plan (and appends it to the file). Does nothing for an empty key. */
int gocache_put(struct gocache *c, const char *key, uint64_t size, const struct msg_plan *plan);
void gocache_done(struct gocache *c);
