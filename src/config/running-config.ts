// The config the gateway runs with, as the control API shows it (GET
// /configs): the settings in the config file's own names, flags already
// applied, and every secret redacted. Secret values never enter it (the
// file cannot hold them); where they come from (a variable, a file) is
// redacted too, so an answer tells nothing a secret could be found by.
import type { GatewaySettings } from './settings.js';

export const REDACTED = '[redacted]';

export type RunningConfig = Record<string, unknown>;

const SECRET_SOURCES = ['value_env', 'value_file', 'password_env', 'password_file', 'secret_env', 'secret_file'];

/** A copy with every secret source replaced by REDACTED. */
export function redactSecrets<T>(v: T): T {
  if (Array.isArray(v)) return v.map(redactSecrets) as T;
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, SECRET_SOURCES.includes(k) ? REDACTED : redactSecrets(x)])) as T;
}

const hostPort = (a: { host: string; port: number } | undefined) => (a ? `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}` : undefined);

export function runningConfig(s: GatewaySettings): RunningConfig {
  const c = s.config;
  return {
    mode: s.mode,
    ...(s.mode === 'redirect' || s.mode === 'tproxy'
      ? { intercept_port: s.interceptPort }
      : { tun: { name: s.tunName, mtu: s.mtu, address: s.tunAddress, address6: s.tunAddress6, backend: s.tunBackend, workers: s.workers } }),
    hosts: s.hosts,
    exclude: s.excludes,
    fake_pool: s.fakePool,
    fake_pool6: s.fakePool6,
    fake_ip_hold_ms: s.fakeIpHoldMs,
    ipv6: s.ipv6,
    dns_hijack: s.dnsHijack,
    block_quic: s.blockQuic,
    state_dir: s.stateDir,
    upstreams: redactSecrets(c.upstreams ?? {}),
    rules: redactSecrets(c.rules ?? []),
    sniff: { timeout_ms: s.sniffTimeoutMs, http_inspect: s.httpInspect },
    limits: {
      max_connections: s.maxConnections,
      syn_backlog: s.synBacklog,
      syn_cookies: s.synCookies,
      connect_timeout_ms: s.connectTimeoutMs,
      tcp_rcvbuf: s.tcpRcvBuf,
      tcp_sndbuf: s.tcpSndBuf,
      max_udp_flows: s.maxUdpFlows,
      memory_budget_mb: s.memoryBudgetMb,
      udp_idle_timeout_ms: s.udpIdleMs,
      dns_tcp_idle_timeout_ms: s.dnsTcpIdleMs,
    },
    logging: { level: s.logLevel },
    ...(s.listen ? { listen: hostPort(s.listen) } : {}),
    ...(s.metrics ? { metrics: hostPort(s.metrics) } : {}),
    ...(s.control ? { control: { address: hostPort(s.control), ...(s.control.secret ? { secret: REDACTED } : {}) } } : {}),
    restart: s.restart,
  };
}
