// Another program's policy rules and routing tables (a VPN: WireGuard's
// wg-quick, Tailscale, NetworkManager's VPNs; Docker's own): where they sit
// against the rules route-all installs (priorities P.., table T; up's
// --rule-priority and --table). One in our priority range or using our table
// is a blocker; one before ours routes its traffic past the gateway; one
// after ours never sees what route-all takes into the TUN.
import { readJournal } from '../../routing/route-journal.js';
import type { DoctorContext } from '../context.js';
import type { Finding } from '../finding.js';

interface Rule {
  priority?: number;
  src?: string;
  srclen?: number;
  dst?: string;
  dstlen?: number;
  fwmark?: string;
  fwmask?: string;
  iif?: string;
  oif?: string;
  table?: string;
  action?: string;
  not?: unknown;
  suppress_prefixlength?: number;
}

/** How many priorities from P a route-all plan may take (route-plan.ts uses P..P+n-1, n about 10). */
export const OUR_SPAN = 32;

/** The kernel's own rules: local, main and default (and their IPv6 twins). */
function builtin(r: Rule): boolean {
  return (r.priority === 0 && r.table === 'local') || (r.priority === 32766 && r.table === 'main') || (r.priority === 32767 && r.table === 'default');
}

export function describeRule(r: Rule): string {
  const sel = [
    'not' in r ? 'not' : '',
    `from ${r.src ?? 'all'}${r.srclen !== undefined ? `/${r.srclen}` : ''}`,
    r.dst ? `to ${r.dst}${r.dstlen !== undefined ? `/${r.dstlen}` : ''}` : '',
    r.fwmark ? `fwmark ${r.fwmark}${r.fwmask ? `/${r.fwmask}` : ''}` : '',
    r.iif ? `iif ${r.iif}` : '',
    r.oif ? `oif ${r.oif}` : '',
    r.table ? `lookup ${r.table}` : (r.action ?? ''),
  ].filter(Boolean);
  return `${r.priority ?? 0}: ${sel.join(' ')}`;
}

export function checkPolicyRules(ctx: DoctorContext): Finding[] {
  let j = null;
  try {
    j = readJournal(ctx.opts.stateDir);
  } catch {
    // a corrupt journal: the state check says so; judge the rules as if no gateway ran
  }
  const base = j?.priorityBase ?? ctx.opts.rulePriority;
  const table = String(j?.table ?? ctx.opts.table);
  const ours = (r: Rule) => j !== null && (r.priority ?? 0) >= base && (r.priority ?? 0) < base + OUR_SPAN;
  const out: Finding[] = [];
  for (const family of ['4', '6'] as const) {
    const ip = family === '6' ? 'IPv6 ' : '';
    for (const r of ctx.ipJson([`-${family}`, 'rule', 'show']) as Rule[]) {
      if (builtin(r) || ours(r)) continue;
      const p = r.priority ?? 0;
      const what = `${ip}policy rule "${describeRule(r)}" of another program`;
      if (r.table === table) {
        out.push({ level: 'block', check: 'policy-rules', what: `${what} uses table ${table}, tunsteer's`, todo: `give up --table another number` });
      } else if (p >= base && p < base + OUR_SPAN) {
        out.push({
          level: 'block',
          check: 'policy-rules',
          what: `${what} sits in tunsteer's priorities ${base}..${base + OUR_SPAN - 1}`,
          todo: 'give up --rule-priority a free range',
        });
      } else if (p < base) {
        out.push({
          level: 'warn',
          check: 'policy-rules',
          what: `${what} comes before tunsteer's (${base})`,
          todo: 'what it matches bypasses the gateway (a VPN?); stop that program, or give up --rule-priority below it',
        });
      } else {
        out.push({
          level: 'warn',
          check: 'policy-rules',
          what: `${what} comes after tunsteer's (${base})`,
          todo: "while route-all runs, what it would route goes into the TUN instead (a VPN stops working); give it a priority below tunsteer's, or use per-host mode",
        });
      }
    }
    // routes in our table with no gateway of ours: another program's table
    if (j === null) {
      const routes = ctx.ipJson([`-${family}`, 'route', 'show', 'table', table]);
      if (routes.length > 0)
        out.push({
          level: 'block',
          check: 'policy-rules',
          what: `${ip}routing table ${table} holds ${routes.length} route(s) and no tunsteer gateway runs`,
          todo: "another program uses tunsteer's table: give up --table another number",
        });
    }
  }
  return out;
}
