// One end of a connection or flow as every layer above the wire sees it.
// Strings are built once per connection, never per packet.

/** Address family of a flow. */
export type Family = 4 | 6;

export interface Endpoint {
  family: Family;
  /** IPv4 dotted quad or RFC 5952 IPv6 text. */
  address: string;
  port: number;
}
