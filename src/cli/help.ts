// `tunsteer --help`: every command and option, in one text.
import { LOG_LEVELS } from '../logging/log.js';
import { DEFAULT_STATE_DIR, DEFAULT_TUN_ADDRESS6 } from '../config/settings.js';

export const HELP = `tunsteer: a transparent traffic-steering gateway for Linux

Usage:
  tunsteer up --mode route-all [options]   run the gateway in the foreground until SIGINT/SIGTERM
  tunsteer up --mode per-host --host PATTERN... [options]
  tunsteer run [--config FILE] [--host PATTERN]... -- CMD [ARGS...]
                                           run one program in a network namespace of its own, all of its
                                           traffic through the gateway; exits with the program's status
  tunsteer proxy [--listen 127.0.0.1:8080] [--config FILE]
                                           explicit proxy only (HTTP proxy and SOCKS5 on one port); no root, no TUN
  tunsteer check-config FILE               validate a config file; names every bad field, exit 2 if any
  tunsteer down [--state-dir DIR]          restore what a dead gateway left behind
  tunsteer status [--state-dir DIR] [--json]  mode, device, routes and live counters; exit 1 when none runs
  tunsteer reload [--state-dir DIR] [--force]
                                           the running up reads its config file again (as on SIGHUP): rules, upstreams,
                                           header values, hosts, limits swap for new connections, open ones are kept;
                                           exit 2 naming every problem (the running config kept) or a setting that needs
                                           a restart (--force: apply the rest)
  tunsteer top [--control HOST:PORT] [--once] [--filter TEXT] [--sort bytes|age|host|rule] [--secret-file FILE]
                                           live connections from the control API (default 127.0.0.1:9090), refreshed
                                           each second until q; the secret from TUNSTEER_CONTROL_SECRET or the file
  tunsteer --help

Options of up (flags override the config file):
  --config FILE           YAML or JSON: mode, hosts, rules, upstreams, limits, logging (see tunsteer.example.yaml)
  --mode route-all        default route through the TUN, the gateway's own sockets kept out (policy routing)
  --mode per-host         only names matching --host resolve to fake IPs routed into the TUN; DNS overridden
  --host PATTERN          per-host: api.example.com (that name) or *.corp.example (names below it); repeatable
  --fake-pool CIDR        per-host: the fake-IP pool (default 198.18.0.0/15)
  --fake-pool6 CIDR       its IPv6 side, for AAAA answers (default fc00::/18)
  --fake-ip-hold MS       a fake IP goes to no other name until this long after its last answer and
                          last connection (default 3600000; a full pool of held ones answers SERVFAIL)
  --ipv6 on|off           on (default): IPv6 steered like IPv4; off: IPv6 is refused at the TUN (ICMPv6
                          administratively prohibited; route-all still takes ::/0, so none leaks), no AAAA fakes
  --resolv-conf PATH      the resolver file: per-host overrides and restores it; route-all reads its resolvers
  --no-dns-hijack         route-all: relay DNS like any UDP instead of answering port 53 itself (default: answer,
                          with fake IPs for --host names so rules can see them)
  --tun-name NAME         TUN device name (default tunsteer0)
  --mtu N                 TUN MTU, 576..65520 (default 65520)
  --tun-address CIDR      TUN address (default 198.18.0.1/30)
  --tun-address6 CIDR     TUN IPv6 address in route-all (default ${DEFAULT_TUN_ADDRESS6}, a ULA)
  --exclude CIDR          destination that stays on the direct path; repeatable
  --state-dir DIR         where the routing journal and status live (default ${DEFAULT_STATE_DIR})
  --log-level LEVEL       ${LOG_LEVELS.join(', ')} (default info)
  --dry-run               print the routing plan and change nothing
  --table N               routing table for the TUN default route (default 2022)
  --rule-priority N       first policy-rule priority (default 9000)
  --connect-timeout MS    upstream connect timeout before the client gets a RST (default 10000)
  --max-connections N     connections held at once; new SYNs beyond it get a RST (default 100000)
  --syn-backlog N         half-open connections held; beyond it SYNs get SYN cookies (default 1024)
  --no-syn-cookies        with the backlog full, evict the oldest half-open connection instead
  --tun-backend NAME      native (batched reads, default) or tuntap2
  --tcp-rcvbuf BYTES      per-connection receive buffer: the most a client may send ahead (default 1048576)
  --tcp-sndbuf BYTES      per-connection send buffer towards the client (default 1048576)
  --udp-idle-timeout MS   a UDP flow without traffic expires after this (default 60000; DNS flows 10000)
  --max-udp-flows N       UDP flows held at once; datagrams of new flows beyond it are dropped (default 4096)
  --memory-budget-mb N    bytes buffered in all TCP connections; over it new SYNs get a RST and reading pauses (default 256; 0 = none)
  --block-quic            answer UDP to port 443 with port unreachable, so browsers use TCP where rules must see it
  --sniff-timeout MS      how long to wait for a client's first bytes (TLS SNI, HTTP Host) (default 300)
  --no-http-inspect       relay HTTP as opaque bytes unless a header rule needs it (no per-request log lines)
  --metrics HOST:PORT     Prometheus metrics on a loopback address (default off)
  --listen HOST:PORT      also serve the explicit proxy (HTTP proxy + SOCKS5) on a loopback address
  --control HOST:PORT     the control API (Clash-style, for dashboards) and its dashboard at /ui/ (default off);
                          off loopback it needs control.secret_env or secret_file in the config
  --user USER             the data plane's user once the TUN is open and its listeners bound
                          (default nobody; root keeps root); routes stay with a root supervisor
  --restart               restart a data plane that dies, keeping the routes (default: restore and exit)
  --intercept-port N      redirect and tproxy modes: the listener's port (default 15001); nftables sends TCP there
  --netns NAME|PATH       steer another network namespace (a container's): the TUN and the routes go
                          there, the gateway and its upstream sockets stay here (route-all only)
  --pid PID               the same, for the namespace of process PID

Options of proxy: --listen HOST:PORT (default 127.0.0.1:8080), --config, --log-level, --connect-timeout,
  --sniff-timeout, --no-http-inspect, --metrics
`;
