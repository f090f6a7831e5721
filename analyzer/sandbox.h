/*
 * The analyzer's seccomp filter, installed once its own files are open: it may read and write
 * the descriptors it has or is handed, use memory, time and signals, answer the control socket
 * and log; it may not open files (openat fails with EACCES) and any other system call fails
 * with EPERM instead of running. Within what it may call: AF_UNIX sockets only, no ioctl but
 * isatty's, and nothing that rewrites what is already in its output (see sandbox.c). Not installed in sanitizer builds (ASan's leak checker needs
 * ptrace and /proc) or on architectures without a filter here.
 */
#pragma once

/* 0, -EOPNOTSUPP when this build has no filter, or a negative errno from prctl. */
int sandbox_apply(void);
