// The network namespace is per thread: this (JS) thread enters the target,
// makes the fd there, and comes back before any JS runs again. An fd made
// there stays bound to that namespace (a TUN device, a netlink socket).
#define _GNU_SOURCE
#include "netns.h"

#ifdef __linux__
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

int in_netns(const char* path, int (*fn)(void* arg, const char** syscall), void* arg, const char** syscall) {
  int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home < 0) {
    *syscall = "open(/proc/thread-self/ns/net)";
    return errno;
  }
  int target = open(path, O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    int e = errno;
    close(home);
    *syscall = "open(netns)";
    return e;
  }
  int err = 0;
  if (setns(target, CLONE_NEWNET) < 0) {
    err = errno;
    *syscall = "setns";
  } else {
    err = fn(arg, syscall);
    if (setns(home, CLONE_NEWNET) < 0) abort(); // cannot go home: nothing after this would be safe
  }
  close(target);
  close(home);
  return err;
}
#endif
