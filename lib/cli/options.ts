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
      d.type === "string"
        ? "string"
        : d.type === "number"
          ? "number"
          : d.type === "boolean"
            ? "boolean"
            : d.type === "array"
              ? "array"
              : d.type === "enum"
                ? "enum"
                : "unknown";
    return {
      key,
      flag: `--${kebab(key)}`,
      type,
      required,
      defaultValue,
      description: description ?? (cur.description || undefined),
      values: d.type === "enum" ? Object.values(d.entries ?? {}) : undefined,
      alias: meta.alias,
    };
  });
}

export class FlagError extends Error {}
