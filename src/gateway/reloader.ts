// A reload, wherever it was asked for (SIGHUP to `up`, `tunsteer reload`
// over the state dir's socket, the control API's PUT /configs through the
// data plane): the supervisor reads the config file again under the same
// flags, with the secrets it names, and
//  - if anything is wrong, keeps the running config and says what, by field;
//  - if a setting changed that needs a restart, refuses, naming it (with
//    force, applies the rest and names what waits for the restart);
//  - else applies route-all's excludes through the journal, then hands the
//    data plane the live part as plain data (it swaps it in at once for new
//    connections; open ones keep their decision) and waits for it to say so.
// Reloads run one at a time, in the order asked. One log line each.
import { performance } from 'node:perf_hooks';
import type { Logger } from '../logging/log.js';
import type { GatewaySettings } from '../config/settings.js';
import { buildPolicy, readPolicySecrets, type PolicySecrets } from '../config/build-policy.js';
import { adoptLive, diffSettings } from '../config/reload-diff.js';
import type { LiveConfig } from '../data-plane/config.js';
import type { ReloadResult } from '../data-plane/ipc.js';

export interface ReloaderOptions {
  /** What runs now. */
  settings: GatewaySettings;
  /** The config file (under the same flags) as it is now; throws ConfigError naming every problem. */
  reread: () => GatewaySettings;
  /** The live part of the data plane's config for these settings and secrets. */
  liveConfig: (s: GatewaySettings, secrets: PolicySecrets) => LiveConfig;
  /** Hands it to the data plane; resolves once it is in force there. */
  apply: (live: LiveConfig) => Promise<void>;
  /** route-all: new excludes through the journal; returns the steps changed, throws if that failed. Absent: excludes need a restart. */
  replan?: (excludes: string[]) => string[];
  log: Logger;
}

export class Reloader {
  private settings: GatewaySettings;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: ReloaderOptions) {
    this.settings = o.settings;
  }

  /** by: who asked, for the log line. */
  reload(by: string, force = false): Promise<ReloadResult> {
    const run = this.queue.then(() => this.run(by, force));
    this.queue = run.catch(() => {});
    return run;
  }

  private async run(by: string, force: boolean): Promise<ReloadResult> {
    const t0 = performance.now();
    const done = (r: Partial<ReloadResult>): ReloadResult => {
      const result: ReloadResult = { ok: false, problems: [], applied: [], routing: [], restart: [], ...r, ms: Math.round(performance.now() - t0) };
      const { ok, refused, problems, applied, routing, restart, ms } = result;
      if (ok) this.o.log.info({ by, applied, routing, ...(restart.length ? { restart } : {}), ms }, 'config reloaded');
      else this.o.log.warn({ by, refused, problems, ms }, 'config reload refused: the running config is kept');
      return result;
    };
    let next: GatewaySettings;
    let secrets: PolicySecrets;
    try {
      next = this.o.reread();
      secrets = readPolicySecrets(next.config);
      // what the schema lets through but the rules cannot be compiled from
      buildPolicy({ rules: next.config.rules, upstreams: next.config.upstreams, ...(next.config.rule_sets ? { rule_sets: next.config.rule_sets } : {}), secrets });
    } catch (e) {
      return done({ refused: 'invalid', problems: (e as Error).message.split('\n') });
    }
    const diff = diffSettings(this.settings, next);
    if (diff.routing.length && !this.o.replan) diff.restart.push('exclude: needs a restart here');
    if (diff.restart.length && !force) return done({ refused: 'restart', problems: diff.restart });
    let routing: string[] = [];
    if (diff.routing.length && this.o.replan) {
      try {
        routing = this.o.replan(next.excludes);
      } catch (e) {
        return done({ refused: 'failed', problems: [`exclude: ${(e as Error).message}`] });
      }
    }
    const adopted = adoptLive(this.settings, next, diff.routing.length > 0 && this.o.replan !== undefined);
    try {
      await this.o.apply(this.o.liveConfig(adopted, secrets));
    } catch (e) {
      // the excludes (if any) are in: keep them, so the next reload does not apply them twice
      if (routing.length) this.settings = { ...this.settings, excludes: next.excludes };
      return done({ refused: 'failed', problems: [`the data plane did not take it: ${(e as Error).message}`], routing });
    }
    this.settings = adopted;
    return done({ ok: true, applied: diff.live, routing, restart: force ? diff.restart : [] });
  }
}
