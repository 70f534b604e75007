// How a run reaches a host: this machine, or SSH with the flowfile's settings.
import type { HostSpec, SshOptions } from "../hosts.ts";
import { LocalTransport } from "../transport/local.ts";
import type { Transport } from "../transport/types.ts";
import type { RunRequest } from "./request.ts";

export function sshOptionsFor(req: Pick<RunRequest, "flow" | "acceptNewHostKey">, host: HostSpec): SshOptions {
  const s = req.flow.config.settings;
  return {
    knownHostsFile: host.knownHostsFile ?? s.knownHostsFile ?? `${process.env.HOME ?? ""}/.ssh/known_hosts`,
    acceptNewHostKey: req.acceptNewHostKey,
    connectTimeoutMs: s.connectTimeoutMs,
    keepaliveIntervalMs: s.keepaliveIntervalMs,
    sshConfigFile: s.sshConfigFile === undefined ? `${process.env.HOME ?? ""}/.ssh/config` : s.sshConfigFile,
    maxChannels: 8,
  };
}

// One import promise for every host: concurrent first imports of a module may otherwise see it half-loaded.
// (Imported on first use: a local task never loads ssh2.)
let sshModule: Promise<typeof import("../transport/ssh.ts")> | undefined;

/** The transport for `host` (not yet connected): `req.connect` when a test gives one. */
export async function transportFor(req: RunRequest, host: HostSpec): Promise<Transport> {
  if (req.connect) return req.connect(host);
  if (host.local) return new LocalTransport();
  const { SshTransport } = await (sshModule ??= import("../transport/ssh.ts"));
  return new SshTransport({ ...host, label: host.name }, sshOptionsFor(req, host));
}
