// sock_diag for who owns a connection's client socket (src/owner/sock-diag.ts).
#pragma once
#include <node_api.h>

// sockDiagOpen([netns]) -> fd
napi_value SockDiagOpen(napi_env env, napi_callback_info info);
