// known_hosts: parse (pure), check a presented host key, append accepted keys.
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { appendFileSync, closeSync, mkdirSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { shQuote } from "../quote.ts";
import { globMatch } from "./ssh-config.ts";

export type HostMatcher = { kind: "patterns"; patterns: string[] } | { kind: "hashed"; salt: Buffer; hash: Buffer };

export interface KnownHostEntry {
  /** 1-based line number in the file, for error messages */
  line: number;
  marker?: "revoked" | "cert-authority";
  hosts: HostMatcher;
  keyType: string;
  /** base64 key blob as written */
  key: string;
}

export type HostKeyStatus = "match" | "unknown" | "changed" | "revoked";

/** Parse known_hosts text. Malformed lines are skipped, as OpenSSH does. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const s = raw.trim();
    if (s === "" || s.startsWith("#")) return;
    const f = s.split(/\s+/);
    let marker: KnownHostEntry["marker"];
    if (f[0].startsWith("@")) {
      const m = f.shift()!;
      if (m === "@revoked") marker = "revoked";
      else if (m === "@cert-authority") marker = "cert-authority";
      else return;
    }
    if (f.length < 3) return;
    const [hostField, keyType, key] = f;
    const hosts = parseHostField(hostField);
    if (!hosts) return;
    out.push({ line: i + 1, marker, hosts, keyType, key });
  });
  return out;
}

function parseHostField(field: string): HostMatcher | null {
  if (field.startsWith("|1|")) {
    const [, , salt, hash] = field.split("|");
    if (!salt || !hash) return null;
    return { kind: "hashed", salt: Buffer.from(salt, "base64"), hash: Buffer.from(hash, "base64") };
  }
  return { kind: "patterns", patterns: field.split(",").filter(Boolean) };
}

/** The name known_hosts uses for a host: `host` on port 22, `[host]:port` otherwise. */
export function knownHostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export function hostMatches(m: HostMatcher, host: string, port: number): boolean {
  const name = knownHostName(host, port).toLowerCase();
  if (m.kind === "hashed") {
    const h = createHmac("sha1", m.salt).update(name).digest();
    return h.length === m.hash.length && timingSafeEqual(h, m.hash);
  }
  let positive = false;
  for (const p of m.patterns) {
    if (p.startsWith("!")) {
      if (globMatch(p.slice(1), name)) return false;
    } else if (globMatch(p, name)) {
      positive = true;
    }
  }
  return positive;
}

export interface HostKeyCheck {
  status: HostKeyStatus;
  /** for "match"/"revoked": the line that matched; for "changed": the known line to report (same key type first) */
  entry?: KnownHostEntry;
  /** for "changed": every key on record for host:port, none of which was presented */
  known?: KnownHostEntry[];
}

/**
 * Compare a presented key with the entries for host:port.
 * A key listed under @revoked is refused whatever host it is listed for: a revoked
 * key is compromised everywhere (stricter than OpenSSH, which scopes it by host).
 * Any key on record for the host that is not the presented one makes it "changed", whatever
 * its type: a host we know that shows a key of another type is not a new host. (OpenSSH would
 * ask, and accept-new would record it; the client asks for the known types first, see host-key-policy.ts.)
 * "unknown" is left for hosts with no key on record at all.
 */
export function checkHostKeyDetailed(
  entries: KnownHostEntry[],
  host: string,
  port: number,
  keyType: string,
  keyBlob: Buffer,
): HostKeyCheck {
  const b64 = keyBlob.toString("base64");
  for (const e of entries) if (e.marker === "revoked" && e.key === b64) return { status: "revoked", entry: e };
  const known: KnownHostEntry[] = [];
  for (const e of entries) {
    if (e.marker) continue; // cert-authority lines are not host keys
    if (!hostMatches(e.hosts, host, port)) continue;
    if (e.key === b64) return { status: "match", entry: e };
    known.push(e);
  }
  if (!known.length) return { status: "unknown" };
  return { status: "changed", entry: known.find((e) => e.keyType === keyType) ?? known[0], known };
}

export function checkHostKey(entries: KnownHostEntry[], host: string, port: number, keyType: string, keyBlob: Buffer): HostKeyStatus {
  return checkHostKeyDetailed(entries, host, port, keyType, keyBlob).status;
}

/** Key types already known for host:port, so the client can ask the server for one of them first. */
export function knownKeyTypes(entries: KnownHostEntry[], host: string, port: number): string[] {
  const types = new Set<string>();
  for (const e of entries) if (!e.marker && hostMatches(e.hosts, host, port)) types.add(e.keyType);
  return [...types];
}

/** Key type written inside an SSH public key blob (first length-prefixed string). */
export function keyTypeOfBlob(blob: Buffer): string {
  if (blob.length < 4) return "";
  const n = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + n).toString("latin1");
}

/** `SHA256:...` as `ssh-keygen -lf` prints it. */
export function fingerprint(keyBlob: Buffer): string {
  return "SHA256:" + createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "");
}

/** The fingerprint of a known_hosts line's key. */
export function entryFingerprint(e: KnownHostEntry): string {
  return fingerprint(Buffer.from(e.key, "base64"));
}

/** The command that forgets every key on record for host:port (hashed lines too); `-f` unless it is ssh's own file. */
export function forgetHostCommand(host: string, port: number, file: string, defaultFile: string): string {
  return ["ssh-keygen", "-R", shQuote(knownHostName(host, port)), ...(file === defaultFile ? [] : ["-f", shQuote(file)])].join(" ");
}

export function formatKnownHostLine(host: string, port: number, keyType: string, keyBlob: Buffer): string {
  return `${knownHostName(host, port)} ${keyType} ${keyBlob.toString("base64")}`;
}

// ---- file I/O -------------------------------------------------------------

export function readKnownHosts(file: string): KnownHostEntry[] {
  try {
    return parseKnownHosts(readFileSync(file, "utf8"));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
}

/** Append one line; creates the folder (0700) and file (0600) when missing. */
export function appendKnownHost(file: string, line: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  let prefix = "";
  try {
    // keep one entry per line even when the file lacks a final newline
    const size = statSync(file).size;
    if (size > 0) {
      const fd = openSync(file, "r");
      const last = Buffer.alloc(1);
      readSync(fd, last, 0, 1, size - 1);
      closeSync(fd);
      if (last[0] !== 0x0a) prefix = "\n";
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  // mode only applies when the file is created; an existing file keeps the user's choice
  appendFileSync(file, prefix + line + "\n", { mode: 0o600 });
}
