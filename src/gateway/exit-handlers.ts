// Every way the gateway's process can end runs its restore once: SIGINT,
// SIGTERM, SIGHUP, an uncaught exception or rejection, and process.exit()
// from anywhere. The restore (routing/restore.ts) is synchronous, so it
// completes inside these handlers before the process ends. A stop asked for
// with SIGINT or SIGTERM that restored everything exits 0: it is how the
// gateway is meant to end (Ctrl-C, systemctl stop), not a failure.

/** What installExitHandlers listens on and calls; `process` in production, a fake in tests. */
export interface ExitTarget {
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  off(event: string, listener: (...args: unknown[]) => void): unknown;
  exit(code?: number): void;
  exitCode?: number | string | null;
}

export interface ExitHandlerOptions {
  target?: ExitTarget;
  /** Where to report the error that brought us down, and a failed restore, as text. Default: stderr. */
  report?: (message: string) => void;
  /**
   * Gets those errors as objects instead (e.g. to log them with pino), called
   * after the restore: an uncaught exception or rejection reason, or the error
   * the restore threw. Replaces report when given.
   */
  onError?: (err: unknown, what: 'uncaughtException' | 'unhandledRejection' | 'restore') => void;
  /**
   * Takes over SIGINT/SIGTERM/SIGHUP (with the exit code they map to) for a
   * caller that must do asynchronous work first; it ends with process.exit,
   * and the restore runs then, from the exit handler.
   */
  onSignal?: (code: number, signal: string) => void;
  /** Takes SIGHUP instead (`up` reloads its config on it): then it neither restores nor exits. */
  onHangup?: () => void;
}

/** The exit code after a stop by each signal (once restored): SIGINT and SIGTERM ask for a stop, so 0; SIGHUP (the terminal went away) 128 + 1, as shells report it. */
export const SIGNAL_EXIT_CODES = { SIGINT: 0, SIGTERM: 0, SIGHUP: 129 } as const;

/**
 * On SIGINT, SIGTERM, SIGHUP, uncaughtException, unhandledRejection and a
 * plain exit: run restoreFn once (told why), then exit with 0/0/129, 1 after an
 * error, or 1 when the restore itself failed. restoreFn must be synchronous.
 * The second argument is options, or just an onError callback.
 * Returns a function that removes the handlers (after an orderly shutdown
 * that restored by itself).
 */
export function installExitHandlers(restoreFn: (why: string) => void, optsOrOnError: ExitHandlerOptions | ExitHandlerOptions['onError'] = {}): () => void {
  const opts: ExitHandlerOptions = typeof optsOrOnError === 'function' ? { onError: optsOrOnError } : (optsOrOnError ?? {});
  const target: ExitTarget = opts.target ?? (process as unknown as ExitTarget);
  const report = opts.report ?? ((m: string) => process.stderr.write(`tunsteer: ${m}\n`));
  let restored = false;
  const restoreOnce = (why: string): boolean => {
    if (restored) return true;
    restored = true;
    try {
      restoreFn(why);
      return true;
    } catch (e) {
      if (opts.onError) opts.onError(e, 'restore');
      else report(`restoring routing failed: ${(e as Error).message ?? String(e)}`);
      return false;
    }
  };
  const listeners: [string, (...args: unknown[]) => void][] = [];
  const add = (event: string, fn: (...args: unknown[]) => void) => {
    listeners.push([event, fn]);
    target.on(event, fn);
  };
  for (const [sig, code] of Object.entries(SIGNAL_EXIT_CODES)) {
    add(sig, () => {
      if (sig === 'SIGHUP' && opts.onHangup) return opts.onHangup();
      if (opts.onSignal) return opts.onSignal(code, sig);
      const ok = restoreOnce(sig);
      target.exit(ok ? code : 1);
    });
  }
  const fatal = (what: 'uncaughtException' | 'unhandledRejection') => (err: unknown) => {
    if (!opts.onError) report(`${what}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    restoreOnce(what);
    opts.onError?.(err, what);
    target.exit(1);
  };
  add('uncaughtException', fatal('uncaughtException'));
  add('unhandledRejection', fatal('unhandledRejection'));
  // Last chance for process.exit() elsewhere and a drained event loop; only sync work runs here.
  add('exit', () => {
    if (!restoreOnce('exit')) target.exitCode = 1;
  });
  return () => {
    for (const [event, fn] of listeners) target.off(event, fn);
  };
}
