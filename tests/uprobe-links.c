/*
 * The kernel's view of the uprobes a process holds, for the tests: for each BPF link among
 * the descriptors of PID (link_id in /proc/PID/fdinfo), the file and offset the kernel has the
 * uprobe at, from BPF_OBJ_GET_INFO_BY_FD on the link (Linux 6.6 for perf-event uprobes, 6.8
 * for uprobe_multi links). One line per probe place:
 *     uprobe FILE OFFSET        (a perf-event uprobe or uretprobe link)
 *     uprobe_multi FILE OFFSET  (each offset of a uprobe_multi link: uprobe sessions)
 * (a name /proc/self/fd/N, as loaderd attaches, resolved through PID's descriptor N). Other
 * links (tracepoints, ...) are left out. Exit status 1 if a link's info cannot be read.
 *
 * Usage: uprobe-links PID
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#define LINK_TYPE_PERF_EVENT 7
#define LINK_TYPE_UPROBE_MULTI 12
#define PERF_EVENT_UPROBE 1
#define PERF_EVENT_URETPROBE 2

/* struct bpf_link_info of Linux 6.8 and later, the members used here (the build host's
 * headers may be older than the kernel the tests run on). */
struct link_info {
        uint32_t type, id, prog_id;
        uint32_t pad;
        union {
                struct {
                        uint64_t path, offsets, ref_ctr_offsets, cookies;
                        uint32_t path_size, count, flags, pid;
                } uprobe_multi;
                struct {
                        uint32_t type, pad;
                        uint64_t file_name;
                        uint32_t name_len, offset;
                        uint64_t cookie, ref_ctr_offset;
                } perf_event;
                uint8_t room[128];
        };
};

static const char *pid_arg;

/* loaderd attaches by /proc/self/fd/N (the file it opened, not a name): the kernel keeps that
 * name, so it is resolved through the process's own descriptor N. */
static const char *resolve(const char *path, char *buf, size_t size)
{
        char link[64];
        unsigned n;
        ssize_t k;

        if (sscanf(path, "/proc/self/fd/%u", &n) != 1)
                return path;
        snprintf(link, sizeof(link), "/proc/%s/fd/%u", pid_arg, n);
        k = readlink(link, buf, size - 1);
        if (k <= 0)
                return path;
        buf[k] = '\0';
        return buf;
}

static int show(uint32_t id)
{
        char real[4096];
        char path[4096];
        struct link_info info;
        uint32_t len = sizeof(info);
        uint64_t *offsets = NULL;
        int fd = bpf_link_get_fd_by_id(id), r = 0;

        if (fd < 0)
                return errno == ENOENT ? 0 : -errno; /* gone meanwhile */
        memset(&info, 0, sizeof(info));
        r = bpf_obj_get_info_by_fd(fd, &info, &len);
        if (r < 0) {
                r = -errno;
                goto out;
        }
        if (info.type == LINK_TYPE_PERF_EVENT) {
                if (info.perf_event.type != PERF_EVENT_UPROBE &&
                    info.perf_event.type != PERF_EVENT_URETPROBE)
                        goto out;
                memset(&info, 0, sizeof(info));
                info.perf_event.file_name = (uint64_t)(uintptr_t)path;
                info.perf_event.name_len = sizeof(path);
                len = sizeof(info);
                r = bpf_obj_get_info_by_fd(fd, &info, &len) < 0 ? -errno : 0;
                if (r >= 0)
                        printf("uprobe %s 0x%x\n", resolve(path, real, sizeof(real)),
                               info.perf_event.offset);
        } else if (info.type == LINK_TYPE_UPROBE_MULTI) {
                uint32_t count = info.uprobe_multi.count;

                offsets = calloc(count ? count : 1, sizeof(*offsets));
                if (!offsets) {
                        r = -ENOMEM;
                        goto out;
                }
                memset(&info, 0, sizeof(info));
                info.uprobe_multi.path = (uint64_t)(uintptr_t)path;
                info.uprobe_multi.path_size = sizeof(path);
                info.uprobe_multi.offsets = (uint64_t)(uintptr_t)offsets;
                info.uprobe_multi.count = count;
                len = sizeof(info);
                r = bpf_obj_get_info_by_fd(fd, &info, &len) < 0 ? -errno : 0;
                for (uint32_t i = 0; r >= 0 && i < count; i++)
                        printf("uprobe_multi %s 0x%llx\n", resolve(path, real, sizeof(real)),
                               (unsigned long long)offsets[i]);
        }
out:
        free(offsets);
        close(fd);
        return r;
}

int main(int argc, char **argv)
{
        char dir[64], name[320], line[256];
        struct dirent *de;
        DIR *d;
        int bad = 0;

        if (argc != 2) {
                fprintf(stderr, "usage: uprobe-links PID\n");
                return 2;
        }
        pid_arg = argv[1];
        snprintf(dir, sizeof(dir), "/proc/%s/fdinfo", argv[1]);
        d = opendir(dir);
        if (!d) {
                fprintf(stderr, "uprobe-links: %s: %s\n", dir, strerror(errno));
                return 1;
        }
        while ((de = readdir(d))) {
                FILE *f;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(name, sizeof(name), "%s/%s", dir, de->d_name);
                f = fopen(name, "re");
                if (!f)
                        continue;
                while (fgets(line, sizeof(line), f)) {
                        unsigned id;

                        int r;

                        if (sscanf(line, "link_id: %u", &id) == 1 && (r = show(id)) < 0) {
                                fprintf(stderr, "uprobe-links: link %u: %s\n", id,
                                        strerror(-r));
                                bad = 1;
                        }
                }
                fclose(f);
        }
        closedir(d);
        return bad;
}
