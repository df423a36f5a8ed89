// Real servers for the server-first and real-program tests, started in the
// servers namespace with what they need made by the test (keys, config,
// certificate), all under the topology's tmp dir; each killed in teardown.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes, createHash } from 'node:crypto';
import { join } from 'node:path';
import { nsExec, spawnInNs, spawnNodeInNs, type TeardownHost } from '../netns.js';
import { selfSignedCert } from './certs.js';
import { ROOT, waitForPort } from '../topology.js';

export const GREETING_PORT = 7100;
export const DIALOGUE_PORT = 7200;
export const WS_PORT = 7300;

export const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/**
 * A server-first service: socat writes a 3,900-byte greeting on accept, then
 * closes (one socat per address). Returns the greeting's sha256.
 */
export async function startGreeting(t: TeardownHost, ns: string, tmp: string, addrs: string[]): Promise<string> {
  const file = join(tmp, 'greeting.bin');
  const greeting = randomBytes(3900);
  writeFileSync(file, greeting);
  for (const ip of addrs) {
    const listen = ip.includes(':') ? `TCP6-LISTEN:${GREETING_PORT},bind=[${ip}]` : `TCP4-LISTEN:${GREETING_PORT},bind=${ip}`;
    spawnInNs(t, ns, ['socat', `${listen},fork,reuseaddr,backlog=1024`, `OPEN:${file},rdonly`]);
    await waitForPort(ns, ip.includes(':') ? `[${ip}]` : ip, GREETING_PORT);
  }
  return sha256(greeting);
}

/** Runs the greeting client (test/helpers/real/server-first-client.ts) with argv in front (ip netns exec, tunsteer run --). */
export function greetingClientArgv(host: string, count: number, sha: string, idleMs = 15_000): string[] {
  return [process.execPath, '--import', 'tsx', join(ROOT, 'test/helpers/real/server-first-client.ts'), host, String(GREETING_PORT), String(count), '20', sha, String(idleMs)];
}

export async function startDialogue(t: TeardownHost, ns: string, addrs: string[]): Promise<void> {
  for (const ip of addrs) {
    const p = spawnNodeInNs(t, ns, join(ROOT, 'test/helpers/real/dialogue-peer.ts'), ['server', ip, String(DIALOGUE_PORT)]);
    await p.waitForLine((l) => l === 'listening');
  }
}

export interface Sshd {
  /** the client's private key */
  key: string;
  /** ssh/scp options for a test client: no known_hosts, no agent, no user config */
  opts: string[];
  /** a directory both the client and the server see (one filesystem) */
  dir: string;
}

/** openssh-server with a config, host key and client key made here; sshd -D -e in the namespace. */
export async function startSshd(t: TeardownHost, ns: string, tmp: string, addrs: string[]): Promise<Sshd> {
  const dir = join(tmp, 'sshd');
  mkdirSync(dir, { recursive: true });
  mkdirSync('/run/sshd', { recursive: true }); // sshd's privilege separation directory
  const hostKey = join(dir, 'host_ed25519');
  const key = join(dir, 'client_ed25519');
  await nsExec(ns, ['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  await nsExec(ns, ['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', key]);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${key}.pub`));
  chmodSync(join(dir, 'authorized_keys'), 0o600);
  const cfg = join(dir, 'sshd_config');
  writeFileSync(
    cfg,
    [
      'Port 22',
      ...addrs.map((a) => `ListenAddress ${a.includes(':') ? `[${a}]` : a}`),
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin yes',
      'UsePAM no',
      'StrictModes no',
      'MaxStartups 200:30:400',
      'MaxSessions 100',
      'Subsystem sftp internal-sftp',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  spawnInNs(t, ns, ['/usr/sbin/sshd', '-f', cfg, '-D', '-e']);
  for (const a of addrs) await waitForPort(ns, a.includes(':') ? `[${a}]` : a, 22);
  const opts = [
    '-F',
    '/dev/null',
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'BatchMode=yes',
    '-o',
    'LogLevel=ERROR',
    '-o',
    'ConnectTimeout=15',
    '-i',
    key,
  ];
  return { key, opts, dir };
}

/** A file of random bytes; returns its sha256. */
export function randomFile(path: string, mb: number): string {
  const data = randomBytes(mb << 20);
  writeFileSync(path, data);
  return sha256(data);
}

export const fileSha = (path: string) => sha256(readFileSync(path));

export const TLS_PORT = 8443;

/**
 * nginx serving `www` over TLS 1.3 only, with HTTP/2, on each address; the
 * certificate is self-signed, made here for those addresses (curl verifies it
 * with --cacert). Returns the certificate's path.
 */
export async function startTlsNginx(t: TeardownHost, ns: string, tmp: string, www: string, addrs: string[]): Promise<string> {
  const dir = join(tmp, 'tls');
  mkdirSync(dir, { recursive: true });
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const san = addrs.map((a) => `IP:${a}`).join(',');
  await selfSignedCert(ns, { key, cert }, 'tunsteer test', san);
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off;
master_process off;
worker_processes 1;
user root;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
${addrs.map((a) => `    listen ${a.includes(':') ? `[${a}]` : a}:${TLS_PORT} ssl http2;`).join('\n')}
    ssl_certificate ${cert};
    ssl_certificate_key ${key};
    ssl_protocols TLSv1.3;
    root ${www};
  }
}
`,
  );
  spawnInNs(t, ns, ['nginx', '-c', conf, '-p', dir]);
  for (const a of addrs) await waitForPort(ns, a.includes(':') ? `[${a}]` : a, TLS_PORT);
  return cert;
}

export async function startWsEcho(t: TeardownHost, ns: string, addrs: string[]): Promise<void> {
  for (const ip of addrs) {
    const p = spawnNodeInNs(t, ns, join(ROOT, 'test/helpers/real/ws-peer.ts'), ['server', ip, String(WS_PORT)]);
    await p.waitForLine((l) => l === 'listening');
  }
}
