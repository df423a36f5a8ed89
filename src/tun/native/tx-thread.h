// A writer thread per TUN fd (tx-thread.c) for tun.c's module.
#pragma once
#include <stdbool.h>
#include <node_api.h>

// Adds createTxThread to exports. False with an exception pending when napi failed.
bool tx_thread_register(napi_env env, napi_value exports);
