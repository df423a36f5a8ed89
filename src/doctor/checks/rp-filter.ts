// Strict reverse-path filtering (rp_filter=1, RFC 3704 "strict") drops a
// packet whose source would not be routed back out of the interface it came
// in on. route-all passes it (replies come from the TUN, and the TUN is the
// way back), but tproxy's marked packets re-routed through lo, and replies on
// asymmetric routes, are dropped; loose (2) keeps the spoofing protection.
import type { DoctorContext } from '../context.js';
import type { Finding } from '../finding.js';

export function checkRpFilter(ctx: DoctorContext): Finding[] {
  const strict = ['all', 'default'].filter((k) => ctx.read(`/proc/sys/net/ipv4/conf/${k}/rp_filter`)?.trim() === '1');
  if (strict.length === 0) return [];
  return [
    {
      level: 'warn',
      check: 'rp-filter',
      what: `strict reverse-path filtering (net.ipv4.conf.${strict.join(' and ')}.rp_filter = 1)`,
      todo: 'tproxy and redirect from this machine, and replies on asymmetric routes, can be dropped: set it to 2 (loose): sysctl -w net.ipv4.conf.all.rp_filter=2',
    },
  ];
}
