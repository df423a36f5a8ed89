// The gateway's upstream TCP sockets, bound to the uplink address without taking a port (upstream-socket.c).
#pragma once
#include <stdbool.h>
#include <node_api.h>

// Adds tcpSocketNoPort to exports. False with an exception pending when napi failed.
bool upstream_socket_register(napi_env env, napi_value exports);
