// The demo's own little network: a client namespace (where the gateway runs)
// and a server namespace, joined by a veth pair that exists only inside them,
// on documentation addresses. The client has a default route to the server
// side and a resolv.conf of its own (/etc/netns/CLIENT/resolv.conf, which
// `ip netns exec` puts over /etc/resolv.conf), so nothing the demo does can
// reach this machine's routes or resolver. Names carry the demo's pid, so a
// demo killed with -9 is recognised and swept by the next one.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const CLIENT_IP = '192.0.2.1';
export const SERVER_IP = '192.0.2.2';
/** The server's HTTP address (on its loopback, routed over the veth). */
export const APP_IP = '203.0.113.80';
/** The server's DNS address. */
export const DNS_IP = '203.0.113.53';

const PREFIX = 'tsdemo-';

export interface DemoNet {
  client: string;
  server: string;
  /** /etc/netns/CLIENT: the client's own resolv.conf. */
  etcNetns: string;
  /** State dirs of the demo's gateways and its config file. */
  runDir: string;
}

export function demoNet(pid = process.pid): DemoNet {
  const client = `${PREFIX}${pid}-c`;
  return { client, server: `${PREFIX}${pid}-s`, etcNetns: `/etc/netns/${client}`, runDir: `/run/tunsteer-demo-${pid}` };
}

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
}

/** Builds both namespaces and the link between them; the commands, for the demo to show. */
export function buildDemoNet(n: DemoNet): string[] {
  const cmds: string[][] = [
    ['netns', 'add', n.client],
    ['netns', 'add', n.server],
    // created inside the namespaces at once: no moment in this machine's namespace
    ['link', 'add', 'demo0', 'netns', n.client, 'type', 'veth', 'peer', 'name', 'demo1', 'netns', n.server],
    ['-n', n.client, 'addr', 'add', `${CLIENT_IP}/24`, 'dev', 'demo0'],
    ['-n', n.client, 'link', 'set', 'demo0', 'up'],
    ['-n', n.client, 'link', 'set', 'lo', 'up'],
    ['-n', n.client, 'route', 'add', 'default', 'via', SERVER_IP],
    ['-n', n.server, 'addr', 'add', `${SERVER_IP}/24`, 'dev', 'demo1'],
    ['-n', n.server, 'addr', 'add', `${APP_IP}/32`, 'dev', 'lo'],
    ['-n', n.server, 'addr', 'add', `${DNS_IP}/32`, 'dev', 'lo'],
    ['-n', n.server, 'link', 'set', 'demo1', 'up'],
    ['-n', n.server, 'link', 'set', 'lo', 'up'],
  ];
  for (const c of cmds) ip(c);
  mkdirSync(n.etcNetns, { recursive: true });
  writeFileSync(join(n.etcNetns, 'resolv.conf'), `# tunsteer demo: the client namespace's own resolver file\nnameserver ${DNS_IP}\n`);
  mkdirSync(n.runDir, { recursive: true });
  return [...cmds.map((c) => `ip ${c.join(' ')}`), `echo 'nameserver ${DNS_IP}' > ${n.etcNetns}/resolv.conf`];
}

/** The processes still in a namespace (ip netns pids). */
function pidsIn(ns: string): number[] {
  try {
    return ip(['netns', 'pids', ns]).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Removes what buildDemoNet made, ending whatever still runs inside first. Synchronous: it runs on the way out too. */
export function removeDemoNet(n: DemoNet): void {
  for (const ns of [n.client, n.server]) {
    for (const pid of pidsIn(ns)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    try {
      ip(['netns', 'del', ns]);
    } catch {
      // not made, or gone
    }
  }
  rmSync(n.etcNetns, { recursive: true, force: true });
  rmSync(n.runDir, { recursive: true, force: true });
}

/** What demos that did not get to clean up (kill -9) left: their namespaces and files. Returns the pids swept. */
export function sweepDeadDemos(): number[] {
  let names: string[];
  try {
    names = readdirSync('/run/netns');
  } catch {
    return [];
  }
  const dead = new Set<number>();
  for (const name of names) {
    const m = /^tsdemo-(\d+)-[cs]$/.exec(name);
    if (m && Number(m[1]) !== process.pid && !alive(Number(m[1]))) dead.add(Number(m[1]));
  }
  for (const pid of dead) removeDemoNet(demoNet(pid));
  return [...dead];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether anything of the demo is left (for its test, and its last line). */
export function demoLeftovers(n: DemoNet): string[] {
  const left: string[] = [];
  for (const ns of [n.client, n.server]) if (existsSync(`/run/netns/${ns}`)) left.push(`namespace ${ns}`);
  for (const p of [n.etcNetns, n.runDir]) if (existsSync(p)) left.push(p);
  return left;
}
