// A connection's variables for a diagnostic dump (SIGUSR2 in the data plane,
// and tests): sequence numbers relative to the ISNs, timers as ms from now.
import type { Negotiated } from './negotiated.js';
import type { TcpReceiver } from './tcp-receiver.js';
import type { TcpSender } from './tcp-sender.js';

export function debugState(
  state: string,
  snd: TcpSender,
  rcv: TcpReceiver,
  neg: Negotiated,
  timers: { keepaliveAt: number; timeWaitAt: number },
  now: number,
): Record<string, number | string | boolean> {
  const cc = snd.cc;
  const rel = (x: number, base: number) => (x - base) >>> 0;
  const at = (x: number) => (x === Infinity ? -1 : Math.round(x - now));
  return {
    state,
    sndUna: rel(snd.sndUna, snd.iss),
    sndNxt: rel(snd.sndNxt, snd.iss),
    sndMax: rel(snd.sndMax, snd.iss),
    sndWnd: snd.sndWnd,
    queued: snd.queued,
    finQueued: snd.finQueued,
    rcvNxt: rel(rcv.rcvNxt, rcv.irs),
    unconsumed: rcv.unconsumed,
    ooo: rcv.ooo.count,
    oooBytes: rcv.ooo.bytes,
    cwnd: cc.cwnd,
    ssthresh: cc.ssthresh,
    dupAcks: cc.dupAcks,
    inRecovery: cc.inRecovery,
    rto: snd.rto.rto,
    backoff: snd.rto.backoff,
    retries: snd.rto.retries,
    retransmits: snd.retransmits,
    rtoIn: at(snd.rtoAt),
    ackIn: at(rcv.ackAt),
    persistIn: at(snd.persistAt),
    keepaliveIn: at(timers.keepaliveAt),
    timeWaitIn: at(timers.timeWaitAt),
    sackPerm: neg.sackPerm,
    tsOk: neg.tsOk,
    mssPeer: neg.mssPeer,
    unaccepted: rcv.holding,
  };
}
