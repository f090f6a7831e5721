/*
 * Redaction of secrets in what the analyzer writes about exchanges: the values of sensitive
 * query parameters in a request target, and of sensitive fields in form and JSON body
 * previews. A name is sensitive when it is one of REDACT_PARAMS (case-insensitive) or one the
 * configuration adds (redact-param). Values become "[redacted]"; names, order and everything
 * else stay, so that a reader still sees what was asked.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "output.h"

/* The names redacted by default (docs/output.md lists them). */
#define REDACT_PARAMS                                                                              \
        "access_token", "api_key", "apikey", "auth", "client_secret", "code", "credential",        \
                "id_token", "key", "pass", "passwd", "password", "pwd", "refresh_token",           \
                "secret", "session", "sessionid", "sig", "signature", "token",                     \
                "x-amz-credential", "x-amz-security-token", "x-amz-signature", "x-goog-signature"

#define REDACT_VALUE "[redacted]"

/* Whether the n bytes at name are a sensitive parameter or field name. */
bool redact_param_is_secret(const struct output_redaction *r, const char *name, size_t n);

/*
 * target with the values of its sensitive query parameters replaced, in out (size bytes, at
 * least 1; cut to fit, NUL-terminated). Returns the length written.
 */
size_t redact_target(const struct output_redaction *r, const char *target, char *out,
                     size_t size);

/*
 * A body preview (n bytes, perhaps cut) with the values of sensitive fields replaced: JSON
 * ("name": value) when it starts like JSON, else form encoding (name=value&...) when it looks
 * like it; anything else is copied as it is. Into out (size bytes); returns the length.
 */
size_t redact_preview(const struct output_redaction *r, const uint8_t *p, size_t n, uint8_t *out,
                      size_t size);

/* The most redact_target or redact_preview can need for n bytes of input. */
#define REDACT_OUT_MAX(n) ((n) * 5 + 16)
