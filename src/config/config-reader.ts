// The config file's reader, loaded only when a command names a file: its
// parsers (yaml, zod and the schema built with it) are about 6 MB of the
// supervisor's RSS that a gateway run from flags alone never uses
// (docs/DECISIONS.md, "Idle RSS, lever by lever").
import type { ConfigFile } from './schema.js';

/** The file's config, or none; synchronous once made, so a reload can read the file again. */
export type ConfigReader = (file: string | undefined) => ConfigFile;

const noFile: ConfigReader = () => ({});

export async function configReader(file: string | undefined): Promise<ConfigReader> {
  if (file === undefined) return noFile;
  const { loadConfigFile } = await import('./load-config.js');
  return loadConfigFile;
}
