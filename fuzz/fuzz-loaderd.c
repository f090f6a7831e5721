/*
 * libFuzzer target: loaderd's frame handler (loaderd_dispatch_frame), the privileged side of
 * the analyzer socket. The input is a sequence of frames, each a 2-byte type index, a 2-byte
 * length and that many body bytes; the handler starts before the analyzer's hello, with one
 * file offered (this executable), as loaderd is after start-up. Whatever the frames, the
 * handler must return, refuse what it cannot accept (counted) and never attach a probe outside
 * the offered file's executable segments. No BPF object is loaded: a plan that passes
 * validation fails to attach with "no BPF object loaded".
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loaderd.h"
#include "fuzz.h"

static const uint16_t types[] = {
        FRAME_A_HELLO, FRAME_A_PLAN, FRAME_L_HELLO, FRAME_L_FILE, FRAME_L_RECORDS,
        FRAME_L_STATS, FRAME_L_ATTACHED, FRAME_L_READY, 0, 0xffff,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static int exe_fd = -1;
        struct loaderd l = { .sock = -1, .epoll_fd = -1 };
        struct traced_file tf = { .id = 1, .state = FILE_SENT, .path = (char *)"self" };
        size_t off = 0;

        if (exe_fd < 0) {
                log_setup("fuzz-loaderd", LOG_TARGET_STDERR, LOG_EMERG);
                exe_fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
                CHECK(exe_fd >= 0);
        }
        tf.fd = exe_fd;
        l.files = &tf;
        l.n_files = 1;
        while (off + 4 <= size) {
                struct frame_header h = { 0 };
                uint16_t len = (uint16_t)(data[off + 2] | data[off + 3] << 8);
                uint8_t *body;

                h.type = types[data[off] % (sizeof(types) / sizeof(types[0]))];
                h.flags = data[off + 1];
                off += 4;
                if (len > size - off)
                        len = (uint16_t)(size - off);
                h.length = len;
                /* A copy of exactly the body, so reading past it is caught. */
                body = malloc(len ? len : 1);
                CHECK(body);
                memcpy(body, data + off, len);
                (void)loaderd_dispatch_frame(&l, &h, body);
                free(body);
                off += len;
                CHECK(tf.set.n_links == 0 && !tf.plan); /* nothing attaches without a BPF object */
        }
        free(tf.set.links);
        frame_writer_done(&l.out);
        return 0;
}
