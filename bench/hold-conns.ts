// Opens N TCP connections to HOST:PORT and holds them idle, for memory
// measurements. Prints {"held":N} once all are up, then closes them all (each with a FIN, waiting
// for the other side's) on SIGTERM or after HOLD_MS and prints {"closed":N,...}. Bounded: connects at most
// 256 at a time (--in-flight K: K) and gives up after 120 s plus 2 ms per connection.
// PORT may be a list (7000,7001,...): connections go round-robin over the ports, so more
// than one port range of them fit between the same two addresses (100,000 need 2 or more).
// --local ADDR[,ADDR...]: the connections' source addresses, round-robin likewise, for one port
// (the gateway's DNS on :53): each source address has its own port range toward it. Their source
// ports are chosen here, 1024 upward per address, not by the kernel: bind(ADDR, 0) with
// SO_REUSEADDR (libuv sets it) scans the range for a free port, so it slows with every port taken
// (O(n) each; 100,000 connections over 4 addresses stalled at 44,000 after 150 s). So each
// address serves one holder and one run: a port of an earlier run may still be in TIME-WAIT.
//
// --close-burst: close the old way instead, every socket destroyed at once and exit (to
// reproduce what that did to the gateway's table).
//
//   node --import tsx bench/hold-conns.ts [--local ADDR[,ADDR...]] [--in-flight K] [--close-burst] HOST PORT[,PORT...] N [HOLD_MS]
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { local: { type: 'string' }, 'in-flight': { type: 'string' }, 'close-burst': { type: 'boolean' } } });
const [host, portText, nText, holdText] = positionals;
const ports = portText.split(',').map(Number);
const locals = values.local?.split(',') ?? [];
const n = Number(nText);
const holdMs = Number(holdText ?? 60_000);
if (locals.length && n / locals.length > 65535 - 1024) throw new Error(`${n} connections need more than ${locals.length} source addresses`);
const IN_FLIGHT = Number(values['in-flight'] ?? 256);
const socks: net.Socket[] = [];
let connected = 0;
let started = 0;
let failed = 0;
let firstError = '';
/** Connections that were up and were reset or ended by the other side before we closed them. */
let lost = 0;
let closing = false;

const giveUp = setTimeout(
  () => {
    console.log(JSON.stringify({ error: 'timeout', connected, failed, firstError }));
    process.exit(3);
  },
  120_000 + 2 * n,
);

function next(): void {
  while (started < n && started - connected - failed < IN_FLIGHT) {
    const local = locals.length ? { localAddress: locals[started % locals.length], localPort: 1024 + Math.floor(started / locals.length) } : {};
    const s = net.connect({ host, port: ports[started % ports.length], ...local });
    started++;
    s.setNoDelay(true);
    let up = false;
    s.on('end', () => void (lost += closing ? 0 : 1));
    s.on('connect', () => {
      up = true;
      connected++;
      if (connected % 10_000 === 0) console.error(`hold-conns: ${connected} connected`);
      if (connected + failed === n) allUp();
      else next();
    });
    s.on('error', (e) => {
      if (up) return void (lost += closing ? 0 : 1); // a reset while held (counted) or closing: 'close' follows
      failed++;
      firstError ||= e.message;
      if (connected + failed === n) allUp();
      else next();
    });
    socks.push(s);
  }
}

/**
 * Closes every connection with a FIN, IN_FLIGHT at a time, each done once the other side's FIN
 * (or RST) came back: the gateway has seen every close before this exits. Destroying them all at
 * once lost closes: 85,000 FINs in one burst overflowed the TUN's queue, and what the kernel then
 * sent for the orphaned sockets left 10,003 connections established in the gateway for good.
 * Bounded: what is still open after 60 s plus 1 ms per connection is destroyed.
 */
function closeAll(): void {
  if (values['close-burst']) {
    for (const s of socks) s.destroy();
    console.log(JSON.stringify({ closed: connected, gracefully: 0, burst: true, lostWhileHeld: lost }));
    process.exit(0);
  }
  const open = socks.filter((s) => !s.destroyed);
  let ended = 0;
  let closed = 0;
  const done = () => {
    console.log(JSON.stringify({ closed: connected, gracefully: closed, of: open.length, lostWhileHeld: lost }));
    process.exit(0);
  };
  const forced = setTimeout(() => {
    for (const s of open) s.destroy();
    done();
  }, 60_000 + open.length);
  const more = () => {
    while (ended < open.length && ended - closed < IN_FLIGHT) {
      const s = open[ended++];
      s.once('close', () => {
        closed++;
        if (closed === open.length) {
          clearTimeout(forced);
          done();
        } else more();
      });
      s.end();
    }
  };
  if (open.length === 0) done();
  more();
}

function allUp(): void {
  clearTimeout(giveUp);
  console.log(JSON.stringify({ held: connected, failed, firstError }));
  const close = () => {
    if (closing) return;
    closing = true;
    closeAll();
  };
  process.on('SIGTERM', close);
  setTimeout(close, holdMs);
}

next();
