// `tunsteer run -- CMD`: one program in a network namespace of its own, all of its traffic through the gateway (src/run).
import { configReader } from '../../config/config-reader.js';
import { runSettings, type GatewayFlags } from '../../config/settings.js';
import { runProgram } from '../../run/run-command.js';

export async function run(flags: GatewayFlags, argv: string[]): Promise<number> {
  return runProgram(runSettings(flags, (await configReader(flags.config))(flags.config)), argv);
}
