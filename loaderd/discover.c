/*
 * Finding the files to probe: at start every process's executable and executable mappings
 * (through /proc/PID/map_files, so containers and deleted files work), plus the libssl files in
 * the usual library folders so that processes started later are covered before they map them;
 * later, the processes the kernel reports through exec and executable-mmap records.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "loaderd.h"

static int offer_path(struct loaderd *l, const char *open_path, const char *name, pid_t pid,
                      uint8_t kind, bool initial)
{
        struct stat st;
        int fd;

        fd = open(open_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return -EBADF;
        }
        if (loaderd_knows_file(l, st.st_dev, st.st_ino)) {
                close(fd);
                return 0;
        }
        return loaderd_offer_file(l, fd, name, pid, kind, initial);
}

bool maps_exec_line(char *line, struct maps_entry *ret)
{
        unsigned long long start, end, off, ino;
        unsigned maj, min;
        char perms[8];
        int name_at = 0;

        if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu %n", &start, &end, perms, &off, &maj,
                   &min, &ino, &name_at) < 7 || perms[2] != 'x' || ino == 0)
                return false;
        *ret = (struct maps_entry){ .start = start, .end = end, .dev = makedev(maj, min),
                                    .ino = ino, .name = name_at ? line + name_at : "" };
        line[strcspn(line, "\n")] = '\0';
        return true;
}

int discover_pid(struct loaderd *l, pid_t pid, bool maps)
{
        char path[64], line[4096];
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
        {
                char target[MSG_PATH_MAX];
                ssize_t n = readlink(path, target, sizeof(target) - 1);

                if (n > 0) {
                        target[n] = '\0';
                        (void)offer_path(l, path, target, pid, MSG_FILE_EXECUTABLE, !l->ready);
                }
        }
        if (!maps)
                return 0;

        snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                struct maps_entry e;
                char fpath[64];
                const char *name;

                if (!maps_exec_line(line, &e) || e.name[0] != '/')
                        continue;
                name = e.name;
                /* The maps line has the kernel's view of the file: skip known ones unopened. */
                if (loaderd_knows_file(l, e.dev, e.ino))
                        continue;
                snprintf(fpath, sizeof(fpath), "/proc/%d/map_files/%llx-%llx", (int)pid,
                         (unsigned long long)e.start, (unsigned long long)e.end);
                if (offer_path(l, fpath, name, pid, MSG_FILE_LIBRARY, !l->ready) < 0) {
                        char rpath[MSG_PATH_MAX + 32];

                        snprintf(rpath, sizeof(rpath), "/proc/%d/root%s", (int)pid, name);
                        (void)offer_path(l, rpath, name, pid, MSG_FILE_LIBRARY, !l->ready);
                }
        }
        fclose(f);
        return 0;
}

pid_t proc_next_pid(DIR *proc)
{
        struct dirent *de;

        while ((de = readdir(proc))) {
                unsigned long long pid;

                if (parse_u64(de->d_name, 1, INT32_MAX, &pid) == 0)
                        return (pid_t)pid;
        }
        return 0;
}

int discover_all(struct loaderd *l)
{
        DIR *d = opendir("/proc");
        pid_t pid;

        if (!d)
                return -errno;
        while ((pid = proc_next_pid(d)) > 0)
                if (pid != getpid())
                        (void)discover_pid(l, pid, true);
        closedir(d);
        return 0;
}

int discover_library_dirs(struct loaderd *l)
{
        static const char *const dirs[] = {
                "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
                "/lib/aarch64-linux-gnu",    "/usr/lib64",            "/lib64",
                "/usr/lib",                  "/usr/local/lib",        "/usr/local/lib64",
        };

        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                DIR *d = opendir(dirs[i]);
                struct dirent *de;

                if (!d)
                        continue;
                while ((de = readdir(d))) {
                        char p[MSG_PATH_MAX];

                        if (strncmp(de->d_name, "libssl.so", 9) != 0)
                                continue;
                        snprintf(p, sizeof(p), "%s/%s", dirs[i], de->d_name);
                        (void)offer_path(l, p, p, 0, MSG_FILE_LIBRARY, true);
                }
                closedir(d);
        }
        return 0;
}
