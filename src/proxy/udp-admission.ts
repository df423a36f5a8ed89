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
// Who sent the flow: when a rule that reads the owner (`user`, `process`)
// could match the flow, its client socket is looked up (OwnerLookup, by the
// flow's source) once the datagrams said what they are, and the verdict waits
// for the answer: the relay holds the flow's datagrams meanwhile, as for a
// QUIC hello, and the answer decides it by itself (`later`). The relay bounds
// the wait (3 s from the first datagram): `next(null)` then decides with no owner.
import type { Endpoint } from '../net/endpoint.js';
import type { OwnerAnswer, OwnerLookup } from './owner-lookup.js';
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
  /** Who sent the flow, when a rule needed to know (the log line's owner fields). */
  owner?: OwnerAnswer;
}

export interface UdpPending {
  /** The flow's next datagram (a view, valid during the call), or null: decide now, on what came (the hold is full, or the time is up). */
  next(payload: Buffer | null): UdpVerdict | undefined;
  /**
   * True while the verdict waits for an answer (the flow's owner), not for
   * more datagrams: a full hold then drops what comes rather than deciding
   * without the owner; only the time bound (`next(null)`) cuts the wait short.
   */
  readonly awaiting?: boolean;
  /** Where a verdict that comes by itself (the owner's answer) goes, at most once, never during this call; register it as soon as admitUdp returns. */
  later?(onVerdict: (v: UdpVerdict) => void): void;
}

/** The flow as the rules see it before any byte: addresses, ports, and the name behind a fake IP. */
export type UdpFlowInput = Omit<MatchInput, 'protocol' | 'transport'>;

export const OWNER_TIMED_OUT = 'the owner lookup did not answer in time';

/** What the datagrams said, ready for the rules (a fake-IP mismatch is a verdict already). */
interface Read {
  input: MatchInput;
  proto: UdpVerdict['proto'];
  mapped: string | undefined;
  sni?: string;
}

export function admitUdp(policy: Policy, flow: UdpFlowInput, payload: Buffer, onMismatch?: (mapped: string, sni: string) => void, owners?: OwnerLookup): UdpVerdict | UdpPending {
  const base: MatchInput = { ...flow, protocol: 'udp', transport: 'udp' };
  const admission = new Admission(policy, flow, owners);
  if (!policy.udpNeedsSniff(base) && flow.hostname === undefined) return admission.read({ input: base, proto: 'udp', mapped: undefined }) ?? admission;
  const first = sniffFirst(flow, base, payload, onMismatch);
  if ('next' in first) return admission.sniffing(first);
  return 'input' in first ? (admission.read(first) ?? admission) : first;
}

type Sniffing = { next(p: Buffer | null): Read | UdpVerdict | undefined };

/** The QUIC reading of the first datagrams: what they are, or a verdict (a fake IP's hello for another name), or a reader wanting more. */
function sniffFirst(flow: UdpFlowInput, base: MatchInput, payload: Buffer, onMismatch?: (mapped: string, sni: string) => void): Read | UdpVerdict | Sniffing {
  const reader = new QuicInitialReader();
  const step = (r: QuicSniff): Read | UdpVerdict | undefined => {
    if (r.kind === 'need-more') return undefined;
    if (r.kind === 'quic') {
      if (flow.hostname !== undefined && r.sni !== undefined && r.sni !== flow.hostname) {
        onMismatch?.(flow.hostname, r.sni);
        return { rule: 'fake-ip', action: 'reject', proto: 'quic', sni: r.sni };
      }
      return { input: { ...base, protocol: 'quic', hostname: flow.hostname ?? r.sni }, proto: 'quic', mapped: flow.hostname, ...(r.sni !== undefined ? { sni: r.sni } : {}) };
    }
    const unknown = r.kind === 'unreadable' || flow.dstPort === 443;
    return { input: { ...base, protocol: unknown ? 'unknown' : 'udp' }, proto: unknown ? 'unknown' : 'udp', mapped: flow.hostname };
  };
  return step(reader.push(payload)) ?? { next: (p) => step(p === null ? reader.finish() : reader.push(p)) };
}

/** A flow not decided yet: its datagrams are still being read, or its owner is being looked up. */
class Admission implements UdpPending {
  private sniff: Sniffing | null = null;
  /** Set while the owner is looked up. */
  private owed: Read | null = null;
  private done = false;
  private onVerdict: ((v: UdpVerdict) => void) | null = null;

  constructor(
    private readonly policy: Policy,
    private readonly flow: UdpFlowInput,
    private readonly owners: OwnerLookup | undefined,
  ) {}

  get awaiting(): boolean {
    return this.owed !== null;
  }

  later(onVerdict: (v: UdpVerdict) => void): void {
    this.onVerdict = onVerdict;
  }

  sniffing(s: Sniffing): this {
    this.sniff = s;
    return this;
  }

  next(payload: Buffer | null): UdpVerdict | undefined {
    if (this.done) return undefined;
    if (this.owed) {
      if (payload !== null) return undefined;
      // the wait is bounded by the relay's admission time: past it, the flow has no owner
      return this.decide(this.owed, { owner: null, why: OWNER_TIMED_OUT });
    }
    const r = this.sniff?.next(payload);
    if (r === undefined) return undefined;
    this.sniff = null;
    return 'input' in r ? this.read(r) : this.finish(r);
  }

  /** The datagrams said what the flow is: decided now, unless the owner could change the verdict (then it is looked up). */
  read(r: Read): UdpVerdict | undefined {
    const need = this.policy.ownerNeed(r.input);
    if (need === 0) return this.finish(decide(this.policy, r));
    if (!this.owners) return this.decide(r, { owner: null, why: 'owner lookups are off here' });
    this.owed = r;
    const { flow } = this;
    const family = flow.srcAddress.includes(':') ? 6 : 4;
    const src: Endpoint = { family, address: flow.srcAddress, port: flow.srcPort ?? 0 };
    const dst: Endpoint = { family, address: flow.dstAddress, port: flow.dstPort };
    this.owners.lookup('udp', src, dst, need === 2 ? 2 : 1).then(
      (a) => this.answered(r, a),
      (e: Error) => this.answered(r, { owner: null, why: `lookup failed: ${e.message}` }),
    );
    return undefined;
  }

  private answered(r: Read, a: OwnerAnswer): void {
    if (this.done || this.owed !== r) return; // decided without it meanwhile (timed out)
    const v = this.decide(r, a);
    this.onVerdict?.(v);
  }

  private decide(r: Read, owner: OwnerAnswer): UdpVerdict {
    return this.finish({ ...decide(this.policy, { ...r, input: { ...r.input, owner: owner.owner } }), owner });
  }

  private finish(v: UdpVerdict): UdpVerdict {
    this.done = true;
    this.owed = null;
    return v;
  }
}

function decide(policy: Policy, r: Read): UdpVerdict {
  const d = policy.decide(r.input);
  const v: UdpVerdict = { rule: d.rule, action: udpAction(d), proto: r.proto, ...(r.sni !== undefined ? { sni: r.sni } : {}) };
  if (v.action === 'proxy') {
    v.upstream = d.upstream;
    if (r.mapped !== undefined) v.host = r.mapped;
  }
  return v;
}

/** What a decision means for UDP: header rules are HTTP's (the flow goes direct); a proxy rule needs an upstream that carries UDP. */
export function udpAction(d: Decision): UdpVerdict['action'] {
  if (d.action === 'reject') return 'reject';
  if (d.action !== 'proxy') return 'direct';
  return d.upstream?.type === 'socks5' ? 'proxy' : 'reject';
}
