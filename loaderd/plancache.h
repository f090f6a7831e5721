/*
 * The plan cache: probe plans of Go executables, kept by loaderd and keyed by the SHA-256 of
 * the file's bytes (computed by loaderd from its own descriptor) and its size, or by the
 * file's identity (planner.c; the key is a string either way). Kept in memory
 * and appended to one file in the cache folder (root's, mode 0600), so that another copy of a
 * binary, or the same binary after a restart, gets its plan without a planner. A planner never
 * sees the cache: loaderd stores the plan a file's planner sent under that file's hash only,
 * so a planner can create the entry of its own file and no other. A plan from the cache is
 * checked by plan_validate() against the file at hand like a planner's. See docs/security.md.
 *
 * File format: records of {"TSP1", u32 length of what follows up to the crc, u64 file size,
 * u16 key length, key, u32 plan length, plan (the A_PLAN msgpack body), u32 crc32 of the
 * record before it}, little endian. Loading stops at the first record that does not check out
 * and cuts the file there.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "msg.h"

#define PLANCACHE_ENTRIES_MAX 4096
#define PLANCACHE_FILE_MAX (32u << 20)
#define PLANCACHE_FILE_NAME "plans.v3"
/* The analyzer's offset cache before loaderd kept it (keyed by build id): removed. */
#define PLANCACHE_OLD_FILE_NAME "go-plans.v2"

struct plancache_entry {
        char *key;
        uint64_t size;
        uint8_t *plan; /* msgpack A_PLAN body */
        size_t plan_len;
};

struct plancache {
        int fd; /* -1: memory only */
        struct plancache_entry *e;
        size_t n, cap;
        uint64_t hits, misses, stored, full, load_errors, write_errors;
};

/*
 * Opens (creating) the cache file in dir and loads it; dir NULL: memory only. The file must be
 * a regular file of root's with one link; anything else in its place is removed and the
 * file made anew.
 */
int plancache_open(struct plancache *c, const char *dir);
/* Whether any plan is cached for a file of this size (no hashing needed to say no). */
bool plancache_has_size(const struct plancache *c, uint64_t size);
/* The cached plan for (key, size) in ret (ret->file_id stays the caller's: a cached plan
 * belongs to no file); -ENOENT: a miss. */
int plancache_get(struct plancache *c, const char *key, uint64_t size, struct msg_plan *ret);
/* Remembers a plan (and appends it to the file). Does nothing for an empty key or a key
 * already there; -ENOSPC (counted in full) when PLANCACHE_ENTRIES_MAX are there. */
int plancache_put(struct plancache *c, const char *key, uint64_t size, const struct msg_plan *plan);
void plancache_done(struct plancache *c);
