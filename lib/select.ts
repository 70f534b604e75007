// Which hosts a run targets: `--host [user@]addr[:port]|name|local` or `--hosts name,group,all`.
import type { HostSpec } from "./hosts.ts";

export class SelectError extends Error {}

/** `[user@]address[:port]`, IPv6 as `[::1]:22`. */
export function parseHostString(text: string): { user?: string; address: string; port?: number } {
  let rest = text.trim();
  let user: string | undefined;
  const at = rest.lastIndexOf("@");
  if (at >= 0) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
    if (!user) throw new SelectError(`${text}: empty user before "@"`);
  }
  let address = rest;
  let port: number | undefined;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest);
  if (bracket) {
    address = bracket[1]!;
    if (bracket[2]) port = Number(bracket[2]);
  } else if ((rest.match(/:/g) ?? []).length === 1) {
    const [a, p] = rest.split(":");
    address = a!;
    if (!/^\d+$/.test(p!)) throw new SelectError(`${text}: port must be a number, got "${p}"`);
    port = Number(p);
  }
  if (!address || /[\s'"`$;&|<>\\]/.test(address)) throw new SelectError(`${text}: not a host address`);
  if (port !== undefined && (port < 1 || port > 65535)) throw new SelectError(`${text}: port out of range`);
  return { user, address, port };
}

export const LOCAL_HOST: HostSpec = { name: "local", address: "localhost", groups: [], data: {}, local: true };

export function selectHosts(known: HostSpec[], opts: { host?: string; hosts?: string }): HostSpec[] {
  const picked: HostSpec[] = [];
  const add = (h: HostSpec) => {
    if (!picked.some((p) => p.name === h.name)) picked.push(h);
  };
  if (opts.host) {
    for (const word of splitList(opts.host)) {
      if (word === "local") add(LOCAL_HOST);
      else add(known.find((h) => h.name === word) ?? adHoc(word));
    }
  }
  if (opts.hosts) {
    for (const word of splitList(opts.hosts)) {
      if (word === "local") {
        add(LOCAL_HOST);
        continue;
      }
      const byName = known.find((h) => h.name === word);
      const byGroup = word === "all" ? known : known.filter((h) => h.groups.includes(word));
      if (byName) add(byName);
      else if (byGroup.length) byGroup.forEach(add);
      else {
        const names = [...new Set([...known.map((h) => h.name), ...known.flatMap((h) => h.groups)])];
        const hint = names.length ? ` (known: ${names.join(", ")})` : " (the flowfile defines no hosts)";
        throw new SelectError(`--hosts ${word}: no host or group of that name${hint}`);
      }
    }
  }
  return picked;
}

/** `--host [user@]address[:port]`: an explicit user only; who logs in otherwise is loginUser's (lib/hosts.ts) to say. */
function adHoc(text: string): HostSpec {
  const { user, address, port } = parseHostString(text);
  return { name: text, address, user, port, groups: [], data: {} };
}

function splitList(s: string): string[] {
  return s
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);
}
