// The way to a host, before any network: ~/.ssh/config and ProxyJump turned into the machines to
// go through (jump hosts first, target last), each with its address, port, login user and keys.
import { homedir } from "node:os";
import { loginUser, type SshTarget } from "../hosts.ts";
import { defaultSshConfigPath, expandTilde, loadSshConfig, parseHostSpec, type ResolvedSshConfig } from "./ssh-config.ts";
import { UnreachableError } from "./types.ts";

/** One machine on the way to the target (jump hosts first, target last). */
export interface Hop {
  /** name as written (alias or address), for messages */
  name: string;
  host: string;
  port: number;
  user: string;
  identityFiles: string[];
  /** name/port to look up in known_hosts (HostKeyAlias or host) */
  keyHost: string;
  keyPort: number;
}

const MAX_JUMPS = 8;

export interface RouteContext {
  /** the host's label, for error messages */
  label: string;
  /** ssh_config to honour (default ~/.ssh/config); null to ignore */
  sshConfigFile: string | null;
}

/** One hop as `ssh address` would see it: what `over` (the flowfile) says wins, then ssh_config. */
export function resolveHop(ctx: RouteContext, address: string, over: Partial<SshTarget>): { hop: Hop; jumps: string[] } {
  const spec = parseHostSpec(address);
  const who = { user: over.user ?? spec.user, defaultUser: over.defaultUser };
  let cfg: ResolvedSshConfig | undefined;
  if (ctx.sshConfigFile !== null) {
    try {
      cfg = loadSshConfig(spec.host, ctx.sshConfigFile || defaultSshConfigPath(), homedir(), who);
    } catch (e) {
      throw new UnreachableError(`${ctx.label}: cannot read ssh config: ${(e as Error).message}`, "config");
    }
  }
  const host = cfg?.hostName ?? spec.host;
  const port = over.port ?? spec.port ?? cfg?.port ?? 22;
  const hop: Hop = {
    name: address,
    host,
    port,
    user: loginUser(who, cfg),
    identityFiles: over.identityFile ? [expandTilde(over.identityFile)] : (cfg?.identityFiles ?? []),
    keyHost: cfg?.hostKeyAlias ?? host,
    keyPort: cfg?.hostKeyAlias ? 22 : port,
  };
  const jumps = over.proxyJump !== undefined ? splitJumps(over.proxyJump) : (cfg?.proxyJump ?? []);
  return { hop, jumps };
}

/** Hops from the first jump host to the target; the first jump host honours its own ProxyJump, like `ssh -J`. */
export function buildChain(ctx: RouteContext, address: string, over: Partial<SshTarget>, depth = 0): Hop[] {
  if (depth > MAX_JUMPS) throw new UnreachableError(`${ctx.label}: ProxyJump chain deeper than ${MAX_JUMPS} (a loop?)`, "config");
  const { hop, jumps } = resolveHop(ctx, address, over);
  if (jumps.length === 0) return [hop];
  // jump hosts get no default user: a provider's login user is for its own boxes
  const chain = buildChain(ctx, jumps[0], {}, depth + 1);
  for (const j of jumps.slice(1)) chain.push(resolveHop(ctx, j, { proxyJump: "none" }).hop);
  chain.push(hop);
  return chain;
}

/** `label (user@host:port)` for the target, the address once when it is the label; jump hosts say so. */
export function hopWhere(label: string, hop: Hop | undefined, isTarget = true): string {
  if (!isTarget) return `${label}: jump host ${hop!.name} (${hop!.user}@${hop!.host}:${hop!.port})`;
  const addr = hop && `${hop.user}@${hop.host}:${hop.port}`;
  return addr && addr !== label ? `${label} (${addr})` : label;
}

function splitJumps(v: string): string[] {
  const t = v.trim();
  if (t === "" || t.toLowerCase() === "none") return [];
  return t
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}
