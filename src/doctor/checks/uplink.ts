// The uplinks route-all binds its sockets to: an IPv4 default route is
// needed to start; without an IPv6 one, route-all refuses IPv6 destinations
// at the TUN (nothing leaks past it), and per-host gives mapped names IPv6
// fakes all the same.
import type { DoctorContext } from '../context.js';
import type { Finding } from '../finding.js';

interface Route {
  dst?: string;
  dev?: string;
  gateway?: string;
}

export function checkUplink(ctx: DoctorContext): Finding[] {
  const v4 = ctx.ipJson(['-4', 'route', 'show', 'default']) as Route[];
  const v6 = ctx.ipJson(['-6', 'route', 'show', 'default']) as Route[];
  const out: Finding[] = [];
  if (v4.length === 0) {
    out.push({
      level: 'block',
      check: 'uplink',
      what: 'no IPv4 default route',
      todo: 'route-all cannot start without one (it binds its own sockets to the uplink): connect the network first; per-host, redirect and tproxy do not need it',
    });
  }
  if (v6.length === 0) {
    out.push({
      level: 'info',
      check: 'uplink',
      what: 'no IPv6 uplink (no IPv6 default route)',
      todo: 'route-all still takes ::/0 into the TUN and refuses IPv6 destinations there, so none leaks; programs fall back to IPv4',
    });
  }
  return out;
}
