// Notices when resolv.conf is rewritten (a DHCP client, NetworkManager,
// systemd-resolved writing /run/systemd/resolve/resolv.conf): inotify on the
// file itself (a write in place, as through `ip netns exec`'s bind mount) and
// on its directory (a new file renamed over it, the usual atomic replace), the
// file watch armed again after a rename. Debounced: a writer that truncates
// and then writes is read once it is done.
import { watch, readFileSync, realpathSync, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

const DEBOUNCE_MS = 100;

export class ResolvConfWatcher {
  private watchers: FSWatcher[] = [];
  private fileWatcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Each file's text as last reported (or found at start). */
  private readonly lastText = new Map<string, string>();
  private closed = false;

  /** paths: the files to follow (resolv.conf, and systemd-resolved's when resolv.conf names its stub). onChange: a file's new text. */
  constructor(
    private readonly paths: string[],
    private readonly onChange: (path: string, text: string) => void,
  ) {
    for (const p of paths) {
      const text = readQuiet(p);
      if (text !== null) this.lastText.set(p, text);
      for (const dir of new Set([dirname(p), dirname(safeRealpath(p))])) {
        try {
          this.watchers.push(watch(dir, { persistent: false }, (_e, name) => name && (name === basename(p) || name === basename(safeRealpath(p))) && this.soon()));
        } catch {
          // a directory we may not watch: the file watch still sees writes in place
        }
      }
    }
    this.armFile();
  }

  private armFile(): void {
    this.fileWatcher?.close();
    this.fileWatcher = null;
    const ws: FSWatcher[] = [];
    for (const p of this.paths) {
      try {
        ws.push(
          watch(p, { persistent: false }, (e) => {
            if (e === 'rename') this.armFile(); // replaced: watch the new file
            this.soon();
          }),
        );
      } catch {
        // gone for the moment: the directory watch sees it come back
      }
    }
    // one handle to close for all of them
    this.fileWatcher = { close: () => ws.forEach((w) => w.close()) } as FSWatcher;
  }

  private soon(): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.check(), DEBOUNCE_MS);
    this.timer.unref();
  }

  /** Reads every followed file now and reports the ones whose text changed since the last report. */
  check(): void {
    this.timer = null;
    if (this.closed) return;
    this.armFile();
    for (const p of this.paths) {
      const text = readQuiet(p);
      if (text === null || text === this.lastText.get(p)) continue;
      this.lastText.set(p, text);
      this.onChange(p, text);
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.fileWatcher?.close();
    for (const w of this.watchers) w.close();
  }
}

function readQuiet(p: string): string | null {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return null;
  }
}

function safeRealpath(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}
