// `flow list`, `flow run <task>` and `flow init`, as citty commands: load the flowfile, pick hosts,
// run, print, exit. Returns the exit code: 0 ok, 1 a host failed, 2 bad input (a clear red line).
import { defineCommand, runCommand, showUsage, type CommandDef } from "citty";
import type { Jiti } from "jiti";
import { loadFlow, FlowfileError, type LoadedFlow } from "../flowfile/load.ts";
import type { FlowInput } from "../flowfile/schema.ts";
import { FlagError } from "./options.ts";
import { cittyArgs, readArgs } from "./args.ts";
import { GLOBALS, globalsSchema, validateFlags } from "./globals.ts";
import { SelectError } from "../select.ts";
import { MissingSecretsError } from "../secrets.ts";
import { listJson, listText, taskGroups, taskIndex } from "./list.ts";
import { taskCommand, UsageError } from "./run.ts";
import { initProject, InitError } from "./init.ts";
import { say } from "./say.ts";
import { TaskError } from "../task.ts";

export interface CliOptions {
  /** the flow used when the working directory has no flowfile */
  defaultFlow: () => FlowInput;
  cwd?: string;
  /** the loader that loaded flow itself, so the flowfile shares flow's modules (one redactor, one registry) */
  jiti?: Jiti;
}

const VERSION = "0.1.0";

function load(opts: CliOptions, file?: string): Promise<LoadedFlow> {
  return loadFlow({ cwd: opts.cwd ?? process.cwd(), file, fallback: opts.defaultFlow, jiti: opts.jiti });
}

function nearNames(index: Map<string, unknown>, name: string): string[] {
  return [...index.keys()].filter((k) => k.includes(name) || name.includes(k.split(":").pop()!));
}

export function cli(opts: CliOptions, setCode: (code: number) => void): CommandDef {
  const listArgs = GLOBALS.filter((g) => ["json", "flowfile", "help"].includes(g.key));
  let flow: LoadedFlow | undefined;
  let index = new Map<string, import("../task.ts").TaskDef<any>>();
  const run: CommandDef = defineCommand({
    meta: { name: "run", description: "run a task on hosts: flow run <task> [options] [-- command]; flow run <task> --help" },
    args: cittyArgs(GLOBALS),
    // The flowfile is loaded before citty looks for the task, so that its tasks are the subcommands.
    setup: async ({ args }) => {
      flow = await load(opts, typeof args.flowfile === "string" ? args.flowfile : undefined);
      index = taskIndex(taskGroups(flow));
      const name = args._[0];
      if (name && !index.has(name)) {
        const near = nearNames(index, name);
        throw new UsageError(
          `no task named ${name}${near.length ? ` (did you mean ${near.join(", ")}?)` : ""}; flow list shows every task`,
        );
      }
    },
    subCommands: () => Object.fromEntries([...index.values()].map((t) => [t.name, taskCommand(flow!, index, t, setCode)])),
    run: async ({ args }) => {
      if (args._.length) return; // a task ran
      if (args.help) return showUsage(run, root);
      throw new UsageError("flow run: name a task (flow list shows them)");
    },
  });
  const root: CommandDef = defineCommand({
    meta: { name: "flow", version: VERSION, description: "set up and keep a fleet of ComfyUI GPU boxes healthy" },
    subCommands: {
      list: defineCommand({
        meta: { name: "list", description: "every task, grouped by provider and plugin (--json)" },
        args: cittyArgs(listArgs),
        run: async ({ args, rawArgs }) => {
          const values = validateFlags(globalsSchema, readArgs(args, rawArgs, listArgs).values, "flow list: bad options");
          const loaded = await load(opts, values.flowfile);
          const groups = taskGroups(loaded);
          taskIndex(groups);
          process.stdout.write(values.json ? listJson(loaded, groups) : listText(loaded, groups));
        },
      }),
      run,
      init: defineCommand({
        meta: { name: "init", description: "start a flow project here: flowfile.ts, workflow_templates/, workflows/, .env.example" },
        run: async () => {
          const groups = taskGroups(await load(opts));
          const secrets = [
            ...new Set(groups.flatMap((g) => g.tasks.flatMap((t) => [...(t.secrets ?? []), ...(t.optionalSecrets ?? [])]))),
          ].sort();
          for (const line of initProject(opts.cwd ?? process.cwd(), secrets)) say.success(line);
        },
      }),
    },
  });
  return root;
}

/** Entry point; returns the exit code. */
export async function main(argv: string[], opts: CliOptions): Promise<number> {
  let code = 0;
  const root = cli(opts, (c) => (code = c));
  try {
    const [command] = argv;
    if (!command || command === "--help" || command === "-h") {
      await showUsage(root);
      return command ? 0 : 1;
    }
    if (command === "--version") {
      process.stdout.write(`${VERSION}\n`);
      return 0;
    }
    if (!["list", "run", "init"].includes(command))
      throw new UsageError(`unknown command ${command}: use flow list, flow run or flow init`);
    await runCommand(root, { rawArgs: argv });
    return code;
  } catch (err) {
    // by name too: a flowfile that imports flow's sources has its own copy of these classes
    const known =
      [UsageError, FlagError, FlowfileError, SelectError, MissingSecretsError, InitError, TaskError].some((E) => err instanceof E) ||
      ["CLIError", "TaskError"].includes((err as Error).name);
    say.error(`flow: ${known ? (err as Error).message : ((err as Error).stack ?? String(err))}`);
    return 2;
  }
}
