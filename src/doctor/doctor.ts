// `tunsteer doctor`: every check over one context, in the order a user
// would fix things (blockers first), printed one line per finding.
import type { DoctorContext } from './context.js';
import { exitCodeOf, formatFinding, type Finding } from './finding.js';
import { checkBridges } from './checks/bridges.js';
import { checkNftables } from './checks/nftables.js';
import { checkPolicyRules } from './checks/policy-rules.js';
import { checkResolvConf } from './checks/resolv-conf.js';
import { checkRpFilter } from './checks/rp-filter.js';
import { checkStaleState } from './checks/stale-state.js';
import { checkTunDevice } from './checks/tun-device.js';
import { checkUplink } from './checks/uplink.js';
import { checkUserNamespaces } from './checks/user-namespaces.js';

export const CHECKS: ((ctx: DoctorContext) => Finding[])[] = [
  checkTunDevice,
  checkUplink,
  checkStaleState,
  checkPolicyRules,
  checkResolvConf,
  checkBridges,
  checkRpFilter,
  checkNftables,
  checkUserNamespaces,
];

const ORDER = { block: 0, warn: 1, info: 2 } as const;

export function runDoctor(ctx: DoctorContext): { findings: Finding[]; code: number; text: string } {
  const findings = CHECKS.flatMap((c) => c(ctx)).sort((a, b) => ORDER[a.level] - ORDER[b.level]);
  return { findings, code: exitCodeOf(findings), text: findings.map((f) => formatFinding(f) + '\n').join('') };
}
