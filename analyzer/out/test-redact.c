/* Unit test: redaction of query parameters and of form and JSON fields in body previews. */
#undef NDEBUG
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "out/redact.h"

static struct output_redaction extra = { .n_params = 1, .params = { "otp" } };

static void target(const char *in, const char *want)
{
        char out[REDACT_OUT_MAX(1024)];

        assert(redact_target(&extra, in, out, sizeof(out)) == strlen(want));
        if (strcmp(out, want) != 0) {
                fprintf(stderr, "redact_target(%s): got %s, want %s\n", in, out, want);
                assert(0);
        }
}

static void preview(const char *in, const char *want)
{
        uint8_t out[REDACT_OUT_MAX(1024)];
        size_t n = redact_preview(&extra, (const uint8_t *)in, strlen(in), out, sizeof(out));

        if (n != strlen(want) || memcmp(out, want, n) != 0) {
                fprintf(stderr, "redact_preview(%s): got %.*s, want %s\n", in, (int)n, out, want);
                assert(0);
        }
}

int main(void)
{
        char small[16];

        /* Query values of sensitive names, whatever their case; the rest as it was. */
        target("/index.html", "/index.html");
        target("/login?user=bob&password=hunter2&next=/x",
               "/login?user=bob&password=[redacted]&next=/x");
        target("/cb?Access_Token=abc.def&state=1#frag=token",
               "/cb?Access_Token=[redacted]&state=1#frag=token");
        target("/?token=&key=k;sig=s&code",
               "/?token=[redacted]&key=[redacted];sig=[redacted]&code");
        target("/?otp=123456&tokens=keep", "/?otp=[redacted]&tokens=keep");
        target("/s3?X-Amz-Signature=abc&X-Amz-Credential=AKIA%2F",
               "/s3?X-Amz-Signature=[redacted]&X-Amz-Credential=[redacted]");
        target("/a?=x&&password", "/a?=x&&password");
        /* Cut to fit, NUL-terminated. */
        assert(redact_target(NULL, "/login?password=hunter2", small, sizeof(small)) == 15);
        assert(strcmp(small, "/login?password") == 0);

        /* Form bodies. */
        preview("user=bob&password=hunter2", "user=bob&password=[redacted]");
        preview("grant_type=refresh_token&refresh_token=r1&client_secret=s2",
                "grant_type=refresh_token&refresh_token=[redacted]&client_secret=[redacted]");
        /* Text that only mentions a name is not a form. */
        preview("the password=hunter2 is weak", "the password=hunter2 is weak");
        preview("no secrets here", "no secrets here");
        /* JSON: strings, numbers, nested objects, arrays, escapes, a preview cut short. */
        preview("{\"username\":\"bob\",\"password\":\"hunter2\",\"n\":1}",
                "{\"username\":\"bob\",\"password\":\"[redacted]\",\"n\":1}");
        preview("{\"auth\": {\"token\" : \"abc\", \"pin\": 1234}, \"secret\": 42}",
                "{\"auth\": {\"token\" : \"[redacted]\", \"pin\": 1234}, "
                "\"secret\": \"[redacted]\"}");
        preview("[{\"Password\":\"a\\\"b\",\"x\":\"password\"}]",
                "[{\"Password\":\"[redacted]\",\"x\":\"password\"}]");
        preview("  {\"password\":\"hunt", "  {\"password\":\"[redacted]\"");
        preview("{\"password\":", "{\"password\":\"[redacted]\"");
        preview("{\"otp\":true,\"key\":null}", "{\"otp\":\"[redacted]\",\"key\":\"[redacted]\"}");
        preview("{\"password\" \"x\"}", "{\"password\" \"x\"}");
        printf("redact: ok\n");
        return 0;
}
