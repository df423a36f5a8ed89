// The baseline for memory per proxied connection: a plain Node TCP proxy (net + pipe, what a
// user would write in ten lines) that holds connections on the kernel path. Listens on
// HOST:PORT and forwards each connection to UP_HOST, round-robin over UP_PORTS.
// Runs until killed (the bench that starts it ends it).
//
//   node --import tsx bench/plain-proxy.ts HOST PORT UP_HOST UP_PORT[,UP_PORT...]
import net from 'node:net';

const [host, portText, upHost, upPorts] = process.argv.slice(2);
const ports = upPorts.split(',').map(Number);
let n = 0;
const server = net.createServer((c) => {
  const u = net.connect({ host: upHost, port: ports[n++ % ports.length] });
  c.pipe(u).pipe(c);
  c.on('error', () => u.destroy());
  u.on('error', () => c.destroy());
});
server.listen({ host, port: Number(portText), backlog: 4096 }, () => console.log(JSON.stringify({ listening: true })));
