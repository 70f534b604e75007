// Task options as command-line flags, described and coerced from the task's zod schema.
import type { z } from "zod";

export interface OptionInfo {
  key: string;
  flag: string;
  type: "string" | "number" | "boolean" | "array" | "enum" | "unknown";
  values?: string[];
  required: boolean;
  defaultValue?: unknown;
  description?: string;
  alias?: string;
}

type Def = { type: string; innerType?: z.ZodType; defaultValue?: unknown; entries?: Record<string, string>; element?: z.ZodType };

function def(t: z.ZodType): Def {
  return (t as unknown as { _zod: { def: Def } })._zod.def;
}

export const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
export const camel = (s: string) => s.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());

export function describeOptions(schema: z.ZodObject | undefined): OptionInfo[] {
  if (!schema) return [];
  return Object.entries(schema.shape as Record<string, z.ZodType>).map(([key, t]) => {
    let cur = t;
    let required = true;
    let defaultValue: unknown;
    const meta = (t.meta?.() ?? {}) as { alias?: string };
    const description = t.description;
    for (;;) {
      const d = def(cur);
      if (d.type === "optional" || d.type === "nullable") required = false;
      else if (d.type === "default" || d.type === "prefault") {
        required = false;
        defaultValue = typeof d.defaultValue === "function" ? (d.defaultValue as () => unknown)() : d.defaultValue;
      } else break;
      cur = d.innerType!;
    }
    const d = def(cur);
    const type: OptionInfo["type"] =
      d.type === "string" ? "string" : d.type === "number" ? "number" : d.type === "boolean" ? "boolean" : d.type === "array" ? "array" : d.type === "enum" ? "enum" : "unknown";
    return {
      key, flag: `--${kebab(key)}`, type, required, defaultValue,
      description: description ?? (cur.description || undefined),
      values: d.type === "enum" ? Object.values(d.entries ?? {}) : undefined,
      alias: meta.alias,
    };
  });
}

export class FlagError extends Error {}

/**
 * Split argv into known flags for the given option sets. Returns raw values keyed by camelCase
 * name: booleans as true/false, arrays collected, everything else a string for zod to judge.
 */
export function parseFlags(argv: string[], options: OptionInfo[], globals: OptionInfo[]): { values: Record<string, unknown>; positionals: string[]; rest: string[] } {
  const all = [...globals, ...options];
  const values: Record<string, unknown> = {};
  const positionals: string[] = [];
  let rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === "--") {
      rest = argv.slice(i + 1);
      break;
    }
    if (!word.startsWith("-") || word === "-") {
      positionals.push(word);
      continue;
    }
    let name = word.replace(/^--?/, "");
    let inline: string | undefined;
    const eq = name.indexOf("=");
    if (eq >= 0) {
      inline = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    let negated = false;
    let info = all.find((o) => o.flag === `--${name}` || (word.startsWith("-") && !word.startsWith("--") && o.alias === name));
    if (!info && name.startsWith("no-")) {
      info = all.find((o) => o.flag === `--${name.slice(3)}` && o.type === "boolean");
      negated = !!info;
    }
    if (!info) throw new FlagError(`unknown option ${word.split("=")[0]}`);
    if (info.type === "boolean") {
      if (inline !== undefined && !/^(true|false|1|0|yes|no)$/i.test(inline)) throw new FlagError(`${info.flag} takes no value (or true / false), got ${JSON.stringify(inline)}`);
      values[info.key] = inline === undefined ? !negated : !/^(false|0|no)$/i.test(inline) !== negated;
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new FlagError(`${info.flag} needs a value`);
    if (info.type === "array") values[info.key] = [...((values[info.key] as string[]) ?? []), ...value.split(",").filter(Boolean)];
    else if (info.type === "number") values[info.key] = /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
    else values[info.key] = value;
  }
  return { values, positionals, rest };
}

export function optionHelp(options: OptionInfo[]): string {
  return options
    .map((o) => {
      const kind = o.type === "boolean" ? "" : o.type === "enum" ? ` <${o.values?.join("|")}>` : o.type === "array" ? " <a,b,...>" : ` <${o.type}>`;
      const extra = o.required ? " (required)" : o.defaultValue !== undefined && o.defaultValue !== false ? ` (default: ${JSON.stringify(o.defaultValue)})` : "";
      return `  ${o.flag}${o.alias ? `, -${o.alias}` : ""}${kind}${o.description ? `  ${o.description}` : ""}${extra}`;
    })
    .join("\n");
}
