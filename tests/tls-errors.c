/*
 * Test helper: a TLS client that makes OpenSSL's read and write functions fail in the ways
 * tlssniff must not turn into data (test_placement.py). It loads the libssl given on the command
 * line with dlopen, so the same binary drives OpenSSL 3.0 and 1.1.1 (the functions it uses have
 * the same signatures in both).
 *
 * usage: tls-errors LIBSSL PORT MESSAGE REPLY_LEN
 * Connects to 127.0.0.1:PORT, then on a non-blocking socket:
 *   SSL_read     with nothing to read        -> -1, SSL_ERROR_WANT_READ
 *   SSL_read     with num = -1               -> -1 (argument error, before any I/O)
 *   SSL_read_ex  with nothing to read        ->  0, SSL_ERROR_WANT_READ
 *   SSL_write    MESSAGE                     -> its length
 *   SSL_peek     up to 7 bytes before each SSL_read of the reply: the same bytes the read then
 *                returns (peeked bytes are not consumed: a capture must not show them twice)
 *   SSL_read     until REPLY_LEN bytes came  (prints them on stdout)
 *   SSL_read     after the peer closed       ->  0 (or -1 on an unclean close)
 * and prints one line per step on stderr ("step NAME ret R err E").
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SSL_ERROR_WANT_READ 2
#define SSL_ERROR_WANT_WRITE 3
#define SSL_VERIFY_NONE 0

struct ossl {
        const void *(*TLS_client_method)(void);
        void *(*SSL_CTX_new)(const void *method);
        void (*SSL_CTX_set_verify)(void *ctx, int mode, void *cb);
        void *(*SSL_new)(void *ctx);
        int (*SSL_set_fd)(void *ssl, int fd);
        int (*SSL_connect)(void *ssl);
        int (*SSL_read)(void *ssl, void *buf, int num);
        int (*SSL_read_ex)(void *ssl, void *buf, size_t num, size_t *readbytes);
        int (*SSL_peek)(void *ssl, void *buf, int num);
        int (*SSL_write)(void *ssl, const void *buf, int num);
        int (*SSL_get_error)(const void *ssl, int ret);
        void (*ERR_clear_error)(void);
        void (*SSL_free)(void *ssl);
        void (*SSL_CTX_free)(void *ctx);
};

static void *sym(void *h, const char *name)
{
        void *p = dlsym(h, name);

        if (!p) {
                fprintf(stderr, "tls-errors: %s not found: %s\n", name, dlerror());
                exit(2);
        }
        return p;
}

static void wait_fd(int fd, short events)
{
        struct pollfd p = { .fd = fd, .events = events };

        if (poll(&p, 1, 10000) <= 0) {
                fprintf(stderr, "tls-errors: timed out waiting on the socket\n");
                exit(1);
        }
}

int main(int argc, char **argv)
{
        struct sockaddr_in sa = { .sin_family = AF_INET };
        struct ossl o;
        char buf[65536], peeked[7];
        size_t want, got = 0, nread = 0, peeks = 0;
        void *h, *ctx, *ssl;
        int fd, r, e;

        if (argc != 5) {
                fprintf(stderr, "usage: tls-errors LIBSSL PORT MESSAGE REPLY_LEN\n");
                return 2;
        }
        want = strtoul(argv[4], NULL, 10);
        if (want == 0 || want > sizeof(buf)) {
                fprintf(stderr, "tls-errors: REPLY_LEN must be 1..%zu\n", sizeof(buf));
                return 2;
        }
        h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
                fprintf(stderr, "tls-errors: %s\n", dlerror());
                return 2;
        }
        o.TLS_client_method = sym(h, "TLS_client_method");
        o.SSL_CTX_new = sym(h, "SSL_CTX_new");
        o.SSL_CTX_set_verify = sym(h, "SSL_CTX_set_verify");
        o.SSL_new = sym(h, "SSL_new");
        o.SSL_set_fd = sym(h, "SSL_set_fd");
        o.SSL_connect = sym(h, "SSL_connect");
        o.SSL_read = sym(h, "SSL_read");
        o.SSL_read_ex = sym(h, "SSL_read_ex");
        o.SSL_peek = sym(h, "SSL_peek");
        o.SSL_write = sym(h, "SSL_write");
        o.SSL_get_error = sym(h, "SSL_get_error");
        o.ERR_clear_error = sym(h, "ERR_clear_error"); /* libcrypto, a dependency of h */
        o.SSL_free = sym(h, "SSL_free");
        o.SSL_CTX_free = sym(h, "SSL_CTX_free");

        sa.sin_port = htons((uint16_t)atoi(argv[2]));
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                perror("tls-errors: connect");
                return 1;
        }
        ctx = o.SSL_CTX_new(o.TLS_client_method());
        o.SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        ssl = o.SSL_new(ctx);
        o.SSL_set_fd(ssl, fd);
        if (o.SSL_connect(ssl) != 1) {
                fprintf(stderr, "tls-errors: handshake failed\n");
                return 1;
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

        /* Nothing sent yet by the server (it waits for our message): WANT_READ. */
        r = o.SSL_read(ssl, buf, sizeof(buf));
        fprintf(stderr, "step read-want ret %d err %d\n", r, o.SSL_get_error(ssl, r));
        r = o.SSL_read(ssl, buf, -1);
        fprintf(stderr, "step read-negative ret %d\n", r);
        o.ERR_clear_error(); /* or the next SSL_get_error reports this argument error */
        r = o.SSL_read_ex(ssl, buf, sizeof(buf), &nread);
        fprintf(stderr, "step read-ex-want ret %d err %d\n", r, o.SSL_get_error(ssl, r));

        for (;;) {
                r = o.SSL_write(ssl, argv[3], (int)strlen(argv[3]));
                if (r > 0)
                        break;
                e = o.SSL_get_error(ssl, r);
                if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) {
                        fprintf(stderr, "tls-errors: SSL_write failed (%d)\n", e);
                        return 1;
                }
                wait_fd(fd, e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN);
        }
        fprintf(stderr, "step write ret %d\n", r);

        while (got < want) {
                int p = o.SSL_peek(ssl, peeked, sizeof(peeked));

                if (p <= 0)
                        o.ERR_clear_error();
                r = o.SSL_read(ssl, buf + got, (int)(want - got));
                if (r > 0 && p > 0) {
                        if (r < p || memcmp(buf + got, peeked, (size_t)p) != 0) {
                                fprintf(stderr, "tls-errors: SSL_read did not return the peeked "
                                                "bytes\n");
                                return 1;
                        }
                        peeks++;
                }
                if (r > 0) {
                        got += (size_t)r;
                        continue;
                }
                e = o.SSL_get_error(ssl, r);
                if (e != SSL_ERROR_WANT_READ) {
                        fprintf(stderr, "tls-errors: SSL_read failed (%d) after %zu bytes\n", e,
                                got);
                        return 1;
                }
                wait_fd(fd, POLLIN);
        }
        fwrite(buf, 1, got, stdout);
        fflush(stdout);
        fprintf(stderr, "step reply bytes %zu\n", got);
        fprintf(stderr, "step peeks count %zu\n", peeks);

        /* The peer closes: a read returns 0 (close_notify) or -1 (EOF without it). */
        for (;;) {
                r = o.SSL_read(ssl, buf, sizeof(buf));
                e = o.SSL_get_error(ssl, r);
                if (r > 0) {
                        fprintf(stderr, "tls-errors: %d unexpected bytes after the reply\n", r);
                        return 1;
                }
                if (e != SSL_ERROR_WANT_READ)
                        break;
                wait_fd(fd, POLLIN);
        }
        fprintf(stderr, "step read-closed ret %d err %d\n", r, e);
        o.SSL_free(ssl);
        o.SSL_CTX_free(ctx);
        close(fd);
        return 0;
}
