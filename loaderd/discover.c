/*
 * Finding the files to probe: at start every process's executable and executable mappings
 * (through /proc/PID/map_files, so containers and deleted files work), plus the libssl files in
 * the usual library folders so that processes started later are covered before they map them;
 * later, the processes the kernel reports through exec and executable-mmap records.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "loaderd.h"

/* Flags of every open done here: a FIFO or a device cannot make root wait, nor become the
 * controlling terminal. */
#define OFFER_OPEN_FLAGS (O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)

/*
 * Offers the file open in fd (taken; a negative errno passes through) under name: a regular
 * file only, and when want is given
 * the very file the kernel's maps entry names (its dev and ino), not whatever a name leads to.
 */
static int offer_fd(struct loaderd *l, int fd, const char *name, pid_t pid, uint8_t kind,
                    bool initial, const struct maps_entry *want)
{
        struct stat st;

        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return -EBADF;
        }
        if (want && (st.st_dev != want->dev || st.st_ino != want->ino)) {
                close(fd);
                return -ESTALE;
        }
        if (loaderd_knows_file(l, st.st_dev, st.st_ino)) {
                close(fd);
                return 0;
        }
        return loaderd_offer_file(l, fd, name, pid, kind, initial);
}

static int offer_path(struct loaderd *l, const char *open_path, const char *name, pid_t pid,
                      uint8_t kind, bool initial, const struct maps_entry *want)
{
        int fd = open(open_path, OFFER_OPEN_FLAGS);

        return offer_fd(l, fd < 0 ? -errno : fd, name, pid, kind, initial, want);
}

/*
 * name (a path a process chose) inside the process's root, as root would find it, but never
 * through a symlink (nor /proc's magic links) and never outside that root: a name planted to
 * lead to /etc/shadow or a FIFO gets nothing. -errno.
 */
static int open_in_root(pid_t pid, const char *name)
{
        struct open_how how = {
                .flags = OFFER_OPEN_FLAGS,
                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        char root[64];
        _cleanup_close_ int rfd = -1;
        int fd;

        snprintf(root, sizeof(root), "/proc/%d/root", (int)pid);
        rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rfd < 0)
                return -errno;
        fd = (int)syscall(SYS_openat2, rfd, name, &how, sizeof(how));
        return fd < 0 ? -errno : fd;
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
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        char path[64];
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
        {
                char target[MSG_PATH_MAX];
                ssize_t n = readlink(path, target, sizeof(target) - 1);

                if (n > 0) {
                        target[n] = '\0';
                        (void)offer_path(l, path, target, pid, MSG_FILE_EXECUTABLE, !l->ready,
                                         NULL);
                }
        }
        if (!maps)
                return 0;

        snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        /* Whole lines, however long the name in them (getline): a name cut at a fixed
         * buffer would let its owner write the rest as a line of its own. */
        while (getline(&line, &cap, f) > 0) {
                struct maps_entry e;
                char fpath[64];
                int r;

                if (!maps_exec_line(line, &e) || e.name[0] != '/')
                        continue;
                /* The maps line has the kernel's view of the file: skip known ones unopened. */
                if (loaderd_knows_file(l, e.dev, e.ino))
                        continue;
                /* The mapping itself: the kernel's file, whatever its name says (not compared
                 * with the line's dev and ino: on overlayfs the mapped file is the layer's). */
                snprintf(fpath, sizeof(fpath), "/proc/%d/map_files/%llx-%llx", (int)pid,
                         (unsigned long long)e.start, (unsigned long long)e.end);
                r = offer_path(l, fpath, e.name, pid, MSG_FILE_LIBRARY, !l->ready, NULL);
                if (r < 0)
                        /* No map_files (another user namespace): the name, inside the
                         * process's root, without symlinks, and only if it is the file the
                         * line names (dev and ino). */
                        r = offer_fd(l, open_in_root(pid, e.name), e.name, pid,
                                     MSG_FILE_LIBRARY, !l->ready, &e);
                if (r == -ESTALE)
                        loaderd_odd_name(l, pid, e.name);
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
                        (void)offer_path(l, p, p, 0, MSG_FILE_LIBRARY, true, NULL);
                }
                closedir(d);
        }
        return 0;
}
