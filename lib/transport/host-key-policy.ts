// Host-key policy, beside the known_hosts file it reads (known-hosts.ts): which key types to ask
// a server for, and what to do with the key it presents (trust, record, or refuse and say why).
import { homedir } from "node:os";
import { join } from "node:path";
import type { SshOptions } from "../hosts.ts";
import {
  appendKnownHost,
  checkHostKeyDetailed,
  entryFingerprint,
  fingerprint,
  forgetHostCommand,
  formatKnownHostLine,
  keyTypeOfBlob,
  knownKeyTypes,
  readKnownHosts,
} from "./known-hosts.ts";
import { UnreachableError } from "./types.ts";

/** Where a host's key is looked up in known_hosts (HostKeyAlias or host, and port). */
export interface KeyedHost {
  keyHost: string;
  keyPort: number;
}

export type HostKeyPolicy = Pick<SshOptions, "knownHostsFile" | "acceptNewHostKey">;

/** ssh2's default host key algorithm order; we move the types we already trust to the front. */
const HOST_KEY_ALGOS = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "rsa-sha2-512",
  "rsa-sha2-256",
  "ssh-rsa",
];

/**
 * The algorithms to offer, key types already on record first: a known host is asked for the key
 * we know, so a server with several keys is not refused for showing another one.
 */
export function hostKeyAlgorithms(knownHostsFile: string, host: KeyedHost): string[] {
  const trusted = knownKeyTypes(readKnownHosts(knownHostsFile), host.keyHost, host.keyPort);
  return [...HOST_KEY_ALGOS].sort((a, b) => rank(trusted, b) - rank(trusted, a));
}

function rank(trusted: string[], algo: string): number {
  const type = algo.startsWith("rsa-sha2") ? "ssh-rsa" : algo;
  return trusted.includes(type) ? 1 : 0;
}

/**
 * undefined = trusted (recorded first when new and `acceptNewHostKey`); otherwise the refusal to
 * report. Runs before authentication, so a refused host runs nothing.
 */
export function verifyHostKey(policy: HostKeyPolicy, host: KeyedHost, key: Buffer, where: string): UnreachableError | undefined {
  const file = policy.knownHostsFile;
  const type = keyTypeOfBlob(key);
  const fp = fingerprint(key);
  const check = checkHostKeyDetailed(readKnownHosts(file), host.keyHost, host.keyPort, type, key);
  switch (check.status) {
    case "match":
      return undefined;
    case "revoked":
      return new UnreachableError(
        `${where}: host key ${type} ${fp} is marked @revoked in ${file}:${check.entry!.line}; refusing to connect.`,
        "hostkey-changed",
      );
    case "changed": {
      const old = check.entry!;
      const others = check.known!.filter((e) => e !== old).map((e) => `${file}:${e.line} (${e.keyType})`);
      const also = others.length ? ` (also ${others.join(", ")})` : "";
      // a known host showing another key type is no new host: --accept-new-host-key does not apply
      const otherType =
        old.keyType === type ? [] : [`  A key of another type than the one on record is refused too, even with --accept-new-host-key.`];
      const forget = forgetHostCommand(host.keyHost, host.keyPort, file, join(homedir(), ".ssh", "known_hosts"));
      return new UnreachableError(
        [
          `${where}: HOST KEY CHANGED. Refusing to connect; nothing was run.`,
          `  The host now presents ${type} ${fp},`,
          `  but ${file}:${old.line} holds ${old.keyType} ${entryFingerprint(old)} for it${also}.`,
          ...otherType,
          `  Either the box was re-provisioned (new machine at the same address) or someone is intercepting the connection.`,
          `  If you know it was re-provisioned, remove the old key with \`${forget}\` and reconnect with --accept-new-host-key.`,
        ].join("\n"),
        "hostkey-changed",
      );
    }
    case "unknown":
      if (policy.acceptNewHostKey) {
        appendKnownHost(file, formatKnownHostLine(host.keyHost, host.keyPort, type, key));
        return undefined;
      }
      return new UnreachableError(
        `${where}: host key not in ${file} (${type} ${fp}). Check the fingerprint, then run again with --accept-new-host-key to record it.`,
        "hostkey-unknown",
      );
  }
}
