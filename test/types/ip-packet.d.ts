// ip-packet ships no types: what the wire tests use of it (an independent IPv4 encoder and decoder).
declare module 'ip-packet' {
  export interface IpPacket {
    version: number;
    ihl?: number;
    dscp?: number;
    ecn?: number;
    length?: number;
    identification?: number;
    flags?: number;
    fragmentOffset?: number;
    ttl?: number;
    protocol?: number;
    checksum?: number;
    sourceIp: string;
    destinationIp: string;
    data: Buffer;
  }
  export interface State {
    start: number;
    end: number;
    buffer: Buffer;
  }
  /** Adds the packet's length to state.end. */
  export function preencode(state: State, packet: IpPacket): void;
  export function encode(state: State, packet: IpPacket): void;
  export function decode(state: State): Required<IpPacket>;
  /** Writes the header checksum of the IPv4 header at the buffer's start, and returns it. */
  export function checksum(packet: Buffer): number;
  const ipPacket: { preencode: typeof preencode; encode: typeof encode; decode: typeof decode; checksum: typeof checksum };
  export default ipPacket;
}
