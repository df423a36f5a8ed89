// Link impairment without netem (this kernel has no sch_netem): nftables
// `numgen random` drop rules inside a namespace of the test's own (table inet
// tsloss, removed with the namespace or by clearDrops()).
//
// Packets are dropped where they ARRIVE (prerouting), never where they leave:
// a packet that the OUTPUT hook drops fails the sender's own send call, which
// a real lossy link never does, and Linux reacts to that in ways no wire
// shows. Its SYN-ACK retransmission timer (reqsk_timer_handler) treats a
// failed resend as the end of the half-open connection and frees it at once,
// silently; so "the handshake's last ACK lost, then the first SYN-ACK resend
// dropped on output" left the client ESTABLISHED against a server with no
// socket, and a server-first client waited for a greeting that could never
// come: 3 of 8,000 connections over the kernel path alone, and the same rate
// through the gateway (DECISIONS, "Loss on the receiving side").
import { nsExec } from '../netns.js';

export async function vethOf(ns: string): Promise<string> {
  const r = await nsExec(ns, ['ip', '-o', 'link', 'show', 'type', 'veth']);
  return r.stdout.split(':')[1].trim().split('@')[0];
}

/**
 * Drops `percent` % of the packets arriving in `ns` on each of `devs`. Loss
 * both ways on a veth is this at both of its ends; on the TUN, the gateway's
 * faulty TUN (TUNSTEER_TEST_FAULTS "rx:loss=...") drops the other way.
 */
export async function dropArriving(ns: string, devs: string[], percent: number): Promise<void> {
  const rules = devs.map((dev) => `    iifname "${dev}" numgen random mod 1000 < ${Math.round(percent * 10)} counter drop`);
  const script = ['table inet tsloss {', '  chain in { type filter hook prerouting priority -310; policy accept;', ...rules, '  }', '}', ''].join('\n');
  await nsExec(ns, ['nft', '-f', '-'], { input: script });
}

/** Packets the rules dropped so far, to show the impairment was real. */
export async function dropped(ns: string): Promise<number> {
  const r = await nsExec(ns, ['nft', 'list', 'table', 'inet', 'tsloss'], { allowFail: true });
  return [...r.stdout.matchAll(/counter packets (\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
}

export async function clearDrops(ns: string): Promise<void> {
  await nsExec(ns, ['nft', 'delete', 'table', 'inet', 'tsloss'], { allowFail: true });
}
