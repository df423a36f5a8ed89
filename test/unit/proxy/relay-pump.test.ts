// relay's pump(): pipe()'s semantics for a relay (backpressure, half-close) with fewer
// listeners. In-memory streams: a Duplex whose writes complete only when the test says so.
import t from 'tap';
import { Duplex } from 'node:stream';
import { pump } from '../../../src/proxy/relay.js';

/** A Duplex: push() feeds its readable side; writes are recorded and complete on release(). */
function side(highWaterMark = 4) {
  const written: string[] = [];
  const pending: (() => void)[] = [];
  let ended = false;
  const d = new Duplex({
    highWaterMark,
    read() {},
    write(chunk: Buffer, _enc, cb) {
      written.push(chunk.toString());
      pending.push(() => cb());
    },
    final(cb) {
      ended = true;
      cb();
    },
  });
  return {
    d,
    written,
    release: () => {
      for (const cb of pending.splice(0)) cb();
    },
    ended: () => ended,
  };
}

const tick = () => new Promise((r) => setImmediate(r));

t.test('a refused write pauses the source until the destination drains', async (t) => {
  const client = side();
  const upstream = side();
  pump(client.d, upstream.d);
  client.d.push('hello world');
  await tick();
  t.same(upstream.written, ['hello world']);
  t.ok(client.d.isPaused(), 'paused: the upstream is over its high-water mark');
  upstream.release();
  await tick();
  t.notOk(client.d.isPaused(), 'flowing again after the drain');
  client.d.push('more');
  await tick();
  t.same(upstream.written, ['hello world', 'more']);
});

t.test('each way: the server side is relayed to the client too', async (t) => {
  const client = side(1024);
  const upstream = side(1024);
  pump(client.d, upstream.d);
  upstream.d.push('response');
  await tick();
  t.same(client.written, ['response']);
  t.notOk(upstream.d.isPaused());
});

t.test("a source's end ends its destination (a half-close), the other way stays open", async (t) => {
  const client = side(1024);
  const upstream = side(1024);
  pump(client.d, upstream.d);
  client.d.push(null);
  await tick();
  t.ok(upstream.ended(), 'the upstream got its end');
  t.notOk(client.ended(), 'the client still reads');
  upstream.d.push('late reply');
  await tick();
  t.same(client.written, ['late reply']);
});

t.test('a source that ended before the relay still ends its destination', async (t) => {
  const client = side(1024);
  const upstream = side(1024);
  client.d.push(null);
  client.d.resume();
  await tick();
  t.ok(client.d.readableEnded, 'ended before the relay');
  pump(client.d, upstream.d);
  await tick();
  t.ok(upstream.ended());
});

t.test('a destination that still owes a drain (a sniffed head written before) holds the source', async (t) => {
  const client = side();
  const upstream = side();
  upstream.d.write('sniffed head, longer than the high-water mark');
  t.ok(upstream.d.writableNeedDrain);
  pump(client.d, upstream.d);
  client.d.push('body');
  await tick();
  t.equal(upstream.d.writableLength, 'sniffed head, longer than the high-water mark'.length, 'nothing more is written until the drain');
  upstream.release();
  await tick();
  t.same(upstream.written, ['sniffed head, longer than the high-water mark', 'body']);
});
