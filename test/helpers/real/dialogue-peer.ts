// An SMTP-style dialogue, both ends: the server greets first (220 and a
// banner), then answers each client line (250 with the line's sha256 and a
// filler of a size set by the round), and 221 on QUIT, then closes. The
// client checks every answer byte for byte and reads EOF at the end.
//   dialogue-peer.ts server HOST PORT            (prints "listening")
//   dialogue-peer.ts client HOST PORT ROUNDS     (prints {"ok":true} or what differed)
import net from 'node:net';
import { createHash } from 'node:crypto';

const [role, host, port, rounds] = process.argv.slice(2);
const filler = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => 33 + ((i * 7 + seed) % 90)));
const banner = () => Buffer.concat([Buffer.from('220 '), filler(600, 1), Buffer.from('\r\n')]);
/** the client's line of round i: sizes 1 byte to 64 KB */
const request = (i: number) => Buffer.concat([Buffer.from(`MAIL ${i} `), filler([1, 100, 1400, 5000, 65000][i % 5], i), Buffer.from('\r\n')]);
const answer = (i: number, line: Buffer) =>
  Buffer.concat([Buffer.from(`250 ${i} ${createHash('sha256').update(line).digest('hex')} `), filler([3000, 1, 70000, 200, 1460][i % 5], i + 7), Buffer.from('\r\n')]);
const BYE = Buffer.from('221 bye\r\n');

/** Splits a stream into CRLF lines. */
function lines(s: net.Socket, onLine: (l: Buffer) => void): void {
  let buf = Buffer.alloc(0);
  s.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    for (let at = buf.indexOf('\r\n'); at >= 0; at = buf.indexOf('\r\n')) {
      onLine(buf.subarray(0, at + 2));
      buf = buf.subarray(at + 2);
    }
  });
}

if (role === 'server') {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.write(banner());
    let i = 0;
    lines(s, (l) => {
      if (l.toString().startsWith('QUIT')) s.end(BYE);
      else s.write(answer(i++, l));
    });
  });
  server.listen({ host, port: Number(port), backlog: 1024 }, () => console.log('listening'));
} else {
  const s = net.connect({ host, port: Number(port) });
  const want: Buffer[] = [banner()];
  const n = Number(rounds);
  let i = 0;
  const fail = (why: string) => {
    console.log(JSON.stringify({ ok: false, why }));
    process.exit(1);
  };
  s.setTimeout(20_000, () => fail(`timeout in round ${i}`));
  s.on('error', (e) => fail(`${e.message} in round ${i}`));
  lines(s, (l) => {
    const w = want.shift();
    if (!w || !w.equals(l)) fail(`round ${i}: got ${l.length} bytes "${l.subarray(0, 40).toString()}", wanted ${w?.length}`);
    if (i < n) {
      const r = request(i);
      want.push(answer(i, r));
      i++;
      s.write(r);
    } else if (w !== BYE && !w?.equals(BYE)) {
      want.push(BYE);
      s.write('QUIT\r\n');
    }
  });
  s.on('end', () => {
    if (want.length > 0 || i < n) fail(`EOF early, round ${i}`);
    console.log(JSON.stringify({ ok: true, rounds: i }));
  });
}
