// A real HTTP and WebSocket client for a control API that listens on
// loopback inside a test namespace: socat in that namespace bridges a Unix
// socket in the test's tmp dir (the filesystem is shared, the network is
// not) to the listener, and node's http and ws clients speak through it.
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { nsExec, spawnInNs, type TeardownHost } from './netns.js';

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json(): any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface ControlClient {
  request(method: string, path: string, opts?: { token?: string | null; body?: string; headers?: Record<string, string> }): Promise<Answer>;
  /** Opens a WebSocket and collects its messages; close() ends it. */
  socket(path: string, token?: string | null): Promise<{ messages: unknown[]; next(timeoutMs?: number): Promise<unknown>; close(): void }>;
  /** The answer to a WebSocket upgrade that was refused (its status), or 101. */
  upgradeStatus(path: string, token?: string | null): Promise<number>;
  socketPath: string;
}

export async function controlClient(t: TeardownHost, ns: string, tmp: string, port: number, secret?: string): Promise<ControlClient> {
  const socketPath = join(tmp, `control-${port}.sock`);
  spawnInNs(t, ns, ['socat', `UNIX-LISTEN:${socketPath},fork,unlink-early`, `TCP:127.0.0.1:${port}`]);
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(socketPath, () => {
        s.destroy();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (ok) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await nsExec(ns, ['true']);
  // socat accepts before the API listens (a gateway with workers starts them first): wait for an HTTP answer, any status
  for (let i = 0; i < 200; i++) {
    const answered = await new Promise<boolean>((r) => {
      const req = http.request({ socketPath, method: 'GET', path: '/version', headers: { host: `127.0.0.1:${port}` } }, (res) => {
        res.resume();
        r(true);
      });
      req.on('error', () => r(false));
      req.end();
    });
    if (answered) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const auth = (token: string | null | undefined) => (token === null ? {} : { authorization: `Bearer ${token ?? secret ?? ''}` });
  const withToken = (path: string, token: string | null | undefined) => {
    const v = token === null ? undefined : (token ?? secret);
    if (v === undefined) return path;
    return `${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(v)}`;
  };
  return {
    socketPath,
    request(method, path, opts = {}) {
      return new Promise((resolve, reject) => {
        const req = http.request(
          { socketPath, method, path, headers: { host: `127.0.0.1:${port}`, ...(secret !== undefined || opts.token ? auth(opts.token) : {}), ...opts.headers } },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => (text += d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) }));
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.setTimeout(20_000, () => req.destroy(new Error(`${method} ${path}: no answer within 20 s`)));
        req.end(opts.body);
      });
    },
    socket(path, token) {
      return new Promise((resolve, reject) => {
        const ws = new WebSocket(`ws+unix://${socketPath}:${withToken(path, token)}`, { headers: { host: `127.0.0.1:${port}` } });
        const messages: unknown[] = [];
        let read = 0;
        const waiters: (() => void)[] = [];
        ws.on('message', (d) => {
          messages.push(JSON.parse(String(d)));
          for (const w of waiters.splice(0)) w();
        });
        ws.on('open', () =>
          resolve({
            messages,
            // the next message not yet read, whenever it came
            next: (timeoutMs = 10_000) =>
              new Promise((res, rej) => {
                if (read < messages.length) return res(messages[read++]);
                const timer = setTimeout(() => rej(new Error(`no message on ${path} within ${timeoutMs} ms`)), timeoutMs);
                waiters.push(() => {
                  clearTimeout(timer);
                  res(messages[read++]);
                });
              }),
            close: () => ws.close(),
          }),
        );
        ws.on('error', reject);
      });
    },
    upgradeStatus(path, token) {
      return new Promise((resolve) => {
        const ws = new WebSocket(`ws+unix://${socketPath}:${withToken(path, token)}`, { headers: { host: `127.0.0.1:${port}` } });
        ws.on('open', () => {
          ws.close();
          resolve(101);
        });
        ws.on('unexpected-response', (_req, res) => {
          resolve(res.statusCode ?? 0);
          res.destroy();
        });
        ws.on('error', () => resolve(0));
      });
    },
  };
}
