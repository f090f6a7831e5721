/*
 * The output file written around the page cache, by a thread of its own: a stdio stream whose
 * batches go to a writer thread, which writes their whole, aligned blocks with O_DIRECT and
 * their ragged ends (the rest of a block another batch began, the part of a block a batch
 * leaves) through the page cache as before. A capture writes hundreds of megabytes a minute;
 * through the page cache each 4 KiB page is allocated, given buffer heads, filled, written
 * back and dropped again, which cost the analyzer two thirds of its CPU under load
 * (docs/performance.md). A direct write waits for the device (and, extending the file, for the
 * file system's journal): the thread keeps those waits out of the analyzer's loop. The file's
 * bytes and their order are the same either way.
 *
 * The stream hands a batch over (stdio's fflush) without waiting for it to be written, unless
 * DIRECT_SLOTS batches are still waiting (backpressure); direct_writer_drain waits until all
 * are in the file. A write error is reported by the stream's next write (or its fclose).
 *
 * The stream writes to a file descriptor number (STDOUT_FILENO for the analyzer), looked up on
 * every batch, so that a reload's dup2 of a new output onto it needs only a drain before and
 * direct_writer_reset after. Writes go where plain write(2) puts them: at the end with
 * O_APPEND, else at the file offset.
 *
 * The thread is started by direct_stream_open: before a seccomp filter, which must then be
 * installed for all threads (analyzer/sandbox.c does, with SECCOMP_FILTER_FLAG_TSYNC).
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Offsets and memory of direct writes are aligned to this (any device block size up to it). */
#define DIRECT_ALIGN 4096u
/* A batch's bytes per slot (a larger write takes several), and the slots waiting at most. */
#define DIRECT_SLOT_DATA (1u << 20)
#define DIRECT_SLOTS 4u

struct direct_slot {
        uint8_t *buf;  /* DIRECT_ALIGN-aligned, DIRECT_SLOT_DATA + DIRECT_ALIGN bytes */
        size_t off;    /* the batch's bytes are buf[off, off + len) */
        size_t len;
        int64_t pos;   /* where they were expected to go in the file (-1: not known); off is
                        * pos % DIRECT_ALIGN, so whole blocks of the file are aligned memory */
};

struct direct_writer {
        int fd;
        /* Whether whole blocks are written with O_DIRECT: set while the thread is idle. */
        bool direct;
        bool fd_direct; /* O_DIRECT is set on the fd now (by the thread) */
        bool thread_on;
        bool started; /* under lock: the thread runs its loop */
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond; /* slots filled, slots freed, stop */
        /* Under lock: the slots waiting, oldest at `first` (the thread's while it writes). */
        struct direct_slot slots[DIRECT_SLOTS];
        unsigned first, count;
        bool stop;
        int error;         /* the first write error not reported yet (a negative errno) */
        int64_t next_pos;  /* where the next batch's bytes are expected to go, -1: ask */
        uint64_t direct_bytes; /* written around the page cache (atomic) */
        uint64_t cached_bytes; /* written through it (atomic) */
        int direct_error; /* why direct writes stopped (a negative errno), 0 if they did not */
};

/*
 * Sets up w for fd and returns a fully buffered stream onto it (buf of size bytes as its
 * buffer, which must outlive the stream), or NULL with errno set. The writer must outlive the
 * stream; fclose of the stream writes everything out and stops the thread.
 */
FILE *direct_stream_open(struct direct_writer *w, int fd, char *buf, size_t size);
/* Waits until every batch handed over is in the file; returns a pending write error or 0. */
int direct_writer_drain(struct direct_writer *w);
/*
 * fd may be another file now (after a drain): decides again whether direct writes are used (a
 * regular file whose file system accepts O_DIRECT) and forgets the old file's position.
 */
void direct_writer_reset(struct direct_writer *w);
/* The bytes written around the page cache so far (the thread adds to them atomically). */
uint64_t direct_writer_direct_bytes(const struct direct_writer *w);
/* Frees what direct_stream_open allocated (after the stream's fclose). */
void direct_writer_done(struct direct_writer *w);
