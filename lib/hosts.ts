// A resolved host: what the flowfile, an inventory file or `--host` says about one machine,
// and who logs in on it (loginUser, the one place that decides).
import { userInfo } from "node:os";

export interface SshTarget {
  /** address or ~/.ssh/config alias as written by the user */
  address: string;
  /** the login user the flowfile, inventory or `--host user@` names; nothing else fills it in */
  user?: string;
  /** the host's provider's login user: used only when neither `user` nor ~/.ssh/config's `User` says who */
  defaultUser?: string;
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
  /** the served API's access (flowfile `api: {...}`); absent: token and TLS, the defaults */
  api?: import("./flowfile/schema.ts").HostApi;
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

/**
 * Who logs in, in this order: the host entry's own user (`user`, or `user@` in its address), then
 * ~/.ssh/config's `User` for that alias or address, then the provider's default user, then the
 * local user (as `ssh` does). Jump hosts pass no default: a provider's user is for its own boxes.
 */
export function loginUser(
  host: Pick<SshTarget, "user" | "defaultUser">,
  sshConfig?: { user?: string },
  local: () => string = localUser,
): string {
  return host.user || sshConfig?.user || host.defaultUser || local();
}

/** The user running flow (ssh's last resort for the login user). */
export function localUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? "root";
  }
}
