/* Raw frames for the rogue test programs; see rogue-send.h. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "frame.h"
#include "rogue-send.h"

int rogue_send(int fd, uint16_t type, const void *body, uint32_t n, const int *fds,
               unsigned n_fds)
{
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * 8)];
        } control = {};
        uint8_t hdr[FRAME_HEADER_SIZE];
        struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)body, n } };
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = body ? 2 : 1 };

        if (n_fds > 8)
                return -EINVAL;
        frame_header_write(hdr, n, type);
        if (n_fds > 0) {
                struct cmsghdr *c;

                mh.msg_control = control.buf;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
        }
        return sendmsg(fd, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}
