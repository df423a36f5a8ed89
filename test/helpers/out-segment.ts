// A TCP segment to write raw (writeTcpSegment) and feed to a stack in a test:
// no options and no payload unless the test gives them.
import type { OutSegment } from '../../src/stack/contracts.js';

export function outSegment(o: Partial<OutSegment> & { data?: Buffer } = {}): OutSegment {
  const { data, ...fields } = o;
  return {
    flags: 0,
    seq: 0,
    ack: 0,
    window: 1000,
    mss: -1,
    wscale: -1,
    sackOk: false,
    tsVal: -1,
    tsEcr: 0,
    sack: new Uint32Array(8),
    sackCount: 0,
    payloadLength: data?.length ?? 0,
    copyPayload: data ? (target, off) => void data.copy(target, off) : () => {},
    ...fields,
  };
}
