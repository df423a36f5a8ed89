// A reload reaching the data plane (live-apply.ts) against the real pieces it
// swaps: the proxy core's rules and timeouts, the stack's limits, the UDP
// relay's, the DNS's host patterns and the log level, all at once; a policy
// that cannot be built changes nothing.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { applyLive, prepareLive, type LiveTarget } from '../../../src/data-plane/live-apply.js';
import { ruleSetSources } from '../../../src/data-plane/workers/worker-reload.js';
import type { LiveRuleSet } from '../../../src/proxy/rules/live-rule-set.js';
import { parseRuleSet } from '../../../src/proxy/rules/rule-set-file.js';
import type { DataPlaneConfig, LiveConfig } from '../../../src/data-plane/config.js';
import type { GatewayDns } from '../../../src/data-plane/gateway-dns.js';
import { ProxyCore } from '../../../src/proxy/proxy-core.js';
import { buildPolicy } from '../../../src/config/build-policy.js';
import { Stack } from '../../../src/stack/stack.js';
import { MemoryTun } from '../../../src/tun/memory-tun.js';
import { UdpSessions } from '../../../src/proxy/tun/udp-sessions.js';
import type { PolicyData } from '../../../src/config/build-policy.js';

const NO_SECRETS = { headerValues: {}, passwords: {}, caFiles: {} };
const rules = (action: 'reject' | 'direct'): PolicyData => ({ rules: [{ name: 'r', domain: ['a.example'], action }], secrets: NO_SECRETS }) as PolicyData;

function live(over: Partial<LiveConfig> = {}): LiveConfig {
  return {
    logLevel: 'info',
    policy: rules('reject'),
    connectTimeoutMs: 10_000,
    sniffTimeoutMs: 300,
    httpInspect: true,
    maxConnections: 100,
    synBacklog: 16,
    synCookies: true,
    memoryBudgetMb: 8,
    udpIdleMs: 60_000,
    maxUdpFlows: 50,
    blockQuic: false,
    hosts: ['a.example'],
    ...over,
  } as LiveConfig;
}

function target() {
  const first = live();
  const log = pino({ level: 'info' }, { write: () => {} });
  const core = new ProxyCore({ log, connectTimeoutMs: first.connectTimeoutMs, policy: buildPolicy(first.policy), sniffTimeoutMs: 300, httpInspect: true });
  const stack = new Stack(new MemoryTun({ mtu: 1500 }), () => {}, { maxConnections: 100, maxHalfOpen: 16, memoryBudget: 8 << 20 });
  const relay = new UdpSessions(stack, { idleMs: 60_000, maxFlows: 50 });
  const hosts: string[][] = [];
  const dns = { setHosts: (h: string[]) => void hosts.push(h) } as unknown as GatewayDns;
  const t: LiveTarget = { core, stack, relay, dns, log, config: { ...first } as DataPlaneConfig };
  return { t, core, stack, relay, hosts, log };
}

t.test('every live setting reaches what reads it', async (t) => {
  const x = target();
  const before = x.core.policy;
  t.equal(before.decide({ hostname: 'a.example', protocol: 'tcp', dstAddress: '203.0.113.1', dstPort: 443, srcAddress: '198.18.0.1' }).action, 'reject');
  const next = live({
    policy: rules('direct'),
    logLevel: 'debug',
    connectTimeoutMs: 2000,
    sniffTimeoutMs: 50,
    httpInspect: false,
    maxConnections: 7,
    synBacklog: 3,
    synCookies: false,
    memoryBudgetMb: 1,
    udpIdleMs: 5000,
    maxUdpFlows: 9,
    blockQuic: true,
    hosts: ['b.example'],
  });
  applyLive(x.t, next);
  t.not(x.core.policy, before, 'a new policy');
  t.equal(
    x.core.policy.decide({ hostname: 'a.example', protocol: 'tcp', dstAddress: '203.0.113.1', dstPort: 443, srcAddress: '198.18.0.1' }).action,
    'direct',
    'new connections are decided by the new rules',
  );
  t.match(x.core.settings, { sniffTimeoutMs: 50, httpInspect: false, connectTimeoutMs: 2000 });
  t.match(x.stack.opts, { maxConnections: 7, maxHalfOpen: 3, synCookies: false, memoryBudget: 1 << 20 });
  t.match(x.relay.opts, { idleMs: 5000, maxFlows: 9, blockQuic: true });
  t.same(x.hosts, [['b.example']]);
  t.equal(x.log.level, 'debug');
  t.match(x.t.config, { maxConnections: 7, hosts: ['b.example'], policy: next.policy }, 'the config in force is the new one');
});

t.test('a policy that cannot be built throws and changes nothing', async (t) => {
  const x = target();
  const policy = x.core.policy;
  const config = x.t.config;
  const bad = live({
    policy: { rules: [{ name: 'r', cidr: ['203.0.113.0/33'], action: 'reject' }], secrets: NO_SECRETS } as PolicyData,
    maxConnections: 1,
    hosts: ['c.example'],
    logLevel: 'error',
  });
  t.throws(() => applyLive(x.t, bad));
  t.equal(x.core.policy, policy, 'the rules in force kept');
  t.equal(x.stack.opts.maxConnections, 100, 'the limits kept');
  t.same(x.hosts, [], 'the host patterns kept');
  t.equal(x.log.level, 'info');
  t.equal(x.t.config, config);
});

t.test('without a TUN (redirect, tproxy, the explicit proxy) the core alone is reconfigured', async (t) => {
  const x = target();
  const t2: LiveTarget = { ...x.t, stack: null, relay: null, dns: null };
  applyLive(t2, live({ policy: rules('direct'), connectTimeoutMs: 1234 }));
  t.equal(x.core.settings.connectTimeoutMs, 1234);
  t.equal(x.stack.opts.maxConnections, 100, 'the stack was not touched');
});

t.test('a reload keeps the running rule-sets whose file and format are unchanged, reads the rest, and hands the policy on', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ts-live-sets-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'a.txt'), 'blocked.example\n');
  writeFileSync(join(dir, 'b.txt'), 'other.example\n');
  const withSets = (sets: Record<string, string>): PolicyData =>
    ({
      rules: [{ name: 'sets', rule_set: Object.keys(sets), action: 'reject' }],
      rule_sets: Object.fromEntries(Object.entries(sets).map(([n, f]) => [n, { path: join(dir, f) }])),
      secrets: NO_SECRETS,
    }) as PolicyData;
  const x = target();
  applyLive(x.t, live({ policy: withSets({ ads: 'a.txt' }) }));
  const first = x.core.policy.ruleSets.get('ads');
  t.ok(first, 'the set is in the policy');
  const handed: unknown[] = [];
  x.t.onPolicy = (p) => handed.push(p);
  applyLive(x.t, live({ policy: withSets({ ads: 'a.txt', more: 'b.txt' }) }));
  t.equal(x.core.policy.ruleSets.get('ads'), first, 'the same file: the running set (already watched), not a new read');
  t.ok(x.core.policy.ruleSets.get('more'), 'a new set is read');
  t.equal(handed[0], x.core.policy, 'the new policy is handed on (its files get watched)');
  const decide = (host: string) => x.core.policy.decide({ hostname: host, protocol: 'tcp', dstAddress: '203.0.113.1', dstPort: 443, srcAddress: '198.18.0.1' }).action;
  t.equal(decide('blocked.example'), 'reject');
  t.equal(decide('other.example'), 'reject');
  applyLive(x.t, live({ policy: withSets({ ads: 'b.txt' }) }));
  t.not(x.core.policy.ruleSets.get('ads'), first, 'another file under the same name: read again');
  t.notOk(x.core.policy.ruleSets.has('more'), 'a set the config no longer names is gone');
  t.equal(decide('blocked.example'), 'direct');
  t.equal(decide('other.example'), 'reject');
});

t.test('prepared and not committed changes nothing; commit swaps it all (the workers’ two phases)', async (t) => {
  const x = target();
  const policy = x.core.policy;
  const p = prepareLive(x.t, live({ policy: rules('direct'), maxConnections: 7, logLevel: 'debug' }));
  t.equal(x.core.policy, policy, 'the rules in force until the commit');
  t.equal(x.stack.opts.maxConnections, 100);
  t.equal(x.log.level, 'info');
  p.commit();
  t.equal(x.core.policy, p.policy, 'the prepared policy, swapped in');
  t.equal(x.stack.opts.maxConnections, 7);
  t.equal(x.log.level, 'debug');
});

t.test('with workers, rule-sets keep their text: the running one reused, a new one sent whole, a changed file swapped with its text', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ts-live-text-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'a.txt'), 'blocked.example\n');
  writeFileSync(join(dir, 'b.txt'), 'other.example\n');
  const withSets = (sets: Record<string, string>): PolicyData =>
    ({
      rules: [{ name: 'sets', rule_set: Object.keys(sets), action: 'reject' }],
      rule_sets: Object.fromEntries(Object.entries(sets).map(([n, f]) => [n, { path: join(dir, f) }])),
      secrets: NO_SECRETS,
    }) as PolicyData;
  const x = target();
  applyLive(x.t, live({ policy: withSets({ ads: 'a.txt' }) }));
  t.equal((x.core.policy.ruleSets.get('ads') as LiveRuleSet).text, null, 'one thread: no text kept');
  x.t.keepRuleSetText = true;
  applyLive(x.t, live({ policy: withSets({ ads: 'b.txt' }) }));
  const ads = x.core.policy.ruleSets.get('ads') as LiveRuleSet;
  t.equal(ads.text, 'other.example\n', 'with workers: the text it was compiled from');
  t.throws(() => ruleSetSources(buildPolicy(withSets({ old: 'a.txt' }))), /rule_sets\.old: its text was not kept/, 'a set without its text cannot go to a worker');

  const running = x.core.policy.ruleSets;
  const next = prepareLive(x.t, live({ policy: withSets({ ads: 'b.txt', more: 'a.txt' }) }));
  t.same(
    ruleSetSources(next.policy, running),
    [
      { name: 'ads', reuse: true },
      { name: 'more', path: join(dir, 'a.txt'), text: 'blocked.example\n' },
    ],
    'a reload sends the new set whole and names the running one',
  );
  t.same(
    ruleSetSources(next.policy).map((s) => ('text' in s ? s.text : 'reuse')),
    ['other.example\n', 'blocked.example\n'],
    'a worker (re)started gets every text',
  );
  ads.swap(parseRuleSet('ads', ads.path, 'third.example\n'), 'third.example\n');
  t.equal(ads.text, 'third.example\n', 'a swap keeps the new text');
});
