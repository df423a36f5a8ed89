// A peer.py process in a namespace, driven by JSON lines: one per side of the
// differential harness, serving many scenarios at once.
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { spawnInNs, type NsChild, type TeardownHost } from '../netns.js';
import { ROOT } from '../topology.js';
import type { SideResult } from './scenario.js';

const PEER = join(ROOT, 'test/helpers/diff/peer.py');

interface Pending {
  ready?: () => void;
  result: (r: SideResult) => void;
}

export class Agent {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  private constructor(private readonly child: NsChild) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as { id?: number; ready?: unknown; result?: SideResult };
      const p = m.id === undefined ? undefined : this.pending.get(m.id);
      if (!p) return;
      if (m.result) {
        this.pending.delete(m.id!);
        p.result(m.result);
      } else if (m.ready) p.ready?.();
    });
    child.on('exit', () => {
      for (const p of this.pending.values()) p.result({ rx: 0, sha: '', end: `agent-exited:${child.stderrText().slice(-300)}` });
      this.pending.clear();
    });
  }

  static async start(t: TeardownHost, ns: string): Promise<Agent> {
    const child = spawnInNs(t, ns, ['python3', '-u', PEER], { stdio: ['pipe', 'pipe', 'pipe'] });
    await child.waitForLine((l) => l.includes('"agent"'), 15_000);
    return new Agent(child);
  }

  /** TCP: a listener on [::]:port (both families) that plays the server's part for the first connection; UDP: an echo socket on each of `bind`. */
  listen(port: number, proto: string, script: object, bind: string[]): { ready: Promise<void>; result: Promise<SideResult> } {
    let ready!: () => void;
    const readyP = new Promise<void>((r) => (ready = r));
    const result = this.send({ op: 'listen', port, proto, script, bind }, ready);
    return { ready: readyP, result };
  }

  connect(host: string, port: number, proto: string, script: object): Promise<SideResult> {
    return this.send({ op: 'connect', host, port, proto, script });
  }

  private send(cmd: object, ready?: () => void): Promise<SideResult> {
    const id = this.nextId++;
    return new Promise((result) => {
      this.pending.set(id, { ready, result });
      this.child.stdin!.write(JSON.stringify({ ...cmd, id }) + '\n');
    });
  }
}
