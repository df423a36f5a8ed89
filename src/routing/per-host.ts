// Per-host mode's system changes: route the fake-IP pool (which holds the
// gateway's DNS address) into the TUN, and point resolv.conf at that DNS
// address. No default route is touched. Like route-all, every step is
// journaled before it runs, so `tunsteer down` undoes it after a crash.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseCidr } from '../cidr.js';
import { ipExecSync, procSysctl, type IpExecSync } from './ip-exec.js';
import type { JournaledStep, RouteJournal } from './route-journal.js';
import { applySteps } from './route-runner.js';
import { acquireJournal } from './restore.js';
import type { Step } from './route-plan.js';

export interface PerHostPlanConfig {
  tunName: string;
  /** The fake-IP pool, e.g. 198.18.0.0/15. */
  pool: string;
  /** Its IPv6 side (fc00::/18), routed into the TUN too; absent with --ipv6 off (AAAA gets NODATA, nothing to route). */
  pool6?: string;
  /** The gateway's DNS address inside the pool. */
  dnsAddress: string;
  resolvConf: string;
  /** The current resolv.conf text (read by the caller: the plan stays pure). */
  resolvConfText: string;
}

/** The nameservers a resolv.conf names, in order. */
export function nameservers(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m) out.push(m[1]);
  }
  return out;
}

/** resolv.conf pointing at our DNS address; search/options lines are kept. */
export function overrideResolvConf(text: string, dnsAddress: string): string {
  const kept = text.split('\n').filter((l) => l.trim() !== '' && !/^\s*nameserver\s/.test(l) && !l.startsWith('# tunsteer'));
  return [`# tunsteer per-host mode: names go to the gateway's DNS; the original is restored on exit`, `nameserver ${dnsAddress}`, ...kept, ''].join('\n');
}

export function planPerHost(cfg: PerHostPlanConfig): Step[] {
  const pool = parseCidr(cfg.pool);
  if (!pool || pool.family !== 4) throw new Error(`--fake-pool: "${cfg.pool}" is not an IPv4 CIDR`);
  const pool6 = cfg.pool6 === undefined ? null : parseCidr(cfg.pool6);
  if (pool6 !== null && pool6.family !== 6) throw new Error(`--fake-pool6: "${cfg.pool6}" is not an IPv6 CIDR`);
  const v6: Step[] = pool6
    ? [
        {
          kind: 'ip',
          do: ['-6', 'route', 'add', pool6.text, 'dev', cfg.tunName],
          undo: ['-6', 'route', 'del', pool6.text, 'dev', cfg.tunName],
          desc: `IPv6 fake IPs ${pool6.text} into ${cfg.tunName}`,
        },
      ]
    : [];
  return [
    ...v6,
    {
      kind: 'ip',
      do: ['-4', 'route', 'add', pool.text, 'dev', cfg.tunName],
      undo: ['-4', 'route', 'del', pool.text, 'dev', cfg.tunName],
      desc: `fake IPs ${pool.text} (and the DNS address ${cfg.dnsAddress}) into ${cfg.tunName}`,
    },
    {
      kind: 'file',
      path: cfg.resolvConf,
      content: overrideResolvConf(cfg.resolvConfText, cfg.dnsAddress),
      desc: `${cfg.resolvConf}: nameserver ${cfg.dnsAddress}`,
    },
  ];
}

export interface PerHostHandle {
  steps: Step[];
  applied: JournaledStep[];
  journal: RouteJournal;
  /** The resolvers the system had: the gateway forwards other names to them. */
  upstreams: string[];
}

/**
 * Reads the resolvers, plans, takes the state dir (undoing a dead gateway's
 * leftovers in this namespace first), applies. Synchronous, like route-all.
 */
export function upPerHost(cfg: Omit<PerHostPlanConfig, 'resolvConfText'> & { stateDir: string; log?: (l: string) => void; exec?: IpExecSync }): PerHostHandle {
  const meta = { mode: 'per-host' as const, tunName: cfg.tunName };
  const journal = acquireJournal(cfg.stateDir, meta, { restore: { log: cfg.log } });
  // Read after any stale restore, so the resolvers are the real ones and not our own address.
  const text = readFileSync(cfg.resolvConf, 'utf8');
  const upstreams = nameservers(text).filter((n) => n !== cfg.dnsAddress);
  if (upstreams.length === 0) {
    journal.clear();
    throw new Error(`${cfg.resolvConf} names no nameserver to forward other names to`);
  }
  const steps = planPerHost({ ...cfg, resolvConfText: text });
  let applied: JournaledStep[];
  try {
    applied = applySteps(steps, { journal, exec: cfg.exec ?? ipExecSync, sysctl: procSysctl });
  } catch (e) {
    if (journal.data.steps.length === 0) journal.clear();
    throw e;
  }
  journal.markUp();
  return { steps, applied, journal, upstreams };
}

/**
 * Something else rewrote resolv.conf under per-host mode (a DHCP client with a
 * new lease). Its text is the newest original: the journal takes it as what
 * restore writes back, then the override goes back in place, keeping the new
 * search and options lines. Journal first, so a crash between the two still
 * restores the newest original. Our own write (the text is the override)
 * changes nothing. Returns the resolvers the new text names.
 */
export function reassertOverride(journal: Pick<RouteJournal, 'data' | 'record'>, path: string, dnsAddress: string, text: string): { rewritten: boolean; upstreams: string[] } {
  const steps = journal.data.steps;
  const i = steps.findIndex((st) => st.kind === 'file' && st.path === path);
  if (i < 0) return { rewritten: false, upstreams: [] };
  const step = steps[i] as Extract<JournaledStep, { kind: 'file' }>;
  const upstreams = nameservers(text).filter((n) => n !== dnsAddress);
  if (text === step.content) return { rewritten: false, upstreams: nameservers(Buffer.from(step.old ?? '', 'base64').toString('utf8')).filter((n) => n !== dnsAddress) };
  const content = overrideResolvConf(text, dnsAddress);
  const next = steps.map((st, k) => (k === i ? { ...step, content, old: Buffer.from(text).toString('base64') } : st));
  journal.record(next);
  writeFileSync(path, content); // in place: the same inode, so a bind mount stays intact
  return { rewritten: true, upstreams };
}
