// What each wanted pack needs on one host, from the host's packs as read: nothing, a clone, a move
// to another commit, a registry version unpacked, an enable. Pure, so the rules (a dirty folder is
// never overwritten without --force, a fork in the pack's place is not silently replaced) are tested
// without a host.
import { repoKey } from "../../lib/comfy/pack-spec.ts";
import type { HostPack } from "./commands.ts";
import { packKeys, type WantedPack } from "./wanted.ts";

export type PackAction =
  | { do: "none"; pack: WantedPack; host: HostPack; note: string }
  | { do: "clone"; pack: WantedPack; dir: string; replaces?: HostPack }
  | { do: "checkout"; pack: WantedPack; host: HostPack; from: string }
  | { do: "unpack"; pack: WantedPack; dir: string; replaces?: HostPack }
  | { do: "enable"; pack: WantedPack; host: HostPack; then?: "checkout" | "unpack" }
  /** left as it is: local changes, or another source in its place; `failed` when it cannot serve the workflows */
  | { do: "keep"; pack: WantedPack; host: HostPack; why: string; failed: boolean };

/** The host's folder for a wanted pack: same folder name, else the same origin or registry id under another name. */
export function findOnHost(p: WantedPack, host: HostPack[]): HostPack | undefined {
  const byName = host.find((h) => h.name === p.dir) ?? host.find((h) => h.name.toLowerCase() === p.dir.toLowerCase());
  if (byName) return byName;
  const keys = new Set(packKeys(p));
  return host.find((h) => (h.origin && keys.has(repoKey(h.origin))) || (h.registryId && keys.has(h.registryId.toLowerCase())));
}

const short = (c?: string) => (c ? c.slice(0, 10) : "?");

export function planPack(p: WantedPack, hostPacks: HostPack[], force: boolean): PackAction {
  const h = findOnHost(p, hostPacks);
  if (!h) return p.kind === "git" ? { do: "clone", pack: p, dir: p.dir } : { do: "unpack", pack: p, dir: p.dir };
  const sameOrigin = p.kind === "git" ? !!h.origin && !!p.repo && repoKey(h.origin) === repoKey(p.repo) : h.registryId === p.registryId;
  const atTarget = p.kind === "git" ? sameOrigin && h.commit === p.commit : sameOrigin && h.version === p.version;
  const target = p.kind === "git" ? short(p.commit) : p.version!;
  if (h.disabled) {
    // the workflows need it: enabling is the change; a move, if any, follows on the next step
    if (atTarget || (!h.dirty && sameOrigin) || force)
      return { do: "enable", pack: p, host: h, then: atTarget ? undefined : p.kind === "git" ? "checkout" : "unpack" };
  }
  if (atTarget) return { do: "none", pack: p, host: h, note: `${target}${h.dirty ? ", local changes" : ""}` };
  if (!sameOrigin && !force) {
    const what =
      h.kind === "git" ? `a clone of ${h.origin ?? "an unknown origin"}` : h.registryId ? `registry pack ${h.registryId}` : `a ${h.kind}`;
    return {
      do: "keep",
      pack: p,
      host: h,
      why: `${h.name} is ${what}, not ${p.repo ?? p.registryId}: left as it is (--force replaces it)`,
      failed: true,
    };
  }
  if (h.dirty && !force) {
    const at = h.kind === "git" ? short(h.commit) : (h.version ?? "?");
    return {
      do: "keep",
      pack: p,
      host: h,
      why:
        `local changes (${h.changes.slice(0, 3).join(", ")}) at ${at}, wanted ${target}: ` +
        "left as it is (--force overwrites, keeping a patch)",
      failed: true,
    };
  }
  if (p.kind === "git") {
    if (sameOrigin && h.kind === "git") return { do: "checkout", pack: p, host: h, from: short(h.commit) };
    return { do: "clone", pack: p, dir: h.name, replaces: h };
  }
  return { do: "unpack", pack: p, dir: h.name, replaces: h };
}
