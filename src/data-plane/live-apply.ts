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
// their file changes); others are read now.
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
  dns: GatewayDns | null;
  log: Logger;
  /** The config in force; replaced (not mutated) by a swap. */
  config: DataPlaneConfig;
  /** Told of the policy swapped in (its rule-sets are to be watched). */
  onPolicy?: (policy: Policy) => void;
}

/** Throws (and changes nothing) when the policy cannot be built. */
export function applyLive(t: LiveTarget, live: LiveConfig): void {
  const policy = buildPolicy(live.policy, ruleSetsFor(live.policy, t.core.policy.ruleSets));
  const next: DataPlaneConfig = { ...t.config, ...live };
  // from here on nothing throws: one synchronous run, so no connection sees half of it
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
}

/** The sets a reloaded config names: the running one where its file and format are unchanged, else read now. */
function ruleSetsFor(p: PolicyData, running: RuleSets): RuleSets {
  const out = new Map<string, RuleSetMatcher>();
  const toRead: NonNullable<PolicyData['rule_sets']> = {};
  for (const [name, spec] of Object.entries(p.rule_sets ?? {})) {
    const old = running.get(name);
    if (old instanceof LiveRuleSet && old.path === spec.path && old.format === spec.format) out.set(name, old);
    else toRead[name] = spec;
  }
  for (const [name, set] of ruleSetsOf({ rule_sets: toRead })) out.set(name, set);
  return out;
}
