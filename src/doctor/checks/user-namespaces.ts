// `tunsteer run` without root makes a user namespace (and a network one in
// it). Kernels and distributions can forbid that for unprivileged users:
// Debian's kernel.unprivileged_userns_clone, user.max_user_namespaces,
// Ubuntu's AppArmor kernel.apparmor_restrict_unprivileged_userns.
import type { DoctorContext } from '../context.js';
import type { Finding } from '../finding.js';

const KNOBS: [path: string, bad: string, todo: string][] = [
  ['/proc/sys/kernel/unprivileged_userns_clone', '0', 'sysctl -w kernel.unprivileged_userns_clone=1'],
  ['/proc/sys/user/max_user_namespaces', '0', 'sysctl -w user.max_user_namespaces=15000'],
  ['/proc/sys/kernel/apparmor_restrict_unprivileged_userns', '1', 'sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile allowing userns for node'],
];

export function checkUserNamespaces(ctx: DoctorContext): Finding[] {
  const out: Finding[] = [];
  for (const [path, bad, fix] of KNOBS) {
    const v = ctx.read(path)?.trim();
    if (v !== bad) continue;
    const key = path.slice('/proc/sys/'.length).replaceAll('/', '.');
    out.push({
      level: 'warn',
      check: 'user-namespaces',
      what: `${key} = ${v}: unprivileged user namespaces are off`,
      todo: `tunsteer run without root cannot work (as root it can): ${fix}`,
    });
  }
  return out;
}
