// `tunsteer __demo-server APP_IP DNS_IP` (not for users): the demo's other
// side, run in its server namespace. HTTP on APP_IP:80 answers every request
// with who it came from; DNS on DNS_IP:53 (UDP) answers the demo's names with
// APP_IP, NXDOMAIN for the rest. Prints {"listening":...} once both are bound.
import dgram from 'node:dgram';
import http from 'node:http';
import dnsPacket from 'dns-packet';

/** The names the demo fetches; all live on the one server. */
export const DEMO_NAMES = ['app.demo.example', 'other.demo.example', 'blocked.demo.example'];

export function runDemoServer(argv: string[]): Promise<number> {
  const [appIp, dnsIp] = argv;
  const server = http.createServer((req, res) => {
    const body = `hello from the demo server: ${req.method} ${req.headers.host}${req.url}, from ${req.socket.remoteAddress}\n`;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  const dns = dgram.createSocket('udp4');
  dns.on('message', (m, r) => {
    try {
      const q = dnsPacket.decode(m);
      const question = q.questions?.[0];
      if (!question) return;
      const known = DEMO_NAMES.includes(question.name.toLowerCase().replace(/\.$/, ''));
      const answers = known && question.type === 'A' ? [{ name: question.name, type: 'A' as const, ttl: 30, data: appIp }] : [];
      dns.send(dnsPacket.encode({ id: q.id, type: 'response', flags: known ? 0x8180 : 0x8183, questions: q.questions, answers }), r.port, r.address);
    } catch {
      // not DNS: nothing to answer
    }
  });
  return new Promise((resolve) => {
    dns.bind(53, dnsIp, () =>
      server.listen(80, appIp, () => {
        process.stdout.write(`${JSON.stringify({ listening: [`${appIp}:80`, `${dnsIp}:53`] })}\n`);
        // runs until the demo kills it
        resolve(-1);
      }),
    );
  });
}
