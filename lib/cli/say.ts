// What the CLI says outside the task tree (errors, warnings, hints, questions): consola, fancy on a
// terminal and plain lines otherwise, on stderr so that stdout stays the run's own output. Redacted.
import { createConsola, type ConsolaReporter } from "consola";
import { redactor } from "../secrets.ts";

const fancy = !!process.stderr.isTTY && !process.env.CI;

export const say = createConsola({ fancy, stdout: process.stderr, stderr: process.stderr, formatOptions: { date: false } });
say.setReporters(
  say.options.reporters.map((inner): ConsolaReporter => ({
    log: (obj, ctx) => inner.log({ ...obj, args: obj.args.map((a: unknown) => (typeof a === "string" ? redactor.redact(a) : a)) }, ctx),
  })),
);

/** --quiet: errors and warnings only; --verbose: debug lines too. */
export function setVerbosity(v: { verbose?: boolean; quiet?: boolean }): void {
  say.level = v.quiet ? 1 : v.verbose ? 4 : 3;
}

/** Ask on a terminal; off a terminal (CI, pipes) the answer is no, and the caller says how to say yes. */
export async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return false;
  const answer = await say.prompt(question, { type: "confirm", initial: false, cancel: "default" });
  return answer === true;
}
