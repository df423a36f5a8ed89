// `tunsteer proxy`: the explicit-proxy inbound alone, in the foreground. No
// TUN, no routes, no root: applications opt in with http_proxy / https_proxy
// or a SOCKS5 setting, and get the same rules as the gateway's.
import { createLogger } from '../../logging/log.js';
import { ProxyCore } from '../../proxy/proxy-core.js';
import { ExplicitProxy } from '../../proxy/explicit-proxy.js';
import { policyFromConfig } from '../../config/build-policy.js';
import { proxySettings, type ProxyFlags } from '../../config/settings.js';
import { configReader } from '../../config/config-reader.js';
import { metricsRegistry, serveMetrics } from '../../data-plane/metrics.js';
import { STOP_END } from '../../data-plane/data-plane.js';
import { watchRuleSets } from '../../config/rule-set-files.js';
import { LiveRuleSet } from '../../proxy/rules/live-rule-set.js';

export async function proxy(flags: ProxyFlags): Promise<number> {
  const s = proxySettings(flags, (await configReader(flags.config))(flags.config));
  const log = createLogger(s.logLevel);
  const core = new ProxyCore({
    log,
    connectTimeoutMs: s.connectTimeoutMs,
    policy: policyFromConfig(s.config),
    sniffTimeoutMs: s.sniffTimeoutMs,
    httpInspect: s.httpInspect,
  });
  const sets = [...core.policy.ruleSets.values()].filter((r): r is LiveRuleSet => r instanceof LiveRuleSet);
  if (sets.length) watchRuleSets(new Map(sets.map((r) => [r.name, r])), { log });
  const explicit = new ExplicitProxy(core);
  const at = await explicit.listen(s.listen.host, s.listen.port);
  if (s.metrics) await serveMetrics(s.metrics, metricsRegistry({ proxy: core }));
  const stop = () => {
    explicit.close();
    // every connection still open gets its line, as in the gateway
    core.finishAll(STOP_END);
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  log.info({ listen: `${at.address}:${at.port}`, rules: core.policy.rules.length, metrics: s.metrics, user: process.getuid?.() }, 'proxy listening');
  return -1;
}
