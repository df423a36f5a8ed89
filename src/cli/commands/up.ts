// `tunsteer up`: the gateway (src/gateway) in the foreground until SIGINT or
// SIGTERM; SIGHUP (or `tunsteer reload`) reads the config file again.
import { configReader } from '../../config/config-reader.js';
import { gatewaySettings, type GatewayFlags } from '../../config/settings.js';
import { runGateway } from '../../gateway/gateway.js';

export async function up(flags: GatewayFlags): Promise<number> {
  const read = await configReader(flags.config);
  // a reload reads the file again under the same flags
  return runGateway(gatewaySettings(flags, read(flags.config)), { reread: () => gatewaySettings(flags, read(flags.config)) });
}
