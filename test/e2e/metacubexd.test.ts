// metacubexd, the Clash dashboard, unmodified against tunsteer's control API:
// its released files (the gh-pages branch of MetaCubeX/metacubexd, given in
// METACUBEXD_DIR; skipped without it: the tests download nothing) served on
// the client namespace's loopback, in Debian's chromium (playwright-core),
// logged in through its own ?hostname&port&secret deep link. It must connect
// (no auth or network error), list a download made through the gateway under
// its name and rule, and its close button must reset the client. Every API
// call it makes is recorded: those tunsteer serves must succeed.
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { nsExec, snapshotRouting, spawnInNs } from '../helpers/netns.js';
import { waitForPort } from '../helpers/topology.js';
import { chromiumIn, dashboardGateway } from '../helpers/dashboard-gateway.js';

const DIR = process.env.METACUBEXD_DIR;
if (!DIR || !existsSync(join(DIR, 'index.html'))) {
  t.plan(0, 'METACUBEXD_DIR (a built metacubexd: its gh-pages files) not given');
  process.exit(0);
}

t.setTimeout(300_000);
const PORT = 9093;
const UI_PORT = 8093;
const SECRET = 'mxd-8c1e-secret';

const { topo, gw, before } = await dashboardGateway(t, { port: PORT, secret: SECRET, tun: 'tsm0', rules: ['{ name: web, domain: web.example, action: direct }'] });
// metacubexd's files from another origin than the API, as when it is served from its own site
spawnInNs(t, topo.client, ['python3', '-m', 'http.server', '--bind', '127.0.0.1', '--directory', DIR, String(UI_PORT)], { stdio: 'ignore' });
await waitForPort(topo.client, '127.0.0.1', UI_PORT, 20_000);

const browser = await chromiumIn(t, topo);

t.test('metacubexd connects, lists a download under its name and rule, and its close button resets the client', async (t) => {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const api = `http://127.0.0.1:${PORT}`;
  const calls: string[] = [];
  page.on('response', (r) => {
    if (r.url().startsWith(api)) calls.push(`${r.request().method()} ${new URL(r.url()).pathname} ${r.status()}`);
  });
  const sockets: string[] = [];
  page.on('websocket', (ws) => sockets.push(new URL(ws.url()).pathname));
  await page.goto(`http://127.0.0.1:${UI_PORT}/#/setup?hostname=127.0.0.1&port=${PORT}&secret=${SECRET}&http=1`);
  await page.waitForURL(/#\/(overview|proxies)/, { timeout: 30_000 });
  t.pass(`logged in: ${page.url().replace(/secret=[^&]*/, 'secret=…')}`);

  const download = nsExec(topo.client, ['curl', '-sS', '--limit-rate', '400K', '-o', '/dev/null', 'http://web.example/60m.bin'], { timeoutMs: 120_000, allowFail: true });
  await page.goto(`http://127.0.0.1:${UI_PORT}/#/connections`);
  const row = page.locator('tr', { hasText: 'web.example' }).first();
  await row.waitFor({ timeout: 30_000 });
  const text = (await row.textContent()) ?? '';
  t.comment(`its row: ${text}`);
  t.match(text, /web\.example/, 'the connection, by its name');
  t.match(text, /DIRECT/, 'its chain');
  t.match(text, /web : direct/, 'its rule and what it did (rule : rulePayload)');
  await row.locator('.conn-close-btn').click();
  const r = await download;
  t.equal(r.code, 56, `curl: reset by metacubexd's close button (${r.stderr.trim()})`);

  // the rules page: tunsteer's rule as Clash shows one, with its hit count
  // (the page may still hold the connections' text: wait for the rules themselves)
  const rulesAnswer = page.waitForResponse((r) => new URL(r.url()).pathname === '/rules' && r.request().method() === 'GET', { timeout: 30_000 });
  await page.goto(`http://127.0.0.1:${UI_PORT}/#/rules`);
  t.equal((await rulesAnswer).status(), 200, 'it fetched GET /rules');
  await page.getByText('DOMAIN', { exact: true }).first().waitFor({ timeout: 30_000 });
  t.pass('the rules page lists the rule by its Clash type');

  const failed = calls.filter((c) => !/ [23]\d\d$/.test(c));
  t.comment(`API calls: ${[...new Set(calls.map((c) => c.replace(/\/connections\/\d+/, '/connections/:id')))].join(', ')}`);
  t.comment(`WebSockets: ${[...new Set(sockets)].join(', ')}`);
  for (const need of ['GET /version 200', 'GET /configs 200', 'DELETE /connections/'])
    t.ok(
      calls.some((c) => c.startsWith(need)),
      `it called ${need}`,
    );
  for (const ws of ['/connections', '/traffic', '/memory', '/logs']) t.ok(sockets.includes(ws), `it opened the ${ws} WebSocket`);
  t.same(
    failed.filter((c) => !/\/(delay|healthcheck|group|cache|upgrade|restart|configs\/geo|rules\/disable|dns)/.test(c)),
    [],
    'no call tunsteer serves failed',
  );
});

t.test('stop: routes restored', async (t) => {
  await browser.close();
  gw.kill('SIGTERM');
  t.equal((await gw.exited()).code, 0, 'a clean stop exits 0');
  t.equal((await snapshotRouting(topo.client)).text, before.text);
});
