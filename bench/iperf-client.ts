// One iperf3 client run from a namespace, as every throughput benchmark needs it.
import { nsExec } from '../test/helpers/netns.js';

export interface IperfRun {
  server: string;
  seconds: number;
  streams?: number;
  /** -R: the server sends (download). */
  reverse?: boolean;
}

/** Gbit/s received and bytes moved. */
export async function iperfClient(ns: string, run: IperfRun): Promise<{ gbps: number; bytes: number }> {
  const args = ['iperf3', '-c', run.server, '-t', String(run.seconds), '-P', String(run.streams ?? 1), '-J', ...(run.reverse ? ['-R'] : [])];
  for (let attempt = 1; ; attempt++) {
    const r = await nsExec(ns, args, { timeoutMs: (run.seconds + 30) * 1000, allowFail: true });
    let j: { error?: string; end?: { sum_received?: { bits_per_second: number; bytes: number } } };
    try {
      j = JSON.parse(r.stdout);
    } catch {
      throw new Error(`iperf3 gave no JSON: ${r.stderr.slice(-300)}`);
    }
    // iperf3's server takes a moment after a test ends before it takes the next one: it says
    // "busy" in between (seen in CI right after slirp4netns's runs), and it closes its listening
    // socket at the end of each test and opens a new one (cleanup_server), so a client that comes
    // in that gap is refused (seen in a fresh-clone run, through the gateway): wait and ask again.
    if (j.error && /busy|Connection refused/.test(j.error) && attempt < 10) {
      await new Promise((res) => setTimeout(res, 1000));
      continue;
    }
    const sum = j.end?.sum_received;
    if (j.error || !sum) throw new Error(j.error ?? 'iperf3 reported no result');
    return { gbps: sum.bits_per_second / 1e9, bytes: sum.bytes };
  }
}
