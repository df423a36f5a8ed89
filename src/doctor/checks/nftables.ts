// redirect and tproxy modes install an nftables table; without nft, or a
// kernel without nf_tables, they cannot start (route-all and per-host need
// no nftables).
import type { DoctorContext } from '../context.js';
import type { Finding } from '../finding.js';

export function checkNftables(ctx: DoctorContext): Finding[] {
  const v = ctx.run('nft', ['--version']);
  if (v.missing) {
    return [{ level: 'warn', check: 'nftables', what: 'nft is not installed', todo: 'redirect and tproxy modes need it: apt install nftables (route-all and per-host do not)' }];
  }
  if (!ctx.isRoot) return [];
  const l = ctx.run('nft', ['list', 'tables']);
  if (!l.ok) {
    return [
      {
        level: 'warn',
        check: 'nftables',
        what: `nft cannot list tables: ${l.stderr.trim().split('\n')[0]}`,
        todo: 'redirect and tproxy modes need nf_tables in the kernel: modprobe nf_tables nft_tproxy',
      },
    ];
  }
  return [];
}
