// The supervisor follows the network while the gateway runs (issue 21):
//
// - the uplink, as a value that changes: rtnetlink events (network-watcher.ts)
//   make it read the network again (discoverNetwork, debounced: a DHCP renewal
//   is an address removed, one added and a route re-added within milliseconds);
//   a new address or default route gives a new plan, whose difference from the
//   journal is applied (route-follow.ts: new bypass rules in, then old ones
//   out), then the data plane is told which address new upstream sockets bind
//   (null: none of that family now; connections are refused as network
//   unreachable). The data plane binds an address only once its bypass rule
//   is in place, so nothing it opens can loop into the TUN.
// - the resolvers: resolv.conf (or systemd-resolved's list behind its stub) is
//   watched; the DNS forwarder follows it, and per-host mode puts its override
//   back when something else rewrites the file, keeping the newest original
//   in the journal for restore.
// - sleep: a suspend or a long stall (sleep-detector.ts) reads the network
//   again and tells the data plane to probe its upstream connections.
//
// Each change is a log line and an entry (with its time) in the status file.
import type { Logger } from '../logging/log.js';
import type { NetworkUpdate } from '../data-plane/ipc.js';
import type { IpExecSync } from '../routing/ip-exec.js';
import type { RouteJournal } from '../routing/route-journal.js';
import { planRouteAll, type RoutePlanConfig } from '../routing/route-plan.js';
import { applyPlanChange } from '../routing/route-follow.js';
import { discoverNetwork, type NetworkView, type Uplink, type Uplink6 } from '../routing/uplink.js';
import { NetworkWatcher } from '../routing/network-watcher.js';
import { ResolvConfWatcher } from '../routing/resolv-conf-watcher.js';
import { reassertOverride } from '../routing/per-host.js';
import { systemResolvers } from '../routing/resolvers.js';
import { SleepDetector, DEFAULT_SLEEP_OPTIONS, type Wake } from './sleep-detector.js';

/** After the first event of a burst, read the network once the burst is over (each event restarts it, up to MAX_WAIT_MS). */
const DEBOUNCE_MS = 50;
const MAX_WAIT_MS = 300;
/** A read of the network that failed (an `ip` that timed out) is tried again after this. */
const RETRY_MS = 1000;
/** Changes kept in the status file. */
const HISTORY = 20;

export interface UplinkChange {
  at: string;
  /** null: no uplink of that family. */
  uplink: Uplink | null;
  uplink6: Uplink6 | null;
  /** Why there is no IPv4 uplink. */
  why?: string;
  /** What set it off: netlink events, a wake, an overflow. */
  cause: string;
}

export interface NetworkState {
  uplink: Uplink | null;
  uplink6: Uplink6 | null;
  resolvers?: string[];
  changes: UplinkChange[];
  lastWake?: { at: string } & Wake;
}

export interface FollowOptions {
  log: Logger;
  /** Route-all: the journal holding the steps in place, the plan's config, how to run `ip` (here or in the --netns namespace). */
  route?: {
    journal: RouteJournal;
    planCfg: RoutePlanConfig;
    exec: IpExecSync;
    netnsPath?: string;
    uplink: Uplink | null;
    uplink6: Uplink6 | null;
    /** The data plane binds the uplink's address (false with --netns: its sockets live in this namespace, unbound). */
    binds: boolean;
  };
  /** resolv.conf to follow and the resolvers found at start; perHost: the override to keep in place. */
  resolv?: { path: string; upstreams: string[]; perHost?: { journal: RouteJournal; dnsAddress: string } };
  tunName?: string;
  /** Hand a change to the data plane (IPC, or in-process). */
  notify(u: NetworkUpdate): void;
  /** The state changed: publish it. */
  onState?(s: NetworkState): void;
}

export class NetworkFollower {
  readonly state: NetworkState;
  private watcher: NetworkWatcher | null = null;
  private resolvWatcher: ResolvConfWatcher | null = null;
  private readonly sleep = new SleepDetector();
  private sleepTimer: NodeJS.Timeout | null = null;
  private timer: NodeJS.Timeout | null = null;
  private firstEventAt = 0;
  private causes = new Set<string>();
  /** From-rule sources in the plan (the uplink's and former ones still on the host), per family. */
  private sources4 = new Set<string>();
  private sources6 = new Set<string>();
  private bound: { v4: string | null; v6: string | null };
  private stopped = false;

  constructor(private readonly o: FollowOptions) {
    const r = o.route;
    this.state = { uplink: r?.uplink ?? null, uplink6: r?.uplink6 ?? null, changes: [], ...(o.resolv ? { resolvers: o.resolv.upstreams } : {}) };
    if (r?.uplink) this.sources4.add(r.uplink.source);
    if (r?.uplink6) this.sources6.add(r.uplink6.source);
    this.bound = { v4: r?.uplink?.source ?? null, v6: this.v6Source(r?.uplink6 ?? null) };
  }

  start(): void {
    if (this.o.route) {
      try {
        this.watcher = new NetworkWatcher({
          tun: { name: this.o.tunName },
          netnsPath: this.o.route.netnsPath,
          onChange: (_events, overflow) => this.soon(overflow ? 'netlink overflow' : 'netlink'),
          onError: (err) => this.o.log.warn({ err: err.message }, 'network watcher failed; the uplink is read again after a wake only'),
        });
      } catch (e) {
        this.o.log.warn({ err: (e as Error).message }, 'cannot watch the network (rtnetlink): the uplink will not be followed');
      }
    }
    const rv = this.o.resolv;
    if (rv) {
      const files = rv.perHost ? [rv.path] : systemResolvers(rv.path).files;
      this.resolvWatcher = new ResolvConfWatcher(files, (path, text) => this.onResolvConf(path, text));
    }
    this.sleepTimer = setInterval(() => {
      const w = this.sleep.check();
      if (w) this.onWake(w);
    }, DEFAULT_SLEEP_OPTIONS.intervalMs);
    this.sleepTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    this.resolvWatcher?.close();
    if (this.timer) clearTimeout(this.timer);
    if (this.sleepTimer) clearInterval(this.sleepTimer);
  }

  /** Read the network again soon (coalescing a burst of events). */
  soon(cause: string): void {
    if (this.stopped || !this.o.route) return;
    this.causes.add(cause);
    const now = Date.now();
    if (this.timer === null) this.firstEventAt = now;
    else clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(DEBOUNCE_MS, this.firstEventAt + MAX_WAIT_MS - now));
    this.timer = setTimeout(() => {
      this.timer = null;
      const why = [...this.causes].join(', ');
      this.causes.clear();
      this.recheck(why);
    }, wait);
  }

  /**
   * A reload changed route-all's excludes: the plan is applied again through
   * the journal as for an uplink change (new steps in, then old ones out).
   * Returns the steps added (+) and removed (-); throws if that failed, with
   * the journal listing exactly what is in place.
   */
  replan(excludes: string[]): string[] {
    const r = this.o.route;
    if (!r || this.stopped) throw new Error('no route-all plan to change');
    r.planCfg = { ...r.planCfg, excludes };
    const res = this.recheck('config reload');
    if (res.error) throw new Error(res.error);
    return [...res.added.map((d) => `+ ${d}`), ...res.removed.map((d) => `- ${d}`)];
  }

  /** Reads the network now and follows it: plan, journal, data plane, log. */
  recheck(cause: string): { added: string[]; removed: string[]; error?: string } {
    const r = this.o.route;
    if (!r || this.stopped) return { added: [], removed: [] };
    const started = performance.now();
    let view: NetworkView;
    try {
      view = discoverNetwork(r.exec, r.planCfg.route6 === true);
    } catch (e) {
      this.o.log.warn({ err: (e as Error).message }, 'reading the network failed; trying again');
      setTimeout(() => this.soon('retry'), RETRY_MS).unref();
      return { added: [], removed: [], error: `reading the network failed: ${(e as Error).message}` };
    }
    const local = new Set(view.local);
    const keep4 = [...this.sources4].filter((a) => a !== view.uplink?.source && local.has(a));
    const keep6 = [...this.sources6].filter((a) => a !== view.uplink6?.source && local.has(a));
    let error: string | undefined;
    let added: string[] = [];
    let removed: string[] = [];
    try {
      const next = planRouteAll(r.planCfg, view.uplink, view.uplink6, { sources4: keep4, sources6: keep6 });
      const res = applyPlanChange(r.journal, next, r.exec);
      added = res.added.map((s) => s.desc);
      removed = res.removed.map((s) => s.desc);
    } catch (e) {
      error = (e as Error).message;
    }
    // what is in place now, whatever failed: the data plane binds only a source whose bypass rule is there
    const inPlace = new Set(r.journal.data.steps.flatMap((s) => (s.kind === 'ip' && s.do[1] === 'rule' && s.do[3] === 'from' ? [s.do[4]] : [])));
    this.sources4 = new Set([...inPlace].filter((a) => !a.includes(':')));
    this.sources6 = new Set([...inPlace].filter((a) => a.includes(':')));
    const changed = JSON.stringify([view.uplink, view.uplink6]) !== JSON.stringify([this.state.uplink, this.state.uplink6]);
    if (changed) {
      this.state.uplink = view.uplink;
      this.state.uplink6 = view.uplink6;
      const entry: UplinkChange = { at: new Date().toISOString(), uplink: view.uplink, uplink6: view.uplink6, ...(view.why ? { why: view.why } : {}), cause };
      this.state.changes = [...this.state.changes, entry].slice(-HISTORY);
      try {
        r.journal.setUplinks(view.uplink, view.uplink6);
      } catch (e) {
        error ??= (e as Error).message;
      }
    }
    const v4 = view.uplink && inPlace.has(view.uplink.source) ? view.uplink.source : null;
    const src6 = this.v6Source(view.uplink6);
    const v6 = src6 !== null && (r.planCfg.tunIpv6 === false || inPlace.has(src6)) ? src6 : null;
    const ms = Math.round(performance.now() - started);
    if (changed || added.length || removed.length || error) {
      const line = { uplink: view.uplink ?? 'none', uplink6: view.uplink6 ?? 'none', ...(view.why ? { why: view.why } : {}), cause, added, removed, ms };
      if (error) this.o.log.error({ ...line, err: error }, 'following the uplink failed; new connections use what is in place');
      else this.o.log.info(line, !changed && cause === 'config reload' ? 'routing follows the reloaded config' : view.uplink ? 'uplink changed' : 'no uplink');
    }
    if (r.binds && (v4 !== this.bound.v4 || v6 !== this.bound.v6)) {
      this.bound = { v4, v6 };
      this.o.notify({ type: 'uplink', localAddress: v4, localAddress6: r.planCfg.route6 ? v6 : null });
    }
    if (changed || error) this.o.onState?.(this.state);
    return { added, removed, ...(error !== undefined ? { error } : {}) };
  }

  /** The IPv6 source the data plane may bind, or null: none, or the TUN carries no IPv6 (prohibit: refused anyway). */
  private v6Source(u6: Uplink6 | null): string | null {
    const cfg = this.o.route?.planCfg;
    if (!cfg?.route6 || cfg.tunIpv6 === false || !u6) return null;
    return u6.source;
  }

  private onResolvConf(path: string, text: string): void {
    const rv = this.o.resolv!;
    let upstreams: string[];
    if (rv.perHost) {
      let r: { rewritten: boolean; upstreams: string[] };
      try {
        r = reassertOverride(rv.perHost.journal, path, rv.perHost.dnsAddress, text);
      } catch (e) {
        this.o.log.error({ err: (e as Error).message, path }, 'resolv.conf was rewritten and the override could not be put back');
        return;
      }
      if (!r.rewritten) return;
      upstreams = r.upstreams;
      this.o.log.warn({ path, upstreams }, 'resolv.conf was rewritten by something else: override put back, the new file kept for restore');
    } else {
      upstreams = systemResolvers(rv.path).upstreams;
    }
    if (JSON.stringify(upstreams) === JSON.stringify(this.state.resolvers)) return;
    this.state.resolvers = upstreams;
    this.o.log.info({ path, upstreams }, 'resolvers changed');
    this.o.notify({ type: 'resolvers', upstreams });
    this.o.onState?.(this.state);
  }

  private onWake(w: Wake): void {
    this.state.lastWake = { at: new Date().toISOString(), ...w };
    this.o.log.warn(
      { kind: w.kind, sleptMs: w.sleptMs },
      w.kind === 'suspend'
        ? 'woke from a suspend: checking the network and upstream connections'
        : 'timers fired late (the gateway did not run): checking the network and upstream connections',
    );
    this.o.notify({ type: 'wake', sleptMs: w.sleptMs });
    this.resolvWatcher?.check();
    this.recheck(`wake (${w.kind})`);
    this.o.onState?.(this.state);
  }
}
