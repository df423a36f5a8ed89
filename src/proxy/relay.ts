// Relays a client stream and an upstream socket both ways. A FIN travels as a
// FIN (half-close), a reset as a reset: the client sees what the server did,
// and the server sees what the client did.
import type { Duplex } from 'node:stream';
import type net from 'node:net';

export type RelayEnd = 'closed' | 'client-reset' | 'upstream-reset' | 'client-error' | 'upstream-error';

export interface RelayResult {
  end: RelayEnd;
  error?: string;
}

export function relay(client: Duplex, upstream: net.Socket): Promise<RelayResult> {
  return new Promise((resolve) => {
    let result: RelayResult | null = null;
    let open = 2;
    const done = () => {
      if (--open === 0) resolve(result ?? { end: 'closed' });
    };
    // either side may have failed or gone while the connection was being set
    // up (dial, sniff): its 'error' and 'close' are not emitted again
    for (const s of [client, upstream]) {
      if (s.closed) queueMicrotask(done);
      else s.on('close', done);
    }

    passErrors(client, upstream, (r) => (result ??= r));
    pump(client, upstream);
  });
}

/**
 * What pipe() both ways does for a relay, with six listeners in one closure scope: pipe()
 * keeps ten closures and two scopes per direction alive for the life of the connection
 * (1.5 KB of an idle connection's heap; docs/DECISIONS.md, "Lean memory"). Backpressure: a
 * refused write pauses the source until the destination drains; a source's end ends the
 * destination: exactly a half-close. A destination already destroyed refuses every write, so
 * its source stays paused, as pipe()'s unpipe on close leaves it. Errors are passErrors()'s.
 */
export function pump(client: Duplex, upstream: Duplex): void {
  const up = (chunk: Buffer) => {
    if (!upstream.write(chunk)) client.pause();
  };
  const down = (chunk: Buffer) => {
    if (!client.write(chunk)) upstream.pause();
  };
  client.on('data', up);
  upstream.on('data', down);
  upstream.on('drain', () => client.resume());
  client.on('drain', () => upstream.resume());
  // a side that ended before the relay (while dialling or sniffing) emits no second 'end'
  if (client.readableEnded) process.nextTick(() => upstream.end());
  else client.on('end', () => upstream.end());
  if (upstream.readableEnded) process.nextTick(() => client.end());
  else upstream.on('end', () => client.end());
  // a 'data' listener set them flowing; not while the destination still owes a drain (a sniffed head written before the relay)
  if (upstream.writableNeedDrain) client.pause();
  else client.resume();
  if (client.writableNeedDrain) upstream.pause();
  else upstream.resume();
}

/**
 * A reset on one side resets the other (the client sees what the server did,
 * and the reverse); the first failure is reported as the relay's end.
 */
export function passErrors(client: Duplex, upstream: net.Socket, report: (r: RelayResult) => void): void {
  const fromClient = (err: NodeJS.ErrnoException) => {
    report({ end: err.code === 'ECONNRESET' ? 'client-reset' : 'client-error', error: err.message });
    if (!upstream.destroyed) upstream.resetAndDestroy();
  };
  const fromUpstream = (err: NodeJS.ErrnoException) => {
    report({ end: err.code === 'ECONNRESET' ? 'upstream-reset' : 'upstream-error', error: err.message });
    if (!client.destroyed) abort(client, err);
  };
  client.on('error', fromClient);
  upstream.on('error', fromUpstream);
  // a reset that came before the relay (while dialling or sniffing) passes on now
  if (client.errored) fromClient(client.errored as NodeJS.ErrnoException);
  if (upstream.errored) fromUpstream(upstream.errored as NodeJS.ErrnoException);
}

/**
 * A RST to the client. The TUN's stream sends one on destroy(err); a kernel
 * socket (redirect, tproxy, the explicit proxy) would send a FIN, which the
 * client reads as a complete response: it needs SO_LINGER 0 (resetAndDestroy).
 */
function abort(client: Duplex, err: Error): void {
  const socket = client as Duplex & { resetAndDestroy?: () => void };
  if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else client.destroy(err);
}
