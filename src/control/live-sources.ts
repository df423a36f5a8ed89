// The API's view over one or more live sources (one per worker when the data
// plane runs several): connections listed together with ids made unique by
// their source ("3.1742" is worker 3's connection 1742; a lone source keeps
// plain ids), closes sent to the source that has the connection, bytes summed.
import type { Bytes, ListedConnection, LiveSource } from './contracts.js';

export interface CombinedSource {
  connections(): Promise<ListedConnection[]>;
  close(id: string): Promise<boolean>;
  closeAll(): Promise<number>;
  totals(): Promise<Bytes>;
}

export function combineSources(sources: readonly LiveSource[]): CombinedSource {
  const single = sources.length === 1;
  const idOf = (i: number, id: number) => (single ? String(id) : `${i}.${id}`);
  const parse = (id: string): [number, number] | null => {
    const m = single ? /^(\d+)$/.exec(id) : /^(\d+)\.(\d+)$/.exec(id);
    if (!m) return null;
    return single ? [0, Number(m[1])] : [Number(m[1]), Number(m[2])];
  };
  return {
    async connections() {
      const lists = await Promise.all(sources.map(async (s) => s.connections()));
      return lists.flatMap((l, i) => l.map((c) => ({ ...c, id: idOf(i, c.id) })));
    },
    async close(id) {
      const p = parse(id);
      if (!p || p[0] >= sources.length) return false;
      return sources[p[0]].close(p[1]);
    },
    async closeAll() {
      const n = await Promise.all(sources.map(async (s) => s.closeAll()));
      return n.reduce((a, b) => a + b, 0);
    },
    async totals() {
      const all = await Promise.all(sources.map(async (s) => s.totals()));
      return all.reduce((a, b) => ({ up: a.up + b.up, down: a.down + b.down }), { up: 0, down: 0 });
    },
  };
}
