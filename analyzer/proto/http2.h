/*
 * Request/response exchanges of one HTTP/2 connection (and of gRPC carried over it), from the
 * two byte streams of the connection: the client's (requests = true) and the server's. The
 * same shape as exchange_conn (exchange.h), and the same promises: input is untrusted, every
 * length is bounded, and each direction gives the same exchanges whether its bytes arrive
 * whole or one at a time.
 *
 * What is read: the client preface, then frames in both directions. DATA is consumed in place
 * (counted, previewed, padding removed); header blocks (HEADERS or PUSH_PROMISE, then
 * CONTINUATION) are fed as they arrive to libnghttp2's HPACK inflater, one per direction, and
 * every block goes through it, also those of streams that are not tracked, since the dynamic
 * table of a direction is built by all its blocks in order. nghttp2_session is not used: it
 * would enforce the protocol on peers we only watch. Streams are paired by id; an exchange is
 * emitted when both directions of its stream have ended (END_STREAM), or with `error` set when
 * the stream is reset ("reset (code N)"), refused by a GOAWAY ("goaway"), or the connection
 * ends ("connection closed"). Pushed streams are ignored (their header blocks are decoded, not
 * reported); 1xx responses are skipped; trailers are appended to the headers of their
 * direction (gRPC takes grpc-status and grpc-message from them).
 *
 * Errors. Some mistakes leave the rest of the connection readable and are only counted: a
 * control frame of the wrong size, a frame on a stream it cannot be sent on, an invalid DATA
 * padding (that frame is skipped), a header block over H2_HEADER_BLOCK_MAX (the stream's
 * exchange gets an error, the block is still decoded), a new stream beyond H2_STREAMS_MAX (not
 * tracked). Others lose the thread of the connection for good, and abandon it: every open
 * stream is emitted with the reason, one error is counted, and nothing more of either
 * direction is parsed. They are: a missing or wrong client preface, a first frame that is not
 * SETTINGS (in either direction: capture did not start at the beginning, or this is not
 * HTTP/2), an HPACK decoding failure, a broken header block sequence (CONTINUATION out of
 * place, padding longer than a HEADERS frame), and a gap (bytes lost in either direction):
 * after a gap the frame boundaries are unknown and, worse, the HPACK dynamic table of that
 * direction is gone, so no later header block can be trusted to decode right.
 *
 * Bounds: H2_STREAMS_MAX streams tracked per connection, each with one struct exchange and
 * two previews (a stream over the bound is not tracked, nor is its response); per direction an
 * HPACK dynamic table of at most H2_HPACK_TABLE_MAX bytes (SETTINGS_HEADER_TABLE_SIZE is not
 * followed: an encoder told to use more than that fails to decode) and, while a header block is
 * being decoded, its fields (EXCHANGE_HEADER_BYTES, the rest marked truncated). Frames of any
 * length the format allows (16 MiB) are accepted (SETTINGS_MAX_FRAME_SIZE is not enforced);
 * only small fixed prefixes of a frame are buffered: header block fragments go to the inflater
 * as they arrive, which is why a block over H2_HEADER_BLOCK_MAX can still be decoded.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/exchange.h"

#define H2_STREAMS_MAX 128        /* open streams tracked per connection */
#define H2_HEADER_BLOCK_MAX 65536 /* compressed bytes of one header block (with CONTINUATION) */
#define H2_HPACK_TABLE_MAX 65536  /* largest HPACK dynamic table a peer's encoder may use */
#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24

struct h2_conn;

/*
 * preview: body bytes kept per direction and stream (<= EXCHANGE_PREVIEW_MAX). cb is called
 * with each exchange, which is freed when it returns; cb must not call back into c. NULL when
 * out of memory.
 */
struct h2_conn *h2_conn_new(size_t preview, exchange_cb cb, void *userdata);
/* Emits the open streams as incomplete ("connection closed") and frees. NULL-safe; NULL. */
struct h2_conn *h2_conn_free(struct h2_conn *c);
/* Bytes of the client direction (requests = true) or of the server's, in order. */
void h2_conn_data(struct h2_conn *c, bool requests, const uint8_t *data, size_t n, uint64_t ts_ns);
/* Bytes were lost in that direction: the connection is abandoned (see above). */
void h2_conn_gap(struct h2_conn *c, bool requests);
/* Both directions ended: open streams are emitted as incomplete; later bytes are ignored. */
void h2_conn_close(struct h2_conn *c);
/* Counters for the stats: exchanges emitted, errors (both directions). */
void h2_conn_counters(const struct h2_conn *c, uint64_t *ret_exchanges, uint64_t *ret_errors);
