// The connection states (RFC 9293 §3.3.2) and what each allows.
export type TcpState = 'SYN-SENT' | 'SYN-RECEIVED' | 'ESTABLISHED' | 'FIN-WAIT-1' | 'FIN-WAIT-2' | 'CLOSE-WAIT' | 'CLOSING' | 'LAST-ACK' | 'TIME-WAIT' | 'CLOSED';

/** Data (and our FIN) may go out: the handshake is done and our FIN not yet acknowledged. */
export function canSendData(s: TcpState): boolean {
  return s === 'ESTABLISHED' || s === 'CLOSE-WAIT' || s === 'FIN-WAIT-1' || s === 'CLOSING' || s === 'LAST-ACK';
}

/** The app may still queue data: before our FIN (in SYN-RECEIVED it leaves once the handshake completes). */
export function canWrite(s: TcpState): boolean {
  return s === 'ESTABLISHED' || s === 'CLOSE-WAIT' || s === 'SYN-RECEIVED';
}

/** Both sequence spaces are synchronized (the handshake completed, not yet closed). */
export function synchronized(s: TcpState): boolean {
  return s !== 'CLOSED' && s !== 'SYN-SENT' && s !== 'SYN-RECEIVED';
}

/** The peer's text is delivered in these states (RFC 9293 §3.10.7.4 seventh). */
export function receivesData(s: TcpState): boolean {
  return s === 'ESTABLISHED' || s === 'FIN-WAIT-1' || s === 'FIN-WAIT-2';
}

/** The state after our first FIN went out (§3.10.4). */
export function afterFinSent(s: TcpState): TcpState {
  return s === 'ESTABLISHED' ? 'FIN-WAIT-1' : s === 'CLOSE-WAIT' ? 'LAST-ACK' : s;
}
