/*
 * Data records as they arrive from loaderd: validated against the sample size before any field
 * is trusted, then joined per call into messages (docs/output.md).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "events.h"

/* 0 when rec[0..len) is a well-formed data record; -EBADMSG otherwise. */
int record_validate(const uint8_t *rec, size_t len, struct tlssniff_data_record *ret_hdr,
                    const uint8_t **ret_payload);

/* A contiguous run of one call's bytes, ready for output. */
struct message {
        struct tlssniff_data_record hdr; /* of the first record; offsets below are the run's */
        uint64_t offset;                 /* stream offset of data[0] */
        uint32_t length;
        uint32_t truncated; /* bytes of the call past the capture cap */
        const uint8_t *data;
};

typedef void (*message_cb)(const struct message *m, void *userdata);

struct assembler_slot;

struct assembler {
        struct assembler_slot *slots;
        unsigned n, cap;
        message_cb cb;
        void *userdata;
        uint64_t records;
        uint64_t messages;
        uint64_t split_messages; /* calls printed in several parts because a record was lost */
};

void assembler_init(struct assembler *a, message_cb cb, void *userdata);
/* Feeds one validated record. Messages are emitted through cb as they complete. */
int assembler_add(struct assembler *a, const struct tlssniff_data_record *h, const uint8_t *data);
/* Emits everything still pending (end of input). */
void assembler_flush(struct assembler *a);
void assembler_done(struct assembler *a);
