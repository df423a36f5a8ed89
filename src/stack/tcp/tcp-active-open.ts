// The active opener's side of the handshake (RFC 9293 §3.10.7.3, SYN-SENT):
// only simulations and tests open connections from this stack, so it sits
// apart from the connection's state machine, which hands it its parts and
// what to do for each outcome.
import { ACK, RST, SYN, type Segment } from '../contracts.js';
import { seqGt, seqLe } from '../seq.js';
import type { Negotiated } from './negotiated.js';
import type { TcpReceiver } from './tcp-receiver.js';
import type { TcpSender } from './tcp-sender.js';
import type { TcpTransmitter } from './tcp-transmitter.js';

export interface SynSentOutcomes {
  /** an acceptable RST: the connection is refused */
  reset(): void;
  /** SYN-ACK: established; the ACK, the open event and any queued data follow */
  established(): void;
  /** a bare SYN (simultaneous open, §3.5): answer with a SYN-ACK */
  simultaneous(): void;
}

/** One segment arriving in SYN-SENT. */
export function receiveSynSent(seg: Segment, snd: TcpSender, rcv: TcpReceiver, neg: Negotiated, tx: TcpTransmitter, on: SynSentOutcomes): void {
  const f = seg.flags;
  if (f & ACK && (seqLe(seg.ack, snd.iss) || seqGt(seg.ack, snd.sndNxt))) {
    if (!(f & RST)) tx.rst(seg.ack, 0, RST);
    return;
  }
  if (f & RST) {
    if (f & ACK) on.reset();
    return;
  }
  if (!(f & SYN)) return;
  neg.takeSyn(seg);
  rcv.start(seg.seq);
  snd.cc.start(neg.effMss);
  if (f & ACK) {
    snd.synAckReceived(seg);
    on.established();
  } else {
    on.simultaneous();
  }
}
