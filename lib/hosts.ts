// A resolved host: what the flowfile, an inventory file or `--host` says about one machine.

export interface SshTarget {
  /** address or ~/.ssh/config alias as written by the user */
  address: string;
  user?: string;
  port?: number;
  identityFile?: string;
  /** [user@]host[:port] of a jump host (overrides ~/.ssh/config ProxyJump) */
  proxyJump?: string;
}

export interface HostSpec extends SshTarget {
  /** short name used in output and `--hosts` */
  name: string;
  groups: string[];
  provider?: string;
  /** free-form host data tasks can read (data root, volume device, ...) */
  data: Record<string, unknown>;
  /** true for `--host local`: run on this machine without SSH */
  local?: boolean;
  /** known_hosts file for this host (an inventory may bring its own) */
  knownHostsFile?: string;
}

export interface SshOptions {
  knownHostsFile: string;
  acceptNewHostKey: boolean;
  connectTimeoutMs: number;
  keepaliveIntervalMs: number;
  /** path of ssh_config to honour; default ~/.ssh/config; null to ignore */
  sshConfigFile: string | null;
  /** max concurrent channels per connection (OpenSSH MaxSessions is 10) */
  maxChannels: number;
}
