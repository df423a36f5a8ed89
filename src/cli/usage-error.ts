// Exit codes of the CLI: 2 when the user's input is wrong, 1 when running
// failed. Input is wrong when the command line cannot be parsed (a
// UsageError, from args.ts), or when a setting it or the config file gives
// cannot be used (a ConfigError, from src/config or from a later check such
// as --user or --netns naming nothing), whenever that is found.
import { ConfigError } from '../config/config-error.js';

/** The command line cannot be parsed: an unknown command or flag, a missing value. */
export class UsageError extends Error {}

export const EXIT_USAGE = 2;
export const EXIT_FAILURE = 1;

export function isUsageError(e: unknown): e is Error {
  return e instanceof UsageError || e instanceof ConfigError;
}

export function exitCodeOf(e: unknown): number {
  return isUsageError(e) ? EXIT_USAGE : EXIT_FAILURE;
}
