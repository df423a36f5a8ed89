// The config's rule-sets, read at start and watched afterwards. A file that
// changes is read again and swapped in whole (LiveRuleSet.swap: a lookup sees
// the old set or the new one); a file that no longer reads (a bad line, gone,
// half-written) keeps the last good set, and the log says why, by file and
// line. Each swap calls `onReload`, the hook a config reload uses too.
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../logging/log.js';
import { LiveRuleSet } from '../proxy/rules/live-rule-set.js';
import { RuleSetError } from '../proxy/rules/rule-set-error.js';
import { loadRuleSetSource } from '../proxy/rules/rule-set-file.js';
import { ConfigError } from './config-error.js';
import type { ConfigFile } from './schema.js';

/** A set file that reads but does not parse: an error for check-config too (a missing file is only a warning there). */
export class RuleSetFileError extends ConfigError {}

/**
 * Reads every set the config names; a set that does not load is a config error naming it, its file and line.
 * keepText: each set keeps its file's text (stack workers compile their copies from it).
 */
export function ruleSetsOf(c: Pick<ConfigFile, 'rule_sets'>, keepText = false): Map<string, LiveRuleSet> {
  const out = new Map<string, LiveRuleSet>();
  for (const [name, { path, format }] of Object.entries(c.rule_sets ?? {})) {
    try {
      const { set, text } = loadRuleSetSource(name, path, format);
      out.set(name, new LiveRuleSet(name, path, set, format, keepText ? text : null));
    } catch (e) {
      if (e instanceof RuleSetError) throw new RuleSetFileError(`rule_sets.${name}: ${e.message}`);
      throw new ConfigError(`rule_sets.${name}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  return out;
}

export interface RuleSetWatchOptions {
  log: Logger;
  /** Called after a set was swapped (the reload hook). */
  onReload?: (set: LiveRuleSet) => void;
  /** How long a file must be quiet before it is read (editors write in steps). */
  settleMs?: number;
}

/** Watches each set's directory (a file replaced by rename keeps being followed); returns the stop. */
export function watchRuleSets(sets: ReadonlyMap<string, LiveRuleSet>, o: RuleSetWatchOptions): () => void {
  const settle = o.settleMs ?? 200;
  const watchers: FSWatcher[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const byDir = new Map<string, LiveRuleSet[]>();
  for (const s of sets.values()) {
    const d = dirname(s.path);
    byDir.set(d, [...(byDir.get(d) ?? []), s]);
  }
  const pending = new Map<LiveRuleSet, NodeJS.Timeout>();
  const reload = (s: LiveRuleSet) => {
    pending.delete(s);
    const started = performance.now();
    try {
      const { set: next, text } = loadRuleSetSource(s.name, s.path, s.format);
      s.swap(next, text);
      const st = next.stats;
      o.log.info({ rule_set: s.name, path: s.path, indexed: st.indexed, conditional: st.conditional, ms: Math.round(performance.now() - started) }, 'rule-set reloaded');
      o.onReload?.(s);
    } catch (e) {
      const err = e as Error;
      const fields: Record<string, unknown> = { rule_set: s.name, path: s.path, error: err.message };
      if (e instanceof RuleSetError) fields.line = e.first.line;
      else fields.error = `cannot read ${s.path}: ${(e as NodeJS.ErrnoException).code ?? err.message}`;
      o.log.warn(fields, 'rule-set not reloaded: the last good set stays');
    }
  };
  for (const [dir, list] of byDir) {
    try {
      const w = watch(dir, { persistent: false }, (_event, file) => {
        for (const s of list) {
          if (file !== null && file !== basename(s.path)) continue;
          const old = pending.get(s);
          if (old) {
            clearTimeout(old);
            timers.delete(old);
          }
          const t = setTimeout(() => {
            timers.delete(t);
            reload(s);
          }, settle);
          t.unref();
          timers.add(t);
          pending.set(s, t);
        }
      });
      w.on('error', (err) => o.log.warn({ dir, error: err.message }, 'rule-set directory no longer watched'));
      watchers.push(w);
    } catch (e) {
      o.log.warn({ dir, error: (e as Error).message }, 'rule-set directory cannot be watched: its sets load only at start');
    }
  }
  return () => {
    for (const w of watchers) w.close();
    for (const t of timers) clearTimeout(t);
  };
}
