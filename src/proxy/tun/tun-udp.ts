// UDP from the TUN stack, above it: queries to the gateway's own DNS are
// answered here (from the address the client asked, once the answer is
// ready); every other datagram goes to the relay. Without a relay only DNS is
// taken, and the stack counts the rest as unsupported.
import type { UdpFlowKey, UdpHandler, UdpPort } from '../../stack/contracts.js';

export interface GatewayDns {
  /** The resolver address clients use (an IPv4 number); -1 answers port 53 of every destination (route-all's DNS hijack). */
  address: number;
  answer(query: Buffer): Promise<Buffer | null>;
}

export class TunUdp implements UdpHandler {
  readonly counters = { dnsQueries: 0, dnsFailed: 0 };

  constructor(
    private readonly port: UdpPort,
    private readonly dns: GatewayDns | null,
    private readonly relay: UdpHandler | null,
  ) {}

  onDatagram(key: UdpFlowKey, payload: Buffer, offset: number, length: number, now: number): boolean {
    const dns = this.dns;
    if (dns !== null && key.serverPort === 53 && (key.serverIp === dns.address || dns.address === -1)) {
      this.answerDns(dns, key, Buffer.from(payload.subarray(offset, offset + length)));
      return true;
    }
    return this.relay !== null && this.relay.onDatagram(key, payload, offset, length, now);
  }

  private answerDns(dns: GatewayDns, key: UdpFlowKey, query: Buffer): void {
    this.counters.dnsQueries++;
    const { clientIp: client, serverIp: server, clientPort: port } = key;
    const ids = this.port.addresses;
    // The reply comes later: hold both addresses until then.
    ids.hold(client);
    ids.hold(server);
    dns
      .answer(query)
      .then(
        // The answer comes from the address the client asked.
        (reply) => void (reply && this.port.sendUdp(server, client, 53, port, reply, 0, reply.length)),
        () => void this.counters.dnsFailed++,
      )
      .finally(() => {
        ids.release(client);
        ids.release(server);
      });
  }
}
