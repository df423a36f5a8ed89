// `tunsteer proxy`: the explicit-proxy inbound alone, in the foreground. No
// TUN, no routes, no root: applications opt in with http_proxy / https_proxy
// or a SOCKS5 setting, and get the same rules as the gateway's.
import type { ProxyArgs, CheckConfigArgs } from '../args.js';
import { createLogger } from '../../logging/log.js';
import { ProxyCore } from '../../proxy/proxy-core.js';
import { ExplicitProxy } from '../../proxy/explicit-proxy.js';
import { policyFromConfig, runtimeProblems } from '../../config/build-policy.js';
import { ConfigError, readConfig } from '../../config/load-config.js';
import { metricsRegistry, serveMetrics } from '../../data-plane/metrics.js';

export async function runProxy(args: ProxyArgs): Promise<number> {
  const log = createLogger(args.logLevel);
  const core = new ProxyCore({
    log,
    connectTimeoutMs: args.connectTimeoutMs,
    policy: policyFromConfig(args.config),
    sniffTimeoutMs: args.sniffTimeoutMs,
    httpInspect: args.httpInspect,
  });
  const proxy = new ExplicitProxy(core);
  const at = await proxy.listen(args.listen.host, args.listen.port);
  if (args.metrics) await serveMetrics(args.metrics, metricsRegistry({ proxy: core }));
  const stop = () => {
    proxy.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  log.info({ listen: `${at.address}:${at.port}`, rules: core.policy.rules.length, metrics: args.metrics, user: process.getuid?.() }, 'proxy listening');
  return -1;
}

export function runCheckConfig(args: CheckConfigArgs): number {
  try {
    const c = readConfig(args.file);
    for (const w of runtimeProblems(c)) process.stderr.write(`${args.file}: warning: ${w}\n`);
    process.stdout.write(`${args.file}: ok (${c.rules?.length ?? 0} rules, ${Object.keys(c.upstreams ?? {}).length} upstreams)\n`);
    return 0;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`${e.message}\n`);
    return 2;
  }
}
