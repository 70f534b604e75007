// Task options and run options as citty args, derived from their zod schemas; citty parses argv,
// this module only turns its answer into the raw values zod then judges (numbers, lists, `--` rest).
import type { ArgDef, ArgsDef, ParsedArgs } from "citty";
import { camel, FlagError, type OptionInfo } from "./options.ts";

/**
 * citty's definition of each option: zod keeps the defaults and the rules, citty the syntax and the
 * help. `required` is set for the help only: zod names a missing option, and `--help` must work without it.
 */
export function cittyArgs(infos: OptionInfo[], forHelp = false): ArgsDef {
  return Object.fromEntries(
    infos.map((o): [string, ArgDef] => {
      const name = o.flag.slice(2);
      const description = [
        o.description,
        o.defaultValue !== undefined && o.defaultValue !== false ? `(default: ${JSON.stringify(o.defaultValue)})` : "",
      ]
        .filter(Boolean)
        .join(" ");
      if (o.type === "boolean") return [name, { type: "boolean", description, alias: o.alias }];
      if (o.type === "enum")
        return [name, { type: "enum", options: o.values, description, alias: o.alias, required: forHelp && o.required }];
      const valueHint = o.type === "array" ? "a,b,..." : o.type === "number" ? "number" : undefined;
      return [name, { type: "string", description, alias: o.alias, required: forHelp && o.required, valueHint }];
    }),
  );
}

export interface ReadArgs {
  /** raw values by camelCase key, for zod */
  values: Record<string, unknown>;
  /** words before `--` that are not options */
  positionals: string[];
  /** words after `--` */
  rest: string[];
}

/** citty's parse of `rawArgs` -> raw option values; an option no schema declares is an error naming it. */
export function readArgs(parsed: ParsedArgs, rawArgs: string[], infos: OptionInfo[]): ReadArgs {
  const dash = rawArgs.indexOf("--");
  const rest = dash < 0 ? [] : rawArgs.slice(dash + 1);
  const before = dash < 0 ? rawArgs : rawArgs.slice(0, dash);
  const known = new Set(infos.flatMap((o) => [o.flag.slice(2), o.key, ...(o.alias ? [o.alias] : [])]));
  for (const key of Object.keys(parsed)) {
    if (key === "_" || known.has(key) || known.has(camel(key))) continue;
    throw new FlagError(`unknown option ${key.length === 1 ? "-" : "--"}${key}`);
  }
  const values: Record<string, unknown> = {};
  for (const o of infos) {
    const v = parsed[o.flag.slice(2)];
    if (v === undefined) continue;
    // citty turns a value-less `--output` into "": say what is missing rather than pass an empty value on
    if (v === "" && o.type !== "boolean") throw new FlagError(`${o.flag} needs a value`);
    if (o.type === "array")
      values[o.key] = occurrences(before, o)
        .flatMap((s) => s.split(","))
        .filter(Boolean);
    else if (o.type === "number" && typeof v === "string" && /^-?\d+(\.\d+)?$/.test(v)) values[o.key] = Number(v);
    else values[o.key] = v;
  }
  const positionals = parsed._.slice(0, parsed._.length - rest.length);
  return { values, positionals, rest };
}

/** Every value given to a list option (`--file a --file=b,c`): citty keeps only the last. */
function occurrences(argv: string[], o: OptionInfo): string[] {
  const names = [o.flag, ...(o.alias ? [`-${o.alias}`] : [])];
  const out: string[] = [];
  argv.forEach((w, i) => {
    const name = names.find((n) => w === n || w.startsWith(`${n}=`));
    if (!name) return;
    const value = w === name ? argv[i + 1] : w.slice(name.length + 1);
    if (value === undefined) throw new FlagError(`${o.flag} needs a value`);
    out.push(value);
  });
  return out;
}
