// `tunsteer status`: mode, device, routes and live counters, read from the
// state dir a gateway keeps; exits 1 when no gateway runs.
import { DEFAULT_STATE_DIR } from '../../config/settings.js';
import { currentNetns, describeNetns, ownerAlive, readJournal, sameNetns } from '../../routing/route-journal.js';
import { renderPlan } from '../../routing/route-plan.js';
import { readStatus } from '../../gateway/state/status-file.js';

export function status(stateDir = DEFAULT_STATE_DIR, json = false): number {
  const j = readJournal(stateDir);
  const live = readStatus(stateDir);
  const alive = j !== null && ownerAlive(j);
  // up: routes in place and the data plane publishing (the supervisor writes its status)
  const up = alive && j.upAt !== undefined && live !== null && live.pid === j.pid;
  if (json) {
    process.stdout.write(JSON.stringify({ running: up, journal: j, status: live }, null, 2) + '\n');
    return up ? 0 : 1;
  }
  if (!j) {
    process.stdout.write(`no gateway runs with state dir ${stateDir}\n`);
    return 1;
  }
  if (!alive) {
    process.stdout.write(`gateway pid ${j.pid} is dead and left routing behind: run \`tunsteer down --state-dir ${stateDir}\`\n`);
    return 1;
  }
  const lines = [
    `mode      ${j.mode}${up ? '' : ' (starting)'}`,
    `pid       ${j.pid}`,
    `netns     ${describeNetns(j.netns)}${sameNetns(j.netns, currentNetns()) ? '' : ' (not this one)'}`,
    `device    ${j.tunName}${live ? ` mtu ${live.tun.mtu} ${live.tun.address}` : ''}`,
    `uplink    ${j.uplink ? describeUplink(j.uplink) : j.uplink === null ? `no uplink${since(live, 'uplink')}` : '?'}`,
    ...(j.uplink6 ? [`uplink6   ${describeUplink(j.uplink6)}`] : j.uplink6 === null && j.mode === 'route-all' ? [`uplink6   no IPv6 uplink${since(live, 'uplink6')}`] : []),
    ...(live?.network?.resolvers ? [`resolvers ${live.network.resolvers.join(' ') || 'none'}`] : []),
    ...(live?.network?.changes.length ? ['network changes', ...live.network.changes.map((c) => `  ${c.at}  ${c.uplink ? describeUplink(c.uplink) : 'no uplink'}; IPv6: ${c.uplink6 ? describeUplink(c.uplink6) : 'none'} (${c.cause})`)] : []),
    ...(live?.network?.lastWake ? [`woke      ${live.network.lastWake.at} after ${Math.round(live.network.lastWake.sleptMs / 1000)} s (${live.network.lastWake.kind})`] : []),
    'routing',
    ...renderPlan(j.steps, { comments: false }).map((l) => `  ${l}`),
  ];
  if (live) {
    lines.push(`counters  (at ${live.updatedAt})`);
    for (const [k, v] of Object.entries(live.counters)) lines.push(`  ${k.padEnd(22)} ${v}`);
    const drops = Object.entries(live.drops).filter(([, v]) => v > 0);
    if (drops.length) lines.push('drops', ...drops.map(([k, v]) => `  ${k.padEnd(22)} ${v}`));
  }
  process.stdout.write(lines.join('\n') + '\n');
  return up ? 0 : 1;
}

function describeUplink(u: { dev: string; gateway?: string; source: string }): string {
  return `${u.dev}${u.gateway ? ` via ${u.gateway}` : ''}, sockets bound to ${u.source}`;
}

/** " since TIME" from the last change that left that family without an uplink. */
function since(live: ReturnType<typeof readStatus>, which: 'uplink' | 'uplink6'): string {
  const last = live?.network?.changes.at(-1);
  return last && last[which] === null ? ` since ${last.at}${which === 'uplink' && last.why ? ` (${last.why})` : ''}` : '';
}
