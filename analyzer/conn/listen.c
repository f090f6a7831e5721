/* Listening-port table from /proc/net/tcp and tcp6; see listen.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void load_file(struct listen_ports *lp, const char *path)
{
        FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t cap = 0, len = 0, n;

        if (!f)
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
                n = fread(buf + len, 1, cap - len - 1, f);
                if (n == 0)
                        break;
                len += n;
        }
        fclose(f);
        if (buf) {
                buf[len] = '\0';
                listen_ports_parse(lp, buf);
                free(buf);
        }
}

void listen_ports_refresh(struct listen_ports *lp)
{
        time_t now = time(NULL);

        if (lp->loaded && now == lp->loaded_at)
                return;
        memset(lp->bits, 0, sizeof(lp->bits));
        load_file(lp, "/proc/net/tcp");
        load_file(lp, "/proc/net/tcp6");
        lp->loaded = true;
        lp->loaded_at = now;
}

bool listen_ports_has(const struct listen_ports *lp, uint16_t port)
{
        return lp->bits[port / 64] & (1ull << (port % 64));
}
