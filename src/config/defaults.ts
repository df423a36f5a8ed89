// Defaults that commands name without reading a config: kept apart from settings.ts, which
// reads the config file (zod, yaml: 12 MB of a process's memory), so `tunsteer --help`, status
// and the data-plane child do not load the config parser to learn a path.
export const DEFAULT_STATE_DIR = '/run/tunsteer';
/** A ULA (RFC 4193, Global ID 84ff6e64cb drawn at random once): the TUN's IPv6 source for steered traffic. See DECISIONS. */
export const DEFAULT_TUN_ADDRESS6 = 'fd84:ff6e:64cb::1/64';
