// The rules' say on a new UDP flow, from its first datagrams. UDP carries no
// name but QUIC's: a flow's first datagrams are read as QUIC Initial packets
// (sniff/quic-initial.ts), a readable one is decided as protocol quic with
// its SNI as the name; UDP to port 443 that is no readable QUIC Initial is
// protocol unknown, so `protocol: unknown` rules can refuse the HTTP/3 nobody
// can read (the browser falls back to TCP, where rules see it); anything else
// is plain udp. A hello spanning datagrams is waited for (the relay holds the
// flow's datagrams, bounded); a fake IP whose QUIC SNI names another host is
// refused, as its TCP connections are. A `proxy` rule's flow goes through its
// SOCKS5 upstream (UDP ASSOCIATE), a mapped name as the name, so the upstream
// resolves it as it does for TCP; an HTTP upstream cannot carry UDP (CONNECT
// is TCP only), so there the flow is refused rather than sent direct past the
// proxy the rule asked for: QUIC then falls back to TCP, which goes through it.
import type { Decision, Policy } from './policy.js';
import type { MatchInput } from './rules/rule-types.js';
import { QuicInitialReader, type QuicSniff } from './sniff/quic-initial.js';
import type { UpstreamProxy } from './upstream-proxies.js';

export interface UdpVerdict {
  rule: string;
  /** reject, direct, or proxy (through `upstream`, a SOCKS5 one). */
  action: 'reject' | 'direct' | 'proxy';
  upstream?: UpstreamProxy;
  /** The mapped name the upstream is asked for, instead of the address. */
  host?: string;
  /** For the flow's log line. */
  proto: 'quic' | 'udp' | 'unknown';
  sni?: string;
}

export interface UdpPending {
  next(payload: Buffer | null): UdpVerdict | undefined;
}

/** The flow as the rules see it before any byte: addresses, ports, and the name behind a fake IP. */
export type UdpFlowInput = Omit<MatchInput, 'protocol' | 'transport'>;

export function admitUdp(policy: Policy, flow: UdpFlowInput, payload: Buffer, onMismatch?: (mapped: string, sni: string) => void): UdpVerdict | UdpPending {
  const base: MatchInput = { ...flow, protocol: 'udp', transport: 'udp' };
  if (!policy.udpNeedsSniff(base) && flow.hostname === undefined) return decide(policy, base, 'udp', undefined);
  const reader = new QuicInitialReader();
  const step = (r: QuicSniff): UdpVerdict | undefined => {
    if (r.kind === 'need-more') return undefined;
    if (r.kind === 'quic') {
      if (flow.hostname !== undefined && r.sni !== undefined && r.sni !== flow.hostname) {
        onMismatch?.(flow.hostname, r.sni);
        return { rule: 'fake-ip', action: 'reject', proto: 'quic', sni: r.sni };
      }
      return decide(policy, { ...base, protocol: 'quic', hostname: flow.hostname ?? r.sni }, 'quic', flow.hostname, r.sni);
    }
    const unknown = r.kind === 'unreadable' || flow.dstPort === 443;
    return decide(policy, { ...base, protocol: unknown ? 'unknown' : 'udp' }, unknown ? 'unknown' : 'udp', flow.hostname);
  };
  return step(reader.push(payload)) ?? { next: (p) => step(p === null ? reader.finish() : reader.push(p)) };
}

function decide(policy: Policy, input: MatchInput, proto: UdpVerdict['proto'], mapped: string | undefined, sni?: string): UdpVerdict {
  const d = policy.decide(input);
  const v: UdpVerdict = { rule: d.rule, action: udpAction(d), proto, ...(sni !== undefined ? { sni } : {}) };
  if (v.action === 'proxy') {
    v.upstream = d.upstream;
    if (mapped !== undefined) v.host = mapped;
  }
  return v;
}

/** What a decision means for UDP: header rules are HTTP's (the flow goes direct); a proxy rule needs an upstream that carries UDP. */
export function udpAction(d: Decision): UdpVerdict['action'] {
  if (d.action === 'reject') return 'reject';
  if (d.action !== 'proxy') return 'direct';
  return d.upstream?.type === 'socks5' ? 'proxy' : 'reject';
}
