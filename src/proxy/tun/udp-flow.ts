// One client flow of the UDP relay (client ip:port to destination ip:port):
// its socket or SOCKS5 association, what it holds while that opens, what the
// rules said, its byte counts and clock.
import type dgram from 'node:dgram';
import type { UdpFlowKey } from '../../stack/contracts.js';
import type { Socks5UdpAssociation } from '../socks5/udp-association.js';
import type { AdmitPending, AdmitVerdict } from './udp-session-types.js';

export class UdpFlow implements UdpFlowKey {
  socket: dgram.Socket | null = null;
  assoc: Socks5UdpAssociation | null = null;
  ready = false;
  closed = false;
  pending: Buffer[] = [];
  lastActive: number;
  up = 0;
  down = 0;
  rule = 'default';
  action = 'direct';
  /** Set while the rules wait for more of the flow; no socket yet. */
  deciding: AdmitPending | null = null;
  verdict: AdmitVerdict | null = null;
  constructor(
    readonly clientIp: number,
    readonly serverIp: number,
    readonly clientPort: number,
    readonly serverPort: number,
    readonly started: number,
  ) {
    this.lastActive = started;
  }
}
