// Secrets come from the environment or `.env`; their values never reach output.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** KEY=value lines; `export ` prefix, quotes and # comments understood. Values already in the environment win. */
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

export class MissingSecretsError extends Error {
  constructor(readonly task: string, readonly missing: string[]) {
    super(`${task} needs ${missing.join(", ")}: set ${missing.length > 1 ? "them" : "it"} in the environment or in .env`);
    this.name = "MissingSecretsError";
  }
}

export function resolveSecrets(task: string, required: string[], optional: string[], env: Record<string, string | undefined>): Record<string, string> {
  const missing = required.filter((k) => !env[k]);
  if (missing.length) throw new MissingSecretsError(task, missing);
  const out: Record<string, string> = {};
  for (const k of [...required, ...optional]) if (env[k]) out[k] = env[k]!;
  return out;
}

/** Replaces every known secret value by `***` in any text about to be printed or logged. */
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
    return out;
  }
}

/** One redactor for the process: every reporter and log line goes through it. */
export const redactor = new Redactor();
