// DNS over TCP served in the gateway: framed answers in order, and the idle
// period of RFC 7766 §6.2.3 (a connection with no query in flight is closed;
// a query still being answered never is; a client that ignores the FIN is reset).
import t from 'tap';
import { serveDnsOverTcp } from '../../../src/proxy/dns-over-tcp.js';
import { drain, memoryPair } from '../../helpers/proxy-fakes.js';

const IDLE_MS = 60;
const framed = (text: string) => {
  const b = Buffer.alloc(2 + text.length);
  b.writeUInt16BE(text.length);
  b.write(text, 2);
  return b;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// the idle timer is unref'd (it must not keep the data plane alive): keep this process up while tests wait on it
const keepAlive = setInterval(() => {}, 1000);
t.teardown(() => clearInterval(keepAlive));

t.test('two queries in one write: two framed answers, in order', async (t) => {
  const [client, server] = memoryPair();
  const ended = serveDnsOverTcp(server, async (q) => Buffer.from(`re ${q.toString()}`), IDLE_MS);
  const got = drain(client);
  client.end(Buffer.concat([framed('one'), framed('two')]));
  const { text } = await got;
  t.equal(text, '\0\x06re one\0\x06re two');
  t.equal(await ended, 'closed');
});

t.test('a connection with no query is closed after the idle period: our FIN, then the close', async (t) => {
  const [client, server] = memoryPair();
  const started = Date.now();
  const ended = serveDnsOverTcp(server, async () => t.fail('no query was sent') as never, IDLE_MS);
  const got = await drain(client);
  t.equal(got.end, 'EOF', 'the gateway ends it');
  t.ok(Date.now() - started >= IDLE_MS - 2, 'not before the idle period');
  client.end();
  t.equal(await ended, 'idle-timeout', 'the line says why');
});

t.test('half a message is not a query: the connection still goes idle', async (t) => {
  const [client, server] = memoryPair();
  const ended = serveDnsOverTcp(server, async () => t.fail('no whole query was sent') as never, IDLE_MS);
  const got = drain(client);
  client.write(framed('cut short').subarray(0, 5));
  t.equal((await got).end, 'EOF');
  client.end();
  t.equal(await ended, 'idle-timeout');
});

t.test('a query answered slowly is never cut; the idle period starts again at its answer', async (t) => {
  const [client, server] = memoryPair();
  let release!: () => void;
  const answered = new Promise<void>((r) => (release = r));
  const ended = serveDnsOverTcp(
    server,
    async (q) => {
      await answered;
      return Buffer.from(`re ${q.toString()}`);
    },
    IDLE_MS,
  );
  const chunks: string[] = [];
  let eofAt = 0;
  client.on('data', (c: Buffer) => chunks.push(c.toString()));
  client.on('end', () => (eofAt = Date.now()));
  client.write(framed('slow'));
  await sleep(IDLE_MS * 4);
  t.equal(eofAt, 0, 'still open four idle periods later, the query in flight');
  release();
  while (chunks.length === 0) await sleep(5);
  const answerAt = Date.now();
  t.equal(chunks.join(''), '\0\x07re slow', 'the answer came');
  while (eofAt === 0) await sleep(5);
  t.ok(eofAt - answerAt >= IDLE_MS - 7, `the FIN a whole idle period after the answer (${eofAt - answerAt} ms)`);
  client.end();
  t.equal(await ended, 'idle-timeout');
});

t.test('a client that ignores our FIN is reset one more idle period later', async (t) => {
  const [client, server] = memoryPair();
  const ended = serveDnsOverTcp(server, async () => null, IDLE_MS);
  const events: string[] = [];
  client.on('data', () => {});
  client.on('end', () => events.push('FIN'));
  client.on('error', (e: NodeJS.ErrnoException) => events.push(e.code ?? e.message));
  t.equal(await ended, 'idle-timeout');
  t.ok(server.wasReset, 'the gateway reset it');
  await sleep(5);
  t.same(events, ['FIN', 'ECONNRESET'], 'the client saw the FIN, then the reset');
});

t.test('an answer that lands after the close does not wake the idle timer again', async (t) => {
  const [client, server] = memoryPair();
  const ended = serveDnsOverTcp(
    server,
    async () => {
      await sleep(IDLE_MS / 2);
      return Buffer.from('late');
    },
    IDLE_MS,
  );
  client.write(framed('q'));
  client.resume();
  await sleep(5);
  client.resetAndDestroy(); // the peer goes away with the query in flight
  t.equal(await ended, 'client-reset');
  let touched = 0;
  server.end = (() => (touched++, server)) as typeof server.end;
  server.resetAndDestroy = () => (touched++, server);
  await sleep(IDLE_MS * 4);
  t.equal(touched, 0, 'no FIN and no reset for a connection already gone');
});
