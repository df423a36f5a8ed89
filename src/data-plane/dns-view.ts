// What the stack and the proxy core ask of the gateway's DNS: the names behind
// fake IPs, real addresses to dial, answers to queries sent to the gateway.
// GatewayDns (gateway-dns.ts) is one, in the thread that owns the pool; a
// worker's FakeIpReplica (workers/fake-ip-replica.ts) is the other.
import type { Endpoint } from '../net/endpoint.js';

export interface DnsView {
  hostnameOf(ip: number): string | undefined;
  hostnameOf6(address: string): string | undefined;
  hostnameOfEndpoint(dst: Endpoint): string | undefined;
  /** The real address behind a destination (a fake IP), its own text when it is none, null when the fake is stale. */
  resolveTarget(dst: number, dstText?: string): Promise<string | null>;
  dns: { answer(query: Buffer, viaTcp?: boolean): Promise<Buffer | null> };
  proxy: {
    lookup(name: string, family?: 4 | 6): Promise<string>;
    isFakeAddress(address: string): boolean;
    fakeAddressUsed(address: string): void;
  };
}
