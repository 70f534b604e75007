// api:workflows on one host. In order, and nothing changes on the host before the last checks:
//   1. the project's workflows folder, read (names, load rules: ./local.ts)
//   2. one round trip for the host's facts (./commands.ts factsCommand)
//   3. the type-check against the comfyui-api version the host runs (./typecheck.ts)
//   4. what the workflows need on the host: model folders and files, node classes
//   5. the folder made equal: changed files in one tar over stdin, removed ones (and their .js) deleted
//   6. one restart when the folder changed since comfyui-api started, then a wait for /ready
//   7. api:verify
import { TaskError, type TaskContext } from "../../lib/task.ts";
import { comfyLayout } from "../../lib/comfy/deploy.ts";
import { dataRootOf } from "../../lib/host-data.ts";
import { describePlan, planChanges, planSync, tarArchive, type SyncPlan } from "../../lib/comfy/comfyui-api-files.ts";
import { hostProblems } from "../../lib/comfy/comfyui-api-deps.ts";
import { loadApiSources } from "./api-source.ts";
import { factsCommand, parseFacts, restartCommand, restartDue, syncCommand, tailLogCommand, type Facts } from "./commands.ts";
import { analyzeCached, checkLocal, readLocalWorkflows, workflowsDirOf, type LocalWorkflows } from "./local.ts";
import { containerOf, DEFAULT_API_VERSION, type ComfyuiApiOptions } from "./options.ts";
import { runVerify } from "./verify-run.ts";
import { staleEndpoints, staleMessage } from "../workflow/stale.ts";
import type { WorkflowsTaskOptions } from "./workflows.ts";

const root = { sudo: true } as const;

export interface SyncResult {
  plan: SyncPlan;
  /** files were sent or removed (or would be, in a dry run) */
  changed: boolean;
  restarted: boolean;
}

/** The whole task; `deploy` may call it with { restart: false, verify: false } and restart once itself. */
export async function syncWorkflows(ctx: TaskContext, o: Partial<WorkflowsTaskOptions>, plugin: ComfyuiApiOptions): Promise<SyncResult> {
  const container = containerOf(plugin);
  const layout = comfyLayout(dataRootOf(ctx, o.dataRoot));
  const marker = `${layout.root}/comfyui-api/workflows.changed`;

  let local!: LocalWorkflows;
  await ctx.step("workflows in the project", async () => {
    local = readLocalWorkflows(ctx.projectDir, workflowsDirOf(ctx.projectDir, o.dir, plugin.workflowsDir));
    for (const f of local.ignored) ctx.warn(`${local.shown}${f}: not a workflow (.ts or .js), not sent`);
    const endpoints = local.files.map((f) => ({ shown: `${local.shown}${f.rel}`, text: f.data.toString("utf8") }));
    for (const s of staleEndpoints(ctx.projectDir, endpoints)) ctx.warn(staleMessage(s));
    return { status: "ok", note: `${local.files.length} in ${local.shown}` };
  });
  const analysed = local.files.map((f) => analyzeCached(f));
  const classes = [...new Set(analysed.flatMap((w) => w.classTypes))].sort();

  let facts!: Facts;
  await ctx.step(`host: ${layout.workflows}, models, container ${container}`, async () => {
    facts = parseFacts(
      await ctx.sh(factsCommand({ container, workflowsDir: layout.workflows, modelsDir: layout.models, marker, classes }), root),
    );
    if (!facts.container)
      throw new TaskError(`no container ${container} on the host: set the host up first (setup:<provider>, or comfyui:up)`);
    const api =
      facts.health?.status === 200
        ? `comfyui-api ${facts.health.version ?? "?"}`
        : `comfyui-api not answering (${facts.health ? `HTTP ${facts.health.status}` : "no address"})`;
    return { status: "ok", note: `${facts.files.size} files there; container ${facts.container.state}; ${api}` };
  });

  const hostVersion = facts.health?.status === 200 && /^\d+\.\d+\.\d+/.test(facts.health.version ?? "") ? facts.health.version! : undefined;
  const version = hostVersion ?? plugin.version ?? DEFAULT_API_VERSION;
  await ctx.step(`type-check against comfyui-api ${version}`, async () => {
    const api = await loadApiSources({ version, settings: plugin.source, offline: o.offline, projectDir: ctx.projectDir });
    for (const w of api.warnings) ctx.warn(w);
    const check = checkLocal(local, api);
    if (check.problems.length) {
      throw new TaskError(
        `${check.problems.length} problem${check.problems.length === 1 ? "" : "s"}; nothing was changed on the host:\n` +
          `${check.problems.join("\n")}`,
      );
    }
    return { status: "ok", note: `${local.files.length} workflow${local.files.length === 1 ? "" : "s"} pass (types from ${api.origin})` };
  });

  await ctx.step("what the workflows need on the host", async () => {
    if (o.deps === "skip") return { status: "skipped", note: "--deps skip" };
    const problems = analysed.flatMap((w) =>
      hostProblems(w, { models: facts.models, classes: facts.classes }).map((p) => `${w.rel}: ${p}`),
    );
    const asked = classes.filter((c) => facts.classes.has(c)).length;
    if (classes.length && asked < classes.length)
      ctx.warn(`node classes not checked: ComfyUI did not answer${facts.comfy ? ` at ${facts.comfy}` : ""}`);
    const checked = `${analysed.reduce((n, w) => n + w.modelFolders.length + w.modelFiles.length, 0)} model needs, ${asked} node classes`;
    if (!problems.length) return { status: "ok", note: checked };
    if (o.deps === "warn") {
      for (const p of problems) ctx.warn(p);
      return { status: "ok", note: `${problems.length} missing (--deps warn)` };
    }
    throw new TaskError(
      `the host lacks what ${problems.length === 1 ? "a workflow needs" : "workflows need"}; ` +
        `nothing was changed on the host (--deps warn sends them anyway):\n${problems.join("\n")}`,
    );
  });

  const plan = planSync(local.shas, facts.files);
  await ctx.ensure({
    title: `workflows in ${layout.workflows}`,
    check: async () => (planChanges(plan) ? { ok: false, note: describePlan(plan, false) } : { ok: true, note: describePlan(plan) }),
    apply: async () => {
      const byRel = new Map(local.files.map((f) => [f.rel, f.data]));
      const tar = tarArchive(plan.upload.map((rel) => ({ path: rel, data: byRel.get(rel)! })));
      await ctx.sh(
        syncCommand({
          workflowsDir: layout.workflows,
          stageParent: `${layout.root}/comfyui-api`,
          upload: plan.upload,
          remove: plan.remove,
          marker,
        }),
        { ...root, stdin: tar },
      );
      return describePlan(plan);
    },
  });
  const changed = planChanges(plan) > 0;

  // due: this run changed the folder, or an earlier one did (--no-restart, a failed restart) and
  // comfyui-api has not started since
  const due = changed || restartDue(facts);
  let restarted = false;
  if (o.restart === false) {
    await ctx.step("comfyui-api restarted to load the workflows", async () => ({
      status: "skipped",
      note: due ? "restart pending (--no-restart): comfyui-api still serves the old set" : "nothing changed",
    }));
  } else {
    await ctx.ensure({
      title: "comfyui-api restarted to load the workflows",
      check: async () =>
        due
          ? { ok: false, note: changed ? "the folder changed" : "changed earlier, not loaded since" }
          : { ok: true, note: "nothing changed: no restart" },
      apply: async () => {
        restarted = true;
        return restartApi(ctx, container, o.readyTimeout ?? plugin.readyTimeoutSeconds ?? 600);
      },
    });
  }

  ctx.emit({ apiWorkflows: { sent: plan.upload, removed: plan.remove, unchanged: plan.unchanged.length, restarted, dryRun: ctx.dryRun } });
  if (o.verify !== false) {
    if (ctx.dryRun) await ctx.step("api:verify", async () => ({ status: "skipped", note: "dry run" }));
    else if (o.restart === false && due) await ctx.step("api:verify", async () => ({ status: "skipped", note: "restart pending" }));
    else await runVerify(ctx, { smoke: o.smoke ?? false, smokeTimeout: 600 }, plugin, local);
  }
  return { plan, changed, restarted };
}

/**
 * comfyui-api reads workflows only when it starts, and it is the container's main process (it
 * starts ComfyUI itself): the container restarts. Returns the note; a failed start shows the log.
 */
export async function restartApi(ctx: TaskContext, container: string, readyTimeoutSeconds: number): Promise<string> {
  const t0 = Date.now();
  const r = await ctx.exec(restartCommand(container, readyTimeoutSeconds), root);
  if (r.code === 0) return `restarted; /ready after ${((Date.now() - t0) / 1000).toFixed(1)}s`;
  const log = await ctx.exec(tailLogCommand(container, 40), root);
  throw new TaskError(
    `${container} restarted but GET /ready did not answer 200 within ${readyTimeoutSeconds}s` +
      `${r.stderr.trim() ? ` (${r.stderr.trim().split("\n").pop()})` : ""}; ` +
      `the container's last 40 log lines:\n${log.stdout.trimEnd()}`,
  );
}
