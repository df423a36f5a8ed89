// Running one syscall inside another network namespace, for tun.c and netlink.c.
#pragma once

// Enters the namespace at path (a file such as /proc/PID/ns/net) on this
// thread, runs fn(arg), and comes back. Returns errno on failure (syscall
// names the one that failed), else what fn returned.
int in_netns(const char* path, int (*fn)(void* arg, const char** syscall), void* arg, const char** syscall);
