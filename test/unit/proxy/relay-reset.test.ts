// relay() between two kernel sockets, as in the redirect and tproxy modes: a
// reset on one side must reach the other as a reset (ECONNRESET), not as an
// orderly close (EOF). Loopback only.
import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { relay, type RelayResult } from '../../../src/proxy/relay.js';

type End = 'EOF' | 'ECONNRESET' | string;

/** Reads until the socket ends or fails; resolves with the bytes and how it ended. */
function drain(s: net.Socket): Promise<{ bytes: number; end: End }> {
  return new Promise((resolve) => {
    let bytes = 0;
    s.on('data', (d: Buffer) => (bytes += d.length));
    s.on('end', () => resolve({ bytes, end: 'EOF' }));
    s.on('error', (e: NodeJS.ErrnoException) => resolve({ bytes, end: e.code ?? e.message }));
  });
}

async function listen(onSocket: (s: net.Socket) => void): Promise<net.Server> {
  const server = net.createServer({ allowHalfOpen: true }, onSocket);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

/**
 * client ──▶ [accepted socket ══relay══ upstream socket] ──▶ server. The
 * server's socket starts paused (pauseOnConnect: nothing is read from the
 * kernel until it resumes), so "unread data" stays unread.
 */
async function relayed(t: { teardown(fn: () => unknown): void }): Promise<{ client: net.Socket; server: net.Socket; result: Promise<RelayResult> }> {
  let onServer!: (s: net.Socket) => void;
  const serverSock = new Promise<net.Socket>((r) => (onServer = r));
  const origin = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, onServer);
  origin.listen(0, '127.0.0.1');
  await once(origin, 'listening');
  t.teardown(() => origin.close());
  let onResult!: (r: Promise<RelayResult>) => void;
  const result = new Promise<RelayResult>((r) => (onResult = (p) => void p.then(r)));
  const front = await listen((accepted) => {
    accepted.on('error', () => {});
    const upstream = net.connect({ port: (origin.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
    upstream.on('error', () => {});
    onResult(relay(accepted, upstream));
  });
  t.teardown(() => front.close());
  const client = net.connect({ port: (front.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  client.on('error', () => {});
  const server = await serverSock;
  server.on('error', () => {});
  return { client, server, result };
}

t.test('the server aborts (SO_LINGER 0): the client reads ECONNRESET, not EOF', async (t) => {
  const { client, server, result } = await relayed(t);
  const seen = drain(client);
  server.write('partial response');
  await new Promise((r) => setTimeout(r, 50));
  server.resetAndDestroy();
  const got = await seen;
  t.equal(got.end, 'ECONNRESET');
  t.equal(got.bytes, 16, 'what the server sent before its reset arrived');
  t.equal((await result).end, 'upstream-reset');
});

t.test('the server closes with unread data (the kernel sends RST): the client reads ECONNRESET', async (t) => {
  const { client, server, result } = await relayed(t);
  const seen = drain(client);
  client.write(Buffer.alloc(1000, 1));
  await new Promise((r) => setTimeout(r, 100));
  server.destroy();
  t.equal((await seen).end, 'ECONNRESET');
  t.equal((await result).end, 'upstream-reset');
});

t.test('the client aborts: the server reads ECONNRESET', async (t) => {
  const { client, server, result } = await relayed(t);
  const seen = drain(server);
  server.resume();
  client.write('request');
  await new Promise((r) => setTimeout(r, 50));
  client.resetAndDestroy();
  const got = await seen;
  t.equal(got.end, 'ECONNRESET');
  t.equal(got.bytes, 7);
  t.equal((await result).end, 'client-reset');
});

t.test('an orderly close stays orderly both ways (half-close first)', async (t) => {
  const { client, server, result } = await relayed(t);
  const atServer = drain(server);
  server.resume();
  const atClient = drain(client);
  client.end('question');
  t.same(await atServer, { bytes: 8, end: 'EOF' });
  server.end('answer!');
  t.same(await atClient, { bytes: 7, end: 'EOF' });
  t.equal((await result).end, 'closed');
});

t.test('a reset that came before the relay started (while dialling or sniffing) still passes on, and the relay ends', async (t) => {
  const origin = net.createServer({ allowHalfOpen: true }, (s) => s.resetAndDestroy());
  origin.listen(0, '127.0.0.1');
  await once(origin, 'listening');
  t.teardown(() => origin.close());
  let result!: Promise<RelayResult>;
  const front = await listen((accepted) => {
    accepted.on('error', () => {});
    const upstream = net.connect({ port: (origin.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
    upstream.on('error', () => {});
    upstream.once('close', () => {
      result = relay(accepted, upstream); // the server's RST is in
    });
  });
  t.teardown(() => front.close());
  const client = net.connect({ port: (front.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  client.on('error', () => {});
  t.equal((await drain(client)).end, 'ECONNRESET', 'the client is reset');
  t.equal((await result).end, 'upstream-reset', 'and the relay resolves');
});
