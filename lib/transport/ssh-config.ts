// OpenSSH client config (~/.ssh/config): just enough to resolve an alias the
// way `ssh alias` would (HostName, User, Port, IdentityFile, ProxyJump).
// Parsing/resolution is pure; the loader at the bottom does the file I/O.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { isAbsolute, join } from "node:path";
import { localUser as currentUser, loginUser, type SshTarget } from "../hosts.ts";

export interface ResolvedSshConfig {
  /** alias as asked for */
  alias: string;
  /** real address to dial (HostName, %h expanded), defaults to the alias */
  hostName: string;
  user?: string;
  port?: number;
  /** IdentityFile values in order, ~ and %-tokens expanded */
  identityFiles: string[];
  identitiesOnly?: boolean;
  /** undefined: not set; []: explicitly `none` */
  proxyJump?: string[];
  /** name to look up in known_hosts instead of the host name */
  hostKeyAlias?: string;
}

export interface ResolveOptions {
  /** Returns the texts of the files an `Include` argument names (already globbed). */
  include?: (pattern: string) => string[];
  home?: string;
  localUser?: string;
  /** the host's own and its provider's login user, for `%r` (see loginUser) */
  login?: Pick<SshTarget, "user" | "defaultUser">;
}

interface Line {
  key: string;
  args: string[];
}

/** Split one config line into keyword and arguments (`Key value`, `Key=value`, "quoted args"). */
export function parseLine(raw: string): Line | null {
  const s = raw.trim();
  if (s === "" || s.startsWith("#")) return null;
  const m = /^([^\s=]+)\s*(?:=\s*|\s+|$)(.*)$/.exec(s);
  if (!m) return null;
  const args: string[] = [];
  const rest = m[2];
  const re = /"([^"]*)"|(\S+)/g;
  for (let t = re.exec(rest); t; t = re.exec(rest)) {
    const word = t[1] ?? t[2];
    if (t[2]?.startsWith("#")) break; // trailing comment
    args.push(word);
  }
  return { key: m[1].toLowerCase(), args };
}

/** OpenSSH-style glob (`*`, `?`) over the whole string; host names compare case-insensitively. */
export function globMatch(pattern: string, value: string, caseInsensitive = true): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${re}$`, caseInsensitive ? "i" : "").test(value);
}

/** A `Host` line matches when some positive pattern matches and no `!negated` one does. */
export function hostPatternsMatch(patterns: string[], host: string): boolean {
  let positive = false;
  for (const p of patterns) {
    if (p.startsWith("!")) {
      if (globMatch(p.slice(1), host)) return false;
    } else if (globMatch(p, host)) {
      positive = true;
    }
  }
  return positive;
}

const MAX_INCLUDE_DEPTH = 16;

/** Resolve `alias` against config text: first value wins per keyword, IdentityFile accumulates. */
export function resolveSshConfig(text: string, alias: string, opts: ResolveOptions = {}): ResolvedSshConfig {
  const first = new Map<string, string[]>();
  const identity: string[] = [];

  const walk = (src: string, depth: number): void => {
    // Each file starts outside any Host block (lines apply to every host), like OpenSSH.
    let active = true;
    for (const raw of src.split(/\r?\n/)) {
      const line = parseLine(raw);
      if (!line) continue;
      if (line.key === "host") {
        active = hostPatternsMatch(line.args, alias);
        continue;
      }
      if (line.key === "match") {
        // Only `Match all` is understood; other criteria need exec/network context we do not have.
        active = line.args.length === 1 && line.args[0].toLowerCase() === "all";
        continue;
      }
      if (!active) continue;
      if (line.key === "include") {
        if (depth >= MAX_INCLUDE_DEPTH || !opts.include) continue;
        for (const arg of line.args) for (const t of opts.include(arg)) walk(t, depth + 1);
        continue;
      }
      if (line.key === "identityfile") {
        identity.push(...line.args);
        continue;
      }
      if (!first.has(line.key) && line.args.length > 0) first.set(line.key, line.args);
    }
  };
  walk(text, 0);

  const home = opts.home ?? homedir();
  const localUser = opts.localUser ?? currentUser();
  const one = (k: string) => first.get(k)?.[0];

  const hostName = one("hostname") ? expandTokens(one("hostname")!, { h: alias }) : alias;
  const user = one("user");
  const portText = one("port");
  const port = portText !== undefined ? Number(portText) : undefined;
  const remoteUser = loginUser(opts.login ?? {}, { user }, () => localUser);
  const tokens = { h: hostName, n: alias, d: home, u: localUser, r: remoteUser, p: String(port ?? 22) };

  const pj = first.get("proxyjump");
  let proxyJump: string[] | undefined;
  if (pj) {
    const joined = pj.join(",");
    proxyJump =
      joined.toLowerCase() === "none"
        ? []
        : joined
            .split(",")
            .map((s) => s.trim())
            .filter(Boolean);
  }
  const io = one("identitiesonly");

  return {
    alias,
    hostName,
    user,
    port: port !== undefined && Number.isInteger(port) && port > 0 && port < 65536 ? port : undefined,
    identityFiles: identity.filter((f) => f.toLowerCase() !== "none").map((f) => expandTilde(expandTokens(f, tokens), home)),
    identitiesOnly: io === undefined ? undefined : io.toLowerCase() === "yes",
    proxyJump,
    hostKeyAlias: one("hostkeyalias"),
  };
}

/** `%h`-style tokens; `%%` is a literal percent; unknown tokens are kept as written. */
export function expandTokens(value: string, tokens: Record<string, string>): string {
  return value.replace(/%(.)/g, (all, c: string) => (c === "%" ? "%" : (tokens[c] ?? all)));
}

export function expandTilde(p: string, home = homedir()): string {
  if (p === "~") return home;
  if (p.startsWith("~/")) return join(home, p.slice(2));
  return p;
}

/** `[user@]host[:port]` or `ssh://[user@]host[:port]` (ProxyJump / --host syntax); `[v6]:port` too. */
export function parseHostSpec(spec: string): { user?: string; host: string; port?: number } {
  let s = spec.trim().replace(/^ssh:\/\//, "");
  let user: string | undefined;
  const at = s.lastIndexOf("@");
  if (at >= 0) {
    user = s.slice(0, at);
    s = s.slice(at + 1);
  }
  let host = s;
  let port: number | undefined;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (v6) {
    host = v6[1];
    port = v6[2] ? Number(v6[2]) : undefined;
  } else {
    const hp = /^([^:]+):(\d+)$/.exec(s);
    if (hp) {
      host = hp[1];
      port = Number(hp[2]);
    }
  }
  return { user: user || undefined, host, port };
}

// ---- file I/O -------------------------------------------------------------

export function defaultSshConfigPath(home = homedir()): string {
  return join(home, ".ssh", "config");
}

/**
 * Read a config file and resolve `alias`. A missing file resolves to the bare alias.
 * Relative `Include` paths are taken from ~/.ssh as OpenSSH does for user configs.
 */
export function loadSshConfig(
  alias: string,
  file: string = defaultSshConfigPath(),
  home = homedir(),
  login?: ResolveOptions["login"],
): ResolvedSshConfig {
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  const base = join(home, ".ssh");
  const include = (pattern: string): string[] => {
    const abs = expandTilde(pattern, home);
    const full = isAbsolute(abs) ? abs : join(base, abs);
    return expandGlob(full).map((f) => {
      try {
        return readFileSync(f, "utf8");
      } catch {
        return "";
      }
    });
  };
  return resolveSshConfig(text, alias, { include, home, login });
}

/** Expand `*`/`?` in any path segment (sorted, files only); plain paths pass through if they exist. */
export function expandGlob(path: string): string[] {
  const parts = path.split("/");
  let found = [parts[0] === "" ? "/" : parts[0]];
  for (const part of parts.slice(1)) {
    if (part === "") continue;
    const next: string[] = [];
    for (const dir of found) {
      if (!/[*?]/.test(part)) {
        next.push(join(dir, part));
        continue;
      }
      let names: string[] = [];
      try {
        names = readdirSync(dir).sort();
      } catch {
        continue;
      }
      for (const n of names) if (globMatch(part, n, false) && !n.startsWith(".")) next.push(join(dir, n));
    }
    found = next;
  }
  return found.filter((f) => {
    try {
      return statSync(f).isFile();
    } catch {
      return false;
    }
  });
}
