// The config file's schema (zod). Field names are the file's (snake_case);
// unknown keys are errors, so a typo is named instead of silently ignored.
// Secrets never live in the file: header values and proxy passwords come from
// an environment variable or a file the config names.
import { z } from 'zod';
import { parseCidr } from '../cidr.js';
import { cidrProblem } from './cidr-problem.js';
import { isHostPattern } from '../routing/host-patterns.js';
import { LOG_LEVELS } from '../logging/log.js';
import { ruleOwnerKeys, ruleSetReferenceProblems, ruleSetsSchema } from './rule-set-config.js';
import { credentialProblem, fieldValueProblem } from './value-problems.js';

const hostName = z
  .string()
  .transform((s) => s.trim().toLowerCase().replace(/\.$/, ''))
  .refine((s) => /^[a-z0-9_*-]+(\.[a-z0-9_-]+)*$/.test(s) && s.length <= 253, 'not a domain name');

const oneOrMany = <T extends z.ZodType>(t: T) => z.union([t, z.array(t).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]) as z.output<T>[]);

const cidrText = z.string().superRefine((s, ctx) => {
  const problem = cidrProblem(s);
  if (problem) ctx.addIssue({ code: 'custom', message: `not a CIDR: ${problem}` });
});

const portSpec = z.union([
  z.number().int().min(1).max(65535),
  z
    .string()
    .regex(/^\d{1,5}(-\d{1,5})?$/, 'a port is a number or "from-to"')
    .refine((s) => {
      const [a, b = a] = s.split('-').map(Number);
      return a >= 1 && b <= 65535 && a <= b;
    }, 'ports are 1..65535 and from <= to'),
]);

const FRAMING_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'te', 'trailer', 'keep-alive', 'proxy-connection', 'http2-settings']);
const headerName = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'not an HTTP header name (a token, RFC 9110 §5.1)')
  .superRefine((h, ctx) => {
    // these frame the message or route it: changing them would make the server read another request than the rules saw
    if (FRAMING_HEADERS.has(h.toLowerCase().replaceAll('_', '-'))) ctx.addIssue({ code: 'custom', message: `${h} frames or routes the request: a rule may not set or remove it` });
  });

const wireText = z.string().superRefine((v, ctx) => {
  const p = fieldValueProblem(v);
  if (p) ctx.addIssue({ code: 'custom', message: p });
});
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'not an environment variable name');

const address = z.string().refine((s) => /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(s) && Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535, 'expected host:port');

export const upstreamSchema = z.strictObject({
  type: z.enum(['socks5', 'http']),
  address,
  username: wireText.optional(),
  password_env: envName.optional(),
  password_file: z.string().optional(),
});

export const ruleSchema = z
  .strictObject({
    name: z.string().optional(),
    domain: oneOrMany(hostName).optional(),
    domain_suffix: oneOrMany(hostName).optional(),
    domain_keyword: oneOrMany(
      z
        .string()
        .min(1)
        .transform((s) => s.toLowerCase()),
    ).optional(),
    cidr: oneOrMany(cidrText).optional(),
    port: oneOrMany(portSpec).optional(),
    protocol: oneOrMany(z.enum(['http', 'tls', 'tcp', 'udp', 'quic', 'unknown'])).optional(),
    source_cidr: oneOrMany(cidrText).optional(),
    ...ruleOwnerKeys,
    action: z.enum(['direct', 'proxy', 'reject', 'set-header', 'remove-header']),
    upstream: z.string().optional(),
    header: headerName.optional(),
    value_env: envName.optional(),
    value_file: z.string().optional(),
    /** TLS origination: the program speaks plain HTTP, the gateway HTTPS to the destination (port 443 unless given). */
    upstream_tls: z.union([z.literal(true), z.strictObject({ port: z.number().int().min(1).max(65535).optional(), ca_file: z.string().min(1).optional() })]).optional(),
    /** Named so the error can say where secrets belong. */
    value: z.unknown().optional(),
  })
  .superRefine((r, ctx) => {
    const need = (key: keyof typeof r, why: string) => {
      if (r[key] === undefined) ctx.addIssue({ code: 'custom', path: [key], message: why });
    };
    const forbid = (key: keyof typeof r, why: string) => {
      if (r[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: why });
    };
    forbid('value', 'secrets never go in the config text: use value_env or value_file');
    if (r.action === 'proxy') need('upstream', `action "proxy" needs the name of an upstream`);
    if (r.action === 'set-header' || r.action === 'remove-header') need('header', `action "${r.action}" needs a header name`);
    if (r.action === 'set-header') {
      // an inline value already has its message (where secrets go): one error, not two
      if (r.value_env === undefined && r.value_file === undefined && r.value === undefined) {
        ctx.addIssue({ code: 'custom', path: ['value_env'], message: 'action "set-header" needs value_env or value_file' });
      }
      if (r.value_env !== undefined && r.value_file !== undefined) forbid('value_file', 'give value_env or value_file, not both');
    } else {
      forbid('value_env', `only action "set-header" takes a value`);
      forbid('value_file', `only action "set-header" takes a value`);
    }
    if (r.action === 'direct' || r.action === 'reject') {
      forbid('upstream', `action "${r.action}" takes no upstream`);
      forbid('header', `action "${r.action}" takes no header`);
    }
    if (r.action === 'proxy') forbid('header', 'action "proxy" takes no header');
    if (r.upstream_tls !== undefined) {
      if (r.action !== 'set-header') forbid('upstream_tls', 'only action "set-header" originates TLS (it keeps its secret off the network)');
      else if (r.domain === undefined && r.domain_suffix === undefined)
        forbid('upstream_tls', 'upstream_tls needs domain or domain_suffix: the certificate is checked against the name');
    }
  });

export const configSchema = z
  .strictObject({
    mode: z.enum(['route-all', 'per-host', 'redirect', 'tproxy']).optional(),
    intercept_port: z.number().int().min(1).max(65535).optional(),
    hosts: z.array(z.string().refine(isHostPattern, 'not a host name or *.suffix pattern')).optional(),
    fake_pool: cidrText.optional(),
    /** A fake IP is not given to another name until this long after its last answer and last connection. */
    fake_ip_hold_ms: z
      .number()
      .int()
      .min(1000)
      .max(30 * 86_400_000)
      .optional(),
    /** The fake pool's IPv6 side (AAAA answers), default fc00::/18. */
    fake_pool6: cidrText.refine((x) => parseCidr(x)?.family === 6, 'not an IPv6 CIDR such as fc00::/18').optional(),
    /** IPv6 steered (on, the default) or refused at the TUN (off): true/false or "on"/"off". */
    ipv6: z.union([z.boolean(), z.enum(['on', 'off'])], { message: 'expected true, false, "on" or "off"' }).optional(),
    exclude: z.array(cidrText).optional(),
    dns_hijack: z.boolean().optional(),
    block_quic: z.boolean().optional(),
    state_dir: z.string().min(1).optional(),
    tun: z
      .strictObject({
        name: z
          .string()
          .regex(/^[A-Za-z0-9_.-]{1,15}$/, '1-15 of A-Z a-z 0-9 _ . -')
          .optional(),
        mtu: z.number().int().min(576).max(65520).optional(),
        address: z.string().optional(),
        /** The TUN's IPv6 address (route-all). */
        address6: z.string().optional(),
        backend: z.enum(['native', 'tuntap2']).optional(),
        /** Queues of the TUN, one data-plane worker thread each (native backend; default: the cores, at most 8). */
        workers: z.number().int().min(1).max(64).optional(),
      })
      .optional(),
    upstreams: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/, 'upstream names are A-Z a-z 0-9 _ . -'), upstreamSchema).optional(),
    rules: z.array(ruleSchema).optional(),
    /** Named sets of domains and CIDRs, each from a file (rule-set-config.ts). */
    rule_sets: ruleSetsSchema.optional(),
    sniff: z
      .strictObject({
        timeout_ms: z.number().int().min(1).max(10_000).optional(),
        http_inspect: z.boolean().optional(),
      })
      .optional(),
    limits: z
      .strictObject({
        max_connections: z.number().int().min(1).max(10_000_000).optional(),
        syn_backlog: z.number().int().min(1).max(1_000_000).optional(),
        syn_cookies: z.boolean().optional(),
        connect_timeout_ms: z.number().int().min(100).max(600_000).optional(),
        tcp_rcvbuf: z
          .number()
          .int()
          .min(4096)
          .max(2 ** 30)
          .optional(),
        tcp_sndbuf: z
          .number()
          .int()
          .min(4096)
          .max(2 ** 30)
          .optional(),
        max_udp_flows: z.number().int().min(1).max(1_000_000).optional(),
        /** Gateway-wide cap on bytes buffered in TCP connections, in MiB; 0 = none. */
        memory_budget_mb: z.number().int().min(0).max(1_048_576).optional(),
        udp_idle_timeout_ms: z.number().int().min(1000).max(86_400_000).optional(),
        /** DNS over TCP to the gateway's own DNS: closed after this long with no query in flight. */
        dns_tcp_idle_timeout_ms: z.number().int().min(1000).max(86_400_000).optional(),
      })
      .optional(),
    logging: z.strictObject({ level: z.enum(LOG_LEVELS).optional() }).optional(),
    listen: address.optional(),
    metrics: address.optional(),
    /**
     * The control API and the dashboard (/ui/): an address, or one with the bearer secret dashboards
     * send; the secret comes from an environment variable or a file, never the config text.
     */
    control: z.union([address, z.strictObject({ address, secret_env: envName.optional(), secret_file: z.string().min(1).optional() })]).optional(),
    /** The data plane's user after startup: a name, uid or uid:gid; "root" keeps root. */
    user: z
      .string()
      .regex(/^([a-z_][a-z0-9_.-]*\$?|\d+(:\d+)?)$/, 'a user name, uid or uid:gid')
      .optional(),
    restart: z.boolean().optional(),
  })
  .superRefine((c, ctx) => {
    const names = Object.keys(c.upstreams ?? {});
    (c.rules ?? []).forEach((r, i) => {
      if (r.upstream !== undefined && !names.includes(r.upstream)) {
        ctx.addIssue({
          code: 'custom',
          path: ['rules', i, 'upstream'],
          message: `unknown upstream "${r.upstream}" (${names.length ? `known: ${names.join(', ')}` : 'no upstreams are configured'})`,
        });
      }
    });
    for (const [path, message] of ruleSetReferenceProblems(c)) ctx.addIssue({ code: 'custom', path, message });
    if (c.mode === 'per-host' && (c.hosts ?? []).length === 0) {
      ctx.addIssue({ code: 'custom', path: ['hosts'], message: 'per-host mode needs at least one host pattern' });
    }
    if (typeof c.control === 'object' && c.control.secret_env !== undefined && c.control.secret_file !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['control', 'secret_file'], message: 'give secret_env or secret_file, not both' });
    }
    for (const [name, u] of Object.entries(c.upstreams ?? {})) {
      if (u.password_env !== undefined && u.password_file !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['upstreams', name, 'password_file'], message: 'give password_env or password_file, not both' });
      }
      const problem = u.username === undefined ? null : credentialProblem(u.type, u.username, 'username');
      if (problem) ctx.addIssue({ code: 'custom', path: ['upstreams', name, 'username'], message: problem });
    }
  });

export type ConfigFile = z.output<typeof configSchema>;
export type RuleConfig = z.output<typeof ruleSchema>;
export type UpstreamConfig = z.output<typeof upstreamSchema>;

export { credentialProblem, fieldValueProblem } from './value-problems.js';
