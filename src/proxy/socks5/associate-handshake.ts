// The client side of a SOCKS5 UDP ASSOCIATE handshake on a connected
// socket (RFC 1928 §3, §4, §6; username/password RFC 1929 §2): method
// negotiation, authentication when the upstream has a username, then the
// request, whose reply names the relay. The `socks` library speaks CONNECT
// only, so this is ours. A SOCKS5 address (ATYP, ADDR, PORT) is written and
// read with the UDP header's codec: the same three fields follow the first
// three bytes in a request, a reply and a UDP header alike.
import type net from 'node:net';
import { parseUdpHeader, udpHeaderFor } from './udp-header.js';

export const CMD_UDP_ASSOCIATE = 3;

/** §6 REP codes, for the error message. */
const REPLIES = [
  'succeeded',
  'general SOCKS server failure',
  'connection not allowed by ruleset',
  'network unreachable',
  'host unreachable',
  'connection refused',
  'TTL expired',
  'command not supported',
  'address type not supported',
];

export class HandshakeError extends Error {
  /** The §6 reply code when the proxy answered the request with one. */
  constructor(
    message: string,
    readonly rep?: number,
  ) {
    super(message);
  }
}

export interface Credentials {
  username?: string;
  password?: string;
}

/**
 * Asks for a UDP association whose datagrams will come from `from` (§4:
 * "the address and port that the client expects to use to send UDP
 * datagrams on"). Resolves with the relay's address and port as the proxy
 * wrote them (all zeros: the proxy's own address). Leaves the socket with no
 * listener of its own.
 */
export function udpAssociate(sock: net.Socket, from: { host: string; port: number }, creds: Credentials, timeoutMs: number): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    let step: 'method' | 'auth' | 'reply' = 'method';
    const done = (err: Error | null, relay?: { host: string; port: number }) => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('close', onClose);
      sock.off('end', onClose);
      sock.off('error', onError);
      if (err) reject(err);
      else resolve(relay!);
    };
    const onClose = () => done(new HandshakeError('the proxy closed the connection during the handshake'));
    const onError = (e: Error) => done(e);
    const timer = setTimeout(() => done(new HandshakeError(`no answer within ${timeoutMs} ms (timed out)`)), timeoutMs);
    const auth = creds.username !== undefined;
    const sendRequest = () => {
      const addr = udpHeaderFor(from.host, from.port);
      addr[0] = 5;
      addr[1] = CMD_UDP_ASSOCIATE;
      addr[2] = 0;
      sock.write(addr);
      step = 'reply';
    };
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (step === 'method') {
        if (buf.length < 2) return;
        if (buf[0] !== 5) return done(new HandshakeError(`not a SOCKS5 server (version ${buf[0]})`));
        const method = buf[1];
        buf = buf.subarray(2);
        if (method === 0) return sendRequest();
        if (method === 2 && auth) {
          const u = Buffer.from(creds.username!, 'utf8');
          const p = Buffer.from(creds.password ?? '', 'utf8');
          sock.write(Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([p.length]), p]));
          step = 'auth';
          return;
        }
        return done(new HandshakeError(method === 0xff ? 'the proxy accepts none of our authentication methods' : `the proxy chose method ${method}, which we did not offer`));
      }
      if (step === 'auth') {
        if (buf.length < 2) return;
        if (buf[1] !== 0) return done(new HandshakeError('authentication failed (RFC 1929 status not 0)'));
        buf = buf.subarray(2);
        return sendRequest();
      }
      if (buf.length < 4) return;
      if (buf[0] !== 5) return done(new HandshakeError(`not a SOCKS5 reply (version ${buf[0]})`));
      if (buf[1] !== 0) return done(new HandshakeError(`UDP ASSOCIATE refused: ${REPLIES[buf[1]] ?? `reply ${buf[1]}`}`, buf[1]));
      // read the bound address as a UDP header would be read: RSV and FRAG zeroed
      const h = parseUdpHeader(Buffer.concat([Buffer.from([0, 0, 0]), buf.subarray(3)]));
      if (h === 'short') return;
      if (typeof h === 'string') return done(new HandshakeError(`a reply the proxy wrote wrong (${h})`));
      done(null, { host: h.host, port: h.port });
    };
    sock.on('data', onData);
    sock.on('close', onClose);
    sock.on('end', onClose);
    sock.on('error', onError);
    // §3: version 5, the methods we offer: none, and username/password when we have a username
    sock.write(auth ? Buffer.from([5, 2, 0, 2]) : Buffer.from([5, 1, 0]));
  });
}
