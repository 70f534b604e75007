// Runs one task on every selected host, in parallel up to a limit, and collects a recap.
import { hostname, userInfo } from "node:os";
import type { z } from "zod";
import type { HostSpec, SshOptions } from "./hosts.ts";
import type { LoadedFlow } from "./flowfile/load.ts";
import type { HostRecap, Reporter, RunEvent } from "./events.ts";
import type { EnsureSpec, StepResult, StepStatus, TaskContext, TaskDef } from "./task.ts";
import { TaskError } from "./task.ts";
import type { ExecOptions, ExecResult, Transport } from "./transport/types.ts";
import { UnreachableError } from "./transport/types.ts";
import { LocalTransport } from "./transport/local.ts";
import { LOCAL_HOST } from "./select.ts";
import { redactor } from "./secrets.ts";
import { acquireLock, parseLockDetails, releaseLock, type LockDetails } from "./commands/lock.ts";
import { readHostRecordCommand } from "./commands/host-record.ts";
import { runRemoteScript } from "./remote-script.ts";
import { formatZodError } from "./flowfile/schema.ts";
import { onInterrupt } from "./cleanup.ts";
import { machineId } from "./machine-id.ts";

export interface RunRequest {
  flow: LoadedFlow;
  tasks: Map<string, TaskDef<any>>;
  task: TaskDef<any>;
  /** already validated by the task's schema */
  options: Record<string, unknown>;
  rest: string[];
  hosts: HostSpec[];
  secrets: Record<string, string>;
  dryRun: boolean;
  /** a destructive task's go-ahead (--yes or the terminal's answer) */
  confirmed?: boolean;
  /** emit a debug line for each command run on a host */
  verbose?: boolean;
  concurrency: number;
  lockWaitSeconds: number;
  acceptNewHostKey: boolean;
  reporter: Reporter;
  /** the terminal's streams for a passthrough task (see TaskContext.raw) */
  raw?: TaskContext["raw"];
  /** for tests: how to reach a host */
  connect?: (host: HostSpec) => Transport;
}

export async function runTask(req: RunRequest): Promise<HostRecap[]> {
  const hosts = req.task.scope === "local" ? [LOCAL_HOST] : req.hosts;
  req.reporter.start(req.task.name, hosts.map((h) => h.name), req.dryRun);
  const recaps: HostRecap[] = [];
  let next = 0;
  const worker = async () => {
    while (next < hosts.length) {
      const host = hosts[next++]!;
      recaps.push(await runOnHost(req, host));
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(req.concurrency, hosts.length)) }, worker));
  const order = new Map(hosts.map((h, i) => [h.name, i]));
  recaps.sort((a, b) => order.get(a.host)! - order.get(b.host)!);
  await req.reporter.finish(recaps);
  return recaps;
}

export function sshOptionsFor(req: Pick<RunRequest, "flow" | "acceptNewHostKey">, host: HostSpec): SshOptions {
  const s = req.flow.config.settings;
  return {
    knownHostsFile: host.knownHostsFile ?? s.knownHostsFile ?? `${process.env.HOME ?? ""}/.ssh/known_hosts`,
    acceptNewHostKey: req.acceptNewHostKey,
    connectTimeoutMs: s.connectTimeoutMs,
    keepaliveIntervalMs: s.keepaliveIntervalMs,
    sshConfigFile: s.sshConfigFile === undefined ? `${process.env.HOME ?? ""}/.ssh/config` : s.sshConfigFile,
    maxChannels: 8,
  };
}

// One import promise for every host: concurrent first imports of a module may otherwise see it half-loaded.
let sshModule: Promise<typeof import("./transport/ssh.ts")> | undefined;

async function defaultConnect(req: RunRequest, host: HostSpec): Promise<Transport> {
  if (host.local) return new LocalTransport();
  const { SshTransport } = await (sshModule ??= import("./transport/ssh.ts"));
  return new SshTransport({ ...host, label: host.name }, sshOptionsFor(req, host));
}

async function runOnHost(req: RunRequest, host: HostSpec): Promise<HostRecap> {
  const started = Date.now();
  const recap: HostRecap = { host: host.name, outcome: "ok", ok: 0, changed: 0, skipped: 0, failed: 0, ms: 0, data: {} };
  // Every event is redacted here, as a value before any reporter encodes it: titles, notes, data.
  const emit = (raw: RunEvent) => {
    const e = redactor.redactValue(raw);
    if (e.type === "step-end") recap[e.status]++;
    if (e.type === "data") Object.assign(recap.data, e.data);
    req.reporter.event(e);
  };
  emit({ type: "host-start", host: host.name });
  let transport: Transport | undefined;
  let lock: LockDetails | undefined;
  let forget: () => unknown = () => undefined;
  try {
    transport = req.connect ? req.connect(host) : await defaultConnect(req, host);
    try {
      await transport.connect();
    } catch (err) {
      recap.outcome = "unreachable";
      recap.error = err instanceof UnreachableError ? err.message : `${host.name}: cannot connect: ${(err as Error).message}`;
      return recap;
    }
    // What flow recorded on this host in earlier runs (e.g. the data root setup chose); the flowfile wins.
    const recorded = host.local ? {} : await readHostRecord(transport, req.flow.config.settings.remoteDir);
    const ctx = new HostContext(req, { ...host, data: { ...recorded, ...host.data } }, transport, emit);
    if (req.task.lock !== false && !req.dryRun && req.task.scope !== "local") {
      lock = await takeLock(ctx, req);
      const held = lock;
      const t = transport;
      forget = onInterrupt(() => t.exec(releaseLock(req.flow.config.settings.remoteDir, held)));
    }
    await req.task.run(ctx, req.options);
    if (recap.failed > 0) recap.outcome = "failed";
  } catch (err) {
    recap.outcome = "failed";
    recap.error = err instanceof TaskError || err instanceof Error ? err.message : String(err);
  } finally {
    forget();
    if (lock && transport) {
      await transport.exec(releaseLock(req.flow.config.settings.remoteDir, lock)).catch(() => undefined);
    }
    await transport?.close().catch(() => undefined);
    recap.ms = Date.now() - started;
    if (recap.error) recap.error = redactor.redact(recap.error);
    emit({ type: "host-end", host: host.name, outcome: recap.outcome, error: recap.error, ms: recap.ms });
  }
  return recap;
}

async function takeLock(ctx: HostContext, req: RunRequest): Promise<LockDetails> {
  const details: LockDetails = {
    holder: `${userInfo().username}@${hostname()}`,
    machine: machineId(),
    task: req.task.name,
    since: new Date().toISOString(),
    pid: process.pid,
  };
  const deadline = Date.now() + req.lockWaitSeconds * 1000;
  let waited = false;
  for (;;) {
    const r = await ctx.transport.exec(acquireLock(req.flow.config.settings.remoteDir, details));
    if (r.code === 0) return details;
    const held = parseLockDetails(r.stdout);
    if (held && held.machine === details.machine && !processAlive(held.pid)) {
      // Our own machine's run that died without releasing: its pid is gone, so the lock is stale.
      ctx.warn(`removing a stale lock of ${held.holder} pid ${held.pid} (task ${held.task}), no longer running`);
      await ctx.transport.exec(releaseLock(req.flow.config.settings.remoteDir, held));
      continue;
    }
    const who = held ? `${held.holder} (task ${held.task}, pid ${held.pid}, since ${held.since})` : "an unknown holder";
    if (Date.now() >= deadline) {
      throw new TaskError(
        `${ctx.host.name} is locked by ${who}${waited ? ` after waiting ${req.lockWaitSeconds}s` : ""}; ` +
          `wait with --lock-wait SECONDS, or release it with: flow run lock:release --host ${ctx.host.name}`,
      );
    }
    if (!waited) ctx.log(`waiting for the lock held by ${who}`);
    waited = true;
    await new Promise((r) => setTimeout(r, Math.min(1000, Math.max(50, deadline - Date.now()))));
  }
}

async function readHostRecord(t: Transport, remoteDir: string): Promise<Record<string, unknown>> {
  const r = await t.exec(readHostRecordCommand(remoteDir));
  try {
    const v = JSON.parse(r.stdout.trim() || "{}");
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

class HostContext implements TaskContext {
  readonly dryRun: boolean;
  readonly rest: string[];
  readonly raw: TaskContext["raw"];
  readonly confirmed: boolean;
  readonly secrets: Readonly<Record<string, string>>;
  readonly flow;
  readonly projectDir: string;

  constructor(
    private readonly req: RunRequest,
    readonly host: HostSpec,
    readonly transport: Transport,
    private readonly emitEvent: (e: RunEvent) => void,
  ) {
    this.dryRun = req.dryRun;
    this.rest = req.rest;
    this.raw = req.raw;
    this.confirmed = !!req.confirmed;
    this.secrets = req.secrets;
    this.flow = req.flow.config;
    this.projectDir = req.flow.projectDir;
  }

  async step(title: string, body: () => Promise<StepResult | StepStatus | void>): Promise<StepStatus> {
    const started = Date.now();
    this.emitEvent({ type: "step-start", host: this.host.name, step: title });
    try {
      const r = await body();
      const result: StepResult = typeof r === "string" ? { status: r } : r ?? { status: "ok" };
      this.emitEvent({
        type: "step-end", host: this.host.name, step: title, status: result.status,
        note: result.note, ms: Date.now() - started, dryRun: this.dryRun,
      });
      return result.status;
    } catch (err) {
      const message = (err as Error).message ?? String(err);
      this.emitEvent({ type: "step-end", host: this.host.name, step: title, status: "failed", note: message, ms: Date.now() - started, dryRun: this.dryRun });
      throw new TaskError(`${title}: ${message}`);
    }
  }

  ensure(spec: EnsureSpec): Promise<StepStatus> {
    return this.step(spec.title, async () => {
      const fact = await spec.check();
      const ok = typeof fact === "boolean" ? fact : fact.ok;
      const note = typeof fact === "boolean" ? undefined : fact.note;
      if (ok) return { status: "ok", note };
      if (this.dryRun) return { status: "changed", note: `would change${note ? `: ${note}` : ""}` };
      const applied = await spec.apply();
      return { status: "changed", note: applied || note };
    });
  }

  async exec(command: string, opts?: ExecOptions): Promise<ExecResult> {
    if (!this.req.verbose) return this.transport.exec(command, opts);
    const started = Date.now();
    this.emitEvent({ type: "log", host: this.host.name, level: "debug", message: `$ ${opts?.sudo ? "sudo " : ""}${command}` });
    const r = await this.transport.exec(command, opts);
    this.emitEvent({ type: "log", host: this.host.name, level: "debug", message: `exit ${r.code ?? r.signal} in ${Date.now() - started} ms` });
    return r;
  }

  async sh(command: string, opts?: ExecOptions): Promise<string> {
    const r = await this.exec(command, opts);
    if (r.code !== 0) {
      const why = (r.stderr.trim() || r.stdout.trim()).split("\n").slice(-5).join("\n");
      throw new TaskError(`command exited ${r.code ?? r.signal}${why ? `: ${why}` : ""}`);
    }
    return r.stdout;
  }

  log(message: string): void {
    this.emitEvent({ type: "log", host: this.host.name, level: "info", message });
  }

  warn(message: string): void {
    this.emitEvent({ type: "log", host: this.host.name, level: "warn", message });
  }

  progress(message: string): void {
    this.emitEvent({ type: "progress", host: this.host.name, message });
  }

  emit(data: Record<string, unknown>): void {
    this.emitEvent({ type: "data", host: this.host.name, data });
  }

  async runTask(name: string, options: Record<string, unknown> = {}): Promise<void> {
    const task = this.req.tasks.get(name);
    if (!task) throw new TaskError(`no task named ${name}`);
    const parsed = task.options ? task.options.safeParse(options, { reportInput: true }) : { success: true as const, data: {} };
    if (!parsed.success) throw new TaskError(`${name}: bad options:\n${formatZodError((parsed as { error: z.ZodError }).error)}`);
    await task.run(this, parsed.data);
  }

  remoteScript(script: string, opts: { key: string; job?: unknown; onProgress?: (event: Record<string, unknown>) => void }) {
    return runRemoteScript(this, script, opts);
  }
}
