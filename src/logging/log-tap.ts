// A tap on the process's log lines for the control API (GET /logs, the
// dashboard's log tail): each line pino writes goes to its destination as
// before, and is kept in a short ring and handed to whoever listens. Lines
// are kept as written (redaction has happened already) and parsed only when
// someone reads them.
import type { pino } from 'pino';

/** Lines kept for a dashboard that opens after they were written. */
const RING = 200;

export interface TappedLine {
  /** pino's level number: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal. */
  level: number;
  time: string;
  msg: string;
  /** The line's other fields (not level, time, pid, msg). */
  fields: Record<string, unknown>;
}

export class LogTap {
  private readonly ring: string[] = [];
  private next = 0;
  private readonly listeners = new Set<(l: TappedLine) => void>();

  /** A destination for createLogger: writes to `to`, then taps. */
  destination(to: pino.DestinationStream): pino.DestinationStream {
    return {
      write: (line: string) => {
        to.write(line);
        this.push(line);
      },
    };
  }

  push(line: string): void {
    if (this.ring.length < RING) this.ring.push(line);
    else this.ring[this.next] = line;
    this.next = (this.next + 1) % RING;
    if (this.listeners.size === 0) return;
    const l = parseLine(line);
    if (l) for (const f of this.listeners) f(l);
  }

  /** The lines kept, oldest first. */
  recent(): TappedLine[] {
    const ordered = this.ring.length < RING ? this.ring : [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
    return ordered.map(parseLine).filter((l): l is TappedLine => l !== null);
  }

  /** Every line from now on; returns the unsubscribe. */
  subscribe(f: (l: TappedLine) => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }
}

function parseLine(line: string): TappedLine | null {
  try {
    const { level, time, msg, pid: _pid, hostname: _h, ...fields } = JSON.parse(line) as Record<string, unknown>;
    return { level: Number(level), time: String(time ?? ''), msg: String(msg ?? ''), fields };
  } catch {
    return null;
  }
}
