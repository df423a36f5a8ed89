// One SOCKS5 UDP association (RFC 1928 §4 command 3, §6, §7): a TCP control
// connection to the proxy, on which UDP ASSOCIATE is asked, and a UDP socket
// that sends each datagram, behind its header (udp-header.ts), to the relay
// address the proxy answered. One association carries one flow (one
// destination), so a reply is checked against that destination and handed up
// as it came. §6: "A UDP association terminates when the TCP connection that
// the UDP ASSOCIATE request arrived on terminates": the control connection
// closing (the proxy ended it, or it failed) ends the association, and
// closing the association closes the control connection.
//
// The control connection is made by dialDirect, so in route-all mode it is
// bound to the uplink address like every upstream socket; the UDP socket
// binds the control connection's own local address, and that address and
// port are what the request announces (§6: the address the client "expects
// to use to send UDP datagrams on"; dante checks them). The handshake
// (method negotiation, RFC 1929 username/password) is associate-handshake.ts.
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import type net from 'node:net';
import { DialError, dialDirect, type DialOptions } from '../upstream-dialer.js';
import type { UpstreamProxy } from '../upstream-proxies.js';
import { HandshakeError, udpAssociate } from './associate-handshake.js';
import { sameAddress, udpHeaderFor, udpHeaderLength, type UdpHeaderProblem } from './udp-header.js';

export interface AssociationEvents {
  /** DATA of one reply from the destination: a view into the datagram, valid during the call. */
  onMessage(data: Buffer): void;
  /** A datagram from the relay that is no reply we take (counted by the caller). */
  onDrop(why: UdpHeaderProblem | 'other-source'): void;
  /** The association ended by itself (the proxy closed the control connection, a socket failed); not called after close(). */
  onEnd(why: string): void;
}

export class Socks5UdpAssociation {
  private closed = false;
  private readonly header: Buffer;
  /** Replies to a name come from whatever address the proxy resolved it to: not checked. */
  private readonly checkSource: boolean;

  private constructor(
    private readonly control: net.Socket,
    private readonly udp: dgram.Socket,
    /** Where the datagrams go: an address, or a name the proxy resolves. */
    readonly target: { host: string; port: number },
    /** The proxy's relay, as the proxy answered (all zeros: the proxy's own address). */
    readonly relay: { host: string; port: number },
    private readonly events: AssociationEvents,
  ) {
    this.header = udpHeaderFor(target.host, target.port);
    this.checkSource = isIP(target.host) !== 0;
    udp.on('message', (msg) => this.receive(msg));
    udp.on('error', (err: NodeJS.ErrnoException) => this.end(`relay ${err.code ?? err.message}`));
    // nothing more comes on the control connection; read it so a proxy's stray bytes cannot fill the window
    control.on('data', () => {});
    control.on('error', (err: NodeJS.ErrnoException) => this.end(err.code === 'ECONNRESET' ? 'proxy-reset' : `control ${err.code ?? err.message}`));
    // the control connection is half-open capable (dialDirect): the proxy's FIN alone ends the association
    control.on('end', () => this.end('proxy-closed'));
    control.on('close', () => this.end('proxy-closed'));
  }

  /**
   * Asks `proxy` for an association whose datagrams go to `target`. Rejects
   * with a DialError when the proxy cannot be reached or refuses.
   */
  static async open(proxy: UpstreamProxy, target: { host: string; port: number }, opts: DialOptions, events: AssociationEvents): Promise<Socks5UdpAssociation> {
    const where = `upstream ${proxy.name} (socks5 udp) at ${proxy.host}:${proxy.port}`;
    const control = await dialDirect({ family: isIP(proxy.host) === 6 ? 6 : 4, address: proxy.host, port: proxy.port }, opts).catch((e: DialError) => {
      throw new DialError(`${where}: ${e.message}`, e.kind, e.code);
    });
    const udp = dgram.createSocket(control.localFamily === 'IPv6' ? 'udp6' : 'udp4');
    try {
      const local = await bind(udp, control.localAddress!);
      const remoteHost = await udpAssociate(control, { host: local.address, port: local.port }, proxy, opts.timeoutMs).catch((e: Error) => {
        const unreachable = e instanceof HandshakeError && (e.rep === 3 || e.rep === 4);
        throw new DialError(`${where}: ${e.message}`, /timed out/.test(e.message) ? 'timeout' : unreachable ? 'unreachable' : 'refused');
      });
      if (remoteHost.port === 0) throw new DialError(`${where}: the proxy named no relay port`, 'error');
      // §6: BND.ADDR of all zeros means "the address you reached me on"
      const unspecified = remoteHost.host === '0.0.0.0' || remoteHost.host === '::';
      const relay = { host: unspecified ? control.remoteAddress! : remoteHost.host, port: remoteHost.port };
      // connected: the kernel takes datagrams from the relay only
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.connect(relay.port, relay.host, () => {
          udp.off('error', reject);
          resolve();
        });
      });
      if (control.destroyed) throw new DialError(`${where}: the proxy closed the control connection`, 'refused');
      return new Socks5UdpAssociation(control, udp, target, relay, events);
    } catch (e) {
      control.destroy();
      safeClose(udp);
      throw e instanceof DialError ? e : new DialError(`${where}: ${(e as Error).message}`, 'error', (e as NodeJS.ErrnoException).code);
    }
  }

  /** Sends one datagram's payload to the target, behind the flow's header. `payload` may be kept until sent: a copy. */
  send(payload: Buffer): void {
    if (this.closed) return;
    this.udp.send([this.header, payload]);
  }

  /** The local address the UDP socket is bound to (the uplink's in route-all), or undefined once closed. */
  localAddress(): string | undefined {
    try {
      return this.udp.address().address;
    } catch {
      return undefined;
    }
  }

  /** Ends the association: the UDP socket and the control connection (the proxy then drops its relay). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    safeClose(this.udp);
    this.control.destroy();
  }

  private receive(msg: Buffer): void {
    if (this.closed) return;
    const n = udpHeaderLength(msg);
    if (typeof n !== 'number') return this.events.onDrop(n);
    if (this.checkSource && !sameAddress(msg, n, this.header)) return this.events.onDrop('other-source');
    this.events.onMessage(msg.subarray(n));
  }

  private end(why: string): void {
    if (this.closed) return;
    this.close();
    this.events.onEnd(why);
  }
}

function bind(udp: dgram.Socket, address: string): Promise<{ address: string; port: number }> {
  return new Promise((resolve, reject) => {
    udp.once('error', reject);
    udp.bind({ address, port: 0 }, () => {
      udp.off('error', reject);
      resolve(udp.address());
    });
  });
}

function safeClose(udp: dgram.Socket): void {
  try {
    udp.close();
  } catch {
    // already closed
  }
}
