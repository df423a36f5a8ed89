// Connections held open through the gateway, for the tests of what a stop
// does to them. Run in a namespace with `node --import tsx test/helpers/hold-peer.ts hold ...`:
//
//   hold HOST TCP_PORT UDP_PORT NTCP NUDP
//     HOST an address, or a name looked up (IPv4) through the system's resolver (per-host mode's fake IPs).
//     Opens NTCP TCP connections to tcp-peer.ts's server ("ECHO\n": echoes until EOF), each proven by an
//     echoed line, and NUDP UDP flows (a connected socket each) to udp-peer.ts's server, each proven by an
//     echoed datagram; then prints {"ready":true,"tcp":[local ports],"udp":[local ports]} and holds them
//     until killed, at most 120 s. Prints {"ok":false,"error":...} and exits 1 if that fails.
import net from 'node:net';
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';

const [mode, host, tcpPortText, udpPortText, ntcpText, nudpText] = process.argv.slice(2);
const fail = (error: string): never => {
  console.log(JSON.stringify({ ok: false, error }));
  process.exit(1);
};
setTimeout(() => fail('timeout'), 120_000).unref();
if (mode !== 'hold') fail(`unknown mode ${mode}`);

function tcpEcho(address: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, address);
    s.setTimeout(30_000, () => reject(new Error('TCP echo timed out')));
    s.once('error', reject);
    s.once('connect', () => s.write('ECHO\nhello\n'));
    let got = '';
    s.on('data', (d) => {
      got += d;
      if (got.includes('hello\n')) {
        s.setTimeout(0);
        resolve(s.localPort!);
      }
    });
  });
}

function udpEcho(address: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    const probe = Buffer.from('hold');
    // the first datagram may be held while the gateway sets the flow up: resend until one comes back
    const resend = setInterval(() => s.send(probe), 500);
    const timer = setTimeout(() => reject(new Error('UDP echo timed out')), 30_000);
    s.on('message', () => {
      clearInterval(resend);
      clearTimeout(timer);
      resolve(s.address().port);
    });
    s.connect(port, address, () => s.send(probe));
  });
}

const address = net.isIP(host) ? host : (await lookup(host, { family: 4 })).address;
try {
  const tcp = await Promise.all(Array.from({ length: Number(ntcpText) }, () => tcpEcho(address, Number(tcpPortText))));
  const udp = await Promise.all(Array.from({ length: Number(nudpText) }, () => udpEcho(address, Number(udpPortText))));
  console.log(JSON.stringify({ ready: true, address, tcp, udp }));
} catch (e) {
  fail((e as Error).message);
}
