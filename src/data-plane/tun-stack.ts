// The stack on one TUN device and what sits right above it: TCP connections
// handed to the proxy core, UDP to the gateway's DNS and then the relay, the
// timers armed for the next deadline. The data plane's thread runs one; with
// --workers N each stack worker runs its own (workers/stack-worker.ts).
import { performance } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';
import type { Logger } from '../logging/log.js';
import type { TunDevice } from '../tun/tun-device.js';
import { Stack } from '../stack/stack.js';
import { Drop } from '../stack/drop-counters.js';
import { ipv4ToString, parseIpv4 } from '../net/address.js';
import { RateLimit } from '../logging/rate-limit.js';
import type { ProxyCore } from '../proxy/proxy-core.js';
import { TunInbound } from '../proxy/tun/tun-inbound.js';
import { UdpSessions } from '../proxy/tun/udp-sessions.js';
import { TunUdp } from '../proxy/tun/tun-udp.js';
import { admitUdp } from '../proxy/udp-admission.js';
import type { OwnerLookup } from '../proxy/owner-lookup.js';
import { checksumVouched, newVnetHdr, readVnetHdr, udpGsoSize } from '../stack/wire/virtio-net-hdr.js';
import type { DataPlaneConfig } from './config.js';
import type { DnsView } from './dns-view.js';
import type { LiveUplink } from './network-update.js';
import { DeadlineTimer } from './deadline-timer.js';
import { udpFlowLine } from './stop-end.js';

export function startStack(config: DataPlaneConfig, dev: TunDevice, core: ProxyCore, d: DnsView | null, log: Logger, uplink: LiveUplink, owners: OwnerLookup) {
  const errorLog = new RateLimit(10_000);
  const dnsAt = config.dns ? (config.dns.address === '*' ? -1 : parseIpv4(config.dns.address)!) : 0;
  // UDP flow keys hold IPv6 addresses as the stack's interned ids: their text comes from the stack
  let text = (ip: number) => ipv4ToString(ip);
  const hostOf = (ip: number) => {
    const t = text(ip);
    return t.includes(':') ? d?.hostnameOf6(t) : d?.hostnameOf(ip);
  };
  // The stack hands UDP up to tunUdp (the gateway's DNS, then the relay), built once the stack exists.
  let tunUdp: TunUdp | null = null;
  // the stack's timers and the UDP sweep, when due (built before the stack, which reports sooner deadlines to it)
  const timer: DeadlineTimer = new DeadlineTimer(
    () => performance.now(),
    (now) => {
      try {
        s.tick(now);
        relay.sweep(now);
      } catch (err) {
        s.drops.count(Drop.internal_error);
        if (errorLog.allow(now)) log.error({ err }, 'internal error in timers');
      }
    },
    () => Math.min(s.nextDeadline(), relay.nextSweep()),
  );
  const s = new Stack(dev, (c) => core.handle(new TunInbound(c, d ? d.hostnameOfEndpoint : undefined)), {
    ipv6: config.ipv6,
    maxConnections: config.maxConnections,
    maxHalfOpen: config.synBacklog,
    synCookies: config.synCookies,
    memoryBudget: config.memoryBudgetMb * 1024 * 1024,
    tcp: { rcvBuf: config.tcpRcvBuf, sndBuf: config.tcpSndBuf },
    clock: () => performance.now(),
    onSooner: (at) => timer.sooner(at),
    udp: { onDatagram: (k, b, o, l, now) => tunUdp!.onDatagram(k, b, o, l, now) },
  });
  text = (ip: number) => s.addressText(ip);
  const relay = new UdpSessions(
    s,
    {
      idleMs: config.udpIdleMs,
      maxFlows: config.maxUdpFlows,
      blockQuic: config.blockQuic,
      connectTimeoutMs: config.connectTimeoutMs,
      // null (no uplink of that family): its flows are rejected in admit below; both follow the network (network-update.ts)
      ...(config.localAddress ? { localAddress: config.localAddress } : {}),
      ...(config.localAddress6 ? { localAddress6: config.localAddress6 } : {}),
      ...(d ? { resolveTarget: d.resolveTarget } : {}),
      // direct, refused, or through a proxy rule's SOCKS5 upstream (UDP ASSOCIATE);
      // a QUIC Initial's SNI is its name, the client socket's owner is looked up when a rule reads it (src/proxy/udp-admission.ts)
      admit: (f, payload) => {
        // no uplink of the flow's family while everything goes into the TUN: an unbound socket would send into our own TUN (a loop)
        const v6 = text(f.serverIp).includes(':');
        if (v6 ? uplink.localAddress6 === null : uplink.localAddress === null) return { rule: v6 ? 'no IPv6 uplink' : 'no uplink', action: 'reject' };
        const flow = { hostname: hostOf(f.serverIp), dstAddress: text(f.serverIp), dstPort: f.serverPort, srcAddress: text(f.clientIp), srcPort: f.clientPort };
        // the rules in force when the flow starts (a reload swaps them for the next flow)
        return admitUdp(
          core.policy,
          flow,
          payload,
          (mapped, sni) => log.warn({ dst: `${flow.dstAddress}:${flow.dstPort}`, mapped, sni }, 'fake IP names another host: QUIC refused'),
          owners,
        );
      },
    },
    (e) => {
      d?.proxy.fakeAddressUsed(e.dst.slice(0, e.dst.lastIndexOf(':')).replace(/^\[|\]$/g, ''));
      log.info(udpFlowLine('tun', e), 'conn');
    },
  );
  const udp = (tunUdp = new TunUdp(s, d ? { address: dnsAt, answer: (q: Buffer) => d.dns.answer(q) } : null, relay));
  // With offloads (IFF_VNET_HDR) each packet starts with a virtio-net header; ours get one too (stack-output.ts: partial checksums, TSO)
  const hdrLen = dev.offload?.vnetHdrLen ?? 0;
  const vh = newVnetHdr();
  dev.start((batch) => {
    const now = performance.now();
    try {
      if (hdrLen === 0) for (let i = 0; i < batch.count; i++) s.input(batch.slots[i], 0, batch.lengths[i], now);
      else
        for (let i = 0; i < batch.count; i++) {
          const b = batch.slots[i];
          const n = batch.lengths[i];
          if (!readVnetHdr(b, 0, n, vh)) continue;
          // a UDP GSO packet (USO) goes up as its datagrams
          s.input(b, hdrLen, n - hdrLen, now, checksumVouched(vh), udpGsoSize(vh, n - hdrLen));
        }
      s.tick(now);
      relay.sweep(now);
    } catch (err) {
      // One guard per batch: a bug costs the rest of this batch, never the gateway.
      s.drops.count(Drop.internal_error);
      if (errorLog.allow(now)) log.error({ err }, 'internal error in packet input');
    }
    timer.arm();
  });
  // kill -USR2 PID: every connection's sequence space, windows and timers, one warn line each
  // (a worker gets no signals: the data plane's thread asks it, workers/stack-worker.ts)
  if (isMainThread)
    process.on('SIGUSR2', () => {
      for (const f of s.debugFlows()) log.warn(f, 'tcp debug');
    });

  return { stack: s, udp, relay, timer };
}

/** The stack's liveness check for an IPv6 address, where the stack has one (IPv6 stacks). */
export function hasFlowsTo6(stack: Stack | null, address: string): boolean {
  const s = stack as (Stack & { hasFlowsToAddress?: (a: string) => boolean }) | null;
  return s?.hasFlowsToAddress?.(address) ?? false;
}
