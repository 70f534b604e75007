// The task model: tasks are data (name, description, option schema, secrets) plus a body
// that runs once per selected host and reports idempotent steps.
import { globalsSchema } from "./cli/globals.ts";
import type { z } from "zod";
import type { HostSpec } from "./hosts.ts";
import type { ExecOptions, ExecResult, Transport } from "./transport/types.ts";

export type StepStatus = "ok" | "changed" | "skipped" | "failed";

export interface StepResult {
  status: StepStatus;
  /** a short note shown beside the status (why skipped, what changed) */
  note?: string;
}

export interface EnsureSpec {
  title: string;
  /** Read the fact. true / "ok" means the host is already as wanted. A string is a note explaining the difference. */
  check: () => Promise<boolean | { ok: boolean; note?: string }>;
  /** Change the host. Runs only when check said it differs and this is not a dry run. */
  apply: () => Promise<void | string>;
}

export interface RemoteScriptRun {
  /** the script's final result object (what it wrote to result.json) */
  result: unknown;
  /** how flow got the result; "dry-run": nothing was pushed or started */
  how: "started" | "attached" | "finished-unwatched" | "dry-run";
}

export interface TaskContext {
  /** the host this body runs for (local tasks get the local host) */
  readonly host: HostSpec;
  readonly transport: Transport;
  readonly dryRun: boolean;
  /** words after `--` on the command line */
  readonly rest: string[];
  /**
   * Set only for a `passthrough` task on a single host without --json: the terminal's own streams,
   * for output the user pipes (`flow run exec --host gpu1 -- cat a.json > a.json`). Secrets are masked.
   */
  readonly raw?: { stdout(chunk: Buffer): void; stderr(chunk: Buffer): void };
  /** a `destructive` task's go-ahead: --yes, or yes at the terminal's question */
  readonly confirmed: boolean;
  /** declared secrets, resolved locally */
  readonly secrets: Readonly<Record<string, string>>;
  readonly flow: import("./flowfile/schema.ts").FlowConfig;
  /** working directory of the flow project (where flowfile.ts is) */
  readonly projectDir: string;
  /** A step: its body returns a result; a thrown error marks it failed and stops this host's task. */
  step(title: string, body: () => Promise<StepResult | StepStatus | void>): Promise<StepStatus>;
  /** pyinfra-style step: read the fact, change only what differs; dry-run reports "would change". */
  ensure(spec: EnsureSpec): Promise<StepStatus>;
  /** Run shell text on the host; output lines are redacted and logged at debug level. */
  exec(command: string, opts?: ExecOptions): Promise<ExecResult>;
  /** Like exec, but a non-zero exit throws an error carrying the command's stderr. */
  sh(command: string, opts?: ExecOptions): Promise<string>;
  /** A line of output for this host (redacted). */
  log(message: string): void;
  warn(message: string): void;
  /** A transient status line (download progress): the terminal shows the latest, plain output at most every few seconds. */
  progress(message: string): void;
  /** Structured data for `--json` output (merged per host). */
  emit(data: Record<string, unknown>): void;
  /** Run another task on the same host (its steps join this host's list); says how many of its steps ended how. */
  runTask(name: string, options?: Record<string, unknown>): Promise<TaskTally>;
  /** Whether the flow has a task of that name (a plugin that is not registered has none). */
  hasTask(name: string): boolean;
  /** Push a bundled script from tasks/ and run it detached; re-attach when one runs. */
  remoteScript(
    script: string,
    opts: { key: string; job?: unknown; onProgress?: (event: Record<string, unknown>) => void },
  ): Promise<RemoteScriptRun>;
}

export interface TaskDef<S extends z.ZodObject = z.ZodObject> {
  /** `namespace:action` or a bare verb (`status`, `exec`) */
  name: string;
  description: string;
  options?: S;
  /** names of secrets this task needs; the run fails before touching any host when one is missing */
  secrets?: string[];
  /** secrets used when present */
  optionalSecrets?: string[];
  /**
   * "host" (default): once per selected host. "local": once, on this machine, no host needed. A
   * function decides from the options (workflow:convert is local with a saved object_info).
   */
  scope?: "host" | "local" | ((options: z.infer<S>) => "host" | "local");
  /** take the host lock while this task runs (default true; false for read-only and ad-hoc tasks) */
  lock?: boolean;
  /** the task takes words after `--` */
  takesRest?: boolean;
  /**
   * Option keys that words without a flag fill, in order (`comfyui:snapshot restore ID`); an array
   * option takes every word left (`nodes:install PACK PACK`). A word also given as a flag is an error.
   */
  positionals?: string[];
  /** what the task destroys, as a phrase ("delete model files no workflow needs"): asked on a terminal, else --yes */
  destructive?: string;
  /** on one host without --json, the task writes its output as is (`ctx.raw`); flow's own lines go to stderr */
  passthrough?: boolean;
  /** the exit code of a passthrough run (as `ssh host cmd` gives the command's); default 0 when every host ended ok, else 1 */
  exitCode?(recaps: import("./events.ts").HostRecap[]): number;
  /**
   * Runs once on this machine before any host is touched (after options and secrets are resolved):
   * a check that must stop the whole run early, e.g. a wrong token. A throw is the run's red line.
   */
  preflight?(ctx: PreflightContext, options: z.infer<S>): Promise<void>;
  run(ctx: TaskContext, options: z.infer<S>): Promise<void>;
  /** text printed after the recap (not with --json), e.g. one table for the fleet */
  summarize?(recaps: import("./events.ts").HostRecap[]): string;
}

/** How many steps of a task ended how. */
export interface TaskTally {
  ok: number;
  changed: number;
  skipped: number;
  failed: number;
}

export interface PreflightContext {
  readonly secrets: Readonly<Record<string, string>>;
  readonly flow: import("./flowfile/schema.ts").FlowConfig;
  readonly projectDir: string;
  readonly dryRun: boolean;
  /** a line for the user, outside the task tree */
  log(message: string): void;
}

/** The run options every task takes: a task option may not take one of their names. */
const RUN_OPTION_KEYS = Object.keys(globalsSchema.shape);

/** Checks what can be checked when a task is defined: an option named like a run option would be shadowed. */
export function defineTask<S extends z.ZodObject>(task: TaskDef<S>): TaskDef<S> {
  const clash = Object.keys(task.options?.shape ?? {}).filter((k) => RUN_OPTION_KEYS.includes(k));
  if (clash.length) {
    const flags = clash.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(", ");
    const many = clash.length > 1;
    throw new TaskError(
      `task ${task.name}: ${flags} ${many ? "are" : "is"} a run option of every task; rename the task's option${many ? "s" : ""}`,
    );
  }
  const unknown = (task.positionals ?? []).filter((k) => !(task.options?.shape && k in task.options.shape));
  if (unknown.length) throw new TaskError(`task ${task.name}: positionals name no option: ${unknown.join(", ")}`);
  return task;
}

/** Where a task runs for these options. */
export function scopeOf(task: Pick<TaskDef<any>, "scope">, options: Record<string, unknown>): "host" | "local" {
  return typeof task.scope === "function" ? task.scope(options) : (task.scope ?? "host");
}

export interface PluginDef {
  /** shown as the group title in `flow list` */
  name: string;
  description?: string;
  tasks: TaskDef<any>[];
}

export function definePlugin(plugin: PluginDef): PluginDef {
  return plugin;
}

/**
 * What a provider says about its boxes, as data. The loader reads `user` (the login user when neither
 * the host nor ~/.ssh/config names one); dataRootOf reads `dataRoot`. The providers in providers/
 * derive these from their one profile (providers/shared/define.ts).
 */
export interface ProviderDefaults {
  /** login user of a fresh box */
  user?: string;
  /** where models, nodes and workflows live */
  dataRoot?: string;
  /** block device of the data volume, where the provider attaches one */
  volume?: string;
  [key: string]: unknown;
}

export interface ProviderDef extends PluginDef {
  /** what differs between providers, as data (login user, data root, ...) */
  defaults?: ProviderDefaults;
}

export function defineProvider(provider: ProviderDef): ProviderDef {
  return provider;
}

export class TaskError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TaskError";
  }
}
