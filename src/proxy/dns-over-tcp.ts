// DNS over TCP (RFC 1035 §4.2.2, RFC 7766): two-byte length, message, repeated.
// Serves the gateway's own DNS to clients that retry over TCP after a
// truncated UDP answer. Bounded: a message is at most 65535 bytes by framing,
// and a connection with no query in flight for idleMs is closed (RFC 7766
// §6.2.3: an idle period "of the order of seconds"), so idle clients cannot
// hold the gateway's connections (and its --max-connections) forever.
import type { Duplex } from 'node:stream';
import { resetStream } from './connection-registry.js';

/** The default idle period: BIND's and Unbound's (30 s). */
export const DNS_TCP_IDLE_MS = 30_000;

/**
 * Answers each framed query in order. Resolves with how it ended: 'closed',
 * 'client-reset', or 'idle-timeout' (no query in flight for idleMs: the
 * gateway sent its FIN, RFC 7766 §6.2.3; a client that does not close in turn
 * within another idleMs is reset).
 */
export function serveDnsOverTcp(stream: Duplex, answer: (q: Buffer) => Promise<Buffer | null>, idleMs = DNS_TCP_IDLE_MS): Promise<string> {
  return new Promise((resolve) => {
    let acc = Buffer.alloc(0);
    let busy = Promise.resolve();
    /** Queries read and not yet answered: while there are any, the connection is not idle. */
    let inFlight = 0;
    let idled = false;
    let done = false;
    // one timer per connection, re-armed (refresh) at each query and answer: nothing runs while none is due
    const idle = setTimeout(() => {
      if (inFlight > 0) return void idle.refresh();
      if (idled) return resetStream(stream); // our FIN went unanswered for another idle period
      idled = true;
      stream.end();
      idle.refresh();
    }, idleMs);
    idle.unref();
    // a cleared timer that is refreshed runs again: an answer that lands after the close must not re-arm it
    const rearm = () => void (done || idle.refresh());
    stream.on('data', (d: Buffer) => {
      acc = Buffer.concat([acc, d]);
      while (acc.length >= 2 && acc.length >= 2 + acc.readUInt16BE(0)) {
        const q = acc.subarray(2, 2 + acc.readUInt16BE(0));
        acc = acc.subarray(2 + q.length);
        inFlight++;
        rearm();
        busy = busy.then(async () => {
          const r = await answer(Buffer.from(q)).catch(() => null);
          inFlight--;
          rearm();
          if (!r || stream.destroyed) return;
          const len = Buffer.alloc(2);
          len.writeUInt16BE(r.length);
          stream.write(Buffer.concat([len, r]));
        });
      }
    });
    stream.on('end', () => void busy.then(() => stream.end()));
    stream.on('error', () => {
      done = true;
      clearTimeout(idle);
      resolve(idled ? 'idle-timeout' : 'client-reset');
    });
    stream.on('close', () => {
      done = true;
      clearTimeout(idle);
      resolve(idled ? 'idle-timeout' : 'closed');
    });
  });
}
