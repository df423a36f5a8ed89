// <state-dir>/fake-ip.json: the fake-IP mappings, kept across restarts so a
// client that cached an answer still reaches the same name. Written by the
// process that owns the state dir (the supervisor), atomically.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const fileOf = (stateDir: string) => join(stateDir, 'fake-ip.json');

/** undefined when there is none or it is unreadable: start empty. */
export function loadFakeIps(stateDir: string): unknown {
  try {
    return JSON.parse(readFileSync(fileOf(stateDir), 'utf8'));
  } catch {
    return undefined;
  }
}

export function saveFakeIps(stateDir: string, data: unknown): void {
  const f = fileOf(stateDir);
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(`${f}.tmp`, JSON.stringify(data));
  renameSync(`${f}.tmp`, f);
}
