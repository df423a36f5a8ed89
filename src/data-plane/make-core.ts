// The proxy core as the data plane builds it, the same in its own thread and
// in each stack worker: its DNS view (fake IPs, lookups, DNS over TCP) and the
// uplink its dials bind, read at each dial so they follow the network, and
// who made a connection (the data plane's OwnerResolver; a worker asks it).
import type { Logger } from '../logging/log.js';
import { ProxyCore } from '../proxy/proxy-core.js';
import type { Policy } from '../proxy/policy.js';
import type { DestinationCheck } from '../proxy/destination-check.js';
import type { OwnerLookup } from '../proxy/owner-lookup.js';
import type { DataPlaneConfig } from './config.js';
import type { DnsView } from './dns-view.js';
import type { LiveUplink } from './network-update.js';

export function makeProxyCore(
  config: DataPlaneConfig,
  policy: Policy,
  log: Logger,
  d: DnsView | null,
  destinations: DestinationCheck,
  uplink: LiveUplink,
  owners: OwnerLookup,
): ProxyCore {
  return new ProxyCore({
    log,
    connectTimeoutMs: config.connectTimeoutMs,
    policy,
    owners,
    sniffTimeoutMs: config.sniffTimeoutMs,
    httpInspect: config.httpInspect,
    destinations,
    ...(d && config.dns ? { ...d.proxy, dnsOverTcp: { address: config.dns.address, idleMs: config.dns.tcpIdleMs, answer: (q: Buffer) => d.dns.answer(q, true) } } : {}),
    get localAddress() {
      return uplink.localAddress;
    },
    get localAddress6() {
      return uplink.localAddress6;
    },
  });
}
