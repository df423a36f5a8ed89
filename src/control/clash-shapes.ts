// tunsteer's state in the JSON shapes of the Clash external-controller API,
// as the dashboards (metacubexd, yacd, zashboard) read them. Each object
// keeps tunsteer's own words beside the Clash ones under `tunsteer`, so our
// dashboard and `tunsteer top` read one answer.
import type { ListedConnection, RuleView, UpstreamView } from './contracts.js';
import type { TappedLine } from '../logging/log-tap.js';
import type { RunningConfig } from '../config/running-config.js';

/** "192.0.2.1:80" or "[2001:db8::1]:80" → address and port. */
export function splitEndpoint(e: string): { ip: string; port: string } {
  const i = e.lastIndexOf(':');
  return { ip: e.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: e.slice(i + 1) };
}

const INBOUND_TYPE: Record<string, string> = {
  tun: 'Tun',
  'http-proxy': 'HTTP',
  socks5: 'Socks5',
  redirect: 'Redir',
  tproxy: 'TProxy',
};

export function clashConnection(c: ListedConnection) {
  const src = splitEndpoint(c.src);
  const dst = splitEndpoint(c.dst);
  const via = c.upstream ?? (c.action === 'reject' ? 'REJECT' : 'DIRECT');
  return {
    id: c.id,
    metadata: {
      network: 'tcp',
      type: INBOUND_TYPE[c.inbound] ?? c.inbound,
      sourceIP: src.ip,
      sourcePort: src.port,
      destinationIP: dst.ip,
      destinationPort: dst.port,
      host: c.host ?? '',
      sniffHost: c.host ?? '',
      dnsMode: 'normal',
      inboundIP: '',
      inboundPort: '',
      inboundName: c.inbound,
      inboundUser: '',
      process: '',
      processPath: '',
      remoteDestination: dst.ip,
      specialProxy: '',
      specialRules: '',
      uid: 0,
    },
    upload: c.up,
    download: c.down,
    start: new Date(c.start).toISOString(),
    chains: [via],
    rule: c.rule,
    rulePayload: c.action,
    tunsteer: c,
  };
}

export function connectionsMessage(list: ListedConnection[], totals: { up: number; down: number }) {
  return { downloadTotal: totals.down, uploadTotal: totals.up, connections: list.map(clashConnection), memory: process.memoryUsage().rss };
}

const MATCH_TYPE: Record<string, string> = {
  domain: 'DOMAIN',
  domain_suffix: 'DOMAIN-SUFFIX',
  domain_keyword: 'DOMAIN-KEYWORD',
  cidr: 'IP-CIDR',
  port: 'DST-PORT',
  protocol: 'NETWORK',
  source_cidr: 'SRC-IP-CIDR',
};

/** A rule as Clash lists one: its type (AND when it has several keys), payload, and where it sends. */
export function clashRule(r: RuleView) {
  const keys = Object.keys(r.match);
  const type = r.name === 'default' && keys.length === 0 ? 'MATCH' : keys.length === 1 ? (MATCH_TYPE[keys[0]] ?? keys[0]) : 'AND';
  const payload = keys.map((k) => (keys.length === 1 ? r.match[k].join(',') : `${k}=${r.match[k].join(',')}`)).join(' ');
  return {
    index: r.index,
    type,
    payload,
    proxy: r.upstream ?? (r.action === 'reject' ? 'REJECT' : 'DIRECT'),
    size: -1,
    extra: { disabled: false, hitCount: r.hits, hitAt: r.hitAt ? new Date(r.hitAt).toISOString() : '', missCount: 0, missAt: '' },
    tunsteer: r,
  };
}

function proxyEntry(name: string, type: string, extra: Record<string, unknown> = {}) {
  return { name, type, history: [], extra: {}, alive: true, udp: type === 'Direct', xudp: false, tfo: false, hidden: false, ...extra };
}

/** The upstreams as Clash proxies, with DIRECT, REJECT and a GLOBAL selector dashboards expect to find. */
export function clashProxies(upstreams: UpstreamView[]) {
  const proxies: Record<string, ReturnType<typeof proxyEntry>> = {
    DIRECT: proxyEntry('DIRECT', 'Direct'),
    REJECT: proxyEntry('REJECT', 'Reject'),
  };
  for (const u of upstreams) proxies[u.name] = proxyEntry(u.name, u.type === 'socks5' ? 'Socks5' : 'Http', { server: u.address });
  proxies.GLOBAL = proxyEntry('GLOBAL', 'Selector', { now: 'DIRECT', all: ['DIRECT', 'REJECT', ...upstreams.map((u) => u.name)] });
  return { proxies };
}

const CLASH_LEVEL: Record<number, string> = { 10: 'debug', 20: 'debug', 30: 'info', 40: 'warning', 50: 'error', 60: 'error' };
const LEVEL_RANK: Record<string, number> = { debug: 20, info: 30, warning: 40, warn: 40, error: 50, silent: Infinity };

/** The least pino level a `?level=` asks for (Clash's debug, info, warning, error, silent); info when absent or unknown. */
export function minLevel(q: string | null): number {
  return LEVEL_RANK[q ?? 'info'] ?? 30;
}

/** A log line as Clash streams it ({type, payload}); structured as mihomo's ?format=structured. */
export function clashLog(l: TappedLine, structured: boolean) {
  const type = CLASH_LEVEL[l.level] ?? 'info';
  if (structured) return { time: l.time, level: type, message: l.msg, fields: Object.entries(l.fields).map(([key, value]) => ({ key, value: text(value) })) };
  const rest = Object.entries(l.fields).map(([k, v]) => `${k}=${text(v)}`);
  return { type, payload: [l.msg, ...rest].join(' ') };
}

function text(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** GET /configs: the general config a dashboard shows, and tunsteer's running config beside it. */
export function clashConfig(running: RunningConfig | undefined, logLevel: string) {
  const r = running ?? {};
  const tun = r.tun as { name?: string } | undefined;
  const listen = typeof r.listen === 'string' ? Number(r.listen.slice(r.listen.lastIndexOf(':') + 1)) : 0;
  return {
    port: 0,
    'socks-port': 0,
    'redir-port': r.mode === 'redirect' ? r.intercept_port : 0,
    'tproxy-port': r.mode === 'tproxy' ? r.intercept_port : 0,
    'mixed-port': listen,
    'allow-lan': false,
    'bind-address': '127.0.0.1',
    mode: 'rule',
    'mode-list': ['rule'],
    'log-level': logLevel === 'warn' ? 'warning' : logLevel,
    ipv6: r.ipv6 === true,
    tun: { enable: tun !== undefined, device: tun?.name ?? '', stack: 'tunsteer', 'auto-route': true },
    tunsteer: r,
  };
}
