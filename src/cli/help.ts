// `tunsteer --help` and `tunsteer help CMD` (or `CMD --help`): the general
// page and one page per command. Options are described once, in one table;
// run's page is that table cut to the flags run takes (args.ts RUN_FLAGS),
// so the two cannot drift.
import { LOG_LEVELS } from '../logging/log.js';
import { DEFAULT_STATE_DIR, DEFAULT_TUN_ADDRESS6 } from '../config/defaults.js';
import { RUN_FLAGS } from './args.js';

/** One option of up: how it is written, and what it does (continuation lines indented by the renderer). */
type Option = [flag: string, ...text: string[]];

const UP_OPTIONS: Option[] = [
  ['--config FILE', 'YAML or JSON: mode, hosts, rules, upstreams, limits, logging (see tunsteer.example.yaml)'],
  ['--mode route-all', "default route through the TUN, the gateway's own sockets kept out (policy routing)"],
  ['--mode per-host', 'only names matching --host resolve to fake IPs routed into the TUN; DNS overridden'],
  ['--mode redirect', 'no TUN: nftables redirects TCP made here or routed through here to a listener'],
  ['--mode tproxy', 'no TUN, for a router: nftables TPROXY sends routed TCP and UDP to transparent sockets'],
  ['--host PATTERN', 'per-host: api.example.com (that name) or *.corp.example (names below it); repeatable'],
  ['--fake-pool CIDR', 'per-host: the fake-IP pool (default 198.18.0.0/15)'],
  ['--fake-pool6 CIDR', 'its IPv6 side, for AAAA answers (default fc00::/18)'],
  [
    '--fake-ip-hold MS',
    'a fake IP goes to no other name until this long after its last answer and',
    'last connection (default 3600000; a full pool of held ones answers SERVFAIL)',
  ],
  [
    '--ipv6 on|off',
    'on (default): IPv6 steered like IPv4; off: IPv6 is refused at the TUN (ICMPv6',
    'administratively prohibited; route-all still takes ::/0, so none leaks), no AAAA fakes',
  ],
  ['--resolv-conf PATH', 'the resolver file: per-host overrides and restores it; route-all reads its resolvers'],
  [
    '--shared-resolv-conf',
    "per-host: rewrite the resolver file even where it is this machine's own one while the",
    'gateway runs in another network namespace (`ip netns exec NS` without /etc/netns/NS/resolv.conf)',
  ],
  ['--no-dns-hijack', 'route-all: relay DNS like any UDP instead of answering port 53 itself (default: answer,', 'with fake IPs for --host names so rules can see them)'],
  ['--tun-name NAME', 'TUN device name (default tunsteer0)'],
  ['--mtu N', 'TUN MTU, 576..65520 (default 65520)'],
  ['--tun-address CIDR', 'TUN address (default 198.18.0.1/30)'],
  ['--tun-address6 CIDR', `TUN IPv6 address in route-all (default ${DEFAULT_TUN_ADDRESS6}, a ULA)`],
  ['--exclude CIDR', 'destination that stays on the direct path; repeatable'],
  ['--state-dir DIR', `where the routing journal and status live (default ${DEFAULT_STATE_DIR})`],
  ['--log-level LEVEL', `${LOG_LEVELS.join(', ')} (default info)`],
  ['--dry-run', 'print the routing plan and change nothing'],
  ['--table N', 'routing table for the TUN default route (default 2022)'],
  ['--rule-priority N', 'first policy-rule priority (default 9000)'],
  ['--connect-timeout MS', 'upstream connect timeout before the client gets a RST (default 10000)'],
  ['--max-connections N', 'connections held at once; new SYNs beyond it get a RST (default 100000)'],
  ['--syn-backlog N', 'half-open connections held; beyond it SYNs get SYN cookies (default 1024)'],
  ['--no-syn-cookies', 'with the backlog full, evict the oldest half-open connection instead'],
  ['--tun-backend NAME', 'native (batched reads, default) or tuntap2'],
  [
    '--workers N',
    'TUN queues, one stack thread each, so every core relays (native backend; default: the number of cores, at most 8 (1 below MTU 65520 where the TUN steering eBPF program cannot load); 1 keeps a single thread)',
  ],
  ['--tun-offload', 'offloads on: the default now (taken so that scripts written when it was not still work)'],
  [
    '--no-tun-offload',
    'a plain TUN, without offloads. By default the TUN has a virtio-net header (IFF_VNET_HDR) and what the kernel accepts of checksum offload, TSO and USO: checksums the kernel vouches for are not summed again, coalesced segments up to 64 KiB are read (a UDP send of several datagrams at once, UDP_SEGMENT, is split back into them: uso), and ours go out up to 64 KiB with partial checksums for the kernel to split and complete, same-size UDP replies of one flow as one packet too (tx_uso) (status: tun_offload_*, tx_ for the write side)',
  ],
  ['--tcp-rcvbuf BYTES', 'per-connection receive buffer: the most a client may send ahead (default 1048576)'],
  ['--tcp-sndbuf BYTES', 'per-connection send buffer towards the client (default 1048576)'],
  ['--udp-idle-timeout MS', 'a UDP flow without traffic expires after this (default 60000; DNS flows 10000)'],
  ['--dns-tcp-idle-timeout MS', "a DNS-over-TCP connection to the gateway's own DNS with no query in flight is closed after this (default 30000)"],
  ['--max-udp-flows N', 'UDP flows held at once; datagrams of new flows beyond it are dropped (default 4096)'],
  ['--memory-budget-mb N', 'bytes buffered in all TCP connections; over it new SYNs get a RST and reading', 'pauses (default 256; 0 = none)'],
  ['--block-quic', 'answer UDP to port 443 with port unreachable, so browsers use TCP where rules must see it'],
  ['--sniff-timeout MS', "how long to wait for a client's first bytes (TLS SNI, HTTP Host) (default 300)"],
  ['--no-http-inspect', 'relay HTTP as opaque bytes unless a header rule needs it (no per-request log lines)'],
  ['--metrics HOST:PORT', 'Prometheus metrics on a loopback address (default off)'],
  ['--listen HOST:PORT', 'also serve the explicit proxy (HTTP proxy + SOCKS5) on a loopback address'],
  [
    '--control HOST:PORT',
    'the control API (Clash-style, for dashboards) and its dashboard at /ui/ (default',
    'off); off loopback it needs control.secret_env or secret_file in the config',
  ],
  ['--user USER', "the data plane's user once the TUN is open and its listeners bound", '(default nobody; root keeps root); routes stay with a root supervisor'],
  ['--restart', 'restart a data plane that dies, keeping the routes (default: restore and exit)'],
  ['--intercept-port N', "redirect and tproxy modes: the listener's port (default 15001); nftables sends TCP there"],
  ['--netns NAME|PATH', "steer another network namespace (a container's): the TUN and the routes go", 'there, the gateway and its upstream sockets stay here (route-all only)'],
  ['--pid PID', 'the same, for the namespace of process PID'],
];

const PROXY_OPTIONS: Option[] = [
  ['--listen HOST:PORT', 'where to listen, on loopback (default 127.0.0.1:8080)'],
  ...UP_OPTIONS.filter(([f]) => ['--config', '--log-level', '--connect-timeout', '--sniff-timeout', '--no-http-inspect', '--metrics'].includes(flagName(f))),
];

const EXIT_CODES = `Exit codes: 0 done (up: stopped by SIGINT or SIGTERM, everything restored); 1 running failed (or the
  restore did); 2 a bad flag or config; run: the program's own status, 127 when it cannot be found.`;

/** The flag itself, without its argument: "--mode route-all" -> "--mode". */
export function flagName(f: string): string {
  return f.split(' ')[0];
}

function render(options: Option[]): string {
  return options
    .map(([flag, first, ...more]) => {
      return [`  ${flag.padEnd(24)}${first}`, ...more.map((m) => `${' '.repeat(26)}${m}`)].join('\n');
    })
    .join('\n');
}

const USAGE = `Usage:
  tunsteer demo                            see it work: two namespaces of its own, a server, route-all and
                                           per-host, then everything removed (root; no internet needed)
  tunsteer up --mode route-all [options]   run the gateway in the foreground until SIGINT/SIGTERM
  tunsteer up --mode per-host --host PATTERN... [options]
  tunsteer up --mode redirect|tproxy [options]
  tunsteer run [--config FILE] [--host PATTERN]... -- CMD [ARGS...]
                                           run one program in a network namespace of its own, all of its
                                           traffic through the gateway; exits with the program's status
  tunsteer proxy [--listen 127.0.0.1:8080] [--config FILE]
                                           explicit proxy only (HTTP proxy and SOCKS5 on one port); no root, no TUN
  tunsteer check-config FILE               validate a config file; names every bad field, exit 2 if any
  tunsteer down [--state-dir DIR]          restore what a dead gateway left behind
  tunsteer status [--state-dir DIR] [--json]  mode, device, routes and live counters; exit 1 when none runs
  tunsteer doctor [--state-dir DIR]        check this machine for what gets in the gateway's way; one line
                                           per finding with what to do; exit 0 well, 1 warnings, 2 a blocker
  tunsteer reload [--state-dir DIR] [--force]
                                           the running up reads its config file again (as on SIGHUP): rules, upstreams,
                                           header values, hosts, limits swap for new connections, open ones are kept;
                                           exit 2 naming every problem (the running config kept) or a setting that needs
                                           a restart (--force: apply the rest)
  tunsteer top [--control HOST:PORT] [--once] [--filter TEXT] [--sort bytes|age|host|rule] [--secret-file FILE]
                                           live connections from the control API (default 127.0.0.1:9090), refreshed
                                           each second until q; the secret from TUNSTEER_CONTROL_SECRET or the file
  tunsteer help [COMMAND]                  this page, or one command's (also: tunsteer COMMAND --help)
  tunsteer --version                       the version (also -v, -V, version)`;

export const HELP = `tunsteer: a transparent traffic-steering gateway for Linux

${USAGE}

Options of up (flags override the config file; \`tunsteer help run\` lists those run takes):
${render(UP_OPTIONS)}

Options of proxy:
${render(PROXY_OPTIONS)}

${EXIT_CODES}
`;

const RUN_HELP = `tunsteer run [options] -- CMD [ARGS...]

Runs CMD in a network namespace (and a mount namespace) of its own whose only route is the TUN, so all
of its traffic goes through the gateway, which stays outside; DNS inside is answered by the gateway
(names matching --host get fake IPs, so rules and log lines see the name). Logs go to stderr, CMD's
stdout stays its own. Exits with CMD's status (127 when CMD cannot be found) and leaves nothing behind.
As root, or without root where the kernel allows user namespaces and /dev/net/tun is mode 666.

Options (the ones of up that apply to run; routing tables, exclusions and modes do not):
${render(UP_OPTIONS.filter(([f]) => RUN_FLAGS.has(flagName(f))))}

Example: tunsteer run --host example.com -- curl -sI https://example.com
`;

const PAGES: Record<string, string> = {
  up: `tunsteer up --mode route-all|per-host|redirect|tproxy [options]

Runs the gateway in the foreground until SIGINT or SIGTERM, JSON log lines on stdout; its routes (or DNS
override) are in place once \`tunsteer status\` exits 0. On stop it logs "restoring" and "restored, N
connections closed" and exits 0. Everything it changes is journalled; \`tunsteer down\` undoes it after a crash.

Options (flags override the config file):
${render(UP_OPTIONS)}

${EXIT_CODES}
`,
  run: RUN_HELP,
  proxy: `tunsteer proxy [options]

The explicit proxy alone, in the foreground: HTTP proxy (absolute URIs and CONNECT) and SOCKS5 on one
loopback port, under the same rules as the gateway. No TUN, no routes, no root.

Options:
${render(PROXY_OPTIONS)}
`,
  'check-config': `tunsteer check-config FILE

Validates a config file (YAML or JSON) without running anything: every problem names its field, and the
command exits 2 if there is any. Problems only a start would meet (an unset variable) are warnings.
`,
  down: `tunsteer down [--state-dir DIR]

Restores what a dead gateway (kill -9, a crash) left behind, from the journal in DIR (default
${DEFAULT_STATE_DIR}); exits 0 also when there is nothing to restore. Run it in the namespace the gateway ran in.
`,
  status: `tunsteer status [--state-dir DIR] [--json]

Mode, device, routes and live counters of the gateway whose state dir is DIR (default ${DEFAULT_STATE_DIR});
exits 0 when it runs with its routes in place, 1 otherwise (and says where it looked).
`,
  doctor: `tunsteer doctor [--state-dir DIR] [--table N] [--rule-priority N]

Checks this machine, or the network namespace it runs in (\`ip netns exec NS tunsteer doctor\`), before
and while a gateway runs, and prints one line per finding with what to do: the TUN device, the uplinks,
a state dir left by a dead gateway, other programs' policy rules and routing tables against the ones
route-all would use (--table, default 2022; --rule-priority, default 9000), who owns /etc/resolv.conf,
bridges and whether they stay reachable, rp_filter, nftables, unprivileged user namespaces for run.
Prints nothing when all is well. Exit 0 all well (or facts only, "info"), 1 warnings, 2 a blocker.
`,
  reload: `tunsteer reload [--state-dir DIR] [--force]

Asks the gateway whose state dir is DIR (default ${DEFAULT_STATE_DIR}) to read its config file again, as
SIGHUP to up does. Rules, upstreams, header values, hosts, limits and timeouts swap for new connections
and new HTTP requests; open connections keep the decision they were made with. route-all's excludes are
applied through the journal. An invalid config is refused (exit 2, every problem named by field) and the
running one kept; a setting that needs a restart (the mode, the TUN, the listeners, the fake pool) is named
and nothing applied (exit 2) unless --force, which applies the rest.
`,
  top: `tunsteer top [--control HOST:PORT] [--once] [--filter TEXT] [--sort bytes|age|host|rule]
             [--interval MS] [--secret-file FILE]

The live connections table in the terminal, from the control API of a gateway started with --control
(default 127.0.0.1:9090), refreshed every --interval (default 1000 ms) until q or Ctrl-C; --once prints it
once (for scripts). The API's secret from TUNSTEER_CONTROL_SECRET or --secret-file.
`,
  demo: `tunsteer demo

Shows tunsteer at work without touching this machine's network and without the internet: it builds two
network namespaces of its own (a client and a server side joined by a veth pair), starts a small HTTP and
DNS server on one side, runs the gateway in route-all and then in per-host mode on the other, fetches
through it, and prints what to look at: the connection's log line, \`tunsteer status\`, the rule that matched.
Everything is removed at the end, also on Ctrl-C, SIGTERM or an error. Needs root (network namespaces).
`,
  help: `tunsteer help [COMMAND]

The general page, or one command's: ${'' /* filled below */}`,
  version: `tunsteer --version (also -v, -V, version)

Prints the version.
`,
};
PAGES.help += `${Object.keys(PAGES).join(', ')}.\n`;

/** The page for `help TOPIC`; undefined when there is no such command. */
export function helpPage(topic: string | undefined): string | undefined {
  return topic === undefined ? HELP : PAGES[topic];
}

/** The flags a page documents (for the tests: every flag args.ts accepts has its line). */
export function documentedFlags(options: 'up' | 'run' | 'proxy'): string[] {
  const list = options === 'up' ? UP_OPTIONS : options === 'proxy' ? PROXY_OPTIONS : UP_OPTIONS.filter(([f]) => RUN_FLAGS.has(flagName(f)));
  return [...new Set(list.map(([f]) => flagName(f)))];
}
