// TUN offloads (virtio-net header, checksum and segmentation offload) for tun.c's module.
#pragma once
#include <stdbool.h>
#include <node_api.h>

// Adds tunFlags, tunSetVnetHdrSize, tunSetOffload and the TUN_F_* constants to exports.
// False with an exception pending when napi failed.
bool offload_register(napi_env env, napi_value exports);
