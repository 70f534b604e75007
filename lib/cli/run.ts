// `flow run <task> [options] [-- words]`: each task is a citty command whose args come from its
// zod schema plus the run options; the body picks hosts, resolves secrets, asks before destroying
// on a terminal, runs, and returns the exit code.
import { defineCommand, renderUsage, type CommandDef } from "citty";
import type { LoadedFlow } from "../flowfile/load.ts";
import { scopeOf, type TaskDef } from "../task.ts";
import { describeOptions, type OptionInfo } from "./options.ts";
import { cittyArgs, readArgs } from "./args.ts";
import { GLOBALS, globalsSchema, validateFlags, type Globals } from "./globals.ts";
import { selectHosts } from "../select.ts";
import { loadEnv, redactor, resolveSecrets } from "../secrets.ts";
import { urlCredentialValues } from "../url-credentials.ts";
import { runTask } from "../runner.ts";
import { exitCode } from "../output/recap.ts";
import { QuietReporter } from "../output/quiet.ts";
import { pickReporter } from "./reporters.ts";
import { confirm, say, setVerbosity } from "./say.ts";

export class UsageError extends Error {}

/** The citty command for one task; `done` receives the run's exit code. */
export function taskCommand(
  flow: LoadedFlow,
  index: Map<string, TaskDef<any>>,
  task: TaskDef<any>,
  done: (code: number) => void,
): CommandDef {
  const infos = [...describeOptions(task.options), ...GLOBALS];
  const cmd: CommandDef = defineCommand({
    meta: { name: task.name, description: task.description },
    args: cittyArgs(infos),
    run: async ({ args, rawArgs }) => {
      const { values: raw, positionals, rest } = readArgs(args, rawArgs, infos);
      const values = validateFlags(globalsSchema, raw, "bad run options");
      setVerbosity(values);
      if (values.help) return void process.stdout.write(await taskHelp({ ...cmd, args: cittyArgs(infos, true) }, task));
      placePositionals(task, infos, positionals, raw);
      if (rest.length && !task.takesRest) throw new UsageError(`${task.name} takes no words after --`);
      const options = task.options ? validateFlags(task.options, raw, `${task.name}: bad options`) : {};
      done(await runOne(flow, index, task, options as Record<string, unknown>, rest, values));
    },
  });
  return cmd;
}

/** Words without a flag fill the task's `positionals` keys in order; an array key takes the rest. */
export function placePositionals(task: TaskDef<any>, infos: OptionInfo[], words: string[], raw: Record<string, unknown>): void {
  const keys = task.positionals ?? [];
  let i = 0;
  for (const key of keys) {
    if (i >= words.length) break;
    const info = infos.find((o) => o.key === key);
    if (raw[key] !== undefined) throw new UsageError(`${task.name}: ${words[i]} and ${info?.flag ?? key} both give ${key}`);
    if (info?.type === "array") {
      raw[key] = words.slice(i);
      i = words.length;
    } else raw[key] = words[i++];
  }
  if (i < words.length) {
    const what = keys.length
      ? `takes at most ${keys.length} word${keys.length === 1 ? "" : "s"} (${keys.join(", ")})`
      : "takes no arguments";
    throw new UsageError(`${task.name} ${what} (got ${words.join(" ")}); see flow run ${task.name} --help`);
  }
}

async function taskHelp(cmd: CommandDef, task: TaskDef<any>): Promise<string> {
  const usage = await renderUsage(cmd, { meta: { name: "flow run" } });
  const words = task.positionals?.length ? `\nWords without a flag give: ${task.positionals.join(", ")}\n` : "";
  const tail = words + (task.takesRest ? "\nWords after -- are the command: flow run " + task.name + " --host HOST -- <command>\n" : "");
  return `${usage}\n${tail}${task.secrets?.length ? `\nSecrets needed: ${task.secrets.join(", ")}\n` : ""}`;
}

async function runOne(
  flow: LoadedFlow,
  index: Map<string, TaskDef<any>>,
  task: TaskDef<any>,
  options: Record<string, unknown>,
  rest: string[],
  values: Globals,
): Promise<number> {
  const settings = flow.config.settings;
  const hosts = selectHosts(flow.hosts, { host: values.host, hosts: values.hosts });
  const scope = scopeOf(task, options);
  if (scope !== "local" && !hosts.length) throw new UsageError(`${task.name} runs on hosts: give --host ADDRESS or --hosts NAMES`);
  const env = loadEnv(flow.projectDir);
  // Redact every secret any task knows of, not only this task's: `exec -- env` must not print a token.
  for (const t of index.values()) for (const k of [...(t.secrets ?? []), ...(t.optionalSecrets ?? [])]) if (env[k]) redactor.add(env[k]!);
  // A token written into a model URL (CivitAI's `?token=`) is a secret too, wherever it shows up.
  for (const url of Object.values(flow.config.models)) for (const v of urlCredentialValues(url)) redactor.add(v);
  const secrets = resolveSecrets(task.name, task.secrets ?? [], task.optionalSecrets ?? [], env);
  for (const v of Object.values(secrets)) redactor.add(v);

  let confirmed = !!values.yes;
  if (task.destructive && !confirmed && !values.dryRun) {
    const where = scope === "local" ? "this machine" : hosts.map((h) => h.name).join(", ");
    confirmed = await confirm(`${task.name} will ${task.destructive} on ${where}. Go ahead?`);
    if (!confirmed) say.info(`${task.name}: not confirmed, so it will not ${task.destructive} (give --yes to confirm)`);
  }

  // checks that must stop the whole run before any host is touched (a wrong token)
  await task.preflight?.(
    { secrets, flow: flow.config, projectDir: flow.projectDir, dryRun: !!values.dryRun, log: (m) => say.info(m) },
    options,
  );

  const passthrough = !!task.passthrough && hosts.length === 1 && !values.json && !values.dryRun;
  const raw = passthrough
    ? { stdout: redactor.stream((c) => process.stdout.write(c)), stderr: redactor.stream((c) => process.stderr.write(c)) }
    : undefined;
  const recaps = await runTask({
    flow,
    tasks: index,
    task,
    options,
    rest,
    hosts,
    secrets,
    confirmed,
    dryRun: !!values.dryRun,
    verbose: !!values.verbose,
    concurrency: values.concurrency ?? settings.concurrency,
    lockWaitSeconds: values.lockWait ?? settings.lockWaitSeconds,
    acceptNewHostKey: !!values.acceptNewHostKey,
    reporter: passthrough
      ? new QuietReporter((line) => process.stderr.write(redactor.redact(line) + "\n"))
      : pickReporter({ json: !!values.json, quiet: !!values.quiet, verbose: !!values.verbose }),
    raw: raw && { stdout: (c) => raw.stdout.write(c), stderr: (c) => raw.stderr.write(c) },
  });
  raw?.stdout.end();
  raw?.stderr.end();
  if (task.summarize && !values.json && !passthrough) process.stdout.write("\n" + redactor.redact(task.summarize(recaps)) + "\n");
  return task.exitCode ? task.exitCode(recaps) : exitCode(recaps);
}
