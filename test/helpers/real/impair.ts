// Link impairment without netem (this kernel has no sch_netem): nftables
// `numgen random` drop rules on one device, both ways, inside a namespace of
// the test's own (table inet tsloss, removed with the namespace or by clear()).
import { nsExec } from '../netns.js';

export async function vethOf(ns: string): Promise<string> {
  const r = await nsExec(ns, ['ip', '-o', 'link', 'show', 'type', 'veth']);
  return r.stdout.split(':')[1].trim().split('@')[0];
}

/** Drops `percent` % of the packets in and out of `dev` in `ns`. */
export async function dropOn(ns: string, dev: string, percent: number): Promise<void> {
  const script = [
    'table inet tsloss {',
    '  chain in { type filter hook input priority -10; policy accept;',
    `    iifname "${dev}" numgen random mod 1000 < ${Math.round(percent * 10)} counter drop`,
    '  }',
    '  chain out { type filter hook output priority -10; policy accept;',
    `    oifname "${dev}" numgen random mod 1000 < ${Math.round(percent * 10)} counter drop`,
    '  }',
    '}',
    '',
  ].join('\n');
  await nsExec(ns, ['nft', '-f', '-'], { input: script });
}

/** Packets the rules dropped so far (both ways), to show the impairment was real. */
export async function dropped(ns: string): Promise<number> {
  const r = await nsExec(ns, ['nft', 'list', 'table', 'inet', 'tsloss'], { allowFail: true });
  return [...r.stdout.matchAll(/counter packets (\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
}

export async function clearDrops(ns: string): Promise<void> {
  await nsExec(ns, ['nft', 'delete', 'table', 'inet', 'tsloss'], { allowFail: true });
}
