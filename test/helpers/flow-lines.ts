// A gateway's JSON log lines as the e2e tests read them, and the line of one
// UDP flow (written when the flow ends), waited for.
import type { NsChild } from './netns.js';

export type FlowLine = {
  msg?: string;
  inbound?: string;
  src?: string;
  dst?: string;
  action?: string;
  end?: string;
  owner?: { uid: number; exe?: string } | null;
  owner_why?: string;
};

export function jsonLines(gw: NsChild): FlowLine[] {
  return gw.stdoutLines().flatMap((l) => {
    try {
      return [JSON.parse(l) as FlowLine];
    } catch {
      return [];
    }
  });
}

/** The first line that `find` picks, polled for up to 10 s (undefined: none came). */
export async function waitForJsonLine(gw: NsChild, find: (l: FlowLine) => boolean): Promise<FlowLine | undefined> {
  let line: FlowLine | undefined;
  for (let i = 0; i < 200 && !(line = jsonLines(gw).find(find)); i++) await new Promise((r) => setTimeout(r, 50));
  return line;
}

/** The line of the UDP flow from this client port to dst ("host:port", IPv6 in brackets) through this inbound. */
export function udpFlowLine(gw: NsChild, inbound: 'tun' | 'tproxy', dst: string, localPort: number | undefined): Promise<FlowLine | undefined> {
  if (localPort === undefined) return Promise.resolve(undefined);
  return waitForJsonLine(gw, (l) => l.msg === 'conn' && l.inbound === inbound && l.dst === dst && l.src?.endsWith(`:${localPort}`) === true);
}
