/*
 * Exchanges as structured journal entries (--journal-exchanges), so that `journalctl -o json`
 * can filter them by field: one entry per exchange, MESSAGE_ID MID_EXCHANGE, fields TLSSNIFF_*
 * (docs/output.md). Values come from captured bytes: they are passed as journal field values
 * (binary-safe), never as format strings.
 */
#pragma once

#include <stdbool.h>

#include "conn/table.h"
#include "out/output.h"
#include "proto/exchange.h"

/* 0, or a negative errno from sd_journal_sendv. The path's sensitive query values are
 * redacted (redact.h) unless show_secrets. */
int journal_exchange(const struct conn_entry *c, const struct exchange *x,
                     const struct output_redaction *redact, bool show_secrets);
