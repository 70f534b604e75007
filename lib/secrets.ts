// Secrets come from the environment or `.env`; their values never reach output.
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { maskUrlsInText } from "./url-credentials.ts";

/**
 * KEY=value lines; `export ` prefix, quotes and # comments understood. Values already in the environment win.
 * Not Node's util.parseEnv: on Node 20 a line without "=" swallows the next line's key
 * ("broken line\nHF_TOKEN=x" gives the key "broken line\nHF_TOKEN"), silently losing that secret.
 */
export function parseDotEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2]!;
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.lastIndexOf(quote) > 0) {
      value = value.slice(1, value.lastIndexOf(quote));
      if (quote === '"') value = value.replace(/\\n/g, "\n").replace(/\\"/g, '"');
    } else {
      value = value.replace(/\s+#.*$/, "");
    }
    out[m[1]!] = value;
  }
  return out;
}

export function loadEnv(projectDir: string, env: NodeJS.ProcessEnv = process.env): Record<string, string | undefined> {
  const file = join(projectDir, ".env");
  const fromFile = existsSync(file) ? parseDotEnv(readFileSync(file, "utf8")) : {};
  return { ...fromFile, ...env };
}

/**
 * Set one KEY=value line in the project's .env (added, or replacing that key's lines), written to a
 * temporary file and renamed over it, mode 0600: a crash leaves the old file whole, and no other
 * user of this machine reads it. Comments and other lines stay as they are.
 */
export function writeDotEnvValue(projectDir: string, key: string, value: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new Error(`not an environment variable name: ${JSON.stringify(key)}`);
  if (/[\r\n"\\]/.test(value)) throw new Error(`the value for ${key} cannot go on one .env line`);
  const file = join(projectDir, ".env");
  const before = existsSync(file) ? readFileSync(file, "utf8") : "";
  const lines = before.split(/\r?\n/);
  if (lines.at(-1) === "") lines.pop();
  const mine = new RegExp(`^\\s*(?:export\\s+)?${key}\\s*=`);
  const kept = lines.filter((l) => !mine.test(l));
  kept.push(`${key}="${value}"`);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, kept.join("\n") + "\n", { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
  return file;
}

export class MissingSecretsError extends Error {
  constructor(
    readonly task: string,
    readonly missing: string[],
  ) {
    super(`${task} needs ${missing.join(", ")}: set ${missing.length > 1 ? "them" : "it"} in the environment or in .env`);
    this.name = "MissingSecretsError";
  }
}

export function resolveSecrets(
  task: string,
  required: string[],
  optional: string[],
  env: Record<string, string | undefined>,
): Record<string, string> {
  const missing = required.filter((k) => !env[k]);
  if (missing.length) throw new MissingSecretsError(task, missing);
  const out: Record<string, string> = {};
  for (const k of [...required, ...optional]) if (env[k]) out[k] = env[k]!;
  return out;
}

/**
 * Replaces every known secret value by `***` in any text about to be printed or logged, and masks
 * the credentials of any URL in it (`?token=...`, `user:pass@`), declared or not.
 */
export class Redactor {
  private values: string[] = [];

  add(value: string): void {
    // Very short values would blank out ordinary words; real tokens are long.
    if (value.length < 4 || this.values.includes(value)) return;
    this.values.push(value);
    this.values.sort((a, b) => b.length - a.length);
  }

  redact(text: string): string {
    let out = text;
    for (const v of this.values) out = out.split(v).join("***");
    return out.includes("://") ? maskUrlsInText(out) : out;
  }

  /**
   * A deep copy of a value with every string (keys too) redacted: done before a value is encoded
   * (JSON escapes `"` and `\`, so a secret holding them would no longer match in the encoded text).
   * Iterative, so deeply nested data cannot overflow the stack.
   */
  redactValue<T>(value: T): T {
    const fix = (v: unknown): unknown => (typeof v === "string" ? this.redact(v) : v);
    if (typeof value !== "object" || value === null) return fix(value) as T;
    const root: unknown = Array.isArray(value) ? [] : {};
    const stack: [unknown, Record<string, unknown> | unknown[]][] = [[value, root as Record<string, unknown>]];
    while (stack.length) {
      const [from, to] = stack.pop()!;
      for (const [k, v] of Object.entries(from as object)) {
        let copy = fix(v);
        if (typeof v === "object" && v !== null) {
          copy = Array.isArray(v) ? [] : {};
          stack.push([v, copy as Record<string, unknown>]);
        }
        if (Array.isArray(to)) to.push(copy);
        else Object.defineProperty(to, this.redact(k), { value: copy, enumerable: true, writable: true, configurable: true });
      }
    }
    return root as T;
  }

  /**
   * A redactor for a byte stream (a command's raw stdout): passes bytes through unchanged except
   * secret values, holding back only as many bytes as a secret could still be completing.
   */
  stream(write: (chunk: Buffer) => void): { write(chunk: Buffer): void; end(): void } {
    const needles = this.values.map((v) => Buffer.from(v));
    const keep = Math.max(0, ...needles.map((n) => n.length - 1));
    const mask = Buffer.from("***");
    let pending: Buffer = Buffer.alloc(0);
    const flush = (final: boolean) => {
      let buf = pending;
      const parts: Buffer[] = [];
      for (;;) {
        let at = -1;
        let hit: Buffer | undefined;
        for (const n of needles) {
          const i = buf.indexOf(n);
          if (i >= 0 && (at < 0 || i < at)) [at, hit] = [i, n];
        }
        if (at < 0 || !hit) break;
        parts.push(buf.subarray(0, at), mask);
        buf = buf.subarray(at + hit.length);
      }
      const cut = final ? buf.length : Math.max(0, buf.length - keep);
      parts.push(buf.subarray(0, cut));
      pending = Buffer.from(buf.subarray(cut));
      const out = Buffer.concat(parts);
      if (out.length) write(out);
    };
    return {
      write: (chunk) => {
        pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
        flush(false);
      },
      end: () => flush(true),
    };
  }
}

/**
 * One redactor for the process: every reporter and log line goes through it. Kept on globalThis so
 * that a second copy of this module (a flowfile that imports flow's sources) shares it.
 */
export const redactor: Redactor = ((globalThis as Record<symbol, unknown>)[Symbol.for("flow.redactor")] ??= new Redactor()) as Redactor;
