// What a task body sees on one host (TaskContext): steps and ensure, exec/sh with --verbose debug
// lines, log/warn/progress/data events, nested tasks, remote scripts.
import type { z } from "zod";
import type { HostSpec } from "../hosts.ts";
import type { RunEvent } from "../events.ts";
import { formatZodError } from "../flowfile/schema.ts";
import { runRemoteScript } from "../remote-script.ts";
import { TaskError, type EnsureSpec, type StepResult, type StepStatus, type TaskContext, type TaskTally } from "../task.ts";
import type { ExecOptions, ExecResult, Transport } from "../transport/types.ts";
import type { RunRequest } from "./request.ts";

export class HostContext implements TaskContext {
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
    /** the host's event sink (it redacts and counts; see host-run.ts) */
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

  /** steps so far on this host, by status: runTask's typed result is the difference it made */
  private readonly tally: TaskTally = { ok: 0, changed: 0, skipped: 0, failed: 0 };

  async step(title: string, body: () => Promise<StepResult | StepStatus | void>): Promise<StepStatus> {
    const status = await this.reportStep(title, body);
    this.tally[status]++;
    return status;
  }

  private async reportStep(title: string, body: () => Promise<StepResult | StepStatus | void>): Promise<StepStatus> {
    const started = Date.now();
    const host = this.host.name;
    this.emitEvent({ type: "step-start", host, step: title });
    try {
      const r = await body();
      const result: StepResult = typeof r === "string" ? { status: r } : (r ?? { status: "ok" });
      this.emitEvent({
        type: "step-end",
        host,
        step: title,
        status: result.status,
        note: result.note,
        ms: Date.now() - started,
        dryRun: this.dryRun,
      });
      return result.status;
    } catch (err) {
      const message = (err as Error).message ?? String(err);
      this.emitEvent({
        type: "step-end",
        host,
        step: title,
        status: "failed",
        note: message,
        ms: Date.now() - started,
        dryRun: this.dryRun,
      });
      this.tally.failed++;
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
    const debug = (message: string) => this.emitEvent({ type: "log", host: this.host.name, level: "debug", message });
    debug(`$ ${opts?.sudo ? "sudo " : ""}${command}`);
    const r = await this.transport.exec(command, opts);
    debug(`exit ${r.code ?? r.signal} in ${Date.now() - started} ms`);
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

  hasTask(name: string): boolean {
    return this.req.tasks.has(name);
  }

  async runTask(name: string, options: Record<string, unknown> = {}): Promise<TaskTally> {
    const task = this.req.tasks.get(name);
    if (!task) throw new TaskError(`no task named ${name}`);
    const parsed = task.options ? task.options.safeParse(options, { reportInput: true }) : { success: true as const, data: {} };
    if (!parsed.success) throw new TaskError(`${name}: bad options:\n${formatZodError((parsed as { error: z.ZodError }).error)}`);
    const before = { ...this.tally };
    await task.run(this, parsed.data);
    const t = this.tally;
    return {
      ok: t.ok - before.ok,
      changed: t.changed - before.changed,
      skipped: t.skipped - before.skipped,
      failed: t.failed - before.failed,
    };
  }

  remoteScript(script: string, opts: { key: string; job?: unknown; onProgress?: (event: Record<string, unknown>) => void }) {
    return runRemoteScript(this, script, opts);
  }
}
