// How a connection still open when the data plane stops ends, in its log
// line: TCP and UDP alike, wherever the stack runs (this thread or a worker).

/** How a connection still open when the data plane stops ended, in its log line (TCP and UDP alike). */
export const STOP_END = 'gateway-stop';

/**
 * A UDP flow's log line. The UDP relays (the stack's, tproxy's) end every flow
 * with 'shutdown' when closed all at once, which only the stop does: the line
 * says so in the words the TCP lines use.
 */
export function udpFlowLine(inbound: 'tun' | 'tproxy', e: { end: string }): object {
  if (e.end === 'shutdown') udpStopped++;
  return { inbound, proto: 'udp', ...e, end: e.end === 'shutdown' ? STOP_END : e.end };
}

/** UDP flows ended by the stop (their lines say gateway-stop), for the stop's "restored, N connections closed". */
export let udpStopped = 0;
