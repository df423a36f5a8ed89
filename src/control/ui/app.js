// tunsteer's dashboard: plain JavaScript against the control API on the same
// listener (the Clash-shaped endpoints and tunsteer's own), no build step and
// nothing fetched from elsewhere. Everything from the network (host names,
// SNI, log lines) goes into the page as text, never as HTML.
'use strict';

const $ = (id) => document.getElementById(id);
const state = {
  secret: localStorage.getItem('tunsteer.secret') || '',
  connections: [],
  sort: { key: 'start', asc: false },
  traffic: [],
  sockets: [],
  timers: [],
};
const HISTORY_S = 300;

function headers() {
  return state.secret ? { authorization: `Bearer ${state.secret}` } : {};
}

async function api(path, init = {}) {
  const res = await fetch(path, { ...init, headers: { ...headers(), ...(init.headers || {}) } });
  if (res.status === 401) {
    askSecret();
    throw new Error('unauthorized');
  }
  const text = await res.text();
  const body = text ? JSON.parse(text) : null;
  if (!res.ok) throw Object.assign(new Error(body?.message || res.statusText), { body, status: res.status });
  return body;
}

function socket(path, onMessage) {
  const url = new URL(path, location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  if (state.secret) url.searchParams.set('token', state.secret);
  const ws = new WebSocket(url);
  ws.onmessage = (e) => onMessage(JSON.parse(e.data));
  ws.onclose = () => {
    if (state.sockets.includes(ws)) setTimeout(() => start(), 2000);
  };
  state.sockets.push(ws);
  return ws;
}

function stop() {
  const s = state.sockets;
  state.sockets = [];
  for (const ws of s) ws.close();
  for (const t of state.timers) clearInterval(t);
  state.timers = [];
}

function askSecret() {
  stop();
  $('login').hidden = false;
  $('status').textContent = 'secret needed';
  $('secret').focus();
}

function say(text, bad = false) {
  const m = $('message');
  m.textContent = text;
  m.className = bad ? 'bad' : '';
  m.hidden = false;
  clearTimeout(say.timer);
  say.timer = setTimeout(() => (m.hidden = true), 8000);
}

function bytes(n) {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(n < 10 ? 1 : 0)} ${u[i]}`;
}

function age(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
}

function cell(tr, text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

// ---- connections ----

function row(c) {
  return { ...c, via: c.upstream || c.action, host: c.host || '' };
}

function shown() {
  const fh = $('f-host').value.toLowerCase();
  const fr = $('f-rule').value.toLowerCase();
  const fu = $('f-upstream').value.toLowerCase();
  const { key, asc } = state.sort;
  return state.connections
    .map(row)
    .filter((c) => (!fh || `${c.host} ${c.dst} ${c.src}`.toLowerCase().includes(fh)) && (!fr || c.rule.toLowerCase().includes(fr)) && (!fu || c.via.toLowerCase().includes(fu)))
    .sort((a, b) => {
      const x = a[key];
      const y = b[key];
      const d = typeof x === 'number' ? x - y : String(x).localeCompare(String(y));
      return asc ? d : -d;
    });
}

function renderConnections() {
  const list = shown();
  const now = Date.now();
  const body = $('connections').tBodies[0];
  body.replaceChildren(
    ...list.map((c) => {
      const tr = document.createElement('tr');
      tr.dataset.id = c.id;
      tr.dataset.host = c.host;
      cell(tr, c.host || '—', 'host').title = c.host;
      cell(tr, c.dst);
      cell(tr, c.src);
      cell(tr, c.inbound);
      cell(tr, c.rule);
      cell(tr, c.via);
      cell(tr, bytes(c.up), 'num');
      cell(tr, bytes(c.down), 'num');
      cell(tr, age(now - c.start), 'num');
      const td = cell(tr, '');
      const b = document.createElement('button');
      b.className = 'close';
      b.type = 'button';
      b.title = 'Close: the client gets a reset, the upstream is closed';
      b.textContent = '×';
      b.dataset.id = c.id;
      b.addEventListener('click', () => closeConnection(c.id));
      td.appendChild(b);
      return tr;
    }),
  );
  $('conn-count').textContent = list.length === state.connections.length ? `${list.length} open` : `${list.length} of ${state.connections.length} open`;
  for (const th of $('connections').tHead.rows[0].cells) {
    th.classList.toggle('sorted', th.dataset.key === state.sort.key);
    th.classList.toggle('asc', th.dataset.key === state.sort.key && state.sort.asc);
  }
}

async function closeConnection(id) {
  try {
    await api(`/connections/${encodeURIComponent(id)}`, { method: 'DELETE' });
    state.connections = state.connections.filter((c) => c.id !== id);
    renderConnections();
  } catch (e) {
    say(`closing ${id} failed: ${e.message}`, true);
  }
}

// ---- traffic chart ----

function addSample(s) {
  state.traffic.push(s);
  while (state.traffic.length > HISTORY_S) state.traffic.shift();
  $('rate').innerHTML = '';
  const up = document.createElement('span');
  up.className = 'legend-up';
  up.textContent = `up ${bytes(s.up)}/s`;
  const down = document.createElement('span');
  down.className = 'legend-down';
  down.textContent = ` down ${bytes(s.down)}/s`;
  $('rate').append(up, down);
  drawChart();
}

function drawChart() {
  const c = $('chart');
  const dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth || 900;
  const h = c.clientHeight || 180;
  c.width = w * dpr;
  c.height = h * dpr;
  const g = c.getContext('2d');
  g.scale(dpr, dpr);
  g.clearRect(0, 0, w, h);
  const css = getComputedStyle(document.documentElement);
  const pts = state.traffic;
  const max = Math.max(1024, ...pts.map((p) => Math.max(p.up, p.down)));
  g.strokeStyle = css.getPropertyValue('--line');
  g.fillStyle = css.getPropertyValue('--muted');
  g.font = '11px system-ui';
  for (let i = 0; i <= 4; i++) {
    const y = 4 + ((h - 20) * i) / 4;
    g.beginPath();
    g.moveTo(0, y);
    g.lineTo(w, y);
    g.stroke();
    g.fillText(`${bytes(Math.round((max * (4 - i)) / 4))}/s`, 4, y + 11);
  }
  g.fillText(`last ${HISTORY_S / 60} minutes`, w - 90, h - 4);
  const x = (i) => w - ((pts.length - 1 - i) * w) / (HISTORY_S - 1);
  const y = (v) => 4 + (h - 20) * (1 - v / max);
  for (const [key, color] of [
    ['up', '--up'],
    ['down', '--down'],
  ]) {
    g.strokeStyle = css.getPropertyValue(color);
    g.lineWidth = 1.5;
    g.beginPath();
    pts.forEach((p, i) => (i ? g.lineTo(x(i), y(p[key])) : g.moveTo(x(i), y(p[key]))));
    g.stroke();
  }
  // for tests and tools: what the chart shows
  c.dataset.samples = String(pts.length);
  c.dataset.lastDown = String(pts.at(-1)?.down ?? 0);
  c.dataset.lastUp = String(pts.at(-1)?.up ?? 0);
  c.dataset.recentDown = String(Math.max(0, ...pts.slice(-10).map((p) => p.down)));
}

// ---- rules, fake IPs, status, log ----

async function refreshRules() {
  const { rules } = await api('/rules');
  $('rules').tBodies[0].replaceChildren(
    ...rules.map((r) => {
      const t = r.tunsteer;
      const tr = document.createElement('tr');
      tr.dataset.rule = t.name;
      cell(tr, String(t.index));
      cell(tr, t.name);
      cell(
        tr,
        Object.entries(t.match)
          .map(([k, v]) => `${k}=${v.join(',')}`)
          .join(' ') || '(anything else)',
      );
      cell(tr, t.upstream ? `${t.action} via ${t.upstream}` : t.action);
      cell(tr, String(t.hits), 'num hits');
      return tr;
    }),
  );
}

async function refreshFakeIps() {
  const { mappings } = await api('/tunsteer/fakeip');
  $('fake-count').textContent = `${mappings.length}`;
  $('fakeips').tBodies[0].replaceChildren(
    ...mappings.map((m) => {
      const tr = document.createElement('tr');
      cell(tr, m.host);
      cell(tr, m.ip);
      cell(tr, m.ip6 || '');
      return tr;
    }),
  );
}

async function refreshStatus() {
  const s = await api('/tunsteer/status');
  const dev = s.device ? `${s.device.name} (mtu ${s.device.mtu})` : 'no TUN';
  $('status').textContent = `${s.mode} · ${dev} · ${s.connections} connection${s.connections === 1 ? '' : 's'} · up since ${new Date(s.startedAt).toLocaleString()}`;
}

function addLog(l) {
  const li = document.createElement('li');
  li.className = l.level;
  const fields = (l.fields || []).map((f) => `${f.key}=${f.value}`).join(' ');
  li.textContent = `${(l.time || '').slice(11, 19)} ${l.level} ${l.message}${fields ? ` ${fields}` : ''}`;
  const log = $('log');
  const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  log.appendChild(li);
  while (log.children.length > 300) log.firstChild.remove();
  if (atEnd) log.scrollTop = log.scrollHeight;
}

async function reloadConfig() {
  try {
    const r = await api('/configs?force=false', { method: 'PUT', body: '{}', headers: { 'content-type': 'application/json' } });
    say(`reloaded in ${r.ms} ms${r.applied.length ? `: ${r.applied.join(', ')}` : ' (no setting changed)'}${r.routing.length ? `\n${r.routing.join('\n')}` : ''}`);
    refreshRules().catch(() => {});
  } catch (e) {
    say(`${e.message}${e.body?.problems ? `\n${e.body.problems.join('\n')}` : ''}`, true);
  }
}

// ---- start ----

async function start() {
  stop();
  try {
    await refreshStatus();
  } catch (e) {
    if (e.message !== 'unauthorized') $('status').textContent = `cannot reach the control API: ${e.message}`;
    return;
  }
  $('login').hidden = true;
  const [{ samples }, { lines }] = await Promise.all([api('/tunsteer/traffic'), api('/tunsteer/logs?level=info')]);
  state.traffic = samples.slice(-HISTORY_S);
  drawChart();
  $('log').replaceChildren();
  lines.forEach(addLog);
  socket('/connections?interval=1000', (m) => {
    state.connections = m.connections.map((c) => c.tunsteer);
    renderConnections();
  });
  socket('/traffic', (s) => addSample({ t: Date.now(), up: s.up, down: s.down }));
  socket('/logs?level=info&format=structured', addLog);
  const every = (ms, f) => {
    f().catch(() => {});
    state.timers.push(setInterval(() => f().catch(() => {}), ms));
  };
  every(2000, refreshRules);
  every(5000, refreshFakeIps);
  every(3000, refreshStatus);
}

$('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  state.secret = $('secret').value;
  localStorage.setItem('tunsteer.secret', state.secret);
  start();
});
for (const id of ['f-host', 'f-rule', 'f-upstream']) $(id).addEventListener('input', renderConnections);
for (const th of $('connections').tHead.rows[0].cells) {
  if (!th.dataset.key) continue;
  th.addEventListener('click', () => {
    const key = th.dataset.key;
    state.sort = { key, asc: state.sort.key === key ? !state.sort.asc : key === 'host' || key === 'rule' || key === 'via' };
    renderConnections();
  });
}
$('close-all').addEventListener('click', () => shown().forEach((c) => closeConnection(c.id)));
$('reload').addEventListener('click', reloadConfig);
window.addEventListener('resize', drawChart);
start();
