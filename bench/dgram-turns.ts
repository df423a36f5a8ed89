// How many datagrams one node dgram socket hands over per event-loop turn
// when a sender outruns it: the most a relay could merge into one UDP GSO
// write if it flushed once per turn (issue 16 item 1, USO on write). A python
// sender blasts 1200-byte datagrams at a loopback port for 2.5 s; each turn's
// count ends at the next setImmediate.
//   node --import tsx bench/dgram-turns.ts
import dgram from 'node:dgram';
import { spawn } from 'node:child_process';

const SENDER = `
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(('127.0.0.1', int(sys.argv[1])))
p, n, end = b'Z' * 1200, 0, time.monotonic() + 2.5
while time.monotonic() < end:
    for _ in range(64):
        try:
            s.send(p)
            n += 1
        except OSError:
            pass
print(n)
`;
const hist = new Map<number, number>();
let inTurn = 0;
let msgs = 0;
let armed = false;
const endTurn = () => {
  armed = false;
  hist.set(inTurn, (hist.get(inTurn) ?? 0) + 1);
  inTurn = 0;
};
const s = dgram.createSocket('udp4');
s.on('message', () => {
  msgs++;
  inTurn++;
  if (!armed) {
    armed = true;
    setImmediate(endTurn);
  }
});
s.bind(0, '127.0.0.1', () => {
  s.setRecvBufferSize(8 << 20);
  const sender = spawn('python3', ['-c', SENDER, String(s.address().port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let sent = '';
  sender.stdout.on('data', (d: Buffer) => (sent += d));
  sender.on('exit', () =>
    setTimeout(() => {
      const turns = [...hist.values()].reduce((a, b) => a + b, 0);
      const sizes = [...hist.entries()].sort((a, b) => a[0] - b[0]);
      const at = (q: number) => {
        let c = 0;
        for (const [k, v] of sizes) if ((c += k * v) >= q * msgs) return k;
        return 0;
      };
      console.log(
        `sent ${sent.trim()}, received ${msgs} in ${turns} turns: ${(msgs / turns).toFixed(1)} per turn; a datagram's turn held p50 ${at(0.5)}, p10 ${at(0.1)}, max ${sizes.at(-1)?.[0]}`,
      );
      s.close();
    }, 300),
  );
});
