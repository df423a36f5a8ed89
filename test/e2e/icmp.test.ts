// ICMP end to end (issue 8) in route-all mode, IPv4 and IPv6: ping gets echo
// replies from the gateway (also for an address no host holds: the gateway
// answers for every destination it steers, see DECISIONS "ICMP"), UDP to a
// closed port comes back as port unreachable (ECONNREFUSED on the client's
// connected socket), and a TCP connect to a network the servers cannot route
// fails fast with "no route to host" from the gateway's ICMP error. And the
// rules see IPv6: a CIDR rule with an IPv6 prefix rejects, logged in RFC 5952 form.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nsExec } from '../helpers/netns.js';
import { NGINX_IP, NGINX_IP6, addIpv6, makeTopology, startGateway, startNginx, waitForGateway, waitForPort } from '../helpers/topology.js';

t.setTimeout(300_000);

const topo = await makeTopology(t);
await addIpv6(topo);
await startNginx(t, topo, { ipv6: true });
await waitForPort(topo.servers, `[${NGINX_IP6}]`, 80);
const stateDir = join(topo.tmp, 'state');
const config = join(topo.tmp, 'tunsteer.yaml');
writeFileSync(config, 'rules:\n  - { name: no-v6-iperf, cidr: "2001:db8:10:0:0:0:0:11/128", action: reject }\n');
const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--config', config, '--state-dir', stateDir, '--tun-name', 'tsi0', '--connect-timeout', '3000']);
await waitForGateway(topo.client, stateDir, gw);

/** Runs a small node script in the client namespace and returns its JSON line. */
async function clientJs<T>(js: string): Promise<T> {
  const r = await nsExec(topo.client, [process.execPath, '-e', js], { timeoutMs: 20_000 });
  return JSON.parse(r.stdout.trim()) as T;
}

t.test('ping and ping -6 get replies through the TUN, also for an address no host holds', async (t) => {
  for (const [flag, target] of [
    ['-4', NGINX_IP],
    ['-6', NGINX_IP6],
    ['-4', '203.0.113.200'],
    ['-6', '2001:db8:10::200'],
  ]) {
    t.match((await nsExec(topo.client, ['ip', flag, 'route', 'get', target])).stdout, /dev tsi0/, `${target} is routed into the TUN`);
    const r = await nsExec(topo.client, ['ping', flag, '-c', '3', '-i', '0.2', '-W', '2', '-s', '200', target], { allowFail: true, timeoutMs: 15_000 });
    t.match(r.stdout, /3 packets transmitted, 3 received/, `ping ${flag} ${target}: ${r.stdout.split('\n').find((l) => l.includes('transmitted'))}`);
  }
});

t.test('UDP to a closed port: ICMP / ICMPv6 port unreachable reaches the client socket (ECONNREFUSED)', async (t) => {
  for (const [type, host] of [
    ['udp4', NGINX_IP],
    ['udp6', NGINX_IP6],
  ]) {
    const out = await clientJs<{ outcome: string; ms: number }>(
      `const s=require('dgram').createSocket('${type}');const t0=performance.now();` +
        `s.on('error',e=>{console.log(JSON.stringify({outcome:e.code,ms:performance.now()-t0}));process.exit(0)});` +
        `s.connect(9,'${host}',()=>{s.send('probe');setTimeout(()=>s.send('probe again'),300)});` +
        `setTimeout(()=>{console.log(JSON.stringify({outcome:'silence',ms:performance.now()-t0}));process.exit(0)},5000)`,
    );
    t.equal(out.outcome, 'ECONNREFUSED', `${type} to ${host}:9 refused after ${out.ms.toFixed(0)} ms`);
  }
});

t.test('TCP to an unroutable network: the gateway answers as the kernel path does, the connect fails fast', async (t) => {
  // The servers namespace routes these networks nowhere and says so at once (a
  // router with forwarding on answers ICMP unreachable; with it off IPv4 drops silently).
  await nsExec(topo.servers, ['sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
  await nsExec(topo.servers, ['ip', 'route', 'add', 'unreachable', '198.51.100.0/24']);
  await nsExec(topo.servers, ['ip', '-6', 'route', 'add', 'unreachable', '2001:db8:77::/48']);
  // Linux rate-limits ICMPv6 errors to one per second per peer; the UDP test above just used it.
  await new Promise((r) => setTimeout(r, 1100));
  // The kernel's own path, bypassing the gateway, is the oracle: IPv4 gets
  // EHOSTUNREACH, IPv6 (ICMPv6 "no route") ENETUNREACH. Linux reports an ICMPv6
  // error on a SYN only when it retransmits (about 1 s), so IPv6 takes that long either way.
  const cases = [
    { host: '2001:db8:77::1', direct: '2001:db8:77::9', local: '2001:db8:1::1' },
    { host: '198.51.100.77', direct: '198.51.100.79', local: '192.0.2.1' },
  ];
  for (const c of cases) {
    const d = await timedConnect(c.direct, c.local);
    t.match(d.outcome, /^E(HOST|NET)UNREACH$/, `direct (no gateway) to ${c.direct}: ${d.outcome} after ${d.ms.toFixed(0)} ms`);
    await new Promise((r) => setTimeout(r, 1100)); // the ICMPv6 rate limit again
    const out = await timedConnect(c.host);
    t.equal(out.outcome, d.outcome, `through the gateway to ${c.host}: ${out.outcome} after ${out.ms.toFixed(0)} ms, as the kernel path`);
    t.ok(out.ms < 2000, 'well before the 3 s connect timeout');
  }
});

/** A TCP connect from the client namespace (optionally from a source that bypasses the TUN): outcome and time. */
function timedConnect(host: string, localAddress?: string) {
  const local = localAddress ? `,localAddress:'${localAddress}'` : '';
  return clientJs<{ outcome: string; ms: number }>(
    `const t0=performance.now();const s=require('net').connect({host:'${host}',port:80${local}});` +
      `s.on('connect',()=>{console.log(JSON.stringify({outcome:'connected',ms:performance.now()-t0}));process.exit(0)});` +
      `s.on('error',e=>{console.log(JSON.stringify({outcome:e.code,ms:performance.now()-t0}));process.exit(0)});` +
      `setTimeout(()=>{console.log(JSON.stringify({outcome:'timeout',ms:performance.now()-t0}));process.exit(0)},10000)`,
  );
}

t.test('an IPv6 CIDR rule rejects its destination; the log prints the address in RFC 5952 form', async (t) => {
  const blocked = await nsExec(topo.client, ['curl', '-6', '-sSf', '--max-time', '5', 'http://[2001:db8:10::11]/hello'], { allowFail: true });
  t.not(blocked.code, 0, `curl to the rejected address fails: ${blocked.stderr.trim()}`);
  const line = JSON.parse(await gw.waitForLine((l) => l.includes('"msg":"conn"') && l.includes('2001:db8:10::11'), 10_000));
  t.equal(line.dst, '[2001:db8:10::11]:80', 'the destination as RFC 5952 text');
  t.equal(line.rule, 'no-v6-iperf');
  t.equal(line.action, 'reject');
  const ok = await nsExec(topo.client, ['curl', '-6', '-sS', '--max-time', '5', `http://[${NGINX_IP6}]/hello`]);
  t.equal(ok.stdout, 'hello from nginx\n', 'other IPv6 destinations pass');
});
