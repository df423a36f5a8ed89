// Flows keyed by the IPv4 4-tuple without strings: (client ip, port) and
// (server ip, port) each fit a double exactly (48 bits), so two numeric Map levels.
export class FlowTable<V> {
  private readonly m = new Map<number, Map<number, V>>();
  private n = 0;
  get size() {
    return this.n;
  }
  get4(src: number, dst: number, sport: number, dport: number): V | undefined {
    return this.m.get(src * 65536 + sport)?.get(dst * 65536 + dport);
  }
  set4(src: number, dst: number, sport: number, dport: number, v: V): void {
    const k = src * 65536 + sport;
    let inner = this.m.get(k);
    if (!inner) this.m.set(k, (inner = new Map()));
    const k2 = dst * 65536 + dport;
    if (!inner.has(k2)) this.n++;
    inner.set(k2, v);
  }
  delete4(src: number, dst: number, sport: number, dport: number): boolean {
    const k = src * 65536 + sport;
    const inner = this.m.get(k);
    if (!inner || !inner.delete(dst * 65536 + dport)) return false;
    if (inner.size === 0) this.m.delete(k);
    this.n--;
    return true;
  }
  forEach(fn: (v: V) => void): void {
    for (const inner of this.m.values()) for (const v of inner.values()) fn(v);
  }
}
