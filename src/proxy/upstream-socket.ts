// The socket a direct upstream dial connects from. Route-all's policy rule routes
// the gateway's own sockets by their source address, so each dial binds the
// uplink's. node's `localAddress` binds (address, port 0), which takes an
// ephemeral port for that socket alone: all upstream connections together, and
// their TIME-WAITs, then share one port range (28,232 by default, under the
// 100,000 connections the gateway admits), and bind() scans longer the fuller it
// is. The native addon binds with IP_BIND_ADDRESS_NO_PORT instead, so the port is
// chosen at connect(), per destination, as for an unbound socket
// (docs/DECISIONS.md, "Upstream sockets bind without a port").
import net from 'node:net';
import { loadTunAddon, type TunAddon } from '../tun/native-addon.js';

let addon: Pick<TunAddon, 'tcpSocketNoPort'> | null | undefined;

function noPortAddon(): Pick<TunAddon, 'tcpSocketNoPort'> | null {
  if (addon === undefined) {
    try {
      const a = loadTunAddon();
      addon = typeof a.tcpSocketNoPort === 'function' ? a : null;
    } catch {
      addon = null; // not Linux, or the addon not built: node's bind, with its port
    }
  }
  return addon;
}

/**
 * A socket bound to localAddress without a port, not yet connected (call
 * connect() on it), or null where the addon is missing (then dial with node's
 * `localAddress`). Throws the bind's errno error (EADDRNOTAVAIL when the
 * address has left this host).
 */
export function boundSocket(localAddress: string, family: 4 | 6): net.Socket | null {
  const a = noPortAddon();
  if (!a) return null;
  const fd = a.tcpSocketNoPort(localAddress, family);
  // manualStart: no read before connect() (reading an unconnected socket fails at once); noDelay is a constructor option
  return new net.Socket({ fd, manualStart: true, allowHalfOpen: true, noDelay: true } as net.SocketConstructorOpts);
}
