// How routing code touches the kernel: `ip` run with execFileSync (argv, never
// a shell; synchronous, see route-runner.ts), and sysctls read and written
// through /proc/sys of the caller's own network namespace. Everything else in
// src/routing takes these as parameters, so unit tests inject fakes and never
// execute anything.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

/** A failed command: which one, its exit code and what it said on stderr. */
export class IpCommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`\`${formatArgv(argv)}\` failed (exit ${exitCode ?? 'signal'}): ${stderr.trim() || '(no stderr)'}`);
    this.name = 'IpCommandError';
  }
}

export interface IpResult {
  stdout: string;
  stderr: string;
}

/** Runs `ip ARGV...` to completion; throws IpCommandError on a non-zero exit. */
export type IpExecSync = (argv: readonly string[]) => IpResult;

/** Reads and writes `net.ipv4.conf.X.rp_filter`-style keys. */
export interface SysctlIo {
  read(key: string): string;
  write(key: string, value: string): void;
}

const IP_BIN = 'ip';
const TIMEOUT_MS = 10_000;

export const ipExecSync: IpExecSync = (argv) => runIp(IP_BIN, [], argv);

/** Runs `nft ARGV...`, with input on stdin (for `nft -f -`); throws IpCommandError on failure. */
export type NftExecSync = (argv: readonly string[], input?: string) => IpResult;

export const nftExecSync: NftExecSync = (argv, input) => runIp('nft', [], argv, input);

/** `ip` run inside the network namespace at path (nsenter), this process staying where it is. */
export function ipExecInNetns(path: string): IpExecSync {
  return (argv) => runIp('nsenter', [`--net=${path}`, IP_BIN], argv);
}

function runIp(bin: string, prefix: string[], argv: readonly string[], input?: string): IpResult {
  try {
    const stdout = execFileSync(bin, [...prefix, ...argv], {
      timeout: TIMEOUT_MS,
      encoding: 'utf8',
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      input,
    });
    return { stdout, stderr: '' };
  } catch (e) {
    const err = e as { status?: number | null; stderr?: string | Buffer; message: string; code?: string };
    if (err.code === 'ETIMEDOUT') throw new IpCommandError(argv, null, `timed out after ${TIMEOUT_MS} ms`);
    if (typeof err.code === 'string') throw new Error(`cannot run ${bin}: ${err.message}`, { cause: e });
    const stderr = err.stderr === undefined ? err.message : String(err.stderr);
    throw new IpCommandError(argv, err.status ?? null, stderr);
  }
}

/**
 * sysctl(8) key → /proc/sys path. As in sysctl(8), a "/" inside a component
 * stands for a dot in the name: net.ipv4.conf.eth0/100.rp_filter is the VLAN
 * eth0.100.
 */
export function sysctlPath(key: string): string {
  const parts = key.split('.');
  if (!/^[A-Za-z0-9_./-]+$/.test(key) || parts.some((c) => c === '' || c === '/' || c.startsWith('/') || c.endsWith('/'))) {
    throw new Error(`bad sysctl key "${key}"`);
  }
  return `/proc/sys/${parts.map((c) => c.replaceAll('/', '.')).join('/')}`;
}

export const procSysctl: SysctlIo = {
  read: (key) => readFileSync(sysctlPath(key), 'utf8').trim(),
  write: (key, value) => writeFileSync(sysctlPath(key), `${value}\n`),
};

/** For messages and dry runs: `ip rule add ...` with arguments quoted only when needed. */
export function formatArgv(argv: readonly string[], bin = IP_BIN): string {
  const q = (a: string) => (/^[A-Za-z0-9_./:=@%+-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`);
  return [bin, ...argv].map(q).join(' ');
}

/**
 * True when an undo failed only because its object is already gone, so undoing
 * again is a no-op: a deleted rule (ENOENT), route (ESRCH), or a vanished
 * device (the TUN disappears with its owner, and its routes with it).
 */
export function isAlreadyGone(err: unknown): boolean {
  if (err instanceof IpCommandError) {
    return /No such process|No such file or directory|Cannot find device|does not exist|No such device/i.test(err.stderr);
  }
  // A sysctl of a device that has gone: its /proc/sys/net/ipv4/conf/DEV directory went with it.
  return (err as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}
