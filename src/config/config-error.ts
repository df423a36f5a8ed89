// A setting the user gave is wrong: a field of the config file, a flag, or
// something either one names (an unset variable, a user, a namespace). The
// message names the field or the flag; the CLI exits 2 on it.
export class ConfigError extends Error {}
