// TCP options (RFC 9293 §3.2, RFC 7323, RFC 2018) parsed into a Segment.
// Malformed options give a drop reason; unknown ones are skipped by length.
import { Drop } from '../drop-counters.js';
import type { Segment } from '../contracts.js';
import type { TcpView } from './tcp-view.js';

/** A Segment to be filled by fillSegment, again and again (one per reader: nothing is allocated per packet). */
export function newSegment(): Segment {
  return {
    seq: 0,
    ack: 0,
    flags: 0,
    window: 0,
    mss: -1,
    wscale: -1,
    sackOk: false,
    tsVal: -1,
    tsEcr: 0,
    sack: new Uint32Array(8),
    sackCount: 0,
    payload: Buffer.alloc(0),
    payloadOffset: 0,
    payloadLength: 0,
  };
}

export function fillSegment(v: TcpView, s: Segment): number {
  const b = v.b;
  const o = v.o;
  s.seq = v.seq;
  s.ack = v.ack;
  s.flags = v.flags;
  s.window = v.window;
  s.mss = -1;
  s.wscale = -1;
  s.sackOk = false;
  s.tsVal = -1;
  s.tsEcr = 0;
  s.sackCount = 0;
  const hl = v.headerLength;
  s.payload = b;
  s.payloadOffset = o + hl;
  s.payloadLength = v.n - hl;
  let i = o + 20;
  const end = o + hl;
  while (i < end) {
    const kind = b[i];
    if (kind === 0) break; // EOL
    if (kind === 1) {
      i++;
      continue;
    }
    if (i + 1 >= end) return Drop.tcp_bad_option;
    const l = b[i + 1];
    if (l < 2 || i + l > end) return Drop.tcp_bad_option;
    switch (kind) {
      case 2:
        if (l !== 4) return Drop.tcp_bad_option;
        s.mss = (b[i + 2] << 8) | b[i + 3];
        break;
      case 3:
        if (l !== 3) return Drop.tcp_bad_option;
        s.wscale = Math.min(b[i + 2], 14); // RFC 7323 §2.3
        break;
      case 4:
        if (l !== 2) return Drop.tcp_bad_option;
        s.sackOk = true;
        break;
      case 5: {
        if ((l - 2) % 8 !== 0) return Drop.tcp_bad_option;
        const n = Math.min((l - 2) >> 3, 4);
        for (let k = 0; k < n; k++) {
          s.sack[2 * k] = b.readUInt32BE(i + 2 + 8 * k);
          s.sack[2 * k + 1] = b.readUInt32BE(i + 6 + 8 * k);
        }
        s.sackCount = n;
        break;
      }
      case 8:
        if (l !== 10) return Drop.tcp_bad_option;
        s.tsVal = b.readUInt32BE(i + 2);
        s.tsEcr = b.readUInt32BE(i + 6);
        break;
    }
    i += l;
  }
  return 0;
}
