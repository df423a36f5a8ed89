// The state machine as a table: one row per RFC rule, a segment in and the
// segments out, over a template that takes a connection to the row's state.
// Sequence numbers in a row are offsets: the segment's seq from R (what we
// expect next from the client) and its ack from S (our next sequence number);
// what we send back likewise (a RST's seq is the offending ACK, from S).
// Every row runs with ISNs near 0 and near 2^32 - 1000.
import t from 'tap';
import { TcpConnection } from '../../../../src/stack/tcp/tcp-connection.js';
import type { TcpState } from '../../../../src/stack/tcp/tcp-state.js';
import { ACK, FIN, ISNS, PSH, RST, Recorder, SYN, add, opts, seg } from './harness.js';

type From = 'SYN-RECEIVED' | 'ESTABLISHED' | 'FIN-WAIT-1' | 'FIN-WAIT-2' | 'CLOSE-WAIT' | 'LAST-ACK' | 'CLOSING' | 'TIME-WAIT';
interface Row {
  name: string;
  rfc: string;
  from: From;
  send: { flags: number; seq?: number; ack?: number; data?: number };
  expect: { flags: number; seq: number; ack: number }[];
  state: TcpState;
  /** The app's events the row causes (open, peer-fin, closed:...). */
  events?: string[];
}

const F = { A: ACK, S: SYN, F: FIN, R: RST, P: PSH };
const rows: Row[] = [
  { name: 'handshake ACK', rfc: '9293 §3.10.7.4 fifth', from: 'SYN-RECEIVED', send: { flags: F.A }, expect: [], state: 'ESTABLISHED', events: ['open'] },
  { name: 'ACK of more than our SYN', rfc: '9293 §3.10.7.4', from: 'SYN-RECEIVED', send: { flags: F.A, ack: 1 }, expect: [{ flags: F.R, seq: 1, ack: 0 }], state: 'SYN-RECEIVED' },
  { name: 'ACK below our SYN', rfc: '9293 §3.10.7.4', from: 'SYN-RECEIVED', send: { flags: F.A, ack: -1 }, expect: [{ flags: F.R, seq: -1, ack: 0 }], state: 'SYN-RECEIVED' },
  {
    name: 'retransmitted SYN: SYN-ACK again',
    rfc: '9293 §3.10.7.4 (lost SYN-ACK)',
    from: 'SYN-RECEIVED',
    send: { flags: F.S, seq: -1 },
    expect: [{ flags: F.S | F.A, seq: -1, ack: 0 }],
    state: 'SYN-RECEIVED',
  },
  {
    name: 'data on the handshake ACK is taken',
    rfc: '9293 §3.10.7.4',
    from: 'SYN-RECEIVED',
    send: { flags: F.A | F.P, data: 10 },
    expect: [],
    state: 'ESTABLISHED',
    events: ['open'],
  },
  { name: 'in-order data: delayed ACK', rfc: '5681 §4.2', from: 'ESTABLISHED', send: { flags: F.A | F.P, data: 100 }, expect: [], state: 'ESTABLISHED' },
  {
    name: 'data past a hole: duplicate ACK at once',
    rfc: '5681 §4.2',
    from: 'ESTABLISHED',
    send: { flags: F.A, seq: 100, data: 100 },
    expect: [{ flags: F.A, seq: 0, ack: 0 }],
    state: 'ESTABLISHED',
  },
  {
    name: 'beyond the window: ACK, dropped',
    rfc: '9293 §3.10.7.4 first',
    from: 'ESTABLISHED',
    send: { flags: F.A, seq: 70_000, data: 10 },
    expect: [{ flags: F.A, seq: 0, ack: 0 }],
    state: 'ESTABLISHED',
  },
  {
    name: 'an old duplicate: ACK',
    rfc: '9293 §3.10.7.4 first',
    from: 'ESTABLISHED',
    send: { flags: F.A, seq: -100, data: 50 },
    expect: [{ flags: F.A, seq: 0, ack: 0 }],
    state: 'ESTABLISHED',
  },
  { name: 'RST at rcvNxt closes', rfc: '5961 §3.2', from: 'ESTABLISHED', send: { flags: F.R }, expect: [], state: 'CLOSED', events: ['closed:reset-by-peer'] },
  { name: 'RST in the window: challenge ACK', rfc: '5961 §3.2', from: 'ESTABLISHED', send: { flags: F.R, seq: 1 }, expect: [{ flags: F.A, seq: 0, ack: 0 }], state: 'ESTABLISHED' },
  { name: 'RST outside the window: ignored', rfc: '5961 §3.2', from: 'ESTABLISHED', send: { flags: F.R, seq: 10_000_000 }, expect: [], state: 'ESTABLISHED' },
  { name: 'SYN in a synchronized state: challenge ACK', rfc: '5961 §4', from: 'ESTABLISHED', send: { flags: F.S }, expect: [{ flags: F.A, seq: 0, ack: 0 }], state: 'ESTABLISHED' },
  {
    name: 'ACK of data never sent: ACK, dropped',
    rfc: '5961 §5',
    from: 'ESTABLISHED',
    send: { flags: F.A, ack: 10 },
    expect: [{ flags: F.A, seq: 0, ack: 0 }],
    state: 'ESTABLISHED',
  },
  { name: 'no ACK bit: dropped', rfc: '9293 §3.10.7.4 fifth', from: 'ESTABLISHED', send: { flags: F.P, data: 10 }, expect: [], state: 'ESTABLISHED' },
  {
    name: 'FIN: ACK it, CLOSE-WAIT',
    rfc: '9293 §3.10.7.4 eighth',
    from: 'ESTABLISHED',
    send: { flags: F.F | F.A },
    expect: [{ flags: F.A, seq: 0, ack: 1 }],
    state: 'CLOSE-WAIT',
    events: ['peer-fin'],
  },
  {
    name: 'FIN past a hole: waits, duplicate ACK',
    rfc: '9293 §3.10.7.4 eighth',
    from: 'ESTABLISHED',
    send: { flags: F.F | F.A, seq: 100, data: 10 },
    expect: [{ flags: F.A, seq: 0, ack: 0 }],
    state: 'ESTABLISHED',
  },
  {
    name: 'data after the peer FIN: ACK only',
    rfc: '9293 §3.10.7.4 seventh',
    from: 'CLOSE-WAIT',
    send: { flags: F.A, data: 10 },
    expect: [{ flags: F.A, seq: 0, ack: 0 }],
    state: 'CLOSE-WAIT',
  },
  { name: 'our FIN acknowledged: FIN-WAIT-2', rfc: '9293 §3.10.7.4', from: 'FIN-WAIT-1', send: { flags: F.A }, expect: [], state: 'FIN-WAIT-2' },
  {
    name: 'FIN before our FIN is acknowledged: CLOSING',
    rfc: '9293 §3.6 simultaneous close',
    from: 'FIN-WAIT-1',
    send: { flags: F.F | F.A, ack: -1 },
    expect: [{ flags: F.A, seq: 0, ack: 1 }],
    state: 'CLOSING',
    events: ['peer-fin'],
  },
  {
    name: 'FIN that acknowledges ours: TIME-WAIT',
    rfc: '9293 §3.10.7.4',
    from: 'FIN-WAIT-1',
    send: { flags: F.F | F.A },
    expect: [{ flags: F.A, seq: 0, ack: 1 }],
    state: 'TIME-WAIT',
    events: ['peer-fin'],
  },
  {
    name: 'FIN in FIN-WAIT-2: TIME-WAIT',
    rfc: '9293 §3.10.7.4 eighth',
    from: 'FIN-WAIT-2',
    send: { flags: F.F | F.A },
    expect: [{ flags: F.A, seq: 0, ack: 1 }],
    state: 'TIME-WAIT',
    events: ['peer-fin'],
  },
  { name: 'ACK of our FIN in CLOSING: TIME-WAIT', rfc: '9293 §3.10.7.4', from: 'CLOSING', send: { flags: F.A }, expect: [], state: 'TIME-WAIT' },
  { name: 'ACK of our FIN in LAST-ACK: closed', rfc: '9293 §3.10.7.4', from: 'LAST-ACK', send: { flags: F.A }, expect: [], state: 'CLOSED', events: ['closed:fin'] },
  {
    name: 'retransmitted FIN in TIME-WAIT: ACK again',
    rfc: '9293 §3.10.7.4',
    from: 'TIME-WAIT',
    send: { flags: F.F | F.A, seq: -1 },
    expect: [{ flags: F.A, seq: 0, ack: 0 }],
    state: 'TIME-WAIT',
  },
  {
    name: 'RST in TIME-WAIT closes it',
    rfc: '9293 §3.10.7.4 (1337 TIME-WAIT assassination accepted)',
    from: 'TIME-WAIT',
    send: { flags: F.R },
    expect: [],
    state: 'CLOSED',
    events: ['closed:time-wait-expired'],
  },
];

/** A connection in state `from`, with R (its rcvNxt) and S (its sndNxt); the recorder emptied. */
function reach(from: From, irs: number, iss: number) {
  const rec = new Recorder();
  const c = TcpConnection.fromSyn(rec, opts(), iss, seg({ flags: SYN, seq: irs, mss: 1000 }), 0);
  c.accept(0);
  let R = add(irs, 1);
  let S = add(iss, 1);
  const ack = (flags = ACK) => c.receive(seg({ flags, seq: R, ack: S }), 1);
  if (from !== 'SYN-RECEIVED') ack();
  if (from === 'FIN-WAIT-1' || from === 'FIN-WAIT-2' || from === 'CLOSING' || from === 'TIME-WAIT') {
    c.close(2);
    S = add(S, 1);
    if (from === 'FIN-WAIT-2' || from === 'TIME-WAIT') ack();
    if (from === 'CLOSING') c.receive(seg({ flags: FIN | ACK, seq: R, ack: add(S, -1) }), 3);
    if (from === 'TIME-WAIT') c.receive(seg({ flags: FIN | ACK, seq: R, ack: S }), 3);
    if (from === 'CLOSING' || from === 'TIME-WAIT') R = add(R, 1);
  }
  if (from === 'CLOSE-WAIT' || from === 'LAST-ACK') {
    c.receive(seg({ flags: FIN | ACK, seq: R, ack: S }), 2);
    R = add(R, 1);
    if (from === 'LAST-ACK') {
      c.close(3);
      S = add(S, 1);
    }
  }
  if (c.state !== from) throw new Error(`template reached ${c.state}, not ${from}`);
  rec.take();
  rec.events.length = 0;
  return { c, rec, R, S };
}

for (const [label, irs, iss] of ISNS) {
  t.test(`RFC rules as segments in and out (ISNs ${label})`, async (t) => {
    for (const row of rows) {
      const { c, rec, R, S } = reach(row.from, irs, iss);
      const data = row.send.data ? Buffer.alloc(row.send.data, 0x61) : undefined;
      c.receive(seg({ flags: row.send.flags, seq: add(R, row.send.seq ?? 0), ack: add(S, row.send.ack ?? 0), data }), 10);
      const out = rec.take().map((s) => ({ flags: s.flags, seq: (s.seq - S) | 0, ack: s.flags & ACK ? (s.ack - R) | 0 : 0 }));
      // a RST answering an ACK carries no ACK; its ack field is 0 on the wire
      t.same(out, row.expect, `${row.from} + ${row.name} (RFC ${row.rfc}): segments out`);
      t.equal(c.state, row.state, `${row.from} + ${row.name}: state ${row.state}`);
      t.same(rec.events, row.events ?? [], `${row.from} + ${row.name}: events`);
    }
  });
}
