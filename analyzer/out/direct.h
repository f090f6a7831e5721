/*
 * The output file written around the page cache: a stdio stream whose whole, aligned blocks go
 * to the file with O_DIRECT and whose ragged ends (the rest of a block another write began, the
 * part of a block a flush leaves) go through the page cache as before. A capture writes hundreds
 * of megabytes a minute; through the page cache each 4 KiB page is allocated, given buffer
 * heads, filled, written back and dropped again, which cost the analyzer two thirds of its CPU
 * under load (docs/performance.md). Direct writes only pin the bounce buffer's pages for the
 * device. The file's bytes and the order they appear in are the same either way.
 *
 * The stream writes to a file descriptor number (STDOUT_FILENO for the analyzer), looked up on
 * every write, so that a reload's dup2 of a new output onto it needs only direct_writer_reset.
 * Writes go where plain write(2) puts them: at the end with O_APPEND, else at the file offset.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Offsets and memory of direct writes are aligned to this (any device block size up to it). */
#define DIRECT_ALIGN 4096u
/* The bounce buffer: the most one direct write(2) carries. */
#define DIRECT_BOUNCE_SIZE (512u << 10)

struct direct_writer {
        int fd;
        bool direct;      /* whole blocks are written with O_DIRECT */
        bool fd_direct;   /* O_DIRECT is set on the fd now (this writer set it) */
        uint8_t *bounce;  /* DIRECT_ALIGN-aligned, DIRECT_BOUNCE_SIZE bytes */
        uint64_t direct_bytes; /* written around the page cache */
        uint64_t cached_bytes; /* written through it */
        int direct_error; /* why direct writes stopped (a negative errno), 0 if they did not */
};

/*
 * Sets up w for fd and returns a fully buffered stream onto it (buf of size bytes as its
 * buffer, which must outlive the stream), or NULL with errno set. The writer must outlive the
 * stream too. Direct writes are tried when fd is a regular file (direct_writer_reset).
 */
FILE *direct_stream_open(struct direct_writer *w, int fd, char *buf, size_t size);
/*
 * fd may be another file now: decides again whether direct writes are used (a regular file
 * whose file system accepts O_DIRECT) and clears the reason they stopped.
 */
void direct_writer_reset(struct direct_writer *w);
void direct_writer_done(struct direct_writer *w);
