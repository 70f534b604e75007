// Tier "ops": look at the fleet (status, logs) and run ad-hoc commands on it.
//
// status: one row per host, gathered by ONE remote command per host (lib/facts/status.ts): the
// machine, GPUs, the comfyui container, comfyui-api's /health /ready /docs/json and ComfyUI's
// /queue asked with curl on the host, node packs, the models volume; compared here with what the
// project expects (workflows/ files, the models workflow_templates/ need). Exit code: 0 when every
// host that could be reached reported; a host that cannot be reached is a row saying so, not a
// failure. 1 when a reached host could not report, or when no host could be reached at all.
import { existsSync, readdirSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { z } from "zod";
import { definePlugin, defineTask, TaskError, type TaskContext } from "../lib/index.ts";
import {
  parseStatus,
  splitSections,
  statusCommand,
  statusMarker,
  type HostStatus,
  type ModelsStatus,
  type StatusRow,
} from "../lib/facts/status.ts";
import { cellWidths, fleetTable, rowText, statusCells, statusNotes } from "../lib/facts/status-view.ts";
import type { HostRecap } from "../lib/events.ts";
import { dataRootOf } from "../lib/host-data.ts";
import { comfyLayout } from "../lib/comfy/deploy.ts";
import { endpointOf, isWorkflowFile } from "../lib/comfy/comfyui-api-files.ts";
import { modelDeps } from "../lib/comfy/model-deps.ts";
import { UnreachableError } from "../lib/transport/types.ts";
// the models tier's pure planning: what the workflows need, what a scan of the volume holds
import { findPresent, indexFiles, neededModels, parseScan, type Needed, type Scan, type WorkflowDeps } from "./models/plan.ts";
import { scanCommand } from "./models/commands.ts";
import { parseProxyStatus, proxyCell, proxyNotes, proxyStatusCommand } from "./proxy/status.ts";
import { authOn } from "./proxy/settings.ts";
import { readWorkflowFile, TEMPLATES_DIR, workflowFiles } from "./shared/workflow-files.ts";
import { interruptible, logsTask } from "./logs.ts";

export const WORKFLOWS_DIR = "workflows";

const statusOptions = z.object({
  path: z.string().optional().describe("folder whose disk to report (default: the host's data root)"),
  dataRoot: z.string().optional().describe("data root on the host (default: the host's or its provider's)"),
  container: z.string().optional().describe("the container running ComfyUI and comfyui-api (default: comfyui)"),
  timeout: z.number().int().positive().max(60).optional().describe("seconds each HTTP request on the host may take (default: 3)"),
  workflowsDir: z.string().optional().describe("the project's comfyui-api workflows, to compare with what is served (default: workflows/)"),
  watch: z
    .number()
    .positive()
    .optional()
    .describe("ask again every N seconds until Ctrl-C (or --count): live on a terminal, a line per host and round otherwise"),
  count: z.number().int().positive().optional().describe("with --watch: stop after N rounds"),
});
type StatusOptions = z.output<typeof statusOptions>;

// ---------- what the project expects (read once per run) ----------

/**
 * `workflows/qwen/x.ts` -> `qwen/x`: what comfyui-api serves at POST /workflow/qwen/x (the rules of
 * lib/comfy/comfyui-api-files.ts, as api:workflows sends them; .ts and .js of one name count once).
 */
export function workflowEndpoints(dir: string): string[] | null {
  if (!existsSync(dir)) return null;
  const out = new Set<string>();
  const walk = (d: string, prefix: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name.startsWith(".") || e.name === "node_modules") continue;
      const rel = prefix + e.name;
      if (e.isDirectory()) walk(join(d, e.name), `${rel}/`);
      else if (isWorkflowFile(rel)) out.add(endpointOf(rel).slice("/workflow/".length));
    }
  };
  walk(dir, "");
  return [...out].sort();
}

interface ModelNeeds {
  deps: WorkflowDeps[];
  needed: Needed[];
  /** templates that could not be read */
  bad: string[];
}

interface ProjectFacts {
  expected: string[] | null;
  models: ModelNeeds | null;
}

const projectFacts = new Map<string, Promise<ProjectFacts>>();

function readProject(ctx: TaskContext, workflowsDir = WORKFLOWS_DIR): Promise<ProjectFacts> {
  const wfDir = isAbsolute(workflowsDir) ? workflowsDir : resolve(ctx.projectDir, workflowsDir);
  const key = `${ctx.projectDir}\0${wfDir}`;
  let p = projectFacts.get(key);
  if (!p) {
    p = (async () => {
      const expected = workflowEndpoints(wfDir);
      let models: ModelNeeds | null = null;
      let files: ReturnType<typeof workflowFiles> = [];
      try {
        files = workflowFiles(ctx.projectDir);
      } catch {
        files = []; // no workflow_templates/: no models to count
      }
      if (files.length) {
        const deps: WorkflowDeps[] = [];
        const bad: string[] = [];
        for (const f of files) {
          try {
            // no model-list.json here: status stays offline; folders come from the loaders themselves
            deps.push({ workflow: f.name, models: modelDeps((await readWorkflowFile(f)).wf, { userModels: ctx.flow.models }).models });
          } catch {
            bad.push(f.name);
          }
        }
        models = { deps, needed: neededModels(deps, { userModels: ctx.flow.models }).needed.filter((n) => !n.optional), bad };
      }
      return { expected, models };
    })();
    projectFacts.set(key, p);
  }
  return p;
}

/** Ready / missing over the distinct files the workflows need (a file present under any alias folder counts; its size is not checked). */
export function modelsStatus(needs: ModelNeeds, scan: Scan | null): ModelsStatus {
  const from = `${TEMPLATES_DIR}/`;
  const unread = needs.bad.length ? `unreadable: ${needs.bad.join(", ")}` : undefined;
  if (!scan)
    return {
      from,
      needed: needs.needed.length,
      ready: 0,
      missing: [],
      workflows: { total: needs.deps.length, ready: 0 },
      error: "the models volume was not scanned",
    };
  const idx = indexFiles(scan.files);
  const missing = needs.needed.filter((n) => !findPresent(idx, n)).map((n) => `${n.folder}/${n.name}`);
  const ready = needs.deps.filter((w) =>
    w.models.every((d) => d.optional || !d.folder || findPresent(idx, { folder: d.folder, name: d.name })),
  ).length;
  return {
    from,
    needed: needs.needed.length,
    ready: needs.needed.length - missing.length,
    missing,
    workflows: { total: needs.deps.length, ready },
    ...(scan.downloadRunning ? { downloading: true } : {}),
    ...(unread ? { error: unread } : {}),
  };
}

// ---------- one host's status ----------

/** Ask the host (one command), then compare with the project. Throws UnreachableError when the connection is gone. */
export async function collectStatus(ctx: TaskContext, o: Partial<StatusOptions> = {}): Promise<HostStatus> {
  const dataRoot = dataRootOf(ctx, o.dataRoot);
  const path = o.path ?? dataRoot;
  const layout = comfyLayout(dataRoot);
  const project = await readProject(ctx, o.workflowsDir);
  const marker = statusMarker();
  const container = o.container ?? "comfyui";
  const extra = project.models?.needed.length ? [{ name: "models", command: scanCommand(layout.models, ctx.flow.settings.remoteDir) }] : [];
  // the proxy in front of comfyui-api, when the flow has one: up, auth, TLS, certificate expiry
  const withProxy = ctx.hasTask("api:proxy");
  if (withProxy) extra.push({ name: "proxy", command: proxyStatusCommand(o.timeout ?? 3) });
  const r = await ctx.exec(
    statusCommand(path, { marker, container, customNodes: layout.customNodes, timeoutSeconds: o.timeout ?? 3, extra }),
  );
  const sections = splitSections(r.stdout, marker);
  if (!sections.has("os"))
    throw new TaskError(
      `the status command failed (exit ${r.code ?? r.signal}): ${(r.stderr || r.stdout).trim().split("\n").slice(-3).join(" ")}`,
    );
  const s = parseStatus(r.stdout, path, { marker, container });
  if (s.workflows && project.expected) {
    const served = new Set(s.workflows.served);
    const expected = new Set(project.expected);
    s.workflows.expected = project.expected;
    s.workflows.missing = project.expected.filter((w) => !served.has(w));
    s.workflows.unexpected = s.workflows.served.filter((w) => !expected.has(w));
  }
  if (withProxy) {
    const p = parseProxyStatus(sections.get("proxy") ?? "");
    const alerts = proxyNotes(p);
    if (p.state === null && authOn(ctx.host))
      alerts.push("proxy: none on this box, so comfyui-api has no token in front of it (flow run api:proxy)");
    s.proxy = { cell: proxyCell(p), facts: p, alerts };
  }
  if (!project.models) s.models = null;
  else if (!project.models.needed.length) s.models = modelsStatus(project.models, { files: [], downloadRunning: false });
  else {
    const raw = sections.get("models");
    s.models = modelsStatus(project.models, raw === undefined ? null : parseScan(raw));
  }
  return s;
}

/** The row of a host: its status, or why it could not be had when the connection dropped on the way. */
async function statusRow(ctx: TaskContext, o: Partial<StatusOptions>): Promise<StatusRow> {
  try {
    return await collectStatus(ctx, o);
  } catch (e) {
    if (e instanceof UnreachableError) return { reachable: false, error: e.message };
    throw e;
  }
}

function oneLine(s: StatusRow): string {
  if (!s.reachable) return `unreachable: ${s.error}`;
  const c = statusCells(s);
  return (
    `${s.os}, load ${c.load}, ${c["disk free"]} free on ${s.disk?.path ?? "?"}, comfyui ${c.comfyui}, ` +
    `api ${c.api}${s.proxy ? ` proxy ${c.proxy}` : ""} health ${c.health} ready ${c.ready}, queue ${c.queue}, ` +
    `workflows ${c.workflows}, models ${c.models}`
  );
}

// --watch: every host's latest row, so the live lines line up across hosts
const boards = new WeakMap<object, Map<string, { ctx: TaskContext; row: StatusRow }>>();
const live = () => !!process.stdout.isTTY && (process.stdout.columns ?? 0) > 20 && !process.env.CI;

function show(ctx: TaskContext, row: StatusRow): void {
  let board = boards.get(ctx.flow);
  if (!board) boards.set(ctx.flow, (board = new Map()));
  board.set(ctx.host.name, { ctx, row });
  const widths = cellWidths([...board.values()].flatMap((e) => (e.row.reachable ? [statusCells(e.row)] : [])));
  // a terminal: each host's line is redrawn in place; otherwise one line per host and round
  if (live()) for (const e of board.values()) e.ctx.progress(rowText(e.row, widths));
  else ctx.log(`${new Date().toISOString().slice(11, 19)} ${rowText(row, widths)}`);
}

async function watch(ctx: TaskContext, o: StatusOptions, every: number): Promise<void> {
  const stop = interruptible();
  try {
    await ctx.step(`status every ${every}s${o.count ? `, ${o.count} times` : " (Ctrl-C ends)"}`, async () => {
      let rounds = 0;
      let row: StatusRow | undefined;
      let warned = "";
      for (;;) {
        const started = Date.now();
        row = await statusRow(ctx, o);
        rounds++;
        ctx.emit({ status: row, round: rounds });
        show(ctx, row);
        const notes = row.reachable ? statusNotes(row).join("\n") : "";
        if (notes && notes !== warned) for (const n of statusNotes(row as HostStatus)) ctx.warn(n);
        warned = notes || warned;
        if (o.count && rounds >= o.count) break;
        if (await stop.sleep(Math.max(0, every * 1000 - (Date.now() - started)))) break;
      }
      boards.get(ctx.flow)?.delete(ctx.host.name);
      const note = `${rounds} round${rounds === 1 ? "" : "s"}; last: ${oneLine(row!)}`;
      return { status: row!.reachable ? "ok" : "failed", note };
    });
  } finally {
    stop.done();
  }
}

export function statusExitCode(recaps: HostRecap[]): number {
  const reached = recaps.filter((r) => r.outcome !== "unreachable");
  if (!reached.length) return 1;
  return reached.every((r) => r.outcome === "ok" || (r.data.status as StatusRow | undefined)?.reachable === false) ? 0 : 1;
}

export function statusTable(recaps: HostRecap[]): string {
  return fleetTable(
    recaps.map((r) => {
      const row = r.data.status as StatusRow | undefined;
      if (row) return { host: r.host, row };
      if (r.outcome === "unreachable") return { host: r.host, row: { reachable: false as const, error: r.error ?? "no answer" } };
      return { host: r.host, error: `failed: ${r.error ?? "no status"}` };
    }),
  );
}

export const status = defineTask({
  name: "status",
  description:
    "OS, uptime, load, GPUs, disk and the comfyui container of each host: comfyui-api version, /health, /ready, queue, " +
    "workflows served, node packs, models; warns about ports open to the world",
  lock: false,
  options: statusOptions,
  async run(ctx, opts) {
    if (opts.count && !opts.watch) throw new TaskError("--count goes with --watch N");
    if (opts.watch) return watch(ctx, opts, opts.watch);
    await ctx.step("status", async () => {
      const row = await statusRow(ctx, opts);
      ctx.emit({ status: row });
      if (!row.reachable) return { status: "failed", note: oneLine(row) };
      for (const n of statusNotes(row)) ctx.warn(n);
      return { status: "ok", note: oneLine(row) };
    });
  },
  summarize: statusTable,
  // a report, not a check: unreachable hosts are rows (see the top of this file)
  exitCode: statusExitCode,
});

export const exec = defineTask({
  name: "exec",
  description: "Run a shell command on every selected host: flow run exec --hosts gpus -- nvidia-smi",
  lock: false,
  takesRest: true,
  passthrough: true,
  options: z.object({ sudo: z.boolean().default(false).describe("run it as root (sudo -n) when the login user is not") }),
  async run(ctx, opts) {
    // Words after -- form one command line, joined by spaces, as `ssh host cmd` does.
    const command = ctx.rest.join(" ");
    if (!command.trim()) throw new Error("exec needs a command after --");
    await ctx.step(command.length > 60 ? `${command.slice(0, 57)}...` : command, async () => {
      if (ctx.dryRun) return { status: "skipped", note: "dry run: not run" };
      // One host: the bytes go straight through, so the output can be piped as from `ssh host cmd`.
      const raw = ctx.raw;
      const r = await ctx.exec(command, {
        sudo: opts.sudo,
        onStdout: raw && ((c) => raw.stdout(c)),
        onStderr: raw && ((c) => raw.stderr(c)),
      });
      if (!raw) {
        const out = [r.stdout.trimEnd(), r.stderr.trimEnd() && `stderr:\n${r.stderr.trimEnd()}`].filter(Boolean).join("\n");
        if (out) ctx.log(out);
      }
      ctx.emit({ exec: { code: r.code, signal: r.signal ?? null, ...(raw ? {} : { stdout: r.stdout, stderr: r.stderr }) } });
      if (r.code !== 0) return { status: "failed", note: `exit ${r.code ?? r.signal}` };
      return { status: "ok", note: "exit 0" };
    });
  },
  // As ssh: the command's own exit code, 255 when the host could not be reached.
  exitCode(recaps) {
    const [r] = recaps;
    if (!r || recaps.length > 1) return recaps.every((x) => x.outcome === "ok") ? 0 : 1;
    if (r.outcome === "unreachable") return 255;
    const code = (r.data.exec as { code?: number | null } | undefined)?.code;
    return typeof code === "number" ? code : r.outcome === "ok" ? 0 : 1;
  },
});

/** The export carries the status of the host as `status` reports it (defaults). */
export const logs = logsTask((ctx, container) => statusRow(ctx, { container }));

export const ops = () =>
  definePlugin({ name: "ops", description: "status, logs and ad-hoc commands for the fleet", tasks: [status, logs, exec] });
