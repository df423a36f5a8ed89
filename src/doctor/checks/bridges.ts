// Bridges (Docker's docker0 and br-*, libvirt's virbr0, LXC, CNI): their
// subnets are on-link routes in main, which route-all's `lookup main
// suppress_prefixlength 0` rule keeps ahead of the TUN, so containers stay
// reachable and are not steered. Said so, per subnet; a subnet inside the
// TUN's or the fake pool's range would collide.
import { parseCidr } from '../../net/cidr.js';
import type { DoctorContext } from '../context.js';
import type { Finding } from '../finding.js';

interface Link {
  ifname?: string;
}
interface Route {
  dst?: string;
  dev?: string;
}

/** The default TUN address and fake pool (settings.ts): a bridge there would be shadowed. */
const OURS = ['198.18.0.0/15'];

export function checkBridges(ctx: DoctorContext): Finding[] {
  const bridges = (ctx.ipJson(['link', 'show', 'type', 'bridge']) as Link[]).map((l) => l.ifname).filter((n): n is string => !!n);
  const out: Finding[] = [];
  for (const name of bridges) {
    const subnets = [4, 6].flatMap((f) =>
      (ctx.ipJson([`-${f}`, 'route', 'show', 'table', 'main', 'dev', name]) as Route[])
        .map((r) => r.dst)
        .filter((d): d is string => !!d && d !== 'default' && !d.startsWith('fe80:')),
    );
    if (subnets.length === 0) continue;
    const clash = subnets.filter((s) => OURS.some((o) => overlaps(s, o)));
    if (clash.length) {
      out.push({
        level: 'warn',
        check: 'bridges',
        what: `bridge ${name} has ${clash.join(', ')}, inside tunsteer's default TUN address and fake pool (198.18.0.0/15)`,
        todo: 'give --tun-address and --fake-pool another range',
      });
    }
    out.push({
      level: 'info',
      check: 'bridges',
      what: `bridge ${name} (${subnets.join(', ')}) stays reachable in route-all`,
      todo: 'its on-link routes win over the TUN, so it is excluded by default and its traffic is not steered',
    });
  }
  return out;
}

/** Two IPv4 networks share addresses: they agree on the shorter prefix's bits. */
function overlaps(a: string, b: string): boolean {
  const x = parseCidr(a, { hostBits: 'mask' });
  const y = parseCidr(b, { hostBits: 'mask' });
  if (!x || !y || x.family !== 4 || y.family !== 4) return false;
  const p = Math.min(x.prefix, y.prefix);
  for (let bit = 0; bit < p; bit++) {
    const m = 0x80 >> (bit % 8);
    if ((x.bytes[bit >> 3] & m) !== (y.bytes[bit >> 3] & m)) return false;
  }
  return true;
}
