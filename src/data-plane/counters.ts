// The data plane's live counters, as `tunsteer status` and the status file show them.

/** Every counter of o, named with prefix p (proxy_, dns_, tproxy_, ...). */
export function prefixed(p: string, o: object): Record<string, number> {
  const r: Record<string, number> = {};
  for (const [k, v] of Object.entries(o)) r[p + k] = v as number;
  return r;
}

/** Where the data plane's memory is (RSS against V8's heap and Buffers), to tell a leak from a heap V8 has kept. */
export function memoryCounters(): Record<string, number> {
  const m = process.memoryUsage();
  return { mem_rss: m.rss, mem_heap_total: m.heapTotal, mem_heap_used: m.heapUsed, mem_external: m.external, mem_array_buffers: m.arrayBuffers };
}
