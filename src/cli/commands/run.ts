// `tunsteer run -- CMD`: one program in a network namespace of its own, all of its traffic through the gateway (src/run).
import { runSettings, type GatewayFlags } from '../../config/settings.js';
import { runProgram } from '../../run/run-command.js';

export function run(flags: GatewayFlags, argv: string[]): Promise<number> {
  return runProgram(runSettings(flags), argv);
}
