// Sends raw bytes and reports what came back, for the evasion tests. One JSON
// argument, a job or an array of jobs (run one after the other, in one
// process: a node start per case costs more than the case); prints one JSON
// line, a result or an array of results. Bounded in time.
//   {"proto":"tcp","host":H,"port":P,"parts":[base64...],"gapMs":N,"waitMs":N}
//     connects, writes the parts gapMs apart, reads until the peer closes or
//     waitMs after the last write: {"got":base64,"end":"close"|"reset"|"timeout"|"refused"}
//   {"proto":"udp","host":H,"port":P,"parts":[base64...],"gapMs":N,"waitMs":N}
//     a connected UDP socket sends the datagrams, counts the answers:
//     {"answers":N,"end":"refused"|"timeout"} (refused: ICMP port unreachable)
import net from 'node:net';
import dgram from 'node:dgram';

interface Job {
  proto: 'tcp' | 'udp';
  host: string;
  port: number;
  parts: string[];
  gapMs?: number;
  waitMs?: number;
}

const arg = JSON.parse(process.argv[2]) as Job | Job[];
const jobs = Array.isArray(arg) ? arg : [arg];
const budget = jobs.reduce((n, j) => n + (j.gapMs ?? 0) * j.parts.length + (j.waitMs ?? 2000) + 3000, 2000);
const hard = setTimeout(() => {
  console.log(JSON.stringify({ end: 'timeout', hard: true }));
  process.exit(1);
}, budget);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tcp(job: Job): Promise<Record<string, unknown>> {
  const parts = job.parts.map((p) => Buffer.from(p, 'base64'));
  const gap = job.gapMs ?? 0;
  const wait = job.waitMs ?? 2000;
  return new Promise((done) => {
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const s = net.connect({ host: job.host, port: job.port, allowHalfOpen: true });
    const report = (end: string) => {
      clearTimeout(timer);
      s.destroy();
      done({ got: Buffer.concat(chunks).toString('base64'), end });
    };
    s.on('data', (d) => chunks.push(d));
    s.on('end', () => report('close'));
    s.on('error', (e: NodeJS.ErrnoException) => report(e.code === 'ECONNRESET' ? 'reset' : e.code === 'ECONNREFUSED' ? 'refused' : `error ${e.code}`));
    const send = async (): Promise<void> => {
      for (let i = 0; i < parts.length; i++) {
        if (i > 0 && gap > 0) await sleep(gap);
        if (s.destroyed) return;
        s.write(parts[i]);
      }
      timer = setTimeout(() => report('timeout'), wait);
    };
    s.on('connect', () => {
      send().catch((e: Error) => report(`error ${e.message}`));
    });
  });
}

/** A connected UDP socket sends the datagrams, then the first again after 300 ms (a retransmission: it surfaces an ICMP error). */
function udp(job: Job): Promise<Record<string, unknown>> {
  const parts = job.parts.map((p) => Buffer.from(p, 'base64'));
  const gap = job.gapMs ?? 0;
  const wait = job.waitMs ?? 2000;
  return new Promise((done) => {
    let answers = 0;
    let timer: NodeJS.Timeout | undefined;
    let closed = false;
    const u = dgram.createSocket(job.host.includes(':') ? 'udp6' : 'udp4');
    const report = (r: Record<string, unknown>) => {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      u.close();
      done(r);
    };
    u.on('message', () => answers++);
    u.on('error', (e: NodeJS.ErrnoException) => report({ answers, end: e.code === 'ECONNREFUSED' ? 'refused' : `error ${e.code}` }));
    // an ICMP error reported during a pause closes the socket: send no more (send() on it would throw)
    const send = async (): Promise<void> => {
      for (let i = 0; i < parts.length; i++) {
        if (i > 0 && gap > 0) await sleep(gap);
        if (closed) return;
        u.send(parts[i]);
      }
      await sleep(300);
      if (closed) return;
      u.send(parts[0]);
      timer = setTimeout(() => report({ answers, end: 'timeout' }), wait);
    };
    u.connect(job.port, job.host, () => {
      send().catch((e: Error) => report({ answers, end: `error ${e.message}` }));
    });
  });
}

const results: Record<string, unknown>[] = [];
for (const j of jobs) results.push(await (j.proto === 'tcp' ? tcp(j) : udp(j)));
clearTimeout(hard);
console.log(JSON.stringify(Array.isArray(arg) ? results : results[0]));
process.exit(0);
