{
  "targets": [
    {
      "target_name": "tunsteer_tun",
      "sources": ["src/tun/native/tun.c", "src/tun/native/errno-error.c", "src/tun/native/netlink.c", "src/tun/native/netns.c", "src/tun/native/sock_diag.c", "src/tun/native/offload.c", "src/tun/native/steering.c", "src/tun/native/napi-args.c", "src/tun/native/tun-write.c", "src/tun/native/tx-thread.c", "src/tun/native/upstream-socket.c"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-pthread"],
      "ldflags": ["-pthread"],
      "cflags_c": ["-std=gnu11"]
    }
  ]
}
