// TUN queue steering (an eBPF program, TUNSETSTEERINGEBPF) for tun.c's module.
#pragma once
#include <stdbool.h>
#include <node_api.h>

// Adds tunSteeringAttach and tunSteeringLoads to exports. False with an exception pending when napi failed.
bool steering_register(napi_env env, napi_value exports);
