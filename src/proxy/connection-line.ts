// What the rules decided and what the sniff saw, written into a connection's log line
// (a module function: run() made a closure of it per connection).
import type { ConnectionLine } from './connection-registry.js';
import type { Decision } from './policy.js';
import type { Sniffed } from './sniff/sniff-stream.js';

export function noteDecision(line: ConnectionLine, d: Decision, s?: Sniffed): void {
  line.rule = d.rule;
  line.action = d.action;
  if (d.upstream) line.upstream = d.upstream.name;
  if (d.upstreamTls) line.upstream_tls = d.upstreamTls.port;
  if (s) {
    line.proto = s.protocol;
    if (s.protocol === 'tls') {
      line.sni = s.host;
      if (s.alpn) line.alpn = s.alpn;
      if (s.ech) line.ech = true;
    }
    if (s.h2c) line.h2c = true;
    if (s.unreadable) line.unreadable = s.unreadable;
    if (line.host === undefined && s.host !== undefined) line.host = s.host;
  }
}
