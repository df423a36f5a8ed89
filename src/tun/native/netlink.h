// rtnetlink for the gateway's network watcher (src/routing/network-watcher.ts).
#pragma once
#include <node_api.h>

// netlinkOpen(groups[, netns]) -> fd
napi_value NetlinkOpen(napi_env env, napi_callback_info info);
