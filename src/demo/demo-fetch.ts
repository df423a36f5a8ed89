// `tunsteer __demo-fetch URL` (not for users): one HTTP GET from the demo's
// client namespace, the way any program there would (the system resolver,
// the namespace's routes), reported as one JSON line: status, body, time.
import http from 'node:http';
import { performance } from 'node:perf_hooks';

export interface FetchResult {
  url: string;
  status?: number;
  body?: string;
  error?: string;
  ms: number;
}

export function runDemoFetch(argv: string[]): Promise<number> {
  const url = argv[0];
  const started = performance.now();
  const report = (r: Omit<FetchResult, 'url' | 'ms'>) => {
    process.stdout.write(`${JSON.stringify({ url, ...r, ms: Math.round(performance.now() - started) })}\n`);
    return 0;
  };
  return new Promise((resolve) => {
    // IPv4: the demo's network has no IPv6 path, and a dual-stack lookup would make the result depend on the machine
    const req = http.get(url, { family: 4, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(report({ status: res.statusCode, body })));
      res.on('error', (e) => resolve(report({ error: e.message })));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', (e) => resolve(report({ error: (e as NodeJS.ErrnoException).code ?? e.message })));
  });
}
