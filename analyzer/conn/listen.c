/* Listening-port table from /proc/net/tcp and tcp6; see listen.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "listen.h"

#define TCP_LISTEN 0x0A

void listen_ports_parse(struct listen_ports *lp, const char *text)
{
        const char *line = strchr(text, '\n'); /* skip the header */

        while (line && *++line) {
                unsigned port = 0, state = 0;
                const char *colon;
                char *end;

                /* "  0: 0100007F:1F90 00000000:0000 0A ..." */
                colon = strchr(line, ':');
                if (colon)
                        colon = strchr(colon + 1, ':');
                if (colon) {
                        port = (unsigned)strtoul(colon + 1, &end, 16);
                        if (end && *end == ' ') {
                                const char *rem = strchr(end + 1, ' ');

                                if (rem)
                                        state = (unsigned)strtoul(rem + 1, NULL, 16);
                        }
                }
                if (state == TCP_LISTEN && port > 0 && port < 65536)
                        lp->bits[port / 64] |= 1ull << (port % 64);
                line = strchr(line, '\n');
        }
}

static void load_file(struct listen_ports *lp, int fd)
{
        char *buf = NULL;
        size_t cap = 0, len = 0;
        ssize_t n;

        if (fd < 0 || lseek(fd, 0, SEEK_SET) < 0)
                return;
        for (;;) {
                if (cap - len < 4096) {
                        char *p;

                        if (cap >= (64u << 20))
                                break; /* absurd table: keep what we have */
                        p = realloc(buf, cap + 65536);
                        if (!p)
                                break;
                        buf = p;
                        cap += 65536;
                }
                n = read(fd, buf + len, cap - len - 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                len += (size_t)n;
        }
        if (buf) {
                buf[len] = '\0';
                listen_ports_parse(lp, buf);
                free(buf);
        }
}

void listen_ports_init(struct listen_ports *lp)
{
        memset(lp, 0, sizeof(*lp));
        lp->fd[0] = open("/proc/net/tcp", O_RDONLY | O_CLOEXEC);
        lp->fd[1] = open("/proc/net/tcp6", O_RDONLY | O_CLOEXEC);
}

void listen_ports_done(struct listen_ports *lp)
{
        for (int i = 0; i < 2; i++) {
                if (lp->fd[i] >= 0)
                        close(lp->fd[i]);
                lp->fd[i] = -1;
        }
}

void listen_ports_refresh(struct listen_ports *lp)
{
        time_t now = time(NULL);

        if (lp->loaded && now == lp->loaded_at)
                return;
        memset(lp->bits, 0, sizeof(lp->bits));
        load_file(lp, lp->fd[0]);
        load_file(lp, lp->fd[1]);
        lp->loaded = true;
        lp->loaded_at = now;
}

bool listen_ports_has(const struct listen_ports *lp, uint16_t port)
{
        return lp->bits[port / 64] & (1ull << (port % 64));
}
