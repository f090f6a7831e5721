/*
 * Frames on the loaderd <-> analyzer socket: a fixed 8-byte header {u32 length, u16 type,
 * u16 flags} in little-endian order, then `length` bytes of msgpack body. The size cap is
 * checked on the header, before anything is allocated. File descriptors travel with the first
 * byte of the frame that owns them (SCM_RIGHTS) and are queued in arrival order by the reader.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FRAME_HEADER_SIZE 8u
#define FRAME_BODY_MAX (8u << 20)
#define FRAME_FDS_MAX 16u

/* Requests (loaderd -> analyzer) and answers (analyzer -> loaderd) have distinct ranges. */
enum frame_type {
        FRAME_L_HELLO = 0x0101,    /* [version, realtime_minus_boottime_ns, call_cap, flags] */
        FRAME_L_FILE = 0x0102,     /* [file_id, dev, ino, path, pid, kind] + 1 fd */
        FRAME_L_RECORDS = 0x0103,  /* [[bin record, ...]] ring-buffer samples, verbatim */
        FRAME_L_STATS = 0x0104,    /* [[name, value], ...] */
        FRAME_L_ATTACHED = 0x0105, /* [file_id, probes_attached, error or nil] */
        FRAME_L_READY = 0x0106,    /* [probes, files]: initial discovery done */
        FRAME_L_CONFIG = 0x0107,   /* [[analyzer option, ...], has_fd] (+ 1 fd: new output) */
        FRAME_L_CONTROL_RESULT = 0x0108, /* [id, ok, message]: answer to an A_CONTROL */
        FRAME_L_PROCESSES = 0x0109, /* [id, total, [[pid, status, comm, exe, reason, [file_id]]]] */
        FRAME_L_PLANNED = 0x010A,  /* [file_id, dev, ino, path, pid, kind, library, reason,
                                      probes]: a file its planner planned (library and reason
                                      are the planner's claims) */
        FRAME_A_HELLO = 0x0201,    /* [version] */
        FRAME_A_PLAN = 0x0202,     /* [file_id, library, reason, [[kind, func, offset, locs]...], go] */
        FRAME_P_PLAN = 0x0301,     /* a planner's: [A_PLAN body as bin, go, analysis_us] */
        FRAME_A_CONTROL = 0x0203,  /* [id, verb, argument]: tlssniffctl attach/detach/reload */
        FRAME_A_STATUS = 0x0204,   /* [processes, connections, records_bytes]: STATUS=, loss */
};

#define FRAME_PROTOCOL_VERSION 3u

struct frame_header {
        uint32_t length;
        uint16_t type;
        uint16_t flags;
};

void frame_header_write(uint8_t out[FRAME_HEADER_SIZE], uint32_t length, uint16_t type);
/* 0, or -EMSGSIZE when the length exceeds the cap, -EPROTO when flags are set. */
int frame_header_parse(const uint8_t in[FRAME_HEADER_SIZE], struct frame_header *ret);
const char *frame_type_name(uint16_t type);

/* Incoming byte stream, cut into frames. */
struct frame_reader {
        uint8_t *buf;
        size_t len;  /* bytes held */
        size_t pos;  /* start of the next unparsed frame */
        size_t cap;
        int fds[FRAME_FDS_MAX]; /* received, not yet claimed */
        unsigned n_fds;
        bool accept_fds;
};

int frame_reader_init(struct frame_reader *r, bool accept_fds);
void frame_reader_done(struct frame_reader *r);
/* Reads what is available. >0 bytes read, 0 on EOF, -EAGAIN when nothing, <0 error. */
int frame_reader_fill(struct frame_reader *r, int fd);
/* Feeds bytes directly (tests, fuzzing). */
int frame_reader_feed(struct frame_reader *r, const void *p, size_t n);
/*
 * Next complete frame: 1 with header and body pointer (valid until the next fill/feed),
 * 0 when more bytes are needed, negative when the stream is broken (bad header): the caller
 * must drop the connection since frame boundaries are lost.
 */
int frame_reader_next(struct frame_reader *r, struct frame_header *ret_hdr,
                      const uint8_t **ret_body);
/* The oldest received fd, or -ENOENT. The caller owns it. */
int frame_reader_take_fd(struct frame_reader *r);

/* Outgoing frames queued for a non-blocking socket. */
struct frame_writer {
        uint8_t *buf;
        size_t len;
        size_t pos;
        size_t cap;
        struct {
                size_t at; /* byte offset of the owning frame in buf */
                int fd;
        } fds[FRAME_FDS_MAX];
        unsigned n_fds;
};

void frame_writer_done(struct frame_writer *w);
/* Queues one frame; fd >= 0 is duplicated into the queue and sent with it. */
int frame_writer_put(struct frame_writer *w, uint16_t type, const void *body, size_t n, int fd);
/*
 * Sends one frame without an fd: straight from body when nothing is queued before it (one copy
 * fewer: the kernel's), queuing only what the socket did not take. 0 when all of it went,
 * -EAGAIN when some is queued, other negative errors as frame_writer_put/flush.
 */
int frame_writer_send(struct frame_writer *w, int sock, uint16_t type, const void *body,
                      size_t n);
size_t frame_writer_pending(const struct frame_writer *w);
/* Writes as much as the socket takes. 0 when all is written, -EAGAIN when some remains. */
int frame_writer_flush(struct frame_writer *w, int sock);
