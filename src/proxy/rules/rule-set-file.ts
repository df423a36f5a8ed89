// Reading a rule-set file: the format from the config, else from the file
// (.json, or text that starts with '{': sing-box's source format; .srs: the
// binary form, which is refused with what to do; anything else: plain text).
import { readFileSync } from 'node:fs';
import { RuleSetError } from './rule-set-error.js';
import type { RuleSet } from './rule-set.js';
import { parseSingBoxRuleSet } from './rule-set-sing-box.js';
import { parseTextRuleSet } from './rule-set-text.js';

export type RuleSetFormat = 'text' | 'sing-box';

export function formatOf(path: string, text: string): RuleSetFormat {
  if (path.endsWith('.json')) return 'sing-box';
  return /^\s*\{/.test(text.slice(0, 256)) ? 'sing-box' : 'text';
}

/** Reads and compiles one set; throws RuleSetError (by file and line) or the read's error (ENOENT...). */
export function loadRuleSetFile(name: string, path: string, format?: RuleSetFormat): RuleSet {
  return loadRuleSetSource(name, path, format).set;
}

/** The same, with the text it was compiled from (stack workers compile their own copy from it). */
export function loadRuleSetSource(name: string, path: string, format?: RuleSetFormat): { set: RuleSet; text: string } {
  if (path.endsWith('.srs') && format === undefined) {
    throw new RuleSetError(path, [{ line: 1, message: 'a binary sing-box rule-set: give its source (sing-box rule-set decompile FILE.srs) instead' }]);
  }
  const text = readFileSync(path, 'utf8');
  return { set: parseRuleSet(name, path, text, format), text };
}

/** Compiles a set from its file's text, read elsewhere. */
export function parseRuleSet(name: string, path: string, text: string, format?: RuleSetFormat): RuleSet {
  return (format ?? formatOf(path, text)) === 'sing-box' ? parseSingBoxRuleSet(name, path, text) : parseTextRuleSet(name, path, text);
}
