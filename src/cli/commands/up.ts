// `tunsteer up`: the gateway (src/gateway) in the foreground until SIGINT or
// SIGTERM; SIGHUP (or `tunsteer reload`) reads the config file again.
import { gatewaySettings, type GatewayFlags } from '../../config/settings.js';
import { runGateway } from '../../gateway/gateway.js';

export function up(flags: GatewayFlags): Promise<number> {
  // a reload reads the file again under the same flags
  return runGateway(gatewaySettings(flags), { reread: () => gatewaySettings(flags) });
}
