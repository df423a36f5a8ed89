// A reload reaching the data plane: the live part of its config (config.ts
// LIVE_KEYS) swapped in at once, for new connections and new HTTP requests.
// Everything is built first (the policy compiled from the rules and the
// secrets the supervisor read); only then, in one synchronous run, the proxy
// core's settings, the stack's and the UDP relay's limits, the DNS's host
// patterns and the log level are assigned. An open connection keeps the
// decision and upstream it was made with; nothing is reset.
//
// This is the one swap every reload uses (SIGHUP, `tunsteer reload`, the
// API): applyLive(target, next). Rule-sets the new config names with the same
// file and format are the running ones (already watched, swapped in place when
// their file changes); others are read now. With stack workers the data
// plane prepares first, then each worker (workers/worker-pool.ts), and all
// commit only once every one has prepared.
import type { Logger } from '../logging/log.js';
import type { ProxyCore } from '../proxy/proxy-core.js';
import type { Stack } from '../stack/stack.js';
import type { UdpSessions } from '../proxy/tun/udp-sessions.js';
import { buildPolicy, type PolicyData } from '../config/build-policy.js';
import { ruleSetsOf } from '../config/rule-set-files.js';
import { LiveRuleSet } from '../proxy/rules/live-rule-set.js';
import type { RuleSetMatcher, RuleSets } from '../proxy/rules/rule-types.js';
import type { Policy } from '../proxy/policy.js';
import type { DataPlaneConfig, LiveConfig } from './config.js';
import type { GatewayDns } from './gateway-dns.js';

export interface LiveTarget {
  core: ProxyCore;
  stack: Stack | null;
  /** The TUN's UDP relay (its limits), where there is a TUN. */
  relay: UdpSessions | null;
  /** The gateway's DNS (its host patterns); null in a stack worker, or without DNS. */
  dns: Pick<GatewayDns, 'setHosts'> | null;
  log: Logger;
  /** The config in force; replaced (not mutated) by a swap. */
  config: DataPlaneConfig;
  /** New rule-sets keep their file's text (stack workers compile their copies from it). */
  keepRuleSetText?: boolean;
  /** Told of the policy swapped in (its rule-sets are to be watched). */
  onPolicy?: (policy: Policy) => void;
}

/** A reload built and not yet in force: commit() swaps it in and cannot fail. */
export interface PreparedLive {
  policy: Policy;
  commit(): void;
}

/**
 * Builds what the reload needs; throws (and changes nothing) when the policy
 * cannot be built. `ruleSets`: the sets to use (a stack worker builds its own
 * from the texts the data plane's thread read); default: the running ones
 * where their file and format are unchanged, the others read now.
 */
export function prepareLive(t: LiveTarget, live: LiveConfig, ruleSets: RuleSets = ruleSetsFor(live.policy, t.core.policy.ruleSets, t.keepRuleSetText === true)): PreparedLive {
  const policy = buildPolicy(live.policy, ruleSets);
  const next: DataPlaneConfig = { ...t.config, ...live };
  return {
    policy,
    // one synchronous run, so no connection sees half of it
    commit() {
      t.core.reconfigure({ policy, sniffTimeoutMs: next.sniffTimeoutMs, httpInspect: next.httpInspect, connectTimeoutMs: next.connectTimeoutMs });
      t.stack?.setLimits({ maxConnections: next.maxConnections, maxHalfOpen: next.synBacklog, synCookies: next.synCookies, memoryBudget: next.memoryBudgetMb * 1024 * 1024 });
      if (t.relay) {
        const u = t.relay.opts;
        u.idleMs = next.udpIdleMs;
        u.maxFlows = next.maxUdpFlows;
        u.blockQuic = next.blockQuic;
      }
      t.dns?.setHosts(next.hosts);
      t.log.level = next.logLevel;
      t.config = next;
      t.onPolicy?.(policy);
    },
  };
}

/** Throws (and changes nothing) when the policy cannot be built. */
export function applyLive(t: LiveTarget, live: LiveConfig): void {
  prepareLive(t, live).commit();
}

/** The sets a reloaded config names: the running one where its file and format are unchanged, else read now. */
function ruleSetsFor(p: PolicyData, running: RuleSets, keepText: boolean): RuleSets {
  const out = new Map<string, RuleSetMatcher>();
  const toRead: NonNullable<PolicyData['rule_sets']> = {};
  for (const [name, spec] of Object.entries(p.rule_sets ?? {})) {
    const old = running.get(name);
    if (old instanceof LiveRuleSet && old.path === spec.path && old.format === spec.format) out.set(name, old);
    else toRead[name] = spec;
  }
  for (const [name, set] of ruleSetsOf({ rule_sets: toRead }, keepText)) out.set(name, set);
  return out;
}
