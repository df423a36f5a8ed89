// What the control API (src/control) answers with, from this data plane's
// state: the proxy core's live connections and byte totals, the rules in
// force with their hits, the upstreams, the fake-IP mappings, the status it
// publishes, and the reload its supervisor runs. With stack workers each
// worker is one more LiveSource and the hits are summed over them
// (workers/worker-sources.ts).
import type { Logger } from '../logging/log.js';
import type { LogTap } from '../logging/log-tap.js';
import type { ProxyCore } from '../proxy/proxy-core.js';
import type { ControlContext, LiveSource, ReloadResult, RuleView } from '../control/contracts.js';
import { tunsteerVersion } from '../control/version.js';
import type { RuleConfig } from '../config/schema.js';
import type { DataPlaneConfig } from './config.js';
import type { GatewayDns } from './gateway-dns.js';

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/** The proxy core's connections as one live source: open ones listed and closed by id, bytes of closed and open ones summed. */
export function coreSource(core: ProxyCore): LiveSource {
  return {
    connections: () => core.connections.list(),
    close: (id) => core.connections.close(id),
    closeAll: () => core.connections.closeAll(),
    totals: () => {
      const open = core.connections.openBytes();
      return { up: core.counters.bytesUp + open.up, down: core.counters.bytesDown + open.down };
    },
  };
}

export interface ControlState {
  /** The config in force: the live part changes with each reload. */
  config(): DataPlaneConfig;
  core: ProxyCore;
  /** The stack workers' connections, one source each (none without --workers). */
  sources?: readonly LiveSource[];
  /** Told of a log level set by the API (the workers' loggers follow). */
  onLogLevel?: (level: string) => void;
  /** The rules' hits over every proxy core; default: this one's. */
  hits?: () => Promise<{ counts: Float64Array; at: Float64Array }>;
  dns: GatewayDns | null;
  log: Logger;
  logs: LogTap;
  status(): Record<string, unknown>;
  reload(force: boolean): Promise<ReloadResult>;
}

export function controlContext(s: ControlState): ControlContext {
  return {
    version: tunsteerVersion(),
    secret: s.config().control?.secret,
    // the workers first: their ids are "0.N" for worker 0, this core's last
    live: [...(s.sources ?? []), coreSource(s.core)],
    rules: async () => ruleViews(s.config().policy.rules ?? [], s.hits ? await s.hits() : { counts: s.core.policy.hitCounts, at: s.core.policy.hitAt }),
    upstreams: () => Object.entries(s.config().policy.upstreams ?? {}).map(([name, u]) => ({ name, type: u.type, address: u.address })),
    config: () => s.config().running,
    status: s.status,
    fakeIps: () => s.dns?.mappings() ?? [],
    reload: s.reload,
    setLogLevel: (level) => {
      if (!LEVELS.has(level)) return false;
      s.log.level = level;
      s.onLogLevel?.(level);
      return true;
    },
    logLevel: () => s.log.level,
    logs: s.logs,
  };
}

const MATCH_KEYS = ['domain', 'domain_suffix', 'domain_keyword', 'cidr', 'port', 'protocol', 'source_cidr'] as const;

/** The rules in force in the config's words, each with its hits, and the default (what matches nothing: direct) last. */
function ruleViews(rules: readonly RuleConfig[], hits: { counts: Float64Array; at: Float64Array }): RuleView[] {
  const { counts: hitCounts, at: hitAt } = hits;
  const views: RuleView[] = rules.map((r, i) => {
    const match: Record<string, string[]> = {};
    for (const k of MATCH_KEYS) if (r[k] !== undefined) match[k] = r[k].map(String);
    const upstream = r.upstream;
    return { index: i, name: r.name ?? `rules[${i}]`, match, action: r.action, ...(upstream !== undefined ? { upstream } : {}), hits: hitCounts[i] ?? 0, hitAt: hitAt[i] ?? 0 };
  });
  views.push({ index: rules.length, name: 'default', match: {}, action: 'direct', hits: hitCounts[rules.length] ?? 0, hitAt: hitAt[rules.length] ?? 0 });
  return views;
}
