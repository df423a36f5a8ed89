// `tunsteer up`: the gateway (src/gateway) in the foreground until SIGINT or SIGTERM.
import { gatewaySettings, type GatewayFlags } from '../../config/settings.js';
import { runGateway } from '../../gateway/gateway.js';

export function up(flags: GatewayFlags): Promise<number> {
  return runGateway(gatewaySettings(flags));
}
