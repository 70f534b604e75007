// `flow list` and `flow run <task...>`: load the flowfile, pick hosts, run, print, exit.
import { defineCommand, runCommand, showUsage } from "citty";
import type { Jiti } from "jiti";
import { loadFlow, FlowfileError, type LoadedFlow } from "../flowfile/load.ts";
import type { FlowInput } from "../flowfile/schema.ts";
import type { PluginDef, TaskDef } from "../task.ts";
import { corePlugin } from "../core-tasks.ts";
import { describeOptions, FlagError, optionHelp, parseFlags } from "./options.ts";
import { GLOBALS, globalsSchema, validateFlags } from "./globals.ts";
import { selectHosts, SelectError } from "../select.ts";
import { loadEnv, redactor, resolveSecrets, MissingSecretsError } from "../secrets.ts";
import { runTask } from "../runner.ts";
import type { HostRecap, Reporter } from "../events.ts";
import { PlainReporter } from "../output/plain.ts";
import { JsonReporter } from "../output/json.ts";
import { QuietReporter } from "../output/quiet.ts";
import { urlCredentialValues } from "../url-credentials.ts";
import { exitCode } from "../output/recap.ts";

export interface CliOptions {
  /** the flow used when the working directory has no flowfile */
  defaultFlow: () => FlowInput;
  cwd?: string;
  /** the loader that loaded flow itself, so the flowfile shares flow's modules (one redactor, one registry) */
  jiti?: Jiti;
}


export interface TaskGroup {
  title: string;
  kind: "provider" | "plugin" | "core";
  description?: string;
  tasks: TaskDef<any>[];
}

export function taskGroups(flow: LoadedFlow): TaskGroup[] {
  const fromPlugin = (kind: TaskGroup["kind"]) => (p: PluginDef): TaskGroup => ({ title: p.name, kind, description: p.description, tasks: p.tasks });
  return [
    ...flow.config.providers.map(fromPlugin("provider")),
    ...flow.config.plugins.map(fromPlugin("plugin")),
    fromPlugin("core")(corePlugin),
  ];
}

export function taskIndex(groups: TaskGroup[]): Map<string, TaskDef<any>> {
  const index = new Map<string, TaskDef<any>>();
  for (const g of groups) {
    for (const t of g.tasks) {
      if (index.has(t.name)) throw new FlowfileError(`two tasks are named ${t.name} (the second in ${g.kind} ${g.title})`);
      index.set(t.name, t);
    }
  }
  return index;
}

function listText(groups: TaskGroup[]): string {
  const width = Math.max(...groups.flatMap((g) => g.tasks.map((t) => t.name.length)), 10);
  const out: string[] = [];
  for (const g of groups) {
    if (!g.tasks.length) continue;
    out.push(`${g.kind} ${g.title}${g.description ? ` — ${g.description}` : ""}`);
    for (const t of g.tasks) {
      out.push(`  ${t.name.padEnd(width)}  ${t.description}${t.scope === "local" ? " [local]" : ""}`);
      const opts = describeOptions(t.options);
      if (opts.length) out.push(`  ${"".padEnd(width)}  options: ${opts.map((o) => o.flag + (o.required ? "*" : "")).join(" ")}`);
    }
    out.push("");
  }
  return out.join("\n");
}

class UsageError extends Error {}

async function load(cwd: string, opts: CliOptions, file?: string): Promise<LoadedFlow> {
  return loadFlow({ cwd, file, fallback: opts.defaultFlow, jiti: opts.jiti });
}

async function list(argv: string[], opts: CliOptions): Promise<number> {
  const values = validateFlags(globalsSchema, parseFlags(argv, [], GLOBALS).values, "flow list: bad options");
  const flow = await load(opts.cwd ?? process.cwd(), opts, values.flowfile);
  const groups = taskGroups(flow);
  taskIndex(groups);
  if (values.json) {
    const json = groups.map((g) => ({
      group: g.title, kind: g.kind, description: g.description,
      tasks: g.tasks.map((t) => ({ name: t.name, description: t.description, scope: t.scope ?? "host", lock: t.lock !== false, secrets: t.secrets ?? [], options: describeOptions(t.options) })),
    }));
    process.stdout.write(JSON.stringify({ flowfile: flow.file, groups: json }, null, 2) + "\n");
  } else {
    process.stdout.write(`${flow.file ? `flowfile: ${flow.file}` : "no flowfile here: built-in default"}\n\n${listText(groups)}`);
  }
  return 0;
}

function pickReporter(json: boolean): Reporter {
  if (json) return new JsonReporter();
  if (process.stdout.isTTY && (process.stdout.columns ?? 0) > 20 && !process.env.CI) {
    // loaded lazily: listr2 is only needed on a terminal
    return new LazyListr();
  }
  return new PlainReporter((line) => process.stdout.write(redactor.redact(line) + "\n"));
}

class LazyListr implements Reporter {
  private inner?: Reporter;
  private queue: Array<(r: Reporter) => void> = [];
  private ready = import("../output/listr.ts").then((m) => {
    this.inner = new m.ListrReporter();
    for (const f of this.queue.splice(0)) f(this.inner);
  });
  private call(f: (r: Reporter) => void) {
    if (this.inner) f(this.inner);
    else this.queue.push(f);
  }
  start(task: string, hosts: string[], dryRun: boolean) { this.call((r) => r.start(task, hosts, dryRun)); }
  event(e: Parameters<Reporter["event"]>[0]) { this.call((r) => r.event(e)); }
  async finish(recap: HostRecap[]) { await this.ready; await this.inner!.finish(recap); }
}

async function run(argv: string[], opts: CliOptions): Promise<number> {
  // First pass: find the task names and the flowfile; flags are judged once tasks are known.
  const names: string[] = [];
  for (const w of argv) {
    if (w === "--" || w.startsWith("-")) break;
    names.push(w);
  }
  const flowfileFlag = argv.find((w, i) => argv[i - 1] === "--flowfile") ?? argv.find((w) => w.startsWith("--flowfile="))?.slice(11);
  const flow = await load(opts.cwd ?? process.cwd(), opts, flowfileFlag);
  const index = taskIndex(taskGroups(flow));
  if (!names.length) throw new UsageError("flow run: name a task (flow list shows them)");
  const tasks = names.map((n) => {
    const t = index.get(n);
    if (!t) {
      const near = [...index.keys()].filter((k) => k.includes(n) || n.includes(k.split(":").pop()!));
      throw new UsageError(`no task named ${n}${near.length ? ` (did you mean ${near.join(", ")}?)` : ""}; flow list shows every task`);
    }
    return t;
  });
  const infos = tasks.flatMap((t) => describeOptions(t.options));
  const { values: flags, rest } = parseFlags(argv.slice(names.length), infos, GLOBALS);
  const values = validateFlags(globalsSchema, flags, "bad run options");
  if (values.help) {
    for (const t of tasks) {
      process.stdout.write(`flow run ${t.name}${t.takesRest ? " -- <command>" : ""} [options]\n  ${t.description}\n\n`);
      const o = describeOptions(t.options);
      process.stdout.write(`task options:\n${o.length ? optionHelp(o) : "  (none)"}\n\n`);
      if (t.secrets?.length) process.stdout.write(`secrets needed: ${t.secrets.join(", ")}\n\n`);
    }
    process.stdout.write(`run options:\n${optionHelp(GLOBALS)}\n`);
    return 0;
  }
  if (rest.length && !tasks.some((t) => t.takesRest)) throw new UsageError(`${names.join(" ")} takes no words after --`);

  const settings = flow.config.settings;
  const hosts = selectHosts(flow.hosts, { host: values.host, hosts: values.hosts });
  const env = loadEnv(flow.projectDir);
  // Redact every secret any task knows of, not only this task's: `exec -- env` must not print a token.
  for (const t of index.values()) for (const k of [...(t.secrets ?? []), ...(t.optionalSecrets ?? [])]) if (env[k]) redactor.add(env[k]!);
  // A token written into a model URL (CivitAI's `?token=`) is a secret too, wherever it shows up.
  for (const url of Object.values(flow.config.models)) for (const v of urlCredentialValues(url)) redactor.add(v);
  let code = 0;
  for (const task of tasks) {
    if (task.scope !== "local" && !hosts.length) throw new UsageError(`${task.name} runs on hosts: give --host ADDRESS or --hosts NAMES`);
    const options = task.options ? validateFlags(task.options, flags, `${task.name}: bad options`) : {};
    const secrets = resolveSecrets(task.name, task.secrets ?? [], task.optionalSecrets ?? [], env);
    for (const v of Object.values(secrets)) redactor.add(v);
    const passthrough = !!task.passthrough && hosts.length === 1 && !values.json && !values.dryRun;
    const raw = passthrough ? { stdout: redactor.stream((c) => process.stdout.write(c)), stderr: redactor.stream((c) => process.stderr.write(c)) } : undefined;
    const recaps = await runTask({
      flow, tasks: index, task, options: options as Record<string, unknown>, rest, hosts, secrets,
      dryRun: !!values.dryRun,
      concurrency: values.concurrency ?? settings.concurrency,
      lockWaitSeconds: values.lockWait ?? settings.lockWaitSeconds,
      acceptNewHostKey: !!values.acceptNewHostKey,
      reporter: passthrough ? new QuietReporter((line) => process.stderr.write(redactor.redact(line) + "\n")) : pickReporter(!!values.json),
      raw: raw && { stdout: (c) => raw.stdout.write(c), stderr: (c) => raw.stderr.write(c) },
    });
    raw?.stdout.end();
    raw?.stderr.end();
    if (task.summarize && !values.json && !passthrough) process.stdout.write("\n" + redactor.redact(task.summarize(recaps)) + "\n");
    code = Math.max(code, task.exitCode ? task.exitCode(recaps) : exitCode(recaps));
    if (code) break;
  }
  return code;
}

/** Entry point; returns the exit code. */
export async function main(argv: string[], opts: CliOptions): Promise<number> {
  let code = 0;
  const cli = defineCommand({
    meta: { name: "flow", version: "0.1.0", description: "set up and keep a fleet of ComfyUI GPU boxes healthy" },
    subCommands: {
      list: defineCommand({
        meta: { name: "list", description: "every task, grouped by provider and plugin (--json)" },
        run: async ({ rawArgs }) => void (code = await list(rawArgs, opts)),
      }),
      run: defineCommand({
        meta: { name: "run", description: "run tasks on hosts: flow run <task...> [options] [-- command] (flow run <task> --help)" },
        run: async ({ rawArgs }) => void (code = await run(rawArgs, opts)),
      }),
    },
  });
  try {
    const [command] = argv;
    if (!command || command === "--help" || command === "-h") {
      await showUsage(cli);
      return command ? 0 : 1;
    }
    if (command === "--version") {
      process.stdout.write("0.1.0\n");
      return 0;
    }
    if (command !== "list" && command !== "run") throw new UsageError(`unknown command ${command}: use flow list or flow run`);
    await runCommand(cli, { rawArgs: argv });
    return code;
  } catch (err) {
    const known = err instanceof UsageError || err instanceof FlagError || err instanceof FlowfileError || err instanceof SelectError || err instanceof MissingSecretsError;
    process.stderr.write(`flow: ${redactor.redact(known ? (err as Error).message : ((err as Error).stack ?? String(err)))}\n`);
    return 2;
  }
}
