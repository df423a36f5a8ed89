// `tunsteer status`: mode, device, routes and live counters, read from the
// state dir a gateway keeps; exits 1 when no gateway runs, saying where it looked.
import { DEFAULT_STATE_DIR } from '../../config/defaults.js';
import { currentNetns, describeNetns, ownerAlive, readJournal, sameNetns } from '../../routing/route-journal.js';
import { renderPlan } from '../../routing/route-plan.js';
import { readStatus } from '../../gateway/state/status-file.js';

export function status(stateDir = DEFAULT_STATE_DIR, json = false): number {
  const r = statusReport(stateDir, json);
  process.stdout.write(r.text);
  return r.code;
}

/** What `status` prints and its exit code. */
export function statusReport(stateDir: string, json: boolean): { code: number; text: string } {
  const j = readJournal(stateDir);
  const live = readStatus(stateDir);
  const alive = j !== null && ownerAlive(j);
  // up: routes in place and the data plane publishing (the supervisor writes its status)
  const up = alive && j.upAt !== undefined && live !== null && live.pid === j.pid;
  const why = !j
    ? `no gateway runs with state dir ${stateDir} (no journal there; give the gateway's --state-dir)`
    : !alive
      ? `gateway pid ${j.pid} is dead and left routing behind: run \`tunsteer down --state-dir ${stateDir}\``
      : undefined;
  if (json) {
    const reason = why ?? (up ? undefined : `gateway pid ${j!.pid} is starting`);
    return { code: up ? 0 : 1, text: JSON.stringify({ running: up, stateDir, ...(reason ? { reason } : {}), journal: j, status: live }, null, 2) + '\n' };
  }
  if (why) return { code: 1, text: `${why}\n` };
  const lines = [
    `mode      ${j!.mode}${up ? '' : ' (starting)'}`,
    `pid       ${j!.pid}`,
    `netns     ${describeNetns(j!.netns)}${sameNetns(j!.netns, currentNetns()) ? '' : ' (not this one)'}`,
    `device    ${j!.tunName}${live ? ` mtu ${live.tun.mtu} ${live.tun.address}` : ''}`,
    `uplink    ${j!.uplink ? describeUplink(j!.uplink) : j!.uplink === null ? `no uplink${since(live, 'uplink')}` : j!.mode === 'per-host' ? 'the main routing table (only the fake pool goes into the TUN)' : '?'}`,
    ...(j!.uplink6 ? [`uplink6   ${describeUplink(j!.uplink6)}`] : j!.uplink6 === null && j!.mode === 'route-all' ? [`uplink6   no IPv6 uplink${since(live, 'uplink6')}`] : []),
    ...(live?.network?.resolvers ? [`resolvers ${live.network.resolvers.join(' ') || 'none'}`] : []),
    ...(live?.network?.changes.length
      ? [
          'network changes',
          ...live.network.changes.map(
            (c) => `  ${c.at}  ${c.uplink ? describeUplink(c.uplink) : 'no uplink'}; IPv6: ${c.uplink6 ? describeUplink(c.uplink6) : 'none'} (${c.cause})`,
          ),
        ]
      : []),
    ...(live?.network?.lastWake ? [`woke      ${live.network.lastWake.at} after ${Math.round(live.network.lastWake.sleptMs / 1000)} s (${live.network.lastWake.kind})`] : []),
    'routing',
    ...renderPlan(j!.steps, { comments: false }).map((l) => `  ${l}`),
  ];
  if (live) {
    lines.push(`counters  (at ${live.updatedAt})`);
    for (const [k, v] of Object.entries(live.counters)) lines.push(`  ${k.padEnd(22)} ${counterText(k, v)}`);
    const drops = Object.entries(live.drops).filter(([, v]) => v > 0);
    if (drops.length) lines.push('drops', ...drops.map(([k, v]) => `  ${k.padEnd(22)} ${v}`));
  }
  return { code: up ? 0 : 1, text: lines.join('\n') + '\n' };
}

/** Counters of bytes (memory, traffic) in binary units; the rest as numbers. `--json` keeps them raw. */
export function counterText(name: string, v: number): string {
  return /^mem_(rss|heap|external|array)/.test(name) || /bytes/i.test(name) ? humanBytes(v) : String(v);
}

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let x = n;
  while (Math.abs(x) >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${x.toFixed(1)} ${units[i]}`;
}

function describeUplink(u: { dev: string; gateway?: string; source: string }): string {
  return `${u.dev}${u.gateway ? ` via ${u.gateway}` : ''}, sockets bound to ${u.source}`;
}

/** " since TIME" from the last change that left that family without an uplink. */
function since(live: ReturnType<typeof readStatus>, which: 'uplink' | 'uplink6'): string {
  const last = live?.network?.changes.at(-1);
  return last && last[which] === null ? ` since ${last.at}${which === 'uplink' && last.why ? ` (${last.why})` : ''}` : '';
}
