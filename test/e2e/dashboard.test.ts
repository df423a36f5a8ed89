// The dashboard at /ui/ in a real browser: Debian's chromium, headless,
// driven by playwright-core (no browser download), run inside the gateway's
// namespace (a wrapper execs it there) against the loopback listener. The
// page asks for the secret, then shows a download made through the gateway
// while it is open (its name from a fake IP, its rule), its traffic chart
// moves while it runs, rule hits and the fake-IP table fill in, the log tail
// shows connection lines, and closing the download from the page resets the
// client. TUNSTEER_DASHBOARD_SCREENSHOT=docs/dashboard.png keeps a picture.
import t from 'tap';
import { resolve } from 'node:path';
import { nsExec, snapshotRouting } from '../helpers/netns.js';
import { chromiumIn, dashboardGateway } from '../helpers/dashboard-gateway.js';

t.setTimeout(300_000);
const PORT = 9092;
const SECRET = 'dash-4d1f-secret';

const { topo, gw, before } = await dashboardGateway(t, {
  port: PORT,
  secret: SECRET,
  tun: 'tsd0',
  rules: ['{ name: blocked, domain_suffix: blocked.example, action: reject }', '{ name: web, domain: web.example, action: direct }'],
});

const browser = await chromiumIn(t, topo);

t.test('the dashboard shows a download, charts it, and closing it from the page resets the client', async (t) => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`http://127.0.0.1:${PORT}/ui/`);
  await page.getByTestId('secret').waitFor({ state: 'visible', timeout: 10_000 });
  t.pass('without the secret the page asks for it');
  await page.getByTestId('secret').fill(SECRET);
  await page.getByTestId('secret').press('Enter');
  await page.waitForFunction(() => document.getElementById('status')!.textContent!.includes('route-all'), null, { timeout: 15_000 });
  t.match(await page.getByTestId('status').textContent(), /route-all · tsd0/, 'the header shows the mode and the device');

  const download = nsExec(topo.client, ['curl', '-sS', '--limit-rate', '400K', '-o', '/dev/null', 'http://web.example/60m.bin'], { timeoutMs: 120_000, allowFail: true });
  const named = page.locator('#connections tbody tr[data-host="web.example"]');
  await named.waitFor({ timeout: 20_000 });
  const row = page.locator(`#connections tbody tr[data-id="${await named.getAttribute('data-id')}"]`);
  const cells = await row.locator('td').allTextContents();
  t.equal(cells[0], 'web.example', 'the connection, named by its fake IP');
  t.match(cells[1], /^198\.18\.\d+\.\d+:80$|^\[fc00:.*\]:80$/, 'to the fake address');
  t.equal(cells[4], 'web', 'under its rule');
  t.equal(cells[5], 'direct');

  // the chart moves while the transfer runs
  await page.waitForFunction(() => Number(document.getElementById('chart')!.dataset.lastDown) > 100_000, null, { timeout: 20_000 });
  const first = Number(await page.getByTestId('chart').getAttribute('data-samples'));
  await page.waitForFunction((n) => Number(document.getElementById('chart')!.dataset.samples) > n + 1, first, { timeout: 10_000 });
  // curl's --limit-rate reads in bursts: some seconds show nothing, so the last ten are looked at
  const recent = Number(await page.getByTestId('chart').getAttribute('data-recent-down'));
  t.ok(recent > 100_000, `the chart moved on with the download's rate (up to ${recent} B/s in its last 10 s)`);

  // filters and sorting
  await page.getByTestId('filter-rule').fill('nope');
  t.equal(await row.count(), 0, 'filtering by rule hides it');
  await page.getByTestId('filter-rule').fill('web');
  await row.waitFor({ timeout: 5000 });
  t.equal(await row.count(), 1, 'and shows it again');

  await page.waitForFunction(() => [...document.querySelectorAll('#rules tbody tr[data-rule="web"] td.hits')].some((td) => Number(td.textContent) >= 1), null, { timeout: 10_000 });
  t.pass('the rule table counts the hit');
  await page.waitForFunction(() => document.getElementById('fakeips')!.textContent!.includes('web.example'), null, { timeout: 10_000 });
  t.pass('the fake-IP table has the name');
  const hello = await nsExec(topo.client, ['curl', '-sS', 'http://web.example/hello']);
  t.equal(hello.stdout, 'hello from nginx\n');
  await page.waitForFunction(() => [...document.querySelectorAll('#log li')].some((li) => li.textContent!.includes(' conn ') && li.textContent!.includes('web.example')), null, {
    timeout: 15_000,
  });
  t.pass('the log tail shows the connection line of a request that ended');

  const shot = process.env.TUNSTEER_DASHBOARD_SCREENSHOT;
  if (shot) {
    // a picture for the README: the rate settled (curl's --limit-rate pauses after the first burst)
    await page.getByTestId('filter-rule').fill('');
    await new Promise((r) => setTimeout(r, 20_000));
    await page.screenshot({ path: resolve(shot), fullPage: true });
  }

  await row.locator('button.close').click();
  const r = await download;
  t.equal(r.code, 56, `curl: reset by the close button (${r.stderr.trim()})`);
  await row.waitFor({ state: 'detached', timeout: 10_000 });
  t.pass('the row is gone');
  t.same(errors, [], 'no error in the page');
});

t.test('stop: routes restored', async (t) => {
  await browser.close();
  gw.kill('SIGTERM');
  t.equal((await gw.exited()).code, 0, 'a clean stop exits 0');
  t.equal((await snapshotRouting(topo.client)).text, before.text);
});
