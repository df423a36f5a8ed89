// The server side of SOCKS5 (RFC 1928) for the explicit-proxy inbound: no
// authentication (the listener is on loopback), CONNECT only. Reads exactly
// the handshake bytes and leaves whatever follows in the socket.
import type net from 'node:net';
import { ipv4ToString } from '../net/address.js';

export const SOCKS_REPLY = {
  succeeded: 0,
  failure: 1,
  notAllowed: 2,
  hostUnreachable: 4,
  refused: 5,
  commandNotSupported: 7,
  addressNotSupported: 8,
} as const;

export function socksReply(code: number): Buffer {
  // the bound address is not meaningful for a proxy that re-originates: zeros
  return Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
}

/** What a complete handshake prefix yields, or 'more' while bytes are missing. */
type Step<T> = { done: T; used: number } | 'more' | { error: number };

function greeting(b: Buffer): Step<boolean> {
  if (b.length < 2) return 'more';
  if (b[0] !== 5) return { error: SOCKS_REPLY.failure };
  const n = b[1];
  if (b.length < 2 + n) return 'more';
  return { done: b.subarray(2, 2 + n).includes(0), used: 2 + n };
}

function request(b: Buffer): Step<{ host: string; port: number }> {
  if (b.length < 5) return 'more';
  if (b[0] !== 5) return { error: SOCKS_REPLY.failure };
  if (b[1] !== 1) return { error: SOCKS_REPLY.commandNotSupported };
  let host: string;
  let at: number;
  switch (b[3]) {
    case 1:
      if (b.length < 10) return 'more';
      host = ipv4ToString(b.readUInt32BE(4));
      at = 8;
      break;
    case 3: {
      const n = b[4];
      if (b.length < 5 + n + 2) return 'more';
      host = b.toString('latin1', 5, 5 + n).toLowerCase();
      if (n === 0 || !/^[a-z0-9_.-]+$/.test(host)) return { error: SOCKS_REPLY.addressNotSupported };
      at = 5 + n;
      break;
    }
    case 4: {
      if (b.length < 22) return 'more';
      const parts: string[] = [];
      for (let i = 0; i < 8; i++) parts.push(b.readUInt16BE(4 + 2 * i).toString(16));
      // the URL parser prints the standard compressed form (RFC 5952)
      host = new URL(`http://[${parts.join(':')}]/`).hostname.slice(1, -1);
      at = 20;
      break;
    }
    default:
      return { error: SOCKS_REPLY.addressNotSupported };
  }
  return { done: { host, port: b.readUInt16BE(at) }, used: at + 2 };
}

/**
 * Runs the handshake; resolves with the CONNECT target, or null after
 * answering a request it cannot serve (the socket is then ended).
 */
export function readSocks5Request(socket: net.Socket): Promise<{ host: string; port: number } | null> {
  return new Promise((resolve) => {
    let buf: Buffer = Buffer.alloc(0);
    let stage: 'greeting' | 'request' = 'greeting';
    const stop = (value: { host: string; port: number } | null, rest?: Buffer) => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.pause();
      if (rest && rest.length) socket.unshift(rest);
      resolve(value);
    };
    const onEnd = () => stop(null);
    const fail = () => {
      stop(null);
      socket.destroy();
    };
    const onData = (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      if (buf.length > 600) return fail();
      if (stage === 'greeting') {
        const g = greeting(buf);
        if (g === 'more') return;
        if ('error' in g) return fail();
        if (!g.done) {
          socket.end(Buffer.from([5, 0xff]));
          return stop(null);
        }
        socket.write(Buffer.from([5, 0]));
        buf = buf.subarray(g.used);
        stage = 'request';
      }
      const r = request(buf);
      if (r === 'more') return;
      if ('error' in r) {
        socket.end(socksReply(r.error));
        return stop(null);
      }
      stop(r.done, buf.subarray(r.used));
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
  });
}
