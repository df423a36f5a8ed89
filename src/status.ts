// `tunsteer status` and `tunsteer down`: read the state dir a gateway keeps.
import { rmSync } from 'node:fs';
import type { DownArgs, StatusArgs } from './cli-args.js';
import { currentNetns, describeNetns, ownerAlive, readJournal, sameNetns } from './routing/route-journal.js';
import { renderPlan } from './routing/route-plan.js';
import { restoreFromJournal } from './routing/restore.js';
import { readStatus, statusPath } from './status-file.js';

export function runStatus(args: StatusArgs): number {
  const j = readJournal(args.stateDir);
  const live = readStatus(args.stateDir);
  const alive = j !== null && ownerAlive(j);
  const up = alive && j.upAt !== undefined;
  if (args.json) {
    process.stdout.write(JSON.stringify({ running: up, journal: j, status: live }, null, 2) + '\n');
    return up ? 0 : 1;
  }
  if (!j) {
    process.stdout.write(`no gateway runs with state dir ${args.stateDir}\n`);
    return 1;
  }
  if (!alive) {
    process.stdout.write(`gateway pid ${j.pid} is dead and left routing behind: run \`tunsteer down --state-dir ${args.stateDir}\`\n`);
    return 1;
  }
  const lines = [
    `mode      ${j.mode}${up ? '' : ' (starting)'}`,
    `pid       ${j.pid}`,
    `netns     ${describeNetns(j.netns)}${sameNetns(j.netns, currentNetns()) ? '' : ' (not this one)'}`,
    `device    ${j.tunName}${live ? ` mtu ${live.tun.mtu} ${live.tun.address}` : ''}`,
    `uplink    ${j.uplink ? `${j.uplink.dev}${j.uplink.gateway ? ` via ${j.uplink.gateway}` : ''}, sockets bound to ${j.uplink.source}` : '?'}`,
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

export function runDown(args: DownArgs): number {
  try {
    const r = restoreFromJournal(args.stateDir, { log: (l) => process.stderr.write(`${l}\n`) });
    rmSync(statusPath(args.stateDir), { force: true });
    process.stdout.write(
      r.found
        ? `restored what gateway pid ${r.pid} left: ${r.undone} undone, ${r.alreadyGone} already gone\n`
        : `nothing to restore in ${args.stateDir}\n`,
    );
    return 0;
  } catch (e) {
    process.stderr.write(`tunsteer: ${(e as Error).message}\n`);
    return 1;
  }
}
