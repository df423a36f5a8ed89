// The control API on loopback against a stand-in data plane, with a real
// HTTP client (fetch) and a WebSocket client (ws): the Clash shapes the
// dashboards read, auth (bearer, ?token on a WebSocket, constant-time
// comparison; without a secret, a Host that is not an address is refused:
// no DNS rebinding), CORS, reload answers by outcome, the dashboard's files,
// and the secret in no answer and no log line.
import t, { type Test } from 'tap';
import type { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import { pino } from 'pino';
import { ControlServer } from '../../../src/control/control-server.js';
import type { ControlContext, ReloadResult, RuleView } from '../../../src/control/contracts.js';
import type { ConnectionInfo } from '../../../src/proxy/connection-registry.js';
import { LogTap } from '../../../src/logging/log-tap.js';
import { sameSecret } from '../../../src/control/auth.js';

const SECRET = 's3cret-for-the-test';

function stand(secret: string | undefined) {
  const conns: ConnectionInfo[] = [
    {
      id: 7,
      inbound: 'tun',
      proto: 'tls',
      src: '10.0.0.2:40000',
      dst: '203.0.113.10:443',
      host: 'api.example',
      rule: 'web',
      action: 'proxy',
      upstream: 'corp',
      up: 100,
      down: 2000,
      start: Date.now() - 5000,
    },
    { id: 8, inbound: 'http-proxy', proto: 'tcp', src: '127.0.0.1:5000', dst: '[2001:db8::1]:22', rule: 'default', action: 'direct', up: 1, down: 2, start: Date.now() },
  ];
  const closed: number[] = [];
  let totals = { up: 1000, down: 5000 };
  const reloads: boolean[] = [];
  let nextReload: ReloadResult = { ok: true, problems: [], applied: ['rules'], routing: [], restart: [], ms: 3 };
  const logged: string[] = [];
  const logs = new LogTap();
  const log = pino({ level: 'info' }, logs.destination({ write: (l: string) => void logged.push(l) }));
  let level = 'info';
  const ctx: ControlContext = {
    version: '0.1.0',
    ...(secret !== undefined ? { secret } : {}),
    live: [
      {
        connections: () => conns.filter((c) => !closed.includes(c.id)),
        close: (id) => (conns.some((c) => c.id === id) ? (closed.push(id), true) : false),
        closeAll: () => conns.filter((c) => !closed.includes(c.id) && closed.push(c.id)).length,
        totals: () => totals,
      },
    ],
    rules: (): RuleView[] => [
      { index: 0, name: 'web', match: { domain_suffix: ['example'], port: ['443'] }, action: 'proxy', upstream: 'corp', hits: 4, hitAt: Date.now() },
      { index: 1, name: 'blocked', match: { domain: ['bad.example'] }, action: 'reject', hits: 0, hitAt: 0 },
      { index: 2, name: 'default', match: {}, action: 'direct', hits: 9, hitAt: Date.now() },
    ],
    upstreams: () => [{ name: 'corp', type: 'socks5', address: '127.0.0.1:1080' }],
    config: () => ({ mode: 'route-all', tun: { name: 'tun9' }, rules: [{ value_env: '[redacted]' }], control: { secret: '[redacted]' } }),
    status: () => ({ mode: 'route-all', workers: 1 }),
    fakeIps: () => [{ host: 'api.example', ip: '198.18.0.4', ip6: 'fc00::4' }],
    reload: async (force) => {
      reloads.push(force);
      return nextReload;
    },
    setLogLevel: (l) => (['debug', 'info', 'warn', 'error', 'silent'].includes(l) ? ((level = l), true) : false),
    logLevel: () => level,
    logs,
  };
  return {
    ctx,
    log,
    logged,
    closed,
    reloads,
    setTotals: (b: { up: number; down: number }) => (totals = b),
    setReload: (r: ReloadResult) => (nextReload = r),
  };
}

async function serve(t: Test, secret: string | undefined) {
  const s = stand(secret);
  const ui = new Map([['index.html', { type: 'text/html; charset=utf-8', body: Buffer.from('<!doctype html><title>tunsteer</title>') }]]);
  const server = new ControlServer(s.ctx, s.log, ui);
  const at = await server.listen('127.0.0.1', 0);
  t.teardown(() => server.close());
  const base = `http://127.0.0.1:${(at as AddressInfo).port}`;
  const texts: string[] = [];
  const call = async (path: string, init: RequestInit & { token?: string | null } = {}) => {
    const token = init.token === undefined ? secret : init.token;
    const res = await fetch(base + path, { ...init, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(init.headers as Record<string, string>) } });
    const text = await res.text();
    texts.push(text);
    return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) };
  };
  return { ...s, server, base, call, texts, port: (at as AddressInfo).port };
}

function wsOpen(url: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket; next(): Promise<unknown>; status?: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    const queue: unknown[] = [];
    const waiting: ((m: unknown) => void)[] = [];
    ws.on('message', (d) => {
      const m = JSON.parse(String(d));
      const w = waiting.shift();
      if (w) w(m);
      else queue.push(m);
    });
    const next = () => new Promise<unknown>((r) => (queue.length ? r(queue.shift()) : waiting.push(r)));
    ws.on('open', () => resolve({ ws, next }));
    ws.on('unexpected-response', (_q, res) => resolve({ ws, next, status: res.statusCode }));
    ws.on('error', () => {});
  });
}

t.test('sameSecret: equal only for the same bytes, any length', async (t) => {
  t.ok(sameSecret('abc', 'abc'));
  t.notOk(sameSecret('abc', 'abd'));
  t.notOk(sameSecret('abc', 'abcd'));
  t.notOk(sameSecret('', 'abc'));
});

t.test('with a secret: 401 without it or with a wrong one, on HTTP and WebSocket; the UI and preflights need none', async (t) => {
  const s = await serve(t, SECRET);
  t.equal((await s.call('/version', { token: null })).status, 401);
  t.equal((await s.call('/connections', { token: 'nope' })).status, 401);
  t.equal((await s.call('/configs', { token: SECRET.slice(0, -1) })).status, 401);
  t.equal((await s.call('/version', { token: null, headers: { authorization: SECRET } })).status, 200, 'a bare secret in Authorization, as some clients send it');
  t.equal((await s.call('/version?token=' + SECRET, { token: null })).status, 401, '?token only on a WebSocket upgrade');
  t.equal((await s.call('/version')).status, 200);
  const ws = `ws://127.0.0.1:${s.port}`;
  t.equal((await wsOpen(`${ws}/traffic`)).status, 401, 'WebSocket without a token');
  t.equal((await wsOpen(`${ws}/traffic?token=wrong`)).status, 401, 'WebSocket with a wrong token');
  const ok = await wsOpen(`${ws}/traffic?token=${SECRET}`);
  t.equal(ok.status, undefined, 'WebSocket with the token');
  ok.ws.close();
  const bearer = await wsOpen(`${ws}/memory`, { authorization: `Bearer ${SECRET}` });
  t.equal(bearer.status, undefined, 'or with the bearer header');
  t.match(await bearer.next(), { inuse: Number });
  bearer.ws.close();
  const ui = await s.call('/ui/', { token: null });
  t.equal(ui.status, 200);
  t.match(ui.headers.get('content-type'), /text\/html/);
  t.equal((await s.call('/ui', { token: null, redirect: 'manual' })).status, 301);
  // raw paths (fetch would normalize them): nothing but the dashboard's own files is served without the secret
  const http = await import('node:http');
  const raw = (path: string) =>
    new Promise<{ status: number; body: string }>((r) =>
      http.get({ host: '127.0.0.1', port: s.port, path }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => r({ status: res.statusCode!, body }));
      }),
    );
  for (const bad of ['/ui/../package.json', '/ui/..%2fpackage.json', '/ui/%2e%2e/%2e%2e/package.json', '/ui/nope.js']) {
    const r = await raw(bad);
    t.ok(r.status === 404 || r.status === 401, `${bad}: ${r.status}`);
    t.notOk(r.body.includes('"version"'), `${bad}: no file outside the dashboard`);
  }
  const pre = await s.call('/connections/7', {
    method: 'OPTIONS',
    token: null,
    headers: {
      origin: 'https://yacd.example',
      'access-control-request-method': 'DELETE',
      'access-control-request-headers': 'authorization',
      'access-control-request-private-network': 'true',
    },
  });
  t.equal(pre.status, 204);
  t.match(pre.headers.get('access-control-allow-methods'), /DELETE/);
  t.equal(pre.headers.get('access-control-allow-private-network'), 'true');
  t.equal((await s.call('/version')).headers.get('access-control-allow-origin'), '*', 'answers carry CORS for dashboards served elsewhere');
  await new Promise((r) => setTimeout(r, 20));
  t.ok(
    s.logged.some((l) => l.includes('control API request refused')),
    'a refused request is logged',
  );
  t.notOk(
    [...s.logged, ...s.texts].some((x) => x.includes(SECRET)),
    'the secret is in no log line and no answer',
  );
});

t.test('without a secret (loopback): open, but only to a Host that names an address', async (t) => {
  const s = await serve(t, undefined);
  t.equal((await s.call('/version')).status, 200);
  t.equal((await s.call('/version', { headers: { host: `localhost:${s.port}` } })).status, 200);
  // fetch does not let a script set Host; http.request does
  const http = await import('node:http');
  const status = await new Promise<number>((r) =>
    http.get({ host: '127.0.0.1', port: s.port, path: '/connections', headers: { host: 'attacker.example' } }, (res) => (res.resume(), r(res.statusCode!))),
  );
  t.equal(status, 421, 'a rebound name is refused');
});

t.test('Clash shapes: version, configs, rules, proxies, connections, providers', async (t) => {
  const s = await serve(t, SECRET);
  t.same((await s.call('/version')).json(), { version: '0.1.0', meta: true, premium: true });
  const c = (await s.call('/configs')).json();
  t.match(c, { mode: 'rule', 'log-level': 'info', tun: { enable: true, device: 'tun9' }, tunsteer: { mode: 'route-all' } });
  const rules = (await s.call('/rules')).json().rules;
  t.match(rules[0], { index: 0, type: 'AND', payload: 'domain_suffix=example port=443', proxy: 'corp', extra: { hitCount: 4, disabled: false } });
  t.match(rules[1], { type: 'DOMAIN', payload: 'bad.example', proxy: 'REJECT', extra: { hitCount: 0, hitAt: '' } });
  t.match(rules[2], { type: 'MATCH', proxy: 'DIRECT', extra: { hitCount: 9 } });
  const proxies = (await s.call('/proxies')).json().proxies;
  t.same(Object.keys(proxies).sort(), ['DIRECT', 'GLOBAL', 'REJECT', 'corp']);
  t.match(proxies.GLOBAL, { type: 'Selector', now: 'DIRECT', all: ['DIRECT', 'REJECT', 'corp'] });
  t.match((await s.call('/proxies/corp')).json(), { name: 'corp', type: 'Socks5' });
  t.equal((await s.call('/proxies/nope')).status, 404);
  t.equal((await s.call('/proxies/GLOBAL', { method: 'PUT', body: '{"name":"corp"}' })).status, 400, "upstreams are the rules' to choose");
  t.same((await s.call('/providers/proxies')).json(), { providers: {} });
  t.same((await s.call('/providers/rules')).json(), { providers: {} });
  const conns = (await s.call('/connections')).json();
  t.equal(conns.uploadTotal, 1000);
  t.equal(conns.downloadTotal, 5000);
  t.match(conns.connections[0], {
    id: '7',
    upload: 100,
    download: 2000,
    chains: ['corp'],
    rule: 'web',
    metadata: { network: 'tcp', type: 'Tun', sourceIP: '10.0.0.2', sourcePort: '40000', destinationIP: '203.0.113.10', destinationPort: '443', host: 'api.example' },
    tunsteer: { inbound: 'tun', proto: 'tls', upstream: 'corp' },
  });
  t.match(conns.connections[1].metadata, { type: 'HTTP', destinationIP: '2001:db8::1', destinationPort: '22', host: '' });
  t.ok(!Number.isNaN(Date.parse(conns.connections[0].start)), 'start is a date');
  t.match((await s.call('/tunsteer/fakeip')).json(), { mappings: [{ host: 'api.example', ip: '198.18.0.4' }] });
  t.match((await s.call('/tunsteer/status')).json(), { mode: 'route-all', workers: 1 });
  t.equal((await s.call('/nope')).status, 404);
});

t.test('closing: one by id, or all; an unknown id is no error', async (t) => {
  const s = await serve(t, SECRET);
  t.equal((await s.call('/connections/7', { method: 'DELETE' })).status, 204);
  t.same(s.closed, [7]);
  t.equal((await s.call('/connections/999', { method: 'DELETE' })).status, 204);
  t.equal((await s.call('/connections/x7', { method: 'DELETE' })).status, 204);
  t.same(s.closed, [7], 'nothing else closed');
  t.equal((await s.call('/connections', { method: 'DELETE' })).status, 204);
  t.same(s.closed, [7, 8]);
});

t.test('reload: 200 applied, 400 invalid, 409 restart, 501 unsupported; force passed on; a body naming another file refused', async (t) => {
  const s = await serve(t, SECRET);
  const ok = await s.call('/configs?force=true', { method: 'PUT', body: JSON.stringify({ path: '', payload: '' }) });
  t.equal(ok.status, 200);
  t.match(ok.json(), { ok: true, applied: ['rules'] });
  t.same(s.reloads, [true]);
  s.setReload({ ok: false, refused: 'invalid', problems: ['c.yaml: rules[0].action: Invalid option'], applied: [], routing: [], restart: [], ms: 1 });
  const bad = await s.call('/configs', { method: 'PUT' });
  t.equal(bad.status, 400);
  t.match(bad.json(), { problems: ['c.yaml: rules[0].action: Invalid option'] });
  t.same(s.reloads, [true, false]);
  s.setReload({ ok: false, refused: 'restart', problems: ['tun.mtu: needs a restart (the TUN is open)'], applied: [], routing: [], restart: [], ms: 1 });
  t.equal((await s.call('/configs', { method: 'PUT' })).status, 409);
  s.setReload({ ok: false, refused: 'unsupported', problems: ['x'], applied: [], routing: [], restart: [], ms: 0 });
  t.equal((await s.call('/configs', { method: 'PUT' })).status, 501);
  const other = await s.call('/configs', { method: 'PUT', body: JSON.stringify({ path: '/etc/other.yaml' }) });
  t.equal(other.status, 400);
  t.match(other.json().message, /reloads the config file it was started with/);
  t.equal((await s.call('/configs', { method: 'PUT', body: '{nope' })).status, 400, 'a body that is not JSON');
  t.equal(s.reloads.length, 4, 'refused bodies never reached the reload');
});

t.test('PATCH /configs: the log level at once; what the file owns is refused by name', async (t) => {
  const s = await serve(t, SECRET);
  t.equal((await s.call('/configs', { method: 'PATCH', body: JSON.stringify({ 'log-level': 'warning', mode: 'Rule' }) })).status, 204);
  t.equal((await s.call('/configs')).json()['log-level'], 'warning');
  const r = await s.call('/configs', { method: 'PATCH', body: JSON.stringify({ 'allow-lan': true, 'mixed-port': 7890 }) });
  t.equal(r.status, 400);
  t.match(r.json().message, /allow-lan, mixed-port/);
  t.equal((await s.call('/configs', { method: 'PATCH', body: JSON.stringify({ 'log-level': 'loud' }) })).status, 400);
});

t.test('feeds: traffic as chunked HTTP and over a WebSocket, connections every interval, log lines by level', async (t) => {
  const s = await serve(t, SECRET);
  const ws = `ws://127.0.0.1:${s.port}`;
  const traffic = await wsOpen(`${ws}/traffic?token=${SECRET}`);
  // a second sample a second later: 3000 bytes up, 10000 down in that second
  s.setTotals({ up: 4000, down: 15_000 });
  const m = (await traffic.next()) as { up: number; down: number };
  t.ok(m.up > 0 && m.down > m.up, `a rate from the totals' growth (${JSON.stringify(m)})`);
  traffic.ws.close();
  const history = (await s.call('/tunsteer/traffic')).json().samples;
  t.ok(history.length >= 1, 'the history keeps it for a late dashboard');

  const res = await fetch(`${s.base}/traffic`, { headers: { authorization: `Bearer ${SECRET}` } });
  t.equal(res.status, 200);
  const reader = res.body!.getReader();
  const chunk = new TextDecoder().decode((await reader.read()).value);
  t.match(JSON.parse(chunk.split('\n')[0]), { up: Number, down: Number }, 'chunked HTTP: one JSON object a line');
  await reader.cancel();

  const conns = await wsOpen(`${ws}/connections?interval=200&token=${SECRET}`);
  const first = (await conns.next()) as { connections: unknown[] };
  const second = (await conns.next()) as { connections: unknown[] };
  t.equal(first.connections.length, 2);
  t.equal(second.connections.length, 2, 'again after the interval');
  conns.ws.close();

  const logs = await wsOpen(`${ws}/logs?level=warning&token=${SECRET}`);
  const structured = await wsOpen(`${ws}/logs?level=debug&format=structured&token=${SECRET}`);
  s.log.info({ src: '10.0.0.2:1', dst: '203.0.113.1:80' }, 'conn');
  s.log.warn({ why: 'x' }, 'something odd');
  t.same(await logs.next(), { type: 'warning', payload: 'something odd why=x' }, 'info is below warning: only the warning');
  t.match(await structured.next(), {
    level: 'info',
    message: 'conn',
    fields: [
      { key: 'src', value: '10.0.0.2:1' },
      { key: 'dst', value: '203.0.113.1:80' },
    ],
  });
  logs.ws.close();
  structured.ws.close();
  const tail = (await s.call('/tunsteer/logs?level=info')).json().lines;
  t.ok(
    tail.some((l: { message: string }) => l.message === 'conn'),
    'the tail holds the lines written before',
  );
});

// metacubexd (MetaCubeX/metacubexd, packages/ui/composables/useApi.ts and
// useWebSocket.ts) as it calls a backend: ky with `Authorization: Bearer`,
// WebSockets with ?token=, from a page served elsewhere. What it reads must
// be there in its shape; what tunsteer does not serve must be a plain 4xx
// with a message (the dashboard shows an error), never a 500 or a hang.
t.test("metacubexd's requests, as it sends them", async (t) => {
  const s = await serve(t, SECRET);
  const origin = { origin: 'https://metacubex.github.io' };
  // ky sends JSON with a content type and the bearer header: the browser asks first
  const pre = await s.call('/configs', {
    method: 'OPTIONS',
    token: null,
    headers: { ...origin, 'access-control-request-method': 'PATCH', 'access-control-request-headers': 'authorization,content-type' },
  });
  t.equal(pre.status, 204);
  t.match(pre.headers.get('access-control-allow-headers'), /Authorization/i);
  t.match(pre.headers.get('access-control-allow-methods'), /PATCH/);
  // yacd checks a backend with GET / and wants {hello: string}
  t.type((await s.call('/', { headers: { ...origin, 'content-type': 'application/json' } })).json().hello, 'string');
  // checkEndpointAPI: GET {url}/version; a 401 is "check the secret"
  t.equal((await s.call('/version', { token: 'wrong', headers: origin })).status, 401);
  const v = (await s.call('/version', { headers: origin })).json();
  t.type(v.version, 'string');
  t.equal(v.meta, true);
  t.notMatch(v.version, /sing-box/i, 'not taken for sing-box (whose config shape differs)');
  // the Config fields its pages read
  const c = (await s.call('/configs', { headers: origin })).json();
  for (const k of ['mode', 'mode-list', 'port', 'socks-port', 'redir-port', 'tproxy-port', 'mixed-port', 'allow-lan', 'bind-address', 'log-level', 'ipv6', 'tun'])
    t.ok(k in c, `configs has ${k}`);
  t.match(c.tun, { enable: Boolean, device: String, stack: String, 'auto-route': Boolean });
  // updateBackendConfigAPI('log-level', 'debug') and a mode switch to the only mode there is
  t.equal((await s.call('/configs', { method: 'PATCH', headers: { ...origin, 'content-type': 'application/json' }, body: JSON.stringify({ 'log-level': 'debug' }) })).status, 204);
  t.equal((await s.call('/configs', { method: 'PATCH', headers: { ...origin, 'content-type': 'application/json' }, body: JSON.stringify({ mode: 'rule' }) })).status, 204);
  // reloadConfigFileAPI: PUT configs?force=true {path:'', payload:''}
  t.equal(
    (await s.call('/configs?force=true', { method: 'PUT', headers: { ...origin, 'content-type': 'application/json' }, body: JSON.stringify({ path: '', payload: '' }) })).status,
    200,
  );
  // fetchRemoteConfigAPI sends the text of another config: refused, by name
  const remote = await s.call('/configs?force=true', { method: 'PUT', body: JSON.stringify({ path: '', payload: 'mode: rule\n' }) });
  t.equal(remote.status, 400);
  t.match(remote.json().message, /config file it was started with/);
  // the lists its pages load
  const proxies = (await s.call('/proxies')).json().proxies;
  for (const p of Object.values(proxies) as Record<string, unknown>[])
    t.match(p, { name: String, type: String, history: Array, udp: Boolean, hidden: Boolean }, `proxy ${String(p.name)}`);
  t.same((await s.call('/providers/proxies')).json(), { providers: {} });
  const rules = (await s.call('/rules')).json().rules as Record<string, unknown>[];
  for (const r of rules) t.match(r, { index: Number, type: String, payload: String, proxy: String, size: Number, extra: { hitCount: Number, disabled: Boolean } });
  t.same((await s.call('/providers/rules')).json(), { providers: {} });
  // useWebSocket: connections, traffic, memory, logs?level=
  const ws = `ws://127.0.0.1:${s.port}`;
  const conns = await wsOpen(`${ws}/connections?token=${SECRET}`, origin);
  const msg = (await conns.next()) as { connections: Record<string, unknown>[]; downloadTotal: number; uploadTotal: number };
  conns.ws.close();
  t.match(msg, { downloadTotal: Number, uploadTotal: Number });
  // every field of its ConnectionRawMessage, with its type
  const metadataKeys = [
    'network',
    'type',
    'destinationIP',
    'destinationPort',
    'dnsMode',
    'host',
    'inboundIP',
    'inboundName',
    'inboundPort',
    'inboundUser',
    'process',
    'processPath',
    'remoteDestination',
    'sniffHost',
    'sourceIP',
    'sourcePort',
    'specialProxy',
    'specialRules',
    'uid',
  ];
  for (const conn of msg.connections) {
    t.match(conn, { id: String, download: Number, upload: Number, chains: Array, rule: String, rulePayload: String, start: String });
    const m = conn.metadata as Record<string, unknown>;
    t.same(
      metadataKeys.filter((k) => !(k in m)),
      [],
      `connection ${String(conn.id)}: every metadata field`,
    );
    t.type(m.uid, 'number');
  }
  for (const [path, shape] of [
    ['traffic', { up: Number, down: Number }],
    ['memory', { inuse: Number, oslimit: Number }],
  ] as const) {
    const feed = await wsOpen(`${ws}/${path}?token=${SECRET}`, origin);
    t.match(await feed.next(), shape, `/${path}`);
    feed.ws.close();
  }
  const logs = await wsOpen(`${ws}/logs?token=${SECRET}&level=debug`, origin);
  s.log.info('a line');
  t.same(await logs.next(), { type: 'info', payload: 'a line' });
  logs.ws.close();
  // closeSingleConnectionAPI, closeAllConnectionsAPI
  t.equal((await s.call('/connections/7', { method: 'DELETE' })).status, 204);
  t.equal((await s.call('/connections', { method: 'DELETE' })).status, 204);
  // what it calls that tunsteer does not serve (README "Existing dashboards"): a 4xx with a message
  const unserved: [string, string][] = [
    ['PUT', '/proxies/GLOBAL'],
    ['DELETE', '/proxies/GLOBAL'],
    ['GET', '/proxies/DIRECT/delay?url=http%3A%2F%2Fwww.gstatic.com%2Fgenerate_204&timeout=5000'],
    ['GET', '/group/GLOBAL/delay?url=x&timeout=5000'],
    ['PUT', '/providers/proxies/p'],
    ['GET', '/providers/proxies/p/healthcheck'],
    ['PUT', '/providers/rules/r'],
    ['PATCH', '/rules/disable'],
    ['POST', '/cache/fakeip/flush'],
    ['POST', '/cache/dns/flush'],
    ['POST', '/configs/geo'],
    ['POST', '/upgrade'],
    ['POST', '/upgrade/ui'],
    ['POST', '/restart'],
  ];
  for (const [method, path] of unserved) {
    const r = await s.call(path, { method, body: method === 'GET' ? undefined : '{}' });
    t.ok(r.status >= 400 && r.status < 500, `${method} ${path}: ${r.status}`);
    t.type(r.json().message, 'string');
  }
  t.notOk(
    s.texts.some((x) => x.includes(SECRET)),
    'the secret in no answer',
  );
});
