// The run options every task takes, as one zod schema: validated like a task's own options, so a
// bad value stops the run with exit 2 and the flag named, before any host is touched.
import { z } from "zod";
import { formatZodError } from "../flowfile/schema.ts";
import { describeOptions, FlagError, kebab } from "./options.ts";

export const globalsSchema = z.object({
  host: z.string().min(1).optional().describe("[user@]address[:port], a host name, or local"),
  hosts: z.string().min(1).optional().describe("host names and groups, comma separated (all = every host)"),
  dryRun: z.boolean().optional().describe("report what would change, change nothing"),
  json: z.boolean().optional().describe("JSON lines for machines"),
  concurrency: z.number().int().positive().optional().describe("hosts at once"),
  lockWait: z.number().nonnegative().max(86_400).optional().describe("seconds to wait for a host's lock"),
  acceptNewHostKey: z.boolean().optional().describe("record unknown host keys (a changed key, of any type, is still refused)"),
  flowfile: z.string().min(1).optional().describe("path of the flowfile"),
  yes: z.boolean().optional().meta({ alias: "y" }).describe("confirm a task that destroys something (asked on a terminal otherwise)"),
  verbose: z.boolean().optional().meta({ alias: "v" }).describe("also print each command run on a host"),
  quiet: z.boolean().optional().meta({ alias: "q" }).describe("print only failures, warnings and the recap"),
  help: z.boolean().optional().meta({ alias: "h" }).describe("show the task's options"),
});

export type Globals = z.output<typeof globalsSchema>;

export const GLOBALS = describeOptions(globalsSchema);

/** Validate raw flag values against a schema; errors name the flag (`--lock-wait: expected a number, got "abc"`). */
export function validateFlags<S extends z.ZodObject>(schema: S, raw: Record<string, unknown>, what: string): z.output<S> {
  const keys = new Set(Object.keys(schema.shape));
  const values = Object.fromEntries(Object.entries(raw).filter(([k]) => keys.has(k)));
  const parsed = schema.safeParse(values, { reportInput: true });
  if (parsed.success) return parsed.data;
  const text = formatZodError(parsed.error).replace(/^([A-Za-z0-9]+)(?=[.:])/gm, (k) => `--${kebab(k)}`);
  throw new FlagError(`${what}:\n${text}`);
}
